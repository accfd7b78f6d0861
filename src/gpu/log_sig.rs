//! `log_sig` on the GPU: the signature engine (`gpu::sig`) then `shaders/sig/tensor_series.wgsl`, per
//! group of paths, and the logarithm's gradient through the same kernel.
//!
//! The signatures stay on the GPU: `tensor_series` reads the rows the signature engine left in a device
//! buffer, and only the log-signatures come back, expanded or read at the Lyndon words (the word
//! index table is uploaded once per call, so only the compact rows are read back). Each step of the
//! logarithm's Horner nesting is one dispatch over every coefficient of every row.

use super::chunks::{bytes_of, chunk_paths, loop_cost, open, to_u32, PerPath, STORAGE};
use super::context::Context;
use super::kernels::Precision;
use super::program::{
    dst, set_last_report, submit, submit_reading, take, upload, Dispatch, GpuReport, Pooled,
};
use super::sig::plan::{Buf, Pass, SigParams, WG};
use super::sig::rows::{per_row, RowCall};
use super::sig::wgsl::{SigKey, LYNDON_SOLVE, SERIES_LOG, TENSOR_SERIES};
use super::sig::{run, Inputs};
use super::GpuDevice;
use crate::layout::{PathsShape, TensorShape};
use crate::{Error, Result, Scalar, SigOptions};
use std::sync::Arc;

