//! `sig_kernel` and its gradient on the GPU: the drivers of `sig_kernel_forward.wgsl` and
//! `sig_kernel_backward.wgsl`.
//!
//! The caller supplies the base Gram matrices `G` (one `n1 × n2` block per pair, computed on the
//! host by the CPU's static-kernel code, chunk by chunk) and the kernels solve the refined PDE of
//! every pair, one workgroup per pair; the backward kernel returns `dF/dG`, which the caller chains
//! to the paths with the same static-kernel code. A batch is cut into chunks that respect the adapter's limits
//! (workgroups per dimension, binding and buffer sizes, `u32` indices); the sweep over the grid's
//! anti-diagonals is cut into windows of diagonals, one dispatch each, sized by the adapter's loop
//! budget (see `gpu::sig`).

use super::chunks::{
    bytes_of, chunk_paths, loop_cost, open, read_into, to_u32, PerPath, STAGING, STORAGE, UNIFORM,
};
use super::context::Context;
use super::kernels::{
    Precision, SigKernelParams, SIG_KERNEL_BACKWARD, SIG_KERNEL_FORWARD, WORKGROUP_SIZE,
};
use super::GpuDevice;
use crate::{Error, Result, Scalar};

/// The base Gram matrix and refinement shared by every pair of one call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KernelGrid {
    /// Increments of the two transformed paths.
    pub n1: usize,
    pub n2: usize,
    /// Dyadic orders.
    pub lam1: u32,
    pub lam2: u32,
}

impl KernelGrid {
    fn rows(&self) -> usize {
        (self.n1 << self.lam1) + 1
    }

    fn cols(&self) -> usize {
        (self.n2 << self.lam2) + 1
    }
}

/// Host memory for the base Gram matrices of one chunk, at most.
const GRAM_CHUNK_BYTES: usize = 256 << 20;

/// `consts` of the shader: `[2^-(λ1+λ2), 1/12]`, as the CPU scheme computes them.
pub(crate) fn consts<T: Scalar>(grid: KernelGrid) -> [T; 2] {
    [
        T::from_f64(0.5f64.powi((grid.lam1 + grid.lam2) as i32)),
        T::from_f64(1.0 / 12.0),
    ]
}

/// `consts` of the backward shader: those of the forward one, then `1/6` (`dA/dh = 1/2 + h/6`).
pub(crate) fn backward_consts<T: Scalar>(grid: KernelGrid) -> [T; 3] {
    let [frac, twelfth] = consts::<T>(grid);
    [frac, twelfth, T::from_f64(1.0 / 6.0)]
}

/// Loop iterations of one diagonal of `sig_kernel_forward.wgsl`, as `gpu::sig`'s model counts them
/// (the outer trip, entering the strip loop, its trips, and one of margin), and the windows
/// `[d_begin, d_end)` of diagonals, one per dispatch, that keep every dispatch within the budget.
fn windows(ctx: &Context, rows: usize, cols: usize) -> Result<Vec<(u32, u32)>> {
    let diagonals = to_u32("grid diagonals", rows + cols - 1)?;
    let strips = ((rows.min(cols) - 1) / WORKGROUP_SIZE as usize + 1) as u64;
    let per_diagonal = 2 + loop_cost::ENTRY + strips;
    let steps = ctx.loop_budget.saturating_sub(loop_cost::ENTRY) / per_diagonal;
    if steps == 0 {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation and dispatch; one diagonal \
             of this signature-kernel grid needs {per_diagonal}; use the CPU",
            ctx.name, ctx.loop_budget
        )));
    }
    Ok(cut(diagonals, steps))
}

/// `[0, total)` cut into windows of at most `step`.
fn cut(total: u32, step: u64) -> Vec<(u32, u32)> {
    let step = step.clamp(1, u32::MAX as u64) as u32;
    let mut out = Vec::new();
    let mut begin = 0u32;
    while begin < total {
        let end = begin.saturating_add(step).min(total);
        out.push((begin, end));
        begin = end;
    }
    out
}

/// What every pair of a call shares: the grid's sizes (the per-dispatch fields are filled later).
fn base_params(grid: KernelGrid) -> Result<SigKernelParams> {
    Ok(SigKernelParams {
        n1: to_u32("increments", grid.n1)?,
        n2: to_u32("increments", grid.n2)?,
        lam1: grid.lam1,
        lam2: grid.lam2,
        rows: to_u32("grid rows", grid.rows())?,
        cols: to_u32("grid columns", grid.cols())?,
        ..Default::default()
    })
}

