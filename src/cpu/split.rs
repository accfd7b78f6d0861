//! Fewer paths than threads: cut each path in time, compute the pieces' signatures in parallel and
//! join them with Chen's identity (the signature of a concatenation is the tensor product of the
//! pieces' signatures). The join costs `O(pieces · degree · sig_length)`, nothing next to the pieces.
//! Results agree with the unsplit computation to rounding, not bit for bit.
//!
//! The reverse sweep is split the same way: the pieces' signatures are recomputed (the given
//! signature is not needed), the gradient with respect to each piece follows from the product rule
//! of the join, and each piece's sweep runs on its own thread into its own gradient buffer.

use super::par_rows;
use super::path::{sig_backprop_path, sig_path, Workspace};
use crate::algebra::{sig_inverse, tensor_mul, tensor_mul_backprop};
use crate::layout::PathsShape;
use crate::layout::TensorShape;
use crate::{Scalar, SigOptions};
use rayon::prelude::*;
use std::ops::Range;

/// Shortest piece worth a thread of its own, in increments.
const MIN_PIECE: usize = 256;

/// Least work worth a thread of its own, in increments × signature length (a step costs about one
/// multiply-add per coefficient): waking a pooled thread and joining the pieces cost tens of
/// microseconds, which a smaller piece of a small signature does not repay.
const MIN_PIECE_WORK: usize = 1 << 15;

/// How many pieces to cut each of `batch` paths of `increments` steps into for `threads` threads,
/// for signatures of `sig_len` coefficients.
pub(super) fn pieces(batch: usize, increments: usize, threads: usize, sig_len: usize) -> usize {
    if batch == 0 || batch >= threads {
        return 1;
    }
    let min_steps = MIN_PIECE.max(MIN_PIECE_WORK / sig_len.max(1));
    threads.div_ceil(batch).min(increments / min_steps).max(1)
}

/// The increments of piece `p` of `pieces`.
fn piece(increments: usize, pieces: usize, p: usize) -> Range<usize> {
    increments * p / pieces..increments * (p + 1) / pieces
}

/// Signatures of a batch into `out`, each path cut into `pieces`.
pub(super) fn sig<T: Scalar>(
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    opts: &SigOptions,
    pieces: usize,
    out: &mut [T],
) {
    let (n, st) = (shape.len(), opts.scalar_term as usize);
    let batch = out.len() / (n + st);
    let parts = piece_sigs(threads, shape, paths, ps, opts, batch, pieces);
    let mut joined = vec![T::zero(); n];
    for (item, row) in out.chunks_exact_mut(n + st).enumerate() {
        let parts = &parts[item * pieces * n..(item + 1) * pieces * n];
        let (acc, rest) = row.split_at_mut(st);
        if st == 1 {
            acc[0] = T::one();
        }
        rest.copy_from_slice(&parts[..n]);
        for part in parts[n..].chunks_exact(n) {
            tensor_mul(shape, rest, part, &mut joined);
            rest.copy_from_slice(&joined);
        }
    }
}

/// The signature of every piece: `batch · pieces` rows of `shape.len()`, item-major.
fn piece_sigs<T: Scalar>(
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    opts: &SigOptions,
    batch: usize,
    pieces: usize,
) -> Vec<T> {
    let n = shape.len();
    let mut parts = vec![T::zero(); batch * pieces * n];
    par_rows(
        threads,
        &mut parts,
        n,
        || Workspace::new(shape),
        |ws, r, part| {
            let inc = ps.path(paths, r / pieces, opts);
            sig_path(
                shape,
                &inc,
                piece(inc.count(), pieces, r % pieces),
                ws,
                part,
            );
        },
    );
    parts
}

/// Relative cost of a reverse-sweep step against a forward step, which sets the pieces' lengths so
/// that every thread finishes together (measured: docs/PERFORMANCE.md, *CPU kernel choices*).
const BACKWARD_COST: f64 = 4.5;

/// The increments of piece `p` of `pieces` for the reverse sweep. The last piece needs no forward
/// pass (its sweep starts from the given signature), so it is longer: every other piece costs a
/// forward and a reverse pass, `α(F + B)`, the last `(1 - (P-1)α)·B`, equal for
/// `α = B / (F + P·B)`.
fn backward_piece(increments: usize, pieces: usize, p: usize) -> Range<usize> {
    let alpha = BACKWARD_COST / (1.0 + pieces as f64 * BACKWARD_COST);
    let at = |q: usize| ((increments as f64 * alpha * q as f64) as usize).min(increments);
    if p + 1 == pieces {
        at(p)..increments
    } else {
        at(p)..at(p + 1)
    }
}

