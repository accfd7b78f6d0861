//! Log-signatures: `log_sig`, `sig_to_log_sig`, their gradients, and the Lyndon words they are indexed by.
//!
//! The log-signature is the tensor logarithm of the signature, a Lie element. pySigLib reports it in
//! three forms, all here:
//!
//! - [`LogSigMethod::Expanded`] (pySigLib's method 0): every coefficient of the logarithm, in the
//!   signature's layout;
//! - [`LogSigMethod::Words`] (method 1): the logarithm's coefficients at the Lyndon words only (a Lie
//!   element is determined by them);
//! - [`LogSigMethod::Lyndon`] (method 2): coordinates in the Lyndon bracket basis, iisignature's
//!   'S' convention, from the signature;
//! - [`LogSigMethod::Bch`] (method 3): the same coordinates computed in the Lie algebra by
//!   Baker–Campbell–Hausdorff products of the increments (`bch`), never holding a signature.
//!
//! The last two are ordered like [`lyndon_words`]: by length, then lexicographically. Bases are built
//! on first use for each `(dimension, degree)` and cached; nothing has to be prepared.

mod bch;
mod combine;
mod lyndon;
mod to_sig;

pub(crate) use combine::{
    linear_log_sig, linear_log_sig_backprop, log_sig_combine, log_sig_combine_backprop,
    log_sig_join, log_sig_join_backprop,
};
pub(crate) use to_sig::{log_sig_to_sig, log_sig_to_sig_backprop};

use crate::algebra::{tensor_log, tensor_log_backprop, SeriesScratch};
use crate::batch::{
    check_result, expect_len, fit_gpu, fit_threads, infer_scalar_term, paths as path_rows,
    same_batch, zeros, Memory, Rows,
};
use crate::cpu::par_rows;
use crate::device::on_gpu;
use crate::device::{execute, record, Backend};
#[cfg(feature = "gpu")]
use crate::gpu;
use crate::layout::{aug_dim, PathsShape, TensorShape};
use crate::scalar::Precision;
use crate::{sig, sig_backprop, Device, Error, Result, Scalar, SigOptions};
use lyndon::Basis;
use ndarray::{ArrayD, ArrayViewD};
use std::sync::Arc;

/// The form a log-signature is reported in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LogSigMethod {
    /// The full tensor logarithm, in the signature's layout (pySigLib method 0).
    Expanded,
    /// The tensor logarithm's coefficients at the Lyndon words (pySigLib method 1, its default).
    #[default]
    Words,
    /// Coordinates in the Lyndon bracket basis (pySigLib method 2, iisignature 'S').
    Lyndon,
    /// `Lyndon`'s coordinates computed without the signature, by Baker–Campbell–Hausdorff products
    /// of the increments in the Lyndon basis (pySigLib method 3): memory of a few log-signatures per
    /// thread instead of `d^N`. `log_sig` and `log_sig_backprop` on the CPU compute it so; elsewhere
    /// (the GPU, ragged paths, corrections, the conversions) it is `Lyndon`.
    Bch,
}

impl LogSigMethod {
    /// pySigLib's method numbers: 0, 1, 2, or 3 (the same numbers as 2, computed another way).
    pub fn from_pysiglib(method: i64) -> Result<Self> {
        match method {
            0 => Ok(LogSigMethod::Expanded),
            1 => Ok(LogSigMethod::Words),
            2 => Ok(LogSigMethod::Lyndon),
            3 => Ok(LogSigMethod::Bch),
            other => Err(Error::invalid(format!(
                "method must be one of 0, 1, 2 or 3, got {other}"
            ))),
        }
    }

    /// The name the CLI and `FromStr` use.
    pub fn name(self) -> &'static str {
        match self {
            LogSigMethod::Expanded => "expanded",
            LogSigMethod::Words => "words",
            LogSigMethod::Lyndon => "lyndon",
            LogSigMethod::Bch => "bch",
        }
    }

    /// The output's form: `Bch` reports `Lyndon`'s coordinates.
    pub(crate) fn layout(self) -> LogSigMethod {
        match self {
            LogSigMethod::Bch => LogSigMethod::Lyndon,
            other => other,
        }
    }
}