/// Pairs per chunk: what the buffers (`per_pair`) and the dispatch allow, at most `pairs`, with the
/// host's base Gram matrices of one chunk within [`GRAM_CHUNK_BYTES`].
fn chunk_pairs<T: Scalar>(
    ctx: &Context,
    grid: KernelGrid,
    per_pair: &[PerPath],
    pairs: usize,
) -> Result<usize> {
    let cells = grid.n1 * grid.n2;
    Ok(chunk_paths(ctx, Precision::of::<T>(), per_pair)?
        .min(ctx.limits.max_compute_workgroups_per_dimension as usize)
        .min((GRAM_CHUNK_BYTES / (cells * std::mem::size_of::<T>())).max(1))
        .min(pairs))
}

/// The kernels of `out.len()` pairs into `out`: `gram(first, g)` writes the base Gram matrices of
/// pairs `first..first + g.len() / (n1·n2)` into `g`. A grid without cells (a path of one point) has
/// the kernel 1.
pub(crate) fn sig_kernel<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    gram: &(dyn Fn(usize, &mut [T]) + Sync),
    out: &mut [T],
) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    if grid.n1 == 0 || grid.n2 == 0 {
        out.fill(T::one());
        return Ok(());
    }
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    let (rows, cols) = (grid.rows(), grid.cols());
    let cells = grid.n1 * grid.n2;
    let per_pair = [
        PerPath {
            what: "base Gram matrix",
            elems: cells as u64,
        },
        PerPath {
            what: "output",
            elems: 1,
        },
        PerPath {
            what: "scratch",
            elems: 3 * rows as u64,
        },
    ];
    let chunk = chunk_pairs::<T>(&ctx, grid, &per_pair, out.len())?;
    let windows = windows(&ctx, rows, cols)?;
    let p = base_params(grid)?;
    let size = precision.size();
    let uniform = ctx.buffer(
        "params",
        std::mem::size_of::<SigKernelParams>() as u64,
        UNIFORM,
    );
    let consts_buf = ctx.buffer("consts", 2 * size, STORAGE);
    ctx.write(&consts_buf, &bytes_of(precision, &consts::<T>(grid)));
    let gram_buf = ctx.buffer("gram", (chunk * cells) as u64 * size, STORAGE);
    let out_buf = ctx.buffer("kernels", chunk as u64 * size, STORAGE);
    let scratch_buf = ctx.buffer("scratch", (chunk * 3 * rows) as u64 * size, STORAGE);
    let staging = ctx.buffer("staging", chunk as u64 * size, STAGING);
    let bindings = [&uniform, &gram_buf, &consts_buf, &out_buf, &scratch_buf];
    let mut g = Vec::new();
    for (c, out_chunk) in out.chunks_mut(chunk).enumerate() {
        let n = out_chunk.len();
        g.clear();
        g.resize(n * cells, T::zero());
        gram(c * chunk, &mut g);
        ctx.write(&gram_buf, &bytes_of(precision, &g));
        let n_pairs = to_u32("chunk", n)?;
        let params: Vec<SigKernelParams> = windows
            .iter()
            .map(|&(d_begin, d_end)| SigKernelParams {
                n_pairs,
                d_begin,
                d_end,
                ..p
            })
            .collect();
        let result = ctx.run(
            &SIG_KERNEL_FORWARD,
            precision,
            &bindings,
            &uniform,
            &params,
            n_pairs,
            None,
            &out_buf,
            &staging,
            n as u64 * size,
        )?;
        read_into(precision, &result, out_chunk);
    }
    Ok(())
}

/// The windows `[begin, end)` of base cells of `sig_kernel_backward.wgsl`'s reduction, one per
/// dispatch: each invocation sums `2^λ1 · 2^λ2` refined cells per base cell of its strips.
fn reduce_windows(ctx: &Context, grid: KernelGrid) -> Result<Vec<(u32, u32)>> {
    let cells = to_u32("base cells", grid.n1 * grid.n2)?;
    let inner = loop_cost::lp(1 << grid.lam1, loop_cost::lp(1 << grid.lam2, 0));
    let per_strip = 1 + inner;
    let strips = ctx.loop_budget.saturating_sub(loop_cost::ENTRY + 1) / per_strip;
    if strips == 0 {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation and dispatch; one base cell \
             of this signature-kernel grid needs {per_strip}; use the CPU",
            ctx.name, ctx.loop_budget
        )));
    }
    Ok(cut(cells, strips.saturating_mul(WORKGROUP_SIZE as u64)))
}

