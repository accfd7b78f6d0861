//! `log_sig_combine` (and through it `log_sig_join`) and its gradient on the GPU, every step on the
//! device: both factors' bracket coordinates expanded (`lyndon_expand`) and exponentiated
//! (`tensor_series`) into the pairs Chen's product reads, the product (`sig_combine`), its
//! logarithm read at the Lyndon words (`tensor_series`) and solved into bracket coordinates
//! (`lyndon_solve`). The gradient recomputes the chain and runs it back. Only the coordinates go up
//! and only the results come back.
//!
//! The two factors of row `p` are rows `2p` and `2p + 1` of every two-sided buffer, which is the
//! layout of Chen's product's pairs and of its gradient.

use super::chunks::{to_u32, STORAGE};
use super::combine::{product, product_backprop};
use super::log_sig::{
    chain_len, series_backprop_steps, series_steps, Brackets, SeriesRows, LYNDON_FORWARD,
    LYNDON_TRANSPOSE,
};
use super::program::{dst, submit_reading, take, upload, Dispatch, Pooled};
use super::sig::rows::{per_row, RowCall};
use super::sig::wgsl::{SERIES_EXP, SERIES_LOG, SIG_COMBINE, SIG_COMBINE_BACKPROP, TENSOR_SERIES};
use super::to_sig::{Expansion, OnDevice, CONTRACT, EXPAND};
use super::GpuDevice;
use crate::layout::TensorShape;
use crate::Result;
use crate::Scalar;

/// The Lyndon bracket form's tables for the device.
pub(crate) struct LyndonForm<'a, T> {
    pub expansion: &'a Expansion<T>,
    /// The triangle from the Lyndon words' coefficients to the coordinates; `None`: the caller
    /// solves on the host (the forward's output, and the gradient's input transposed).
    pub brackets: Option<&'a Brackets<T>>,
    /// The Lyndon words' flat indices.
    pub words: &'a [usize],
}

/// The buffers of one group of `n` rows of the forward chain.
struct Chain {
    /// Coordinates per row.
    row: usize,
    coords: Pooled,
    lie: Pooled,
    chain: Pooled,
    pairs: Pooled,
    product: Pooled,
    unused: [Pooled; 3],
}

/// What a call shares: the device, its tables and the positions of the words (forward: each
/// word's flat index; gradient: each flat index's word).
struct Call {
    call: RowCall,
    tables: OnDevice,
    words: Pooled,
    /// Coordinates per row.
    row: usize,
}

impl Call {
    fn open<T: Scalar>(
        device: &GpuDevice,
        op: &str,
        shape: &TensorShape,
        form: &LyndonForm<'_, T>,
        gradient: bool,
    ) -> Result<Call> {
        let (len, row) = (shape.len(), form.words.len());
        let mut buffers = vec![
            per_row("log-signatures", 2 * row),
            per_row("Lie elements", 2 * len),
            per_row("series chain", 2 * chain_len(shape)),
            per_row("pairs", 2 * len),
            per_row("product", len),
        ];
        if gradient {
            buffers.extend([
                per_row("derivatives", row),
                per_row("chain derivatives", 4 * len),
                per_row("product derivatives", len),
                per_row("pair derivatives", 2 * len),
                per_row("Lie element derivatives", 2 * len),
            ]);
        }
        let kernels = [&TENSOR_SERIES, &SIG_COMBINE, &SIG_COMBINE_BACKPROP];
        let mut call = RowCall::open::<T>(device, op, shape, &buffers, &kernels)?;
        let tables = OnDevice::new(&mut call, Some(form.expansion), form.brackets, gradient)?;
        // The logarithm reads the words' flat indices; its reverse each coefficient's word (or
        // NONE), the layout `tensor_series` reads derivatives through.
        let table: Vec<u32> = if gradient {
            let mut word_at = vec![u32::MAX; shape.len()];
            for (i, &w) in form.words.iter().enumerate() {
                word_at[w] = to_u32("word", i)?;
            }
            word_at
        } else {
            let flat = form.words.iter().map(|&w| to_u32("word index", w));
            flat.collect::<Result<_>>()?
        };
        let bytes: &[u8] = bytemuck::cast_slice(&table);
        let words = take(
            &call.ctx,
            "words",
            bytes.len() as u64,
            STORAGE,
            &mut call.report,
        );
        upload(&call.ctx, &words, bytes, &mut call.report);
        Ok(Call {
            call,
            tables,
            words,
            row,
        })
    }
}

