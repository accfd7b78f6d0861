//! `sig_combine`, `sig_join` and their gradients on the GPU (the kernels of `shaders/sig/` under the
//! same names).
//!
//! Both operations are Chen's product of two signatures per row: `sig_combine` of the two given,
//! `sig_join` of the signature and the straight segment's `exp(z)`, which `sig_join.wgsl` writes
//! beside it on the device. The product is the signature engine's `sig_combine` kernel (its root
//! mode, over rows held as pairs), one invocation per output coefficient. The gradients:
//! `sig_combine_backprop.wgsl`, one invocation per (row, factor, coefficient), contracts the
//! derivatives with the other factor; for `sig_join`, `sig_join_backprop.wgsl` turns the segment's
//! gradient into the displacement's, one workgroup per (row, channel). Each group of rows that fits
//! the adapter's buffers is one upload, one submission and one read-back.

use super::chunks::to_u32;
use super::program::{submit_reading, Dispatch};
use super::sig::plan::{SigParams, COMBINE_ROOT};
use super::sig::rows::{per_row, values, RowCall};
use super::sig::wgsl::{SIG_COMBINE, SIG_COMBINE_BACKPROP, SIG_JOIN, SIG_JOIN_BACKPROP};
use super::GpuDevice;
use crate::layout::TensorShape;
use crate::{Result, Scalar};

/// The rows `first..first + n` of `a` and `b` (rows of `st + sig_len`) as pairs without the
/// scalar term: row `2p` from `a`, row `2p + 1` from `b`; a side that is `None` is left zero.
fn pairs<T: Scalar>(
    call: &RowCall,
    a: Option<&[T]>,
    b: Option<&[T]>,
    st: usize,
    first: usize,
    n: usize,
) -> Vec<T> {
    let (len, row) = (call.sig_len, call.sig_len + st);
    let mut out = vec![T::zero(); 2 * n * len];
    for (side, rows) in [a, b].into_iter().enumerate() {
        let Some(rows) = rows else { continue };
        for p in 0..n {
            let src = (first + p) * row + st;
            let dst = (2 * p + side) * len;
            out[dst..dst + len].copy_from_slice(&rows[src..src + len]);
        }
    }
    out
}

/// The root of the product: output rows (`st + sig_len`, leading 1 when `st`) from the pairs.
fn product<'a>(
    call: &RowCall,
    n: usize,
    st: usize,
    pairs: &'a wgpu::Buffer,
    unused: &'a wgpu::Buffer,
    out: &'a wgpu::Buffer,
) -> Result<Dispatch<'a>> {
    let params = SigParams {
        n_chunks: 2,
        count: 2,
        mode: COMBINE_ROOT,
        out_st: st as u32,
        total: to_u32("coefficients", n * call.sig_len)?,
        ..Default::default()
    };
    call.per_item(&SIG_COMBINE, params, vec![pairs, unused, out])
}

/// The gradients of the product with respect to both factors: rows of `2·sig_len` in `grads`.
fn product_backprop<'a>(
    call: &RowCall,
    n: usize,
    st: usize,
    pairs: &'a wgpu::Buffer,
    derivs: &'a wgpu::Buffer,
    grads: &'a wgpu::Buffer,
) -> Result<Dispatch<'a>> {
    let params = SigParams {
        g_stride: to_u32("row", call.sig_len + st)?,
        g_st: st as u32,
        total: to_u32("coefficients", 2 * n * call.sig_len)?,
        ..Default::default()
    };
    call.per_item(&SIG_COMBINE_BACKPROP, params, vec![pairs, derivs, grads])
}

/// Write `exp(z)` of each row's displacement into its pair's row `side`.
fn exp<'a>(
    call: &RowCall,
    n: usize,
    side: u32,
    disp: &'a wgpu::Buffer,
    pairs: &'a wgpu::Buffer,
) -> Result<Dispatch<'a>> {
    let params = SigParams {
        offset: side,
        total: to_u32("coefficients", n * call.sig_len)?,
        ..Default::default()
    };
    call.per_item(&SIG_JOIN, params, vec![disp, pairs])
}

