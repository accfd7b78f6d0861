//! `log_sig_to_sig` and its gradient: the truncated tensor exponential of log-signatures in any of
//! the three forms, the inverse of `sig_to_log_sig`.
//!
//! A log-signature is a Lie element `ℓ`. `Expanded` holds it whole. `Lyndon` holds its coordinates
//! `c` in the bracket basis, so `ℓ = Σ c_w P_w`, each `P_w` expanded in words once per shape and
//! cached. `Words` holds `ℓ` at the Lyndon words only, which determines it: `c` solves `M c = ℓ|_Lyndon`
//! (the same triangle `sig_to_log_sig` solves). The exponential is the series `exp(ℓ) = 1 + ℓ ⊗ (1 +
//! ℓ ⊗ (1/2! + …))` in Horner's nesting ([`tensor_exp`]); the gradient runs each step backwards.
//! On the GPU the same steps run on the device (`gpu::log_sig_to_sig`), the words form's solve
//! there too where the adapter's loop budget allows it, else on the host.

use super::lyndon::Expansions;
#[cfg(feature = "gpu")]
use super::lyndon::Triangular;
use super::{LogSigMethod, Plan, Workspace};
use crate::algebra::{tensor_exp, tensor_exp_backprop};
use crate::batch::{check_result, expect_len, infer_scalar_term, same_batch, zeros, Rows};
use crate::cpu::par_rows;
use crate::device::{execute, on_gpu};
#[cfg(feature = "gpu")]
use crate::gpu;
use crate::scalar::Precision;
use crate::{Result, Scalar, SigOptions};
use ndarray::{ArrayD, ArrayViewD};

/// The body of [`crate::log_sig_to_sig`] (see [`crate::api`]).
pub(crate) fn log_sig_to_sig<T: Scalar>(
    log_sigs: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let (plan, l, in_st, out_st) = prepare(log_sigs, dimension, degree, method, options)?;
    let expansions = plan.expansions()?;
    let n = plan.shape.len();
    let (row, out_row) = (l.last(), n + out_st as usize);
    let mut out_shape = l.batch_shape.clone();
    out_shape.push(out_row);
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        plan.exp_work(l.batch()),
        on_gpu!(|device| {
            let mut host = Vec::new();
            let rows = plan.gpu_rows(device, &l, in_st, expansions, &mut host)?;
            let mut out = zeros::<T>("signature", &out_shape)?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            gpu::log_sig_to_sig(device, &plan.shape, &rows.rows(), out_st as usize, slice)?;
            Ok(out)
        }),
        |threads| {
            let values = (l.batch() * out_row) as u128;
            let threads = plan.fit::<T>("signature", values, 0, threads)?;
            let mut out = zeros::<T>("signature", &out_shape)?;
            let xs = l.slice();
            par_rows(
                threads,
                out.as_slice_mut().expect("fresh arrays are contiguous"),
                out_row,
                || plan.workspace(),
                |ws, i, o| {
                    let x = &xs[i * row + in_st as usize..(i + 1) * row];
                    plan.lie_element(expansions, x, ws);
                    o[..out_st as usize].fill(T::one());
                    tensor_exp(
                        &plan.shape,
                        &ws.expanded,
                        &mut o[out_st as usize..],
                        &mut ws.log,
                    );
                },
            );
            Ok(out)
        },
    )?;
    check_result("signature", &out, 1)?;
    Ok(out)
}

