//! `log_sig` on the GPU: the signature engine (`gpu::sig`) then `tensor_log.wgsl`, per group of paths.
//!
//! The signatures stay on the GPU: `tensor_log` reads the rows the signature engine left in a device
//! buffer, and only the log-signatures come back, expanded or read at the Lyndon words (the word
//! index table is uploaded once per call, so only the compact rows are read back). `tensor_log`'s
//! dispatches are windows sized by the adapter's loop budget (by units of its product chain, see the
//! shader).

use super::chunks::{
    bytes_of, chunk_paths, loop_cost, open, read_into, to_u32, PerPath, STAGING, STORAGE,
};
use super::context::Step;
use super::kernels::{Params, Precision, TENSOR_LOG, WORKGROUP_SIZE};
use super::program::{set_last_report, GpuReport};
use super::sig::plan::Pass;
use super::GpuDevice;
use crate::cpu::PathsShape;
use crate::layout::TensorShape;
use crate::{Error, Result, Scalar, SigOptions};

/// Slots of `tensor_log`'s chain per path: `P_t` for `t = N−1 … 0` holds levels `1..=N−t`.
pub(crate) fn chain_len(shape: &TensorShape) -> usize {
    (1..=shape.degree).map(|l| shape.offset(l + 1)).sum()
}

/// `consts[m] = (−1)^{m+1}/m` for `m = 1..=degree` (index 0 unused), as `LogScratch` computes them.
pub(crate) fn log_consts<T: Scalar>(degree: usize) -> Vec<T> {
    (0..=degree)
        .map(|m| {
            let sign = if m % 2 == 1 { 1.0 } else { -1.0 };
            T::from_f64(sign / (m.max(1) as f64))
        })
        .collect()
}

/// Loop iterations of `tensor_log.wgsl` (the model of `sig.rs`'s `loop_cost`, generous where the
/// shader calls its small helpers): `(fixed per dispatch, each unit in the shader's order)`.
pub(crate) fn unit_costs(shape: &TensorShape, out_row: usize) -> (u64, Vec<u64>) {
    use loop_cost::{level_offset as lo, lp};
    let (d, n) = (shape.dim as u64, shape.degree as u64);
    let pow = |k: u64| d.saturating_pow(k as u32);
    let chain_start = lp(n, 1 + lo(n + 1));
    let fixed = lo(n + 1) + lp(n, 1 + lp(n, 1 + lp(n, 1)));
    let mut units = Vec::new();
    for t in (0..n).rev() {
        for k in 1..=n - t {
            for j in 0..k {
                units.push(if j == 0 {
                    chain_start + 3 * lo(n + 1) + lp(pow(k), 0)
                } else {
                    2 * chain_start + 6 * lo(n + 1) + lp(pow(j), lp(pow(k - j), 0))
                });
            }
        }
    }
    units.push(chain_start + lp(out_row as u64, 0));
    (fixed, units)
}

/// The windows of units, one per `tensor_log` dispatch, each within the adapter's loop budget.
pub(crate) fn unit_windows(
    name: &str,
    budget: u64,
    (fixed, units): (u64, Vec<u64>),
) -> Result<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    let (mut begin, mut cost) = (0usize, fixed);
    for (u, &c) in units.iter().enumerate() {
        if fixed.saturating_add(c) > budget {
            return Err(Error::Device(format!(
                "adapter '{name}' runs at most {budget} loop iterations per invocation and \
                 dispatch; one step of this log-signature needs {}; use the CPU or a smaller \
                 signature",
                fixed.saturating_add(c)
            )));
        }
        if cost + c > budget {
            out.push((to_u32("units", begin)?, to_u32("units", u)?));
            (begin, cost) = (u, fixed);
        }
        cost += c;
    }
    out.push((to_u32("units", begin)?, to_u32("units", units.len())?));
    Ok(out)
}

/// Where the signatures `tensor_log.wgsl` takes the logarithm of come from.
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
    let log_windows = unit_windows(&ctx.name, ctx.loop_budget, unit_costs(shape, out_row))?;
    let size = precision.size();
    let bytes = |row: usize| (row * chunk) as u64 * size;

    let log_consts = log_consts::<T>(shape.degree);
    let log_consts_buf = ctx.buffer("log consts", log_consts.len() as u64 * size, STORAGE);
    ctx.write(&log_consts_buf, &bytes_of(precision, &log_consts));
    let word_bytes: Vec<u8> = words
        .unwrap_or(&[])
        .iter()
        .map(|&w| to_u32("word index", w))
        .collect::<Result<Vec<u32>>>()?
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect();
    let words_buf = ctx.buffer("words", word_bytes.len() as u64, STORAGE);
    ctx.write(&words_buf, &word_bytes);
    let sigs_buf = ctx.buffer("signatures", bytes(sig_len), STORAGE);
    let chain_buf = ctx.buffer("logarithm scratch", bytes(chain), STORAGE);
    let out_buf = ctx.buffer("output", bytes(out_row), STORAGE);
    let staging = ctx.buffer("staging", bytes(out_row), STAGING);
    let log_params = Params {
        length: match words {
            Some(w) => to_u32("words", w.len())?,
            None => 0,
        },
        aug_dim: to_u32("dimension", shape.dim)?,
        degree: to_u32("degree", shape.degree)?,
        scalar_term: (words.is_none() && out_st) as u32,
        ..Params::default()
    };
    let mut given: Vec<T> = Vec::new();
    for (c, out_chunk) in out.chunks_mut(chunk * out_row).enumerate() {
        let n = out_chunk.len() / out_row;
        let first = c * chunk;
        let n_paths = to_u32("chunk", n)?;
        let with = |p: Params, w: &[(u32, u32)]| -> Vec<Params> {
            w.iter()
                .map(|&(t_begin, t_end)| Params {
                    n_paths,
                    t_begin,
                    t_end,
                    ..p
                })
                .collect()
        };
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
            let bytes = bytes_of(precision, &given);
            report.bytes_uploaded += bytes.len() as u64;
            ctx.write(&sigs_buf, &bytes);
        }
        let sigs: &wgpu::Buffer = match (&source, &computed) {
            (Signatures::Device(b), _) => b,
            (_, Some(b)) => b,
            _ => &sigs_buf,
        };
        let steps = [Step {
            kernel: &TENSOR_LOG,
            buffers: vec![sigs, &log_consts_buf, &words_buf, &out_buf, &chain_buf],
            params: with(log_params, &log_windows),
        }];
        let groups = to_u32("workgroups", n.div_ceil(WORKGROUP_SIZE as usize))?;
        let result = ctx.run_steps(
            precision,
            &steps,
            groups,
            &out_buf,
            &staging,
            out_chunk.len() as u64 * size,
        )?;
        report.submissions += 1;
        report.bytes_downloaded += result.len() as u64;
        read_into(precision, &result, out_chunk);
    }
    set_last_report(report);
    Ok(())
}
