//! `sig_kernel` and its gradient on the GPU: the drivers of `sig_kernel_gram.wgsl`,
//! `sig_kernel_forward.wgsl`, `sig_kernel_backward.wgsl` and `sig_kernel_chain.wgsl`.
//!
//! The caller uploads each transformed path once ([`Pairs`]); per chunk of pairs, one submission
//! solves the refined PDE of every pair (one workgroup per pair, or several pairs per workgroup on
//! grids of one band, in bands of rows) and, backward, its adjoint down to `dF/dG`, chained to the
//! paths on the device. The base Gram matrices `G` come from a pass of one invocation per cell,
//! except where the forward sweep forms them itself (grids of one band). Chunks respect the
//! adapter's limits (workgroups per dimension, binding and buffer sizes, `u32` indices); each band's
//! sweep is cut into windows of diagonals, one dispatch each, sized by the adapter's loop budget
//! (see `gpu::sig`).

use super::chunks::{bytes_of, chunk_paths, loop_cost, open, to_u32, PerPath, STORAGE};
use super::context::Context;
use super::kernels::{
    GramParams, Precision, SigKernelParams, SIG_KERNEL_BACKWARD, SIG_KERNEL_CHAIN,
    SIG_KERNEL_FORWARD, SIG_KERNEL_GRAM, WORKGROUP_SIZE,
};
use super::program::{dst, set_last_report, submit, take, upload, Dispatch, GpuReport, Pooled};
use super::GpuDevice;
use crate::{Error, Result, Scalar};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub(crate) mod polynomial;

/// How a base Gram matrix is formed from two transformed paths (`sig_kernel_gram.wgsl`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum StaticGram<T> {
    /// `κ(p, q) = c·<p, q>`, from increments.
    Bilinear(T),
    /// A point kernel (`shaders/common/point_kernel.wgsl`), from points: its number there and its
    /// constants.
    Points(u32, [T; 4]),
}

impl<T> StaticGram<T> {
    /// The shaders' `kind`: 0 bilinear (rows of increments), 1 a point kernel (rows of points).
    fn kind(&self) -> u32 {
        matches!(self, StaticGram::Points(..)) as u32
    }
}

/// The pairs of one call: the transformed paths of its two sides, one row each (`n·dim`
/// increments for a bilinear kernel, `(n + 1)·dim` points otherwise, `n` the side's increments),
/// and which paths pair `i` joins.
pub(crate) struct Pairs<'a, T> {
    pub gram: StaticGram<T>,
    /// The most pairs per chunk the caller allows (`SigKernelOptions::max_batch`).
    pub max_batch: usize,
    pub a: &'a [T],
    pub b: &'a [T],
    pub dim: usize,
    pub pair: &'a (dyn Fn(usize) -> (usize, usize) + Sync),
    /// The polynomial solver's coefficient tables (`sig_kernel_polynomial.wgsl`'s `tables`), where
    /// the grid has an `order`.
    pub tables: &'a [T],
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
    /// The polynomial solver's order (no refinement), or `None` for the finite-difference scheme.
    pub order: Option<u32>,
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

/// Invocations per workgroup of `sig_kernel_forward.wgsl`.
const FORWARD_WG: u32 = SIG_KERNEL_FORWARD.workgroup_size[0];
/// Invocations per workgroup of `sig_kernel_backward.wgsl`.
const BACKWARD_WG: u32 = SIG_KERNEL_BACKWARD.workgroup_size[0];
/// The most rows of a band of the PDE kernels: one invocation per row, a workgroup per band.
const BAND_ROWS: usize = FORWARD_WG as usize;
const _: () = assert!(BACKWARD_WG as usize == BAND_ROWS);

/// The rows `[lo, hi]` cut into bands of at most `BAND_ROWS` rows, top first: what one dispatch of
/// the PDE kernels' sweeps walks, one invocation per row.
fn bands(lo: usize, hi: usize) -> Vec<(usize, usize)> {
    (lo..=hi)
        .step_by(BAND_ROWS)
        .map(|b0| (b0, (b0 + BAND_ROWS - 1).min(hi)))
        .collect()
}

