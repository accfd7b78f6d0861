//! Shared by the GPU drivers: how many paths (or pairs) go in one dispatch, the device of a call, the
//! conversions between host values and buffer bytes, and the loop-cost model lavapipe's budget needs.

use super::context::Context;
use super::kernels::{Precision, WORKGROUP_SIZE};
use super::GpuDevice;
use crate::layout::{PathsShape, TensorShape};
use crate::{Error, Result, Scalar, SigOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// An upper bound on paths per dispatch, on top of the adapter's limits (tests lower it to cross
/// chunk boundaries with small batches).
static MAX_CHUNK_PATHS: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Cap the number of paths per dispatch (at least 1). For tests of the chunking; the adapter's limits
/// always apply as well.
#[doc(hidden)]
pub fn set_max_chunk_paths(n: usize) {
    MAX_CHUNK_PATHS.store(n.max(1), Ordering::Relaxed);
}

/// The cap [`set_max_chunk_paths`] set (`usize::MAX` unless a test lowered it).
pub(super) fn max_chunk_paths() -> usize {
    MAX_CHUNK_PATHS.load(Ordering::Relaxed)
}

/// Elements per path of each buffer a kernel binds (the uniform and `consts` excepted).
pub(super) struct PerPath {
    pub what: &'static str,
    pub elems: u64,
}

/// Paths per chunk: the most that keeps every buffer within the adapter's limits.
pub(super) fn chunk_paths(
    ctx: &Context,
    precision: Precision,
    buffers: &[PerPath],
) -> Result<usize> {
    let limits = &ctx.limits;
    let max_bytes = ctx.max_buffer_bytes();
    let mut chunk = limits.max_compute_workgroups_per_dimension as u64 * WORKGROUP_SIZE as u64;
    for b in buffers.iter().filter(|b| b.elems > 0) {
        let bytes = b.elems.saturating_mul(precision.size());
        if bytes > max_bytes {
            return Err(Error::Device(format!(
                "adapter '{}': one path needs {bytes} bytes of {}, more than its largest buffer \
                 ({max_bytes} bytes); use the CPU",
                ctx.name, b.what
            )));
        }
        chunk = chunk.min(max_bytes / bytes).min(u32::MAX as u64 / b.elems);
    }
    Ok((chunk as usize).min(MAX_CHUNK_PATHS.load(Ordering::Relaxed)))
}

pub(super) fn to_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Device(format!("{what} {n} is too large for the GPU")))
}

/// The values a kernel reads, as bytes (`T` is the kernel's precision: no conversion).
pub(super) fn bytes_of<T: Scalar>(precision: Precision, xs: &[T]) -> Vec<u8> {
    debug_assert_eq!(precision, Precision::of::<T>());
    bytemuck::cast_slice(xs).to_vec()
}

/// The device of `device`, checked for `precision`.
pub(super) fn open(device: &GpuDevice, precision: Precision) -> Result<Arc<Context>> {
    let ctx = device.entry()?.context()?;
    if precision == Precision::F64 && !ctx.f64 {
        return Err(Error::Device(format!(
            "adapter '{}' has no f64 support (SHADER_F64); use f32 or the CPU",
            ctx.name
        )));
    }
    Ok(ctx)
}

/// `consts[0]`: the time channel's step (as `Increments::new` computes it); `consts[k] = 1/k`.
pub(crate) fn consts<T: Scalar>(shape: &TensorShape, ps: PathsShape, opts: &SigOptions) -> Vec<T> {
    let mut c = crate::algebra::reciprocals::<T>(shape.degree);
    let points = ps.length;
    let transformed = if opts.transform.lead_lag && points > 0 {
        2 * points - 1
    } else {
        points
    };
    c[0] = if opts.transform.time_aug && transformed > 1 {
        T::from_f64(opts.transform.end_time / (transformed - 1) as f64)
    } else {
        T::zero()
    };
    c
}

pub(super) const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// Loop iterations of a shader, as lavapipe counts them against its limit: each loop costs its trips
/// plus [`loop_cost::ENTRY`] for entering it. The entry cost was measured on lavapipe (short loops
/// cost well over their trips); the budget in `context.rs` keeps a margin on top.
pub(super) mod loop_cost {
    /// What entering a loop costs, besides its trips.
    pub(in crate::gpu) const ENTRY: u64 = 6;

    /// A loop of `trips` trips whose body costs `body` (besides the trip).
    pub(in crate::gpu) fn lp(trips: u64, body: u64) -> u64 {
        ENTRY + trips * (1 + body)
    }
}
