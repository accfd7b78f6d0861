//! Distances between samples of paths built on the signature kernel: `sig_mmd`, `sig_score` and
//! `expected_sig_score`, with pySigLib's unbiased estimators.
//!
//! Each estimator is a weighted sum of Gram-matrix entries. The Gram matrices are computed in tiles
//! of whole rows, at most [`TILE_ENTRIES`] entries at a time, and reduced as they come (sums in f64),
//! so a large sample never holds a full Gram matrix. A sample's Gram matrix with itself that fits in
//! one tile is computed symmetric (one triangle). The gradients run the Gram matrices' backward pass
//! on the same tiles, each seeded with its entries' weights in the estimator (zero weights skip
//! their pairs, so a sample against itself sweeps one triangle).

use super::{gram, sig_kernel_gram_backprop, SigKernelOptions};
use crate::{Error, Result, Scalar};
use ndarray::{Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewD, Axis, IxDyn};

/// The most Gram entries held at once.
const TILE_ENTRIES: usize = 1 << 16;

/// The body of [`crate::sig_mmd`] (see [`crate::api`]).
pub(crate) fn sig_mmd<T: Scalar>(
    sample1: ArrayViewD<'_, T>,
    sample2: ArrayViewD<'_, T>,
    options: &SigKernelOptions,
) -> Result<T> {
    let (x, y) = (paths("sample1", &sample1)?, paths("sample2", &sample2)?);
    let (m, n) = (at_least_two("sample1", &x)?, at_least_two("sample2", &y)?);
    let xx = off_diagonal_sum(x, options)? / (m * (m - 1)) as f64;
    let yy = off_diagonal_sum(y, options)? / (n * (n - 1)) as f64;
    let xy: f64 = column_sums(x, y, options)?.iter().sum::<f64>() / (m * n) as f64;
    Ok(T::from_f64(xx - 2.0 * xy + yy))
}

/// The body of [`crate::sig_score`] (see [`crate::api`]): one score for each path of `ys`, shaped
/// as `ys`' batch axes.
pub(crate) fn sig_score<T: Scalar>(
    sample: ArrayViewD<'_, T>,
    ys: ArrayViewD<'_, T>,
    lam: f64,
    options: &SigKernelOptions,
) -> Result<ArrayD<T>> {
    if !lam.is_finite() {
        return Err(Error::invalid(format!("lam must be finite, got {lam}")));
    }
    let (x, y) = (paths("sample", &sample)?, paths("y", &ys)?);
    let m = at_least_two("sample", &x)?;
    let xx = off_diagonal_sum(x, options)? / (m * (m - 1)) as f64;
    let xy = column_sums(x, y, options)?;
    let scores = xy
        .iter()
        .map(|&s| T::from_f64(lam * xx - 2.0 * s / m as f64));
    let shape = IxDyn(&ys.shape()[..ys.ndim().saturating_sub(2)]);
    Ok(ArrayD::from_shape_vec(shape, scores.collect()).expect("one score per path of y"))
}

/// The body of [`crate::expected_sig_score`] (see [`crate::api`]): the mean of [`sig_score`] over
/// `sample2`.
pub(crate) fn expected_sig_score<T: Scalar>(
    sample1: ArrayViewD<'_, T>,
    sample2: ArrayViewD<'_, T>,
    lam: f64,
    options: &SigKernelOptions,
) -> Result<T> {
    let scores = sig_score(sample1, sample2, lam, options)?;
    let sum: f64 = scores.iter().map(|s| Scalar::to_f64(*s)).sum();
    Ok(T::from_f64(sum / scores.len().max(1) as f64))
}

/// The body of [`crate::sig_mmd_backprop`] (see [`crate::api`]): the gradients of
/// `deriv · sig_mmd(sample1, sample2)`.
pub(crate) fn sig_mmd_backprop<T: Scalar>(
    deriv: T,
    sample1: ArrayViewD<'_, T>,
    sample2: ArrayViewD<'_, T>,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let g = finite_deriv(deriv)?;
    let (x, y) = (paths("sample1", &sample1)?, paths("sample2", &sample2)?);
    let (m, n) = (at_least_two("sample1", &x)?, at_least_two("sample2", &y)?);
    let (mut dx, mut dy) = (Array3::zeros(x.raw_dim()), Array3::zeros(y.raw_dim()));
    off_diagonal_backprop(x, g / (m * (m - 1)) as f64, options, &mut dx)?;
    off_diagonal_backprop(y, g / (n * (n - 1)) as f64, options, &mut dy)?;
    let cross = vec![-2.0 * g / (m * n) as f64; n];
    cross_backprop(x, y, &cross, options, &mut dx, &mut dy)?;
    Ok((shaped(dx, &sample1), shaped(dy, &sample2)))
}

