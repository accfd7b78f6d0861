//! `sig` and `sig_backprop` on the CPU: Horner chaining forward, the `exp(-z)` reverse sweep backward.

use super::{par_rows, split};
use crate::algebra::{
    mul_exp, mul_exp_backprop, mul_exp_backprop_lanes, mul_exp_fused, mul_exp_lanes, HornerScratch,
    Increments, LaneScratch, FUSED_STEPS, LANES,
};
use crate::layout::TensorShape;
use crate::{Scalar, SigOptions};

/// Everything one thread needs to process paths, allocated once.
pub(super) struct Workspace<T> {
    horner: HornerScratch<T>,
    z: Vec<T>,
    /// [`FUSED_STEPS`] increments, one after the other.
    zs: Vec<T>,
    neg_z: Vec<T>,
    dz: Vec<T>,
    s: Vec<T>,
    g: Vec<T>,
}

impl<T: Scalar> Workspace<T> {
    pub(super) fn new(shape: &TensorShape) -> Self {
        Workspace {
            horner: HornerScratch::new(shape),
            z: vec![T::zero(); shape.dim],
            zs: vec![T::zero(); shape.dim * FUSED_STEPS],
            neg_z: vec![T::zero(); shape.dim],
            dz: vec![T::zero(); shape.dim],
            s: vec![T::zero(); shape.len()],
            g: vec![T::zero(); shape.len()],
        }
    }
}

/// The signature of one path, written into `out` (levels only).
pub(super) fn sig_path<T: Scalar>(
    shape: &TensorShape,
    inc: &Increments<T>,
    steps: std::ops::Range<usize>,
    ws: &mut Workspace<T>,
    out: &mut [T],
) {
    out.fill(T::zero());
    let d = shape.dim;
    let mut t = steps.start;
    while t + FUSED_STEPS <= steps.end {
        for (s, z) in ws.zs.chunks_exact_mut(d).enumerate() {
            inc.fill(t + s, z);
        }
        mul_exp_fused(shape, out, &ws.zs, &mut ws.horner);
        t += FUSED_STEPS;
    }
    for t in t..steps.end {
        inc.fill(t, &mut ws.z);
        mul_exp(shape, out, &ws.z, &mut ws.horner);
    }
}

/// The gradient of one path: walk the segments backwards from the final signature, recovering each
/// prefix as `S ⊗ exp(-z)` instead of storing it.
/// `sig` is the signature over `steps` only; gradients are added into `out`.
pub(super) fn sig_backprop_path<T: Scalar>(
    shape: &TensorShape,
    inc: &Increments<T>,
    steps: std::ops::Range<usize>,
    sig: &[T],
    sig_derivs: &[T],
    ws: &mut Workspace<T>,
    out: &mut [T],
) {
    ws.s.copy_from_slice(sig);
    ws.g.copy_from_slice(sig_derivs);
    for t in steps.rev() {
        inc.fill(t, &mut ws.z);
        for (n, &z) in ws.neg_z.iter_mut().zip(&ws.z) {
            *n = -z;
        }
        mul_exp(shape, &mut ws.s, &ws.neg_z, &mut ws.horner);
        ws.dz.fill(T::zero());
        mul_exp_backprop(shape, &ws.s, &ws.z, &mut ws.g, &mut ws.dz, &mut ws.horner);
        inc.scatter(t, &ws.dz, out);
    }
}

/// Bytes of increments [`LaneWorkspace::fill`] interleaves at once (at most 64 steps): the work
/// of generating them is then one pass along each path, rather than a call per step and lane and
/// short reads from eight places, and they stay in the L1 cache beside the signatures.
const LANE_STEP_BYTES: usize = 16 * 1024;

/// [`Workspace`] for [`LANES`] paths at once, lane-interleaved (see `algebra::lanes`).
struct LaneWorkspace<T> {
    scratch: LaneScratch<T>,
    /// Up to `steps` increments, one after the other.
    zs: Vec<T>,
    steps: usize,
    neg_z: Vec<T>,
    dz: Vec<T>,
    s: Vec<T>,
    g: Vec<T>,
}

