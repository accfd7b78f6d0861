//! `log_sig_to_sig` and its gradient on the GPU: each row's Lie element expanded on the device
//! (`shaders/sig/lyndon_solve.wgsl` turns the words form into bracket coordinates,
//! `shaders/sig/lyndon_expand.wgsl` expands the coordinates in words), then the tensor exponential
//! (`shaders/sig/tensor_series.wgsl`, the logarithm's kernel with the exponential's coefficients),
//! one dispatch per step of Horner's nesting over every coefficient of every row. The gradient runs
//! the same steps back: the exponential's reverse, the expansion's transpose, the transposed solve.
//! Only the log-signatures go up and only the results come back.

use super::chunks::{loop_cost, to_u32, PerPath, STORAGE};
use super::log_sig::{
    chain_len, series_backprop_steps, series_steps, BracketBuffers, Brackets, SeriesRows,
    LYNDON_FORWARD, LYNDON_TRANSPOSE,
};
use super::program::{dst, submit_reading, take, upload, Dispatch, Pooled};
use super::sig::plan::SigParams;
use super::sig::rows::{per_row, RowCall};
use super::sig::wgsl::{LYNDON_EXPAND, SERIES_EXP, TENSOR_SERIES};
use super::GpuDevice;
use crate::layout::TensorShape;
use crate::{Error, Result, Scalar};

/// `lyndon_expand`'s modes.
pub(super) const EXPAND: u32 = 0;
pub(super) const CONTRACT: u32 = 1;

/// The bracket expansions `P_p` in words as two sparse tables: filed by flat index (each word's
/// brackets, for the expansion) and by bracket (each bracket's words, for its transpose).
pub(crate) struct Expansion<T> {
    by_index: Table<T>,
    by_bracket: Table<T>,
}

/// Rows of a sparse matrix (CSR): row `i` holds `cols[starts[i]..starts[i + 1]]` and their values.
struct Table<T> {
    starts: Vec<u32>,
    cols: Vec<u32>,
    vals: Vec<T>,
}

impl<T: Scalar> Expansion<T> {
    /// From each bracket's `(flat index, coefficient)` terms in bracket order (`sig_len` flat
    /// indices); `None` where an index exceeds `u32`.
    pub fn new<'e>(
        brackets: impl IntoIterator<Item = &'e [(usize, f64)]>,
        sig_len: usize,
    ) -> Option<Expansion<T>> {
        let mut by_index: Vec<Vec<(u32, f64)>> = vec![Vec::new(); sig_len];
        let mut by_bracket = Table {
            starts: vec![0],
            cols: Vec::new(),
            vals: Vec::new(),
        };
        for (p, terms) in brackets.into_iter().enumerate() {
            for &(f, m) in terms.iter() {
                by_index.get_mut(f)?.push((u32::try_from(p).ok()?, m));
                by_bracket.cols.push(u32::try_from(f).ok()?);
                by_bracket.vals.push(T::from_f64(m));
            }
            by_bracket
                .starts
                .push(u32::try_from(by_bracket.cols.len()).ok()?);
        }
        let mut table = Table {
            starts: vec![0],
            cols: Vec::new(),
            vals: Vec::new(),
        };
        for terms in by_index {
            for (p, m) in terms {
                table.cols.push(p);
                table.vals.push(T::from_f64(m));
            }
            table.starts.push(u32::try_from(table.cols.len()).ok()?);
        }
        Some(Expansion {
            by_index: table,
            by_bracket,
        })
    }

    /// Loop iterations of one `lyndon_expand` invocation: the longest row of either table.
    fn loop_cost(&self) -> u64 {
        let widest = |t: &Table<T>| {
            t.starts
                .windows(2)
                .map(|w| (w[1] - w[0]) as u64)
                .max()
                .unwrap_or(0)
        };
        loop_cost::lp(widest(&self.by_index).max(widest(&self.by_bracket)), 4)
    }
}

/// Log-signature rows as the device reads them.
pub(crate) struct LieRows<'a, T> {
    /// Rows of `row` values; each row's values start after `st` (a scalar term's slot).
    pub rows: &'a [T],
    pub row: usize,
    pub st: usize,
    /// Bracket coordinates (or, with `brackets`, the words form): their expansions. `None`: the
    /// rows are the expanded Lie elements.
    pub expansion: Option<&'a Expansion<T>>,
    /// The words form: the triangle that turns each row into bracket coordinates first.
    pub brackets: Option<&'a Brackets<T>>,
}

/// The tables of one call on the device: the expansion filed by index, and for the gradient by
/// bracket.
pub(super) struct OnDevice {
    pub expansion: Option<[Pooled; 3]>,
    pub transpose: Option<[Pooled; 3]>,
    pub brackets: Option<BracketBuffers>,
}

