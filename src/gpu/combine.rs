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
//!
//! A factor may also be signatures already on the device ([`Factor::Device`], as
//! `gpu::GpuSigs` holds them): `sig_pairs.wgsl` places its rows into the pairs there, and the
//! resident forms (`*_resident`) leave the product on the device.

use super::chunks::to_u32;
use super::program::{dst, submit, submit_reading, upload_with, Dispatch, Pooled};
use super::sig::plan::{SigParams, COMBINE_ROOT};
use super::sig::rows::{per_row, RowCall};
use super::sig::wgsl::{SIG_COMBINE, SIG_COMBINE_BACKPROP, SIG_JOIN, SIG_JOIN_BACKPROP, SIG_PAIRS};
use super::GpuDevice;
use crate::layout::TensorShape;
use crate::{Error, Result, Scalar};

/// Where one factor of each row's product comes from.
#[derive(Clone, Copy)]
pub(crate) enum Factor<'a, T> {
    /// Rows on the host, of `st + sig_len` (the scalar term is skipped).
    Host(&'a [T]),
    /// Rows on the device, of `sig_len`.
    Device(&'a wgpu::Buffer),
    /// None: the side the segment's `exp(z)` is written to.
    Empty,
}

/// A buffer for the pairs of rows `first..first + n`, holding the host factors without the scalar
/// term (row `2p` from the first, `2p + 1` from the second). The other sides are filled on the
/// device ([`place`], or the segment's `exp(z)`), so without a host factor nothing is uploaded.
fn pairs<T: Scalar>(
    call: &mut RowCall,
    factors: [Factor<'_, T>; 2],
    st: usize,
    first: usize,
    n: usize,
) -> Pooled {
    let (len, row) = (call.sig_len, call.sig_len + st);
    let buffer = call.buffer("pairs", 2 * n * len);
    if !factors.iter().any(|f| matches!(f, Factor::Host(_))) {
        return buffer;
    }
    // Written in place in the staging memory, row by row (a side without a host factor as zeros).
    let width = len * std::mem::size_of::<T>();
    let bytes = (2 * n * width) as u64;
    let fill = |mut staging: wgpu::WriteOnly<'_, [u8]>| {
        for p in 0..n {
            for (side, factor) in factors.iter().enumerate() {
                let at = (2 * p + side) * width;
                let mut dst = staging.slice(at..at + width);
                match factor {
                    Factor::Host(rows) => {
                        let src = (first + p) * row + st;
                        dst.copy_from_slice(bytemuck::cast_slice(&rows[src..src + len]));
                    }
                    _ => dst.fill(0),
                }
            }
        }
    };
    upload_with(&call.ctx, &buffer, bytes, fill, &mut call.report);
    buffer
}

/// The dispatches that copy the device factors' rows `first..first + n` into their sides of
/// `pairs`.
fn place<'a, T>(
    call: &RowCall,
    factors: [Factor<'a, T>; 2],
    first: usize,
    n: usize,
    pairs: &'a wgpu::Buffer,
) -> Result<Vec<Dispatch<'a>>> {
    let mut steps = Vec::new();
    for (side, factor) in factors.into_iter().enumerate() {
        let Factor::Device(src) = factor else {
            continue;
        };
        let params = SigParams {
            offset: side as u32,
            unit_begin: to_u32("rows", first)?,
            total: to_u32("coefficients", n * call.sig_len)?,
            ..Default::default()
        };
        steps.push(call.per_item(&SIG_PAIRS, params, vec![src, pairs])?);
    }
    Ok(steps)
}

/// The root of the product: output rows (`st + sig_len`, leading 1 when `st`) from the pairs.
pub(super) fn product<'a>(
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
pub(super) fn product_backprop<'a>(
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

/// The buffers of one group of a forward product.
struct Forward {
    pairs: Pooled,
    disp: Option<Pooled>,
    unused: Pooled,
    out: Pooled,
}

