//! Chen's product of signatures (`sig_combine`) and appending or prepending one straight segment
//! (`sig_join`), with their gradients.

use crate::algebra::{
    exp, exp_backprop, mul_exp, mul_exp_backprop, tensor_mul, tensor_mul_backprop, HornerScratch,
};
use crate::batch::{
    check_result, expect_len, fit_gpu, fit_threads, infer_scalar_term, same_batch, zeros, Memory,
    Rows,
};
use crate::cpu::par_rows;
use crate::device::execute;
use crate::device::on_gpu;
#[cfg(feature = "gpu")]
use crate::gpu;
use crate::layout::{aug_dim, TensorShape};
use crate::scalar::Precision;
use crate::{Error, Result, Scalar, SigOptions};
use ndarray::{ArrayD, ArrayViewD, Axis};

/// The body of [`crate::sig_combine`] (see [`crate::api`]).
pub(crate) fn sig_combine<T: Scalar>(
    sig1: ArrayViewD<'_, T>,
    sig2: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let (shape, st, a, b) = two_sigs(sig1, sig2, dimension, degree, options)?;
    let output = a.data.len();
    let row = a.last();
    let (xa, xb) = (a.slice(), b.slice());
    let alloc = || zeros::<T>("combined signature", a.data.shape());
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        workload(a.batch(), &shape),
        on_gpu!(|device| {
            fit_gpu::<T>("combined signature", output as u128, 2 * output)?;
            let mut out = alloc()?;
            let slice = out.as_slice_mut().expect("contiguous");
            gpu::sig_combine(device, &shape, xa, xb, st, slice)?;
            Ok(out)
        }),
        |threads| {
            let threads = fit::<T>("combined signature", threads, output, 0)?;
            let mut out = alloc()?;
            par_rows(
                threads,
                out.as_slice_mut().expect("contiguous"),
                row,
                || (),
                |_, i, o| {
                    let r = i * row + st..(i + 1) * row;
                    if st == 1 {
                        o[0] = T::one();
                    }
                    tensor_mul(&shape, &xa[r.clone()], &xb[r], &mut o[st..]);
                },
            );
            Ok(out)
        },
    )?;
    check_result("combined signature", &out, 1)?;
    Ok(out)
}

/// The body of [`crate::sig_combine_backprop`] (see [`crate::api`]).
pub(crate) fn sig_combine_backprop<T: Scalar>(
    deriv: ArrayViewD<'_, T>,
    sig1: ArrayViewD<'_, T>,
    sig2: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    options.validate::<T>()?;
    let (shape, st, a, b) = two_sigs(sig1, sig2, dimension, degree, options)?;
    let g = Rows::new("deriv", deriv, 1)?;
    same_batch("sig1", &a, "deriv", &g)?;
    expect_len("deriv", &g, a.last())?;
    g.check_finite("deriv", false)?;
    let row = a.last();
    let (xa, xb, xg) = (a.slice(), b.slice(), g.slice());
    // The two gradients side by side, then split into two arrays.
    let output = 2 * a.data.len();
    let both = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        2 * workload(a.batch(), &shape),
        on_gpu!(|device| {
            fit_gpu::<T>("signature gradients", output as u128, 3 * a.data.len())?;
            let mut both = zeros::<T>("gradient", &[a.batch(), 2 * row])?;
            let slice = both.as_slice_mut().expect("contiguous");
            let factors = [gpu::Factor::Host(xa), gpu::Factor::Host(xb)];
            gpu::sig_combine_backprop(device, &shape, xg, factors, st, slice)?;
            Ok(both)
        }),
        |threads| {
            let threads = fit::<T>("signature gradients", threads, 2 * output, 0)?;
            paired_rows(
                threads,
                a.batch(),
                (row, row),
                || (),
                |_, i, da, db| {
                    let r = i * row + st..(i + 1) * row;
                    tensor_mul_backprop(
                        &shape,
                        &xg[r.clone()],
                        &xa[r.clone()],
                        &xb[r],
                        &mut da[st..],
                        &mut db[st..],
                    );
                },
            )
        },
    )?;
    split_pair(both, &a.batch_shape, row, row)
}