/// `dF/dG` and the kernel of each of `seeds.len()` pairs, given `seeds = dF/dk`: `gram(first, g)`
/// writes the base Gram matrices of pairs `first..first + g.len() / (n1·n2)` into `g` (as for
/// [`sig_kernel`]), and `sink(first, grads)` receives, chunk by chunk in order, `n1·n2 + 1` values
/// per pair: `dF/dG` (row-major), then `k`. A grid without cells has `k = 1` and no `G`.
///
/// The whole refined grid of each pair is held on the GPU (`rows · cols` values), so one pair must
/// fit in the adapter's largest buffer; chunks are sized so that every buffer does.
pub(crate) fn sig_kernel_backprop<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    gram: &(dyn Fn(usize, &mut [T]) + Sync),
    seeds: &[T],
    sink: &mut dyn FnMut(usize, &[T]),
) -> Result<()> {
    if seeds.is_empty() {
        return Ok(());
    }
    if grid.n1 == 0 || grid.n2 == 0 {
        sink(0, &vec![T::one(); seeds.len()]);
        return Ok(());
    }
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    let (rows, cols) = (grid.rows(), grid.cols());
    let cells = grid.n1 * grid.n2;
    let per_pair = [
        PerPath {
            what: "base Gram matrix",
            elems: cells as u64,
        },
        PerPath {
            what: "seed",
            elems: 1,
        },
        PerPath {
            what: "gradient",
            elems: cells as u64 + 1,
        },
        PerPath {
            what: "PDE grid",
            elems: (rows as u64).saturating_mul(cols as u64),
        },
        PerPath {
            what: "scratch",
            elems: 3 * rows as u64,
        },
    ];
    let chunk = chunk_pairs::<T>(&ctx, grid, &per_pair, seeds.len())?;
    let diagonals = windows(&ctx, rows, cols)?;
    let reductions = reduce_windows(&ctx, grid)?;
    let p = base_params(grid)?;
    let size = precision.size();
    let uniform = ctx.buffer(
        "params",
        std::mem::size_of::<SigKernelParams>() as u64,
        UNIFORM,
    );
    let consts_buf = ctx.buffer("consts", 3 * size, STORAGE);
    ctx.write(
        &consts_buf,
        &bytes_of(precision, &backward_consts::<T>(grid)),
    );
    let gram_buf = ctx.buffer("gram", (chunk * cells) as u64 * size, STORAGE);
    let seeds_buf = ctx.buffer("seeds", chunk as u64 * size, STORAGE);
    let out_len = (chunk * (cells + 1)) as u64 * size;
    let grads_buf = ctx.buffer("gradients", out_len, STORAGE);
    let grid_buf = ctx.buffer("grid", (chunk * rows) as u64 * cols as u64 * size, STORAGE);
    let scratch_buf = ctx.buffer("scratch", (chunk * 3 * rows) as u64 * size, STORAGE);
    let staging = ctx.buffer("staging", out_len, STAGING);
    let bindings = [
        &uniform,
        &gram_buf,
        &consts_buf,
        &seeds_buf,
        &grads_buf,
        &grid_buf,
        &scratch_buf,
    ];
    let mut g = Vec::new();
    let mut out = Vec::new();
    for (c, seeds_chunk) in seeds.chunks(chunk).enumerate() {
        let n = seeds_chunk.len();
        g.clear();
        g.resize(n * cells, T::zero());
        gram(c * chunk, &mut g);
        ctx.write(&gram_buf, &bytes_of(precision, &g));
        ctx.write(&seeds_buf, &bytes_of(precision, seeds_chunk));
        let n_pairs = to_u32("chunk", n)?;
        let at = |phase: u32, (d_begin, d_end): (u32, u32)| SigKernelParams {
            n_pairs,
            d_begin,
            d_end,
            phase,
            ..p
        };
        let params: Vec<SigKernelParams> = (diagonals.iter().map(|&w| at(0, w)))
            .chain(diagonals.iter().rev().map(|&w| at(1, w)))
            .chain(reductions.iter().map(|&w| at(2, w)))
            .collect();
        let bytes = (n * (cells + 1)) as u64 * size;
        let result = ctx.run(
            &SIG_KERNEL_BACKWARD,
            precision,
            &bindings,
            &uniform,
            &params,
            n_pairs,
            None,
            &grads_buf,
            &staging,
            bytes,
        )?;
        out.clear();
        out.resize(n * (cells + 1), T::zero());
        read_into(precision, &result, &mut out);
        sink(c * chunk, &out);
    }
    Ok(())
}
