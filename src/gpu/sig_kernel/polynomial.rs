//! pySigLib's polynomial solver on the GPU (`shaders/sig_kernel_polynomial.wgsl`): per chunk of
//! pairs, one submission computes the base Gram matrices on the device (as the finite-difference
//! scheme does), sweeps each pair's cells in bands of rows along the band's anti-diagonals (one
//! workgroup per pair, or several where the grid is one short band; one invocation per row of the
//! band, the edges between rows in workgroup memory) and, for the gradient, sweeps back with the adjoint from every cell's kept incoming
//! edges, then chains `dF/dG` to the paths with `sig_kernel_chain.wgsl`. A band is one dispatch,
//! or several windows of its diagonals where the adapter bounds an invocation's loops (lavapipe).

use super::{chained_len, cut, upload_pairs, Call, KernelGrid, Pairs};
use crate::gpu::chunks::{bytes_of, loop_cost, to_u32, PerPath};
use crate::gpu::context::Context;
use crate::gpu::kernels::{PolynomialParams, Precision, SIG_KERNEL_POLYNOMIAL};
use crate::gpu::program::{dst, set_last_report, submit, upload, Dispatch};
use crate::gpu::GpuDevice;
use crate::{Error, Result, Scalar};

const KEEP: u32 = 1;
const GRID: u32 = 2;
const SEEDED: u32 = 4;
const WG: u32 = SIG_KERNEL_POLYNOMIAL.workgroup_size[0];
/// Values of the shader's `flow`: two diagonals of a band's vertical edges.
const FLOW: usize = 2048;

/// What a call computes for each pair, and what its sink receives per pair.
#[derive(Clone, Copy)]
pub(super) enum Job<'a, T> {
    /// The kernel.
    Kernels,
    /// `K` at every corner, `(n1 + 1) × (n2 + 1)` row-major.
    Grids,
    /// From `dF/dk` per pair (or, `seeded`, `dF/dK` at every corner): the gradients of path a's
    /// row and path b's row, then the kernel, as the finite-difference gradient gives them.
    Backprop { seeds: &'a [T], seeded: bool },
}

/// Loop iterations of one cell of either sweep for edges of `size` coefficients: its loops over
/// the coefficients (the double ones bounded by `size²`).
fn cell_cost(size: u64) -> u64 {
    let lp = loop_cost::lp;
    3 * lp(size, 0) + 2 * lp(size, lp(size, 0))
}

/// The most rows of a band for edges of `size` coefficients: one invocation each, and two diagonals
/// of their vertical edges in `flow`.
fn band_rows(size: usize) -> usize {
    (WG as usize).min(FLOW / (2 * size))
}

/// Pairs per workgroup for `n1` rows of cells and edges of `size` coefficients: where the grid is
/// one band, as many as fit (a power of two, each pair's rows on its `WG / pack` invocations and its
/// two diagonals of edges in `flow`); else 1.
pub(crate) fn pack(n1: usize, size: usize) -> usize {
    if n1 > band_rows(size) {
        return 1;
    }
    let mut pack = WG as usize / n1.next_power_of_two();
    while pack > 1 && pack * 2 * n1 * size > FLOW {
        pack /= 2;
    }
    pack
}

/// One dispatch of a sweep: the band's rows `b0 ..= b1` and its diagonals `[d_begin, d_end)`.
pub(crate) type Window = (u32, u32, u32, u32);

/// The forward sweep's dispatches over an `n1 × n2` grid of cells: bands of at most `band` rows, top
/// first, each cut into windows of at most `steps` diagonals. The backward sweep runs them in
/// reverse.
pub(crate) fn sweeps(n1: u32, n2: u32, band: u32, steps: u64) -> Vec<Window> {
    let mut out = Vec::new();
    for b0 in (0..n1).step_by(band as usize) {
        let b1 = (b0 + band - 1).min(n1 - 1);
        for (d_begin, d_end) in cut(b1 - b0 + n2, steps) {
            out.push((b0, b1, d_begin, d_end));
        }
    }
    out
}

