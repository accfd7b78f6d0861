//! Signatures of the intervals of a growing stream of points, from a cache of dyadic blocks.
//!
//! Increment `k` of the stream joins points `k` and `k + 1` (indices counted from the first point
//! ever pushed). A block of level `ℓ` is the signature of increments `[j·2^ℓ, (j+1)·2^ℓ)`; blocks
//! from level [`BASE`] up are kept, each made once when its last increment arrives (from its points
//! at level `BASE`, as the product of its two halves above). An interval's signature is the product,
//! left to right, of the largest blocks that tile it, with single Horner steps at the two ends:
//! `O(log n)` tensor products, each of positive factors, never the inverse of a prefix. The kernels
//! are reached through the dtype tables of `crate::api`, so a dependent that uses the stream does
//! not compile them again.

use crate::algebra::HornerScratch;
use crate::api::ops;
use crate::layout::TensorShape;
use crate::{Error, Result, Scalar};
use crate::{LogSigMethod, SigOptions};
use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewD};
use std::collections::VecDeque;

/// The smallest cached block: `2^BASE` increments. Shorter runs are stepped from the points, which
/// costs about what a product costs and keeps the cache at a `2^-BASE` fraction of the points.
const BASE: usize = 3;

/// Intervals from which [`SigStream::sig_batch`] uses every core.
const PARALLEL_INTERVALS: usize = 64;

/// One level of the cache: consecutive blocks, `None` where a block reaches before the first point
/// held (it can never be part of an interval held, so it is not computed).
struct Level<T> {
    /// The index (`j`) of `blocks[0]`.
    first: usize,
    blocks: VecDeque<Option<Vec<T>>>,
}

impl<T> Level<T> {
    fn get(&self, j: usize) -> Option<&[T]> {
        let i = j.checked_sub(self.first)?;
        self.blocks.get(i)?.as_deref()
    }
}

/// A stream of points of `dim` channels: push points at the back, drop them at the front, and
/// take the signature (truncated at `degree`, without the scalar term) of the path through any run
/// of the points held.
///
/// ```
/// use roughsig::SigStream;
/// let mut stream = SigStream::<f64>::new(2, 3).unwrap();
/// for t in 0..100 {
///     let t = t as f64 / 10.0;
///     stream.push(&[t.sin(), t.cos()]).unwrap();
/// }
/// stream.pop_front(10);
/// let s = stream.sig(5, 60).unwrap(); // the path through points 5..=60 of those held
/// assert_eq!(s.len(), 2 + 4 + 8);
/// ```
pub struct SigStream<T: Scalar> {
    shape: TensorShape,
    /// The points held, rows of `dim`, after `skip` values already dropped.
    points: Vec<T>,
    skip: usize,
    /// The stream index of the first point held.
    start: usize,
    /// Level `BASE + i` of the cache.
    levels: Vec<Level<T>>,
    scratch: HornerScratch<T>,
}

