//! `sig_kernel` and its gradient on the GPU: the drivers of `sig_kernel_gram.wgsl`,
//! `sig_kernel_forward.wgsl` and `sig_kernel_backward.wgsl`.
//!
//! The caller uploads each transformed path once ([`Pairs`]); per chunk of pairs, one submission
//! computes the pairs' base Gram matrices `G` on the device (one invocation per cell), solves the
//! refined PDE of every pair (one workgroup per pair) and, backward, its adjoint down to `dF/dG`,
//! which the caller chains to the paths with the CPU's static-kernel code. Chunks respect the
//! adapter's limits (workgroups per dimension, binding and buffer sizes, `u32` indices); the sweep
//! over the grid's anti-diagonals is cut into windows of diagonals, one dispatch each, sized by the
//! adapter's loop budget (see `gpu::sig`).

use super::chunks::{bytes_of, chunk_paths, loop_cost, open, read_into, to_u32, PerPath, STORAGE};
use super::context::Context;
use super::kernels::{
    GramParams, Precision, SigKernelParams, SIG_KERNEL_BACKWARD, SIG_KERNEL_CHAIN,
    SIG_KERNEL_FORWARD, SIG_KERNEL_GRAM, WORKGROUP_SIZE,
};
use super::program::{set_last_report, submit, take, upload, Dispatch, GpuReport, Pooled};
use super::GpuDevice;
use crate::{Error, Result, Scalar};
use std::sync::Arc;

/// How a base Gram matrix is formed from two transformed paths (`sig_kernel_gram.wgsl`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum StaticGram<T> {
    /// `κ(p, q) = c·<p, q>`, from increments.
    Bilinear(T),
    /// `κ(p, q) = exp(−|p − q|² / σ)`, from points; the value is `1/σ`.
    Rbf(T),
}

/// The pairs of one call: the transformed paths of its two sides, one row each (`n·dim`
/// increments for a bilinear kernel, `(n + 1)·dim` points otherwise, `n` the side's increments),
/// and which paths pair `i` joins.
pub(crate) struct Pairs<'a, T> {
    pub gram: StaticGram<T>,
    pub a: &'a [T],
    pub b: &'a [T],
    pub dim: usize,
    pub pair: &'a (dyn Fn(usize) -> (usize, usize) + Sync),
}

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

/// Loop iterations of one diagonal of the PDE kernels, as `gpu::sig`'s model counts them (the outer
/// trip, entering the strip loop, its trips for workgroups of `wg` invocations, and one of margin),
/// and the windows `[d_begin, d_end)` of diagonals, one per dispatch, that keep every dispatch within
/// the budget, `fixed` iterations per dispatch being spent outside the sweep.
fn windows(
    ctx: &Context,
    rows: usize,
    cols: usize,
    wg: u32,
    fixed: u64,
) -> Result<Vec<(u32, u32)>> {
    let diagonals = to_u32("grid diagonals", rows + cols - 1)?;
    let strips = ((rows.min(cols) - 1) / wg as usize + 1) as u64;
    let per_diagonal = 2 + loop_cost::ENTRY + strips;
    let spare = ctx.loop_budget.saturating_sub(loop_cost::ENTRY + fixed);
    let steps = spare / per_diagonal;
    if steps == 0 {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation and dispatch; one diagonal \
             of this signature-kernel grid needs {per_diagonal}; use the CPU",
            ctx.name, ctx.loop_budget
        )));
    }
    Ok(cut(diagonals, steps))
}

/// Invocations per workgroup of `sig_kernel_forward.wgsl`, and the most rows whose diagonals it and
/// `sig_kernel_backward.wgsl` keep in workgroup memory (their `SHARED_ROWS`).
const FORWARD_WG: u32 = SIG_KERNEL_FORWARD.workgroup_size[0];
pub(crate) const SHARED_ROWS: usize = 512;

