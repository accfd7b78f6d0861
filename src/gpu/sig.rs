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

pub(super) fn to_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Device(format!("{what} {n} is too large for the GPU")))
}

/// The values a kernel reads in `precision`, as bytes.
pub(super) fn bytes_of<T: Scalar>(precision: Precision, xs: &[T]) -> Vec<u8> {
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
pub(super) fn read_into<T: Scalar>(precision: Precision, bytes: &[u8], out: &mut [T]) {
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

pub(super) fn params(
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
        t_begin: 0,
        t_end: 0,
    })
}

/// Increments of each path (as `Increments::count`).
pub(super) fn increments(ps: PathsShape, opts: &SigOptions) -> usize {
    ps.length.saturating_sub(1) * (1 + opts.lead_lag as usize)
}

/// `d + … + d^(N-1)` (at least 1): the Horner chain of `mul_exp_backprop`.
pub(crate) fn chain_len(shape: &TensorShape) -> usize {
    if shape.degree >= 1 {
        shape.offset(shape.degree).max(1)
    } else {
        1
    }
}

pub(super) const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);
pub(super) const STAGING: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);
pub(super) const UNIFORM: wgpu::BufferUsages =
    wgpu::BufferUsages::UNIFORM.union(wgpu::BufferUsages::COPY_DST);

/// Which way a kernel walks the increments: the forward pass from the first, the reverse sweep from
/// the last (starting from the signature, with the gradient buffer zeroed first).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Sweep {
    Forward,
    Backward,
}

/// Run `kernel` over the batch: chunks of paths (one dispatch sequence each) and, within a chunk,
/// windows of increments sized by the adapter's loop budget. `inputs` are the per-path inputs in
/// binding order, paths first (name, data, elements per path); `out` has `out_row` elements per path;
/// `scratch` is the per-path scratch length; `cost` the loop iterations of a dispatch (fixed, per
/// increment).
#[allow(clippy::too_many_arguments)]
fn run_chunks<T: Scalar>(
    device: &GpuDevice,
    kernel: &'static Kernel,
    sweep: Sweep,
    p: Params,
    increments: usize,
    cost: (u64, u64),
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
    let windows = windows(&ctx, sweep, increments, cost)?;
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
        for (&(_, data, row), buf) in inputs.iter().zip(&input_bufs) {
            ctx.write(
                buf,
                &bytes_of(precision, &data[first * row..(first + n) * row]),
            );
        }
        let n_paths = to_u32("chunk", n)?;
        let params: Vec<Params> = windows
            .iter()
            .map(|&(t_begin, t_end)| Params {
                n_paths,
                t_begin,
                t_end,
                ..p
            })
            .collect();
        let groups = to_u32("workgroups", n.div_ceil(WORKGROUP_SIZE as usize))?;
        let result = ctx.run(
            kernel,
            precision,
            &bindings,
            &uniform,
            &params,
            groups,
            (sweep == Sweep::Backward).then_some(&out_buf),
            &out_buf,
            &staging,
            out_chunk.len() as u64 * size,
        )?;
        read_into(precision, &result, out_chunk);
    }
    Ok(())
}

/// The windows `[t_begin, t_end)` of increments, one per dispatch, in the order they run: as many
/// increments per window as the adapter's loop budget allows (at least one window, even without
/// increments, so that the output is always written).
pub(super) fn windows(
    ctx: &Context,
    sweep: Sweep,
    increments: usize,
    (fixed, per_step): (u64, u64),
) -> Result<Vec<(u32, u32)>> {
    let count = to_u32("increments", increments)?;
    let steps = ctx.loop_budget.saturating_sub(fixed) / per_step.max(1);
    if steps == 0 && count > 0 {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation and dispatch; one step of \
             this signature needs {}; use the CPU or a smaller signature",
            ctx.name,
            ctx.loop_budget,
            fixed + per_step
        )));
    }
    let steps = steps.clamp(1, u32::MAX as u64) as u32;
    let mut out = Vec::new();
    let mut t = 0u32;
    loop {
        let end = t.saturating_add(steps).min(count);
        out.push((t, end));
        if end >= count {
            break;
        }
        t = end;
    }
    if sweep == Sweep::Backward {
        // The reverse sweep starts at the last increment; t_end of its first window is the count.
        out.reverse();
    }
    Ok(out)
}

