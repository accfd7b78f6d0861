//! The GPU backend (wgpu: Vulkan, Metal or DX12): every batch operation as WGSL compute kernels —
//! signatures, log-signatures, Chen's product and joins, the signature kernels — and their gradients.
//!
//! The pieces, one name per operation: the shaders in `shaders/` (the signature engine's and the
//! kernels over rows of signatures in `shaders/sig/`, specialised per key by a generated prelude),
//! the kernel table `kernels` of the fixed shaders, their drivers (`sig` for `sig` and
//! `sig_backprop`, `log_sig` for the log-signatures and their gradients, `combine` for `sig_combine`
//! and `sig_join`, `sig_kernel`) taking the CPU drivers' arguments, and plain-Rust mirrors of the
//! fixed shaders in `src/gpu/mirror/` (tests only). The wgpu instance, adapters, devices and
//! compiled pipelines are made once per process; buffers are pooled per device.
//!
//! [`adapters`] lists what wgpu found and which adapter `Device::Auto` would use;
//! [`last_gpu_report`] says what the last call did on the device; [`GpuPaths`] keeps paths and their
//! signatures on the device between calls.
//!
//! How the work is laid out, and what follows from it:
//! - Signatures and their gradients (`sig`): paths are cut into time chunks joined by Chen's
//!   identity, one invocation per (path, chunk, word) forward and one workgroup per (path, chunk)
//!   backward, so a single long path fills the GPU as a large batch does (`docs/ARCHITECTURE.md`).
//! - Signature kernels: one workgroup per pair sweeps the refined PDE grid in bands of 256 rows,
//!   one invocation per row, along the band's anti-diagonals, the live diagonals in workgroup
//!   memory (`shaders/sig_kernel_forward.wgsl`); a grid of one band computes its base Gram matrix
//!   inside the sweep and packs several pairs per workgroup, taller grids read it from
//!   `shaders/sig_kernel_gram.wgsl`. The gradient (`shaders/sig_kernel_backward.wgsl`) stores each
//!   pair's refined grid on the GPU, sweeps it back with the adjoint in the same bands, and
//!   `shaders/sig_kernel_chain.wgsl` chains `dF/dG` to the transformed paths on the device. The
//!   polynomial solver (`shaders/sig_kernel_polynomial.wgsl`) sweeps the base cells in bands of
//!   rows the same way, one workgroup per pair (several for short grids), the edges between rows
//!   in workgroup memory.
//! - Log-signatures, Chen's product and joins, and their gradients: kernels over rows of
//!   signatures, one invocation per coefficient (or per (row, word length) for the Lyndon solve),
//!   chained on the device to the signature engine where the paths are the input;
//!   `log_sig_to_sig` (`to_sig`) expands the Lie elements and exponentiates them the same way;
//!   `sig_corrected` (`correction`) exponentiates every segment at once and multiplies a path's
//!   segments as a tree of pairwise products.
//! - A batch is cut into groups that respect the adapter's limits (workgroups per dimension, storage
//!   binding and buffer sizes, `u32` indices). lavapipe (llvmpipe) ends an invocation's loops after
//!   65535 iterations in all, silently: there chunks and windows are sized from a model of the
//!   shaders' loop counts, and work whose single step exceeds the budget is refused with
//!   [`Error::Device`] (`Device::Auto` never picks lavapipe unless `ROUGHSIG_ADAPTER` names it, and
//!   falls back to the CPU on such errors).
//! - f32 runs everywhere; f64 only on adapters with `SHADER_F64` (an explicit f64 request elsewhere
//!   is an [`Error::Device`] naming the adapter).

pub mod calibrate;
mod chunks;
mod combine;
mod context;
mod correction;
/// The kernel table, public for the shader tests only.
#[doc(hidden)]
pub mod kernels;
mod log_sig;
mod log_sig_combine;
#[cfg(test)]
pub(crate) mod mirror;
mod program;
mod resident;
/// The signature engine, public for its plan and shader tests only.
#[doc(hidden)]
pub mod sig;
mod sig_coef;
pub(crate) mod sig_kernel;
mod to_sig;

