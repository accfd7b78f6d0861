//! `log_sig_to_sig` and its gradient: the truncated tensor exponential of log-signatures in any of
//! the three forms, the inverse of `sig_to_log_sig`.
//!
//! A log-signature is a Lie element `ℓ`. `Expanded` holds it whole. `Lyndon` holds its coordinates
//! `c` in the bracket basis, so `ℓ = Σ c_w P_w`, each `P_w` expanded in words once per shape and
//! cached. `Words` holds `ℓ` at the Lyndon words only, which determines it: `c` solves `M c = ℓ|_Lyndon`
//! (the same triangle `sig_to_log_sig` solves). The exponential is the series `exp(ℓ) = 1 + ℓ ⊗ (1 +
//! ℓ ⊗ (1/2! + …))` in Horner's nesting ([`tensor_exp`]); the gradient runs each step backwards.

use super::lyndon::Expansions;
use super::{LogSigMethod, Plan, Workspace};
use crate::algebra::{tensor_exp, tensor_exp_backprop};
use crate::batch::{check_result, expect_len, infer_scalar_term, same_batch, zeros, Rows};
use crate::cpu::par_rows;
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
    let out = crate::device::cpu_only::<T, _>("log_sig_to_sig", options, |threads| {
        let values = (l.batch() * out_row) as u128;
        let threads = plan.fit::<T>("signature", values, 0, threads)?;
        let mut out_shape = l.batch_shape.clone();
        out_shape.push(out_row);
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
    })?;
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
    let out = crate::device::cpu_only::<T, _>("log_sig_to_sig", options, |threads| {
        let threads = plan.fit::<T>("log-signature gradient", l.data.len() as u128, 0, threads)?;
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
    })?;
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