/// Rows `first..first + n` of `factors ⊗`: uploads the host sides (and the displacements of a
/// join, `disp` with rows of `shape.dim`) and returns the buffers with the dispatches that fill the
/// device sides, write `exp(z)` into side `join` and take the products into `out` (rows of
/// `st + sig_len`).
fn forward<T: Scalar>(
    call: &mut RowCall,
    factors: [Factor<'_, T>; 2],
    disp: Option<&[T]>,
    st: usize,
    first: usize,
    n: usize,
) -> Forward {
    let d = call.key.d as usize;
    let pairs_buf = pairs(call, factors, st, first, n);
    let disp = disp.map(|disp| {
        let buf = call.buffer("displacements", n * d);
        call.upload(&buf, &disp[first * d..(first + n) * d]);
        buf
    });
    Forward {
        pairs: pairs_buf,
        disp,
        unused: call.buffer("unused", 1),
        out: call.buffer("output", n * (call.sig_len + st)),
    }
}

/// The dispatches of [`forward`]'s group.
fn forward_steps<'a, T>(
    call: &RowCall,
    buffers: &'a Forward,
    factors: [Factor<'a, T>; 2],
    join: Option<u32>,
    st: usize,
    first: usize,
    n: usize,
) -> Result<Vec<Dispatch<'a>>> {
    let mut steps = place(call, factors, first, n, &buffers.pairs)?;
    if let (Some(side), Some(disp)) = (join, &buffers.disp) {
        steps.push(exp(call, n, side, disp, &buffers.pairs)?);
    }
    let out = &buffers.out;
    steps.push(product(call, n, st, &buffers.pairs, &buffers.unused, out)?);
    Ok(steps)
}