#[doc(hidden)]
pub use chunks::set_max_chunk_paths;
pub(crate) use combine::{sig_combine, sig_combine_backprop, sig_join, sig_join_backprop, Factor};
#[doc(hidden)]
pub use correction::set_max_tree_rows;
pub(crate) use correction::{sig_corrected, sig_corrected_backprop, Segments as CorrectedSegments};
pub(crate) use log_sig::{
    log_sig, log_sig_backprop, sig_to_log_sig_backprop, Brackets, LogSigDerivs, LogSigPaths,
    Signatures,
};
pub(crate) use log_sig_combine::{log_sig_combine, log_sig_combine_backprop, LyndonForm};
pub use program::{last_gpu_report, GpuReport, KernelTime};
pub use resident::{GpuPaths, GpuSigs};
pub(crate) use sig::{sig, sig_backprop};
#[doc(hidden)]
pub use sig_coef::set_time_chunk_target;
pub(crate) use sig_coef::{sig_coef, sig_coef_backprop};
#[doc(hidden)]
pub use sig_kernel::set_max_grid_rows;
pub(crate) use sig_kernel::{
    sig_kernel, sig_kernel_backprop, sig_kernel_grids, KernelGrid, Pairs, StaticGram,
};
pub(crate) use to_sig::{log_sig_to_sig, log_sig_to_sig_backprop, Expansion, LieRows};

use crate::{Error, Result};
use context::{registry, Entry};
use std::fmt;

/// Environment variable naming the adapter to use (a case-insensitive substring of its name), for
/// `Device::Gpu(None)` and `Device::Auto`.
pub const ADAPTER_ENV: &str = "ROUGHSIG_ADAPTER";

/// A GPU adapter chosen for a call. Cheap to clone: the device behind it is opened once per process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuDevice {
    /// Index in [`adapters`]' list.
    pub index: usize,
    /// The adapter's name, as the driver reports it.
    pub name: String,
    /// Chosen by `Device::Auto`: if the GPU cannot run the call (a signature too large for the
    /// adapter, a device error), the call says why on stderr and runs on the CPU instead.
    pub auto: bool,
}

impl GpuDevice {
    fn entry(&self) -> Result<&'static Entry> {
        registry()
            .entries
            .get(self.index)
            .ok_or_else(|| Error::Device(format!("no adapter {}", self.index)))
    }
}

/// One adapter wgpu found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterReport {
    /// Its position in [`AdapterList::adapters`].
    pub index: usize,
    /// The adapter's name (what `Device::Gpu(Some(…))` and `ROUGHSIG_ADAPTER` match against).
    pub name: String,
    /// `Vulkan`, `Metal` or `Dx12`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` (a software rasteriser such as lavapipe) or
    /// `Other`.
    pub device_type: String,
    /// The driver's name and version.
    pub driver: String,
    /// Whether the adapter computes in f64 (`SHADER_F64`).
    pub f64: bool,
    /// The largest storage binding, in bytes (batches are cut to fit it).
    pub max_storage_buffer_binding_size: u64,
    /// The largest buffer, in bytes.
    pub max_buffer_size: u64,
    /// The most workgroups one dispatch may have along one dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// The most invocations one workgroup may have.
    pub max_compute_invocations_per_workgroup: u32,
    /// Workgroup memory one workgroup may use, in bytes.
    pub max_compute_workgroup_storage_size: u32,
}

/// Every adapter, and the one `Device::Auto` would pick for a large workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterList {
    /// Every adapter wgpu found (Vulkan, Metal, DX12).
    pub adapters: Vec<AdapterReport>,
    /// Index of the adapter `Device::Auto` uses for a large enough workload; `None`: Auto always runs
    /// on the CPU.
    pub auto: Option<usize>,
    /// Why `auto` is what it is, in words.
    pub auto_reason: String,
}

