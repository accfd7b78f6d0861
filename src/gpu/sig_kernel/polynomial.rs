//! pySigLib's polynomial solver on the GPU (`shaders/sig_kernel_polynomial.wgsl`): per chunk of
//! pairs, one submission computes the base Gram matrices on the device (as the finite-difference
//! scheme does), sweeps each pair's cells along anti-diagonals (one workgroup per pair, each row's
//! and column's edge in a buffer) and, for the gradient, sweeps back with the adjoint from every
//! cell's kept incoming edges, then chains `dF/dG` to the paths with `sig_kernel_chain.wgsl`. The
//! sweeps are cut into windows of diagonals, one dispatch each, where the adapter bounds an
//! invocation's loops (lavapipe).

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

/// The windows `[d_begin, d_end)` of the grid's diagonals, one per dispatch, within the adapter's
/// loop budget.
fn windows(ctx: &Context, grid: KernelGrid, size: u64) -> Result<Vec<(u32, u32)>> {
    let diagonals = to_u32("grid diagonals", grid.n1 + grid.n2 - 1)?;
    let strips = ((grid.n1.min(grid.n2) - 1) / WG as usize + 1) as u64;
    let per_diagonal = 2 + loop_cost::ENTRY + strips * (1 + cell_cost(size));
    // The edges' initialisation (and the grid's border) before the first diagonal.
    let longest = (grid.n1.max(grid.n2) as u64 + 1).div_ceil(WG as u64);
    let fixed = 4 * loop_cost::lp(longest, loop_cost::lp(size, 0)) + loop_cost::lp(size, 0);
    let steps = ctx.loop_budget.saturating_sub(loop_cost::ENTRY + fixed) / per_diagonal;
    if steps == 0 {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation and dispatch; one diagonal \
             of this polynomial solve needs {per_diagonal}; use the CPU",
            ctx.name, ctx.loop_budget
        )));
    }
    Ok(cut(diagonals, steps))
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
    let diagonals = windows(&call.ctx, grid, size as u64)?;
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
        let step = |mode: u32, flags: u32, (d_begin, d_end): (u32, u32)| Dispatch {
            label: SIG_KERNEL_POLYNOMIAL.name,
            pipeline: pipeline.clone(),
            params: bytemuck::bytes_of(&PolynomialParams {
                n_pairs,
                d_begin,
                d_end,
                mode,
                flags,
                ..base
            })
            .to_vec(),
            buffers: vec![&gram, &tables, &seeds_buf, &grads, &edges, &kept, &grid_buf],
            workgroups: n as u64,
            workgroup_size: WG,
        };
        let mut dispatches = vec![sides.dispatch(n, &index, &gram)?];
        dispatches.extend(diagonals.iter().map(|&w| step(0, flags & (KEEP | GRID), w)));
        let result = match job {
            Job::Kernels => &grads,
            Job::Grids => &grid_buf,
            Job::Backprop { .. } => {
                dispatches.extend(diagonals.iter().rev().map(|&w| step(1, flags, w)));
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