impl OnDevice {
    /// Uploads the triangle and the expansion's tables (its transpose's too for `gradient`), checked
    /// against the loop budget.
    pub(super) fn new<T: Scalar>(
        call: &mut RowCall,
        expansion: Option<&Expansion<T>>,
        brackets: Option<&Brackets<T>>,
        gradient: bool,
    ) -> Result<OnDevice> {
        let (mut tables, mut transpose) = (None, None);
        if let Some(e) = expansion {
            if e.loop_cost() > call.ctx.loop_budget {
                return Err(Error::Device(format!(
                    "adapter '{}' runs at most {} loop iterations per invocation; the Lyndon \
                         brackets of this log-signature need {}; use the CPU",
                    call.ctx.name,
                    call.ctx.loop_budget,
                    e.loop_cost()
                )));
            }
            tables = Some(e.by_index.upload(call));
            if gradient {
                transpose = Some(e.by_bracket.upload(call));
            }
        }
        let brackets = brackets
            .map(|b| b.upload(&call.ctx, &mut call.report))
            .transpose()?;
        Ok(OnDevice {
            expansion: tables,
            transpose,
            brackets,
        })
    }

    /// The rows `range` uploaded and expanded: the dispatches that fill `lie` (a row of the
    /// signature's levels per row), through `coords` for the Lyndon forms.
    fn lie_elements<'a, T: Scalar>(
        &'a self,
        call: &mut RowCall,
        shape: &TensorShape,
        rows: &LieRows<'_, T>,
        range: std::ops::Range<usize>,
        [coords, lie]: [&'a Pooled; 2],
    ) -> Result<Vec<Dispatch<'a>>> {
        let (row, st, len, n) = (rows.row, rows.st, call.sig_len, range.len());
        let mut values = Vec::with_capacity(n * (row - st));
        for r in rows.rows[range.start * row..range.end * row].chunks_exact(row) {
            values.extend_from_slice(&r[st..]);
        }
        let Some(tables) = &self.expansion else {
            call.upload(lie, &values);
            return Ok(Vec::new());
        };
        call.upload(coords, &values);
        let mut steps = Vec::new();
        if let Some(b) = &self.brackets {
            steps.push(b.solve(&call.ctx, shape, n, row, LYNDON_FORWARD, coords)?);
        }
        steps.push(self.expand(call, EXPAND, n * len, row, tables, coords, lie)?);
        Ok(steps)
    }

    /// One `lyndon_expand` dispatch of `items` invocations.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn expand<'a>(
        &self,
        call: &RowCall,
        mode: u32,
        items: usize,
        row: usize,
        [starts, cols, vals]: &'a [Pooled; 3],
        coords: &'a Pooled,
        lie: &'a Pooled,
    ) -> Result<Dispatch<'a>> {
        let params = SigParams {
            mode,
            total: to_u32("coefficients", items)?,
            g_stride: to_u32("row", row)?,
            ..Default::default()
        };
        call.per_item(
            &LYNDON_EXPAND,
            params,
            vec![starts, cols, vals, coords, lie],
        )
    }
}

/// Elements of the coordinates' buffer for `n` rows: none when the rows are expanded (they go to
/// the Lie elements' buffer directly).
fn coords_len(tables: &OnDevice, n: usize, row: usize) -> usize {
    if tables.expansion.is_some() {
        n * row
    } else {
        0
    }
}

impl<T: Scalar> Table<T> {
    fn upload(&self, call: &mut RowCall) -> [Pooled; 3] {
        let mut buffer = |label: &str, bytes: &[u8]| {
            let b = take(
                &call.ctx,
                label,
                bytes.len() as u64,
                STORAGE,
                &mut call.report,
            );
            upload(&call.ctx, &b, bytes, &mut call.report);
            b
        };
        [
            buffer("expansion rows", bytemuck::cast_slice(&self.starts)),
            buffer("expansion columns", bytemuck::cast_slice(&self.cols)),
            buffer("expansion values", bytemuck::cast_slice(&self.vals)),
        ]
    }
}

/// The per-row buffers of a call, for its group size.
fn rows_of<T>(
    shape: &TensorShape,
    rows: &LieRows<'_, T>,
    more: impl IntoIterator<Item = PerPath>,
) -> Vec<PerPath> {
    let len = shape.len();
    let mut all = vec![
        per_row("log-signatures", rows.row),
        per_row("Lie elements", len),
        per_row("exponential chain", chain_len(shape)),
    ];
    all.extend(more);
    all
}