impl Chain {
    /// The buffers of rows `first..first + n`, with both factors' coordinates uploaded
    /// interleaved.
    fn new<T: Scalar>(
        c: &mut Call,
        shape: &TensorShape,
        [a, b]: [&[T]; 2],
        first: usize,
        n: usize,
    ) -> Chain {
        let (len, row) = (shape.len(), c.row);
        let mut both = Vec::with_capacity(2 * n * row);
        for p in first..first + n {
            both.extend_from_slice(&a[p * row..(p + 1) * row]);
            both.extend_from_slice(&b[p * row..(p + 1) * row]);
        }
        let call = &mut c.call;
        let coords = call.buffer("log-signatures", 2 * n * row);
        call.upload(&coords, &both);
        Chain {
            row,
            coords,
            lie: call.buffer("Lie elements", 2 * n * len),
            chain: call.buffer("series chain", 2 * n * chain_len(shape)),
            pairs: call.buffer("pairs", 2 * n * len),
            product: call.buffer("product", n * len),
            unused: [(); 3].map(|_| call.buffer("unused", 4)),
        }
    }

    /// The dispatches from the coordinates to the product `exp(ℓ_a) ⊗ exp(ℓ_b)` of each row.
    fn to_product<'a>(
        &'a self,
        call: &RowCall,
        tables: &'a OnDevice,
        shape: &TensorShape,
        n: usize,
    ) -> Result<Vec<Dispatch<'a>>> {
        let (len, row) = (shape.len(), self.row);
        let expansion = tables
            .expansion
            .as_ref()
            .expect("the form's expansion is uploaded");
        let [u0, u1, u2] = &self.unused;
        let mut steps = vec![tables.expand(
            call,
            EXPAND,
            2 * n * len,
            row,
            expansion,
            &self.coords,
            &self.lie,
        )?];
        let exp_rows = SeriesRows {
            row: len,
            st: 0,
            words: false,
        };
        let bufs = [&*self.lie, &**u0, &*self.chain, &**u1, &*self.pairs, &**u2];
        steps.extend(series_steps(
            call,
            shape,
            2 * n,
            SERIES_EXP,
            exp_rows,
            bufs,
        )?);
        steps.push(product(call, n, 0, &self.pairs, u0, &self.product)?);
        Ok(steps)
    }
}

/// The rows of the logarithm read at the Lyndon words.
fn word_rows(row: usize) -> SeriesRows {
    SeriesRows {
        row,
        st: 0,
        words: true,
    }
}

/// `log(exp(ℓ_a) ⊗ exp(ℓ_b))` of the rows of `a` and `b` (bracket coordinates) into `out`, in
/// bracket coordinates (or, without `form.brackets`, the Lyndon words' coefficients, for the caller
/// to solve).
pub(crate) fn log_sig_combine<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    form: &LyndonForm<'_, T>,
    a: &[T],
    b: &[T],
    out: &mut [T],
) -> Result<()> {
    let row = form.words.len();
    if out.is_empty() || row == 0 {
        return Ok(());
    }
    let mut c = Call::open(device, "log_sig_combine", shape, form, false)?;
    for (g, out_group) in out.chunks_mut(c.call.group * row).enumerate() {
        let (n, first) = (out_group.len() / row, g * c.call.group);
        let buffers = Chain::new(&mut c, shape, [a, b], first, n);
        let result = c.call.buffer("log-signatures", n * row);
        let mut steps = buffers.to_product(&c.call, &c.tables, shape, n)?;
        let [u0, u1, _] = &buffers.unused;
        let bufs = [
            &*buffers.product,
            &**u0,
            &*buffers.chain,
            &**u1,
            &*result,
            &*c.words,
        ];
        steps.extend(series_steps(
            &c.call,
            shape,
            n,
            SERIES_LOG,
            word_rows(row),
            bufs,
        )?);
        if let Some(b) = &c.tables.brackets {
            steps.push(b.solve(&c.call.ctx, shape, n, row, LYNDON_FORWARD, &result)?);
        }
        submit_reading(
            &c.call.ctx,
            &steps,
            &mut [(&result, dst(out_group))],
            &mut c.call.report,
        )?;
    }
    c.call.finish();
    Ok(())
}

