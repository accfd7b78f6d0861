//! `sig` and `sig_backprop` on the CPU: the drivers that share a batch's paths out over threads
//! (whole paths, lane groups, or time splits), each path run by `path`.

use super::path::{sig_backprop_path, sig_path, Workspace};
use super::plan::{self, Batch, Plan};
use super::{lanes, par_rows, split};
use crate::layout::{PathsShape, TensorShape};
use crate::{Scalar, SigOptions};

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
    let plan = Plan::choose::<T>(shape, ps, opts, batch, threads, false);
    plan::record(plan);
    match plan.batch {
        Batch::Split(pieces) => split::sig(threads, shape, paths, ps, opts, pieces, out),
        Batch::Lanes(l) => lanes::sig(l, threads, shape, paths, ps, opts, out, &one_path),
        Batch::Rows => par_rows(threads, out, row, || Workspace::new(shape), one_path),
    }
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
    let plan = Plan::choose::<T>(shape, ps, opts, batch, threads, true);
    plan::record(plan);
    if let Batch::Split(pieces) = plan.batch {
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
    match plan.batch {
        Batch::Lanes(l) => {
            let rows = (sigs, sig_derivs, sig_st);
            lanes::sig_backprop(l, threads, shape, paths, ps, rows, opts, out, &one_path);
        }
        _ => par_rows(threads, out, grad_len, || Workspace::new(shape), one_path),
    }
}