/// Loop iterations of the shaders, as lavapipe counts them against its limit: a model that follows
/// the loops of `sig_forward.wgsl` and `sig_backward.wgsl`, each loop costing its trips plus
/// [`loop_cost::ENTRY`] for entering it. The entry cost was measured on lavapipe (short loops cost
/// well over their trips); the budget in `context.rs` keeps a margin on top. The GPU tests on lavapipe
/// (long paths, where windows are filled to the budget) check the model from below.
pub(super) mod loop_cost {
    use crate::layout::TensorShape;

    /// What entering a loop costs, besides its trips.
    pub(in crate::gpu) const ENTRY: u64 = 6;

    /// A loop of `trips` trips whose body costs `body` (besides the trip).
    pub(in crate::gpu) fn lp(trips: u64, body: u64) -> u64 {
        ENTRY + trips * (1 + body)
    }

    /// `level_offset(k)`: `k - 1` trips.
    pub(in crate::gpu) fn level_offset(k: u64) -> u64 {
        lp(k.saturating_sub(1), 0)
    }

    /// `fill_increment` (and `scatter_increment`, which it bounds).
    fn fill(dim: u64, lead_lag: bool) -> u64 {
        lp(dim, 0) + if lead_lag { lp(2 * dim, 0) } else { 0 }
    }

    fn mul_exp(d: u64, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut c = ENTRY;
        for k in 2..=n {
            c += 1 + lp(d, 0) + ENTRY;
            let mut len = d;
            for m in 1..k - 1 {
                c += 1 + level_offset(m + 1) + lp(len, lp(d, 0));
                len *= d;
            }
            c += level_offset(k) + lp(len, lp(d, 0));
        }
        c + lp(d, 0)
    }

    fn mul_exp_backprop(d: u64, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut c = lp(d, 0) + ENTRY;
        for k in 2..=n {
            c += 1 + lp(d, 0) + ENTRY;
            let mut len = d;
            for m in 1..k - 1 {
                c += 1 + 3 * level_offset(m + 1) + lp(len, lp(d, 0));
                len *= d;
            }
            c += level_offset(k) + level_offset(k - 1) + lp(len, lp(d, 0)) + ENTRY;
            for m in (1..k.saturating_sub(1)).rev() {
                len /= d;
                c += 1 + 2 * level_offset(m + 1) + lp(len * d, 0) + lp(len, lp(d, 0));
            }
            c += lp(d, 0);
        }
        c
    }

    /// `(fixed, per increment)` of a `sig_forward` dispatch.
    pub(in crate::gpu) fn forward(shape: &TensorShape, dim: usize, lead_lag: bool) -> (u64, u64) {
        let (d, n, len) = (shape.dim as u64, shape.degree as u64, shape.len() as u64);
        let fixed = level_offset(n + 1) + 2 * lp(len, 0) + ENTRY;
        (fixed, 1 + fill(dim as u64, lead_lag) + mul_exp(d, n))
    }

    /// `(fixed, per increment)` of a `sig_backward` dispatch.
    pub(in crate::gpu) fn backward(shape: &TensorShape, dim: usize, lead_lag: bool) -> (u64, u64) {
        let (d, n, len) = (shape.dim as u64, shape.degree as u64, shape.len() as u64);
        let fixed = 3 * level_offset(n + 1) + lp(len, 0) + ENTRY;
        let step =
            1 + 2 * fill(dim as u64, lead_lag) + lp(d, 0) + mul_exp(d, n) + mul_exp_backprop(d, n);
        (fixed, step)
    }
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
        Sweep::Forward,
        params(shape, ps, opts, st)?,
        increments(ps, opts),
        loop_cost::forward(shape, ps.dim, opts.lead_lag),
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
        Sweep::Backward,
        params(shape, ps, opts, sig_st)?,
        increments(ps, opts),
        loop_cost::backward(shape, ps.dim, opts.lead_lag),
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