/// The body of [`crate::log_sig_to_sig_backprop`] (see [`crate::api`]).
pub(crate) fn log_sig_to_sig_backprop<T: Scalar>(
    log_sigs: ArrayViewD<'_, T>,
    sig_derivs: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let (plan, l, in_st, out_st) = prepare(log_sigs, dimension, degree, method, options)?;
    let expansions = plan.expansions()?;
    let n = plan.shape.len();
    let g = Rows::new("sig_derivs", sig_derivs, 1)?;
    same_batch("log_sig", &l, "sig_derivs", &g)?;
    expect_len("sig_derivs", &g, n + out_st as usize)?;
    g.check_finite("sig_derivs", false)?;
    let (row, g_row) = (l.last(), g.last());
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        // The reverse walks the series twice.
        plan.exp_work(l.batch()).saturating_mul(3),
        on_gpu!(|device| {
            let mut host = Vec::new();
            let rows = plan.gpu_rows(device, &l, in_st, expansions, &mut host)?;
            let mut out = zeros::<T>("log-signature gradient", l.data.shape())?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            let derivs = g.slice();
            let lie = rows.rows();
            gpu::log_sig_to_sig_backprop(
                device,
                &plan.shape,
                &lie,
                derivs,
                out_st as usize,
                slice,
            )?;
            rows.finish_backprop(slice);
            Ok(out)
        }),
        |threads| {
            let threads =
                plan.fit::<T>("log-signature gradient", l.data.len() as u128, 0, threads)?;
            let mut out = zeros::<T>("log-signature gradient", l.data.shape())?;
            let (xs, gs) = (l.slice(), g.slice());
            par_rows(
                threads,
                out.as_slice_mut().expect("fresh arrays are contiguous"),
                row,
                || (plan.workspace(), vec![T::zero(); n]),
                |(ws, dl), i, o| {
                    let x = &xs[i * row + in_st as usize..(i + 1) * row];
                    let gi = &gs[i * g_row + out_st as usize..(i + 1) * g_row];
                    plan.lie_element(expansions, x, ws);
                    dl.fill(T::zero());
                    tensor_exp_backprop(&plan.shape, &ws.expanded, gi, dl, &mut ws.log);
                    plan.lie_element_backprop(expansions, dl, ws, &mut o[in_st as usize..]);
                },
            );
            Ok(out)
        },
    )?;
    check_result("log-signature gradient", &out, 1)?;
    Ok(out)
}

/// The plan, the rows, and whether the input and
/// the output carry a scalar term: `Expanded` input is signature-shaped and its scalar term is
/// inferred from its length (the output follows it); the Lyndon forms have none and the output has
/// one where `options.scalar_term` asks, as in pySigLib.
fn prepare<'a, T: Scalar>(
    log_sigs: ArrayViewD<'a, T>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<(Plan, Rows<'a, T>, bool, bool)> {
    options.validate::<T>()?;
    let plan = Plan::for_dimension(dimension, degree, method, options)?;
    let l = Rows::new("log_sig", log_sigs, 1)?;
    let (in_st, out_st) = match plan.basis {
        None => {
            let st = infer_scalar_term("log_sig", l.last(), plan.shape.len())?;
            (st, st)
        }
        Some(_) => {
            expect_len("log_sig", &l, plan.out_len(false))?;
            (false, options.scalar_term)
        }
    };
    l.check_finite("log_sig", false)?;
    Ok((plan, l, in_st, out_st))
}

impl Plan {
    /// The bracket expansions, for the Lyndon forms.
    pub(super) fn expansions(&self) -> Result<Option<&Expansions>> {
        self.basis.as_ref().map(|b| b.expansions()).transpose()
    }

    /// The Lie element of one log-signature row `x` of this plan's form, expanded, into `ws.expanded`.
    pub(super) fn lie_element<T: Scalar>(
        &self,
        expansions: Option<&Expansions>,
        x: &[T],
        ws: &mut Workspace<T>,
    ) {
        match (self.method, &self.basis, expansions) {
            (LogSigMethod::Words, Some(basis), Some(e)) => {
                ws.coords.copy_from_slice(x);
                basis.brackets().solve(&mut ws.coords);
                e.expand(&ws.coords, &mut ws.expanded);
            }
            (LogSigMethod::Lyndon, _, Some(e)) => e.expand(x, &mut ws.expanded),
            _ => ws.expanded.copy_from_slice(x),
        }
    }