/// The windows `[d_begin, d_end)` of the diagonals of a band of `band_rows` rows and `cols` columns,
/// one per dispatch of the PDE kernels' sweeps, that keep every dispatch within the adapter's loop
/// budget (`gpu::sig`'s model): `per_diagonal` iterations a diagonal, and per dispatch the two
/// diagonals read back first and stored last, and `fixed` more.
fn band_windows(
    ctx: &Context,
    band_rows: usize,
    cols: usize,
    per_diagonal: u64,
    fixed: u64,
) -> Result<Vec<(u32, u32)>> {
    let diagonals = to_u32("grid diagonals", band_rows - 1 + cols)?;
    let fixed = fixed + 2 * loop_cost::ENTRY + 2 * loop_cost::lp(2, 0);
    let steps = ctx.loop_budget.saturating_sub(fixed) / per_diagonal;
    if steps == 0 {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation and dispatch; one diagonal \
             of this signature-kernel grid needs {per_diagonal}; use the CPU",
            ctx.name, ctx.loop_budget
        )));
    }
    Ok(cut(diagonals, steps))
}

/// What lavapipe counts for one `base_gram` call (shaders/common/pairs.wgsl) of a static kernel of
/// `kind` (0 bilinear) over `dim` channels. It runs both branches of a branch it cannot prove uniform,
/// masked, and counts every loop it enters, so the bilinear form pays for the point kernels' loops
/// too. Measured on lavapipe (a sweep of 65535 / calls iterations failing): about 50 + dim for a
/// bilinear kernel, 100 + 4·dim for RBF, 234 for the polynomial kernel at 8 channels; these bounds
/// sit above.
fn base_gram_cost(kind: u32, dim: u32) -> u64 {
    let dim = dim as u64;
    if kind == 0 {
        56 + 2 * dim
    } else {
        240 + 8 * dim
    }
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
pub(crate) fn base_params(grid: KernelGrid) -> Result<SigKernelParams> {
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

/// Pairs per chunk: what the buffers (`per_pair`) allow, at most `pairs`. (The PDE kernels lay
/// their workgroups out as an (x, y) grid, so the workgroups per dimension do not bound a chunk.)
fn chunk_pairs(
    ctx: &Context,
    precision: Precision,
    per_pair: &[PerPath],
    pairs: usize,
) -> Result<usize> {
    Ok(chunk_paths(ctx, precision, per_pair)?.min(pairs))
}

/// Pairs per workgroup of the PDE kernels' sweeps: where the grid is one band, as many as fit (a
/// power of two, each pair on at least as many invocations as the grid has rows); else 1.
pub(crate) fn sweep_pack(grid: KernelGrid) -> usize {
    let rows = grid.rows();
    if rows > BAND_ROWS {
        return 1;
    }
    BAND_ROWS / rows.next_power_of_two()
}

/// The base Gram matrix of each pair of a chunk, as a buffer entry.
fn base_gram(grid: KernelGrid) -> PerPath {
    PerPath {
        what: "base Gram matrix",
        elems: (grid.n1 * grid.n2) as u64,
    }
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
        let (point_kernel, values) = match pairs.gram {
            StaticGram::Bilinear(c) => (0, [c, T::zero(), T::zero(), T::zero()]),
            StaticGram::Points(kernel, values) => (kernel, values),
        };
        let consts = take(ctx, "consts", 4 * precision.size(), STORAGE, report);
        upload(ctx, &consts, &bytes_of(precision, &values), report);
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
                kind: pairs.gram.kind(),
                point_kernel,
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
    let points = pairs.gram.kind() as usize;
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

/// What the PDE drivers set up for a call: the context and its report, the pairs per chunk, the
/// sides on the device and the scheme's constants.
struct Call {
    ctx: Arc<Context>,
    precision: Precision,
    report: GpuReport,
    chunk: usize,
    sides: Sides,
    consts: Pooled,
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
        let chunk = chunk_pairs(&ctx, precision, extra, count)?.min(pairs.max_batch);
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
    if let Some(order) = grid.order {
        let size = order as usize + 1;
        let job = polynomial::Job::Kernels;
        let count = out.len();
        let mut sink = |first: usize, k: &[T]| out[first..first + k.len()].copy_from_slice(k);
        return polynomial::run(device, grid, size, pairs, count, job, &mut sink);
    }
    let (rows, cols) = (grid.rows(), grid.cols());
    // A grid of one band computes G itself; taller grids read it from a Gram pass.
    let pack = sweep_pack(grid);
    let one_band = rows <= BAND_ROWS;
    // The dispatches: each band's windows of diagonals. Each diagonal and each dispatch's first 8
    // increments form one h each.
    let ctx = open(device, Precision::of::<T>())?;
    let h_cost = base_gram_cost(pairs.gram.kind(), to_u32("channels", pairs.dim)?);
    let mut sweep = Vec::new();
    for band in bands(0, rows - 1) {
        let windows = band_windows(&ctx, band.1 - band.0 + 1, cols, 2 + h_cost, 8 * h_cost)?;
        sweep.extend(windows.into_iter().map(|w| (band, w)));
    }
    // What a sweep carries between its dispatches, per pair (a band's diagonals and last row):
    // nothing where it is one dispatch.
    let carry_len = if sweep.len() > 1 {
        3 * BAND_ROWS + 2 * cols
    } else {
        0
    };
    let mut extra = vec![PerPath {
        what: "sweep carry",
        elems: carry_len as u64,
    }];
    if !one_band {
        extra.push(base_gram(grid));
    }
    let mut call = Call::open(
        device,
        grid,
        pairs,
        "sig_kernel",
        out.len(),
        &extra,
        &consts::<T>(grid),
    )?;
    let p = SigKernelParams {
        dim: call.sides.params.dim,
        kind: call.sides.params.kind,
        point_kernel: call.sides.params.point_kernel,
        pack: pack as u32,
        ..base_params(grid)?
    };
    let (precision, chunk) = (call.precision, call.chunk);
    let kernels = call.take("kernels", chunk as u64);
    let carry = call.take("sweep carry", (chunk * carry_len).max(1) as u64);
    // Where the grid is one band, `gram` is bound but unused: one value.
    let gram_elems = if one_band {
        1
    } else {
        chunk * grid.n1 * grid.n2
    };
    let gram = call.take("gram", gram_elems as u64);
    let Call {
        ctx,
        mut report,
        sides,
        consts,
        ..
    } = call;
    let forward = ctx.pipeline(&SIG_KERNEL_FORWARD, precision)?;
    for (c, out_chunk) in out.chunks_mut(chunk).enumerate() {
        let n = out_chunk.len();
        let index = upload_pairs(&ctx, pairs, c * chunk, n, &mut report)?;
        let n_pairs = to_u32("chunk", n)?;
        let mut dispatches = Vec::new();
        if !one_band {
            dispatches.push(sides.dispatch(n, &index, &gram)?);
        }
        let side_b = sides.b.as_deref().unwrap_or(&sides.a);
        for &((b0, b1), (d_begin, d_end)) in &sweep {
            dispatches.push(Dispatch {
                label: SIG_KERNEL_FORWARD.name,
                pipeline: forward.clone(),
                params: bytemuck::bytes_of(&SigKernelParams {
                    n_pairs,
                    d_begin,
                    d_end,
                    b0: to_u32("grid row", b0)?,
                    b1: to_u32("grid row", b1)?,
                    ..p
                })
                .to_vec(),
                buffers: vec![
                    &sides.a,
                    side_b,
                    &index,
                    &sides.consts,
                    &gram,
                    &consts,
                    &kernels,
                    &carry,
                ],
                workgroups: n.div_ceil(pack) as u64,
                workgroup_size: FORWARD_WG,
            });
        }
        submit(
            &ctx,
            &dispatches,
            Some((&kernels, dst(out_chunk))),
            &mut report,
        )?;
    }
    set_last_report(report);
    Ok(())
}

/// The base cells `[begin, end)` of `sig_kernel_backward.wgsl`'s reduction, per dispatch: all of
/// them at once, one invocation per cell summing its `2^λ1 · 2^λ2` refined cells (refused where one
/// cell alone exceeds the adapter's loop budget).
fn reduce_windows(ctx: &Context, grid: KernelGrid) -> Result<Vec<(u32, u32)>> {
    let cells = to_u32("base cells", grid.n1 * grid.n2)?;
    let per_cell = loop_cost::lp(1 << grid.lam1, loop_cost::lp(1 << grid.lam2, 0));
    if per_cell > ctx.loop_budget {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation and dispatch; one base cell \
             of this signature-kernel grid needs {per_cell}; use the CPU",
            ctx.name, ctx.loop_budget
        )));
    }
    Ok(vec![(0, cells)])
}

