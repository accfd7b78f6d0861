//! `sig` and `sig_backprop` on the CPU: Horner chaining forward, the `exp(-z)` reverse sweep backward.

use super::par_rows;
use crate::algebra::{mul_exp, mul_exp_backprop, HornerScratch, Increments};
use crate::layout::TensorShape;
use crate::{Scalar, SigOptions};

/// Everything one thread needs to process paths, allocated once.
struct Workspace<T> {
    horner: HornerScratch<T>,
    z: Vec<T>,
    neg_z: Vec<T>,
    dz: Vec<T>,
    s: Vec<T>,
    g: Vec<T>,
}

impl<T: Scalar> Workspace<T> {
    fn new(shape: &TensorShape) -> Self {
        Workspace {
            horner: HornerScratch::new(shape),
            z: vec![T::zero(); shape.dim],
            neg_z: vec![T::zero(); shape.dim],
            dz: vec![T::zero(); shape.dim],
            s: vec![T::zero(); shape.len()],
            g: vec![T::zero(); shape.len()],
        }
    }
}

/// The signature of one path, written into `out` (levels only).
fn sig_path<T: Scalar>(
    shape: &TensorShape,
    inc: &Increments<T>,
    ws: &mut Workspace<T>,
    out: &mut [T],
) {
    out.fill(T::zero());
    for t in 0..inc.count() {
        inc.fill(t, &mut ws.z);
        mul_exp(shape, out, &ws.z, &mut ws.horner);
    }
}

/// The gradient of one path: walk the segments backwards from the final signature, recovering each
/// prefix as `S ⊗ exp(-z)` instead of storing it.
fn sig_backprop_path<T: Scalar>(
    shape: &TensorShape,
    inc: &Increments<T>,
    sig: &[T],
    sig_derivs: &[T],
    ws: &mut Workspace<T>,
    out: &mut [T],
) {
    out.fill(T::zero());
    ws.s.copy_from_slice(sig);
    ws.g.copy_from_slice(sig_derivs);
    for t in (0..inc.count()).rev() {
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

/// The shape of a batch of paths: `batch` paths of `length` points in `R^dim`, stored contiguously.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PathsShape {
    pub length: usize,
    pub dim: usize,
}

impl PathsShape {
    fn path<'a, T: Scalar>(
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
    par_rows(
        threads,
        out,
        shape.len() + st,
        || Workspace::new(shape),
        |ws, i, row| {
            if st == 1 {
                row[0] = T::one();
            }
            sig_path(shape, &ps.path(paths, i, opts), ws, &mut row[st..]);
        },
    );
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
    par_rows(
        threads,
        out,
        ps.length * ps.dim,
        || Workspace::new(shape),
        |ws, i, grad| {
            let levels = i * row + sig_st..(i + 1) * row;
            sig_backprop_path(
                shape,
                &ps.path(paths, i, opts),
                &sigs[levels.clone()],
                &sig_derivs[levels],
                ws,
                grad,
            );
        },
    );
}
