//! Options of the signature-kernel functions, with pySigLib's defaults.

use crate::options::{setters, Execution, PathTransform};
use crate::{Device, Error, Result, Scalar};

/// The static kernel κ on the points of the (transformed) paths. The PDE is driven by its second
/// mixed differences `κ(x_{a+1}, y_{b+1}) − κ(x_{a+1}, y_b) − κ(x_a, y_{b+1}) + κ(x_a, y_b)`, which for
/// the linear kernel are the increments' inner products `<Δx_a, Δy_b>`.
#[derive(Clone, Debug, Default, PartialEq)]
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
    /// `κ(p, q) = scale·(<p, q> + γ)^degree` (pySigLib's `PolynomialKernel`). As in pySigLib, a
    /// negative base `<p, q> + γ` is clamped to 0 unless the degree is 0 or an integer from 1 to 5.
    Polynomial {
        /// The exponent (at least 0).
        degree: f64,
        /// The offset `γ`.
        gamma: f64,
        /// The factor in front (at least 0).
        scale: f64,
    },
    /// `κ(p, q) = exp(−|p − q| / σ)`, the exponential kernel (pySigLib's `Matern12Kernel`).
    Matern12 {
        /// The length scale `σ` (positive).
        sigma: f64,
    },
    /// `κ(p, q) = (1 + u)·exp(−u)`, `u = √3·|p − q| / σ` (pySigLib's `Matern32Kernel`).
    Matern32 {
        /// The length scale `σ` (positive).
        sigma: f64,
    },
    /// `κ(p, q) = (1 + u + u²/3)·exp(−u)`, `u = √5·|p − q| / σ` (pySigLib's `Matern52Kernel`).
    Matern52 {
        /// The length scale `σ` (positive).
        sigma: f64,
    },
    /// `κ(p, q) = (1 + |p − q|² / (2ασ²))^−α` (pySigLib's `RationalQuadraticKernel`).
    RationalQuadratic {
        /// The length scale `σ` (positive).
        sigma: f64,
        /// The shape `α` (positive).
        alpha: f64,
    },
    /// A kernel of the caller's own ([`CustomStaticKernel`]), evaluated on the CPU.
    Custom(CustomKernel),
}

/// A static kernel `κ(p, q)` defined by the caller: its value and both gradients at two points of
/// the transformed paths (time augmentation and lead-lag applied), in f64 whatever the paths'
/// dtype. The signature kernels evaluate it once per pair of points (the second mixed differences
/// of the PDE come from those values), so it must be a deterministic function of the points; it
/// runs on the CPU only (`Device::Gpu` is an error, `Device::Auto` picks the CPU).
///
/// ```
/// use roughsig::{ndarray::array, sig_kernel, CustomKernel, CustomStaticKernel, SigKernelOptions, StaticKernel};
/// /// κ(p, q) = exp(<p, q>).
/// #[derive(Debug)]
/// struct ExpDot;
/// impl CustomStaticKernel for ExpDot {
///     fn value(&self, p: &[f64], q: &[f64]) -> f64 {
///         p.iter().zip(q).map(|(a, b)| a * b).sum::<f64>().exp()
///     }
///     fn gradients(&self, p: &[f64], q: &[f64], dp: &mut [f64], dq: &mut [f64]) {
///         let k = self.value(p, q);
///         for i in 0..p.len() {
///             dp[i] = k * q[i];
///             dq[i] = k * p[i];
///         }
///     }
/// }
/// let opts = SigKernelOptions::default().static_kernel(StaticKernel::Custom(CustomKernel::new(ExpDot)));
/// let x = array![[0.0, 0.0], [0.5, 0.2], [0.3, 0.9]];
/// let k = sig_kernel(x.view(), x.view(), &opts)?;
/// assert!(k[[]] > 1.0);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub trait CustomStaticKernel: Send + Sync + std::fmt::Debug {
    /// `κ(p, q)`.
    fn value(&self, p: &[f64], q: &[f64]) -> f64;
    /// Write `∂κ/∂p` into `dp` and `∂κ/∂q` into `dq` (each as long as the points).
    fn gradients(&self, p: &[f64], q: &[f64], dp: &mut [f64], dq: &mut [f64]);
}

/// A shared [`CustomStaticKernel`], as [`StaticKernel::Custom`] holds it; two are equal when they
/// are the same kernel object.
#[derive(Clone, Debug)]
pub struct CustomKernel(pub std::sync::Arc<dyn CustomStaticKernel>);

impl CustomKernel {
    /// The kernel, shared.
    pub fn new(kernel: impl CustomStaticKernel + 'static) -> Self {
        CustomKernel(std::sync::Arc::new(kernel))
    }
}

impl PartialEq for CustomKernel {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl StaticKernel {
    fn validate(&self) -> Result<()> {
        match *self {
            StaticKernel::Linear | StaticKernel::Custom(_) => Ok(()),
            StaticKernel::ScaledLinear { scale: s } if s.is_finite() => Ok(()),
            StaticKernel::ScaledLinear { scale: s } => Err(Error::invalid(format!(
                "the scaled-linear kernel's scale must be finite, got {s}"
            ))),
            StaticKernel::Rbf { sigma }
            | StaticKernel::Matern12 { sigma }
            | StaticKernel::Matern32 { sigma }
            | StaticKernel::Matern52 { sigma } => positive(self.name(), "sigma", sigma),
            StaticKernel::RationalQuadratic { sigma, alpha } => {
                positive(self.name(), "sigma", sigma)?;
                positive(self.name(), "alpha", alpha)
            }
            StaticKernel::Polynomial {
                degree,
                gamma,
                scale,
            } => {
                let ok = |v: f64| v.is_finite() && v >= 0.0;
                if !ok(degree) || !ok(scale) || !gamma.is_finite() {
                    return Err(Error::invalid(format!(
                        "the polynomial kernel needs a finite degree ≥ 0, gamma and scale ≥ 0, got \
                         degree {degree}, gamma {gamma}, scale {scale}"
                    )));
                }
                Ok(())
            }
        }
    }

