//! `sig_coef` on the GPU (`shaders/sig_coef.wgsl`): one invocation per (path, word), the word's
//! prefixes' coefficients in registers. The host uploads the transformed points once per group of
//! paths that fits the adapter's buffers, and the words once per call; only the coefficients come
//! back.

use super::chunks::{bytes_of, chunk_paths, open, to_u32, PerPath, STORAGE};
use super::kernels::{Precision, SigCoefParams, SIG_COEF, WORKGROUP_SIZE};
use super::program::{dst, set_last_report, submit, take, upload, Dispatch, GpuReport};
use super::GpuDevice;
use crate::{Error, Result, Scalar};

/// The longest word the kernel keeps in registers (`MAX_K` in the shader).
pub(crate) const MAX_WORD: usize = 32;

/// The coefficients of `words` (with `prefixes`, every non-empty prefix's) for each of the `n_paths`
/// paths of `points` (rows of `len × dim` transformed points) into `out`, one row per path.
pub(crate) fn sig_coef<T: Scalar>(
    device: &GpuDevice,
    points: &[T],
    (n_paths, len, dim): (usize, usize, usize),
    words: &[Vec<usize>],
    prefixes: bool,
    out: &mut [T],
) -> Result<()> {
    let out_row = out.len() / n_paths.max(1);
    if n_paths == 0 || out_row == 0 {
        return Ok(());
    }
    let longest = words.iter().map(Vec::len).max().unwrap_or(0);
    if longest > MAX_WORD {
        return Err(Error::Device(format!(
            "words of more than {MAX_WORD} letters run on the CPU (the longest here has {longest})"
        )));
    }
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    // Loop iterations of the longest word's invocation, against the adapter's budget (lavapipe).
    let k = longest as u64;
    let iterations = (len as u64).saturating_mul(2 * k + k * (k + 1) / 2 + 1) + 2 * k;
    if iterations > ctx.loop_budget {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation; these words need \
             {iterations}; use the CPU",
            ctx.name, ctx.loop_budget
        )));
    }
    let (mut letters, mut starts, mut outs) = (Vec::new(), vec![0u32], Vec::new());
    let mut at = 0;
    for word in words {
        for &l in word {
            letters.push(to_u32("letter", l)?);
        }
        starts.push(to_u32("letters", letters.len())?);
        outs.push(to_u32("coefficients", at)?);
        at += if prefixes { word.len().max(1) } else { 1 };
    }
    let mut report = GpuReport::new("sig_coef");
    let words_buffer = |label, data: &[u32], report: &mut GpuReport| {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = take(&ctx, label, bytes.len() as u64, STORAGE, report);
        upload(&ctx, &buffer, bytes, report);
        buffer
    };
    let letters = words_buffer("letters", &letters, &mut report);
    let starts = words_buffer("starts", &starts, &mut report);
    let outs = words_buffer("outs", &outs, &mut report);
    let per_path = [
        PerPath {
            what: "paths",
            elems: (len * dim) as u64,
        },
        PerPath {
            what: "coefficients",
            elems: out_row as u64,
        },
    ];
    let chunk = chunk_paths(&ctx, precision, &per_path)?.min(n_paths);
    let pipeline = ctx.pipeline(&SIG_COEF, precision)?;
    let size = precision.size();
    for first in (0..n_paths).step_by(chunk.max(1)) {
        let n = chunk.min(n_paths - first);
        let rows = &points[first * len * dim..(first + n) * len * dim];
        let paths = take(
            &ctx,
            "paths",
            (rows.len() as u64 * size).max(4),
            STORAGE,
            &mut report,
        );
        upload(&ctx, &paths, &bytes_of(precision, rows), &mut report);
        let coefficients = take(
            &ctx,
            "coefficients",
            (n * out_row) as u64 * size,
            STORAGE,
            &mut report,
        );
        let params = SigCoefParams {
            n_paths: to_u32("paths", n)?,
            len: to_u32("points", len)?,
            dim: to_u32("channels", dim)?,
            n_words: to_u32("words", words.len())?,
            out_row: to_u32("coefficients", out_row)?,
            prefixes: prefixes as u32,
            _pad: [0; 2],
        };
        let dispatch = Dispatch {
            label: SIG_COEF.name,
            pipeline: pipeline.clone(),
            params: bytemuck::bytes_of(&params).to_vec(),
            buffers: vec![&paths, &letters, &starts, &outs, &coefficients],
            workgroups: (n as u64 * words.len() as u64).div_ceil(WORKGROUP_SIZE as u64),
            workgroup_size: WORKGROUP_SIZE,
        };
        let out_rows = &mut out[first * out_row..(first + n) * out_row];
        submit(
            &ctx,
            &[dispatch],
            Some((&coefficients, dst(out_rows))),
            &mut report,
        )?;
    }
    set_last_report(report);
    Ok(())
}