/// The body of [`crate::sig_join`] (see [`crate::api`]).
pub(crate) fn sig_join<T: Scalar>(
    sigs: ArrayViewD<'_, T>,
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    prepend: bool,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let (shape, st, s, v) = sig_and_displacement(sigs, displacement, dimension, degree)?;
    let n = shape.len();
    let output = s.data.len();
    let row = s.last();
    let (xs, xv) = (s.slice(), v.slice());
    let alloc = || zeros::<T>("joined signature", s.data.shape());
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        workload(s.batch(), &shape),
        on_gpu!(|device| {
            fit_gpu::<T>(
                "joined signature",
                output as u128,
                2 * output + v.data.len(),
            )?;
            let mut out = alloc()?;
            let slice = out.as_slice_mut().expect("contiguous");
            gpu::sig_join(device, &shape, xs, xv, st, prepend, slice)?;
            Ok(out)
        }),
        |threads| {
            let per_thread = HornerScratch::<T>::values(&shape) + n as u128;
            let threads = fit::<T>("joined signature", threads, output, per_thread)?;
            let mut out = alloc()?;
            par_rows(
                threads,
                out.as_slice_mut().expect("contiguous"),
                row,
                || (HornerScratch::new(&shape), vec![T::zero(); n]),
                |(scratch, e), i, o| {
                    let (sig, z) = (
                        &xs[i * row + st..(i + 1) * row],
                        &xv[i * dimension..(i + 1) * dimension],
                    );
                    if st == 1 {
                        o[0] = T::one();
                    }
                    if prepend {
                        exp(&shape, z, e);
                        tensor_mul(&shape, e, sig, &mut o[st..]);
                    } else {
                        o[st..].copy_from_slice(sig);
                        mul_exp(&shape, &mut o[st..], z, scratch);
                    }
                },
            );
            Ok(out)
        },
    )?;
    check_result("joined signature", &out, 1)?;
    Ok(out)
}

/// The body of [`crate::sig_join_backprop`] (see [`crate::api`]).
pub(crate) fn sig_join_backprop<T: Scalar>(
    deriv: ArrayViewD<'_, T>,
    sigs: ArrayViewD<'_, T>,
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    prepend: bool,
    options: &SigOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    options.validate::<T>()?;
    let (shape, st, s, v) = sig_and_displacement(sigs, displacement, dimension, degree)?;
    let g = Rows::new("deriv", deriv, 1)?;
    same_batch("sig", &s, "deriv", &g)?;
    expect_len("deriv", &g, s.last())?;
    g.check_finite("deriv", false)?;
    let row = s.last();
    let (xs, xv, xg) = (s.slice(), v.slice(), g.slice());
    let n = shape.len();
    let output = 2 * (s.data.len() + v.data.len());
    let both = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        2 * workload(s.batch(), &shape),
        on_gpu!(|device| {
            let inputs = 4 * s.data.len() + v.data.len();
            fit_gpu::<T>("signature gradients", output as u128, inputs)?;
            let mut both = zeros::<T>("gradient", &[s.batch(), row + dimension])?;
            let slice = both.as_slice_mut().expect("contiguous");
            let sigs = gpu::Factor::Host(xs);
            gpu::sig_join_backprop(device, &shape, xg, sigs, xv, st, prepend, slice)?;
            Ok(both)
        }),
        |threads| {
            let per_thread = HornerScratch::<T>::values(&shape) + 2 * n as u128;
            let threads = fit::<T>("signature gradients", threads, output, per_thread)?;
            let init = || {
                (
                    HornerScratch::new(&shape),
                    vec![T::zero(); n],
                    vec![T::zero(); n],
                )
            };
            paired_rows(
                threads,
                s.batch(),
                (row, dimension),
                init,
                |ws, i, ds, dv| {
                    let (scratch, e, de) = ws;
                    let (sig, z) = (
                        &xs[i * row + st..(i + 1) * row],
                        &xv[i * dimension..(i + 1) * dimension],
                    );
                    let gi = &xg[i * row + st..(i + 1) * row];
                    if prepend {
                        exp(&shape, z, e);
                        de.fill(T::zero());
                        tensor_mul_backprop(&shape, gi, e, sig, de, &mut ds[st..]);
                        exp_backprop(&shape, z, e, de, dv);
                    } else {
                        ds[st..].copy_from_slice(gi);
                        mul_exp_backprop(&shape, sig, z, &mut ds[st..], dv, scratch);
                    }
                },
            )
        },
    )?;
    split_pair(both, &s.batch_shape, row, dimension)
}

/// The body of [`crate::linear_sig`] (see [`crate::api`]): [`sig_join`] of the trivial signature.
pub(crate) fn linear_sig<T: Scalar>(
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let start = trivial_sigs(displacement.view(), dimension, degree, options)?;
    sig_join(
        start.view(),
        displacement,
        dimension,
        degree,
        false,
        options,
    )
}

/// The body of [`crate::linear_sig_backprop`] (see [`crate::api`]).
pub(crate) fn linear_sig_backprop<T: Scalar>(
    deriv: ArrayViewD<'_, T>,
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let start = trivial_sigs(displacement.view(), dimension, degree, options)?;
    let (_, d_displacement) = sig_join_backprop(
        deriv,
        start.view(),
        displacement,
        dimension,
        degree,
        false,
        options,
    )?;
    Ok(d_displacement)
}