/// `out = a ⊗ b` row by row (rows of `st + shape.len()`; the scalar term of the output is 1).
pub(crate) fn sig_combine<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    a: &[T],
    b: &[T],
    st: usize,
    out: &mut [T],
) -> Result<()> {
    let row = shape.len() + st;
    if shape.is_empty() {
        out.fill(T::one());
        return Ok(());
    }
    let buffers = [per_row("pairs", 2 * shape.len()), per_row("output", row)];
    let mut call = RowCall::open::<T>(device, "sig_combine", shape, &buffers, &[&SIG_COMBINE])?;
    for (g, out_group) in out.chunks_mut(call.group * row).enumerate() {
        let n = out_group.len() / row;
        let pairs = pairs(&call, Some(a), Some(b), st, g * call.group, n);
        let pairs_buf = call.buffer("pairs", pairs.len());
        call.upload(&pairs_buf, &pairs);
        let unused = call.buffer("unused", 1);
        let out_buf = call.buffer("output", out_group.len());
        let steps = [product(&call, n, st, &pairs_buf, &unused, &out_buf)?];
        let bytes = std::mem::size_of_val(out_group) as u64;
        let read = submit_reading(&call.ctx, &steps, &[(&out_buf, bytes)], &mut call.report)?;
        out_group.copy_from_slice(&values::<T>(&read[0], out_group.len()));
    }
    call.finish();
    Ok(())
}

/// The gradients of [`sig_combine`] into `both`: per row `da` then `db`, each `st + shape.len()`
/// long (the scalar term's gradient is 0).
pub(crate) fn sig_combine_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    derivs: &[T],
    a: &[T],
    b: &[T],
    st: usize,
    both: &mut [T],
) -> Result<()> {
    let (len, row) = (shape.len(), shape.len() + st);
    if shape.is_empty() {
        both.fill(T::zero());
        return Ok(());
    }
    let buffers = [
        per_row("pairs", 2 * len),
        per_row("derivatives", row),
        per_row("gradients", 2 * len),
    ];
    let kernels = [&SIG_COMBINE_BACKPROP];
    let mut call = RowCall::open::<T>(device, "sig_combine_backprop", shape, &buffers, &kernels)?;
    for (g, out_group) in both.chunks_mut(call.group * 2 * row).enumerate() {
        let n = out_group.len() / (2 * row);
        let first = g * call.group;
        let pairs = pairs(&call, Some(a), Some(b), st, first, n);
        let pairs_buf = call.buffer("pairs", pairs.len());
        call.upload(&pairs_buf, &pairs);
        let derivs_buf = call.buffer("derivatives", n * row);
        call.upload(&derivs_buf, &derivs[first * row..(first + n) * row]);
        let grads = call.buffer("gradients", 2 * n * len);
        let steps = [product_backprop(
            &call,
            n,
            st,
            &pairs_buf,
            &derivs_buf,
            &grads,
        )?];
        let bytes = (2 * n * len) as u64 * call.key.precision.size();
        let read = submit_reading(&call.ctx, &steps, &[(&grads, bytes)], &mut call.report)?;
        let grads = values::<T>(&read[0], 2 * n * len);
        for (p, o) in out_group.chunks_exact_mut(2 * row).enumerate() {
            for side in 0..2 {
                let src = &grads[(2 * p + side) * len..(2 * p + side + 1) * len];
                o[side * row + st..(side + 1) * row].copy_from_slice(src);
            }
        }
    }
    call.finish();
    Ok(())
}

/// The pair row the segment's `exp(z)` takes: first when prepended, second when appended.
fn exp_side(prepend: bool) -> usize {
    usize::from(!prepend)
}

