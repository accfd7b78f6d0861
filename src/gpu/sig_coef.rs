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
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// The buffers of a call per path: what each holds and its elements.
fn buffers<const N: usize>(list: [(&'static str, usize); N]) -> [PerPath; N] {
    list.map(|(what, elems)| PerPath {
        what,
        elems: elems as u64,
    })
}

/// Per (path, word), the scalars `state` keeps (`STATE` in the shaders).
const STATE: usize = 2 * (MAX_WORD + 1);

/// Invocations `sig_coef` aims for: enough to fill a large GPU (tens of thousands in flight).
const TARGET_ITEMS: usize = 1 << 16;
static TARGET: AtomicUsize = AtomicUsize::new(TARGET_ITEMS);

/// Aim `sig_coef` and its gradient at `items` invocations (1: never cut paths in time). For tests of
/// the whole-path walks and their windows.
#[doc(hidden)]
pub fn set_time_chunk_target(items: usize) {
    TARGET.store(items.max(1), Ordering::Relaxed);
}
/// The fewest segments in a time chunk of `sig_coef`: shorter chunks would spend more on the
/// chunks' matrices and their product than they gain.
const MIN_CHUNK: usize = 32;

/// Time chunks per path for `sig_coef`: enough (path, chunk, suffix) invocations to reach
/// [`TARGET_ITEMS`], each chunk of at least [`MIN_CHUNK`] segments; 1 where the batch's (path,
/// word) invocations alone reach it.
fn time_chunks(n_paths: usize, segments: usize, words: &[Vec<usize>]) -> usize {
    let target = TARGET.load(Ordering::Relaxed);
    if n_paths == 0 || n_paths.saturating_mul(words.len()) >= target {
        return 1;
    }
    let suffixes: usize = words.iter().map(Vec::len).sum::<usize>().max(1);
    let want = target.div_ceil(n_paths.saturating_mul(suffixes).max(1));
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
    let Some(chunks) = Chunks::new(points, (n_paths, len, dim), words) else {
        return coefficients(device, points, (n_paths, len, dim), words, prefixes, out);
    };
    let matrices = chunks.matrices(device)?;
    let out_row = out.len() / n_paths;
    let mut v = Vec::new();
    for (out, path) in out
        .chunks_exact_mut(out_row)
        .zip(matrices.chunks_exact(chunks.per_path()))
    {
        let mut at = 0;
        for (w, word) in words.iter().enumerate() {
            let k = word.len();
            chunks.left(path, words, w, &mut v);
            if prefixes {
                let n = k.max(1);
                out[at..at + n].copy_from_slice(if k == 0 { &v[..1] } else { &v[1..=k] });
                at += n;
            } else {
                out[at] = v[k];
                at += 1;
            }
        }
    }
    Ok(())
}

/// The paths of a call cut into time chunks, as paths of their own, and the words' suffixes.
struct Chunks<T> {
    /// Chunks per path, segments per chunk.
    count: usize,
    step: usize,
    /// The chunks' points: `step + 1` per chunk, the last chunk padded with copies of the path's
    /// end point (zero increments).
    points: Vec<T>,
    dims: (usize, usize, usize),
    suffixes: Vec<Vec<usize>>,
    /// Per chunk, each word's matrix rows end to end (row `i` of a word of `k` letters: its
    /// entries `j = i + 1 ..= k`), and where each word's start.
    row: usize,
    starts: Vec<usize>,
}

impl<T: Scalar> Chunks<T> {
    /// `None` where the paths are left whole ([`time_chunks`]).
    fn new(
        points: &[T],
        (n_paths, len, dim): (usize, usize, usize),
        words: &[Vec<usize>],
    ) -> Option<Self> {
        let segments = len.saturating_sub(1);
        let count = time_chunks(n_paths, segments, words);
        if count == 1 {
            return None;
        }
        let step = segments.div_ceil(count);
        let count = segments.div_ceil(step);
        let mut chunk_points = Vec::with_capacity(n_paths * count * (step + 1) * dim);
        for path in points.chunks_exact(len * dim) {
            for t in 0..count {
                for j in 0..=step {
                    let at = (t * step + j).min(len - 1) * dim;
                    chunk_points.extend_from_slice(&path[at..at + dim]);
                }
            }
        }
        let suffixes = words
            .iter()
            .flat_map(|w| (0..w.len()).map(move |i| w[i..].to_vec()))
            .collect();
        let mut starts = vec![0];
        for w in words {
            starts.push(starts.last().unwrap() + w.len() * (w.len() + 1) / 2);
        }
        Some(Chunks {
            count,
            step,
            points: chunk_points,
            dims: (n_paths * count, step + 1, dim),
            suffixes,
            row: *starts.last().unwrap(),
            starts,
        })
    }

    fn per_path(&self) -> usize {
        self.count * self.row
    }

    /// Every chunk's matrices: the suffixes' prefixes' coefficients over each chunk.
    fn matrices(&self, device: &GpuDevice) -> Result<Vec<T>> {
        let mut matrices = vec![T::zero(); self.dims.0 * self.row];
        coefficients(
            device,
            &self.points,
            self.dims,
            &self.suffixes,
            true,
            &mut matrices,
        )?;
        Ok(matrices)
    }

    /// Word `w`'s entry `(i, j)` (`i < j`, `k` letters) in a chunk's matrices.
    fn at(&self, w: usize, k: usize, i: usize, j: usize) -> usize {
        // Rows 0..i hold k + (k − 1) + … + (k − i + 1) entries.
        self.starts[w] + i * k - i * i.saturating_sub(1) / 2 + (j - i - 1)
    }

    /// `v ← v·M` for word `w` (`v`: `k + 1` values) and a chunk's matrices `m`.
    fn cross(&self, m: &[T], w: usize, v: &mut [T]) {
        let k = v.len() - 1;
        // Descending j, so that v[i < j] are still the values before this chunk.
        for j in (1..=k).rev() {
            let mut acc = v[j];
            for i in 0..j {
                acc += v[i] * m[self.at(w, k, i, j)];
            }
            v[j] = acc;
        }
    }

    /// `v` = the row `(1, 0, …, 0)` multiplied through word `w`'s matrices of a path's chunks
    /// (`path`: the path's matrices): the word's prefixes' coefficients at the path's end.
    fn left(&self, path: &[T], words: &[Vec<usize>], w: usize, v: &mut Vec<T>) {
        v.clear();
        v.resize(words[w].len() + 1, T::zero());
        v[0] = T::one();
        for m in path.chunks_exact(self.row) {
            self.cross(m, w, v);
        }
    }

    /// The derivatives of `F = row · a` (the row of [`Chunks::left`], `a` the word's derivatives)
    /// with respect to word `w`'s entries of a path's matrices (`path`), into `d_path`: entry
    /// `(i, j)` of chunk `t` gets `L_t[i]·R_{t+1}[j]`, `L_t` the row through the chunks before `t`,
    /// `R_{t+1}` the column `a` through those after it. `scratch` holds the rows `L_t`.
    fn backprop(&self, path: &[T], w: usize, a: &mut [T], scratch: &mut Vec<T>, d_path: &mut [T]) {
        let n = a.len();
        let k = n - 1;
        scratch.clear();
        scratch.resize(n, T::zero());
        scratch[0] = T::one();
        for (t, m) in path.chunks_exact(self.row).enumerate().take(self.count - 1) {
            scratch.extend_from_within(t * n..(t + 1) * n);
            self.cross(m, w, &mut scratch[(t + 1) * n..]);
        }
        let chunks = path
            .chunks_exact(self.row)
            .zip(d_path.chunks_exact_mut(self.row));
        for (t, (m, dm)) in chunks.enumerate().rev() {
            let left = &scratch[t * n..(t + 1) * n];
            for i in 0..k {
                for j in i + 1..=k {
                    dm[self.at(w, k, i, j)] = left[i] * a[j];
                }
            }
            // a ← M·a, ascending i so that a[j > i] are still the values after this chunk.
            for i in 0..k {
                let mut acc = a[i];
                for j in i + 1..=k {
                    acc += m[self.at(w, k, i, j)] * a[j];
                }
                a[i] = acc;
            }
        }
    }
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
    let per_path = buffers([
        ("paths", len * dim),
        ("coefficients", out_row),
        ("state", words.len() * STATE),
    ]);
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
///
/// Where [`sig_coef`] cuts the paths in time, so does its gradient: the host takes the derivatives
/// through the product of the chunks' matrices to each chunk's entries, [`gradients`] takes those
/// to the chunks' points, and the host adds them up at the points they are copies of.
pub(crate) fn sig_coef_backprop<T: Scalar>(
    device: &GpuDevice,
    points: &[T],
    (n_paths, len, dim): (usize, usize, usize),
    words: &[Vec<usize>],
    prefixes: bool,
    derivs: &[T],
    out: &mut [T],
) -> Result<()> {
    let dims = (n_paths, len, dim);
    let Some(chunks) = Chunks::new(points, dims, words) else {
        return gradients(device, points, dims, words, prefixes, derivs, out);
    };
    let matrices = chunks.matrices(device)?;
    let per_path = chunks.per_path();
    let d_row = derivs.len() / n_paths;
    let mut d_matrices = vec![T::zero(); matrices.len()];
    let (mut a, mut scratch) = (Vec::new(), Vec::new());
    let rows = matrices
        .chunks_exact(per_path)
        .zip(derivs.chunks_exact(d_row));
    for ((path, d), d_path) in rows.zip(d_matrices.chunks_exact_mut(per_path)) {
        let mut at = 0;
        for (w, word) in words.iter().enumerate() {
            let k = word.len();
            a.clear();
            a.resize(k + 1, T::zero());
            if prefixes {
                if k > 0 {
                    a[1..].copy_from_slice(&d[at..at + k]);
                }
                at += k.max(1);
            } else {
                a[k] = d[at];
                at += 1;
            }
            if k > 0 {
                chunks.backprop(path, w, &mut a, &mut scratch, d_path);
            }
        }
    }
    let mut chunk_grads = vec![T::zero(); chunks.points.len()];
    let suffixes = &chunks.suffixes;
    let done = gradients(
        device,
        &chunks.points,
        chunks.dims,
        suffixes,
        true,
        &d_matrices,
        &mut chunk_grads,
    );
    if let Err(Error::Device(_)) = done {
        // The suffixes' letters may exceed what one gather runs on lavapipe: the whole paths then.
        return gradients(device, points, dims, words, prefixes, derivs, out);
    }
    done?;
    out.fill(T::zero());
    let chunk_len = chunks.step + 1;
    for (path, grads) in out
        .chunks_exact_mut(len * dim)
        .zip(chunk_grads.chunks_exact(chunks.count * chunk_len * dim))
    {
        for (t, chunk) in grads.chunks_exact(chunk_len * dim).enumerate() {
            for (j, g) in chunk.chunks_exact(dim).enumerate() {
                let at = (t * chunks.step + j).min(len - 1) * dim;
                for (o, &g) in path[at..at + dim].iter_mut().zip(g) {
                    *o += g;
                }
            }
        }
    }
    Ok(())
}

/// [`sig_coef_backprop`] with one adjoint walk per (path, word) over the whole path.
fn gradients<T: Scalar>(
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
    let per_path = buffers([
        ("paths", row),
        ("derivatives", d_row),
        ("increments' gradients", segments * n_letters),
        ("gradients", row),
        ("state", words.len() * STATE),
    ]);
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