/// The windows of a PDE kernel with workgroups of `wg`: with the diagonals in workgroup memory,
/// each dispatch also loads and stores two diagonals (a loop over the rows each).
fn sweep_windows(ctx: &Context, rows: usize, cols: usize, wg: u32) -> Result<Vec<(u32, u32)>> {
    let copies = if rows <= SHARED_ROWS {
        2 * loop_cost::lp(rows.div_ceil(wg as usize) as u64, 0)
    } else {
        0
    };
    windows(ctx, rows, cols, wg, copies)
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

/// Pairs per chunk: what the buffers (`per_pair`) and the dispatch allow, at most `pairs`.
fn chunk_pairs(
    ctx: &Context,
    precision: Precision,
    per_pair: &[PerPath],
    pairs: usize,
) -> Result<usize> {
    Ok(chunk_paths(ctx, precision, per_pair)?
        .min(ctx.limits.max_compute_workgroups_per_dimension as usize)
        .min(pairs))
}

/// What every chunk of a call shares on the device: the two sides' paths, the static kernel's
/// constant and the pipelines.
struct Sides {
    a: Pooled,
    b: Option<Pooled>,
    consts: Pooled,
    gram: Arc<super::context::Pipeline>,
    chain: Arc<super::context::Pipeline>,
    params: GramParams,
}

impl Sides {
    fn upload<T: Scalar>(
        ctx: &Arc<Context>,
        grid: KernelGrid,
        pairs: &Pairs<'_, T>,
        report: &mut GpuReport,
    ) -> Result<Sides> {
        let precision = Precision::of::<T>();
        let max = ctx.limits.max_storage_buffer_binding_size;
        let side = |data: &[T], report: &mut GpuReport| -> Result<Pooled> {
            let bytes = std::mem::size_of_val(data) as u64;
            if bytes > max {
                return Err(Error::Device(format!(
                    "adapter '{}': the paths of one side take {bytes} bytes, more than its largest \
                     binding ({max} bytes)",
                    ctx.name
                )));
            }
            let buf = take(ctx, "paths", bytes, STORAGE, report);
            upload(ctx, &buf, bytemuck::cast_slice(data), report);
            Ok(buf)
        };
        let a = side(pairs.a, report)?;
        let same = std::ptr::eq(pairs.a, pairs.b);
        let b = if same {
            None
        } else {
            Some(side(pairs.b, report)?)
        };
        let (kind, value) = match pairs.gram {
            StaticGram::Bilinear(c) => (0, c),
            StaticGram::Rbf(inv_sigma) => (1, inv_sigma),
        };
        let consts = take(ctx, "consts", precision.size(), STORAGE, report);
        upload(ctx, &consts, &bytes_of(precision, &[value]), report);
        Ok(Sides {
            a,
            b,
            consts,
            gram: ctx.pipeline(&SIG_KERNEL_GRAM, precision)?,
            chain: ctx.pipeline(&SIG_KERNEL_CHAIN, precision)?,
            params: GramParams {
                n1: to_u32("increments", grid.n1)?,
                n2: to_u32("increments", grid.n2)?,
                dim: to_u32("channels", pairs.dim)?,
                kind,
                ..Default::default()
            },
        })
    }

    /// The dispatch writing the Gram matrices of `n` pairs (listed in `pairs`) into `gram`.
    fn dispatch<'a>(
        &'a self,
        n: usize,
        pairs: &'a wgpu::Buffer,
        gram: &'a wgpu::Buffer,
    ) -> Result<Dispatch<'a>> {
        let cells = self.params.n1 as u64 * self.params.n2 as u64;
        let params = GramParams {
            n_pairs: to_u32("chunk", n)?,
            ..self.params
        };
        Ok(Dispatch {
            label: SIG_KERNEL_GRAM.name,
            pipeline: self.gram.clone(),
            params: bytemuck::bytes_of(&params).to_vec(),
            buffers: vec![
                &self.a,
                self.b.as_deref().unwrap_or(&self.a),
                pairs,
                &self.consts,
                gram,
            ],
            workgroups: (n as u64 * cells).div_ceil(WORKGROUP_SIZE as u64),
            workgroup_size: WORKGROUP_SIZE,
        })
    }
}

/// Values per pair of `sig_kernel_chain.wgsl`'s output: the gradient of path a's row, of path b's
/// row, and the kernel.
fn chained_len<T>(grid: KernelGrid, pairs: &Pairs<'_, T>) -> usize {
    let points = matches!(pairs.gram, StaticGram::Rbf(_)) as usize;
    (grid.n1 + points) * pairs.dim + (grid.n2 + points) * pairs.dim + 1
}