/// The gradients of [`log_sig_combine`] into `both` (per row, `a`'s then `b`'s), from `derivs`
/// (bracket coordinates; without `form.brackets`, already through the transposed solve).
pub(crate) fn log_sig_combine_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    form: &LyndonForm<'_, T>,
    derivs: &[T],
    a: &[T],
    b: &[T],
    both: &mut [T],
) -> Result<()> {
    let (len, row) = (shape.len(), form.words.len());
    if both.is_empty() || row == 0 {
        return Ok(());
    }
    let mut c = Call::open(device, "log_sig_combine_backprop", shape, form, true)?;
    for (g, out_group) in both.chunks_mut(c.call.group * 2 * row).enumerate() {
        let (n, first) = (out_group.len() / (2 * row), g * c.call.group);
        let buffers = Chain::new(&mut c, shape, [a, b], first, n);
        let call = &mut c.call;
        let g_buf = call.buffer("derivatives", n * row);
        call.upload(&g_buf, &derivs[first * row..(first + n) * row]);
        let dp = call.buffer("chain derivatives", 4 * n * len);
        let d_product = call.buffer("product derivatives", n * len);
        let d_pairs = call.buffer("pair derivatives", 2 * n * len);
        let d_lie = call.buffer("Lie element derivatives", 2 * n * len);
        let call = &c.call;
        let mut steps = buffers.to_product(call, &c.tables, shape, n)?;
        if let Some(b) = &c.tables.brackets {
            steps.push(b.solve(&call.ctx, shape, n, row, LYNDON_TRANSPOSE, &g_buf)?);
        }
        let bufs = [
            &*buffers.product,
            &*g_buf,
            &*buffers.chain,
            &*dp,
            &*d_product,
            &*c.words,
        ];
        steps.extend(series_backprop_steps(
            call,
            shape,
            n,
            SERIES_LOG,
            word_rows(row),
            bufs,
        )?);
        steps.push(product_backprop(
            call,
            n,
            0,
            &buffers.pairs,
            &d_product,
            &d_pairs,
        )?);
        let exp_rows = SeriesRows {
            row: len,
            st: 0,
            words: false,
        };
        let bufs = [
            &*buffers.lie,
            &*d_pairs,
            &*buffers.chain,
            &*dp,
            &*d_lie,
            &*buffers.unused[0],
        ];
        steps.extend(series_backprop_steps(
            call,
            shape,
            2 * n,
            SERIES_EXP,
            exp_rows,
            bufs,
        )?);
        let transpose = c
            .tables
            .transpose
            .as_ref()
            .expect("the gradient's tables are uploaded");
        // The coordinates' gradients over the coordinates, which the forward steps have read.
        steps.push(c.tables.expand(
            call,
            CONTRACT,
            2 * n * row,
            row,
            transpose,
            &buffers.coords,
            &d_lie,
        )?);
        submit_reading(
            &c.call.ctx,
            &steps,
            &mut [(&buffers.coords, dst(out_group))],
            &mut c.call.report,
        )?;
    }
    c.call.finish();
    Ok(())
}
