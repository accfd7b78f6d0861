//! `log_sig_combine` and `log_sig_join`, with their gradients: products of log-signatures in the
//! Lyndon bracket basis; and `linear_log_sig`, a straight segment's log-signature in any form.
//!
//! The log-signature of a concatenation is the Baker–Campbell–Hausdorff product
//! `BCH(ℓ₁, ℓ₂) = log(exp(ℓ₁) ⊗ exp(ℓ₂))`, exact in the truncated tensor algebra. Each row is computed
//! that way: both Lie elements expanded from their bracket coordinates, exponentiated, multiplied, and
//! the logarithm taken back to bracket coordinates, so it is the same number the BCH series gives.
//! Memory is one thread's few signature-sized buffers. A join is a combine whose second factor is the
//! straight segment `v`, whose bracket coordinates are `v` at the letters and 0 above. On the GPU
//! the same chain runs on the device (`gpu::log_sig_combine`).

use super::lyndon::Expansions;
use super::{LogSigMethod, Plan, Workspace};
use crate::algebra::{tensor_exp, tensor_exp_backprop, tensor_mul, tensor_mul_backprop};
use crate::batch::{check_result, expect_len, fit_threads, same_batch, zeros, Memory, Rows};
use crate::combine::{paired_rows, split_pair};
use crate::cpu::par_rows;
use crate::device::{execute, on_gpu};
#[cfg(feature = "gpu")]
use crate::gpu;
use crate::scalar::Precision;
use crate::{Result, Scalar, SigOptions};
use ndarray::{ArrayD, ArrayViewD, Axis};
#[cfg(feature = "gpu")]
use std::borrow::Cow;

/// The body of [`crate::log_sig_combine`] (see [`crate::api`]).
pub(crate) fn log_sig_combine<T: Scalar>(
    log_sig1: ArrayViewD<'_, T>,
    log_sig2: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let (plan, a, b) = two_log_sigs(log_sig1, log_sig2, dimension, degree, options)?;
    let expansions = plan.expansions()?;
    let row = a.last();
    let (xa, xb) = (a.slice(), b.slice());
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        plan.combine_work(a.batch()),
        on_gpu!(|device| {
            let form = GpuForm::new(&plan, device, expansions)?;
            let mut out = zeros::<T>("combined log-signature", a.data.shape())?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            gpu::log_sig_combine(device, &plan.shape, &form.view(), xa, xb, slice)?;
            form.solve(slice);
            Ok(out)
        }),
        |threads| {
            let threads = plan.fit_bch::<T>("combined log-signature", a.data.len(), threads)?;
            let mut out = zeros::<T>("combined log-signature", a.data.shape())?;
            par_rows(
                threads,
                out.as_slice_mut().expect("fresh arrays are contiguous"),
                row,
                || Bch::new(&plan),
                |bch, i, o| {
                    let r = i * row..(i + 1) * row;
                    bch.product(&plan, expansions, &xa[r.clone()], &xb[r]);
                    plan.forward_row(&bch.c, &mut bch.ws, o, false);
                },
            );
            Ok(out)
        },
    )?;
    check_result("combined log-signature", &out, 1)?;
    Ok(out)
}