/// The body of [`crate::sig_score_backprop`] (see [`crate::api`]): the gradients of
/// `Σ_j derivs_j · sig_score(sample, ys)_j`.
pub(crate) fn sig_score_backprop<T: Scalar>(
    derivs: ArrayViewD<'_, T>,
    sample: ArrayViewD<'_, T>,
    ys: ArrayViewD<'_, T>,
    lam: f64,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let (x, y) = (paths("sample", &sample)?, paths("y", &ys)?);
    let batch = &ys.shape()[..ys.ndim().saturating_sub(2)];
    if derivs.shape() != batch {
        return Err(Error::invalid(format!(
            "derivs has shape {:?}, expected one per path of y: {batch:?}",
            derivs.shape()
        )));
    }
    let g = derivs
        .iter()
        .map(|&d| finite_deriv(d))
        .collect::<Result<Vec<_>>>()?;
    score_backprop(&g, x, y, lam, options, (&sample, &ys))
}

/// The body of [`crate::expected_sig_score_backprop`] (see [`crate::api`]): the gradients of
/// `deriv · expected_sig_score(sample1, sample2)`.
pub(crate) fn expected_sig_score_backprop<T: Scalar>(
    deriv: T,
    sample1: ArrayViewD<'_, T>,
    sample2: ArrayViewD<'_, T>,
    lam: f64,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let g = finite_deriv(deriv)?;
    let (x, y) = (paths("sample1", &sample1)?, paths("sample2", &sample2)?);
    let n = y.len_of(Axis(0));
    let g = vec![g / n.max(1) as f64; n];
    score_backprop(&g, x, y, lam, options, (&sample1, &sample2))
}

/// The gradients of `Σ_j g_j · score_j`, `score_j = λ·xx/(m(m−1)) − (2/m)·Σ_i k(x_i, y_j)`, shaped
/// as the two `samples`.
fn score_backprop<T: Scalar>(
    g: &[f64],
    x: ArrayView3<'_, T>,
    y: ArrayView3<'_, T>,
    lam: f64,
    options: &SigKernelOptions,
    samples: (&ArrayViewD<'_, T>, &ArrayViewD<'_, T>),
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    if !lam.is_finite() {
        return Err(Error::invalid(format!("lam must be finite, got {lam}")));
    }
    let m = at_least_two("sample", &x)?;
    let (mut dx, mut dy) = (Array3::zeros(x.raw_dim()), Array3::zeros(y.raw_dim()));
    let total: f64 = g.iter().sum();
    off_diagonal_backprop(x, lam * total / (m * (m - 1)) as f64, options, &mut dx)?;
    let cross: Vec<f64> = g.iter().map(|gj| -2.0 * gj / m as f64).collect();
    cross_backprop(x, y, &cross, options, &mut dx, &mut dy)?;
    Ok((shaped(dx, samples.0), shaped(dy, samples.1)))
}

fn finite_deriv<T: Scalar>(d: T) -> Result<f64> {
    let d = Scalar::to_f64(d);
    if !d.is_finite() {
        return Err(Error::invalid(format!("derivs must be finite, got {d}")));
    }
    Ok(d)
}

/// A gradient `(paths, length, dim)` in its sample's shape `(batch…, length, dim)`.
fn shaped<T: Scalar>(d: Array3<T>, sample: &ArrayViewD<'_, T>) -> ArrayD<T> {
    d.into_shape_with_order(IxDyn(sample.shape()))
        .expect("a gradient has its sample's size")
}

/// Adds the gradient of `w · Σ_{i≠j} k(x_i, x_j)` to `dx`. With equal dyadic orders `k` is
/// symmetric, so each pair above the diagonal is seeded with `2w` and gives both its paths'
/// gradients; otherwise every pair off the diagonal is seeded with `w`.
fn off_diagonal_backprop<T: Scalar>(
    x: ArrayView3<'_, T>,
    w: f64,
    options: &SigKernelOptions,
    dx: &mut Array3<T>,
) -> Result<()> {
    let symmetric = options.dyadic_order.0 == options.dyadic_order.1;
    each_tile_backprop(x, x, options, dx, None, |first, i, j| {
        match (j.cmp(&(first + i)), symmetric) {
            (std::cmp::Ordering::Equal, _) => 0.0,
            (std::cmp::Ordering::Greater, true) => 2.0 * w,
            (std::cmp::Ordering::Less, true) => 0.0,
            (_, false) => w,
        }
    })
}

/// Adds the gradients of `Σ_ij w_j k(x_i, y_j)` to `dx` and `dy`.
fn cross_backprop<T: Scalar>(
    x: ArrayView3<'_, T>,
    y: ArrayView3<'_, T>,
    w: &[f64],
    options: &SigKernelOptions,
    dx: &mut Array3<T>,
    dy: &mut Array3<T>,
) -> Result<()> {
    each_tile_backprop(x, y, options, dx, Some(dy), |_, _, j| w[j])
}