    /// The kernel's name on the command line.
    fn name(&self) -> &'static str {
        match self {
            StaticKernel::Linear => "linear",
            StaticKernel::ScaledLinear { .. } => "scaled-linear",
            StaticKernel::Rbf { .. } => "rbf",
            StaticKernel::Polynomial { .. } => "polynomial",
            StaticKernel::Matern12 { .. } => "matern12",
            StaticKernel::Matern32 { .. } => "matern32",
            StaticKernel::Matern52 { .. } => "matern52",
            StaticKernel::RationalQuadratic { .. } => "rational-quadratic",
            StaticKernel::Custom(_) => "custom",
        }
    }
}

fn positive(kernel: &str, what: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "the {kernel} kernel's {what} must be finite and positive, got {v}"
    )))
}

impl std::str::FromStr for StaticKernel {
    type Err = Error;
    /// `linear`, `scaled-linear:S`, `rbf:SIGMA`, `polynomial:DEGREE,GAMMA,SCALE`, `matern12:SIGMA`,
    /// `matern32:SIGMA`, `matern52:SIGMA` or `rational-quadratic:SIGMA,ALPHA`.
    fn from_str(s: &str) -> Result<Self> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        // The kernel's comma-separated values, exactly as many as `what` names.
        let numbers = |what: &str| -> Result<Vec<f64>> {
            let a = arg.ok_or_else(|| {
                Error::invalid(format!(
                    "static kernel '{name}' needs values: {name}:{what}"
                ))
            })?;
            let values = a
                .split(',')
                .map(|v| v.trim().parse::<f64>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| {
                    Error::invalid(format!(
                        "static kernel '{name}': '{a}' is not a number list"
                    ))
                })?;
            if values.len() != what.split(',').count() {
                return Err(Error::invalid(format!(
                    "static kernel '{name}' takes {name}:{what}, got '{a}'"
                )));
            }
            Ok(values)
        };
        let sigma = || numbers("SIGMA").map(|v| v[0]);
        let kernel = match name {
            "linear" if arg.is_none() => StaticKernel::Linear,
            "rbf" => StaticKernel::Rbf { sigma: sigma()? },
            "scaled-linear" => StaticKernel::ScaledLinear {
                scale: numbers("S")?[0],
            },
            "polynomial" => {
                let v = numbers("DEGREE,GAMMA,SCALE")?;
                StaticKernel::Polynomial {
                    degree: v[0],
                    gamma: v[1],
                    scale: v[2],
                }
            }
            "matern12" => StaticKernel::Matern12 { sigma: sigma()? },
            "matern32" => StaticKernel::Matern32 { sigma: sigma()? },
            "matern52" => StaticKernel::Matern52 { sigma: sigma()? },
            "rational-quadratic" => {
                let v = numbers("SIGMA,ALPHA")?;
                StaticKernel::RationalQuadratic {
                    sigma: v[0],
                    alpha: v[1],
                }
            }
            _ => {
                return Err(Error::invalid(format!(
                    "unknown static kernel '{s}' (expected linear, scaled-linear:S, rbf:SIGMA, \
                     polynomial:DEGREE,GAMMA,SCALE, matern12:SIGMA, matern32:SIGMA, \
                     matern52:SIGMA or rational-quadratic:SIGMA,ALPHA)"
                )))
            }
        };
        kernel.validate()?;
        Ok(kernel)
    }
}

/// How the signature-kernel PDE is solved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelSolver {
    /// pySigLib's finite-difference scheme on the grid refined by `dyadic_order` (the default).
    #[default]
    FiniteDifference,
    /// pySigLib's polynomial solver (`method="polynomial"`): `K` along each cell's edges as a
    /// polynomial of degree `order` (2 to 64), without refinement (`dyadic_order` must be 0).
    Polynomial {
        /// The highest degree kept.
        order: usize,
    },
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
    /// The PDE solver.
    pub solver: KernelSolver,
    /// At most this many pairs of paths in flight at once (pySigLib's `max_batch`): the GPU's
    /// chunks of pairs and the CPU's threads, each of which holds one pair's grid, are capped by it,
    /// bounding the memory a large Gram matrix or batch takes. `None`: as many as fit.
    pub max_batch: Option<usize>,
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
            solver: KernelSolver::FiniteDifference,
            max_batch: None,
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
    solver: KernelSolver => solver;
    n_jobs: i32 => exec.n_jobs;
    device: Device => exec.device;
});

impl SigKernelOptions {
    /// Cap the pairs in flight at `pairs` (see [`SigKernelOptions::max_batch`]; 0 is an error).
    pub fn max_batch(mut self, pairs: usize) -> Self {
        self.max_batch = Some(pairs);
        self
    }

    pub(crate) fn validate<T: Scalar>(&self) -> Result<()> {
        if self.max_batch == Some(0) {
            return Err(Error::invalid("max_batch must be at least 1"));
        }
        if let KernelSolver::Polynomial { order } = self.solver {
            if !(2..=64).contains(&order) {
                return Err(Error::invalid(format!(
                    "the polynomial solver's order must be from 2 to 64, got {order}"
                )));
            }
            if self.dyadic_order != DyadicOrder(0, 0) {
                return Err(Error::invalid(
                    "the polynomial solver does not refine the grid: dyadic_order must be 0",
                ));
            }
        }
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