/// The body of [`crate::log_sig_combine_backprop`] (see [`crate::api`]).
pub(crate) fn log_sig_combine_backprop<T: Scalar>(
    deriv: ArrayViewD<'_, T>,
    log_sig1: ArrayViewD<'_, T>,
    log_sig2: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let (plan, a, b) = two_log_sigs(log_sig1, log_sig2, dimension, degree, options)?;
    let g = Rows::new("deriv", deriv, 1)?;
    same_batch("log_sig1", &a, "deriv", &g)?;
    expect_len("deriv", &g, a.last())?;
    g.check_finite("deriv", false)?;
    let expansions = plan.expansions()?;
    let row = a.last();
    let (xa, xb, xg) = (a.slice(), b.slice(), g.slice());
    let both = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        // The reverse recomputes the product and walks each step back.
        plan.combine_work(a.batch()).saturating_mul(3),
        on_gpu!(|device| {
            let form = GpuForm::new(&plan, device, expansions)?;
            let derivs = form.solve_transpose(xg);
            let mut both = zeros::<T>("log-signature gradients", &[a.batch(), 2 * row])?;
            let slice = both.as_slice_mut().expect("fresh arrays are contiguous");
            gpu::log_sig_combine_backprop(
                device,
                &plan.shape,
                &form.view(),
                &derivs,
                xa,
                xb,
                slice,
            )?;
            Ok(both)
        }),
        |threads| {
            let threads =
                plan.fit_bch::<T>("log-signature gradients", 2 * a.data.len(), threads)?;
            paired_rows(
                threads,
                a.batch(),
                (row, row),
                || Bch::new(&plan),
                |bch, i, da, db| {
                    let r = i * row..(i + 1) * row;
                    bch.product_backprop(&plan, expansions, &xa[r.clone()], &xb[r.clone()], &xg[r]);
                    plan.lie_element_backprop(expansions, &bch.da_l, &mut bch.ws, da);
                    plan.lie_element_backprop(expansions, &bch.db_l, &mut bch.ws, db);
                },
            )
        },
    )?;
    split_pair(both, &a.batch_shape, row, row)
}

/// The body of [`crate::log_sig_join`] (see [`crate::api`]): [`log_sig_combine`] with the segment
/// `displacement` as the second factor.
pub(crate) fn log_sig_join<T: Scalar>(
    log_sigs: ArrayViewD<'_, T>,
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let options = untransformed(options);
    let segment = join_segment(log_sigs.view(), displacement, dimension, degree, &options)?;
    log_sig_combine(log_sigs, segment.view(), dimension, degree, &options)
}

/// The body of [`crate::log_sig_join_backprop`] (see [`crate::api`]): the gradient with respect to
/// the segment's coordinates, kept at its letters.
pub(crate) fn log_sig_join_backprop<T: Scalar>(
    deriv: ArrayViewD<'_, T>,
    log_sigs: ArrayViewD<'_, T>,
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let options = untransformed(options);
    let segment = join_segment(log_sigs.view(), displacement, dimension, degree, &options)?;
    let (d_log_sigs, d_segment) =
        log_sig_combine_backprop(deriv, log_sigs, segment.view(), dimension, degree, &options)?;
    Ok((d_log_sigs, letters(d_segment.view(), 0, dimension)))
}

/// The body of [`crate::linear_log_sig`] (see [`crate::api`]): a straight segment's log-signature
/// is its displacement at the letters (first in every form) and 0 above.
pub(crate) fn linear_log_sig<T: Scalar>(
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let options = untransformed(options);
    let plan = Plan::for_dimension(dimension, degree, method, &options)?;
    let v = Rows::new("displacement", displacement, 1)?;
    expect_len("displacement", &v, dimension)?;
    v.check_finite("displacement", false)?;
    let st = plan.scalar_slot(&options);
    let len = plan.out_len(st);
    let mut shape = v.batch_shape.clone();
    shape.push(len);
    let mut out = zeros::<T>("log-signature", &shape)?;
    let rows = out.as_slice_mut().expect("fresh arrays are contiguous");
    for (o, z) in rows.chunks_mut(len).zip(v.slice().chunks(dimension)) {
        o[st as usize..st as usize + dimension].copy_from_slice(z);
    }
    Ok(out)
}

/// The body of [`crate::linear_log_sig_backprop`] (see [`crate::api`]).
pub(crate) fn linear_log_sig_backprop<T: Scalar>(
    deriv: ArrayViewD<'_, T>,
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let options = untransformed(options);
    let plan = Plan::for_dimension(dimension, degree, method, &options)?;
    let v = Rows::new("displacement", displacement, 1)?;
    let g = Rows::new("deriv", deriv.view(), 1)?;
    expect_len("displacement", &v, dimension)?;
    same_batch("displacement", &v, "deriv", &g)?;
    let st = plan.scalar_slot(&options);
    expect_len("deriv", &g, plan.out_len(st))?;
    g.check_finite("deriv", false)?;
    Ok(letters(deriv, st as usize, dimension))
}

