//! `sig_coef` and its gradient on the GPU (`shaders/sig_coef.wgsl`, `shaders/sig_coef_backprop.wgsl`):
//! one invocation per (path, word), the word's prefixes' coefficients in registers. The host uploads
//! the transformed points once per group of paths that fits the adapter's buffers, and the words once
//! per call; only the coefficients (or the points' gradients) come back. Where the batch is too
//! small for that to fill a GPU, `sig_coef` cuts the paths into time chunks (see [`sig_coef`]).
//!
//! The gradient walks each word's coefficients to the path's end and back again by the inverse
//! segments, so it stores nothing per segment but the increments' gradients, which a last
//! dispatch (one invocation per point and channel) gathers into the points' gradients without
//! atomics.
//!
//! Both walks cross the segments in windows, one dispatch each, sized by the adapter's loop budget
//! (see [`Context::loop_budget`]); each (path, word) keeps its coefficients and adjoints in a
//! `state` buffer between windows. A long path is thus several dispatches, never a refusal.

use super::chunks::{bytes_of, chunk_paths, loop_cost, open, to_u32, PerPath, STORAGE};
use super::context::Context;
use super::kernels::{Precision, SigCoefParams, SIG_COEF, SIG_COEF_BACKPROP, WORKGROUP_SIZE};
use super::program::{dst, set_last_report, submit, take, upload, Dispatch, GpuReport, Pooled};
use super::GpuDevice;
use crate::{Error, Result, Scalar};
use std::sync::Arc;

/// The longest word the kernel keeps in registers (`MAX_K` in the shader).
pub(crate) const MAX_WORD: usize = 32;

/// The words as the kernels read them: the letters end to end, where each word starts, and where
/// its coefficients (or derivatives) start in a row.
struct Words {
    letters: Pooled,
    starts: Pooled,
    outs: Pooled,
    count: u32,
    n_letters: u32,
    longest: u64,
}

