//! Fewer paths than threads: cut each path in time, compute the pieces' signatures in parallel and
//! join them with Chen's identity (the signature of a concatenation is the tensor product of the
//! pieces' signatures). The join costs `O(pieces · degree · sig_length)`, nothing next to the pieces.
//! Results agree with the unsplit computation to rounding, not bit for bit.
//!
//! The reverse sweep is split the same way: the pieces' signatures are recomputed (the given
//! signature is not needed), the gradient with respect to each piece follows from the product rule
//! of the join, and each piece's sweep runs on its own thread into its own gradient buffer.

use super::par_rows;
use super::sig::{sig_backprop_path, sig_path, PathsShape, Workspace};
use crate::algebra::{tensor_mul, tensor_mul_backprop};
use crate::layout::TensorShape;
use crate::{Scalar, SigOptions};
use std::ops::Range;

/// Shortest piece worth a thread of its own, in increments.
const MIN_PIECE: usize = 256;

/// How many pieces to cut each of `batch` paths of `increments` steps into for `threads` threads.
pub(super) fn pieces(batch: usize, increments: usize, threads: usize) -> usize {
    if batch == 0 || batch >= threads {
        return 1;
    }
    threads.div_ceil(batch).min(increments / MIN_PIECE).max(1)
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

/// Path gradients of a batch into `out` (laid out like the paths), each path cut into `pieces`;
/// `sig_derivs[i]` is item `i`'s gradient with respect to its signature (levels only).
#[allow(clippy::too_many_arguments)]
pub(super) fn sig_backprop<T: Scalar>(
    threads: usize,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    sig_derivs: &[&[T]],
    opts: &SigOptions,
    pieces: usize,
    out: &mut [T],
) {
    let n = shape.len();
    let batch = sig_derivs.len();
    let parts = piece_sigs(threads, shape, paths, ps, opts, batch, pieces);
    // Gradient with respect to each piece: S = P_{p-1} ⊗ S_p with P the prefix products, unwound
    // from the last piece back to the first.
    let mut part_grads = vec![T::zero(); batch * pieces * n];
    let mut prefix = vec![T::zero(); pieces * n];
    let (mut g, mut dprefix) = (vec![T::zero(); n], vec![T::zero(); n]);
    for item in 0..batch {
        let parts = &parts[item * pieces * n..(item + 1) * pieces * n];
        let grads = &mut part_grads[item * pieces * n..(item + 1) * pieces * n];
        prefix[..n].copy_from_slice(&parts[..n]);
        for p in 1..pieces {
            let (done, next) = prefix.split_at_mut(p * n);
            tensor_mul(
                shape,
                &done[(p - 1) * n..],
                &parts[p * n..(p + 1) * n],
                &mut next[..n],
            );
        }
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
    // Each piece's reverse sweep into its own copy of the gradient (pieces share boundary points).
    let grad_len = ps.length * ps.dim;
    let mut piece_grads = vec![T::zero(); batch * pieces * grad_len];
    par_rows(
        threads,
        &mut piece_grads,
        grad_len,
        || Workspace::new(shape),
        |ws, r, grad| {
            let inc = ps.path(paths, r / pieces, opts);
            let steps = piece(inc.count(), pieces, r % pieces);
            let (s, g) = (&parts[r * n..(r + 1) * n], &part_grads[r * n..(r + 1) * n]);
            sig_backprop_path(shape, &inc, steps, s, g, ws, grad);
        },
    );
    for (item, grad) in out.chunks_exact_mut(grad_len).enumerate() {
        grad.fill(T::zero());
        for piece in piece_grads[item * pieces * grad_len..(item + 1) * pieces * grad_len]
            .chunks_exact(grad_len)
        {
            for (o, &x) in grad.iter_mut().zip(piece) {
                *o += x;
            }
        }
    }
}