impl<T: Scalar> SigStream<T> {
    /// An empty stream of points of `dim` channels, for signatures truncated at `degree`.
    pub fn new(dim: usize, degree: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::NotPositive { what: "dimension" });
        }
        if degree == 0 {
            return Err(Error::NotPositive { what: "degree" });
        }
        let shape = TensorShape::new(dim, degree)?;
        Ok(SigStream {
            scratch: HornerScratch::new(&shape),
            shape,
            points: Vec::new(),
            skip: 0,
            start: 0,
            levels: Vec::new(),
        })
    }

    /// The number of points held.
    pub fn len(&self) -> usize {
        (self.points.len() - self.skip) / self.shape.dim
    }

    /// Whether no point is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The length of each signature: `dim + dim² + … + dim^degree`.
    pub fn sig_length(&self) -> usize {
        self.shape.len()
    }

    /// Append one point (`dim` finite values).
    pub fn push(&mut self, point: &[T]) -> Result<()> {
        let d = self.shape.dim;
        if point.len() != d {
            return Err(Error::invalid(format!(
                "point: expected {d} channels, got {}",
                point.len()
            )));
        }
        if let Some(c) = point.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid(format!(
                "point {}: channel {c} is not finite",
                self.start + self.len()
            )));
        }
        self.points.extend_from_slice(point);
        let points = self.start + self.len();
        if points >= 2 {
            // The new point closes increment `points - 2`.
            self.close_blocks(points - 2);
        }
        Ok(())
    }

    /// Append the rows of `points` (`(n, dim)`), in order. On an error the points before the bad
    /// row have been appended.
    pub fn extend(&mut self, points: ArrayView2<'_, T>) -> Result<()> {
        for row in points.rows() {
            match row.as_slice() {
                Some(p) => self.push(p)?,
                None => self.push(&row.to_vec())?,
            }
        }
        Ok(())
    }

    /// Drop the first `n` points held (all of them if fewer are held), and the blocks that reach
    /// before the new first point.
    pub fn pop_front(&mut self, n: usize) {
        let n = n.min(self.len());
        self.start += n;
        self.skip += n * self.shape.dim;
        if self.skip * 2 >= self.points.len() {
            self.points.drain(..self.skip);
            self.skip = 0;
        }
        for (i, level) in self.levels.iter_mut().enumerate() {
            let size = 1 << (BASE + i);
            while level.blocks.front().is_some() && level.first * size < self.start {
                level.blocks.pop_front();
                level.first += 1;
            }
        }
    }

    /// The signature of the path through points `a..=b` of those held (`a ≤ b`; a single point's
    /// signature is zero at every level).
    pub fn sig(&self, a: usize, b: usize) -> Result<Array1<T>> {
        self.check_interval(a, b)?;
        let mut out = vec![T::zero(); self.shape.len()];
        self.interval(a, b, &mut out, &mut self.scratch());
        Ok(Array1::from(out))
    }

    /// The signatures of many intervals `(a, b)` of the points held, one row each; the intervals
    /// are shared out over all cores when there are enough of them.
    pub fn sig_batch(&self, intervals: &[(usize, usize)]) -> Result<Array2<T>> {
        for &(a, b) in intervals {
            self.check_interval(a, b)?;
        }
        let n = self.shape.len();
        let mut out = Array2::zeros((intervals.len(), n));
        // An interval costs O(log n) products: a few are not worth waking the threads for.
        let threads = if intervals.len() < PARALLEL_INTERVALS {
            1
        } else {
            crate::threads(-1)?
        };
        let rows = out.as_slice_mut().expect("fresh arrays are contiguous");
        crate::cpu::par_rows(
            threads,
            rows,
            n,
            || self.scratch(),
            |scratch, i, row| {
                let (a, b) = intervals[i];
                self.interval(a, b, row, scratch);
            },
        );
        Ok(out)
    }

    /// The log-signature in the form `method` of the path through points `a..=b` held (the
    /// tensor logarithm of [`SigStream::sig`]).
    pub fn log_sig(&self, a: usize, b: usize, method: LogSigMethod) -> Result<Array1<T>> {
        let sig = self.sig(a, b)?;
        let log = self.to_log_sig(sig.into_dyn(), method)?;
        Ok(log
            .into_dimensionality()
            .expect("one signature, one log-signature"))
    }

    /// The log-signatures of many intervals `(a, b)` of the points held, one row each.
    pub fn log_sig_batch(
        &self,
        intervals: &[(usize, usize)],
        method: LogSigMethod,
    ) -> Result<Array2<T>> {
        let sigs = self.sig_batch(intervals)?;
        let logs = self.to_log_sig(sigs.into_dyn(), method)?;
        Ok(logs
            .into_dimensionality()
            .expect("rows of signatures, rows of log-signatures"))
    }

    fn to_log_sig(&self, sigs: ArrayD<T>, method: LogSigMethod) -> Result<ArrayD<T>> {
        let cpu = SigOptions::default().device(crate::Device::Cpu).n_jobs(1);
        crate::sig_to_log_sig(sigs.view(), self.shape.dim, self.shape.degree, method, &cpu)
    }

    /// An error unless `a..=b` are points held.
    fn check_interval(&self, a: usize, b: usize) -> Result<()> {
        if a > b || b >= self.len() {
            return Err(Error::invalid(format!(
                "interval ({a}, {b}) is not within the {} points held",
                self.len()
            )));
        }
        Ok(())
    }

    /// One thread's buffers for [`SigStream::interval`].
    fn scratch(&self) -> (HornerScratch<T>, Vec<T>) {
        (
            HornerScratch::new(&self.shape),
            vec![T::zero(); self.shape.len()],
        )
    }

    /// The signature of points `a..=b` held (checked by [`SigStream::check_interval`]) into `out`
    /// (levels, zeroed first).
    fn interval(
        &self,
        a: usize,
        b: usize,
        out: &mut [T],
        (horner, tmp): &mut (HornerScratch<T>, Vec<T>),
    ) {
        out.fill(T::zero());
        let shape = &self.shape;
        let (mut pos, end) = (self.start + a, self.start + b);
        let mut z = vec![T::zero(); shape.dim];
        while pos < end {
            match self.largest_block(pos, end) {
                Some((size, block)) => {
                    (ops::<T>().tensor_mul)(shape, out, block, tmp);
                    out.copy_from_slice(tmp);
                    pos += size;
                }
                None => {
                    self.increment(pos, &mut z);
                    (ops::<T>().mul_exp)(shape, out, &z, horner);
                    pos += 1;
                }
            }
        }
    }

    /// The largest cached block that starts at increment `pos` and ends by `end`, with its length.
    fn largest_block(&self, pos: usize, end: usize) -> Option<(usize, &[T])> {
        self.levels.iter().enumerate().rev().find_map(|(i, level)| {
            let size = 1usize << (BASE + i);
            if !pos.is_multiple_of(size) || pos + size > end {
                return None;
            }
            level.get(pos / size).map(|block| (size, block))
        })
    }

    /// Increment `k` of the stream (its two points must be held) into `z`.
    fn increment(&self, k: usize, z: &mut [T]) {
        let d = self.shape.dim;
        let at = self.skip + (k - self.start) * d;
        let (p, q) = (&self.points[at..at + d], &self.points[at + d..at + 2 * d]);
        for ((z, &p), &q) in z.iter_mut().zip(p).zip(q) {
            *z = q - p;
        }
    }

    /// Make the blocks whose last increment is `k`, level by level.
    fn close_blocks(&mut self, k: usize) {
        let mut level = BASE;
        while (k + 1).is_multiple_of(1 << level) {
            let j = ((k + 1) >> level) - 1;
            let block = self.make_block(level, j);
            let i = level - BASE;
            if self.levels.len() == i {
                self.levels.push(Level {
                    first: j,
                    blocks: VecDeque::new(),
                });
            }
            let cache = &mut self.levels[i];
            if cache.blocks.is_empty() {
                cache.first = j;
            }
            cache.blocks.push_back(block);
            level += 1;
        }
    }

    /// Block `j` of `level`, or `None` where it reaches before the first point held.
    fn make_block(&mut self, level: usize, j: usize) -> Option<Vec<T>> {
        let size = 1usize << level;
        if j * size < self.start {
            return None;
        }
        let shape = self.shape.clone();
        let mut out = vec![T::zero(); shape.len()];
        if level == BASE {
            let mut z = vec![T::zero(); shape.dim];
            for k in j * size..(j + 1) * size {
                self.increment(k, &mut z);
                (ops::<T>().mul_exp)(&shape, &mut out, &z, &mut self.scratch);
            }
        } else {
            let below = &self.levels[level - 1 - BASE];
            (ops::<T>().tensor_mul)(&shape, below.get(2 * j)?, below.get(2 * j + 1)?, &mut out);
        }
        Some(out)
    }
}

