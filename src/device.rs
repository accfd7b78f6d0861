//! Which backend runs an operation.

#[cfg(feature = "gpu")]
use crate::gpu;
#[cfg(feature = "gpu")]
pub(crate) use crate::gpu::GpuDevice;
use crate::options::{threads, Device};
use crate::scalar::Precision;
use crate::{Error, Result};

/// Without the GPU backend no adapter exists: this type has no values, so no call reaches a GPU.
#[cfg(not(feature = "gpu"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuDevice {}

/// The GPU half of an operation, for [`execute`]: the closure `|device| body` (`device` a
/// `&GpuDevice`) where the crate has its GPU backend; without it a stand-in that cannot be called.
macro_rules! on_gpu {
    (|$device:ident| $body:expr) => {{
        #[cfg(feature = "gpu")]
        let run = |$device: &$crate::gpu::GpuDevice| -> $crate::Result<_> { $body };
        #[cfg(not(feature = "gpu"))]
        let run = $crate::device::no_gpu;
        run
    }};
}
pub(crate) use on_gpu;

/// What [`on_gpu!`] stands in with without the GPU backend.
#[cfg(not(feature = "gpu"))]
pub(crate) fn no_gpu<R>(device: &GpuDevice) -> Result<R> {
    match *device {}
}

/// The backend chosen for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The CPU with this many threads.
    Cpu {
        /// The rayon threads the call used.
        threads: usize,
    },
    /// A GPU adapter (listed by `gpu::adapters`).
    Gpu(GpuDevice),
}

impl Backend {
    /// Whether the call ran on a GPU.
    pub fn is_gpu(&self) -> bool {
        matches!(self, Backend::Gpu(_))
    }
}

/// `cpu`, or `gpu (<adapter name>)`.
impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Cpu { .. } => write!(f, "cpu"),
            #[cfg(feature = "gpu")]
            Backend::Gpu(d) => write!(f, "gpu ({})", d.name),
            #[cfg(not(feature = "gpu"))]
            Backend::Gpu(d) => match *d {},
        }
    }
}

thread_local! {
    static LAST: std::cell::RefCell<Option<Backend>> = const { std::cell::RefCell::new(None) };
}

/// Where the most recent successful call on this thread ran — what `Device::Auto` chose, after any
/// fallback — or `None` before the first call. It displays as `cpu` or `gpu (<adapter>)`.
pub fn last_backend() -> Option<Backend> {
    LAST.with(|l| l.borrow().clone())
}

/// Record where a call ran, for [`last_backend`].
pub(crate) fn record(backend: &Backend) {
    LAST.with(|l| *l.borrow_mut() = Some(backend.clone()));
}

/// `device`, with `ROUGHSIG_DEVICE=cpu|gpu|auto` replacing `Auto`.
fn resolve(device: &Device) -> Result<Device> {
    Ok(match device {
        Device::Auto => match std::env::var("ROUGHSIG_DEVICE") {
            Ok(name) if !name.is_empty() => name.parse().map_err(|e| {
                Error::invalid(format!("environment variable ROUGHSIG_DEVICE: {e}"))
            })?,
            _ => Device::Auto,
        },
        other => other.clone(),
    })
}

/// Resolve the device of an operation with a GPU driver, computing in `precision`, whose cost is
/// about `work` multiply-adds.
///
/// - `Cpu`: the CPU.
/// - `Gpu(name)`: the adapter whose name contains `name` (or `ROUGHSIG_ADAPTER`), else the most
///   capable one, software adapters included. No adapter, or f64 on an adapter without `SHADER_F64`,
///   is an error.
/// - `Auto`: a hardware GPU (or the adapter `ROUGHSIG_ADAPTER` names) when `work` reaches the
///   threshold `roughsig calibrate` measured for it, or without a calibration when `work` is at
///   least [`gpu::AUTO_MIN_WORK`] and, for f64, the adapter's f64 is fast (data-centre parts); the
///   CPU otherwise. Small workloads never touch wgpu. When a large one stays on the CPU for want of
///   an adapter, the reason is logged once (`log`, info level).
pub(crate) fn select_for(
    device: &Device,
    n_jobs: i32,
    precision: Precision,
    work: u128,
) -> Result<Backend> {
    let cpu = || -> Result<Backend> {
        Ok(Backend::Cpu {
            threads: threads(n_jobs)?,
        })
    };
    match resolve(device)? {
        Device::Cpu => cpu(),
        Device::Gpu(name) => requested_gpu(name.as_deref(), precision).map(Backend::Gpu),
        Device::Auto => match auto_gpu(precision, work)? {
            Some(d) => Ok(Backend::Gpu(d)),
            None => cpu(),
        },
    }
}