/// The signature of a constant path (1, then zeros; the 1 only where `options.scalar_term` asks),
/// once for each displacement in `displacement` (`(batch…, dimension)`).
fn trivial_sigs<T: Scalar>(
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    if dimension == 0 {
        return Err(Error::NotPositive { what: "dimension" });
    }
    let shape = TensorShape::new(dimension, degree)?;
    let v = Rows::new("displacement", displacement, 1)?;
    expect_len("displacement", &v, dimension)?;
    let st = options.scalar_term as usize;
    let mut out_shape = v.batch_shape.clone();
    out_shape.push(shape.len() + st);
    let mut out = zeros::<T>("signature", &out_shape)?;
    if st == 1 {
        out.index_axis_mut(Axis(out_shape.len() - 1), 0)
            .fill(T::one());
    }
    Ok(out)
}

/// About the multiply-adds of Chen's product of `batch` pairs (for `Device::Auto`).
fn workload(batch: usize, shape: &TensorShape) -> u128 {
    batch as u128 * shape.len() as u128 * shape.degree as u128
}

/// The threads for a CPU call whose `output` values and `per_thread` values of workspace on each
/// thread must fit in memory: `threads`, lowered to fit.
fn fit<T: Scalar>(what: &str, threads: usize, output: usize, per_thread: u128) -> Result<usize> {
    let size = std::mem::size_of::<T>() as u128;
    fit_threads(what, threads, |_| Memory {
        output: output as u128 * size,
        shared: 0,
        per_thread: per_thread * size,
    })
}

type TwoSigs<'a, 'b, T> = (TensorShape, usize, Rows<'a, T>, Rows<'b, T>);

fn two_sigs<'a, 'b, T: Scalar>(
    sig1: ndarray::ArrayViewD<'a, T>,
    sig2: ndarray::ArrayViewD<'b, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<TwoSigs<'a, 'b, T>> {
    if dimension == 0 {
        return Err(Error::NotPositive { what: "dimension" });
    }
    let shape = TensorShape::new(
        aug_dim(
            dimension,
            options.transform.time_aug,
            options.transform.lead_lag,
        )?,
        degree,
    )?;
    let a = Rows::new("sig1", sig1, 1)?;
    let b = Rows::new("sig2", sig2, 1)?;
    let st = infer_scalar_term("sig1", a.last(), shape.len())?;
    expect_len("sig2", &b, a.last())?;
    same_batch("sig1", &a, "sig2", &b)?;
    a.check_finite("sig1", false)?;
    b.check_finite("sig2", false)?;
    Ok((shape, st as usize, a, b))
}

fn sig_and_displacement<'a, 'b, T: Scalar>(
    sigs: ndarray::ArrayViewD<'a, T>,
    displacement: ndarray::ArrayViewD<'b, T>,
    dimension: usize,
    degree: usize,
) -> Result<TwoSigs<'a, 'b, T>> {
    if dimension == 0 {
        return Err(Error::NotPositive { what: "dimension" });
    }
    let shape = TensorShape::new(dimension, degree)?;
    let s = Rows::new("sig", sigs, 1)?;
    let v = Rows::new("displacement", displacement, 1)?;
    let st = infer_scalar_term("sig", s.last(), shape.len())?;
    expect_len("displacement", &v, dimension)?;
    same_batch("sig", &s, "displacement", &v)?;
    s.check_finite("sig", false)?;
    v.check_finite("displacement", false)?;
    Ok((shape, st as usize, s, v))
}

/// Run `f(item, out1_row, out2_row)` for every batch item, the two outputs side by side in one row.
pub(crate) fn paired_rows<T: Scalar, S>(
    threads: usize,
    batch: usize,
    (len1, len2): (usize, usize),
    init: impl Fn() -> S + Send + Sync,
    f: impl Fn(&mut S, usize, &mut [T], &mut [T]) + Send + Sync,
) -> Result<ArrayD<T>> {
    let mut both = zeros::<T>("gradient", &[batch, len1 + len2])?;
    par_rows(
        threads,
        both.as_slice_mut().expect("contiguous"),
        len1 + len2,
        init,
        |ws, i, row| {
            let (r1, r2) = row.split_at_mut(len1);
            f(ws, i, r1, r2)
        },
    );
    Ok(both)
}

pub(crate) fn split_pair<T: Scalar>(
    both: ArrayD<T>,
    batch_shape: &[usize],
    len1: usize,
    len2: usize,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let (first, second) = both.view().split_at(Axis(1), len1);
    let reshape = |a: ndarray::ArrayViewD<T>, len: usize| {
        let mut shape = batch_shape.to_vec();
        shape.push(len);
        a.to_owned()
            .into_shape_with_order(shape)
            .expect("same element count")
    };
    let pair = (reshape(first, len1), reshape(second, len2));
    check_result("gradient", &pair.0, 1)?;
    check_result("gradient", &pair.1, 1)?;
    Ok(pair)
}