/// `out = sig ⊗ exp(z)` (or `exp(z) ⊗ sig` when `prepend`) row by row; `disp` has rows of
/// `shape.dim`.
pub(crate) fn sig_join<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    sigs: &[T],
    disp: &[T],
    st: usize,
    prepend: bool,
    out: &mut [T],
) -> Result<()> {
    let (d, row) = (shape.dim, shape.len() + st);
    if shape.is_empty() {
        out.fill(T::one());
        return Ok(());
    }
    let buffers = [
        per_row("pairs", 2 * shape.len()),
        per_row("displacements", d),
        per_row("output", row),
    ];
    let kernels = [&SIG_JOIN, &SIG_COMBINE];
    let mut call = RowCall::open::<T>(device, "sig_join", shape, &buffers, &kernels)?;
    let side = exp_side(prepend);
    for (g, out_group) in out.chunks_mut(call.group * row).enumerate() {
        let n = out_group.len() / row;
        let first = g * call.group;
        let (a, b) = if prepend {
            (None, Some(sigs))
        } else {
            (Some(sigs), None)
        };
        let pairs = pairs(&call, a, b, st, first, n);
        let pairs_buf = call.buffer("pairs", pairs.len());
        call.upload(&pairs_buf, &pairs);
        let disp_buf = call.buffer("displacements", n * d);
        call.upload(&disp_buf, &disp[first * d..(first + n) * d]);
        let unused = call.buffer("unused", 1);
        let out_buf = call.buffer("output", out_group.len());
        let steps = [
            exp(&call, n, side as u32, &disp_buf, &pairs_buf)?,
            product(&call, n, st, &pairs_buf, &unused, &out_buf)?,
        ];
        let bytes = std::mem::size_of_val(out_group) as u64;
        let read = submit_reading(&call.ctx, &steps, &[(&out_buf, bytes)], &mut call.report)?;
        out_group.copy_from_slice(&values::<T>(&read[0], out_group.len()));
    }
    call.finish();
    Ok(())
}

/// The gradients of [`sig_join`] into `both`: per row the signature's (`st + shape.len()`, the
/// scalar term's 0) then the displacement's (`shape.dim`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sig_join_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    derivs: &[T],
    sigs: &[T],
    disp: &[T],
    st: usize,
    prepend: bool,
    both: &mut [T],
) -> Result<()> {
    let (d, len, row) = (shape.dim, shape.len(), shape.len() + st);
    if shape.is_empty() {
        both.fill(T::zero());
        return Ok(());
    }
    let buffers = [
        per_row("pairs", 2 * len),
        per_row("displacements", d),
        per_row("derivatives", row),
        per_row("gradients", 2 * len),
    ];
    let kernels = [&SIG_JOIN, &SIG_COMBINE_BACKPROP, &SIG_JOIN_BACKPROP];
    let mut call = RowCall::open::<T>(device, "sig_join_backprop", shape, &buffers, &kernels)?;
    let side = exp_side(prepend);
    let size = call.key.precision.size();
    for (g, out_group) in both.chunks_mut(call.group * (row + d)).enumerate() {
        let n = out_group.len() / (row + d);
        let first = g * call.group;
        let (a, b) = if prepend {
            (None, Some(sigs))
        } else {
            (Some(sigs), None)
        };
        let pairs = pairs(&call, a, b, st, first, n);
        let pairs_buf = call.buffer("pairs", pairs.len());
        call.upload(&pairs_buf, &pairs);
        let disp_buf = call.buffer("displacements", n * d);
        call.upload(&disp_buf, &disp[first * d..(first + n) * d]);
        let derivs_buf = call.buffer("derivatives", n * row);
        call.upload(&derivs_buf, &derivs[first * row..(first + n) * row]);
        let grads = call.buffer("gradients", 2 * n * len);
        let dz = call.buffer("displacement gradients", n * d);
        let units = SigParams {
            offset: side as u32,
            total: to_u32("rows", n * d)?,
            ..Default::default()
        };
        let steps = [
            exp(&call, n, side as u32, &disp_buf, &pairs_buf)?,
            product_backprop(&call, n, st, &pairs_buf, &derivs_buf, &grads)?,
            call.dispatch(
                &SIG_JOIN_BACKPROP,
                units,
                vec![&disp_buf, &grads, &dz],
                (n * d) as u64,
            )?,
        ];
        let reads = [
            (&*grads, (2 * n * len) as u64 * size),
            (&*dz, (n * d) as u64 * size),
        ];
        let read = submit_reading(&call.ctx, &steps, &reads, &mut call.report)?;
        let (grads, dz) = (
            values::<T>(&read[0], 2 * n * len),
            values::<T>(&read[1], n * d),
        );
        // The signature's gradient is the other factor's.
        let sig_side = 1 - side;
        for (p, o) in out_group.chunks_exact_mut(row + d).enumerate() {
            let src = &grads[(2 * p + sig_side) * len..(2 * p + sig_side + 1) * len];
            o[st..row].copy_from_slice(src);
            o[row..].copy_from_slice(&dz[p * d..(p + 1) * d]);
        }
    }
    call.finish();
    Ok(())
}