/// The Gram matrix of `x` against `y` differentiated in tiles of whole rows, entry `(first + i, j)`
/// seeded with `weight(first, i, j)`: the gradients with respect to `x` are added to `dx` and those
/// with respect to `y` to `dy`, or to `dx` when `y` is `x` (`dy` is `None`).
fn each_tile_backprop<T: Scalar>(
    x: ArrayView3<'_, T>,
    y: ArrayView3<'_, T>,
    options: &SigKernelOptions,
    dx: &mut Array3<T>,
    mut dy: Option<&mut Array3<T>>,
    weight: impl Fn(usize, usize, usize) -> f64,
) -> Result<()> {
    let (m, n) = (x.len_of(Axis(0)), y.len_of(Axis(0)));
    let rows = (TILE_ENTRIES / n.max(1)).max(1);
    for first in (0..m).step_by(rows) {
        let range = first..(first + rows).min(m);
        let tile = x.slice_axis(Axis(0), range.clone().into());
        let seeds =
            Array2::from_shape_fn((range.len(), n), |(i, j)| T::from_f64(weight(first, i, j)));
        let (d_tile, d_y) = sig_kernel_gram_backprop(
            seeds.into_dyn().view(),
            tile.into_dyn(),
            y.into_dyn(),
            options,
        )?;
        let mut rows_of_dx = dx.slice_axis_mut(Axis(0), range.into());
        rows_of_dx += &d_tile
            .view()
            .into_dimensionality::<ndarray::Ix3>()
            .expect("paths");
        let d_y = d_y.into_dimensionality::<ndarray::Ix3>().expect("paths");
        match dy.as_deref_mut() {
            Some(dy) => *dy += &d_y,
            None => *dx += &d_y,
        }
    }
    Ok(())
}

/// A sample `(batch…, length, dim)` as `(paths, length, dim)`.
fn paths<'a, T: Scalar>(what: &'static str, a: &'a ArrayViewD<'_, T>) -> Result<ArrayView3<'a, T>> {
    if a.ndim() < 2 {
        return Err(Error::invalid(format!(
            "{what} must be (batch…, length, dim), got {} axes",
            a.ndim()
        )));
    }
    let (len, dim) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
    let count = a.shape()[..a.ndim() - 2].iter().product::<usize>();
    let flat = a.view().into_shape_with_order((count, len, dim));
    flat.map_err(|_| Error::invalid(format!("{what}'s batch axes must be contiguous")))
}

fn at_least_two<T>(what: &str, x: &ArrayView3<'_, T>) -> Result<usize> {
    match x.len_of(Axis(0)) {
        n if n >= 2 => Ok(n),
        n => Err(Error::invalid(format!(
            "{what} must hold at least 2 paths for the unbiased estimator, got {n}"
        ))),
    }
}

/// `Σ_{i≠j} k(x_i, x_j)`.
fn off_diagonal_sum<T: Scalar>(x: ArrayView3<'_, T>, options: &SigKernelOptions) -> Result<f64> {
    let mut sum = 0.0;
    each_tile(x, x, true, options, |first, tile| {
        for ((i, j), &k) in tile.indexed_iter() {
            if first + i != j {
                sum += Scalar::to_f64(k);
            }
        }
    })?;
    Ok(sum)
}

/// `Σ_i k(x_i, y_j)` for each `j`.
fn column_sums<T: Scalar>(
    x: ArrayView3<'_, T>,
    y: ArrayView3<'_, T>,
    options: &SigKernelOptions,
) -> Result<Vec<f64>> {
    let mut sums = vec![0.0; y.len_of(Axis(0))];
    each_tile(x, y, false, options, |_, tile| {
        for row in tile.rows() {
            for (s, &k) in sums.iter_mut().zip(row) {
                *s += Scalar::to_f64(k);
            }
        }
    })?;
    Ok(sums)
}

/// The Gram matrix of `x` against `y` in tiles of whole rows, `f(first row, tile)` for each;
/// `symmetric` when `y` is `x`, so that a matrix in one tile is computed as one triangle.
fn each_tile<T: Scalar>(
    x: ArrayView3<'_, T>,
    y: ArrayView3<'_, T>,
    symmetric: bool,
    options: &SigKernelOptions,
    mut f: impl FnMut(usize, ArrayView2<'_, T>),
) -> Result<()> {
    let (m, n) = (x.len_of(Axis(0)), y.len_of(Axis(0)));
    let rows = (TILE_ENTRIES / n.max(1)).max(1);
    for first in (0..m).step_by(rows) {
        let tile = x.slice_axis(Axis(0), (first..(first + rows).min(m)).into());
        let whole = first == 0 && tile.len_of(Axis(0)) == m;
        let g = gram(tile.into_dyn(), y.into_dyn(), options, symmetric && whole)?;
        let g: ndarray::Array2<T> = g
            .into_dimensionality()
            .expect("a Gram matrix of two batches");
        f(first, g.view());
    }
    Ok(())
}