/// List every adapter wgpu finds on the backends roughsig uses, with their key limits and the one
/// `Device::Auto` would pick and why. This is what `roughsig devices` prints (through `Display`).
///
/// The first call creates the wgpu instance (tens of milliseconds); the list is then kept.
pub fn adapters() -> AdapterList {
    let reg = registry();
    let adapters = reg
        .entries
        .iter()
        .enumerate()
        .map(|(index, e)| AdapterReport {
            index,
            name: e.info.name.clone(),
            backend: format!("{:?}", e.info.backend),
            device_type: format!("{:?}", e.info.device_type),
            driver: format!("{} {}", e.info.driver, e.info.driver_info)
                .trim()
                .to_string(),
            f64: e.has_f64(),
            max_storage_buffer_binding_size: e.limits.max_storage_buffer_binding_size,
            max_buffer_size: e.limits.max_buffer_size,
            max_compute_workgroups_per_dimension: e.limits.max_compute_workgroups_per_dimension,
            max_compute_invocations_per_workgroup: e.limits.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: e.limits.max_compute_workgroup_storage_size,
        })
        .collect();
    let (auto, auto_reason) = match auto_adapter() {
        Ok(d) => (Some(d.index), {
            let t = |p| match auto_threshold(&d, p) {
                Ok(Some(w)) => format!("from {w} multiply-adds"),
                _ => "never".to_string(),
            };
            let e = d.entry().ok();
            let measured = e
                .and_then(|e| {
                    let driver = format!("{} {}", e.info.driver, e.info.driver_info);
                    calibrate::of(&e.info.name, driver.trim())
                })
                .is_some();
            format!(
                "Auto uses adapter {} ('{}'): f32 {}, f64 {} ({}); the CPU otherwise",
                d.index,
                d.name,
                t(kernels::Precision::F32),
                t(kernels::Precision::F64),
                if measured {
                    "measured by roughsig calibrate"
                } else {
                    "the default rule; roughsig calibrate measures it"
                }
            )
        }),
        Err(why) => (None, format!("Auto always runs on the CPU: {why}")),
    };
    AdapterList {
        adapters,
        auto,
        auto_reason,
    }
}

impl fmt::Display for AdapterList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.adapters.is_empty() {
            writeln!(f, "no GPU adapter (Vulkan, Metal or DX12) found")?;
        }
        for a in &self.adapters {
            writeln!(
                f,
                "[{}] {} ({}, {}{}) f64: {}, max storage binding {} MiB, max buffer {} MiB, \
                 max workgroups/dim {}, max invocations/workgroup {}, workgroup memory {} KiB{}",
                a.index,
                a.name,
                a.backend,
                a.device_type,
                if a.driver.is_empty() {
                    String::new()
                } else {
                    format!(", {}", a.driver)
                },
                if a.f64 { "yes" } else { "no" },
                a.max_storage_buffer_binding_size >> 20,
                a.max_buffer_size >> 20,
                a.max_compute_workgroups_per_dimension,
                a.max_compute_invocations_per_workgroup,
                a.max_compute_workgroup_storage_size >> 10,
                if self.auto == Some(a.index) {
                    "  <- auto"
                } else {
                    ""
                },
            )?;
        }
        writeln!(f, "{}", self.auto_reason)
    }
}

/// `Device::Auto` moves a call to the GPU only above this many multiply-adds (about
/// `batch · increments · sig_length`): below it, the transfer and launch cost more than they save.
pub const AUTO_MIN_WORK: u128 = 1 << 27;

fn adapter_filter() -> Option<String> {
    std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty())
}

fn device_of(index: usize, e: &Entry) -> GpuDevice {
    GpuDevice {
        index,
        name: e.info.name.clone(),
        auto: false,
    }
}