/// Where the signatures whose logarithm is taken come from.
pub(crate) enum Signatures<'a, T> {
    /// Computed on the GPU by the signature engine from `paths` with `opts`' transforms, left on the
    /// device (never read back).
    Paths {
        paths: &'a [T],
        ps: PathsShape,
        opts: &'a SigOptions,
    },
    /// Given on the host: rows of the signature's levels, after a leading scalar term when `st`.
    Given { sigs: &'a [T], st: bool },
    /// Already on the device (rows of the levels, no scalar term), for the whole batch at once.
    Device(&'a wgpu::Buffer),
}

/// Log-signatures of a batch into `out`: with `words`, rows of `words.len()` (the logarithm at those
/// flat signature indices); without, rows of `shape.len() + out_st` (the whole logarithm, after a
/// leading 0 when `out_st`).
pub(crate) fn log_sig<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    source: Signatures<'_, T>,
    words: Option<&[usize]>,
    brackets: Option<&Brackets<T>>,
    out_st: bool,
    out: &mut [T],
) -> Result<()> {
    let out_row = match words {
        Some(w) => w.len(),
        None => shape.len() + out_st as usize,
    };
    if out_row == 0 || out.is_empty() {
        return Ok(());
    }
    if shape.degree == 0 {
        return Err(Error::NotPositive { what: "degree" });
    }
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    let batch = out.len() / out_row;
    let sig_len = shape.len();
    let row_in = match &source {
        Signatures::Paths { ps, .. } => ps.length * ps.dim,
        Signatures::Given { .. } | Signatures::Device(_) => 0,
    };
    let chain = chain_len(shape);
    let per_path = [
        ("paths", row_in),
        ("signatures", sig_len),
        ("logarithm scratch", chain),
        ("output", out_row),
    ]
    .map(|(what, n)| PerPath {
        what,
        elems: n as u64,
    });
    let mut chunk = chunk_paths(&ctx, precision, &per_path)?.min(batch);
    // The signature engine's plan, when the signatures are computed here.
    let mut report = GpuReport::new("log_sig");
    let forward = match &source {
        Signatures::Paths { ps, opts, .. } => {
            let plan = super::sig::plan_for(
                &ctx,
                Pass::Forward,
                shape,
                *ps,
                batch,
                opts,
                false,
                precision,
            )?;
            chunk = chunk.min(plan.group as usize);
            Some((plan, super::chunks::consts::<T>(shape, *ps, opts)))
        }
        Signatures::Given { .. } | Signatures::Device(_) => None,
    };
    if matches!(source, Signatures::Device(_)) && chunk < batch {
        return Err(Error::Device(format!(
            "adapter '{}': {batch} log-signatures do not fit its buffers at once; use the host API",
            ctx.name
        )));
    }
    let size = precision.size();
    let bytes = |row: usize| (row * chunk) as u64 * size;
    let positions: Vec<u32> = words
        .unwrap_or(&[])
        .iter()
        .map(|&w| to_u32("word index", w))
        .collect::<Result<_>>()?;
    let words_buf = take(
        &ctx,
        "words",
        std::mem::size_of_val(positions.as_slice()) as u64,
        STORAGE,
        &mut report,
    );
    upload(
        &ctx,
        &words_buf,
        bytemuck::cast_slice(&positions),
        &mut report,
    );
    let brackets = brackets.map(|b| b.upload(&ctx, &mut report)).transpose()?;
    let sigs_buf = take(&ctx, "signatures", bytes(sig_len), STORAGE, &mut report);
    let chain_buf = take(&ctx, "logarithm chain", bytes(chain), STORAGE, &mut report);
    let out_buf = take(&ctx, "output", bytes(out_row), STORAGE, &mut report);
    // The kernel's derivative inputs, which its forward modes do not read.
    let unused = [(); 2].map(|_| take(&ctx, "unused", 16, STORAGE, &mut report));
    let pipeline = super::sig::pipeline(&ctx, &TENSOR_SERIES, &row_key(shape, precision)?)?;
    let out_st = (words.is_none() && out_st) as usize;
    let entries = out_row - out_st;
    let mut given: Vec<T> = Vec::new();
    for (c, out_chunk) in out.chunks_mut(chunk * out_row).enumerate() {
        let n = out_chunk.len() / out_row;
        let first = c * chunk;
        let mut computed = None;
        if let (Some((plan, consts)), Signatures::Paths { paths, .. }) = (&forward, &source) {
            let rows = &paths[first * row_in..(first + n) * row_in];
            computed = Some(super::sig::sig_on_device(
                &ctx,
                plan,
                rows,
                consts,
                n,
                &mut report,
            )?);
        }
        if let Signatures::Given { sigs, st } = &source {
            // The levels of each row, without the scalar term: the layout the engine leaves.
            let row = sig_len + *st as usize;
            given.clear();
            for r in sigs[first * row..(first + n) * row].chunks_exact(row) {
                given.extend_from_slice(&r[*st as usize..]);
            }
            upload(&ctx, &sigs_buf, &bytes_of(precision, &given), &mut report);
        }
        let sigs: &wgpu::Buffer = match (&source, &computed) {
            (Signatures::Device(b), _) => b,
            (_, Some(b)) => b,
            _ => &sigs_buf,
        };
        // The chain P_{N−1} … P_1, one dispatch per step over every coefficient, then the output
        // rows over every entry.
        let step = |mode: u32, m: usize, per_row: usize| -> Result<Dispatch<'_>> {
            let total = to_u32("coefficients", n * per_row)?;
            let params = SigParams {
                mode,
                count: to_u32("step", m)?,
                total,
                length: to_u32("entries", entries)?,
                g_stride: to_u32("row", out_row)?,
                g_st: out_st as u32,
                offset: words.is_some() as u32,
                ..Default::default()
            };
            Ok(Dispatch {
                label: TENSOR_SERIES.name,
                pipeline: pipeline.clone(),
                params: bytemuck::bytes_of(&params).to_vec(),
                buffers: vec![
                    sigs, &unused[0], &chain_buf, &unused[1], &out_buf, &words_buf,
                ],
                workgroups: (total as u64).div_ceil(WG as u64).max(1),
                workgroup_size: WG,
            })
        };
        let degree = shape.degree;
        let mut steps = (1..degree)
            .rev()
            .map(|m| step(0, m, shape.offset(degree - m + 1)))
            .collect::<Result<Vec<_>>>()?;
        steps.push(step(2, 0, entries)?);
        if let Some(b) = &brackets {
            steps.push(b.solve(&ctx, shape, n, out_row, LYNDON_FORWARD, &out_buf)?);
        }
        submit(&ctx, &steps, Some((&*out_buf, dst(out_chunk))), &mut report)?;
    }
    set_last_report(report);
    Ok(())
}

