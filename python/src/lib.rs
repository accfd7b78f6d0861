//! `roughsig._native`: the library's operations on numpy arrays.
//!
//! The Python layer (`roughsig/__init__.py`) gives the functions pySigLib's signatures, checks the
//! arguments' types and casts the arrays of one call to one float dtype. This module reads those
//! arrays in place (no copy, whatever their strides), releases the GIL while the library computes,
//! hands the result to numpy without a copy, and turns the library's errors into Python exceptions:
//! `RuntimeError` for the device, `ValueError` for everything about the input.

use numpy::{Element, IntoPyArray, PyArrayDyn, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use roughsig::ndarray::ArrayD;
use roughsig::{
    Device, DyadicOrder, Error, KernelSolver, LogSigMethod, Scalar, SigKernelOptions, SigOptions,
    StaticKernel,
};

/// The library's error as the Python exception a caller expects.
fn py_err(e: Error) -> PyErr {
    match e {
        Error::Device(_) => PyRuntimeError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// Binds `$T` to the float type of `$first` (float64 or float32) and evaluates `$body` with it; the
/// Python layer gives every array of a call the same dtype.
macro_rules! by_dtype {
    ($first:expr, $T:ident => $body:expr) => {
        if $first.cast::<PyArrayDyn<f64>>().is_ok() {
            type $T = f64;
            $body
        } else if $first.cast::<PyArrayDyn<f32>>().is_ok() {
            type $T = f32;
            $body
        } else {
            Err(PyTypeError::new_err("arrays must be float32 or float64"))
        }
    };
}

/// A read-only borrow of a numpy array of `T` (an error if another dtype slipped through).
fn read<'py, T: Element>(a: &Bound<'py, PyAny>) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    a.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a {} array, got {}",
            std::any::type_name::<T>(),
            a.get_type()
        ))
    })
}

fn array<T: Element>(py: Python<'_>, r: roughsig::Result<ArrayD<T>>) -> PyResult<Py<PyAny>> {
    Ok(r.map_err(py_err)?.into_pyarray(py).into_any().unbind())
}

fn pair<T: Element>(
    py: Python<'_>,
    r: roughsig::Result<(ArrayD<T>, ArrayD<T>)>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let (a, b) = r.map_err(py_err)?;
    Ok((
        a.into_pyarray(py).into_any().unbind(),
        b.into_pyarray(py).into_any().unbind(),
    ))
}

/// `"cpu"`, `"gpu"`, `"gpu:NAME"` (an adapter whose name contains NAME) or `"auto"`.
fn device(name: &str) -> PyResult<Device> {
    match name.strip_prefix("gpu:") {
        Some(adapter) => Ok(Device::Gpu(Some(adapter.to_string()))),
        None => name.parse().map_err(py_err),
    }
}

/// The options of the signature operations, from a dict with every key.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct SigArgs {
    time_aug: bool,
    lead_lag: bool,
    end_time: f64,
    scalar_term: bool,
    n_jobs: i32,
    device: String,
}

impl SigArgs {
    fn options(&self) -> PyResult<SigOptions> {
        Ok(SigOptions::default()
            .time_aug(self.time_aug)
            .lead_lag(self.lead_lag)
            .end_time(self.end_time)
            .scalar_term(self.scalar_term)
            .n_jobs(self.n_jobs)
            .device(device(&self.device)?))
    }
}

/// The options of the signature kernels, from a dict with every key; `static_kernel` is the
/// kernel in the command line's syntax (`rbf:0.5`, `polynomial:3.0,1.0,1.0`, …).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct KernelArgs {
    dyadic_order: (usize, usize),
    static_kernel: String,
    time_aug: bool,
    lead_lag: bool,
    end_time: f64,
    normalize: bool,
    return_grid: bool,
    n_jobs: i32,
    device: String,
    /// pySigLib's `max_batch`, -1 for no bound (checked by the Python layer).
    max_batch: i64,
    /// The polynomial solver's order, or 0 for finite differences.
    order: usize,
}