/// The adapter for an explicit GPU request: the first whose name contains `name` (case-insensitive;
/// `ROUGHSIG_ADAPTER` when `name` is `None`), else the most capable one, software adapters included.
pub fn find_adapter(name: Option<&str>) -> Result<GpuDevice> {
    let reg = registry();
    let filter = name.map(str::to_string).or_else(adapter_filter);
    let names = || {
        reg.entries
            .iter()
            .map(|e| format!("'{}'", e.info.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if reg.entries.is_empty() {
        return Err(Error::Device(
            "no GPU adapter found (Vulkan, Metal or DX12); install a driver (on Linux without a GPU, \
             mesa-vulkan-drivers gives lavapipe) or use the CPU"
                .into(),
        ));
    }
    match filter {
        Some(f) => {
            let needle = f.to_lowercase();
            reg.entries
                .iter()
                .enumerate()
                .find(|(_, e)| e.info.name.to_lowercase().contains(&needle))
                .map(|(i, e)| device_of(i, e))
                .ok_or_else(|| {
                    Error::Device(format!("no adapter named like '{f}'; found {}", names()))
                })
        }
        None => reg
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(i, e)| (e.rank(), *i))
            .map(|(i, e)| device_of(i, e))
            .ok_or_else(|| Error::Device("no GPU adapter found".into())),
    }
}

/// The adapter `Device::Auto` may use: the one `ROUGHSIG_ADAPTER` names, else the best hardware GPU.
/// Software adapters are never picked unless named. `Err` says why there is none.
pub(crate) fn auto_adapter() -> std::result::Result<GpuDevice, String> {
    let reg = registry();
    if let Some(f) = adapter_filter() {
        return find_adapter(Some(&f))
            .map(|d| GpuDevice { auto: true, ..d })
            .map_err(|e| e.to_string());
    }
    if reg.entries.is_empty() {
        return Err("no GPU adapter (Vulkan, Metal or DX12) found".into());
    }
    reg.entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_hardware())
        .min_by_key(|(i, e)| (e.rank(), *i))
        .map(|(i, e)| GpuDevice {
            auto: true,
            ..device_of(i, e)
        })
        .ok_or_else(|| {
            format!(
                "only software adapters ({}); name one with {ADAPTER_ENV} or Device::Gpu to use it",
                reg.entries
                    .iter()
                    .map(|e| format!("'{}'", e.info.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Whether `device` computes in f64.
pub(crate) fn has_f64(device: &GpuDevice) -> Result<bool> {
    Ok(device.entry()?.has_f64())
}

/// The workload from which `Device::Auto` runs on `device` in `precision` (`None`: never): what
/// `roughsig calibrate` measured for this adapter and driver, else [`AUTO_MIN_WORK`] for f32 and for
/// f64 on parts with fast f64.
pub(crate) fn auto_threshold(
    device: &GpuDevice,
    precision: kernels::Precision,
) -> Result<Option<u128>> {
    let e = device.entry()?;
    let driver = format!("{} {}", e.info.driver, e.info.driver_info);
    if let Some(c) = calibrate::of(&e.info.name, driver.trim()) {
        return Ok(match precision {
            kernels::Precision::F32 => c.f32_min_work,
            kernels::Precision::F64 => c.f64_min_work,
        });
    }
    Ok(match precision {
        kernels::Precision::F32 => Some(AUTO_MIN_WORK),
        kernels::Precision::F64 => has_fast_f64(device)?.then_some(AUTO_MIN_WORK),
    })
}

/// Data-centre parts whose f64 runs at half or a third of their f32 rate; elsewhere f64 is 1/32 to
/// 1/64 of f32 (or emulated), slower than the CPU's.
const FAST_F64: &[&str] = &[
    "A100", "A800", "H100", "H200", "H800", "GH200", "B100", "B200", "GB200", "V100", "P100",
    "MI100", "MI210", "MI250", "MI300",
];

/// Whether `Device::Auto` may send f64 work to `device`: it has `SHADER_F64` and is one of the parts
/// with fast f64 (an explicit `Device::Gpu` request runs f64 on any adapter that has it).
pub(crate) fn has_fast_f64(device: &GpuDevice) -> Result<bool> {
    let name = device.name.to_uppercase();
    Ok(has_f64(device)? && FAST_F64.iter().any(|part| name.contains(part)))
}