/// The Lyndon bracket basis' triangle for [`log_sig`] and [`log_sig_backprop`], which solve with it
/// on the device (`shaders/sig/lyndon_solve.wgsl`): by rows (CSR), and the first word of each length.
pub(crate) struct Brackets<T> {
    pub row_start: Vec<u32>,
    pub cols: Vec<u32>,
    pub vals: Vec<T>,
    pub levels: Vec<u32>,
    /// Rows plus entries of the largest length's triangle: one invocation's substitution.
    pub widest: usize,
}

/// `lyndon_solve`'s modes: the solve, and its transpose.
pub(super) const LYNDON_FORWARD: u32 = 0;
pub(super) const LYNDON_TRANSPOSE: u32 = 1;

/// [`Brackets`] on the device.
pub(super) struct BracketBuffers {
    buffers: [Pooled; 4],
    precision: Precision,
}

impl<T: Scalar> Brackets<T> {
    /// Whether one substitution fits the adapter's loop budget (else the caller solves on the host).
    pub fn fit(&self, device: &GpuDevice) -> Result<bool> {
        let ctx = open(device, Precision::of::<T>())?;
        Ok(loop_cost::lp(self.widest as u64, 4) <= ctx.loop_budget)
    }

    pub(super) fn upload(
        &self,
        ctx: &Arc<Context>,
        report: &mut GpuReport,
    ) -> Result<BracketBuffers> {
        let precision = Precision::of::<T>();
        let mut buffer = |label: &str, bytes: &[u8]| {
            let b = take(ctx, label, bytes.len() as u64, STORAGE, report);
            upload(ctx, &b, bytes, report);
            b
        };
        Ok(BracketBuffers {
            buffers: [
                buffer("bracket rows", bytemuck::cast_slice(&self.row_start)),
                buffer("bracket columns", bytemuck::cast_slice(&self.cols)),
                buffer("bracket values", &bytes_of(precision, &self.vals)),
                buffer("word lengths", bytemuck::cast_slice(&self.levels)),
            ],
            precision,
        })
    }
}

impl BracketBuffers {
    /// The dispatch solving (`LYNDON_FORWARD`) or transposing (`LYNDON_TRANSPOSE`) `n` rows of
    /// `row` coordinates in `coords`, in place.
    pub(super) fn solve<'a>(
        &'a self,
        ctx: &Arc<Context>,
        shape: &TensorShape,
        n: usize,
        row: usize,
        mode: u32,
        coords: &'a wgpu::Buffer,
    ) -> Result<Dispatch<'a>> {
        let key = row_key(shape, self.precision)?;
        let total = to_u32("rows", n * shape.degree)?;
        let params = SigParams {
            mode,
            g_stride: to_u32("row", row)?,
            total,
            ..Default::default()
        };
        let [a, b, c, d] = &self.buffers;
        Ok(Dispatch {
            label: LYNDON_SOLVE.name,
            pipeline: super::sig::pipeline(ctx, &LYNDON_SOLVE, &key)?,
            params: bytemuck::bytes_of(&params).to_vec(),
            buffers: vec![a, b, c, d, coords],
            workgroups: (total as u64).div_ceil(WG as u64).max(1),
            workgroup_size: WG,
        })
    }
}

/// The key of the row kernels (the logarithm, the bracket solve) for signatures of `shape`.
fn row_key(shape: &TensorShape, precision: Precision) -> Result<SigKey> {
    Ok(SigKey {
        d: to_u32("dimension", shape.dim)?,
        degree: to_u32("degree", shape.degree)?,
        dim: to_u32("dimension", shape.dim)?,
        lead_lag: false,
        time_aug: false,
        precision,
        wg: WG,
        shared_state: false,
    })
}

/// Values per row of the logarithm's chain: `P_{N−1}, …, P_1`.
pub(super) fn chain_len(shape: &TensorShape) -> usize {
    (1..shape.degree)
        .map(|m| shape.offset(shape.degree - m + 1))
        .sum()
}

/// The buffers of `tensor_series.wgsl` per row (derivative rows of `row`), for the row
/// call's sizes.
fn backprop_rows(shape: &TensorShape, row: usize) -> [PerPath; 5] {
    let len = shape.len();
    [
        per_row("signatures", len),
        per_row("log-signature derivatives", row),
        per_row("logarithm chain", chain_len(shape)),
        per_row("chain derivatives", 2 * len),
        per_row("signature derivatives", len),
    ]
}