/// Path gradients of a batch into `out` (laid out like the paths), each path cut into `pieces`;
/// `sigs[i]`, `sig_derivs[i]` are item `i`'s signature and gradient with respect to it (levels only).
///
/// The last piece's sweep starts at once from the given signature, as the unsplit sweep does. In
/// parallel, the other pieces' signatures are computed; the last piece's follows from them and the
/// given signature (`S_P = (S_1 ⊗ … ⊗ S_{P-1})^{-1} ⊗ S`, the inverse being the cheap antipode); the
/// gradient with respect to each piece comes from the product rule of the join; and each piece's
/// sweep runs into its own gradient window (pieces share boundary points), added up at the end.
#[allow(clippy::too_many_arguments)]
pub(super) fn sig_backprop<T: Scalar>(
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    (sigs, sig_derivs): (&[&[T]], &[&[T]]),
    opts: &SigOptions,
    pieces: usize,
    out: &mut [T],
) {
    let (n, batch, last) = (shape.len(), sig_derivs.len(), pieces - 1);
    let windows: Vec<_> = (0..batch * pieces)
        .map(|r| {
            let inc = ps.path(paths, r / pieces, opts);
            inc.window(backward_piece(inc.count(), pieces, r % pieces))
        })
        .collect();
    // The last piece's window ends with the path, so its sweep writes straight into the output; the
    // other pieces write into windows of their own (neighbours share boundary points), added in
    // afterwards. Fresh memory costs a page fault per page, so the buffers are no larger.
    let grad_len = ps.length * ps.dim;
    let mut last_grads: Vec<&mut [T]> = out
        .chunks_exact_mut(grad_len)
        .enumerate()
        .map(|(item, grad)| {
            grad.fill(T::zero());
            let (window, _, first) = &windows[item * pieces + last];
            debug_assert_eq!(grad_len - first * ps.dim, window.path_len());
            &mut grad[first * ps.dim..]
        })
        .collect();
    let is_other = |r: &usize| r % pieces != last;
    let other_len = (0..batch * pieces)
        .filter(is_other)
        .map(|r| windows[r].0.path_len());
    let mut piece_grads = vec![T::zero(); other_len.sum()];
    let mut other_grads = Vec::new();
    let mut rest = piece_grads.as_mut_slice();
    for r in (0..batch * pieces).filter(is_other) {
        let (grad, tail) = std::mem::take(&mut rest).split_at_mut(windows[r].0.path_len());
        rest = tail;
        other_grads.push(grad);
    }
    let last_sweeps = |grads: &mut [&mut [T]]| {
        grads.par_iter_mut().enumerate().for_each_init(
            || Workspace::new(shape),
            |ws, (item, grad)| {
                let (window, steps, _) = &windows[item * pieces + last];
                let (s, g) = (sigs[item], sig_derivs[item]);
                sig_backprop_path(shape, window, steps.clone(), s, g, ws, grad);
            },
        )
    };
    let other_sweeps = |grads: &mut [&mut [T]]| {
        // Signatures of the pieces before the last.
        let mut parts = vec![T::zero(); batch * pieces * n];
        parts
            .par_chunks_mut(n)
            .enumerate()
            .filter(|(r, _)| r % pieces != last)
            .for_each_init(
                || Workspace::new(shape),
                |ws, (r, part)| {
                    let (window, steps, _) = &windows[r];
                    sig_path(shape, window, steps.clone(), ws, part);
                },
            );
        let part_grads = piece_gradients(shape, &mut parts, sigs, sig_derivs, pieces);
        grads.par_iter_mut().enumerate().for_each_init(
            || Workspace::new(shape),
            |ws, (k, grad)| {
                let r = (k / last) * pieces + k % last;
                let (window, steps) = (&windows[r].0, windows[r].1.clone());
                let (s, g) = (&parts[r * n..(r + 1) * n], &part_grads[r * n..(r + 1) * n]);
                sig_backprop_path(shape, window, steps, s, g, ws, grad);
            },
        );
    };
    // No more threads than pieces.
    let threads = threads.min(batch * pieces).max(1);
    super::pool(threads).install(|| {
        rayon::join(
            || last_sweeps(&mut last_grads),
            || other_sweeps(&mut other_grads),
        )
    });
    let mut at = 0;
    for (item, grad) in out.chunks_exact_mut(grad_len).enumerate() {
        for (window, _, first) in &windows[item * pieces..item * pieces + last] {
            let len = window.path_len();
            let into = &mut grad[first * ps.dim..first * ps.dim + len];
            for (o, &x) in into.iter_mut().zip(&piece_grads[at..at + len]) {
                *o += x;
            }
            at += len;
        }
    }
}

/// Complete `parts` (the pieces' signatures, the last one still empty) with the last piece's
/// signature, and return the gradient with respect to every piece: with `P_p` the prefix products,
/// `S = P_{p-1} ⊗ S_p ⊗ …` is unwound from the last piece back to the first.
fn piece_gradients<T: Scalar>(
    shape: &TensorShape,
    parts: &mut [T],
    sigs: &[&[T]],
    sig_derivs: &[&[T]],
    pieces: usize,
) -> Vec<T> {
    let n = shape.len();
    let mut part_grads = vec![T::zero(); parts.len()];
    let mut prefix = vec![T::zero(); pieces * n];
    let (mut g, mut dprefix, mut inverse) =
        (vec![T::zero(); n], vec![T::zero(); n], vec![T::zero(); n]);
    for (item, (parts, grads)) in parts
        .chunks_exact_mut(pieces * n)
        .zip(part_grads.chunks_exact_mut(pieces * n))
        .enumerate()
    {
        prefix[..n].copy_from_slice(&parts[..n]);
        for p in 1..pieces - 1 {
            let (done, next) = prefix.split_at_mut(p * n);
            tensor_mul(
                shape,
                &done[(p - 1) * n..],
                &parts[p * n..(p + 1) * n],
                &mut next[..n],
            );
        }
        sig_inverse(
            shape,
            &prefix[(pieces - 2) * n..(pieces - 1) * n],
            &mut inverse,
        );
        tensor_mul(shape, &inverse, sigs[item], &mut parts[(pieces - 1) * n..]);
        g.copy_from_slice(sig_derivs[item]);
        for p in (1..pieces).rev() {
            dprefix.fill(T::zero());
            let (before, part) = (&prefix[(p - 1) * n..p * n], &parts[p * n..(p + 1) * n]);
            tensor_mul_backprop(
                shape,
                &g,
                before,
                part,
                &mut dprefix,
                &mut grads[p * n..(p + 1) * n],
            );
            std::mem::swap(&mut g, &mut dprefix);
        }
        grads[..n].copy_from_slice(&g);
    }
    part_grads
}