impl std::str::FromStr for LogSigMethod {
    type Err = Error;
    /// `expanded`, `words`, `lyndon` or `bch`, or pySigLib's numbers `0`–`3`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "expanded" => Ok(LogSigMethod::Expanded),
            "words" => Ok(LogSigMethod::Words),
            "lyndon" => Ok(LogSigMethod::Lyndon),
            "bch" => Ok(LogSigMethod::Bch),
            other => match other.parse::<i64>() {
                Ok(n) => LogSigMethod::from_pysiglib(n),
                Err(_) => Err(Error::invalid(format!(
                    "unknown log-signature method '{other}' (expected expanded, words, lyndon or bch)"
                ))),
            },
        }
    }
}

/// Number of Lyndon words of lengths `1..=degree` over the path's channels after the transforms in
/// `options` (pySigLib's `log_sig_length`): the output length of the `Words` and `Lyndon` methods.
/// (`Expanded` has the signature's length, [`crate::sig_length`].) `options.scalar_term` is not used.
///
/// Degree and dimension 0 are errors, as in pySigLib; so are sizes whose signature would overflow.
pub fn log_sig_length(dimension: usize, degree: usize, options: &SigOptions) -> Result<usize> {
    if dimension == 0 {
        return Err(Error::NotPositive { what: "dimension" });
    }
    let d = aug_dim(
        dimension,
        options.transform.time_aug,
        options.transform.lead_lag,
    )?;
    Ok(lyndon::lyndon_counts(d, degree)?.iter().sum())
}

/// The Lyndon words of lengths `1..=degree` over `dimension` letters (`0..dimension`), in
/// log-signature order: by length, then lexicographically. Their number is Witt's formula summed over
/// the lengths, [`log_sig_length`].
pub fn lyndon_words(dimension: usize, degree: usize) -> Result<Vec<Vec<usize>>> {
    let basis = lyndon::basis(dimension, degree)?;
    Ok(basis
        .flat
        .iter()
        .map(|&f| {
            basis
                .shape
                .index_word(f)
                .expect("a flat index of the shape")
        })
        .collect())
}

/// The position of `word` in the log-signature (the inverse of [`lyndon_words`]), or `None` when it is
/// not a Lyndon word of length `1..=degree` over `dimension` letters.
pub fn lyndon_word_index(dimension: usize, degree: usize, word: &[usize]) -> Result<Option<usize>> {
    let basis = lyndon::basis(dimension, degree)?;
    Ok(basis.shape.word_index(word).and_then(|f| basis.position(f)))
}

/// The body of [`crate::log_sig`] (see [`crate::api`]).
pub(crate) fn log_sig<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let p = path_rows("path", paths.view())?;
    let plan = Plan::new(
        aug_dim(
            p.last(),
            options.transform.time_aug,
            options.transform.lead_lag,
        )?,
        degree,
        method,
    )?;
    let shape = paths.shape();
    let ps = PathsShape {
        length: shape[shape.len() - 2],
        dim: p.last(),
    };
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        plan.workload(p.batch(), &ps, options),
        on_gpu!(|device| {
            let mut out_shape = p.batch_shape.clone();
            out_shape.push(plan.out_len(options.scalar_term));
            let mut out = zeros::<T>("log-signature", &out_shape)?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            let source = gpu::Signatures::Paths {
                paths: p.slice(),
                ps,
                opts: options,
            };
            plan.on_gpu(device, source, options, slice)?;
            Ok(out)
        }),
        |threads| {
            if method == LogSigMethod::Bch {
                return bch::log_sig(paths.view(), degree, options, threads);
            }
            // `Expanded` has the signature's layout, so the logarithm replaces the signature row by
            // row and the call allocates (and first-touches) one output, not two.
            let in_place = plan.basis.is_none();
            let st = options.scalar_term as usize;
            let sig_values = p.batch() as u128 * (plan.shape.len() + st) as u128;
            let log_values = if in_place {
                0
            } else {
                p.batch() as u128 * plan.out_len(false) as u128
            };
            let threads = plan.fit::<T>("log-signature", sig_values, log_values, threads)?;
            let cpu_options = options
                .clone()
                .scalar_term(in_place && options.scalar_term)
                .device(Device::Cpu);
            let mut sigs = sig(paths.view(), degree, &cpu_options)?;
            if in_place {
                plan.log_in_place(&mut sigs, cpu_options.scalar_term, threads);
                Ok(sigs)
            } else {
                let s = Rows::new("sig", sigs.view(), 1)?;
                plan.forward(&s, false, options.scalar_term, threads)
            }
        },
    )?;
    check_result("log-signature", &out, 1)?;
    Ok(out)
}

