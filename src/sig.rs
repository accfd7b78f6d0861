//! `sig` and `sig_backprop`: the front end (checks, shapes, device) over the drivers.

use crate::batch::{
    check_result, elements, fit_gpu, fit_threads, infer_scalar_term, paths as path_rows,
    same_batch, zeros, Memory, Rows,
};
use crate::cpu;
use crate::device::execute;
use crate::device::on_gpu;
#[cfg(feature = "gpu")]
use crate::gpu;
use crate::layout::{aug_dim, PathsShape, TensorShape};
use crate::scalar::Precision;
use crate::{Result, Scalar, SigOptions};
use ndarray::{ArrayD, ArrayViewD};

/// The body of [`crate::sig`] (see [`crate::api`]).
pub(crate) fn sig<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let p = path_rows("path", paths)?;
    let (ps, shape) = setup(&p, degree, options)?;
    let mut out_shape = p.batch_shape.clone();
    out_shape.push(shape.len() + options.scalar_term as usize);
    let work = workload(p.batch(), &ps, &shape, options);
    let output = elements(&out_shape);
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        work,
        on_gpu!(|device| {
            fit_gpu::<T>("signature", output, p.slice().len())?;
            let mut out = zeros::<T>("signature", &out_shape)?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            gpu::sig(device, &shape, p.slice(), ps, options, slice)?;
            Ok(out)
        }),
        |threads| {
            let (batch, backward) = (p.batch(), false);
            let what = "signature";
            let threads =
                fit_cpu::<T>(what, &shape, ps, batch, output, options, threads, backward)?;
            let mut out = zeros::<T>("signature", &out_shape)?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            cpu::sig(threads, &shape, p.slice(), ps, options, slice);
            Ok(out)
        },
    )?;
    check_result("signature", &out, 1)?;
    Ok(out)
}

/// The body of [`crate::sig_backprop`] (see [`crate::api`]).
pub(crate) fn sig_backprop<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    sigs: ArrayViewD<'_, T>,
    sig_derivs: ArrayViewD<'_, T>,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let p = path_rows("path", paths)?;
    let s = Rows::new("sig", sigs, 1)?;
    let g = Rows::new("sig_derivs", sig_derivs, 1)?;
    same_batch("path", &p, "sig", &s)?;
    same_batch("sig", &s, "sig_derivs", &g)?;
    let (ps, shape) = setup(&p, degree, options)?;
    let st = infer_scalar_term("sig", s.last(), shape.len())?;
    crate::batch::expect_len("sig_derivs", &g, s.last())?;
    s.check_finite("sig", false)?;
    g.check_finite("sig_derivs", false)?;
    // The reverse sweep costs about three forward passes.
    let work = workload(p.batch(), &ps, &shape, options).saturating_mul(3);
    let output = elements(p.data.shape());
    let (paths, sigs, derivs, st) = (p.slice(), s.slice(), g.slice(), st as usize);
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        work,
        on_gpu!(|device| {
            let inputs = paths.len() + sigs.len() + derivs.len();
            fit_gpu::<T>("path gradient", output, inputs)?;
            let mut out = zeros::<T>("path gradient", p.data.shape())?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            gpu::sig_backprop(device, &shape, paths, ps, sigs, derivs, st, options, slice)?;
            Ok(out)
        }),
        |threads| {
            let (batch, backward) = (p.batch(), true);
            let what = "path gradient";
            let threads =
                fit_cpu::<T>(what, &shape, ps, batch, output, options, threads, backward)?;
            let mut out = zeros::<T>("path gradient", p.data.shape())?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            cpu::sig_backprop(threads, &shape, paths, ps, sigs, derivs, st, options, slice);
            Ok(out)
        },
    )?;
    check_result("path gradient", &out, 2)?;
    Ok(out)
}

fn setup<T: Scalar>(
    p: &Rows<T>,
    degree: usize,
    options: &SigOptions,
) -> Result<(PathsShape, TensorShape)> {
    let shape = p.data.shape();
    let ps = PathsShape {
        length: shape[shape.len() - 2],
        dim: p.last(),
    };
    let d = aug_dim(
        ps.dim,
        options.transform.time_aug,
        options.transform.lead_lag,
    )?;
    Ok((ps, TensorShape::new(d, degree)?))
}

/// The most threads, at most `threads`, for which a CPU `sig` (with `backward`, `sig_backprop`) of
/// `batch` paths fits in memory beside its `output` elements.
#[allow(clippy::too_many_arguments)]
fn fit_cpu<T: Scalar>(
    what: &str,
    shape: &TensorShape,
    ps: PathsShape,
    batch: usize,
    output: u128,
    options: &SigOptions,
    threads: usize,
    backward: bool,
) -> Result<usize> {
    fit_threads(what, threads, |t| {
        let (shared, per_thread) = cpu::sig_memory::<T>(shape, ps, options, batch, t, backward);
        Memory {
            output: output.saturating_mul(std::mem::size_of::<T>() as u128),
            shared,
            per_thread,
        }
    })
}

/// About the multiply-adds of a forward pass: `batch · increments · sig_length` (for `Device::Auto`).
fn workload(batch: usize, ps: &PathsShape, shape: &TensorShape, options: &SigOptions) -> u128 {
    let increments = ps.length.saturating_sub(1) * (1 + options.transform.lead_lag as usize);
    batch as u128 * increments as u128 * shape.len() as u128
}
