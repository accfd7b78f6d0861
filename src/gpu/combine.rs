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

use super::chunks::{chunk_paths, open, read_into, to_u32, PerPath, STORAGE};
use super::context::Context;
use super::kernels::Precision;
use super::program::{set_last_report, submit_reading, take, upload, Dispatch, GpuReport};
use super::sig::plan::{SigParams, COMBINE_ROOT, WG};
use super::sig::wgsl::{
    SigKernel, SigKey, Tables, SIG_COMBINE, SIG_COMBINE_BACKPROP, SIG_JOIN, SIG_JOIN_BACKPROP,
};
use super::GpuDevice;
use crate::layout::TensorShape;
use crate::{Error, Result, Scalar};
use std::sync::Arc;

/// What every call here shares: the device, the kernels' key and how many rows go in one submission.
struct Call {
    ctx: Arc<Context>,
    key: SigKey,
    sig_len: usize,
    /// Rows per submission.
    group: usize,
    report: GpuReport,
}

impl Call {
    /// `per_row`: the elements per row of each buffer; `kernels`: those the call runs, checked
    /// against the adapter's loop budget.
    fn open<T: Scalar>(
        device: &GpuDevice,
        op: &str,
        shape: &TensorShape,
        per_row: &[PerPath],
        kernels: &[&SigKernel],
    ) -> Result<Call> {
        let precision = Precision::of::<T>();
        let ctx = open(device, precision)?;
        let too_large = || Error::Device(format!("the signature is too large for {op} on the GPU"));
        let d = to_u32("dimension", shape.dim)?;
        let degree = to_u32("degree", shape.degree)?;
        let tables = Tables::new(d, degree).ok_or_else(too_large)?;
        for k in kernels {
            let cost = loop_cost(k, &tables);
            if cost > ctx.loop_budget {
                return Err(Error::Device(format!(
                    "adapter '{}' runs at most {} loop iterations per invocation; {} needs {cost} \
                     for this signature; use the CPU",
                    ctx.name, ctx.loop_budget, k.name
                )));
            }
        }
        let group = chunk_paths(&ctx, precision, per_row)?;
        Ok(Call {
            key: SigKey {
                d,
                degree,
                dim: d,
                lead_lag: false,
                time_aug: false,
                precision,
                wg: WG,
            },
            sig_len: shape.len(),
            group,
            report: GpuReport::new(op),
            ctx,
        })
    }

    fn buffer(&mut self, label: &str, elems: usize) -> super::program::Pooled {
        let bytes = elems as u64 * self.key.precision.size();
        take(&self.ctx, label, bytes, STORAGE, &mut self.report)
    }

    fn upload<T: Scalar>(&mut self, buffer: &wgpu::Buffer, data: &[T]) {
        upload(
            &self.ctx,
            buffer,
            bytemuck::cast_slice(data),
            &mut self.report,
        );
    }

    /// One dispatch of `kernel` over `workgroups` workgroups.
    fn dispatch<'a>(
        &self,
        kernel: &'static SigKernel,
        params: SigParams,
        buffers: Vec<&'a wgpu::Buffer>,
        workgroups: u64,
    ) -> Result<Dispatch<'a>> {
        Ok(Dispatch {
            label: kernel.name,
            pipeline: super::sig::pipeline(&self.ctx, kernel, &self.key)?,
            params: bytemuck::bytes_of(&params).to_vec(),
            buffers,
            workgroups: workgroups.max(1),
            workgroup_size: WG,
        })
    }

    /// One dispatch with an invocation per item (`params.total` items).
    fn per_item<'a>(
        &self,
        kernel: &'static SigKernel,
        params: SigParams,
        buffers: Vec<&'a wgpu::Buffer>,
    ) -> Result<Dispatch<'a>> {
        let items = params.total as u64;
        self.dispatch(kernel, params, buffers, items.div_ceil(WG as u64))
    }

    /// The rows `first..first + n` of `a` and `b` (rows of `st + sig_len`) as pairs without the
    /// scalar term: row `2p` from `a`, row `2p + 1` from `b`; a side that is `None` is left zero.
    fn pairs<T: Scalar>(
        &self,
        a: Option<&[T]>,
        b: Option<&[T]>,
        st: usize,
        first: usize,
        n: usize,
    ) -> Vec<T> {
        let (len, row) = (self.sig_len, self.sig_len + st);
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
        &self,
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
            total: to_u32("coefficients", n * self.sig_len)?,
            ..Default::default()
        };
        self.per_item(&SIG_COMBINE, params, vec![pairs, unused, out])
    }

    /// The gradients of the product with respect to both factors: rows of `2·sig_len` in `grads`.
    fn product_backprop<'a>(
        &self,
        n: usize,
        st: usize,
        pairs: &'a wgpu::Buffer,
        derivs: &'a wgpu::Buffer,
        grads: &'a wgpu::Buffer,
    ) -> Result<Dispatch<'a>> {
        let params = SigParams {
            g_stride: to_u32("row", self.sig_len + st)?,
            g_st: st as u32,
            total: to_u32("coefficients", 2 * n * self.sig_len)?,
            ..Default::default()
        };
        self.per_item(&SIG_COMBINE_BACKPROP, params, vec![pairs, derivs, grads])
    }

    /// Write `exp(z)` of each row's displacement into its pair's row `side`.
    fn exp<'a>(
        &self,
        n: usize,
        side: u32,
        disp: &'a wgpu::Buffer,
        pairs: &'a wgpu::Buffer,
    ) -> Result<Dispatch<'a>> {
        let params = SigParams {
            offset: side,
            total: to_u32("coefficients", n * self.sig_len)?,
            ..Default::default()
        };
        self.per_item(&SIG_JOIN, params, vec![disp, pairs])
    }

    fn finish(self) {
        set_last_report(self.report);
    }
}

