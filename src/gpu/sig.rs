//! `sig` and `sig_backprop` on the GPU: the drivers of `sig_forward.wgsl` and `sig_backward.wgsl`.
//!
//! They take the CPU drivers' arguments (the device in place of the thread count). A batch is cut
//! into chunks so that no dispatch exceeds `max_compute_workgroups_per_dimension` workgroups, no buffer
//! exceeds `max_storage_buffer_binding_size` or `max_buffer_size`, and every index the shaders compute
//! fits in a `u32`. Each chunk is one upload, one dispatch and one read-back; the buffers are made once
//! per call, at the largest chunk's size.

use super::context::Context;
use super::kernels::{Kernel, Params, Precision, SIG_BACKWARD, SIG_FORWARD, WORKGROUP_SIZE};
use super::GpuDevice;
use crate::cpu::PathsShape;
use crate::layout::TensorShape;
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

/// Elements per path of each buffer a kernel binds (the uniform and `consts` excepted).
struct PerPath {
    what: &'static str,
    elems: u64,
}

/// Paths per chunk: the most that keeps every buffer within the adapter's limits.
fn chunk_paths(ctx: &Context, precision: Precision, buffers: &[PerPath]) -> Result<usize> {
    let limits = &ctx.limits;
    let max_bytes = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
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

fn to_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Device(format!("{what} {n} is too large for the GPU")))
}

/// The values a kernel reads in `precision`, as bytes.
fn bytes_of<T: Scalar>(precision: Precision, xs: &[T]) -> Vec<u8> {
    match precision {
        // Exact: T is f32 itself here, so the round trip through f64 changes nothing.
        Precision::F32 => xs
            .iter()
            .flat_map(|x| (Scalar::to_f64(*x) as f32).to_ne_bytes())
            .collect(),
        Precision::F64 => xs
            .iter()
            .flat_map(|x| Scalar::to_f64(*x).to_ne_bytes())
            .collect(),
    }
}

/// Read `out.len()` values of `precision` from `bytes`.
fn read_into<T: Scalar>(precision: Precision, bytes: &[u8], out: &mut [T]) {
    match precision {
        Precision::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = T::from_f64(f32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as f64);
            }
        }
        Precision::F64 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                *o = T::from_f64(f64::from_ne_bytes(a));
            }
        }
    }
}

/// The device of `device`, checked for `precision`.
fn open(device: &GpuDevice, precision: Precision) -> Result<Arc<Context>> {
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
    let transformed = if opts.lead_lag && points > 0 {
        2 * points - 1
    } else {
        points
    };
    c[0] = if opts.time_aug && transformed > 1 {
        T::from_f64(opts.end_time / (transformed - 1) as f64)
    } else {
        T::zero()
    };
    c
}

fn params(
    shape: &TensorShape,
    ps: PathsShape,
    opts: &SigOptions,
    scalar_term: usize,
) -> Result<Params> {
    Ok(Params {
        n_paths: 0,
        length: to_u32("path length", ps.length)?,
        dim: to_u32("path dimension", ps.dim)?,
        aug_dim: to_u32("dimension", shape.dim)?,
        degree: to_u32("degree", shape.degree)?,
        lead_lag: opts.lead_lag as u32,
        time_aug: opts.time_aug as u32,
        scalar_term: scalar_term as u32,
    })
}

/// `d + … + d^(N-1)` (at least 1): the Horner chain of `mul_exp_backprop`.
pub(crate) fn chain_len(shape: &TensorShape) -> usize {
    if shape.degree >= 1 {
        shape.offset(shape.degree).max(1)
    } else {
        1
    }
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);
const STAGING: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);
const UNIFORM: wgpu::BufferUsages = wgpu::BufferUsages::UNIFORM.union(wgpu::BufferUsages::COPY_DST);