/// The log-signatures of signatures already on a GPU (rows of the levels over `dim` letters, the
/// transforms applied), for [`crate::gpu::GpuSigs::log_sig`].
#[cfg(feature = "gpu")]
pub(crate) fn log_sig_of_device<T: Scalar>(
    device: &gpu::GpuDevice,
    sigs: &wgpu::Buffer,
    batch_shape: &[usize],
    dim: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let plan = Plan::new(dim, degree, method)?;
    let mut out_shape = batch_shape.to_vec();
    out_shape.push(plan.out_len(options.scalar_term));
    let mut out = zeros::<T>("log-signature", &out_shape)?;
    let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
    if !slice.is_empty() {
        plan.on_gpu(device, gpu::Signatures::Device(sigs), options, slice)?;
    }
    record(&Backend::Gpu(device.clone()));
    check_result("log-signature", &out, 1)?;
    Ok(out)
}

/// The body of [`crate::sig_to_log_sig`] (see [`crate::api`]).
pub(crate) fn sig_to_log_sig<T: Scalar>(
    sigs: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let plan = Plan::for_dimension(dimension, degree, method, options)?;
    let s = Rows::new("sig", sigs, 1)?;
    let st = infer_scalar_term("sig", s.last(), plan.shape.len())?;
    s.check_finite("sig", false)?;
    // About `degree` multiply-adds per coefficient for the logarithm.
    let work = (s.batch() * plan.shape.degree) as u128 * plan.shape.len() as u128;
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        work,
        on_gpu!(|device| {
            let mut out_shape = s.batch_shape.clone();
            out_shape.push(plan.out_len(st));
            let mut out = zeros::<T>("log-signature", &out_shape)?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            let source = gpu::Signatures::Given {
                sigs: s.slice(),
                st,
            };
            let options = options.clone().scalar_term(st);
            plan.on_gpu(device, source, &options, slice)?;
            Ok(out)
        }),
        |threads| {
            let out_values = s.batch() as u128 * plan.out_len(st) as u128;
            let threads = plan.fit::<T>("log-signature", out_values, 0, threads)?;
            plan.forward(&s, st, st, threads)
        },
    )?;
    check_result("log-signature", &out, 1)?;
    Ok(out)
}