impl<T: Scalar> LaneWorkspace<T> {
    fn new(shape: &TensorShape) -> Self {
        let zero = |n: usize| vec![T::zero(); n * LANES];
        let steps = (LANE_STEP_BYTES / (shape.dim * LANES * std::mem::size_of::<T>())).clamp(1, 64);
        LaneWorkspace {
            scratch: LaneScratch::new(shape),
            zs: zero(shape.dim * steps),
            steps,
            neg_z: zero(shape.dim),
            dz: zero(shape.dim),
            s: zero(shape.len()),
            g: zero(shape.len()),
        }
    }

    /// Interleave increments `steps` of every lane's path into `zs`; returns the length written.
    fn fill(&mut self, incs: &[Increments<T>], steps: std::ops::Range<usize>) -> usize {
        let dl = self.neg_z.len();
        let zs = &mut self.zs[..steps.len() * dl];
        for (l, inc) in incs.iter().enumerate() {
            inc.fill_lanes(steps.clone(), zs, LANES, l);
        }
        zs.len()
    }
}

/// Whether a batch is computed [`LANES`] paths at a time. Lanes load two vectors per multiply-add
/// where the one-path rows broadcast one, so they pay only while `LANES` signatures stay in the L1
/// cache and the rows are short (measured: 1.3× faster forward at d = 3, N = 4; 3× slower at d = 4,
/// N = 5, whose 8 interleaved signatures no longer fit). The reverse sweep's row loops are weaker,
/// so it takes lanes up to a larger size.
fn use_lanes<T>(shape: &TensorShape, batch: usize, backward: bool) -> bool {
    let limit = if backward { 32 * 1024 } else { 16 * 1024 };
    batch >= LANES && shape.degree > 0 && shape.len() * LANES * std::mem::size_of::<T>() <= limit
}

/// Signatures of `LANES` paths into `rows` (`LANES` rows of `st + shape.len()`).
fn sig_lanes<T: Scalar>(
    shape: &TensorShape,
    incs: &[Increments<T>],
    st: usize,
    lw: &mut LaneWorkspace<T>,
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
            *x = lw.s[c * LANES + l];
        }
    }
}

/// Gradients of `LANES` paths into `grads` (`LANES` rows laid out like the paths).
fn sig_backprop_lanes<T: Scalar>(
    shape: &TensorShape,
    incs: &[Increments<T>],
    sigs: &[&[T]],
    sig_derivs: &[&[T]],
    lw: &mut LaneWorkspace<T>,
    grads: &mut [T],
) {
    grads.fill(T::zero());
    for l in 0..LANES {
        for c in 0..shape.len() {
            lw.s[c * LANES + l] = sigs[l][c];
            lw.g[c * LANES + l] = sig_derivs[l][c];
        }
    }
    let grad_len = grads.len() / LANES;
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
            mul_exp_lanes(shape, &mut lw.s, &lw.neg_z, &mut lw.scratch);
            lw.dz.fill(T::zero());
            mul_exp_backprop_lanes(shape, &lw.s, z, &mut lw.g, &mut lw.dz, &mut lw.scratch);
            for (l, (inc, grad)) in incs
                .iter()
                .zip(grads.chunks_exact_mut(grad_len))
                .enumerate()
            {
                inc.scatter_strided(t, &lw.dz, LANES, l, grad);
            }
        }
        end = start;
    }
}

/// The shape of a batch of paths: `batch` paths of `length` points in `R^dim`, stored contiguously.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PathsShape {
    pub length: usize,
    pub dim: usize,
}

impl PathsShape {
    /// Increments per path after the transforms.
    pub(super) fn increments(&self, opts: &SigOptions) -> usize {
        match self.length {
            0 => 0,
            n if opts.lead_lag => 2 * (n - 1),
            n => n - 1,
        }
    }

    pub(super) fn path<'a, T: Scalar>(
        &self,
        paths: &'a [T],
        i: usize,
        opts: &SigOptions,
    ) -> Increments<'a, T> {
        let n = self.length * self.dim;
        Increments::new(
            &paths[i * n..(i + 1) * n],
            self.dim,
            opts.time_aug,
            opts.lead_lag,
            opts.end_time,
        )
    }
}

