//! Signature kernels of ragged batches: the pairs, the Gram matrices and their gradients.
//!
//! Without time augmentation, a padded step has no increment, so every static kernel's second
//! difference over it is zero and the PDE passes the grid on unchanged: the kernel of padded paths
//! is the kernel of their own points, which is what is computed (equal to the padded result up to
//! the rounding of the zero terms the padding adds). With time augmentation the time channel runs
//! on over the padding and changes the kernel, and with `return_grid` the grid has the padded shape:
//! then the paths are padded to the full length and computed as they are.
//!
//! On the CPU every pair (or a Gram block of [`CPU_GRAM_GROUP`] × [`CPU_GRAM_GROUP`] paths sorted
//! by length) runs on one thread at its own lengths; on a GPU a few large groups, each padded to its
//! longest path, run in turn.

use super::{check_lengths, padded, run, shaped, Cut, GROUPS_MAX, GROUP_MIN};
use crate::api::{
    sig_kernel, sig_kernel_backprop, sig_kernel_gram, sig_kernel_gram_backprop, sig_kernel_gram_sym,
};
use crate::options::Execution;
use crate::{Error, Result, Scalar, SigKernelOptions};
use ndarray::{Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewD, Axis, Ix3};
use std::sync::Mutex;

/// Paths a side of a Gram block has on the CPU.
const CPU_GRAM_GROUP: usize = 16;

/// Groups a side of the Gram matrix is cut into where blocks run one after the other.
const GRAM_GROUPS_MAX: usize = 4;

/// The signature kernels `k(x_i, y_i)` of paired ragged batches: `x_i` is the first `x_lengths[i]`
/// points of `x[i]` (`(batch, L1, d)`), `y_i` the first `y_lengths[i]` of `y[i]` (`(batch, L2, d)`).
/// Equal to [`sig_kernel`] of the batches padded by repeating each path's last point (up to rounding;
/// see [`crate::sig_ragged`] for the padding), but the padded steps are not computed unless time
/// augmentation or `return_grid` need them. Output `(batch,)`, or with `return_grid` the padded
/// pairs' grids.
///
/// ```
/// use roughsig::ndarray::{array, s};
/// use roughsig::{sig_kernel, sig_kernel_ragged, SigKernelOptions};
/// let x = array![[[0.0, 0.0], [1.0, 2.0], [5.0, 5.0]], [[1.0, 1.0], [2.0, 0.0], [3.0, 3.0]]];
/// let y = array![[[0.0, 1.0], [2.0, 2.0]], [[0.0, 0.0], [1.0, 0.0]]];
/// let opts = SigKernelOptions::default();
/// let k = sig_kernel_ragged(x.view(), &[2, 3], y.view(), &[2, 1], &opts)?;
/// let first: f64 = sig_kernel(x.slice(s![0, ..2, ..]), y.slice(s![0, .., ..]), &opts)?[[]];
/// assert!((k[[0]] - first).abs() < 1e-12);
/// assert_eq!(k[[1]], 1.0); // a path of one point has the trivial signature
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig_kernel_ragged<T: Scalar>(
    x: ArrayView3<'_, T>,
    x_lengths: &[usize],
    y: ArrayView3<'_, T>,
    y_lengths: &[usize],
    options: &SigKernelOptions,
) -> Result<ArrayD<T>> {
    let (sx, sy) = pair(x, x_lengths, y, y_lengths)?;
    if pads_fully(options) {
        return sig_kernel(sx.full().view(), sy.full().view(), options);
    }
    let solves = if options.normalize { 3 } else { 1 };
    let work = pair_work(&sx, &sy, options, solves);
    let results = run::<T, _, _>(&options.exec, work, pairs(&sx, &sy), |group, exec| {
        sig_kernel(
            sx.gather(group).view(),
            sy.gather(group).view(),
            &on(options, exec),
        )
    })?;
    let mut out = ArrayD::zeros(vec![x_lengths.len()]);
    for (group, k) in results {
        for (&i, &v) in group.iter().zip(k.iter()) {
            out[[i]] = v;
        }
    }
    Ok(out)
}