impl KernelArgs {
    fn options(&self) -> PyResult<SigKernelOptions> {
        let kernel: StaticKernel = self.static_kernel.parse().map_err(py_err)?;
        let mut opts = match usize::try_from(self.max_batch) {
            Ok(pairs) => SigKernelOptions::default().max_batch(pairs),
            Err(_) => SigKernelOptions::default(),
        };
        if self.order > 0 {
            opts = opts.solver(KernelSolver::Polynomial { order: self.order });
        }
        Ok(opts
            .dyadic_order(DyadicOrder::from(self.dyadic_order))
            .static_kernel(kernel)
            .time_aug(self.time_aug)
            .lead_lag(self.lead_lag)
            .end_time(self.end_time)
            .normalize(self.normalize)
            .return_grid(self.return_grid)
            .n_jobs(self.n_jobs)
            .device(device(&self.device)?))
    }
}

fn method(m: i64) -> PyResult<LogSigMethod> {
    LogSigMethod::from_pysiglib(m).map_err(py_err)
}

/// `sig`, or `sig_corrected` where a correction is given (of the path's dtype).
#[pyfunction]
#[pyo3(signature = (path, degree, args, correction=None))]
fn sig(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    degree: usize,
    args: SigArgs,
    correction: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(path, T => {
        let path = read::<T>(path)?;
        let p = path.as_array();
        match correction {
            None => array(py, py.detach(|| roughsig::sig(p, degree, &opts))),
            Some(c) => {
                let c = read::<T>(c)?;
                let c = c.as_array();
                array(py, py.detach(|| roughsig::sig_corrected(p, c, degree, &opts)))
            }
        }
    })
}

/// `sig_backprop`, or `sig_corrected_backprop` where a correction is given.
#[pyfunction]
#[pyo3(signature = (path, sig, sig_derivs, degree, args, correction=None))]
fn sig_backprop(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    sig: &Bound<'_, PyAny>,
    sig_derivs: &Bound<'_, PyAny>,
    degree: usize,
    args: SigArgs,
    correction: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(path, T => {
        let (path, sig, derivs) = (read::<T>(path)?, read::<T>(sig)?, read::<T>(sig_derivs)?);
        let (p, s, d) = (path.as_array(), sig.as_array(), derivs.as_array());
        match correction {
            None => array(py, py.detach(|| roughsig::sig_backprop(p, s, d, degree, &opts))),
            Some(c) => {
                let c = read::<T>(c)?;
                let c = c.as_array();
                array(
                    py,
                    py.detach(|| roughsig::sig_corrected_backprop(p, c, s, d, degree, &opts)),
                )
            }
        }
    })
}

#[pyfunction]
fn transform_path(py: Python<'_>, path: &Bound<'_, PyAny>, args: SigArgs) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(path, T => {
        let path = read::<T>(path)?;
        let p = path.as_array();
        array(py, py.detach(|| roughsig::transform_path(p, &opts)))
    })
}

#[pyfunction]
fn transform_path_backprop(
    py: Python<'_>,
    derivs: &Bound<'_, PyAny>,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(derivs, T => {
        let derivs = read::<T>(derivs)?;
        let d = derivs.as_array();
        array(py, py.detach(|| roughsig::transform_path_backprop(d, &opts)))
    })
}

#[pyfunction]
fn sig_combine(
    py: Python<'_>,
    sig1: &Bound<'_, PyAny>,
    sig2: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(sig1, T => {
        let (a, b) = (read::<T>(sig1)?, read::<T>(sig2)?);
        let (a, b) = (a.as_array(), b.as_array());
        array(py, py.detach(|| roughsig::sig_combine(a, b, dimension, degree, &opts)))
    })
}

#[pyfunction]
fn sig_combine_backprop(
    py: Python<'_>,
    deriv: &Bound<'_, PyAny>,
    sig1: &Bound<'_, PyAny>,
    sig2: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    args: SigArgs,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let opts = args.options()?;
    by_dtype!(deriv, T => {
        let (d, a, b) = (read::<T>(deriv)?, read::<T>(sig1)?, read::<T>(sig2)?);
        let (d, a, b) = (d.as_array(), a.as_array(), b.as_array());
        pair(py, py.detach(|| roughsig::sig_combine_backprop(d, a, b, dimension, degree, &opts)))
    })
}