/// The body of [`crate::log_sig_backprop`] (see [`crate::api`]).
pub(crate) fn log_sig_backprop<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    log_sig_derivs: ArrayViewD<'_, T>,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let p = path_rows("path", paths.view())?;
    let plan = Plan::new(
        aug_dim(
            p.last(),
            options.transform.time_aug,
            options.transform.lead_lag,
        )?,
        degree,
        method,
    )?;
    let g = Rows::new("log_sig_derivs", log_sig_derivs, 1)?;
    same_batch("path", &p, "log_sig_derivs", &g)?;
    let out_st = options.scalar_term && method == LogSigMethod::Expanded;
    expect_len("log_sig_derivs", &g, plan.out_len(out_st))?;
    g.check_finite("log_sig_derivs", false)?;
    let shape = paths.shape();
    let ps = PathsShape {
        length: shape[shape.len() - 2],
        dim: p.last(),
    };
    let sig_options = without_scalar(options);
    // The reverse sweep costs about three forward passes, the signatures one more.
    let work = plan.workload(p.batch(), &ps, options).saturating_mul(4);
    execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        work,
        on_gpu!(|device| {
            let brackets = plan.gpu_brackets::<T>(device)?;
            let mut host = Vec::new();
            let threads = crate::threads(options.exec.n_jobs)?;
            let derivs = plan.gpu_derivs(&g, out_st, brackets.as_ref(), &mut host, threads)?;
            let values = p.slice().len();
            fit_gpu::<T>("path gradient", values as u128, values + derivs.rows.len())?;
            let mut out = zeros::<T>("path gradient", p.data.shape())?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            let paths = gpu::LogSigPaths::Host(p.slice());
            gpu::log_sig_backprop(device, &plan.shape, paths, ps, &sig_options, &derivs, slice)?;
            check_result("path gradient", &out, 2)?;
            Ok(out)
        }),
        |threads| {
            if method == LogSigMethod::Bch {
                return bch::log_sig_backprop(paths.view(), &g, degree, options, threads);
            }
            let cpu_options = sig_options
                .clone()
                .device(Device::Cpu)
                .n_jobs(i32::try_from(threads).unwrap_or(i32::MAX));
            let sigs = sig(paths.view(), degree, &cpu_options)?;
            let s = Rows::new("sig", sigs.view(), 1)?;
            let values = s.data.len() as u128;
            let threads = plan.fit::<T>("signature gradient", values, values, threads)?;
            let sig_derivs = plan.backward(&s, false, &g, out_st, threads)?;
            check_result("signature gradient", &sig_derivs, 1)?;
            sig_backprop(
                paths.view(),
                sigs.view(),
                sig_derivs.view(),
                degree,
                &cpu_options,
            )
        },
    )
}

/// The path gradients of `F(log_sig(paths))` for paths and signatures already on a GPU, for
/// [`crate::gpu::GpuSigs::log_sig_backprop`].
#[cfg(feature = "gpu")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn log_sig_backprop_of_device<T: Scalar>(
    device: &gpu::GpuDevice,
    (paths, sigs): (&wgpu::Buffer, &wgpu::Buffer),
    batch_shape: &[usize],
    ps: PathsShape,
    degree: usize,
    method: LogSigMethod,
    log_sig_derivs: ArrayViewD<'_, T>,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let plan = Plan::new(
        aug_dim(
            ps.dim,
            options.transform.time_aug,
            options.transform.lead_lag,
        )?,
        degree,
        method,
    )?;
    let g = Rows::new("log_sig_derivs", log_sig_derivs, 1)?;
    let out_st = options.scalar_term && method == LogSigMethod::Expanded;
    if g.batch_shape != batch_shape {
        return Err(Error::invalid(format!(
            "log_sig_derivs: expected batch shape {batch_shape:?}, got {:?}",
            g.batch_shape
        )));
    }
    expect_len("log_sig_derivs", &g, plan.out_len(out_st))?;
    g.check_finite("log_sig_derivs", false)?;
    let brackets = plan.gpu_brackets::<T>(device)?;
    let mut host = Vec::new();
    let threads = crate::threads(options.exec.n_jobs)?;
    let derivs = plan.gpu_derivs(&g, out_st, brackets.as_ref(), &mut host, threads)?;
    let mut out_shape = batch_shape.to_vec();
    out_shape.extend([ps.length, ps.dim]);
    let mut out = zeros::<T>("path gradient", &out_shape)?;
    let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
    let source = gpu::LogSigPaths::Device { paths, sigs };
    let sig_options = without_scalar(options);
    gpu::log_sig_backprop(
        device,
        &plan.shape,
        source,
        ps,
        &sig_options,
        &derivs,
        slice,
    )?;
    record(&Backend::Gpu(device.clone()));
    check_result("path gradient", &out, 2)?;
    Ok(out)
}