/// The forward sweep's dispatches for edges of `size` coefficients and `pack` pairs per workgroup,
/// within the adapter's loop budget.
fn windows(ctx: &Context, grid: KernelGrid, size: usize, pack: usize) -> Result<Vec<Window>> {
    let (n1, n2) = (
        to_u32("increments", grid.n1)?,
        to_u32("increments", grid.n2)?,
    );
    let per_diagonal = 2 + cell_cost(size as u64);
    // Entering the diagonals' loop, the row's edge read back, and the grid's border (first band,
    // each pair's on its WG / pack invocations).
    let border = (grid.n1.max(grid.n2) as u64 + 1).div_ceil((WG as usize / pack) as u64);
    let fixed = 2 * loop_cost::ENTRY + loop_cost::lp(size as u64, 0) + 2 * loop_cost::lp(border, 0);
    let steps = ctx.loop_budget.saturating_sub(fixed) / per_diagonal;
    if steps == 0 {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation and dispatch; one diagonal \
             of this polynomial solve needs {per_diagonal}; use the CPU",
            ctx.name, ctx.loop_budget
        )));
    }
    Ok(sweeps(n1, n2, band_rows(size) as u32, steps))
}

/// The polynomial solver over the first `count` pairs of `pairs` (edges of `size` coefficients,
/// `pairs.tables` its coefficient tables): `sink(first, values)` receives, chunk by chunk in order,
/// what `job` asks for. The grid has at least one cell.
pub(super) fn run<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    size: usize,
    pairs: &Pairs<'_, T>,
    count: usize,
    job: Job<'_, T>,
    sink: &mut dyn FnMut(usize, &[T]),
) -> Result<()> {
    let (n1, n2) = (grid.n1, grid.n2);
    let (cells, corners) = (n1 * n2, (n1 + 1) * (n2 + 1));
    let (op, per_pair, flags) = match job {
        Job::Kernels => ("sig_kernel", 1, 0),
        Job::Grids => ("sig_kernel grid", corners, GRID),
        Job::Backprop { seeded, .. } => (
            "sig_kernel_backprop",
            chained_len(grid, pairs),
            KEEP | if seeded { SEEDED } else { 0 },
        ),
    };
    let seeds_per_pair = match job {
        Job::Backprop { seeded: true, .. } => corners,
        _ => 1,
    };
    let backward = matches!(job, Job::Backprop { .. });
    // The kernels alone come back one per pair; the gradient's follow each pair's `dF/dG`.
    let (k_stride, k_at) = if backward { (cells + 1, cells) } else { (1, 0) };
    // Each buffer's values per pair (none where this job leaves it unused).
    let sizes = [
        ("base Gram matrix", cells),
        ("seeds", seeds_per_pair),
        ("gradients", k_stride),
        ("edges", 2 * (n1 + n2) * size),
        ("kept edges", if backward { 2 * cells * size } else { 0 }),
        (
            "grid",
            if matches!(job, Job::Grids) {
                corners
            } else {
                0
            },
        ),
        ("path gradients", if backward { per_pair } else { 0 }),
    ];
    let extra = sizes.map(|(what, elems)| PerPath {
        what,
        elems: elems as u64,
    });
    let mut call = Call::open(device, grid, pairs, op, count, &extra, pairs.tables)?;
    let pack = pack(n1, size);
    let sweep = windows(&call.ctx, grid, size, pack)?;
    let chunk = call.chunk;
    let [gram, seeds_buf, grads, edges, kept, grid_buf, chained] =
        sizes.map(|(what, elems)| call.take(what, (chunk * elems).max(1) as u64));
    let Call {
        ctx,
        mut report,
        sides,
        consts: tables,
        ..
    } = call;
    let precision = Precision::of::<T>();
    let pipeline = ctx.pipeline(&SIG_KERNEL_POLYNOMIAL, precision)?;
    let base = PolynomialParams {
        pack: pack as u32,
        n1: to_u32("increments", n1)?,
        n2: to_u32("increments", n2)?,
        size: to_u32("order", size)?,
        k_stride: to_u32("cells", k_stride)?,
        k_at: to_u32("cells", k_at)?,
        ..Default::default()
    };
    let mut out = Vec::new();
    for first in (0..count).step_by(chunk) {
        let n = chunk.min(count - first);
        let index = upload_pairs(&ctx, pairs, first, n, &mut report)?;
        if let Job::Backprop { seeds, .. } = job {
            let s = &seeds[first * seeds_per_pair..(first + n) * seeds_per_pair];
            upload(&ctx, &seeds_buf, &bytes_of(precision, s), &mut report);
        }
        let n_pairs = to_u32("chunk", n)?;
        let step = |mode: u32, flags: u32, (b0, b1, d_begin, d_end): Window| Dispatch {
            label: SIG_KERNEL_POLYNOMIAL.name,
            pipeline: pipeline.clone(),
            params: bytemuck::bytes_of(&PolynomialParams {
                n_pairs,
                d_begin,
                d_end,
                mode,
                flags,
                b0,
                b1,
                ..base
            })
            .to_vec(),
            buffers: vec![&gram, &tables, &seeds_buf, &grads, &edges, &kept, &grid_buf],
            workgroups: n.div_ceil(pack) as u64,
            workgroup_size: WG,
        };
        let mut dispatches = vec![sides.dispatch(n, &index, &gram)?];
        dispatches.extend(sweep.iter().map(|&w| step(0, flags & (KEEP | GRID), w)));
        let result = match job {
            Job::Kernels => &grads,
            Job::Grids => &grid_buf,
            Job::Backprop { .. } => {
                dispatches.extend(sweep.iter().rev().map(|&w| step(1, flags, w)));
                dispatches.extend(sides.chain_dispatches(n, &index, &grads, &chained)?);
                &chained
            }
        };
        out.clear();
        out.resize(n * per_pair, T::zero());
        submit(
            &ctx,
            &dispatches,
            Some((result, dst(&mut out))),
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

    /// Packed pairs fit the workgroup and `flow`; taller grids run one pair per workgroup.
    #[test]
    fn packs_fit_the_workgroup_and_flow() {
        assert_eq!(
            (pack(31, 9), pack(5, 3), pack(64, 9), pack(65, 3)),
            (2, 8, 1, 1)
        );
        for size in [1, 3, 9, 17, 65] {
            for n1 in 1..=band_rows(size) {
                let pack = pack(n1, size);
                assert!(pack.is_power_of_two() && pack * n1.next_power_of_two() <= WG as usize);
                assert!(
                    pack * 2 * n1 * size <= FLOW,
                    "{n1} rows, size {size}: {pack}"
                );
            }
        }
    }

    /// The shader's `flow` holds two diagonals of a band's edges at every order.
    #[test]
    fn bands_fit_the_shaders_flow() {
        let flow = format!("var<workgroup> flow: array<scalar, {FLOW}>;");
        assert!(SIG_KERNEL_POLYNOMIAL.source.contains(&flow), "{flow}");
        assert_eq!(band_rows(9), WG as usize);
        for size in 1..=65 {
            let rows = band_rows(size);
            assert!(
                rows >= 1 && 2 * rows * size <= FLOW,
                "size {size}: {rows} rows"
            );
        }
    }

    /// Every cell is on exactly one diagonal of one dispatch, bands top first and windows in order.
    #[test]
    fn sweeps_cover_every_cell_once() {
        for (n1, n2, band, steps) in [(5, 4, 2, 2), (1, 7, 64, 3), (130, 3, 64, 50), (9, 9, 4, 1)] {
            let mut seen = vec![0; (n1 * n2) as usize];
            let mut last = (0, 0);
            for (b0, b1, d_begin, d_end) in sweeps(n1, n2, band, steps) {
                assert!(b1 - b0 < band && d_end - d_begin <= steps as u32);
                assert!((b0, d_begin) >= last);
                last = (b0, d_end);
                for t in d_begin..d_end {
                    for i in b0..=b1 {
                        let j = t as i64 - (i - b0) as i64;
                        if (0..n2 as i64).contains(&j) {
                            seen[(i * n2) as usize + j as usize] += 1;
                        }
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{n1} × {n2}, bands of {band}");
        }
    }
}