/// Loop iterations of one invocation of `kernel` (lavapipe's budget): the widest contraction or
/// word loop it runs.
fn loop_cost(kernel: &SigKernel, t: &Tables) -> u64 {
    let n = (t.pow.len() - 1) as u64;
    let level_of = 6 + n;
    let widest: u64 = t.pow[1..].iter().sum();
    match kernel.name {
        "sig_combine" | "sig_join" => level_of + 6 + 2 * n,
        // Per level `m` a loop over `D^m` words (a level-1 coefficient sums over every longer word).
        "sig_combine_backprop" => level_of + 6 * n + 2 * widest,
        // Each invocation takes every WG-th word of each level, `k` letters each; then the reduction.
        "sig_join_backprop" => {
            let words: u64 = (1..=n)
                .map(|k| t.pow[k as usize].div_ceil(WG as u64) * (7 + 2 * k))
                .sum();
            6 * n + words + 2 * 8
        }
        other => unreachable!("no loop model for {other}"),
    }
}

/// `n` values read back (the bytes of a read-back need not be aligned for `T`).
fn values<T: Scalar>(bytes: &[u8], n: usize) -> Vec<T> {
    let mut out = vec![T::zero(); n];
    read_into(Precision::of::<T>(), bytes, &mut out);
    out
}

/// Element counts of a call's buffers per row.
fn per_row(what: &'static str, elems: usize) -> PerPath {
    PerPath {
        what,
        elems: elems as u64,
    }
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
    let mut call = Call::open::<T>(device, "sig_combine", shape, &buffers, &[&SIG_COMBINE])?;
    for (g, out_group) in out.chunks_mut(call.group * row).enumerate() {
        let n = out_group.len() / row;
        let pairs = call.pairs(Some(a), Some(b), st, g * call.group, n);
        let pairs_buf = call.buffer("pairs", pairs.len());
        call.upload(&pairs_buf, &pairs);
        let unused = call.buffer("unused", 1);
        let out_buf = call.buffer("output", out_group.len());
        let steps = [call.product(n, st, &pairs_buf, &unused, &out_buf)?];
        let bytes = std::mem::size_of_val(out_group) as u64;
        let read = submit_reading(&call.ctx, &steps, &[(&out_buf, bytes)], &mut call.report)?;
        read_into(call.key.precision, &read[0], out_group);
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
    let mut call = Call::open::<T>(device, "sig_combine_backprop", shape, &buffers, &kernels)?;
    for (g, out_group) in both.chunks_mut(call.group * 2 * row).enumerate() {
        let n = out_group.len() / (2 * row);
        let first = g * call.group;
        let pairs = call.pairs(Some(a), Some(b), st, first, n);
        let pairs_buf = call.buffer("pairs", pairs.len());
        call.upload(&pairs_buf, &pairs);
        let derivs_buf = call.buffer("derivatives", n * row);
        call.upload(&derivs_buf, &derivs[first * row..(first + n) * row]);
        let grads = call.buffer("gradients", 2 * n * len);
        let steps = [call.product_backprop(n, st, &pairs_buf, &derivs_buf, &grads)?];
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
    let mut call = Call::open::<T>(device, "sig_join", shape, &buffers, &kernels)?;
    let side = exp_side(prepend);
    for (g, out_group) in out.chunks_mut(call.group * row).enumerate() {
        let n = out_group.len() / row;
        let first = g * call.group;
        let (a, b) = if prepend {
            (None, Some(sigs))
        } else {
            (Some(sigs), None)
        };
        let pairs = call.pairs(a, b, st, first, n);
        let pairs_buf = call.buffer("pairs", pairs.len());
        call.upload(&pairs_buf, &pairs);
        let disp_buf = call.buffer("displacements", n * d);
        call.upload(&disp_buf, &disp[first * d..(first + n) * d]);
        let unused = call.buffer("unused", 1);
        let out_buf = call.buffer("output", out_group.len());
        let steps = [
            call.exp(n, side as u32, &disp_buf, &pairs_buf)?,
            call.product(n, st, &pairs_buf, &unused, &out_buf)?,
        ];
        let bytes = std::mem::size_of_val(out_group) as u64;
        let read = submit_reading(&call.ctx, &steps, &[(&out_buf, bytes)], &mut call.report)?;
        read_into(call.key.precision, &read[0], out_group);
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
    let mut call = Call::open::<T>(device, "sig_join_backprop", shape, &buffers, &kernels)?;
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
        let pairs = call.pairs(a, b, st, first, n);
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
            call.exp(n, side as u32, &disp_buf, &pairs_buf)?,
            call.product_backprop(n, st, &pairs_buf, &derivs_buf, &grads)?,
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