/// The body of [`crate::sig_to_log_sig_backprop`] (see [`crate::api`]).
pub(crate) fn sig_to_log_sig_backprop<T: Scalar>(
    sigs: ArrayViewD<'_, T>,
    log_sig_derivs: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let plan = Plan::for_dimension(dimension, degree, method, options)?;
    let s = Rows::new("sig", sigs, 1)?;
    let st = infer_scalar_term("sig", s.last(), plan.shape.len())?;
    let g = Rows::new("log_sig_derivs", log_sig_derivs, 1)?;
    same_batch("sig", &s, "log_sig_derivs", &g)?;
    expect_len("log_sig_derivs", &g, plan.out_len(st))?;
    s.check_finite("sig", false)?;
    g.check_finite("log_sig_derivs", false)?;
    let values = s.data.len() as u128;
    // About `2·degree` multiply-adds per coefficient for the logarithm's reverse.
    let work = (s.batch() * 2 * plan.shape.degree) as u128 * plan.shape.len() as u128;
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        work,
        on_gpu!(|device| {
            let brackets = plan.gpu_brackets::<T>(device)?;
            let mut host = Vec::new();
            let threads = crate::threads(options.exec.n_jobs)?;
            let derivs = plan.gpu_derivs(&g, st, brackets.as_ref(), &mut host, threads)?;
            fit_gpu::<T>(
                "signature gradient",
                values,
                s.data.len() + derivs.rows.len(),
            )?;
            let mut out = zeros::<T>("signature gradient", s.data.shape())?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            let st = st as usize;
            gpu::sig_to_log_sig_backprop(device, &plan.shape, s.slice(), st, &derivs, slice)?;
            Ok(out)
        }),
        |threads| {
            let threads = plan.fit::<T>("signature gradient", values, 0, threads)?;
            plan.backward(&s, st, &g, st, threads)
        },
    )?;
    check_result("signature gradient", &out, 1)?;
    Ok(out)
}

fn without_scalar(options: &SigOptions) -> SigOptions {
    options.clone().scalar_term(false)
}

/// What one log-signature computation needs: the shape and, for the Lyndon forms, the basis.
struct Plan {
    shape: TensorShape,
    method: LogSigMethod,
    basis: Option<Arc<Basis>>,
}

/// One thread's buffers.
struct Workspace<T> {
    log: SeriesScratch<T>,
    /// The expanded logarithm (forward) or its gradient (reverse).
    expanded: Vec<T>,
    /// Lyndon coordinates' gradients, solved in place.
    coords: Vec<T>,
}

impl Plan {
    fn new(dim: usize, degree: usize, method: LogSigMethod) -> Result<Plan> {
        if degree == 0 {
            return Err(Error::NotPositive { what: "degree" });
        }
        if dim == 0 {
            return Err(Error::NotPositive { what: "dimension" });
        }
        let shape = TensorShape::new(dim, degree)?;
        let method = method.layout();
        let basis = match method {
            LogSigMethod::Expanded => None,
            _ => Some(lyndon::basis(dim, degree)?),
        };
        if let (LogSigMethod::Lyndon, Some(b)) = (method, &basis) {
            b.brackets();
        }
        Ok(Plan {
            shape,
            method,
            basis,
        })
    }

    /// For signatures of `dimension`-channel paths under the transforms in `options`.
    fn for_dimension(
        dimension: usize,
        degree: usize,
        method: LogSigMethod,
        options: &SigOptions,
    ) -> Result<Plan> {
        if dimension == 0 {
            return Err(Error::NotPositive { what: "dimension" });
        }
        let dim = aug_dim(
            dimension,
            options.transform.time_aug,
            options.transform.lead_lag,
        )?;
        Plan::new(dim, degree, method)
    }

    /// About the multiply-adds of `log_sig` (for `Device::Auto`): the signatures'
    /// `batch · increments · sig_length`, and about `degree · sig_length` per path for the logarithm.
    fn workload(&self, batch: usize, ps: &PathsShape, options: &SigOptions) -> u128 {
        let increments = ps.length.saturating_sub(1) * (1 + options.transform.lead_lag as usize);
        let per_path = (increments + self.shape.degree) as u128 * self.shape.len() as u128;
        batch as u128 * per_path
    }

    /// Output length, with a leading scalar slot when `scalar` (only `Expanded` has one).
    fn out_len(&self, scalar: bool) -> usize {
        match &self.basis {
            None => self.shape.len() + scalar as usize,
            Some(b) => b.len(),
        }
    }