impl Sides {
    /// The two dispatches chaining `dgram` (`dF/dG` and the kernel of `n` pairs) to the pairs'
    /// transformed paths, into `out`.
    fn chain_dispatches<'a>(
        &'a self,
        n: usize,
        pairs: &'a wgpu::Buffer,
        dgram: &'a wgpu::Buffer,
        out: &'a wgpu::Buffer,
    ) -> Result<[Dispatch<'a>; 2]> {
        let n_pairs = to_u32("chunk", n)?;
        let side = |side: u32, rows: u32| Dispatch {
            label: SIG_KERNEL_CHAIN.name,
            pipeline: self.chain.clone(),
            params: bytemuck::bytes_of(&GramParams {
                n_pairs,
                side,
                ..self.params
            })
            .to_vec(),
            buffers: vec![
                &self.a,
                self.b.as_deref().unwrap_or(&self.a),
                pairs,
                &self.consts,
                dgram,
                out,
            ],
            workgroups: (n as u64 * (rows + self.params.kind) as u64)
                .div_ceil(WORKGROUP_SIZE as u64),
            workgroup_size: WORKGROUP_SIZE,
        };
        Ok([side(0, self.params.n1), side(1, self.params.n2)])
    }
}

/// What both PDE drivers set up for a call: the context and its report, the pairs per chunk, the
/// sides on the device, the scheme's constants, and a chunk's Gram matrices and diagonal scratch.
struct Call {
    ctx: Arc<Context>,
    precision: Precision,
    report: GpuReport,
    chunk: usize,
    sides: Sides,
    consts: Pooled,
    gram: Pooled,
    scratch: Pooled,
}

impl Call {
    /// Open the call `op` over `count` pairs, whose kernels also bind `extra` buffers per pair.
    fn open<T: Scalar>(
        device: &GpuDevice,
        grid: KernelGrid,
        pairs: &Pairs<'_, T>,
        op: &str,
        count: usize,
        extra: &[PerPath],
        consts: &[T],
    ) -> Result<Call> {
        let precision = Precision::of::<T>();
        let ctx = open(device, precision)?;
        let cells = (grid.n1 * grid.n2) as u64;
        let scratch = 3 * grid.rows() as u64;
        let mut per_pair = vec![
            PerPath {
                what: "base Gram matrix",
                elems: cells,
            },
            PerPath {
                what: "scratch",
                elems: scratch,
            },
        ];
        per_pair.extend(extra.iter().map(|e| PerPath { ..*e }));
        let chunk = chunk_pairs(&ctx, precision, &per_pair, count)?;
        let mut report = GpuReport::new(op);
        let sides = Sides::upload(&ctx, grid, pairs, &mut report)?;
        let size = precision.size();
        let consts_buf = take(
            &ctx,
            "consts",
            consts.len() as u64 * size,
            STORAGE,
            &mut report,
        );
        upload(&ctx, &consts_buf, &bytes_of(precision, consts), &mut report);
        Ok(Call {
            gram: take(
                &ctx,
                "gram",
                chunk as u64 * cells * size,
                STORAGE,
                &mut report,
            ),
            scratch: take(
                &ctx,
                "scratch",
                chunk as u64 * scratch * size,
                STORAGE,
                &mut report,
            ),
            ctx,
            precision,
            report,
            chunk,
            sides,
            consts: consts_buf,
        })
    }

    /// A storage buffer of `elems` values from the pool.
    fn take(&mut self, label: &str, elems: u64) -> Pooled {
        let bytes = elems * self.precision.size();
        take(&self.ctx, label, bytes, STORAGE, &mut self.report)
    }
}

/// Upload the path indices of pairs `first..first + n` (two `u32` per pair).
fn upload_pairs<T>(
    ctx: &Arc<Context>,
    pairs: &Pairs<'_, T>,
    first: usize,
    n: usize,
    report: &mut GpuReport,
) -> Result<Pooled> {
    let mut index = Vec::with_capacity(2 * n);
    for i in first..first + n {
        let (p, q) = (pairs.pair)(i);
        index.extend([to_u32("path index", p)?, to_u32("path index", q)?]);
    }
    let buf = take(ctx, "pairs", 8 * n as u64, STORAGE, report);
    upload(ctx, &buf, bytemuck::cast_slice(&index), report);
    Ok(buf)
}

