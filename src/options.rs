//! Options shared by the signature operations, with pySigLib's defaults.

use crate::{Error, Result};

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

/// Options of `sig`, `sig_backprop`, the path transforms and `sig_combine`.
///
/// Build with struct-update syntax: `SigOptions { time_aug: true, ..Default::default() }`.
#[derive(Clone, Debug, PartialEq)]
pub struct SigOptions {
    /// Append time as the last channel, running from 0 to `end_time`.
    pub time_aug: bool,
    /// Apply the lead-lag transform (channels: lag, then lead; lead moves first).
    pub lead_lag: bool,
    /// The final time of the time channel (only used with `time_aug`).
    pub end_time: f64,
    /// Prepend the level-0 term, the constant 1.
    pub scalar_term: bool,
    /// Threads, with pySigLib's `n_jobs` meaning: `1` serial, `-1` all cores, `-2` all but one, `n > 0` n.
    pub n_jobs: i32,
    /// Where to run.
    pub device: Device,
}

impl Default for SigOptions {
    fn default() -> Self {
        SigOptions {
            time_aug: false,
            lead_lag: false,
            end_time: 1.0,
            scalar_term: false,
            n_jobs: -1,
            device: Device::Auto,
        }
    }
}

impl SigOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        if !self.end_time.is_finite() {
            return Err(Error::invalid(format!(
                "end_time must be finite, got {}",
                self.end_time
            )));
        }
        threads(self.n_jobs).map(|_| ())
    }
}

/// Resolve pySigLib's `n_jobs` to a thread count.
pub fn threads(n_jobs: i32) -> Result<usize> {
    // Asking the system reads cgroup files: once per process, not per call.
    static ALL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let all = *ALL.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    match n_jobs {
        0 => Err(Error::invalid("n_jobs cannot be 0")),
        n if n > 0 => Ok(n as usize),
        n => Ok((all as i64 + 1 + n as i64).max(1) as usize),
    }
}