    /// The bytes of one [`Workspace`], field by field.
    fn workspace_bytes<T: Scalar>(&self) -> u128 {
        let (shape, degree) = (&self.shape, self.shape.degree);
        // The tensor logarithm's chain of partial products, and its ping and pong.
        let chain: u128 = (1..degree)
            .map(|m| shape.offset(degree - m + 1) as u128)
            .sum();
        let top = if degree == 0 {
            0
        } else {
            shape.offset(degree) as u128
        };
        let coords = self.basis.as_ref().map_or(0, |b| b.len()) as u128;
        let values = chain + 2 * top + shape.len() as u128 + coords;
        values * std::mem::size_of::<T>() as u128
    }

    /// The most threads, at most `threads`, for which `output` values, `shared` values held beside
    /// them and one workspace per thread fit in memory.
    fn fit<T: Scalar>(
        &self,
        what: &str,
        output: u128,
        shared: u128,
        threads: usize,
    ) -> Result<usize> {
        let size = std::mem::size_of::<T>() as u128;
        fit_threads(what, threads, |_| Memory {
            output: output.saturating_mul(size),
            shared: shared.saturating_mul(size),
            per_thread: self.workspace_bytes::<T>(),
        })
    }

    fn workspace<T: Scalar>(&self) -> Workspace<T> {
        Workspace {
            log: SeriesScratch::new(&self.shape),
            expanded: vec![T::zero(); self.shape.len()],
            coords: vec![T::zero(); self.basis.as_ref().map_or(0, |b| b.len())],
        }
    }

    /// Log-signatures into `out` on `device` (rows as [`Plan::out_len`] with `options.scalar_term`).
    /// The Lyndon bracket basis' sparse triangular solve runs on the device after the logarithm,
    /// or on the CPU afterwards where one substitution exceeds the adapter's loop budget.
    #[cfg(feature = "gpu")]
    fn on_gpu<T: Scalar>(
        &self,
        device: &gpu::GpuDevice,
        source: gpu::Signatures<'_, T>,
        options: &SigOptions,
        out: &mut [T],
    ) -> Result<()> {
        let words = self.basis.as_ref().map(|b| b.flat.as_slice());
        let brackets = self.gpu_brackets::<T>(device)?;
        let st = options.scalar_term;
        gpu::log_sig(
            device,
            &self.shape,
            source,
            words,
            brackets.as_ref(),
            st,
            out,
        )?;
        if brackets.is_some() {
            return Ok(());
        }
        if let (LogSigMethod::Lyndon, Some(basis)) = (self.method, &self.basis) {
            let threads = crate::threads(options.exec.n_jobs)?;
            let len = basis.len();
            let words = out.to_vec();
            par_rows(
                threads,
                out,
                len,
                || (),
                |_, i, o| {
                    o.copy_from_slice(&words[i * len..(i + 1) * len]);
                    basis.brackets().solve(o);
                },
            );
        }
        Ok(())
    }

    /// Log-signatures of the rows of `s` (each with a leading scalar term when `in_st`); the output
    /// has a leading 0 when `out_st` and the method is `Expanded`.
    fn forward<T: Scalar>(
        &self,
        s: &Rows<T>,
        in_st: bool,
        out_st: bool,
        threads: usize,
    ) -> Result<ArrayD<T>> {
        let out_st = out_st && self.basis.is_none();
        let out_len = self.out_len(out_st);
        let mut out_shape = s.batch_shape.clone();
        out_shape.push(out_len);
        let mut out = zeros::<T>("log-signature", &out_shape)?;
        let (row, skip, n) = (s.last(), in_st as usize, self.shape.len());
        let xs = s.slice();
        par_rows(
            threads,
            out.as_slice_mut().expect("fresh arrays are contiguous"),
            out_len,
            || self.workspace(),
            |ws, i, o| self.forward_row(&xs[i * row + skip..i * row + skip + n], ws, o, out_st),
        );
        Ok(out)
    }

    /// Replaces each row of `sigs` (signatures in this plan's layout, contiguous, with a leading
    /// scalar term when `st`) by its tensor logarithm (leading 0 when `st`).
    fn log_in_place<T: Scalar>(&self, sigs: &mut ArrayD<T>, st: bool, threads: usize) {
        let n = self.shape.len();
        let row = n + st as usize;
        let slice = sigs.as_slice_mut().expect("signatures are contiguous");
        let st = st as usize;
        par_rows(
            threads,
            slice,
            row,
            || self.workspace(),
            |ws, _, r| {
                ws.expanded.copy_from_slice(&r[st..]);
                r[..st].fill(T::zero());
                tensor_log(&self.shape, &ws.expanded, &mut r[st..], &mut ws.log);
            },
        );
    }