/// The derivatives of a log-signature form, as the reverse logarithm reads them on the device.
pub(crate) struct LogSigDerivs<'a, T> {
    /// Rows of `row` values; each row's derivatives start after `st` values (a scalar term's).
    pub rows: &'a [T],
    pub row: usize,
    pub st: usize,
    /// For the words forms: where in a row each signature coefficient's derivative is (`u32::MAX`:
    /// none, the derivative is 0); `None`: the rows are in the signature's layout.
    pub positions: Option<Vec<u32>>,
    /// For the bracket form: the rows are coordinates, turned into the words' derivatives by the
    /// transposed solve on the device first.
    pub brackets: Option<&'a Brackets<T>>,
}

/// The rows a tensor series writes (forward) or reads its derivatives from (reverse): `row` values
/// each, the series' coefficients after `st` scalar-term slots; with `words`, `row` coefficients
/// at the flat indices the `positions` buffer lists (forward) or each coefficient's derivative
/// where `positions` says (reverse).
#[derive(Clone, Copy)]
pub(super) struct SeriesRows {
    pub row: usize,
    pub st: usize,
    pub words: bool,
}

/// One `tensor_series` dispatch of mode `mode` at step `m`, `items` invocations per row.
#[allow(clippy::too_many_arguments)]
fn series_step<'a>(
    call: &RowCall,
    n: usize,
    series: u32,
    rows: SeriesRows,
    mode: u32,
    m: usize,
    items: usize,
    buffers: Vec<&'a wgpu::Buffer>,
) -> Result<Dispatch<'a>> {
    let params = SigParams {
        mode,
        count: to_u32("step", m)?,
        total: to_u32("coefficients", n * items)?,
        length: to_u32("entries", rows.row - rows.st)?,
        g_stride: to_u32("row", rows.row)?,
        g_st: to_u32("scalar term", rows.st)?,
        offset: rows.words as u32,
        series,
        ..Default::default()
    };
    call.per_item(&TENSOR_SERIES, params, buffers)
}

/// The dispatches of a tensor series (`SERIES_LOG`: the logarithm of signatures, `SERIES_EXP`: the
/// exponential of Lie elements) of `n` rows of levels `sigs` into `out` (rows as `rows` says): the
/// chain `P_{N−1} … P_1`, then the output entries, each a dispatch over every coefficient.
pub(super) fn series_steps<'a>(
    call: &RowCall,
    shape: &TensorShape,
    n: usize,
    series: u32,
    rows: SeriesRows,
    [sigs, derivs, chain, dp, out, positions]: [&'a wgpu::Buffer; 6],
) -> Result<Vec<Dispatch<'a>>> {
    let degree = shape.degree;
    let bufs = || vec![sigs, derivs, chain, dp, out, positions];
    let mut steps = Vec::with_capacity(degree);
    for m in (1..degree).rev() {
        let items = shape.offset(degree - m + 1);
        steps.push(series_step(call, n, series, rows, 0, m, items, bufs())?);
    }
    let entries = rows.row - rows.st;
    steps.push(series_step(call, n, series, rows, 2, 0, entries, bufs())?);
    Ok(steps)
}

/// The dispatches of a tensor series' reverse for `n` rows: `dx = dF/dx` from the levels `sigs`
/// and the derivatives `derivs` (rows as `rows` says): the chain `P_{N−1} … P_1`, then the reverse
/// steps, each a dispatch over every coefficient of its levels.
pub(super) fn series_backprop_steps<'a>(
    call: &RowCall,
    shape: &TensorShape,
    n: usize,
    series: u32,
    rows: SeriesRows,
    [sigs, derivs, chain, dp, dx, positions]: [&'a wgpu::Buffer; 6],
) -> Result<Vec<Dispatch<'a>>> {
    let degree = shape.degree;
    let bufs = || vec![sigs, derivs, chain, dp, dx, positions];
    let mut steps = Vec::with_capacity(2 * degree);
    for m in (1..degree).rev() {
        let items = shape.offset(degree - m + 1);
        steps.push(series_step(call, n, series, rows, 0, m, items, bufs())?);
    }
    for m in 0..degree {
        let levels = degree - m;
        let items = shape.offset(levels + 1) + shape.offset(levels);
        steps.push(series_step(call, n, series, rows, 1, m, items, bufs())?);
    }
    Ok(steps)
}