/// The kernels of the first `out.len()` pairs of `pairs` into `out`. A grid without cells (a path
/// of one point) has the kernel 1.
pub(crate) fn sig_kernel<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    pairs: &Pairs<'_, T>,
    out: &mut [T],
) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    if grid.n1 == 0 || grid.n2 == 0 {
        out.fill(T::one());
        return Ok(());
    }
    let (rows, cols) = (grid.rows(), grid.cols());
    let mut call = Call::open(
        device,
        grid,
        pairs,
        "sig_kernel",
        out.len(),
        &[],
        &consts::<T>(grid),
    )?;
    let windows = sweep_windows(&call.ctx, rows, cols, FORWARD_WG)?;
    let p = base_params(grid)?;
    let (precision, size, chunk) = (call.precision, call.precision.size(), call.chunk);
    let kernels = call.take("kernels", chunk as u64);
    let Call {
        ctx,
        mut report,
        sides,
        consts,
        gram,
        scratch,
        ..
    } = call;
    let forward = ctx.pipeline(&SIG_KERNEL_FORWARD, precision)?;
    for (c, out_chunk) in out.chunks_mut(chunk).enumerate() {
        let n = out_chunk.len();
        let index = upload_pairs(&ctx, pairs, c * chunk, n, &mut report)?;
        let n_pairs = to_u32("chunk", n)?;
        let mut dispatches = vec![sides.dispatch(n, &index, &gram)?];
        dispatches.extend(windows.iter().map(|&(d_begin, d_end)| {
            Dispatch {
                label: SIG_KERNEL_FORWARD.name,
                pipeline: forward.clone(),
                params: bytemuck::bytes_of(&SigKernelParams {
                    n_pairs,
                    d_begin,
                    d_end,
                    ..p
                })
                .to_vec(),
                buffers: vec![&gram, &consts, &kernels, &scratch],
                workgroups: n as u64,
                workgroup_size: FORWARD_WG,
            }
        }));
        let bytes = submit(
            &ctx,
            &dispatches,
            Some((&kernels, n as u64 * size)),
            &mut report,
        )?;
        read_into(precision, &bytes, out_chunk);
    }
    set_last_report(report);
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

/// The gradients of `seeds[i]·k_i` with respect to the transformed paths of each of the first
/// `seeds.len()` pairs of `pairs` (`seeds = dF/dk`): `sink(first, grads)` receives, chunk by chunk in
/// order, per pair the gradient of path a's row (as [`Pairs`] lays rows out), of path b's row, then
/// `k`. A grid without cells has `k = 1` and zero gradients.
///
/// The whole refined grid of each pair is held on the GPU (`rows · cols` values), so one pair must
/// fit in the adapter's largest buffer; chunks are sized so that every buffer does.
pub(crate) fn sig_kernel_backprop<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    pairs: &Pairs<'_, T>,
    seeds: &[T],
    sink: &mut dyn FnMut(usize, &[T]),
) -> Result<()> {
    if seeds.is_empty() {
        return Ok(());
    }
    if grid.n1 == 0 || grid.n2 == 0 {
        let per = chained_len(grid, pairs);
        let mut out = vec![T::zero(); seeds.len() * per];
        for k in out.chunks_exact_mut(per) {
            k[per - 1] = T::one();
        }
        sink(0, &out);
        return Ok(());
    }
    backward_kernel(device, grid, pairs, seeds.len(), Some(seeds), sink)
}

/// The whole PDE grid `K` (`rows × cols`, row-major) of each of the first `count` pairs of `pairs`:
/// `sink(first, grids)` receives them chunk by chunk, in order. The forward phase of
/// `sig_kernel_backward.wgsl`, read back.
pub(crate) fn sig_kernel_grids<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    pairs: &Pairs<'_, T>,
    count: usize,
    sink: &mut dyn FnMut(usize, &[T]),
) -> Result<()> {
    if count == 0 {
        return Ok(());
    }
    if grid.n1 == 0 || grid.n2 == 0 {
        // One row or one column: the boundary, all ones.
        sink(0, &vec![T::one(); count * grid.rows() * grid.cols()]);
        return Ok(());
    }
    backward_kernel(device, grid, pairs, count, None, sink)
}