/// A join's and a segment's dimension is the log-signatures' own: no path transform applies.
fn untransformed(options: &SigOptions) -> SigOptions {
    let mut options = options.clone();
    options.transform = Default::default();
    options
}

/// The entries `start..start + dimension` of the last axis of `a`, owned and contiguous.
fn letters<T: Scalar>(a: ArrayViewD<'_, T>, start: usize, dimension: usize) -> ArrayD<T> {
    let last = Axis(a.ndim() - 1);
    a.slice_axis(last, (start..start + dimension).into())
        .to_owned()
}

/// The checked plan and rows of two batches of bracket coordinates of the same shape.
fn two_log_sigs<'a, 'b, T: Scalar>(
    log_sig1: ArrayViewD<'a, T>,
    log_sig2: ArrayViewD<'b, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<(Plan, Rows<'a, T>, Rows<'b, T>)> {
    options.validate::<T>()?;
    let plan = Plan::for_dimension(dimension, degree, LogSigMethod::Lyndon, options)?;
    let a = Rows::new("log_sig1", log_sig1, 1)?;
    let b = Rows::new("log_sig2", log_sig2, 1)?;
    expect_len("log_sig1", &a, plan.out_len(false))?;
    expect_len("log_sig2", &b, plan.out_len(false))?;
    same_batch("log_sig1", &a, "log_sig2", &b)?;
    a.check_finite("log_sig1", false)?;
    b.check_finite("log_sig2", false)?;
    Ok((plan, a, b))
}

/// The bracket coordinates of the segments `displacement`, checked against the log-signatures
/// they extend.
fn join_segment<T: Scalar>(
    log_sigs: ArrayViewD<'_, T>,
    displacement: ArrayViewD<'_, T>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let l = Rows::new("log_sig", log_sigs, 1)?;
    let v = Rows::new("displacement", displacement.view(), 1)?;
    same_batch("log_sig", &l, "displacement", &v)?;
    linear_log_sig(
        displacement,
        dimension,
        degree,
        LogSigMethod::Lyndon,
        options,
    )
}

/// One thread's buffers for a product of two log-signatures: both Lie elements expanded, their
/// exponentials and the product, and in reverse each one's gradient.
struct Bch<T> {
    ws: Workspace<T>,
    la: Vec<T>,
    lb: Vec<T>,
    a: Vec<T>,
    b: Vec<T>,
    c: Vec<T>,
    dc: Vec<T>,
    da: Vec<T>,
    db: Vec<T>,
    da_l: Vec<T>,
    db_l: Vec<T>,
}

/// Signature-sized buffers in a [`Bch`] beside its [`Workspace`].
const BCH_BUFFERS: u128 = 10;

impl<T: Scalar> Bch<T> {
    fn new(plan: &Plan) -> Self {
        let zero = || vec![T::zero(); plan.shape.len()];
        Bch {
            ws: plan.workspace(),
            la: zero(),
            lb: zero(),
            a: zero(),
            b: zero(),
            c: zero(),
            dc: zero(),
            da: zero(),
            db: zero(),
            da_l: zero(),
            db_l: zero(),
        }
    }

    /// `c = exp(ℓ_x) ⊗ exp(ℓ_y)` for the bracket coordinates `x` and `y`.
    fn product(&mut self, plan: &Plan, e: Option<&Expansions>, x: &[T], y: &[T]) {
        plan.lie_element(e, x, &mut self.ws);
        self.la.copy_from_slice(&self.ws.expanded);
        plan.lie_element(e, y, &mut self.ws);
        self.lb.copy_from_slice(&self.ws.expanded);
        tensor_exp(&plan.shape, &self.la, &mut self.a, &mut self.ws.log);
        tensor_exp(&plan.shape, &self.lb, &mut self.b, &mut self.ws.log);
        tensor_mul(&plan.shape, &self.a, &self.b, &mut self.c);
    }