/// The adapter `Device::Gpu(name)` asks for, if it can compute in `precision`.
#[cfg(feature = "gpu")]
fn requested_gpu(name: Option<&str>, precision: Precision) -> Result<GpuDevice> {
    let d = gpu::find_adapter(name)?;
    if precision == Precision::F64 && !gpu::has_f64(&d)? {
        return Err(Error::Device(format!(
            "adapter '{}' has no f64 support (SHADER_F64); use f32 or the CPU",
            d.name
        )));
    }
    Ok(d)
}

#[cfg(not(feature = "gpu"))]
fn requested_gpu(_: Option<&str>, _: Precision) -> Result<GpuDevice> {
    Err(Error::Device(
        "roughsig was built without its GPU backend (the `gpu` feature); use the CPU".into(),
    ))
}

/// The adapter `Device::Auto` takes for `work`, or `None` for the CPU.
#[cfg(feature = "gpu")]
fn auto_gpu(precision: Precision, work: u128) -> Result<Option<GpuDevice>> {
    // Below every threshold this machine knows, wgpu is never woken.
    let floor = gpu::calibrate::recorded()
        .iter()
        .filter_map(|c| c.f32_min_work)
        .fold(gpu::AUTO_MIN_WORK, u128::min);
    if work < floor {
        return Ok(None);
    }
    match gpu::auto_adapter() {
        Ok(d) => match gpu::auto_threshold(&d, precision)? {
            Some(t) => Ok((work >= t).then_some(d)),
            None => {
                log_once(&format!(
                    "adapter '{}' is not faster than the CPU in {precision:?} (measured, \
                     or no fast f64); ask for the GPU to use it",
                    d.name
                ));
                Ok(None)
            }
        },
        Err(why) => {
            log_once(&why);
            Ok(None)
        }
    }
}

#[cfg(not(feature = "gpu"))]
fn auto_gpu(_: Precision, _: u128) -> Result<Option<GpuDevice>> {
    Ok(None)
}

/// Log once per process (at info level, through the `log` crate) why `Auto` stays on the CPU.
#[cfg(feature = "gpu")]
fn log_once(why: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| log::info!("Device::Auto runs on the CPU: {why}"));
}

/// Run an operation that has a GPU driver: choose the backend ([`select_for`]), run `on_gpu` there,
/// and when a GPU that `Device::Auto` chose fails, log why (once) and run `on_cpu` instead (with the
/// thread count the options ask for); then record where the call ran. An explicit GPU request's
/// error is returned as it is.
pub(crate) fn execute<R>(
    device: &Device,
    n_jobs: i32,
    precision: Precision,
    work: u128,
    on_gpu: impl FnOnce(&GpuDevice) -> Result<R>,
    on_cpu: impl FnOnce(usize) -> Result<R>,
) -> Result<R> {
    let backend = select_for(device, n_jobs, precision, work)?;
    let count = match &backend {
        Backend::Cpu { threads } => *threads,
        #[cfg(not(feature = "gpu"))]
        Backend::Gpu(d) => match *d {},
        #[cfg(feature = "gpu")]
        Backend::Gpu(d) => match on_gpu(d) {
            Ok(result) => {
                record(&backend);
                return Ok(result);
            }
            Err(e) if d.auto => {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| log::warn!("Device::Auto falls back to the CPU: {e}"));
                threads(n_jobs)?
            }
            Err(e) => return Err(e),
        },
    };
    let result = on_cpu(count)?;
    record(&Backend::Cpu { threads: count });
    Ok(result)
}