/// `sig_kernel_backward.wgsl` over `count` pairs: with `seeds`, every phase and
/// `sig_kernel_chain.wgsl`, reading the path gradients and the kernels back; without, the forward
/// phase alone, reading the grids back.
fn backward_kernel<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    pairs: &Pairs<'_, T>,
    count: usize,
    seeds: Option<&[T]>,
    sink: &mut dyn FnMut(usize, &[T]),
) -> Result<()> {
    let op = if seeds.is_some() {
        "sig_kernel_backprop"
    } else {
        "sig_kernel grid"
    };
    let (rows, cols) = (grid.rows(), grid.cols());
    let cells = grid.n1 * grid.n2;
    let points = (rows as u64).saturating_mul(cols as u64);
    let chained_len = chained_len(grid, pairs);
    let extra = [
        PerPath {
            what: "gradient",
            elems: cells as u64 + 1,
        },
        PerPath {
            what: "PDE grid",
            elems: points,
        },
        PerPath {
            what: "path gradients",
            elems: chained_len as u64,
        },
    ];
    let values = backward_consts::<T>(grid);
    let mut call = Call::open(device, grid, pairs, op, count, &extra, &values)?;
    let diagonals = sweep_windows(&call.ctx, rows, cols, WORKGROUP_SIZE)?;
    let reductions = reduce_windows(&call.ctx, grid)?;
    let p = base_params(grid)?;
    let (precision, size, chunk) = (call.precision, call.precision.size(), call.chunk);
    let seeds_buf = call.take("seeds", chunk as u64);
    let grads = call.take("gradients", (chunk * (cells + 1)) as u64);
    let grid_buf = call.take("grid", chunk as u64 * points);
    let chained = call.take("path gradients", (chunk * chained_len) as u64);
    let Call {
        ctx,
        mut report,
        sides,
        consts,
        gram,
        scratch,
        ..
    } = call;
    let backward = ctx.pipeline(&SIG_KERNEL_BACKWARD, precision)?;
    let mut out = Vec::new();
    for c in 0..count.div_ceil(chunk) {
        let first = c * chunk;
        let n = chunk.min(count - first);
        let index = upload_pairs(&ctx, pairs, first, n, &mut report)?;
        if let Some(seeds) = seeds {
            let chunk_seeds = &seeds[first..first + n];
            upload(
                &ctx,
                &seeds_buf,
                &bytes_of(precision, chunk_seeds),
                &mut report,
            );
        }
        let n_pairs = to_u32("chunk", n)?;
        let step = |phase: u32, (d_begin, d_end): (u32, u32)| Dispatch {
            label: SIG_KERNEL_BACKWARD.name,
            pipeline: backward.clone(),
            params: bytemuck::bytes_of(&SigKernelParams {
                n_pairs,
                d_begin,
                d_end,
                phase,
                ..p
            })
            .to_vec(),
            buffers: vec![&gram, &consts, &seeds_buf, &grads, &grid_buf, &scratch],
            workgroups: n as u64,
            workgroup_size: WORKGROUP_SIZE,
        };
        let mut dispatches = vec![sides.dispatch(n, &index, &gram)?];
        dispatches.extend(diagonals.iter().map(|&w| step(0, w)));
        let (read, values) = if seeds.is_some() {
            dispatches.extend(diagonals.iter().rev().map(|&w| step(1, w)));
            dispatches.extend(reductions.iter().map(|&w| step(2, w)));
            dispatches.extend(sides.chain_dispatches(n, &index, &grads, &chained)?);
            (&chained, n * chained_len)
        } else {
            (&grid_buf, n * rows * cols)
        };
        let result = submit(
            &ctx,
            &dispatches,
            Some((read, values as u64 * size)),
            &mut report,
        )?;
        out.clear();
        out.resize(values, T::zero());
        read_into(precision, &result, &mut out);
        sink(first, &out);
    }
    set_last_report(report);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_rows_match_the_shader() {
        for kernel in [&SIG_KERNEL_FORWARD, &SIG_KERNEL_BACKWARD] {
            let line = format!("const SHARED_ROWS: u32 = {SHARED_ROWS}u;");
            assert!(kernel.source.contains(&line), "{}: {line}", kernel.name);
            let diag = format!("array<scalar, {}>", 3 * SHARED_ROWS);
            assert!(kernel.source.contains(&diag), "{}: {diag}", kernel.name);
        }
    }
}