/// Signatures `exp(ℓ)` of the rows into `out` (rows of `out_st + shape.len()`, the scalar term 1).
pub(crate) fn log_sig_to_sig<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    rows: &LieRows<'_, T>,
    out_st: usize,
    out: &mut [T],
) -> Result<()> {
    let (len, out_row) = (shape.len(), shape.len() + out_st);
    if out.is_empty() {
        return Ok(());
    }
    let per_row = rows_of(shape, rows, [per_row("signatures", out_row)]);
    let mut call =
        RowCall::open::<T>(device, "log_sig_to_sig", shape, &per_row, &[&TENSOR_SERIES])?;
    let tables = OnDevice::new(&mut call, rows.expansion, rows.brackets, false)?;
    let chain = chain_len(shape);
    let unused = [(); 3].map(|_| call.buffer("unused", 4));
    for (g, out_group) in out.chunks_mut(call.group * out_row).enumerate() {
        let (n, first) = (out_group.len() / out_row, g * call.group);
        let coords = call.buffer("log-signatures", coords_len(&tables, n, rows.row));
        let lie = call.buffer("Lie elements", n * len);
        let chain_buf = call.buffer("exponential chain", n * chain);
        let out_buf = call.buffer("signatures", n * out_row);
        let mut steps =
            tables.lie_elements(&mut call, shape, rows, first..first + n, [&coords, &lie])?;
        let rows = SeriesRows {
            row: out_row,
            st: out_st,
            words: false,
        };
        let bufs = [
            &*lie,
            &*unused[0],
            &*chain_buf,
            &*unused[1],
            &*out_buf,
            &*unused[2],
        ];
        steps.extend(series_steps(&call, shape, n, SERIES_EXP, rows, bufs)?);
        submit_reading(
            &call.ctx,
            &steps,
            &mut [(&out_buf, dst(out_group))],
            &mut call.report,
        )?;
    }
    call.finish();
    Ok(())
}

/// `dF/dℓ` of `F(exp(ℓ))` into `out` (laid out like `rows.rows`, a scalar term's slot 0), from
/// `derivs`, rows of `g_st + shape.len()` (after a scalar term's derivative when `g_st`).
pub(crate) fn log_sig_to_sig_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    rows: &LieRows<'_, T>,
    derivs: &[T],
    g_st: usize,
    out: &mut [T],
) -> Result<()> {
    let (len, row, g_row) = (shape.len(), rows.row, shape.len() + g_st);
    if out.is_empty() {
        return Ok(());
    }
    let more = [
        per_row("signature derivatives", g_row),
        per_row("chain derivatives", 2 * len),
        per_row("Lie element derivatives", len),
        per_row("log-signature derivatives", row),
    ];
    let per_row = rows_of(shape, rows, more);
    let mut call = RowCall::open::<T>(
        device,
        "log_sig_to_sig_backprop",
        shape,
        &per_row,
        &[&TENSOR_SERIES],
    )?;
    let tables = OnDevice::new(&mut call, rows.expansion, rows.brackets, true)?;
    let chain = chain_len(shape);
    let positions = call.buffer("unused", 4);
    for (g, out_group) in out.chunks_mut(call.group * row).enumerate() {
        let n = out_group.len() / row;
        let first = g * call.group;
        let coords = call.buffer("log-signatures", coords_len(&tables, n, row));
        let lie = call.buffer("Lie elements", n * len);
        let mut steps =
            tables.lie_elements(&mut call, shape, rows, first..first + n, [&coords, &lie])?;
        let derivs_buf = call.buffer("signature derivatives", n * g_row);
        call.upload(&derivs_buf, &derivs[first * g_row..(first + n) * g_row]);
        let chain_buf = call.buffer("exponential chain", n * chain);
        let dp = call.buffer("chain derivatives", 2 * n * len);
        let dx = call.buffer("Lie element derivatives", n * len);
        let d = SeriesRows {
            row: g_row,
            st: g_st,
            words: false,
        };
        let bufs = [&*lie, &*derivs_buf, &*chain_buf, &*dp, &*dx, &*positions];
        steps.extend(series_backprop_steps(&call, shape, n, SERIES_EXP, d, bufs)?);
        // The gradient with respect to the rows: the expansion's transpose into `coords` (and the
        // transposed solve), or the expanded gradient itself.
        let result = match &tables.transpose {
            Some(t) => {
                steps.push(tables.expand(&call, CONTRACT, n * row, row, t, &coords, &dx)?);
                if let Some(b) = &tables.brackets {
                    steps.push(b.solve(&call.ctx, shape, n, row, LYNDON_TRANSPOSE, &coords)?);
                }
                &coords
            }
            None => &dx,
        };
        let st = rows.st;
        let mut values = vec![T::zero(); n * (row - st)];
        submit_reading(
            &call.ctx,
            &steps,
            &mut [(result, dst(&mut values))],
            &mut call.report,
        )?;
        for (o, v) in out_group
            .chunks_exact_mut(row)
            .zip(values.chunks_exact(row - st))
        {
            o[..st].fill(T::zero());
            o[st..].copy_from_slice(v);
        }
    }
    call.finish();
    Ok(())
}