/// The gradients `(dF/dx, dF/dy)` of a scalar `F` of [`sig_kernel_ragged`], given `derivs = dF/dk`
/// (`(batch,)`, or with `return_grid` the grids' shape). Shapes `(batch, L1, d)` and
/// `(batch, L2, d)`, zero at the ignored points: equal to [`sig_kernel_backprop`] of the padded
/// batches with the padded points' gradients added to each path's last point.
pub fn sig_kernel_backprop_ragged<T: Scalar>(
    derivs: ArrayViewD<'_, T>,
    x: ArrayView3<'_, T>,
    x_lengths: &[usize],
    y: ArrayView3<'_, T>,
    y_lengths: &[usize],
    options: &SigKernelOptions,
) -> Result<(Array3<T>, Array3<T>)> {
    let (sx, sy) = pair(x, x_lengths, y, y_lengths)?;
    let (mut dx, mut dy) = (Array3::zeros(x.dim()), Array3::zeros(y.dim()));
    if pads_fully(options) {
        let (gx, gy) = sig_kernel_backprop(derivs, sx.full().view(), sy.full().view(), options)?;
        sx.fold(dx.view_mut(), &sx.all(), gx)?;
        sy.fold(dy.view_mut(), &sy.all(), gy)?;
        return Ok((dx, dy));
    }
    let batch = x_lengths.len();
    if derivs.shape() != [batch] {
        return Err(Error::invalid(format!(
            "derivs has shape {:?}, expected [{batch}] (one per pair)",
            derivs.shape()
        )));
    }
    let solves = if options.normalize { 9 } else { 3 };
    let work = pair_work(&sx, &sy, options, solves);
    let results = run::<T, _, _>(&options.exec, work, pairs(&sx, &sy), |group, exec| {
        let d = derivs.select(Axis(0), group);
        sig_kernel_backprop(
            d.view(),
            sx.gather(group).view(),
            sy.gather(group).view(),
            &on(options, exec),
        )
    })?;
    for (group, (gx, gy)) in results {
        sx.fold(dx.view_mut(), &group, gx)?;
        sy.fold(dy.view_mut(), &group, gy)?;
    }
    Ok((dx, dy))
}

/// The Gram matrix `k(x_i, y_j)` `(n, m)` of ragged batches `xs` `(n, L1, d)` and `ys` `(m, L2, d)`
/// (see [`sig_kernel_ragged`]): equal to [`sig_kernel_gram`] of the padded batches up to rounding.
/// When `xs` and `ys` are the same view with the same lengths (and both dyadic orders are equal),
/// one triangle is computed, as [`sig_kernel_gram_sym`] does. The paths are sorted by length and
/// the matrix is computed in blocks, each block's paths padded to its longest.
pub fn sig_kernel_gram_ragged<T: Scalar>(
    xs: ArrayView3<'_, T>,
    x_lengths: &[usize],
    ys: ArrayView3<'_, T>,
    y_lengths: &[usize],
    options: &SigKernelOptions,
) -> Result<Array2<T>> {
    let (sx, sy) = sides(xs, x_lengths, ys, y_lengths)?;
    let same = xs.as_ptr() == ys.as_ptr()
        && xs.shape() == ys.shape()
        && xs.strides() == ys.strides()
        && x_lengths == y_lengths;
    let symmetric = same && options.dyadic_order.0 == options.dyadic_order.1;
    if pads_fully(options) {
        let full = if symmetric {
            sig_kernel_gram_sym(sx.full().view(), options)?
        } else {
            sig_kernel_gram(sx.full().view(), sy.full().view(), options)?
        };
        return shaped(full);
    }
    let pairs = if symmetric { 0.5 } else { 1.0 };
    let work = (gram_work(&sx, &sy, options, 1) as f64 * pairs) as u128;
    let results = run::<T, _, _>(
        &options.exec,
        work,
        blocks(&sx, &sy, symmetric),
        |b, exec| {
            let own = on(options, exec);
            if b.diagonal {
                sig_kernel_gram_sym(sx.gather(&b.rows).view(), &own)
            } else {
                sig_kernel_gram(sx.gather(&b.rows).view(), sy.gather(&b.cols).view(), &own)
            }
        },
    )?;
    let mut out = Array2::zeros((x_lengths.len(), y_lengths.len()));
    for (b, k) in results {
        let k: Array2<T> = shaped(k)?;
        for (a, &i) in b.rows.iter().enumerate() {
            for (c, &j) in b.cols.iter().enumerate() {
                out[[i, j]] = k[[a, c]];
                if symmetric {
                    out[[j, i]] = k[[a, c]];
                }
            }
        }
    }
    Ok(out)
}