/// The gradients of `F` with respect to the transformed paths of each pair of `pairs`, from its
/// seeds: `dF/dk` per pair, or (`seeded`) `dF/dK` at each of the `rows · cols` points of its grid.
/// `sink(first, grads)` receives, chunk by chunk in order, per pair the gradient of path a's row (as
/// [`Pairs`] lays rows out), of path b's row, then `k`. A grid without cells has `k = 1` and zero
/// gradients.
///
/// Each pair's refined grid is held on the GPU whole where it fits the adapter's largest buffer,
/// else in blocks of rows rebuilt from checkpoint rows (one extra forward sweep), as the CPU does.
pub(crate) fn sig_kernel_backprop<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    pairs: &Pairs<'_, T>,
    seeds: &[T],
    seeded: bool,
    sink: &mut dyn FnMut(usize, &[T]),
) -> Result<()> {
    let per = if seeded { grid.rows() * grid.cols() } else { 1 };
    let count = seeds.len() / per;
    if count == 0 {
        return Ok(());
    }
    if grid.n1 == 0 || grid.n2 == 0 {
        let per = chained_len(grid, pairs);
        let mut out = vec![T::zero(); count * per];
        for k in out.chunks_exact_mut(per) {
            k[per - 1] = T::one();
        }
        sink(0, &out);
        return Ok(());
    }
    backward_kernel(device, grid, pairs, count, Some((seeds, seeded)), sink)
}