/// Signatures of sliding windows over a stream of points: windows of `window` points ending at
/// points `window − 1`, `window − 1 + stride`, …, each emitted as its last point arrives. Points no
/// later window needs are dropped, so memory is bounded by the window.
///
/// ```
/// use roughsig::SigWindowStream;
/// let mut windows = SigWindowStream::<f64>::new(1, 2, 3, 2).unwrap();
/// let path = roughsig::ndarray::array![[0.0], [1.0], [3.0], [6.0], [10.0]];
/// let sigs = windows.extend(path.view()).unwrap();
/// // Windows of points 0..=2 and 2..=4: increments 3 and 7, so level 2 is z²/2.
/// assert_eq!(sigs, roughsig::ndarray::array![[3.0, 4.5], [7.0, 24.5]]);
/// ```
pub struct SigWindowStream<T: Scalar> {
    stream: SigStream<T>,
    window: usize,
    stride: usize,
    /// Points pushed so far.
    pushed: usize,
    /// The index of the next window's last point.
    next_end: usize,
}

impl<T: Scalar> SigWindowStream<T> {
    /// Windows of `window` points (at least 1) every `stride` points (at least 1) of a stream of
    /// `dim` channels, signatures truncated at `degree`.
    pub fn new(dim: usize, degree: usize, window: usize, stride: usize) -> Result<Self> {
        if window == 0 {
            return Err(Error::NotPositive { what: "window" });
        }
        if stride == 0 {
            return Err(Error::NotPositive { what: "stride" });
        }
        Ok(SigWindowStream {
            stream: SigStream::new(dim, degree)?,
            window,
            stride,
            pushed: 0,
            next_end: window - 1,
        })
    }