    /// Given `g = dF/d log(c)` in bracket coordinates, `dF/dℓ_x` and `dF/dℓ_y` (expanded) into
    /// `da_l` and `db_l`.
    fn product_backprop(&mut self, plan: &Plan, e: Option<&Expansions>, x: &[T], y: &[T], g: &[T]) {
        self.product(plan, e, x, y);
        // Each gradient below is added into its output, so each starts at zero.
        for v in [
            &mut self.dc,
            &mut self.da,
            &mut self.db,
            &mut self.da_l,
            &mut self.db_l,
        ] {
            v.fill(T::zero());
        }
        plan.backward_row(&self.c, g, &mut self.ws, &mut self.dc);
        let shape = &plan.shape;
        tensor_mul_backprop(
            shape,
            &self.dc,
            &self.a,
            &self.b,
            &mut self.da,
            &mut self.db,
        );
        tensor_exp_backprop(shape, &self.la, &self.da, &mut self.da_l, &mut self.ws.log);
        tensor_exp_backprop(shape, &self.lb, &self.db, &mut self.db_l, &mut self.ws.log);
    }
}

impl Plan {
    /// Whether rows of this plan's form under `options` start with a scalar slot.
    fn scalar_slot(&self, options: &SigOptions) -> bool {
        options.scalar_term && self.basis.is_none()
    }

    /// The most threads, at most `threads`, for which `output` values and one [`Bch`] per thread
    /// fit in memory.
    fn fit_bch<T: Scalar>(&self, what: &str, output: usize, threads: usize) -> Result<usize> {
        let size = std::mem::size_of::<T>() as u128;
        let buffers = BCH_BUFFERS * self.shape.len() as u128 * size;
        fit_threads(what, threads, |_| Memory {
            output: output as u128 * size,
            shared: 0,
            per_thread: self.workspace_bytes::<T>() + buffers,
        })
    }
}

impl Plan {
    /// Multiply-adds of `rows` products of log-signatures: two exponentials, Chen's product and a
    /// logarithm, each about `degree` per coefficient.
    fn combine_work(&self, rows: usize) -> u128 {
        self.exp_work(rows).saturating_mul(4)
    }
}

/// The bracket form's tables for the GPU's products of log-signatures: the expansions, the Lyndon
/// words' positions, and the triangle where the device can solve it (else it is solved here).
#[cfg(feature = "gpu")]
struct GpuForm<'a, T> {
    expansion: gpu::Expansion<T>,
    brackets: Option<gpu::Brackets<T>>,
    words: &'a [usize],
    plan: &'a Plan,
}

#[cfg(feature = "gpu")]
impl<'a, T: Scalar> GpuForm<'a, T> {
    fn new(
        plan: &'a Plan,
        device: &gpu::GpuDevice,
        expansions: Option<&Expansions>,
    ) -> Result<GpuForm<'a, T>> {
        let (Some(e), Some(basis)) = (expansions, &plan.basis) else {
            unreachable!("products of log-signatures are planned in the bracket form")
        };
        Ok(GpuForm {
            expansion: plan.gpu_expansion(e)?,
            brackets: plan.gpu_triangle(device)?,
            words: &basis.flat,
            plan,
        })
    }

    fn view(&self) -> gpu::LyndonForm<'_, T> {
        gpu::LyndonForm {
            expansion: &self.expansion,
            brackets: self.brackets.as_ref(),
            words: self.words,
        }
    }

    /// The Lyndon words' coefficients in `rows` into bracket coordinates, where the device did not.
    fn solve(&self, rows: &mut [T]) {
        if let (None, Some(basis)) = (&self.brackets, &self.plan.basis) {
            for r in rows.chunks_exact_mut(basis.len()) {
                basis.brackets().solve(r);
            }
        }
    }

    /// The coordinates' derivatives `g` turned into the Lyndon words' derivatives, where the
    /// device does not.
    fn solve_transpose<'g>(&self, g: &'g [T]) -> Cow<'g, [T]> {
        match (&self.brackets, &self.plan.basis) {
            (None, Some(basis)) => {
                let mut rows = g.to_vec();
                for r in rows.chunks_exact_mut(basis.len()) {
                    basis.brackets().solve_transpose(r);
                }
                Cow::Owned(rows)
            }
            _ => Cow::Borrowed(g),
        }
    }
}