    fn forward_row<T: Scalar>(&self, x: &[T], ws: &mut Workspace<T>, out: &mut [T], st: bool) {
        let Some(basis) = &self.basis else {
            let st = st as usize;
            out[..st].fill(T::zero());
            tensor_log(&self.shape, x, &mut out[st..], &mut ws.log);
            return;
        };
        tensor_log(&self.shape, x, &mut ws.expanded, &mut ws.log);
        for (o, &f) in out.iter_mut().zip(&basis.flat) {
            *o = ws.expanded[f];
        }
        if self.method == LogSigMethod::Lyndon {
            basis.brackets().solve(out);
        }
    }

    /// Gradients with respect to the rows of `s` (each with a leading scalar term when `in_st`, whose
    /// gradient is 0), given the rows of `g` (with a leading entry to skip when `g_st` and the method
    /// is `Expanded`).
    fn backward<T: Scalar>(
        &self,
        s: &Rows<T>,
        in_st: bool,
        g: &Rows<T>,
        g_st: bool,
        threads: usize,
    ) -> Result<ArrayD<T>> {
        let mut out = zeros::<T>("signature gradient", s.data.shape())?;
        let (row, skip, n) = (s.last(), in_st as usize, self.shape.len());
        let (g_row, g_skip) = (g.last(), (g_st && self.basis.is_none()) as usize);
        let (xs, gs) = (s.slice(), g.slice());
        par_rows(
            threads,
            out.as_slice_mut().expect("fresh arrays are contiguous"),
            row,
            || self.workspace(),
            |ws, i, o| {
                let x = &xs[i * row + skip..i * row + skip + n];
                let gi = &gs[i * g_row + g_skip..(i + 1) * g_row];
                self.backward_row(x, gi, ws, &mut o[skip..]);
            },
        );
        Ok(out)
    }

    fn backward_row<T: Scalar>(&self, x: &[T], g: &[T], ws: &mut Workspace<T>, dx: &mut [T]) {
        self.expand_row(g, &mut ws.coords, &mut ws.expanded);
        tensor_log_backprop(&self.shape, x, &ws.expanded, dx, &mut ws.log);
    }

    /// `dF/dlog` in the expanded layout from one row `g` of derivatives of the method's form:
    /// the Lyndon coordinates' through the transposed bracket solve (in `coords`), the Lyndon
    /// words' scattered to their places.
    fn expand_row<T: Scalar>(&self, g: &[T], coords: &mut [T], expanded: &mut [T]) {
        match &self.basis {
            None => expanded.copy_from_slice(g),
            Some(basis) => {
                coords.copy_from_slice(g);
                if self.method == LogSigMethod::Lyndon {
                    basis.brackets().solve_transpose(coords);
                }
                expanded.fill(T::zero());
                for (&c, &f) in coords.iter().zip(&basis.flat) {
                    expanded[f] = c;
                }
            }
        }
    }

    /// The bracket triangle for the GPU, when the form is `Lyndon` and `device` can solve it (one
    /// substitution within its loop budget, indices within `u32`); `None` otherwise.
    #[cfg(feature = "gpu")]
    fn gpu_brackets<T: Scalar>(&self, device: &gpu::GpuDevice) -> Result<Option<gpu::Brackets<T>>> {
        match self.method {
            LogSigMethod::Lyndon => self.gpu_triangle(device),
            _ => Ok(None),
        }
    }

    /// The bracket triangle for the GPU whatever the form, when the plan has a basis and `device`
    /// can solve it; `None` otherwise.
    #[cfg(feature = "gpu")]
    fn gpu_triangle<T: Scalar>(&self, device: &gpu::GpuDevice) -> Result<Option<gpu::Brackets<T>>> {
        let Some(basis) = &self.basis else {
            return Ok(None);
        };
        let triangle = basis.brackets();
        let starts = basis.level_starts();
        let levels = starts.iter().map(|&x| u32::try_from(x).ok()).collect();
        let (Some((row_start, cols, vals)), Some(levels)) = (triangle.csr(), levels) else {
            return Ok(None);
        };
        let brackets = gpu::Brackets {
            row_start,
            cols,
            vals: vals.into_iter().map(T::from_f64).collect(),
            levels,
            widest: triangle.widest_level(&starts),
        };
        Ok(brackets.fit(device)?.then_some(brackets))
    }