    /// The length of each signature.
    pub fn sig_length(&self) -> usize {
        self.stream.sig_length()
    }

    /// Append one point; the signature of the window it completes, if any.
    pub fn push(&mut self, point: &[T]) -> Result<Option<Array1<T>>> {
        self.stream.push(point)?;
        self.pushed += 1;
        if self.pushed - 1 != self.next_end {
            return Ok(None);
        }
        let held = self.stream.len();
        let sig = self.stream.sig(held - self.window, held - 1)?;
        self.next_end += self.stride;
        // The next window starts at `next_end + 1 − window`: what comes before it goes.
        let first_held = self.pushed - held;
        let next_start = self.next_end + 1 - self.window;
        self.stream.pop_front(next_start.saturating_sub(first_held));
        Ok(Some(sig))
    }

    /// Append the rows of `points` (`(n, dim)`); the signatures of the windows they complete, one
    /// row each, in order.
    pub fn extend(&mut self, points: ArrayView2<'_, T>) -> Result<Array2<T>> {
        let mut rows = Vec::new();
        let mut count = 0;
        for row in points.rows() {
            let sig = match row.as_slice() {
                Some(p) => self.push(p)?,
                None => self.push(&row.to_vec())?,
            };
            if let Some(sig) = sig {
                rows.extend(sig);
                count += 1;
            }
        }
        Ok(Array2::from_shape_vec((count, self.sig_length()), rows)
            .expect("each window adds one row"))
    }
}

/// [`SigStream`] giving the log-signatures of its intervals in one form `method` (the tensor
/// logarithm of the interval's signature from the dyadic cache).
///
/// ```
/// use roughsig::{LogSigMethod, LogSigStream};
/// let mut stream = LogSigStream::<f64>::new(2, 2, LogSigMethod::Lyndon).unwrap();
/// stream.extend(roughsig::ndarray::array![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]].view()).unwrap();
/// // Levels 1 and 2 in the Lyndon basis: the increment, then the Lévy area [0, 1].
/// assert_eq!(stream.log_sig(0, 2).unwrap().to_vec(), vec![1.0, 1.0, 0.5]);
/// ```
pub struct LogSigStream<T: Scalar> {
    stream: SigStream<T>,
    method: LogSigMethod,
}

impl<T: Scalar> LogSigStream<T> {
    /// As [`SigStream::new`], with log-signatures in the form `method`.
    pub fn new(dim: usize, degree: usize, method: LogSigMethod) -> Result<Self> {
        Ok(LogSigStream {
            stream: SigStream::new(dim, degree)?,
            method,
        })
    }

    /// The signature stream underneath (for signatures of the same intervals).
    pub fn stream(&self) -> &SigStream<T> {
        &self.stream
    }

    /// The number of points held.
    pub fn len(&self) -> usize {
        self.stream.len()
    }

    /// Whether no point is held.
    pub fn is_empty(&self) -> bool {
        self.stream.is_empty()
    }

    /// Append one point (see [`SigStream::push`]).
    pub fn push(&mut self, point: &[T]) -> Result<()> {
        self.stream.push(point)
    }

    /// Append the rows of `points` (see [`SigStream::extend`]).
    pub fn extend(&mut self, points: ArrayView2<'_, T>) -> Result<()> {
        self.stream.extend(points)
    }

    /// Drop the first `n` points held (see [`SigStream::pop_front`]).
    pub fn pop_front(&mut self, n: usize) {
        self.stream.pop_front(n)
    }

    /// The log-signature of the path through points `a..=b` held.
    pub fn log_sig(&self, a: usize, b: usize) -> Result<Array1<T>> {
        self.stream.log_sig(a, b, self.method)
    }

    /// The log-signatures of many intervals `(a, b)` of the points held, one row each.
    pub fn log_sig_batch(&self, intervals: &[(usize, usize)]) -> Result<Array2<T>> {
        self.stream.log_sig_batch(intervals, self.method)
    }
}

/// [`SigWindowStream`] emitting log-signatures in the form `method`.
pub struct LogSigWindowStream<T: Scalar> {
    windows: SigWindowStream<T>,
    method: LogSigMethod,
}