/// The derivatives of one group of rows on the device, ready for the reverse logarithm: uploaded, the
/// positions table beside them, and (bracket form) the transposed solve's dispatch.
struct DerivsOnDevice {
    derivs: Pooled,
    positions: Pooled,
    brackets: Option<BracketBuffers>,
}

impl DerivsOnDevice {
    fn new<T: Scalar>(
        call: &mut RowCall,
        d: &LogSigDerivs<'_, T>,
        first: usize,
        n: usize,
    ) -> Result<DerivsOnDevice> {
        let derivs = call.buffer("log-signature derivatives", n * d.row);
        call.upload(&derivs, &d.rows[first * d.row..(first + n) * d.row]);
        let table = d.positions.as_deref().unwrap_or(&[]);
        let positions = take(
            &call.ctx,
            "positions",
            std::mem::size_of_val(table) as u64,
            STORAGE,
            &mut call.report,
        );
        upload(
            &call.ctx,
            &positions,
            bytemuck::cast_slice(table),
            &mut call.report,
        );
        let brackets = d
            .brackets
            .map(|b| b.upload(&call.ctx, &mut call.report))
            .transpose()?;
        Ok(DerivsOnDevice {
            derivs,
            positions,
            brackets,
        })
    }

    /// The reverse logarithm's dispatches for these rows, after the transposed solve if any.
    fn steps<'a, T>(
        &'a self,
        call: &RowCall,
        shape: &TensorShape,
        n: usize,
        d: &LogSigDerivs<'_, T>,
        [sigs, chain, dp, dx]: [&'a wgpu::Buffer; 4],
    ) -> Result<Vec<Dispatch<'a>>> {
        let mut steps = Vec::new();
        if let Some(b) = &self.brackets {
            steps.push(b.solve(&call.ctx, shape, n, d.row, LYNDON_TRANSPOSE, &self.derivs)?);
        }
        let bufs = [sigs, &self.derivs, chain, dp, dx, &self.positions];
        let rows = SeriesRows {
            row: d.row,
            st: d.st,
            words: d.positions.is_some(),
        };
        steps.extend(series_backprop_steps(
            call, shape, n, SERIES_LOG, rows, bufs,
        )?);
        Ok(steps)
    }
}

/// `dF/dS` of `F(log S)` for signatures on the host: `sigs` has rows of `st + shape.len()`; `out`
/// gets rows like `sigs` (the scalar term's derivative 0).
pub(crate) fn sig_to_log_sig_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    sigs: &[T],
    st: usize,
    derivs: &LogSigDerivs<'_, T>,
    out: &mut [T],
) -> Result<()> {
    let (len, row) = (shape.len(), shape.len() + st);
    if len == 0 || out.is_empty() {
        out.fill(T::zero());
        return Ok(());
    }
    let mut call = RowCall::open::<T>(
        device,
        "sig_to_log_sig_backprop",
        shape,
        &backprop_rows(shape, derivs.row),
        &[&TENSOR_SERIES],
    )?;
    let chain = chain_len(shape);
    for (g, out_group) in out.chunks_mut(call.group * row).enumerate() {
        let n = out_group.len() / row;
        let first = g * call.group;
        let levels: Vec<T> = sigs[first * row..(first + n) * row]
            .chunks_exact(row)
            .flat_map(|r| r[st..].iter().copied())
            .collect();
        let sigs_buf = call.buffer("signatures", n * len);
        call.upload(&sigs_buf, &levels);
        let on_device = DerivsOnDevice::new(&mut call, derivs, first, n)?;
        let chain_buf = call.buffer("logarithm chain", n * chain);
        let dp = call.buffer("chain derivatives", 2 * n * len);
        let dx = call.buffer("signature derivatives", n * len);
        let bufs = [&*sigs_buf, &*chain_buf, &*dp, &*dx];
        let steps = on_device.steps(&call, shape, n, derivs, bufs)?;
        let mut values = vec![T::zero(); n * len];
        submit_reading(
            &call.ctx,
            &steps,
            &mut [(&dx, dst(&mut values))],
            &mut call.report,
        )?;
        let dx = values;
        for (o, r) in out_group.chunks_exact_mut(row).zip(dx.chunks_exact(len)) {
            o[..st].fill(T::zero());
            o[st..].copy_from_slice(r);
        }
    }
    call.finish();
    Ok(())
}