/// The gradients `(dF/dxs, dF/dys)` of a scalar `F` of [`sig_kernel_gram_ragged`], given
/// `derivs = dF/dGram` `(n, m)`; zero at the ignored points, equal to [`sig_kernel_gram_backprop`]
/// of the padded batches with the padded points' gradients added to each path's last point. `xs` and
/// `ys` are separate inputs even when they are the same array.
pub fn sig_kernel_gram_backprop_ragged<T: Scalar>(
    derivs: ArrayView2<'_, T>,
    xs: ArrayView3<'_, T>,
    x_lengths: &[usize],
    ys: ArrayView3<'_, T>,
    y_lengths: &[usize],
    options: &SigKernelOptions,
) -> Result<(Array3<T>, Array3<T>)> {
    let (sx, sy) = sides(xs, x_lengths, ys, y_lengths)?;
    let (n, m) = (x_lengths.len(), y_lengths.len());
    if derivs.dim() != (n, m) {
        return Err(Error::invalid(format!(
            "derivs has shape {:?}, expected the Gram matrix's shape [{n}, {m}]",
            derivs.shape()
        )));
    }
    let grads = Mutex::new((Array3::zeros(xs.dim()), Array3::zeros(ys.dim())));
    let add = |rows: &[usize], cols: &[usize], gx, gy| -> Result<()> {
        // A poisoned lock means another block failed, and that error is returned instead.
        let mut g = grads.lock().unwrap_or_else(|e| e.into_inner());
        let (dx, dy) = &mut *g;
        sx.fold(dx.view_mut(), rows, gx)?;
        sy.fold(dy.view_mut(), cols, gy)
    };
    if pads_fully(options) {
        let (gx, gy) =
            sig_kernel_gram_backprop(derivs, sx.full().view(), sy.full().view(), options)?;
        add(&sx.all(), &sy.all(), gx, gy)?;
    } else {
        let work = gram_work(&sx, &sy, options, 3);
        run::<T, _, _>(&options.exec, work, blocks(&sx, &sy, false), |b, exec| {
            let d = derivs.select(Axis(0), &b.rows).select(Axis(1), &b.cols);
            if d.iter().all(|&v| v == T::zero()) {
                return Ok(());
            }
            let (gx, gy) = sig_kernel_gram_backprop(
                d.view(),
                sx.gather(&b.rows).view(),
                sy.gather(&b.cols).view(),
                &on(options, exec),
            )?;
            add(&b.rows, &b.cols, gx, gy)
        })?;
    }
    Ok(grads.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// One side of a ragged signature-kernel call.
struct Side<'a, T> {
    paths: ArrayView3<'a, T>,
    lengths: &'a [usize],
}

impl<T: Scalar> Side<'_, T> {
    /// Every path's index.
    fn all(&self) -> Vec<usize> {
        (0..self.lengths.len()).collect()
    }

    /// The paths padded to the full length.
    fn full(&self) -> Array3<T> {
        padded(self.paths, self.lengths, &self.all(), self.paths.dim().1)
    }

    /// The paths `group` padded to the longest of them.
    fn gather(&self, group: &[usize]) -> Array3<T> {
        let longest = group.iter().map(|&i| self.lengths[i]).max().unwrap_or(1);
        padded(self.paths, self.lengths, group, longest)
    }

    /// Add the gradient `g` of the padded paths `group` to `out`.
    fn fold(
        &self,
        out: ndarray::ArrayViewMut3<'_, T>,
        group: &[usize],
        g: ArrayD<T>,
    ) -> Result<()> {
        super::fold(out, self.lengths, group, shaped::<T, Ix3>(g)?.view());
        Ok(())
    }

    /// The paths' indices by increasing length, cut into groups of `size`.
    fn groups(&self, size: usize) -> Vec<Vec<usize>> {
        let mut order = self.all();
        order.sort_by_key(|&i| self.lengths[i]);
        order.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
    }

    /// Steps of path `i` on the refined grid: increments after lead-lag, times `2^order`.
    fn steps(&self, i: usize, options: &SigKernelOptions, order: usize) -> u128 {
        let l = self.lengths[i] as u128 - 1;
        let l = if options.transform.lead_lag { 2 * l } else { l };
        l << order
    }
}

/// Check a ragged batch's side and its lengths.
fn side<'a, T: Scalar>(
    what: &'static str,
    paths: ArrayView3<'a, T>,
    lengths: &'a [usize],
) -> Result<Side<'a, T>> {
    let (batch, length, _) = paths.dim();
    check_lengths(what, lengths, batch, length)?;
    Ok(Side { paths, lengths })
}

/// Check the two sides of a Gram matrix: their lengths and their common dimension.
fn sides<'a, T: Scalar>(
    x: ArrayView3<'a, T>,
    x_lengths: &'a [usize],
    y: ArrayView3<'a, T>,
    y_lengths: &'a [usize],
) -> Result<(Side<'a, T>, Side<'a, T>)> {
    if x.dim().2 != y.dim().2 {
        return Err(Error::Length {
            what: "path2 (dimension)",
            expected: format!("{}, the dimension of path1", x.dim().2),
            got: y.dim().2,
        });
    }
    Ok((
        side("x_lengths", x, x_lengths)?,
        side("y_lengths", y, y_lengths)?,
    ))
}