#[pyfunction]
fn sig_join(
    py: Python<'_>,
    sig: &Bound<'_, PyAny>,
    displacement: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    prepend: bool,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(sig, T => {
        let (s, v) = (read::<T>(sig)?, read::<T>(displacement)?);
        let (s, v) = (s.as_array(), v.as_array());
        array(py, py.detach(|| roughsig::sig_join(s, v, dimension, degree, prepend, &opts)))
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)] // pySigLib's arguments, one for one
fn sig_join_backprop(
    py: Python<'_>,
    deriv: &Bound<'_, PyAny>,
    sig: &Bound<'_, PyAny>,
    displacement: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    prepend: bool,
    args: SigArgs,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let opts = args.options()?;
    by_dtype!(deriv, T => {
        let (d, s, v) = (read::<T>(deriv)?, read::<T>(sig)?, read::<T>(displacement)?);
        let (d, s, v) = (d.as_array(), s.as_array(), v.as_array());
        pair(py, py.detach(|| {
            roughsig::sig_join_backprop(d, s, v, dimension, degree, prepend, &opts)
        }))
    })
}

/// `log_sig`, or `log_sig_corrected` where a correction is given.
#[pyfunction]
#[pyo3(signature = (path, degree, method, args, correction=None))]
fn log_sig(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    degree: usize,
    method: i64,
    args: SigArgs,
    correction: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let (opts, m) = (args.options()?, self::method(method)?);
    by_dtype!(path, T => {
        let path = read::<T>(path)?;
        let p = path.as_array();
        match correction {
            None => array(py, py.detach(|| roughsig::log_sig(p, degree, m, &opts))),
            Some(c) => {
                let c = read::<T>(c)?;
                let c = c.as_array();
                array(py, py.detach(|| roughsig::log_sig_corrected(p, c, degree, m, &opts)))
            }
        }
    })
}

#[pyfunction]
fn log_sig_backprop(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    log_sig_derivs: &Bound<'_, PyAny>,
    degree: usize,
    method: i64,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let (opts, m) = (args.options()?, self::method(method)?);
    by_dtype!(path, T => {
        let (path, derivs) = (read::<T>(path)?, read::<T>(log_sig_derivs)?);
        let (p, d) = (path.as_array(), derivs.as_array());
        array(py, py.detach(|| roughsig::log_sig_backprop(p, d, degree, m, &opts)))
    })
}

#[pyfunction]
fn sig_to_log_sig(
    py: Python<'_>,
    sig: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    method: i64,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let (opts, m) = (args.options()?, self::method(method)?);
    by_dtype!(sig, T => {
        let sig = read::<T>(sig)?;
        let s = sig.as_array();
        array(py, py.detach(|| roughsig::sig_to_log_sig(s, dimension, degree, m, &opts)))
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)] // pySigLib's arguments, one for one
fn sig_to_log_sig_backprop(
    py: Python<'_>,
    sig: &Bound<'_, PyAny>,
    log_sig_derivs: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    method: i64,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let (opts, m) = (args.options()?, self::method(method)?);
    by_dtype!(sig, T => {
        let (sig, derivs) = (read::<T>(sig)?, read::<T>(log_sig_derivs)?);
        let (s, d) = (sig.as_array(), derivs.as_array());
        array(py, py.detach(|| {
            roughsig::sig_to_log_sig_backprop(s, d, dimension, degree, m, &opts)
        }))
    })
}

#[pyfunction]
fn log_sig_to_sig(
    py: Python<'_>,
    log_sig: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    method: i64,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let (opts, m) = (args.options()?, self::method(method)?);
    by_dtype!(log_sig, T => {
        let l = read::<T>(log_sig)?;
        let l = l.as_array();
        array(py, py.detach(|| roughsig::log_sig_to_sig(l, dimension, degree, m, &opts)))
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)] // pySigLib's arguments, one for one
fn log_sig_to_sig_backprop(
    py: Python<'_>,
    log_sig: &Bound<'_, PyAny>,
    sig_derivs: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    method: i64,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let (opts, m) = (args.options()?, self::method(method)?);
    by_dtype!(log_sig, T => {
        let (l, g) = (read::<T>(log_sig)?, read::<T>(sig_derivs)?);
        let (l, g) = (l.as_array(), g.as_array());
        array(py, py.detach(|| {
            roughsig::log_sig_to_sig_backprop(l, g, dimension, degree, m, &opts)
        }))
    })
}

#[pyfunction]
fn linear_sig(
    py: Python<'_>,
    displacement: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(displacement, T => {
        let v = read::<T>(displacement)?;
        let v = v.as_array();
        array(py, py.detach(|| roughsig::linear_sig(v, dimension, degree, &opts)))
    })
}

#[pyfunction]
fn linear_sig_backprop(
    py: Python<'_>,
    derivs: &Bound<'_, PyAny>,
    displacement: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(displacement, T => {
        let (g, v) = (read::<T>(derivs)?, read::<T>(displacement)?);
        let (g, v) = (g.as_array(), v.as_array());
        array(py, py.detach(|| roughsig::linear_sig_backprop(g, v, dimension, degree, &opts)))
    })
}

#[pyfunction]
fn linear_log_sig(
    py: Python<'_>,
    displacement: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    method: i64,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let (opts, m) = (args.options()?, self::method(method)?);
    by_dtype!(displacement, T => {
        let v = read::<T>(displacement)?;
        let v = v.as_array();
        array(py, py.detach(|| roughsig::linear_log_sig(v, dimension, degree, m, &opts)))
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)] // pySigLib's arguments, one for one
fn linear_log_sig_backprop(
    py: Python<'_>,
    derivs: &Bound<'_, PyAny>,
    displacement: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    method: i64,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let (opts, m) = (args.options()?, self::method(method)?);
    by_dtype!(displacement, T => {
        let (g, v) = (read::<T>(derivs)?, read::<T>(displacement)?);
        let (g, v) = (g.as_array(), v.as_array());
        array(py, py.detach(|| {
            roughsig::linear_log_sig_backprop(g, v, dimension, degree, m, &opts)
        }))
    })
}

#[pyfunction]
fn log_sig_combine(
    py: Python<'_>,
    log_sig1: &Bound<'_, PyAny>,
    log_sig2: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(log_sig1, T => {
        let (a, b) = (read::<T>(log_sig1)?, read::<T>(log_sig2)?);
        let (a, b) = (a.as_array(), b.as_array());
        array(py, py.detach(|| roughsig::log_sig_combine(a, b, dimension, degree, &opts)))
    })
}

#[pyfunction]
fn log_sig_combine_backprop(
    py: Python<'_>,
    deriv: &Bound<'_, PyAny>,
    log_sig1: &Bound<'_, PyAny>,
    log_sig2: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    args: SigArgs,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let opts = args.options()?;
    by_dtype!(log_sig1, T => {
        let (g, a, b) = (read::<T>(deriv)?, read::<T>(log_sig1)?, read::<T>(log_sig2)?);
        let (g, a, b) = (g.as_array(), a.as_array(), b.as_array());
        pair(py, py.detach(|| {
            roughsig::log_sig_combine_backprop(g, a, b, dimension, degree, &opts)
        }))
    })
}

#[pyfunction]
fn log_sig_join(
    py: Python<'_>,
    log_sig: &Bound<'_, PyAny>,
    displacement: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(log_sig, T => {
        let (l, v) = (read::<T>(log_sig)?, read::<T>(displacement)?);
        let (l, v) = (l.as_array(), v.as_array());
        array(py, py.detach(|| roughsig::log_sig_join(l, v, dimension, degree, &opts)))
    })
}

#[pyfunction]
fn log_sig_join_backprop(
    py: Python<'_>,
    deriv: &Bound<'_, PyAny>,
    log_sig: &Bound<'_, PyAny>,
    displacement: &Bound<'_, PyAny>,
    dimension: usize,
    degree: usize,
    args: SigArgs,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let opts = args.options()?;
    by_dtype!(log_sig, T => {
        let (g, l, v) = (read::<T>(deriv)?, read::<T>(log_sig)?, read::<T>(displacement)?);
        let (g, l, v) = (g.as_array(), l.as_array(), v.as_array());
        pair(py, py.detach(|| {
            roughsig::log_sig_join_backprop(g, l, v, dimension, degree, &opts)
        }))
    })
}

#[pyfunction]
fn sig_coef(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    words: Vec<Vec<usize>>,
    prefixes: bool,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(path, T => {
        let path = read::<T>(path)?;
        let p = path.as_array();
        array(py, py.detach(|| roughsig::sig_coef(p, &words, prefixes, &opts)))
    })
}

#[pyfunction]
fn sig_coef_backprop(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    words: Vec<Vec<usize>>,
    derivs: &Bound<'_, PyAny>,
    args: SigArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(path, T => {
        let (path, derivs) = (read::<T>(path)?, read::<T>(derivs)?);
        let (p, d) = (path.as_array(), derivs.as_array());
        array(py, py.detach(|| roughsig::sig_coef_backprop(p, &words, d, &opts)))
    })
}

#[pyfunction]
fn sig_kernel(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    args: KernelArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(x, T => {
        let (x, y) = (read::<T>(x)?, read::<T>(y)?);
        let (x, y) = (x.as_array(), y.as_array());
        array(py, py.detach(|| roughsig::sig_kernel(x, y, &opts)))
    })
}

#[pyfunction]
fn sig_kernel_backprop(
    py: Python<'_>,
    derivs: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    args: KernelArgs,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let opts = args.options()?;
    by_dtype!(derivs, T => {
        let (d, x, y) = (read::<T>(derivs)?, read::<T>(x)?, read::<T>(y)?);
        let (d, x, y) = (d.as_array(), x.as_array(), y.as_array());
        pair(py, py.detach(|| roughsig::sig_kernel_backprop(d, x, y, &opts)))
    })
}

/// A scalar result as a 0-d array of its dtype, as pySigLib returns it.
fn scalar<T: Element + Clone>(py: Python<'_>, r: roughsig::Result<T>) -> PyResult<Py<PyAny>> {
    array(
        py,
        r.map(|v| ArrayD::from_elem(roughsig::ndarray::IxDyn(&[]), v)),
    )
}

#[pyfunction]
fn sig_mmd(
    py: Python<'_>,
    sample1: &Bound<'_, PyAny>,
    sample2: &Bound<'_, PyAny>,
    args: KernelArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(sample1, T => {
        let (x, y) = (read::<T>(sample1)?, read::<T>(sample2)?);
        let (x, y) = (x.as_array(), y.as_array());
        scalar(py, py.detach(|| roughsig::sig_mmd(x, y, &opts)))
    })
}

#[pyfunction]
fn sig_score(
    py: Python<'_>,
    sample: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    lam: f64,
    args: KernelArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(sample, T => {
        let (x, y) = (read::<T>(sample)?, read::<T>(y)?);
        let (x, y) = (x.as_array(), y.as_array());
        array(py, py.detach(|| roughsig::sig_score(x, y, lam, &opts)))
    })
}

#[pyfunction]
fn expected_sig_score(
    py: Python<'_>,
    sample1: &Bound<'_, PyAny>,
    sample2: &Bound<'_, PyAny>,
    lam: f64,
    args: KernelArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(sample1, T => {
        let (x, y) = (read::<T>(sample1)?, read::<T>(sample2)?);
        let (x, y) = (x.as_array(), y.as_array());
        scalar(py, py.detach(|| roughsig::expected_sig_score(x, y, lam, &opts)))
    })
}

/// The gradients of `deriv · sig_mmd(sample1, sample2)`.
#[pyfunction]
fn sig_mmd_backprop(
    py: Python<'_>,
    deriv: f64,
    sample1: &Bound<'_, PyAny>,
    sample2: &Bound<'_, PyAny>,
    args: KernelArgs,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let opts = args.options()?;
    by_dtype!(sample1, T => {
        let (x, y) = (read::<T>(sample1)?, read::<T>(sample2)?);
        let (x, y, d) = (x.as_array(), y.as_array(), T::from_f64(deriv));
        pair(py, py.detach(|| roughsig::sig_mmd_backprop(d, x, y, &opts)))
    })
}

/// The gradients of `Σ_j derivs_j · sig_score(sample, y)_j`.
#[pyfunction]
fn sig_score_backprop(
    py: Python<'_>,
    derivs: &Bound<'_, PyAny>,
    sample: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    lam: f64,
    args: KernelArgs,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let opts = args.options()?;
    by_dtype!(sample, T => {
        let (d, x, y) = (read::<T>(derivs)?, read::<T>(sample)?, read::<T>(y)?);
        let (d, x, y) = (d.as_array(), x.as_array(), y.as_array());
        pair(py, py.detach(|| roughsig::sig_score_backprop(d, x, y, lam, &opts)))
    })
}

/// The gradients of `deriv · expected_sig_score(sample1, sample2)`.
#[pyfunction]
fn expected_sig_score_backprop(
    py: Python<'_>,
    deriv: f64,
    sample1: &Bound<'_, PyAny>,
    sample2: &Bound<'_, PyAny>,
    lam: f64,
    args: KernelArgs,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let opts = args.options()?;
    by_dtype!(sample1, T => {
        let (x, y) = (read::<T>(sample1)?, read::<T>(sample2)?);
        let (x, y, d) = (x.as_array(), y.as_array(), T::from_f64(deriv));
        pair(py, py.detach(|| roughsig::expected_sig_score_backprop(d, x, y, lam, &opts)))
    })
}

/// The Gram matrix; `y` is `None` for the symmetric one of `x` with itself.
#[pyfunction]
fn sig_kernel_gram(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: Option<&Bound<'_, PyAny>>,
    args: KernelArgs,
) -> PyResult<Py<PyAny>> {
    let opts = args.options()?;
    by_dtype!(x, T => {
        let x = read::<T>(x)?;
        let xv = x.as_array();
        match y {
            None => array(py, py.detach(|| roughsig::sig_kernel_gram_sym(xv, &opts))),
            Some(y) => {
                let y = read::<T>(y)?;
                let yv = y.as_array();
                array(py, py.detach(|| roughsig::sig_kernel_gram(xv, yv, &opts)))
            }
        }
    })
}

#[pyfunction]
fn sig_kernel_gram_backprop(
    py: Python<'_>,
    derivs: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    args: KernelArgs,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let opts = args.options()?;
    by_dtype!(derivs, T => {
        let (d, x, y) = (read::<T>(derivs)?, read::<T>(x)?, read::<T>(y)?);
        let (d, x, y) = (d.as_array(), x.as_array(), y.as_array());
        pair(py, py.detach(|| roughsig::sig_kernel_gram_backprop(d, x, y, &opts)))
    })
}

#[pyfunction]
fn sig_length(
    dimension: usize,
    degree: usize,
    time_aug: bool,
    lead_lag: bool,
    scalar_term: bool,
) -> PyResult<usize> {
    let opts = SigOptions::default()
        .time_aug(time_aug)
        .lead_lag(lead_lag)
        .scalar_term(scalar_term);
    roughsig::sig_length(dimension, degree, &opts).map_err(py_err)
}

#[pyfunction]
fn log_sig_length(
    dimension: usize,
    degree: usize,
    time_aug: bool,
    lead_lag: bool,
) -> PyResult<usize> {
    let opts = SigOptions::default().time_aug(time_aug).lead_lag(lead_lag);
    roughsig::log_sig_length(dimension, degree, &opts).map_err(py_err)
}

#[pyfunction]
fn lyndon_words(alphabet_size: usize, max_length: usize) -> PyResult<Vec<Vec<usize>>> {
    roughsig::lyndon_words(alphabet_size, max_length).map_err(py_err)
}

#[pyfunction]
fn words(alphabet_size: usize, max_length: usize) -> PyResult<Vec<Vec<usize>>> {
    roughsig::words(alphabet_size, max_length).map_err(py_err)
}

#[pyfunction]
fn words_of_length(alphabet_size: usize, length: usize) -> PyResult<Vec<Vec<usize>>> {
    roughsig::words_of_length(alphabet_size, length).map_err(py_err)
}

#[pyfunction]
fn lyndon_words_of_length(alphabet_size: usize, length: usize) -> PyResult<Vec<Vec<usize>>> {
    roughsig::lyndon_words_of_length(alphabet_size, length).map_err(py_err)
}

#[pyfunction]
fn is_lyndon(word: Vec<usize>) -> bool {
    roughsig::is_lyndon(&word)
}

#[pyfunction]
fn word_to_idx(word: Vec<usize>, alphabet_size: usize, scalar_term: bool) -> PyResult<usize> {
    roughsig::word_to_idx(&word, alphabet_size, scalar_term).map_err(py_err)
}

#[pyfunction]
fn idx_to_word(idx: usize, alphabet_size: usize, scalar_term: bool) -> PyResult<Vec<usize>> {
    roughsig::idx_to_word(idx, alphabet_size, scalar_term).map_err(py_err)
}

/// Every GPU adapter as a dict, and why `device="auto"` picks what it picks.
#[pyfunction]
fn devices(py: Python<'_>) -> PyResult<(Vec<Py<PyAny>>, String)> {
    let list = py.detach(roughsig::gpu::adapters);
    let adapters = list
        .adapters
        .iter()
        .map(|a| {
            let d = pyo3::types::PyDict::new(py);
            d.set_item("index", a.index)?;
            d.set_item("name", &a.name)?;
            d.set_item("backend", &a.backend)?;
            d.set_item("device_type", &a.device_type)?;
            d.set_item("driver", &a.driver)?;
            d.set_item("f64", a.f64)?;
            d.set_item("auto", list.auto == Some(a.index))?;
            d.set_item("max_buffer_size", a.max_buffer_size)?;
            d.set_item(
                "max_storage_buffer_binding_size",
                a.max_storage_buffer_binding_size,
            )?;
            d.set_item(
                "max_compute_workgroup_storage_size",
                a.max_compute_workgroup_storage_size,
            )?;
            Ok(d.into_any().unbind())
        })
        .collect::<PyResult<_>>()?;
    Ok((adapters, list.auto_reason))
}

/// Where the last operation on this thread ran: `"cpu"`, `"gpu (<adapter>)"`, or `None` before any.
#[pyfunction]
fn last_backend() -> Option<String> {
    roughsig::last_backend().map(|b| b.to_string())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sig, m)?)?;
    m.add_function(wrap_pyfunction!(sig_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(transform_path, m)?)?;
    m.add_function(wrap_pyfunction!(transform_path_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(sig_combine, m)?)?;
    m.add_function(wrap_pyfunction!(sig_combine_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(sig_join, m)?)?;
    m.add_function(wrap_pyfunction!(sig_join_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(log_sig, m)?)?;
    m.add_function(wrap_pyfunction!(log_sig_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(sig_to_log_sig, m)?)?;
    m.add_function(wrap_pyfunction!(sig_to_log_sig_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(log_sig_to_sig, m)?)?;
    m.add_function(wrap_pyfunction!(log_sig_to_sig_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(linear_sig, m)?)?;
    m.add_function(wrap_pyfunction!(linear_sig_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(linear_log_sig, m)?)?;
    m.add_function(wrap_pyfunction!(linear_log_sig_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(log_sig_combine, m)?)?;
    m.add_function(wrap_pyfunction!(log_sig_combine_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(log_sig_join, m)?)?;
    m.add_function(wrap_pyfunction!(log_sig_join_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(sig_coef, m)?)?;
    m.add_function(wrap_pyfunction!(sig_coef_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(sig_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(sig_kernel_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(sig_kernel_gram, m)?)?;
    m.add_function(wrap_pyfunction!(sig_mmd, m)?)?;
    m.add_function(wrap_pyfunction!(sig_score, m)?)?;
    m.add_function(wrap_pyfunction!(expected_sig_score, m)?)?;
    m.add_function(wrap_pyfunction!(sig_mmd_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(sig_score_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(expected_sig_score_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(sig_kernel_gram_backprop, m)?)?;
    m.add_function(wrap_pyfunction!(sig_length, m)?)?;
    m.add_function(wrap_pyfunction!(log_sig_length, m)?)?;
    m.add_function(wrap_pyfunction!(lyndon_words, m)?)?;
    m.add_function(wrap_pyfunction!(words, m)?)?;
    m.add_function(wrap_pyfunction!(words_of_length, m)?)?;
    m.add_function(wrap_pyfunction!(lyndon_words_of_length, m)?)?;
    m.add_function(wrap_pyfunction!(is_lyndon, m)?)?;
    m.add_function(wrap_pyfunction!(word_to_idx, m)?)?;
    m.add_function(wrap_pyfunction!(idx_to_word, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(last_backend, m)?)?;
    Ok(())
}