/// The paths of [`log_sig_backprop`]: on the host, or already on the device with their signatures.
pub(crate) enum LogSigPaths<'a, T> {
    Host(&'a [T]),
    Device {
        paths: &'a wgpu::Buffer,
        sigs: &'a wgpu::Buffer,
    },
}

/// Path gradients of `F(log_sig(paths))` into `out` (laid out like the paths), from the derivatives
/// of the log-signatures: per group of paths the signatures on the device (or those given there),
/// the reverse logarithm and the signature engine's reverse sweep, with only the path gradients read
/// back.
pub(crate) fn log_sig_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    paths: LogSigPaths<'_, T>,
    ps: PathsShape,
    opts: &SigOptions,
    derivs: &LogSigDerivs<'_, T>,
    out: &mut [T],
) -> Result<()> {
    let (len, row_in) = (shape.len(), ps.length * ps.dim);
    if row_in == 0 || out.is_empty() {
        return Ok(());
    }
    let batch = out.len() / row_in;
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    let plan = |pass| super::sig::plan_for(&ctx, pass, shape, ps, batch, opts, false, precision);
    let (forward, backward) = (plan(Pass::Forward)?, plan(Pass::Backward)?);
    let mut call = RowCall::open::<T>(
        device,
        "log_sig_backprop",
        shape,
        &backprop_rows(shape, derivs.row),
        &[&TENSOR_SERIES],
    )?;
    let group = call
        .group
        .min(forward.group as usize)
        .min(backward.group as usize);
    if matches!(paths, LogSigPaths::Device { .. }) && group < batch {
        return Err(Error::Device(format!(
            "adapter '{}': {batch} paths do not fit its buffers at once; use the host API",
            ctx.name
        )));
    }
    let consts = super::sig::consts::<T>(shape, ps, opts);
    let chain = chain_len(shape);
    for (g, out_group) in out.chunks_mut(group * row_in).enumerate() {
        let n = out_group.len() / row_in;
        let first = g * group;
        let uploaded;
        let computed;
        let (paths_buf, sigs_buf): (&wgpu::Buffer, &wgpu::Buffer) = match &paths {
            LogSigPaths::Device { paths, sigs } => (paths, sigs),
            LogSigPaths::Host(host) => {
                uploaded = call.buffer("paths", n * row_in);
                call.upload(&uploaded, &host[first * row_in..(first + n) * row_in]);
                let inputs = Inputs {
                    paths: &[],
                    consts: &consts,
                    sigs: &[],
                    derivs: &[],
                    resident: &[(Buf::Paths, &uploaded)],
                };
                let mut bufs = run(&ctx, &forward, n as u64, inputs, None, &mut call.report)?;
                computed = bufs.remove(&Buf::Out).expect("the forward pass writes Out");
                (&uploaded, &computed)
            }
        };
        let on_device = DerivsOnDevice::new(&mut call, derivs, first, n)?;
        let chain_buf = call.buffer("logarithm chain", n * chain);
        let dp = call.buffer("chain derivatives", 2 * n * len);
        let dx = call.buffer("signature derivatives", n * len);
        let steps = on_device.steps(&call, shape, n, derivs, [sigs_buf, &chain_buf, &dp, &dx])?;
        submit_reading(&call.ctx, &steps, &mut [], &mut call.report)?;
        let inputs = Inputs {
            paths: &[],
            consts: &consts,
            sigs: &[],
            derivs: &[],
            resident: &[
                (Buf::Paths, paths_buf),
                (Buf::Sigs, sigs_buf),
                (Buf::Derivs, &dx),
            ],
        };
        run(
            &ctx,
            &backward,
            n as u64,
            inputs,
            Some((Buf::Grads, out_group)),
            &mut call.report,
        )?;
    }
    call.finish();
    Ok(())
}
