//! Options of the signature-kernel functions, with pySigLib's defaults.

use crate::options::{setters, Execution, PathTransform};
use crate::{Device, Error, Result, Scalar};

/// The static kernel κ on the points of the (transformed) paths. The PDE is driven by its second
/// mixed differences `κ(x_{a+1}, y_{b+1}) − κ(x_{a+1}, y_b) − κ(x_a, y_{b+1}) + κ(x_a, y_b)`, which for
/// the linear kernel are the increments' inner products `<Δx_a, Δy_b>`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum StaticKernel {
    /// `κ(p, q) = <p, q>`: the plain signature kernel `<S(x), S(y)>`.
    #[default]
    Linear,
    /// `κ(p, q) = <s·p, s·q> = s²<p, q>` (pySigLib's `ScaledLinearKernel(scale=s)`).
    ScaledLinear {
        /// The factor `s` applied to both points.
        scale: f64,
    },
    /// `κ(p, q) = exp(−|p − q|² / σ)` (pySigLib's `RBFKernel(sigma=σ)`; note σ, not 2σ²).
    Rbf {
        /// The length scale `σ` (positive).
        sigma: f64,
    },
}

impl StaticKernel {
    fn validate(&self) -> Result<()> {
        match *self {
            StaticKernel::Linear => Ok(()),
            StaticKernel::ScaledLinear { scale: s } if s.is_finite() => Ok(()),
            StaticKernel::ScaledLinear { scale: s } => Err(Error::invalid(format!(
                "the scaled-linear kernel's scale must be finite, got {s}"
            ))),
            StaticKernel::Rbf { sigma } if sigma.is_finite() && sigma > 0.0 => Ok(()),
            StaticKernel::Rbf { sigma } => Err(Error::invalid(format!(
                "the rbf kernel's sigma must be finite and positive, got {sigma}"
            ))),
        }
    }
}

impl std::str::FromStr for StaticKernel {
    type Err = Error;
    /// `linear`, `rbf:SIGMA` or `scaled-linear:S`.
    fn from_str(s: &str) -> Result<Self> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let number = |what: &str| -> Result<f64> {
            let a = arg.ok_or_else(|| {
                Error::invalid(format!(
                    "static kernel '{name}' needs a value: {name}:{what}"
                ))
            })?;
            a.trim().parse::<f64>().map_err(|_| {
                Error::invalid(format!("static kernel '{name}': '{a}' is not a number"))
            })
        };
        let kernel = match name {
            "linear" if arg.is_none() => StaticKernel::Linear,
            "rbf" => StaticKernel::Rbf {
                sigma: number("SIGMA")?,
            },
            "scaled-linear" => StaticKernel::ScaledLinear {
                scale: number("S")?,
            },
            _ => {
                return Err(Error::invalid(format!(
                    "unknown static kernel '{s}' (expected linear, rbf:SIGMA or scaled-linear:S)"
                )))
            }
        };
        kernel.validate()?;
        Ok(kernel)
    }
}

/// How often the PDE grid is refined: `2^λ1` times along the first path and `2^λ2` times along the
/// second. From a single number `λ` (both sides, as pySigLib and the command line take it) or a pair:
/// `2.into()`, `(1, 2).into()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DyadicOrder(pub usize, pub usize);

impl From<usize> for DyadicOrder {
    fn from(lam: usize) -> Self {
        DyadicOrder(lam, lam)
    }
}

impl From<(usize, usize)> for DyadicOrder {
    fn from((lam1, lam2): (usize, usize)) -> Self {
        DyadicOrder(lam1, lam2)
    }
}

impl DyadicOrder {
    /// `(λ1, λ2)`.
    pub fn pair(self) -> (usize, usize) {
        (self.0, self.1)
    }
}

/// Options of `sig_kernel`, `sig_kernel_gram` and their backprops.
///
/// Build with the setters, `SigKernelOptions::default().dyadic_order(2).time_aug(true)`, or with
/// struct-update syntax.
#[derive(Clone, Debug, PartialEq)]
pub struct SigKernelOptions {
    /// `(λ1, λ2)`: the PDE grid is refined `2^λ1` times along the first path and `2^λ2` times along
    /// the second (pySigLib's `dyadic_order`; a single number `λ` means `(λ, λ)`).
    pub dyadic_order: DyadicOrder,
    /// The static kernel on the points of the paths.
    pub static_kernel: StaticKernel,
    /// How the paths are transformed (before the static kernel).
    pub transform: PathTransform,
    /// Return `k(x, y) / sqrt(k(x, x)·k(y, y))` instead of `k(x, y)`.
    pub normalize: bool,
    /// Return the whole PDE grid `(batch…, rows, cols)` instead of its last entry (`sig_kernel` only).
    pub return_grid: bool,
    /// Where to run.
    pub exec: Execution,
}

impl Default for SigKernelOptions {
    fn default() -> Self {
        SigKernelOptions {
            dyadic_order: DyadicOrder(0, 0),
            static_kernel: StaticKernel::Linear,
            transform: PathTransform::default(),
            normalize: false,
            return_grid: false,
            exec: Execution::default(),
        }
    }
}

setters!(SigKernelOptions {
    dyadic_order: impl Into<DyadicOrder> => dyadic_order;
    static_kernel: StaticKernel => static_kernel;
    time_aug: bool => transform.time_aug;
    lead_lag: bool => transform.lead_lag;
    end_time: f64 => transform.end_time;
    normalize: bool => normalize;
    return_grid: bool => return_grid;
    n_jobs: i32 => exec.n_jobs;
    device: Device => exec.device;
});

impl SigKernelOptions {
    pub(crate) fn validate<T: Scalar>(&self) -> Result<()> {
        self.transform.validate::<T>()?;
        let DyadicOrder(l1, l2) = self.dyadic_order;
        // The refinement factor 2^(λ1+λ2) must be a machine integer (as in pySigLib).
        if l1.saturating_add(l2) >= 63 {
            return Err(Error::invalid(format!(
                "dyadic_order ({l1}, {l2}) is too large: λ1 + λ2 must be below 63"
            )));
        }
        if self.normalize && self.return_grid {
            return Err(Error::invalid(
                "normalize and return_grid cannot be combined (only the final kernel is normalised)",
            ));
        }
        self.static_kernel.validate()?;
        self.exec.validate()
    }
}
