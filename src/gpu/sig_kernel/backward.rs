//! `sig_kernel_backprop` and `return_grid` on the GPU: `sig_kernel_backward.wgsl`'s forward sweep
//! storing each pair's grid (whole, or in blocks rebuilt from checkpoint rows), its reverse sweep
//! and its reduction to `dF/dG`, then `sig_kernel_chain.wgsl` down to the paths.

use super::{
    backward_consts, band_windows, bands, base_params, chained_len, polynomial, sweep_pack,
    upload_pairs, Call, KernelGrid, Pairs, BACKWARD_WG,
};
use crate::gpu::chunks::{bytes_of, loop_cost, open, to_u32, PerPath};
use crate::gpu::context::Context;
use crate::gpu::kernels::{Precision, SigKernelParams, SIG_KERNEL_BACKWARD};
use crate::gpu::program::{dst, set_last_report, submit, upload, Dispatch};
use crate::gpu::GpuDevice;
use crate::{Error, Result, Scalar};
use std::sync::atomic::{AtomicUsize, Ordering};

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