    /// The reverse of [`Plan::lie_element`]: the gradient `dl` with respect to the expanded Lie
    /// element → the gradient with respect to the row, into `dx`.
    pub(super) fn lie_element_backprop<T: Scalar>(
        &self,
        expansions: Option<&Expansions>,
        dl: &[T],
        ws: &mut Workspace<T>,
        dx: &mut [T],
    ) {
        match (self.method, &self.basis, expansions) {
            (LogSigMethod::Words, Some(basis), Some(e)) => {
                e.contract(dl, &mut ws.coords);
                basis.brackets().solve_transpose(&mut ws.coords);
                dx.copy_from_slice(&ws.coords);
            }
            (LogSigMethod::Lyndon, _, Some(e)) => e.contract(dl, dx),
            _ => dx.copy_from_slice(dl),
        }
    }
}

impl Plan {
    /// Multiply-adds of `rows` exponentials, about `degree` per coefficient: the device choice's
    /// measure of work.
    pub(super) fn exp_work(&self, rows: usize) -> u128 {
        (rows * self.shape.degree) as u128 * self.shape.len() as u128
    }

    /// The rows of `l` as the GPU reads them: expanded as they are, or bracket coordinates with
    /// their expansions; the words form solved on the device where it can be, else here into
    /// `host`.
    #[cfg(feature = "gpu")]
    fn gpu_rows<'a, T: Scalar>(
        &'a self,
        device: &gpu::GpuDevice,
        l: &'a Rows<'_, T>,
        in_st: bool,
        expansions: Option<&Expansions>,
        host: &'a mut Vec<T>,
    ) -> Result<GpuRows<'a, T>> {
        let (row, st) = (l.last(), in_st as usize);
        let mut rows = GpuRows {
            rows: l.slice(),
            row,
            st,
            expansion: None,
            brackets: None,
            host_solve: None,
        };
        let (Some(e), Some(basis)) = (expansions, &self.basis) else {
            return Ok(rows);
        };
        rows.expansion = Some(self.gpu_expansion(e)?);
        if self.method == LogSigMethod::Words {
            rows.brackets = self.gpu_triangle(device)?;
            if rows.brackets.is_none() {
                let triangle = basis.brackets();
                host.extend_from_slice(l.slice());
                for r in host.chunks_exact_mut(row) {
                    triangle.solve(r);
                }
                rows.rows = host;
                rows.host_solve = Some(triangle);
            }
        }
        Ok(rows)
    }
}

#[cfg(feature = "gpu")]
impl Plan {
    /// The bracket expansions as the GPU's tables.
    pub(super) fn gpu_expansion<T: Scalar>(&self, e: &Expansions) -> Result<gpu::Expansion<T>> {
        gpu::Expansion::new(e.brackets(), self.shape.len()).ok_or_else(|| {
            crate::Error::Device("the Lyndon brackets' indices exceed the GPU's 32 bits".into())
        })
    }
}

/// What [`Plan::gpu_rows`] prepares.
#[cfg(feature = "gpu")]
struct GpuRows<'a, T> {
    rows: &'a [T],
    row: usize,
    st: usize,
    expansion: Option<gpu::Expansion<T>>,
    brackets: Option<gpu::Brackets<T>>,
    /// The words form solved on the host: its gradient's transposed solve is done here too.
    host_solve: Option<&'a Triangular>,
}

#[cfg(feature = "gpu")]
impl<T: Scalar> GpuRows<'_, T> {
    fn rows(&self) -> gpu::LieRows<'_, T> {
        gpu::LieRows {
            rows: self.rows,
            row: self.row,
            st: self.st,
            expansion: self.expansion.as_ref(),
            brackets: self.brackets.as_ref(),
        }
    }

    /// The transposed solve of the gradient rows `out`, where the forward solve ran here.
    fn finish_backprop(&self, out: &mut [T]) {
        if let Some(triangle) = self.host_solve {
            for r in out.chunks_exact_mut(self.row) {
                triangle.solve_transpose(r);
            }
        }
    }
}