/// The product of each row's factors into `out` (rows of `st + shape.len()`, the scalar term 1),
/// `exp(z)` of `disp`'s rows taking side `join` when given.
fn product_to_host<T: Scalar>(
    call: &mut RowCall,
    factors: [Factor<'_, T>; 2],
    disp: Option<(&[T], u32)>,
    st: usize,
    out: &mut [T],
) -> Result<()> {
    let row = call.sig_len + st;
    for (g, out_group) in out.chunks_mut(call.group * row).enumerate() {
        let (n, first) = (out_group.len() / row, g * call.group);
        let buffers = forward(call, factors, disp.map(|d| d.0), st, first, n);
        let steps = forward_steps(call, &buffers, factors, disp.map(|d| d.1), st, first, n)?;
        submit_reading(
            &call.ctx,
            &steps,
            &mut [(&buffers.out, dst(out_group))],
            &mut call.report,
        )?;
    }
    Ok(())
}

/// The product of each of `n` rows' factors, left on the device (rows of `shape.len()`); all rows
/// in one submission.
fn product_on_device<T: Scalar>(
    mut call: RowCall,
    factors: [Factor<'_, T>; 2],
    disp: Option<(&[T], u32)>,
    n: usize,
) -> Result<Pooled> {
    if n > call.group {
        return Err(Error::Device(format!(
            "adapter '{}': {n} rows of signatures do not fit its buffers at once; use the host API, \
             which groups them",
            call.ctx.name
        )));
    }
    let buffers = forward(&mut call, factors, disp.map(|d| d.0), 0, 0, n);
    let steps = forward_steps(&call, &buffers, factors, disp.map(|d| d.1), 0, 0, n)?;
    submit(&call.ctx, &steps, None, &mut call.report)?;
    drop(steps);
    call.finish();
    Ok(buffers.out)
}

/// The buffers a product of rows needs per row.
fn forward_rows(len: usize, st: usize, d: Option<usize>) -> Vec<super::chunks::PerPath> {
    let mut rows = vec![per_row("pairs", 2 * len), per_row("output", len + st)];
    rows.extend(d.map(|d| per_row("displacements", d)));
    rows
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
    if shape.is_empty() {
        out.fill(T::one());
        return Ok(());
    }
    let rows = forward_rows(shape.len(), st, None);
    let mut call = RowCall::open::<T>(device, "sig_combine", shape, &rows, &[&SIG_COMBINE])?;
    product_to_host(&mut call, [Factor::Host(a), Factor::Host(b)], None, st, out)?;
    call.finish();
    Ok(())
}

/// `a ⊗ b` of `n` rows on the device (rows of `shape.len()`), left on the device.
pub(crate) fn sig_combine_resident<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    n: usize,
) -> Result<Pooled> {
    let rows = forward_rows(shape.len(), 0, None);
    let kernels = [&SIG_PAIRS, &SIG_COMBINE];
    let call = RowCall::open::<T>(device, "sig_combine", shape, &rows, &kernels)?;
    product_on_device::<T>(call, [Factor::Device(a), Factor::Device(b)], None, n)
}

/// The gradients of [`sig_combine`] into `both`: per row `da` then `db`, each `st + shape.len()`
/// long (the scalar term's gradient is 0).
pub(crate) fn sig_combine_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    derivs: &[T],
    factors: [Factor<'_, T>; 2],
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
    let kernels = [&SIG_PAIRS, &SIG_COMBINE_BACKPROP];
    let mut call = RowCall::open::<T>(device, "sig_combine_backprop", shape, &buffers, &kernels)?;
    for (g, out_group) in both.chunks_mut(call.group * 2 * row).enumerate() {
        let n = out_group.len() / (2 * row);
        let first = g * call.group;
        let pairs_buf = pairs(&mut call, factors, st, first, n);
        let derivs_buf = call.buffer("derivatives", n * row);
        call.upload(&derivs_buf, &derivs[first * row..(first + n) * row]);
        let grads = call.buffer("gradients", 2 * n * len);
        let mut steps = place(&call, factors, first, n, &pairs_buf)?;
        steps.push(product_backprop(
            &call,
            n,
            st,
            &pairs_buf,
            &derivs_buf,
            &grads,
        )?);
        let mut values = vec![T::zero(); 2 * n * len];
        submit_reading(
            &call.ctx,
            &steps,
            &mut [(&grads, dst(&mut values))],
            &mut call.report,
        )?;
        let grads = values;
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

/// The factors of a join: the signatures on the side `exp(z)` does not take.
fn join_factors<T>(sigs: Factor<'_, T>, prepend: bool) -> [Factor<'_, T>; 2] {
    if prepend {
        [Factor::Empty, sigs]
    } else {
        [sigs, Factor::Empty]
    }
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
    if shape.is_empty() {
        out.fill(T::one());
        return Ok(());
    }
    let rows = forward_rows(shape.len(), st, Some(shape.dim));
    let kernels = [&SIG_JOIN, &SIG_COMBINE];
    let mut call = RowCall::open::<T>(device, "sig_join", shape, &rows, &kernels)?;
    let factors = join_factors(Factor::Host(sigs), prepend);
    let side = exp_side(prepend) as u32;
    product_to_host(&mut call, factors, Some((disp, side)), st, out)?;
    call.finish();
    Ok(())
}

/// `sig ⊗ exp(z)` (or `exp(z) ⊗ sig`) of `n` rows on the device, left on the device; `disp` (on
/// the host) has rows of `shape.dim`.
pub(crate) fn sig_join_resident<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    sigs: &wgpu::Buffer,
    disp: &[T],
    prepend: bool,
    n: usize,
) -> Result<Pooled> {
    let rows = forward_rows(shape.len(), 0, Some(shape.dim));
    let kernels = [&SIG_PAIRS, &SIG_JOIN, &SIG_COMBINE];
    let call = RowCall::open::<T>(device, "sig_join", shape, &rows, &kernels)?;
    let factors = join_factors(Factor::Device(sigs), prepend);
    product_on_device(call, factors, Some((disp, exp_side(prepend) as u32)), n)
}

/// The gradients of [`sig_join`] into `both`: per row the signature's (`st + shape.len()`, the
/// scalar term's 0) then the displacement's (`shape.dim`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sig_join_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    derivs: &[T],
    sigs: Factor<'_, T>,
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
    let kernels = [
        &SIG_PAIRS,
        &SIG_JOIN,
        &SIG_COMBINE_BACKPROP,
        &SIG_JOIN_BACKPROP,
    ];
    let mut call = RowCall::open::<T>(device, "sig_join_backprop", shape, &buffers, &kernels)?;
    let side = exp_side(prepend);
    let factors = join_factors(sigs, prepend);
    for (g, out_group) in both.chunks_mut(call.group * (row + d)).enumerate() {
        let n = out_group.len() / (row + d);
        let first = g * call.group;
        let pairs_buf = pairs(&mut call, factors, st, first, n);
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
        let mut steps = place(&call, factors, first, n, &pairs_buf)?;
        steps.extend([
            exp(&call, n, side as u32, &disp_buf, &pairs_buf)?,
            product_backprop(&call, n, st, &pairs_buf, &derivs_buf, &grads)?,
            call.dispatch(
                &SIG_JOIN_BACKPROP,
                units,
                vec![&disp_buf, &grads, &dz],
                (n * d) as u64,
            )?,
        ]);
        let (mut grads_host, mut dz_host) = (vec![T::zero(); 2 * n * len], vec![T::zero(); n * d]);
        let mut reads = [(&*grads, dst(&mut grads_host)), (&*dz, dst(&mut dz_host))];
        submit_reading(&call.ctx, &steps, &mut reads, &mut call.report)?;
        let (grads, dz) = (grads_host, dz_host);
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