/// Signatures of a batch into `out` (`batch` rows of `shape.len() + scalar_term`).
pub(crate) fn sig<T: Scalar>(
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    opts: &SigOptions,
    out: &mut [T],
) {
    let st = opts.scalar_term as usize;
    let row = shape.len() + st;
    let one_path = |ws: &mut Workspace<T>, i: usize, row: &mut [T]| {
        if st == 1 {
            row[0] = T::one();
        }
        let inc = ps.path(paths, i, opts);
        sig_path(shape, &inc, 0..inc.count(), ws, &mut row[st..]);
    };
    let batch = out.len() / row.max(1);
    let pieces = split::pieces(batch, ps.increments(opts), threads);
    if pieces > 1 {
        split::sig(threads, shape, paths, ps, opts, pieces, out);
        return;
    }
    if !use_lanes::<T>(shape, batch, false) {
        par_rows(threads, out, row, || Workspace::new(shape), one_path);
        return;
    }
    let init = || (Workspace::new(shape), LaneWorkspace::new(shape));
    par_rows(threads, out, row * LANES, init, |(ws, lw), group, rows| {
        let first = group * LANES;
        if rows.len() < row * LANES {
            for (r, one) in rows.chunks_exact_mut(row).enumerate() {
                one_path(ws, first + r, one);
            }
            return;
        }
        let incs: Vec<_> = (first..first + LANES)
            .map(|i| ps.path(paths, i, opts))
            .collect();
        sig_lanes(shape, &incs, st, lw, rows);
    });
}

/// Path gradients of a batch into `out` (laid out like `paths`). `sigs` and `sig_derivs` have rows of
/// `shape.len() + sig_st`; the scalar term's derivative is ignored.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sig_backprop<T: Scalar>(
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    sigs: &[T],
    sig_derivs: &[T],
    sig_st: usize,
    opts: &SigOptions,
    out: &mut [T],
) {
    let row = shape.len() + sig_st;
    let grad_len = ps.length * ps.dim;
    let levels = |i: usize| i * row + sig_st..(i + 1) * row;
    let one_path = |ws: &mut Workspace<T>, i: usize, grad: &mut [T]| {
        let inc = ps.path(paths, i, opts);
        let (s, g) = (&sigs[levels(i)], &sig_derivs[levels(i)]);
        grad.fill(T::zero());
        sig_backprop_path(shape, &inc, 0..inc.count(), s, g, ws, grad);
    };
    let batch = out.len() / grad_len.max(1);
    let pieces = split::pieces(batch, ps.increments(opts), threads);
    if pieces > 1 {
        let sigs: Vec<&[T]> = (0..batch).map(|i| &sigs[levels(i)]).collect();
        let derivs: Vec<&[T]> = (0..batch).map(|i| &sig_derivs[levels(i)]).collect();
        split::sig_backprop(
            threads,
            shape,
            paths,
            ps,
            (&sigs, &derivs),
            opts,
            pieces,
            out,
        );
        return;
    }
    if !use_lanes::<T>(shape, batch, true) {
        par_rows(threads, out, grad_len, || Workspace::new(shape), one_path);
        return;
    }
    let init = || (Workspace::new(shape), LaneWorkspace::new(shape));
    par_rows(
        threads,
        out,
        grad_len * LANES,
        init,
        |(ws, lw), group, grads| {
            let first = group * LANES;
            if grads.len() < grad_len * LANES {
                for (r, one) in grads.chunks_exact_mut(grad_len).enumerate() {
                    one_path(ws, first + r, one);
                }
                return;
            }
            let items = first..first + LANES;
            let incs: Vec<_> = items.clone().map(|i| ps.path(paths, i, opts)).collect();
            let s: Vec<&[T]> = items.clone().map(|i| &sigs[levels(i)]).collect();
            let g: Vec<&[T]> = items.map(|i| &sig_derivs[levels(i)]).collect();
            sig_backprop_lanes(shape, &incs, &s, &g, lw, grads);
        },
    );
}
