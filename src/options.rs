//! Options shared by the signature operations, with pySigLib's defaults.

use crate::{Error, Result, Scalar};

/// Where a computation runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// The CPU (rayon over the batch).
    Cpu,
    /// A GPU adapter; `Some(name)` picks the first adapter whose name contains `name`.
    Gpu(Option<String>),
    /// The GPU when one is present and the workload repays the transfer, else the CPU.
    #[default]
    Auto,
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Ok(Device::Gpu(None)),
            "auto" => Ok(Device::Auto),
            other => Err(Error::invalid(format!(
                "unknown device '{other}' (expected cpu, gpu or auto)"
            ))),
        }
    }
}

/// How paths are transformed before their signatures or kernels are taken (pySigLib's `time_aug`,
/// `lead_lag`, `end_time`): lead-lag first, then time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathTransform {
    /// Append time as the last channel, running from 0 to `end_time`.
    pub time_aug: bool,
    /// Apply the lead-lag transform (channels: lag, then lead; lead moves first).
    pub lead_lag: bool,
    /// The final time of the time channel (only used with `time_aug`).
    pub end_time: f64,
}

impl Default for PathTransform {
    fn default() -> Self {
        PathTransform {
            time_aug: false,
            lead_lag: false,
            end_time: 1.0,
        }
    }
}

impl PathTransform {
    /// Check the transform for paths of dtype `T`: `end_time` must be finite in it (`1e39` is
    /// finite in f64 but not in f32).
    pub(crate) fn validate<T: Scalar>(&self) -> Result<()> {
        if self.end_time.is_finite() && T::from_f64(self.end_time).is_finite() {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "end_time must be finite in {}, got {}",
            std::any::type_name::<T>(),
            self.end_time
        )))
    }
}

/// Where a call runs and with how many CPU threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    /// Threads, with pySigLib's `n_jobs` meaning: `1` serial, `-1` all cores, `-2` all but one, `n > 0` n.
    pub n_jobs: i32,
    /// Where to run.
    pub device: Device,
}

impl Default for Execution {
    fn default() -> Self {
        Execution {
            n_jobs: -1,
            device: Device::Auto,
        }
    }
}

impl Execution {
    /// Check the thread count.
    pub(crate) fn validate(&self) -> Result<()> {
        threads(self.n_jobs).map(|_| ())
    }
}

/// Chainable setters for the fields of an options struct, reached through its groups:
/// `SigOptions::default().time_aug(true).n_jobs(1)`.
macro_rules! setters {
    ($ty:ty { $($name:ident: $arg:ty => $($path:ident).+;)* }) => {
        impl $ty {
            $(
                #[doc = concat!("Set `", stringify!($($path).+), "`.")]
                pub fn $name(mut self, value: $arg) -> Self {
                    self.$($path).+ = value.into();
                    self
                }
            )*
        }
    };
}
pub(crate) use setters;

/// Options of `sig`, `sig_backprop`, the path transforms, `sig_combine` and the log-signatures.
///
/// Build with the setters, `SigOptions::default().time_aug(true).n_jobs(1)`, or with struct-update
/// syntax.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SigOptions {
    /// How the paths are transformed.
    pub transform: PathTransform,
    /// Prepend the level-0 term, the constant 1.
    pub scalar_term: bool,
    /// Where to run.
    pub exec: Execution,
}

setters!(SigOptions {
    time_aug: bool => transform.time_aug;
    lead_lag: bool => transform.lead_lag;
    end_time: f64 => transform.end_time;
    scalar_term: bool => scalar_term;
    n_jobs: i32 => exec.n_jobs;
    device: Device => exec.device;
});

impl SigOptions {
    /// Check the options for paths of dtype `T`.
    pub(crate) fn validate<T: Scalar>(&self) -> Result<()> {
        self.transform.validate::<T>()?;
        self.exec.validate()
    }
}

/// The most threads an operation uses: the larger of the available cores and [`MIN_THREAD_CAP`].
///
/// `n_jobs` above it is clamped to it. Threads beyond the cores only add overhead to this CPU-bound
/// work, but a few more than the cores are allowed, so that the splitting of small batches across
/// threads behaves the same on small machines as on large ones.
pub fn max_threads() -> usize {
    available_cores().max(MIN_THREAD_CAP)
}

/// The thread cap on machines with fewer cores than this (see [`max_threads`]).
pub const MIN_THREAD_CAP: usize = 64;

/// The available cores, asked once per process (asking reads cgroup files).
fn available_cores() -> usize {
    static ALL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ALL.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Resolve pySigLib's `n_jobs` to a thread count: `n > 0` is `n` threads, at most [`max_threads`];
/// `-1` is all cores, `-2` all but one, and so on (at least 1, as in joblib); `0` is an error.
pub fn threads(n_jobs: i32) -> Result<usize> {
    let all = available_cores();
    match n_jobs {
        0 => Err(Error::invalid("n_jobs cannot be 0")),
        n if n > 0 => Ok((n as usize).min(max_threads())),
        n => Ok((all as i64 + 1 + n as i64).max(1) as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_are_bounded() {
        let all = available_cores();
        assert_eq!(threads(1).unwrap(), 1);
        assert_eq!(threads(-1).unwrap(), all);
        assert_eq!(threads(-2).unwrap(), (all - 1).max(1));
        assert_eq!(threads(i32::MIN).unwrap(), 1);
        assert!(threads(0).is_err());
        assert_eq!(threads(i32::MAX).unwrap(), max_threads());
        assert_eq!(threads(100_000).unwrap(), max_threads());
        assert!(max_threads() >= all && max_threads() >= MIN_THREAD_CAP);
        assert_eq!(threads(3).unwrap(), 3.min(max_threads()));
    }
}