impl<T: Scalar> LogSigWindowStream<T> {
    /// As [`SigWindowStream::new`], with log-signatures in the form `method`.
    pub fn new(
        dim: usize,
        degree: usize,
        window: usize,
        stride: usize,
        method: LogSigMethod,
    ) -> Result<Self> {
        Ok(LogSigWindowStream {
            windows: SigWindowStream::new(dim, degree, window, stride)?,
            method,
        })
    }

    /// Append one point; the log-signature of the window it completes, if any.
    pub fn push(&mut self, point: &[T]) -> Result<Option<Array1<T>>> {
        let Some(sig) = self.windows.push(point)? else {
            return Ok(None);
        };
        let log = self
            .windows
            .stream
            .to_log_sig(sig.into_dyn(), self.method)?;
        Ok(Some(
            log.into_dimensionality()
                .expect("one signature, one log-signature"),
        ))
    }

    /// Append the rows of `points`; the log-signatures of the windows they complete, one row each.
    pub fn extend(&mut self, points: ArrayView2<'_, T>) -> Result<Array2<T>> {
        let sigs = self.windows.extend(points)?;
        let logs = self
            .windows
            .stream
            .to_log_sig(sigs.into_dyn(), self.method)?;
        Ok(logs
            .into_dimensionality()
            .expect("rows of signatures, rows of log-signatures"))
    }
}

/// The body of [`crate::sig_windows`] (see [`crate::api`]).
pub(crate) fn sig_windows<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    degree: usize,
    window: usize,
    stride: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    if window == 0 {
        return Err(Error::NotPositive { what: "window" });
    }
    if stride == 0 {
        return Err(Error::NotPositive { what: "stride" });
    }
    let p = crate::batch::paths("path", paths.view())?;
    let length = paths.shape()[paths.ndim() - 2];
    let windows = if length >= window {
        (length - window) / stride + 1
    } else {
        0
    };
    // A window's transform is a slice of the whole path's: lead-lag point `2j` is point `j`, and
    // with time steps of `end_time / (W' − 1)`, `W'` points per transformed window.
    let t = options.transform;
    let step = if t.lead_lag { 2 } else { 1 };
    let (w, s) = (step * (window - 1) + 1, step * stride);
    let whole = if length > 0 {
        step * (length - 1) + 1
    } else {
        0
    };
    let end_time = if whole > 1 && w > 1 {
        t.end_time * (whole - 1) as f64 / (w - 1) as f64
    } else {
        t.end_time
    };
    let opts = SigOptions {
        transform: crate::PathTransform { end_time, ..t },
        ..options.clone()
    };
    opts.transform.validate::<T>()?;
    let points = crate::transform::transform_path(paths.view(), &opts)?;
    let dim = points.shape()[points.ndim() - 1];
    let shape = TensorShape::new(dim, degree)?;
    let st = options.scalar_term as usize;
    let row = shape.len() + st;
    let mut out_shape = p.batch_shape.clone();
    out_shape.extend([windows, row]);
    let mut out = crate::batch::zeros::<T>("window signatures", &out_shape)?;
    let threads = crate::threads(options.exec.n_jobs)?;
    let points = points.as_standard_layout();
    let src = points.as_slice().expect("standard layout");
    let per_path = if p.batch() > 0 {
        src.len() / p.batch()
    } else {
        0
    };
    let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
    let failed = std::sync::Mutex::new(None);
    crate::cpu::par_rows(
        threads,
        slice,
        windows * row,
        || (),
        |_, i, rows| {
            let path = &src[i * per_path..(i + 1) * per_path];
            let result = (|| -> Result<()> {
                let mut stream = SigWindowStream::<T>::new(dim, degree, w, s)?;
                let mut at = rows.chunks_exact_mut(row);
                for point in path.chunks_exact(dim) {
                    if let Some(sig) = stream.push(point)? {
                        let r = at.next().expect("one row per window");
                        if st == 1 {
                            r[0] = T::one();
                        }
                        r[st..].copy_from_slice(sig.as_slice().expect("contiguous"));
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                failed
                    .lock()
                    .expect("no panics while held")
                    .get_or_insert(e);
            }
        },
    );
    if let Some(e) = failed.into_inner().expect("no panics while held") {
        return Err(e);
    }
    crate::batch::check_result("window signature", &out, 2)?;
    Ok(out)
}