impl Words {
    /// Checks the words against the kernels' register arrays and uploads them.
    fn upload(
        ctx: &Arc<Context>,
        words: &[Vec<usize>],
        prefixes: bool,
        report: &mut GpuReport,
    ) -> Result<Words> {
        let longest = words.iter().map(Vec::len).max().unwrap_or(0);
        if longest > MAX_WORD {
            return Err(Error::Device(format!(
                "words of more than {MAX_WORD} letters run on the CPU (the longest here has \
                 {longest})"
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
        let mut buffer = |label, data: &[u32]| {
            let bytes: &[u8] = bytemuck::cast_slice(data);
            let buffer = take(ctx, label, bytes.len() as u64, STORAGE, report);
            upload(ctx, &buffer, bytes, report);
            buffer
        };
        Ok(Words {
            count: to_u32("words", words.len())?,
            n_letters: to_u32("letters", letters.len())?,
            letters: buffer("letters", &letters),
            starts: buffer("starts", &starts),
            outs: buffer("outs", &outs),
            longest: longest as u64,
        })
    }

    /// The segment windows `[lo, hi)` of a walk over `segments` whose invocation for the longest
    /// word costs `cost(k) = (fixed, per segment)` loop iterations, ascending (one empty window when
    /// there are no segments, so that the output is still written).
    fn windows(
        &self,
        ctx: &Context,
        segments: usize,
        cost: fn(u64) -> (u64, u64),
    ) -> Result<Vec<(u32, u32)>> {
        let (fixed, per_segment) = cost(self.longest);
        let window = ctx.loop_budget.saturating_sub(fixed) / per_segment;
        if window == 0 {
            return Err(Error::Device(format!(
                "adapter '{}' runs at most {} loop iterations per invocation; one segment of a \
                 {}-letter word needs {}; use the CPU",
                ctx.name,
                ctx.loop_budget,
                self.longest,
                fixed + per_segment
            )));
        }
        let window = usize::try_from(window)
            .unwrap_or(usize::MAX)
            .min(segments.max(1));
        (0..segments.max(1))
            .step_by(window)
            .map(|lo| {
                Ok((
                    to_u32("segments", lo)?,
                    to_u32("segments", (lo + window).min(segments))?,
                ))
            })
            .collect()
    }
}

/// Horner's rule over a word's `k` prefixes (`sig_coef.wgsl`'s inner loops), in loop iterations.
fn horner(k: u64) -> u64 {
    loop_cost::ENTRY + k * (1 + loop_cost::ENTRY) + k * (k + 1) / 2
}

/// Loop iterations of a `sig_coef.wgsl` invocation for a word of `k` letters: fixed, and per
/// segment (its increments, then Horner's rule).
fn coef_iterations(k: u64) -> (u64, u64) {
    let lp = loop_cost::lp;
    (lp(k, 0) + lp(k + 1, 0), 1 + lp(k, 0) + horner(k))
}

/// Loop iterations of a mode-0 invocation of `sig_coef_backprop.wgsl` for a word of `k` letters:
/// fixed, and per segment.
fn adjoint_iterations(k: u64) -> (u64, u64) {
    let (e, lp) = (loop_cost::ENTRY, loop_cost::lp);
    // For each m, for each j > m: the products without one factor (j − m − 1 trips) and the
    // increments' gradients (j − m trips).
    let spans = e + k * e + e * k * (k + 1) + k * (k + 1) * (k + 2) / 3;
    let fixed = lp(k, 0) + 2 * lp(k + 1, 0);
    (
        fixed,
        1 + 2 * lp(k, 0) + horner(k) + 2 * lp(k + 1, 0) + spans,
    )
}

/// A buffer of `elems` values of `precision` (at least one, for the binding).
fn values(
    ctx: &Arc<Context>,
    label: &str,
    elems: usize,
    precision: Precision,
    report: &mut GpuReport,
) -> Pooled {
    take(
        ctx,
        label,
        (elems.max(1) as u64) * precision.size(),
        STORAGE,
        report,
    )
}

/// One dispatch of `kernel` with an invocation per item.
fn dispatch<'a>(
    ctx: &Context,
    kernel: &'static super::kernels::Kernel,
    params: SigCoefParams,
    buffers: Vec<&'a wgpu::Buffer>,
    items: u64,
    precision: Precision,
) -> Result<Dispatch<'a>> {
    Ok(Dispatch {
        label: kernel.name,
        pipeline: ctx.pipeline(kernel, precision)?,
        params: bytemuck::bytes_of(&params).to_vec(),
        buffers,
        workgroups: items.div_ceil(WORKGROUP_SIZE as u64),
        workgroup_size: WORKGROUP_SIZE,
    })
}

/// The uniform block common to every dispatch over `n` paths.
fn params(
    n: usize,
    (len, dim): (usize, usize),
    words: &Words,
    out_row: usize,
    prefixes: bool,
) -> Result<SigCoefParams> {
    Ok(SigCoefParams {
        n_paths: to_u32("paths", n)?,
        len: to_u32("points", len)?,
        dim: to_u32("channels", dim)?,
        n_words: words.count,
        out_row: to_u32("coefficients", out_row)?,
        prefixes: prefixes as u32,
        n_letters: words.n_letters,
        ..Default::default()
    })
}

/// `sig_coef.wgsl`'s dispatches over `windows`: into `coefficients` (mode 0) or `state` (mode 1).
fn coef_steps<'a>(
    ctx: &Context,
    base: SigCoefParams,
    windows: &[(u32, u32)],
    buffers: [&'a wgpu::Buffer; 6],
    precision: Precision,
) -> Result<Vec<Dispatch<'a>>> {
    let items = base.n_paths as u64 * base.n_words as u64;
    windows
        .iter()
        .map(|&(seg_lo, seg_hi)| {
            let params = SigCoefParams {
                seg_lo,
                seg_hi,
                ..base
            };
            dispatch(ctx, &SIG_COEF, params, buffers.to_vec(), items, precision)
        })
        .collect()
}

/// Per (path, word), the scalars `state` keeps (`STATE` in the shaders).
const STATE: usize = 2 * (MAX_WORD + 1);

/// Invocations `sig_coef` aims for: enough to fill a large GPU (tens of thousands in flight).
const TARGET_ITEMS: usize = 1 << 16;
/// The fewest segments in a time chunk of `sig_coef`: shorter chunks would spend more on the
/// chunks' matrices and their product than they gain.
const MIN_CHUNK: usize = 32;

/// Time chunks per path for `sig_coef`: enough (path, chunk, suffix) invocations to reach
/// [`TARGET_ITEMS`], each chunk of at least [`MIN_CHUNK`] segments; 1 where the batch's (path,
/// word) invocations alone reach it.
fn time_chunks(n_paths: usize, segments: usize, words: &[Vec<usize>]) -> usize {
    let words_items = n_paths.saturating_mul(words.len()).max(1);
    if words_items >= TARGET_ITEMS {
        return 1;
    }
    let suffixes: usize = words.iter().map(Vec::len).sum::<usize>().max(1);
    let want = TARGET_ITEMS.div_ceil(n_paths.saturating_mul(suffixes).max(1));
    want.min(segments / MIN_CHUNK).max(1)
}

/// The coefficients of `words` (with `prefixes`, every non-empty prefix's) for each of the `n_paths`
/// paths of `points` (rows of `len × dim` transformed points) into `out`, one row per path.
///
/// Where the batch alone is too small a grid for a GPU, each path is cut into time chunks joined by
/// Chen's identity: over a chunk, a word `w` of `k` letters has the upper-triangular matrix
/// `M[i][j]` = the coefficient of its letters `i..j`, whose row `i` is the prefixes' coefficients
/// of the suffix `w[i..]`. So the chunks, as paths of their own, and the words' suffixes, with
/// prefixes, are one `sig_coef.wgsl` call with an invocation per (path, chunk, suffix) — about
/// `k/3` times the work of the word alone — and the host multiplies each word's row
/// `(1, 0, …, 0)` through its chunks' matrices (`k²/2` a chunk).
pub(crate) fn sig_coef<T: Scalar>(
    device: &GpuDevice,
    points: &[T],
    (n_paths, len, dim): (usize, usize, usize),
    words: &[Vec<usize>],
    prefixes: bool,
    out: &mut [T],
) -> Result<()> {
    let segments = len.saturating_sub(1);
    let chunks = time_chunks(n_paths, segments, words);
    if chunks == 1 || out.is_empty() {
        return coefficients(device, points, (n_paths, len, dim), words, prefixes, out);
    }
    // Chunks of `step` segments (the last padded with copies of the end point: zero increments),
    // as paths of `step + 1` points.
    let step = segments.div_ceil(chunks);
    let chunks = segments.div_ceil(step);
    let chunk_len = step + 1;
    let mut chunk_points = Vec::with_capacity(n_paths * chunks * chunk_len * dim);
    for path in points.chunks_exact(len * dim) {
        for t in 0..chunks {
            for j in 0..chunk_len {
                let at = (t * step + j).min(len - 1) * dim;
                chunk_points.extend_from_slice(&path[at..at + dim]);
            }
        }
    }
    let suffixes: Vec<Vec<usize>> = words
        .iter()
        .flat_map(|w| (0..w.len()).map(move |i| w[i..].to_vec()))
        .collect();
    // A row of the matrices per (path, chunk): each word's rows end to end, row i of word w its
    // entries j = i + 1 ..= k.
    let row: usize = words.iter().map(|w| w.len() * (w.len() + 1) / 2).sum();
    let mut matrices = vec![T::zero(); n_paths * chunks * row];
    let dims = (n_paths * chunks, chunk_len, dim);
    coefficients(device, &chunk_points, dims, &suffixes, true, &mut matrices)?;
    let out_row = out.len() / n_paths;
    let longest = words.iter().map(Vec::len).max().unwrap_or(0);
    let mut v = vec![T::zero(); longest + 1];
    for (out, path) in out
        .chunks_exact_mut(out_row)
        .zip(matrices.chunks_exact(chunks * row))
    {
        let (mut at, mut from) = (0, 0);
        for w in words {
            let k = w.len();
            v.fill(T::zero());
            v[0] = T::one();
            for m in path.chunks_exact(row) {
                let m = &m[from..from + k * (k + 1) / 2];
                // Descending j, so that v[i < j] are still the values before this chunk.
                for j in (1..=k).rev() {
                    let mut acc = v[j];
                    let mut row_at = 0;
                    for (i, &vi) in v[..j].iter().enumerate() {
                        acc += vi * m[row_at + (j - i - 1)];
                        row_at += k - i;
                    }
                    v[j] = acc;
                }
            }
            if prefixes {
                let n = k.max(1);
                out[at..at + n].copy_from_slice(if k == 0 { &v[..1] } else { &v[1..=k] });
                at += n;
            } else {
                out[at] = v[k];
                at += 1;
            }
            from += k * (k + 1) / 2;
        }
    }
    Ok(())
}

/// [`sig_coef`] with one invocation per (path, word), each crossing the whole path.
fn coefficients<T: Scalar>(
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
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    let mut report = GpuReport::new("sig_coef");
    let words_on = Words::upload(&ctx, words, prefixes, &mut report)?;
    let windows = words_on.windows(&ctx, len.saturating_sub(1), coef_iterations)?;
    let per_path = [
        ("paths", len * dim),
        ("coefficients", out_row),
        ("state", words.len() * STATE),
    ]
    .map(|(what, elems)| PerPath {
        what,
        elems: elems as u64,
    });
    let chunk = chunk_paths(&ctx, precision, &per_path)?.min(n_paths);
    for first in (0..n_paths).step_by(chunk.max(1)) {
        let n = chunk.min(n_paths - first);
        let rows = &points[first * len * dim..(first + n) * len * dim];
        let paths = values(&ctx, "paths", rows.len(), precision, &mut report);
        upload(&ctx, &paths, &bytes_of(precision, rows), &mut report);
        let coefficients = values(&ctx, "coefficients", n * out_row, precision, &mut report);
        let state = values(
            &ctx,
            "state",
            n * words.len() * STATE,
            precision,
            &mut report,
        );
        let base = params(n, (len, dim), &words_on, out_row, prefixes)?;
        let w = &words_on;
        let buffers = [
            &*paths,
            &w.letters,
            &w.starts,
            &w.outs,
            &coefficients,
            &state,
        ];
        let steps = coef_steps(&ctx, base, &windows, buffers, precision)?;
        let out_rows = &mut out[first * out_row..(first + n) * out_row];
        submit(
            &ctx,
            &steps,
            Some((&coefficients, dst(out_rows))),
            &mut report,
        )?;
    }
    set_last_report(report);
    Ok(())
}

/// The gradient of `Σ derivs · sig_coef` with respect to the points (rows of `len × dim`
/// transformed points) into `out`, laid out like `points`; `derivs` has a row per path of one
/// derivative per word (or, with `prefixes`, per non-empty prefix).
pub(crate) fn sig_coef_backprop<T: Scalar>(
    device: &GpuDevice,
    points: &[T],
    (n_paths, len, dim): (usize, usize, usize),
    words: &[Vec<usize>],
    prefixes: bool,
    derivs: &[T],
    out: &mut [T],
) -> Result<()> {
    let row = len * dim;
    if n_paths == 0 || row == 0 {
        return Ok(());
    }
    let d_row = derivs.len() / n_paths;
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    let mut report = GpuReport::new("sig_coef_backprop");
    let words_on = Words::upload(&ctx, words, prefixes, &mut report)?;
    // The gather runs over every letter of every word.
    let gather = loop_cost::ENTRY
        + words
            .iter()
            .map(|w| 1 + 2 * loop_cost::lp(w.len() as u64, 0))
            .sum::<u64>();
    if gather > ctx.loop_budget {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation; gathering {} words' \
             gradients needs {gather}; use the CPU",
            ctx.name,
            ctx.loop_budget,
            words.len()
        )));
    }
    let segments = len.saturating_sub(1);
    let forward = words_on.windows(&ctx, segments, coef_iterations)?;
    let backward = words_on.windows(&ctx, segments, adjoint_iterations)?;
    let n_letters = words_on.n_letters as usize;
    let per_path = [
        ("paths", row),
        ("derivatives", d_row),
        ("increments' gradients", segments * n_letters),
        ("gradients", row),
        ("state", words.len() * STATE),
    ]
    .map(|(what, elems)| PerPath {
        what,
        elems: elems as u64,
    });
    let chunk = chunk_paths(&ctx, precision, &per_path)?.min(n_paths);
    for first in (0..n_paths).step_by(chunk.max(1)) {
        let n = chunk.min(n_paths - first);
        let mut input = |label, data: &[T]| {
            let buffer = values(&ctx, label, data.len(), precision, &mut report);
            upload(&ctx, &buffer, &bytes_of(precision, data), &mut report);
            buffer
        };
        let paths = input("paths", &points[first * row..(first + n) * row]);
        let d = input("derivatives", &derivs[first * d_row..(first + n) * d_row]);
        let mut scratch = |label, elems| values(&ctx, label, elems, precision, &mut report);
        let dd = scratch("increments' gradients", n * segments * n_letters);
        let grads = scratch("gradients", n * row);
        let state = scratch("state", n * words.len() * STATE);
        let base = params(n, (len, dim), &words_on, d_row, prefixes)?;
        let w = &words_on;
        // The coefficients at the path's end, then the adjoint windows last first, then the
        // gather.
        let keep = SigCoefParams { mode: 1, ..base };
        let coef_buffers = [&*paths, &w.letters, &w.starts, &w.outs, &grads, &state];
        let mut steps = coef_steps(&ctx, keep, &forward, coef_buffers, precision)?;
        let buffers = || {
            vec![
                &*paths, &w.letters, &w.starts, &w.outs, &d, &dd, &grads, &state,
            ]
        };
        let adjoint_items = (n * words.len()) as u64;
        for &(seg_lo, seg_hi) in backward.iter().rev() {
            let params = SigCoefParams {
                mode: 0,
                seg_lo,
                seg_hi,
                ..base
            };
            let kernel = &SIG_COEF_BACKPROP;
            steps.push(dispatch(
                &ctx,
                kernel,
                params,
                buffers(),
                adjoint_items,
                precision,
            )?);
        }
        steps.push(dispatch(
            &ctx,
            &SIG_COEF_BACKPROP,
            keep,
            buffers(),
            (n * row) as u64,
            precision,
        )?);
        let out_rows = &mut out[first * row..(first + n) * row];
        submit(&ctx, &steps, Some((&grads, dst(out_rows))), &mut report)?;
    }
    set_last_report(report);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small batches are cut in time until the (path, chunk, suffix) invocations fill a large GPU
    /// or the chunks reach their shortest; large batches are not cut.
    #[test]
    fn small_batches_are_cut_in_time() {
        let words: Vec<Vec<usize>> = (0..10).map(|w| vec![0; 1 + w % 6]).collect();
        let suffixes: usize = words.iter().map(Vec::len).sum();
        let items = |n, segments| n * time_chunks(n, segments, &words) * suffixes;
        // One long path: the target is met.
        assert!(items(1, 100_000) >= TARGET_ITEMS);
        // (128, 256, 8): as many chunks as the shortest chunk allows.
        assert_eq!(time_chunks(128, 255, &words), 255 / MIN_CHUNK);
        // Short paths, and batches whose words alone fill the GPU, stay whole.
        assert_eq!(time_chunks(4, MIN_CHUNK + 1, &words), 1);
        assert_eq!(time_chunks(TARGET_ITEMS / 10, 10_000, &words), 1);
    }
}