/// Run `kernel` chunk by chunk. `inputs` are the per-path inputs in binding order, paths first (name,
/// data, elements per path); `out` has `out_row` elements per path; `scratch` is the per-path scratch
/// length.
#[allow(clippy::too_many_arguments)]
fn run_chunks<T: Scalar>(
    device: &GpuDevice,
    kernel: &'static Kernel,
    mut p: Params,
    consts: &[T],
    inputs: &[(&'static str, &[T], usize)],
    out: &mut [T],
    out_row: usize,
    scratch: usize,
) -> Result<()> {
    if out_row == 0 || out.is_empty() {
        return Ok(());
    }
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    let batch = out.len() / out_row;
    let mut per_path: Vec<PerPath> = inputs
        .iter()
        .map(|&(what, _, row)| PerPath {
            what,
            elems: row as u64,
        })
        .collect();
    per_path.push(PerPath {
        what: "output",
        elems: out_row as u64,
    });
    per_path.push(PerPath {
        what: "scratch",
        elems: scratch as u64,
    });
    let chunk = chunk_paths(&ctx, precision, &per_path)?.min(batch);
    let size = precision.size();
    let bytes = |row: usize| (row * chunk) as u64 * size;

    let uniform = ctx.buffer("params", std::mem::size_of::<Params>() as u64, UNIFORM);
    let consts_buf = ctx.buffer("consts", consts.len() as u64 * size, STORAGE);
    ctx.write(&consts_buf, &bytes_of(precision, consts));
    let input_bufs: Vec<wgpu::Buffer> = inputs
        .iter()
        .map(|&(what, _, row)| ctx.buffer(what, bytes(row), STORAGE))
        .collect();
    let out_buf = ctx.buffer("output", bytes(out_row), STORAGE);
    let scratch_buf = ctx.buffer("scratch", bytes(scratch), STORAGE);
    let staging = ctx.buffer("staging", bytes(out_row), STAGING);
    // Binding order of both kernels: params, paths, consts, the other inputs, output, scratch.
    let mut bindings: Vec<&wgpu::Buffer> = vec![&uniform, &input_bufs[0], &consts_buf];
    bindings.extend(&input_bufs[1..]);
    bindings.extend([&out_buf, &scratch_buf]);

    for (c, out_chunk) in out.chunks_mut(chunk * out_row).enumerate() {
        let n = out_chunk.len() / out_row;
        let first = c * chunk;
        p.n_paths = to_u32("chunk", n)?;
        ctx.write(&uniform, bytemuck::bytes_of(&p));
        for (&(_, data, row), buf) in inputs.iter().zip(&input_bufs) {
            ctx.write(
                buf,
                &bytes_of(precision, &data[first * row..(first + n) * row]),
            );
        }
        let groups = to_u32("workgroups", n.div_ceil(WORKGROUP_SIZE as usize))?;
        let result = ctx.run(
            kernel,
            precision,
            &bindings,
            groups,
            &out_buf,
            &staging,
            out_chunk.len() as u64 * size,
        )?;
        read_into(precision, &result, out_chunk);
    }
    Ok(())
}

/// Signatures of a batch into `out` (`batch` rows of `shape.len() + scalar_term`), as `cpu::sig`.
pub(crate) fn sig<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    opts: &SigOptions,
    out: &mut [T],
) -> Result<()> {
    let st = opts.scalar_term as usize;
    let scratch = shape.len() + shape.dim + shape.top_scratch_len();
    run_chunks(
        device,
        &SIG_FORWARD,
        params(shape, ps, opts, st)?,
        &consts::<T>(shape, ps, opts),
        &[("paths", paths, ps.length * ps.dim)],
        out,
        shape.len() + st,
        scratch,
    )
}

/// Path gradients of a batch into `out` (laid out like `paths`), as `cpu::sig_backprop`: `sigs` and
/// `sig_derivs` have rows of `shape.len() + sig_st`; the scalar term's derivative is ignored.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sig_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    sigs: &[T],
    sig_derivs: &[T],
    sig_st: usize,
    opts: &SigOptions,
    out: &mut [T],
) -> Result<()> {
    let row = shape.len() + sig_st;
    let scratch = 2 * shape.len() + 3 * shape.dim + chain_len(shape) + shape.top_scratch_len();
    run_chunks(
        device,
        &SIG_BACKWARD,
        params(shape, ps, opts, sig_st)?,
        &consts::<T>(shape, ps, opts),
        &[
            ("paths", paths, ps.length * ps.dim),
            ("sigs", sigs, row),
            ("sig_derivs", sig_derivs, row),
        ],
        out,
        ps.length * ps.dim,
        scratch,
    )
}
