//! The batch drivers of `sig` and `sig_backprop` for many small signatures: `L` paths at a time,
//! lane-interleaved (see `algebra::lanes`), with `L` the lane count of the scalar type.

use super::par_rows;
use super::path::Workspace;
use crate::algebra::{
    fill_lanes, lane_count, mul_exp_backprop_lanes, mul_exp_lanes, AlignedVec, Increments,
    LaneScratch,
};
use crate::layout::PathsShape;
use crate::layout::TensorShape;
use crate::{Scalar, SigOptions};

/// What the drivers run for the paths of a last, partial group: one path into one output row.
type OnePath<'a, T> = dyn Fn(&mut Workspace<T>, usize, &mut [T]) + Sync + 'a;

/// Bytes of increments [`LaneWorkspace::fill`] interleaves at once (at most 64 steps): the work
/// of generating them is then one pass along each path, rather than a call per step and lane and
/// short reads from `L` places, and they stay in the L1 cache beside the signatures.
const LANE_STEP_BYTES: usize = 16 * 1024;

/// The CPU workspace for `L` paths at once, lane-interleaved.
struct LaneWorkspace<T, const L: usize> {
    scratch: LaneScratch<T, L>,
    /// Up to `steps` increments, one after the other.
    zs: AlignedVec<T>,
    steps: usize,
    neg_z: AlignedVec<T>,
    dz: AlignedVec<T>,
    s: AlignedVec<T>,
    g: AlignedVec<T>,
    /// The shape one degree lower.
    lower: TensorShape,
}

impl<T: Scalar, const L: usize> LaneWorkspace<T, L> {
    fn new(shape: &TensorShape) -> Self {
        let zero = |n: usize| AlignedVec::zeroed(n * L);
        let steps = (LANE_STEP_BYTES / (shape.dim * L * std::mem::size_of::<T>())).clamp(1, 64);
        LaneWorkspace {
            scratch: LaneScratch::new(shape),
            zs: zero(shape.dim * steps),
            steps,
            neg_z: zero(shape.dim),
            dz: zero(shape.dim),
            s: zero(shape.len()),
            g: zero(shape.len()),
            lower: shape.lower(),
        }
    }

    /// Interleave increments `steps` of every lane's path into `zs`; returns the length written.
    fn fill(&mut self, incs: &[Increments<T>; L], steps: std::ops::Range<usize>) -> usize {
        let dl = self.neg_z.len();
        let zs = &mut self.zs[..steps.len() * dl];
        fill_lanes(incs, steps, zs);
        zs.len()
    }
}

/// The lanes a batch is computed with, if any: the widest group, of [`lane_count`] or 8 paths,
/// whose signatures fit `limit` bytes. Lanes load two vectors per multiply-add where the one-path
/// rows broadcast one, so they pay only while a group's signatures stay in the L1 cache. The
/// reverse sweep's row loops are weaker, so it takes lanes up to a larger size (measured: docs/PERFORMANCE.md, *CPU kernel choices*).
pub(super) fn lanes_for<T>(shape: &TensorShape, batch: usize, backward: bool) -> Option<usize> {
    let limit = if backward {
        MAX_LANE_SIG_BYTES
    } else {
        MAX_LANE_SIG_BYTES / 2
    };
    let bytes = |l: usize| shape.len() * l * std::mem::size_of::<T>();
    [lane_count::<T>(), 8]
        .into_iter()
        .find(|&l| batch >= l && shape.degree > 0 && bytes(l) <= limit)
}

/// The largest lane group's signatures (one per lane), in bytes, that [`lanes_for`] allows.
const MAX_LANE_SIG_BYTES: usize = 32 * 1024;

/// A bound on one thread's lane workspace: the chains, ping and pong of [`LaneScratch`] (at most
/// three lane groups' signatures), the sweep's `s` and `g` (two more) and the interleaved steps.
pub(super) const LANE_WORKSPACE_BOUND: usize = 5 * MAX_LANE_SIG_BYTES + LANE_STEP_BYTES;

/// Signatures of a batch into `out`, `lanes` paths at a time.
#[allow(clippy::too_many_arguments)]
pub(super) fn sig<T: Scalar>(
    lanes: usize,
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    opts: &SigOptions,
    out: &mut [T],
    one_path: &OnePath<T>,
) {
    match lanes {
        16 => sig_groups::<T, 16>(threads, shape, paths, ps, opts, out, one_path),
        _ => sig_groups::<T, 8>(threads, shape, paths, ps, opts, out, one_path),
    }
}

fn sig_groups<T: Scalar, const L: usize>(
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    opts: &SigOptions,
    out: &mut [T],
    one_path: &OnePath<T>,
) {
    let st = opts.scalar_term as usize;
    let row = shape.len() + st;
    by_groups::<T, L, _>(threads, shape, out, row, one_path, |lw, first, rows| {
        let incs = std::array::from_fn(|l| ps.path(paths, first + l, opts));
        sig_group(shape, &incs, st, lw, rows);
    });
}