/// The whole PDE grid `K` (`rows × cols`, row-major) of each of the first `count` pairs of `pairs`:
/// `sink(first, grids)` receives them chunk by chunk, in order. The forward phase of
/// `sig_kernel_backward.wgsl`, read back (block by block where a grid exceeds the largest buffer).
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

/// An upper bound on the grid rows one buffer holds per pair, on top of the adapter's limit (tests
/// lower it to run the checkpointed sweep on small grids).
static MAX_GRID_ROWS: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Hold at most `rows` rows (at least 2) of a pair's PDE grid in one buffer. For tests of the
/// checkpointed reverse sweep; the adapter's limits always apply as well.
#[doc(hidden)]
pub fn set_max_grid_rows(rows: usize) {
    MAX_GRID_ROWS.store(rows.max(2), Ordering::Relaxed);
}

/// How `sig_kernel_backward.wgsl` holds a pair's grid: whole (`step == 0`), or in blocks of rows
/// `[k·step, (k + 1)·step]` rebuilt from the checkpoint rows `step, 2·step, …`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Blocks {
    step: usize,
    rows: usize,
}

impl Blocks {
    /// Whole when `copies` of the grid (K, and K̄ for the gradient) fit one buffer; else blocks of
    /// about `sqrt(rows)` rows (a multiple of `2^λ1`, so that each base row's sub-rows lie in one
    /// block), as large as the buffer needs.
    fn plan(ctx: &Context, precision: Precision, grid: KernelGrid, copies: u64) -> Result<Blocks> {
        let (rows, cols) = (grid.rows(), grid.cols());
        let max_bytes = ctx.max_buffer_bytes();
        let row_bytes = (cols as u64)
            .saturating_mul(precision.size())
            .saturating_mul(copies);
        // Rows one buffer holds, and the rows a block may hold (tests lower it, never below one
        // block of 2^λ1 rows).
        let sub = 1usize << grid.lam1;
        let fit = (max_bytes / row_bytes.max(1)) as usize;
        let held = fit.min(MAX_GRID_ROWS.load(Ordering::Relaxed).max(sub + 1));
        if rows <= held {
            return Ok(Blocks { step: 0, rows });
        }
        let largest = held.saturating_sub(1) / sub * sub;
        // The checkpoints, (rows − 2)/step rows, must fit one buffer too.
        let fewest = (rows - 2).div_ceil(fit.max(1)).next_multiple_of(sub);
        let step = rows
            .isqrt()
            .next_multiple_of(sub)
            .clamp(sub, largest.max(sub))
            .max(fewest);
        if largest == 0 || step > largest {
            return Err(Error::Device(format!(
                "adapter '{}': a block of {sub} rows of this signature-kernel grid ({cols} columns)                  does not fit its largest buffer ({max_bytes} bytes); use the CPU",
                ctx.name
            )));
        }
        Ok(Blocks { step, rows })
    }