    /// The derivatives `g` of this form (after a scalar term when `g_st` and the form is
    /// `Expanded`) as the GPU's reverse logarithm reads them: in place, through the Lyndon words'
    /// positions, with the bracket form's transposed solve on the device where `brackets` is given;
    /// else (the bracket form on an adapter that cannot solve it) expanded here into `host`.
    #[cfg(feature = "gpu")]
    fn gpu_derivs<'a, T: Scalar>(
        &self,
        g: &'a Rows<'_, T>,
        g_st: bool,
        brackets: Option<&'a gpu::Brackets<T>>,
        host: &'a mut Vec<T>,
        threads: usize,
    ) -> Result<gpu::LogSigDerivs<'a, T>> {
        let (rows, row) = (g.slice(), g.last());
        let Some(basis) = &self.basis else {
            let st = g_st as usize;
            return Ok(gpu::LogSigDerivs {
                rows,
                row,
                st,
                positions: None,
                brackets: None,
            });
        };
        if self.method == LogSigMethod::Lyndon && brackets.is_none() {
            *host = self.expanded_derivs(g, false, threads)?;
            let row = self.shape.len();
            return Ok(gpu::LogSigDerivs {
                rows: host,
                row,
                st: 0,
                positions: None,
                brackets: None,
            });
        }
        let mut positions = vec![u32::MAX; self.shape.len()];
        for (p, &f) in basis.flat.iter().enumerate() {
            positions[f] = u32::try_from(p)
                .map_err(|_| Error::Device("too many Lyndon words for the GPU".into()))?;
        }
        Ok(gpu::LogSigDerivs {
            rows,
            row,
            st: 0,
            positions: Some(positions),
            brackets,
        })
    }

    /// Every row of `g` (after its scalar term when `g_st` and the form is `Expanded`) expanded by
    /// [`Plan::expand_row`]: rows of `shape.len()`, for the GPU's reverse logarithm.
    #[cfg(feature = "gpu")]
    fn expanded_derivs<T: Scalar>(
        &self,
        g: &Rows<T>,
        g_st: bool,
        threads: usize,
    ) -> Result<Vec<T>> {
        let len = self.shape.len();
        let (g_row, g_skip) = (g.last(), (g_st && self.basis.is_none()) as usize);
        let mut out = zeros::<T>("log-signature derivatives", &[g.batch(), len])?;
        let coords = self.basis.as_ref().map_or(0, |b| b.len());
        let gs = g.slice();
        par_rows(
            threads,
            out.as_slice_mut().expect("fresh arrays are contiguous"),
            len,
            || vec![T::zero(); coords],
            |c, i, o| self.expand_row(&gs[i * g_row + g_skip..(i + 1) * g_row], c, o),
        );
        Ok(out.into_raw_vec_and_offset().0)
    }
}

/// The body of [`crate::lyndon_to_words`] (see [`crate::api`]).
pub(crate) fn lyndon_to_words<T: Scalar>(
    coords: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
) -> Result<ArrayD<T>> {
    let plan = Plan::new(dimension, degree, LogSigMethod::Lyndon)?;
    let basis = plan.basis.as_ref().expect("the Lyndon method has a basis");
    let c = Rows::new("coords", coords, 1)?;
    expect_len("coords", &c, basis.len())?;
    let mut out = zeros::<T>("Lyndon-word coefficients", c.data.shape())?;
    let len = basis.len();
    let xs = c.slice();
    par_rows(
        1,
        out.as_slice_mut().expect("fresh arrays are contiguous"),
        len,
        || (),
        |_, i, o| basis.brackets().multiply(&xs[i * len..(i + 1) * len], o),
    );
    Ok(out)
}