/// `f(workspace, first path, rows)` for each whole group of `L` rows of `row` values in `out`, on
/// `threads` threads; the rows of a last, partial group go to `one_path` one by one.
fn by_groups<T: Scalar, const L: usize, F>(
    threads: usize,
    shape: &TensorShape,
    out: &mut [T],
    row: usize,
    one_path: &OnePath<T>,
    f: F,
) where
    F: Fn(&mut LaneWorkspace<T, L>, usize, &mut [T]) + Sync + Send,
{
    let init = || (Workspace::new(shape), LaneWorkspace::<T, L>::new(shape));
    par_rows(threads, out, row * L, init, |(ws, lw), group, rows| {
        let first = group * L;
        if rows.len() < row * L {
            for (r, one) in rows.chunks_exact_mut(row).enumerate() {
                one_path(ws, first + r, one);
            }
        } else {
            f(lw, first, rows);
        }
    });
}

/// Signatures of `L` paths into `rows` (`L` rows of `st + shape.len()`).
fn sig_group<T: Scalar, const L: usize>(
    shape: &TensorShape,
    incs: &[Increments<T>; L],
    st: usize,
    lw: &mut LaneWorkspace<T, L>,
    rows: &mut [T],
) {
    lw.s.fill(T::zero());
    let count = incs[0].count();
    for t in (0..count).step_by(lw.steps) {
        let n = lw.fill(incs, t..count.min(t + lw.steps));
        mul_exp_lanes(shape, &mut lw.s, &lw.zs[..n], &mut lw.scratch);
    }
    for (l, row) in rows.chunks_exact_mut(st + shape.len()).enumerate() {
        if st == 1 {
            row[0] = T::one();
        }
        for (c, x) in row[st..].iter_mut().enumerate() {
            *x = lw.s[c * L + l];
        }
    }
}

/// The signatures and their derivatives, rows of `shape.len() + scalar_term`, and the scalar
/// term's width.
type SigRows<'a, T> = (&'a [T], &'a [T], usize);

/// Path gradients of a batch into `out`, `lanes` paths at a time.
#[allow(clippy::too_many_arguments)]
pub(super) fn sig_backprop<T: Scalar>(
    lanes: usize,
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    rows: SigRows<T>,
    opts: &SigOptions,
    out: &mut [T],
    one_path: &OnePath<T>,
) {
    match lanes {
        16 => sig_backprop_groups::<T, 16>(threads, shape, paths, ps, rows, opts, out, one_path),
        _ => sig_backprop_groups::<T, 8>(threads, shape, paths, ps, rows, opts, out, one_path),
    }
}

#[allow(clippy::too_many_arguments)]
fn sig_backprop_groups<T: Scalar, const L: usize>(
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    (sigs, sig_derivs, sig_st): SigRows<T>,
    opts: &SigOptions,
    out: &mut [T],
    one_path: &OnePath<T>,
) {
    let row = shape.len() + sig_st;
    let levels = |i: usize| i * row + sig_st..(i + 1) * row;
    let grad_len = ps.length * ps.dim;
    by_groups::<T, L, _>(
        threads,
        shape,
        out,
        grad_len,
        one_path,
        |lw, first, grads| {
            let incs = std::array::from_fn(|l| ps.path(paths, first + l, opts));
            let s = std::array::from_fn(|l| &sigs[levels(first + l)]);
            let g = std::array::from_fn(|l| &sig_derivs[levels(first + l)]);
            sig_backprop_group(shape, &incs, &s, &g, lw, grads);
        },
    );
}

/// Gradients of `L` paths into `grads` (`L` rows laid out like the paths).
fn sig_backprop_group<T: Scalar, const L: usize>(
    shape: &TensorShape,
    incs: &[Increments<T>; L],
    sigs: &[&[T]; L],
    sig_derivs: &[&[T]; L],
    lw: &mut LaneWorkspace<T, L>,
    grads: &mut [T],
) {
    grads.fill(T::zero());
    // Lanes innermost: whole groups written in turn, not a strided store per value.
    for (c, (s, g)) in
        lw.s.chunks_exact_mut(L)
            .zip(lw.g.chunks_exact_mut(L))
            .enumerate()
    {
        for l in 0..L {
            s[l] = sigs[l][c];
            g[l] = sig_derivs[l][c];
        }
    }
    let grad_len = grads.len() / L;
    let dl = lw.dz.len();
    let mut end = incs[0].count();
    while end > 0 {
        let start = end.saturating_sub(lw.steps);
        lw.fill(incs, start..end);
        for t in (start..end).rev() {
            let z = &lw.zs[(t - start) * dl..(t - start + 1) * dl];
            for (n, &z) in lw.neg_z.iter_mut().zip(z) {
                *n = -z;
            }
            // As for one path: only the levels below the top are stepped back.
            let lower = &lw.lower;
            let s = &mut lw.s[..lower.len() * L];
            mul_exp_lanes(lower, s, &lw.neg_z, &mut lw.scratch);
            lw.dz.fill(T::zero());
            mul_exp_backprop_lanes(shape, &lw.s, z, &mut lw.g, &mut lw.dz, &mut lw.scratch);
            for (l, (inc, grad)) in incs
                .iter()
                .zip(grads.chunks_exact_mut(grad_len))
                .enumerate()
            {
                inc.scatter_strided(t, &lw.dz, L, l, grad);
            }
        }
        end = start;
    }
}