/// Check the two sides of paired kernels: as [`sides`], and the same batch.
fn pair<'a, T: Scalar>(
    x: ArrayView3<'a, T>,
    x_lengths: &'a [usize],
    y: ArrayView3<'a, T>,
    y_lengths: &'a [usize],
) -> Result<(Side<'a, T>, Side<'a, T>)> {
    if x.dim().0 != y.dim().0 {
        return Err(Error::Length {
            what: "path2 (batch)",
            expected: format!("{}, the batch of path1", x.dim().0),
            got: y.dim().0,
        });
    }
    sides(x, x_lengths, y, y_lengths)
}

/// Whether the padding must be computed: time augmentation runs the time on over it, and a
/// returned grid has the padded shape.
fn pads_fully(options: &SigKernelOptions) -> bool {
    options.transform.time_aug || options.return_grid
}

/// The options with the execution a unit of work runs with.
fn on(options: &SigKernelOptions, exec: &Execution) -> SigKernelOptions {
    let mut own = options.clone();
    own.exec = exec.clone();
    own
}

/// About eight flops per refined cell and solve, over the pairs' own cells.
fn pair_work<T: Scalar>(
    x: &Side<'_, T>,
    y: &Side<'_, T>,
    options: &SigKernelOptions,
    solves: u128,
) -> u128 {
    let (l1, l2) = options.dyadic_order.pair();
    let cells: u128 = (0..x.lengths.len())
        .map(|i| x.steps(i, options, l1) * y.steps(i, options, l2))
        .sum();
    cells.saturating_mul(8 * solves)
}

/// As [`pair_work`], over every pair of the Gram matrix.
fn gram_work<T: Scalar>(
    x: &Side<'_, T>,
    y: &Side<'_, T>,
    options: &SigKernelOptions,
    solves: u128,
) -> u128 {
    let (l1, l2) = options.dyadic_order.pair();
    let sum = |s: &Side<'_, T>, order: usize| -> u128 {
        (0..s.lengths.len())
            .map(|i| s.steps(i, options, order))
            .sum()
    };
    sum(x, l1)
        .saturating_mul(sum(y, l2))
        .saturating_mul(8 * solves)
}

/// The units of paired kernels: each pair alone on the CPU (its own lengths, no padding); otherwise
/// groups of pairs by increasing size of their grids.
fn pairs<'a, T: Scalar>(
    x: &'a Side<'a, T>,
    y: &'a Side<'a, T>,
) -> impl Fn(Cut) -> Vec<Vec<usize>> + 'a {
    move |cut| {
        let batch = x.lengths.len();
        match cut {
            Cut::Small => (0..batch).map(|i| vec![i]).collect(),
            Cut::Large => {
                let mut order: Vec<usize> = (0..batch).collect();
                order.sort_by_key(|&i| x.lengths[i] * y.lengths[i]);
                let size = GROUP_MIN.max(batch.div_ceil(GROUPS_MAX));
                order.chunks(size).map(<[usize]>::to_vec).collect()
            }
        }
    }
}

/// A block of a Gram matrix: its rows' and columns' paths; a diagonal block of a symmetric matrix
/// has the same paths on both sides.
struct Block {
    rows: Vec<usize>,
    cols: Vec<usize>,
    diagonal: bool,
}

/// The blocks of a Gram matrix, each side's paths sorted by length: blocks of
/// [`CPU_GRAM_GROUP`] paths a side on the CPU, otherwise at most [`GRAM_GROUPS_MAX`] groups a side.
/// A symmetric matrix has the blocks on and above the diagonal.
fn blocks<'a, T: Scalar>(
    x: &'a Side<'a, T>,
    y: &'a Side<'a, T>,
    symmetric: bool,
) -> impl Fn(Cut) -> Vec<Block> + 'a {
    move |cut| {
        let size = |n: usize| match cut {
            Cut::Small => CPU_GRAM_GROUP,
            Cut::Large => GROUP_MIN.max(n.div_ceil(GRAM_GROUPS_MAX)),
        };
        let rows = x.groups(size(x.lengths.len()));
        let cols = y.groups(size(y.lengths.len()));
        let mut out = Vec::new();
        for (a, r) in rows.iter().enumerate() {
            for (b, c) in cols.iter().enumerate() {
                if !symmetric || a <= b {
                    out.push(Block {
                        rows: r.clone(),
                        cols: c.clone(),
                        diagonal: symmetric && a == b,
                    });
                }
            }
        }
        out
    }
}