    /// The blocks' row ranges `[r0, r1]`, top first.
    fn ranges(&self) -> Vec<(usize, usize)> {
        if self.step == 0 {
            return vec![(0, self.rows - 1)];
        }
        (0..self.rows - 1)
            .step_by(self.step)
            .map(|r0| (r0, (r0 + self.step).min(self.rows - 1)))
            .collect()
    }

    /// Grid values one pair's block buffer holds.
    fn held(&self, cols: usize) -> u64 {
        let rows = if self.step == 0 {
            self.rows
        } else {
            self.step + 1
        };
        rows as u64 * cols as u64
    }

    /// Checkpoint values per pair (at least one, for the binding).
    fn checkpoints(&self, cols: usize) -> u64 {
        let rows = (self.rows - 2).checked_div(self.step).unwrap_or(0);
        rows.max(1) as u64 * cols as u64
    }
}

/// `sig_kernel_backward.wgsl` over `count` pairs: with `seeds` (and whether they are whole grids),
/// every phase and `sig_kernel_chain.wgsl`, reading the path gradients and the kernels back; without,
/// the forward phase alone, reading the grids back.
fn backward_kernel<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    pairs: &Pairs<'_, T>,
    count: usize,
    seeds: Option<(&[T], bool)>,
    sink: &mut dyn FnMut(usize, &[T]),
) -> Result<()> {
    if let Some(order) = grid.order {
        let job = match seeds {
            Some((seeds, seeded)) => polynomial::Job::Backprop { seeds, seeded },
            None => polynomial::Job::Grids,
        };
        return polynomial::run(device, grid, order as usize + 1, pairs, count, job, sink);
    }
    let op = if seeds.is_some() {
        "sig_kernel_backprop"
    } else {
        "sig_kernel grid"
    };
    let (rows, cols) = (grid.rows(), grid.cols());
    let cells = grid.n1 * grid.n2;
    let points = rows * cols;
    let seeded = seeds.is_some_and(|(_, s)| s);
    let seeds_per_pair = if seeded { points } else { 1 };
    let precision = Precision::of::<T>();
    // The gradient stores K̄ beside K.
    let copies = if seeds.is_some() { 2 } else { 1 };
    let blocks = Blocks::plan(&*open(device, precision)?, precision, grid, copies)?;
    let chained_len = chained_len(grid, pairs);
    let extra = [
        ("base Gram matrix", cells as u64),
        ("gradient", cells as u64 + 1),
        ("PDE grid", copies * blocks.held(cols)),
        ("checkpoints", blocks.checkpoints(cols)),
        ("adjoint edge", 2 * cols as u64),
        ("seeds", seeds_per_pair as u64),
        ("path gradients", chained_len as u64),
    ]
    .map(|(what, elems)| PerPath { what, elems });
    let values = backward_consts::<T>(grid);
    let mut call = Call::open(device, grid, pairs, op, count, &extra, &values)?;
    let reductions = reduce_windows(&call.ctx, grid)?;
    // The sweeps pack pairs as the forward kernel does; the reduction runs an invocation per cell.
    let pack = sweep_pack(grid);
    let p = SigKernelParams {
        step: to_u32("checkpoint step", blocks.step)?,
        seeded: seeded as u32,
        pack: pack as u32,
        ..base_params(grid)?
    };
    let chunk = call.chunk;
    let gram = call.take("gram", (chunk * cells) as u64);
    let seeds_buf = call.take("seeds", (chunk * seeds_per_pair) as u64);
    let grads = call.take("gradients", (chunk * (cells + 1)) as u64);
    let grid_buf = call.take("grid", chunk as u64 * copies * blocks.held(cols));
    let ckpt = call.take("checkpoints", chunk as u64 * blocks.checkpoints(cols));
    let edge = call.take("adjoint edge", (chunk * 2 * cols) as u64);
    let chained = call.take("path gradients", (chunk * chained_len) as u64);
    let Call {
        ctx,
        mut report,
        sides,
        consts,
        ..
    } = call;
    let backward = ctx.pipeline(&SIG_KERNEL_BACKWARD, precision)?;
    // Per block: its rows; the forward sweep's and (backward) the reverse sweep's dispatches, each a
    // band and a window of its diagonals, in the order they run; its base cells' windows.
    type Sweep = Vec<((usize, usize), (u32, u32))>;
    let sweep = |lo: usize, hi: usize, reverse: bool| -> Result<Sweep> {
        let mut out = Vec::new();
        for band in bands(lo, hi) {
            let windows = band_windows(&ctx, band.1 - band.0 + 1, cols, 2, 0)?;
            out.extend(windows.into_iter().map(|w| (band, w)));
        }
        if reverse {
            out.reverse();
        }
        Ok(out)
    };
    let mut plan = Vec::new();
    for (r0, r1) in blocks.ranges() {
        let diagonals = sweep(r0, r1, false)?;
        let reverse = sweep(r0 + 1, r1, true)?;
        // The base rows whose sub-rows lie in (r0, r1] (block ends are multiples of 2^λ1).
        let (a0, a1) = (r0 >> grid.lam1, r1 >> grid.lam1);
        let cells_in = |&(b, e): &(u32, u32)| {
            let (lo, hi) = (
                to_u32("cells", a0 * grid.n2).ok()?,
                to_u32("cells", a1 * grid.n2).ok()?,
            );
            let (b, e) = (b.max(lo), e.min(hi));
            (b < e).then_some((b, e))
        };
        let cells: Vec<(u32, u32)> = reductions.iter().filter_map(cells_in).collect();
        plan.push(((r0, r1), diagonals, reverse, cells));
    }
    let mut out = Vec::new();
    for c in 0..count.div_ceil(chunk) {
        let first = c * chunk;
        let n = chunk.min(count - first);
        let index = upload_pairs(&ctx, pairs, first, n, &mut report)?;
        if let Some((seeds, _)) = seeds {
            let chunk_seeds = &seeds[first * seeds_per_pair..(first + n) * seeds_per_pair];
            upload(
                &ctx,
                &seeds_buf,
                &bytes_of(precision, chunk_seeds),
                &mut report,
            );
        }
        let n_pairs = to_u32("chunk", n)?;
        let step = |phase: u32,
                    (r0, r1): (usize, usize),
                    (b0, b1): (usize, usize),
                    (d_begin, d_end): (u32, u32)| {
            Ok(Dispatch {
                label: SIG_KERNEL_BACKWARD.name,
                pipeline: backward.clone(),
                params: bytemuck::bytes_of(&SigKernelParams {
                    n_pairs,
                    d_begin,
                    d_end,
                    phase,
                    r0: to_u32("grid row", r0)?,
                    r1: to_u32("grid row", r1)?,
                    b0: to_u32("grid row", b0)?,
                    b1: to_u32("grid row", b1)?,
                    ..p
                })
                .to_vec(),
                buffers: vec![&gram, &consts, &seeds_buf, &grads, &grid_buf, &ckpt, &edge],
                workgroups: if phase == 2 {
                    n as u64 * (d_end - d_begin).div_ceil(BACKWARD_WG) as u64
                } else {
                    n.div_ceil(pack) as u64
                },
                workgroup_size: BACKWARD_WG,
            })
        };
        let forward = |(rows, diagonals, ..): &(_, Sweep, Sweep, _)| -> Result<Vec<Dispatch<'_>>> {
            diagonals
                .iter()
                .map(|&(band, w)| step(0, *rows, band, w))
                .collect()
        };
        let mut dispatches = vec![sides.dispatch(n, &index, &gram)?];
        let Some(_) = seeds else {
            // The grids, block by block (one block: the whole grid in one submission).
            out.clear();
            out.resize(n * points, T::zero());
            for (k, b) in plan.iter().enumerate() {
                dispatches.extend(forward(b)?);
                let (r0, r1) = b.0;
                let held = (r1 - r0 + 1) * cols;
                let mut block = vec![T::zero(); n * held];
                submit(
                    &ctx,
                    &dispatches,
                    Some((&*grid_buf, dst(&mut block))),
                    &mut report,
                )?;
                dispatches.clear();
                // Each block's first row is the previous block's last.
                let skip = usize::from(k > 0);
                for (pair, rows_of) in block.chunks_exact(held).enumerate() {
                    let at = pair * points + (r0 + skip) * cols;
                    out[at..at + held - skip * cols].copy_from_slice(&rows_of[skip * cols..]);
                }
            }
            sink(first, &out);
            continue;
        };
        if plan.len() > 1 {
            // The checkpoints: a forward sweep block by block.
            for b in &plan {
                dispatches.extend(forward(b)?);
            }
        }
        for b in plan.iter().rev() {
            let (rows_of, _, reverse, cells) = b;
            dispatches.extend(forward(b)?);
            for &(band, w) in reverse {
                dispatches.push(step(1, *rows_of, band, w)?);
            }
            for &w in cells {
                dispatches.push(step(2, *rows_of, (0, 0), w)?);
            }
        }
        dispatches.extend(sides.chain_dispatches(n, &index, &grads, &chained)?);
        let values = n * chained_len;
        out.clear();
        out.resize(values, T::zero());
        submit(
            &ctx,
            &dispatches,
            Some((&chained, dst(&mut out))),
            &mut report,
        )?;
        sink(first, &out);
    }
    set_last_report(report);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both kernels keep a band's last three diagonals in workgroup memory, one slot per row.
    #[test]
    fn band_rows_match_the_shaders() {
        for kernel in [&SIG_KERNEL_FORWARD, &SIG_KERNEL_BACKWARD] {
            let wg = format!("const WG: u32 = {BAND_ROWS}u;");
            assert!(kernel.source.contains(&wg), "{}: {wg}", kernel.name);
            let diag = format!("array<scalar, {}>", 3 * BAND_ROWS);
            assert!(kernel.source.contains(&diag), "{}: {diag}", kernel.name);
        }
    }

    /// More pairs than one dimension of workgroups holds (65 535) in one chunk: the PDE kernels lay
    /// their workgroups out as an (x, y) grid (the gradient's reduction and the polynomial solver
    /// run one pair per workgroup) and agree with the CPU. Here, not in the GPU suite, because the
    /// suite lowers the pairs per chunk for the whole process.
    #[test]
    fn more_pairs_than_one_workgroup_dimension() {
        use crate::{sig_kernel_backprop, Device, KernelSolver, SigKernelOptions};
        use ndarray::{Array1, Array3};
        if crate::gpu::adapters().adapters.is_empty() {
            assert!(
                std::env::var("ROUGHSIG_REQUIRE_GPU").as_deref() != Ok("1"),
                "ROUGHSIG_REQUIRE_GPU=1 but no GPU adapter was found"
            );
            return;
        }
        let n = 70_000;
        let mut uniform = crate::gpu::mirror::uniform(3);
        let mut rand = || (uniform() * 0.5) as f32;
        let x = Array3::from_shape_simple_fn((n, 2, 1), &mut rand);
        let y = Array3::from_shape_simple_fn((n, 3, 1), &mut rand);
        let ds = Array1::<f32>::ones(n).into_dyn();
        let polynomial = SigKernelOptions::default().solver(KernelSolver::Polynomial { order: 4 });
        for opts in [SigKernelOptions::default(), polynomial] {
            let on_gpu = opts.clone().device(Device::Gpu(None));
            let (gx, gy) = sig_kernel_backprop(ds.view(), x.view(), y.view(), &on_gpu).unwrap();
            let report = crate::gpu::last_gpu_report().expect("a GPU call reports");
            assert_eq!(report.submissions, 1, "{report:?}");
            let on_cpu = opts.device(Device::Cpu);
            let (wx, wy) = sig_kernel_backprop(ds.view(), x.view(), y.view(), &on_cpu).unwrap();
            for (got, want) in [(&gx, &wx), (&gy, &wy)] {
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn bands_cover_the_rows_once() {
        let wg = BAND_ROWS;
        assert_eq!(bands(0, 5), vec![(0, 5)]);
        assert_eq!(bands(3, 3), vec![(3, 3)]);
        assert_eq!(
            bands(1, 2 * wg + 1),
            vec![(1, wg), (wg + 1, 2 * wg), (2 * wg + 1, 2 * wg + 1)]
        );
    }
}
