//! `sig_corrected`, its backprop and `log_sig_corrected`: pySigLib's `correction` argument.
//!
//! A correction gives each segment terms of level 2 and above beside its increment, so the segment's
//! signature is `exp(Δx + c₂ + … + c_m)` (the tensor exponential of a general element, not of a
//! vector) and the path's is Chen's product of the segments'. With `c₂ = −½ Σ Δt` this is the Itô
//! signature of a diffusion with covariance `Σ`. A correction row holds levels `2..=m` of the
//! original `d` channels, each level's index tuple `(i_1, …, i_k)` at `i_1 d^{k−1} + … + i_k`;
//! with time augmentation the time channel (the last letter) gets no correction. Lead-lag cannot be
//! combined with a correction. The row is one for all (`(C,)`), one per segment shared by the batch
//! (`(length − 1, C)`) or one per segment and path (`(batch…, length − 1, C)`).
//!
//! The gradient walks the segments backwards from the signature, undoing each one with the
//! exponential of the negated segment (`exp(z)⁻¹ = exp(−z)`), as the plain `sig_backprop` does; only
//! the path's gradient is returned, as in pySigLib. On the GPU (`gpu::sig_corrected`) the segments'
//! exponentials are multiplied as a tree of pairwise products instead, and the gradient runs that
//! tree back.

use crate::algebra::SeriesScratch;
use crate::algebra::{tensor_exp, tensor_exp_backprop, tensor_mul, tensor_mul_backprop};
use crate::batch::{check_result, expect_len, infer_scalar_term, paths as path_rows, same_batch};
use crate::batch::{zeros, Rows};
use crate::cpu::par_rows;
use crate::device::{execute, on_gpu};
#[cfg(feature = "gpu")]
use crate::gpu;
use crate::layout::{aug_dim, TensorShape};
use crate::scalar::Precision;
use crate::{Error, LogSigMethod, Result, Scalar, SigOptions};
use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};

/// The body of [`crate::sig_corrected`] (see [`crate::api`]).
pub(crate) fn sig_corrected<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    correction: ArrayViewD<'_, T>,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let p = path_rows("path", paths.view())?;
    let Some(c) = Correction::new(correction, &p, degree, options)? else {
        return crate::sig::sig(paths, degree, options);
    };
    corrected(&p, &c, options)
}

/// The corrected signatures of the checked paths `p`.
fn corrected<T: Scalar>(
    p: &Rows<'_, T>,
    c: &Correction<'_, T>,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let st = options.scalar_term as usize;
    let n = c.shape.len();
    let mut out_shape = p.batch_shape.clone();
    out_shape.push(n + st);
    let x = transformed(p, options)?;
    let out = c.execute(
        options,
        on_gpu!(|device| {
            let mut out = zeros::<T>("signature", &out_shape)?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            c.on_gpu(&x, |segs| {
                gpu::sig_corrected(device, &c.shape, segs, st, slice)
            })?;
            Ok(out)
        }),
        |threads| {
            let mut out = zeros::<T>("signature", &out_shape)?;
            par_rows(
                threads,
                out.as_slice_mut().expect("fresh arrays are contiguous"),
                n + st,
                || Segments::new(&c.shape),
                |ws, b, row| {
                    row[..st].fill(T::one());
                    let s = &mut row[st..];
                    for k in 0..c.segments {
                        ws.segment(c, &x, b, k);
                        tensor_mul(&c.shape, s, &ws.e, &mut ws.tmp);
                        s.copy_from_slice(&ws.tmp);
                    }
                },
            );
            Ok(out)
        },
    )?;
    check_result("signature", &out, 1)?;
    Ok(out)
}

/// The body of [`crate::sig_corrected_backprop`] (see [`crate::api`]).
pub(crate) fn sig_corrected_backprop<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    correction: ArrayViewD<'_, T>,
    sigs: ArrayViewD<'_, T>,
    sig_derivs: ArrayViewD<'_, T>,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let p = path_rows("path", paths.view())?;
    let Some(c) = Correction::new(correction, &p, degree, options)? else {
        return crate::sig::sig_backprop(paths, sigs, sig_derivs, degree, options);
    };
    let s = Rows::new("sig", sigs, 1)?;
    let g = Rows::new("sig_derivs", sig_derivs, 1)?;
    same_batch("path", &p, "sig", &s)?;
    same_batch("sig", &s, "sig_derivs", &g)?;
    let n = c.shape.len();
    let st = infer_scalar_term("sig", s.last(), n)? as usize;
    expect_len("sig_derivs", &g, s.last())?;
    s.check_finite("sig", false)?;
    g.check_finite("sig_derivs", false)?;
    let x = transformed(&p, options)?;
    let dx = c.execute(
        options,
        on_gpu!(|device| {
            let mut dx = zeros::<T>("path gradient", x.shape())?;
            let slice = dx.as_slice_mut().expect("fresh arrays are contiguous");
            let d = c.shape.dim;
            if c.segments == 0 {
                return Ok(dx);
            }
            let mut dz = vec![T::zero(); c.batch * c.segments * d];
            let derivs = g.slice();
            c.on_gpu(&x, |segs| {
                gpu::sig_corrected_backprop(device, &c.shape, segs, derivs, st, &mut dz)
            })?;
            // Each segment's increment is its end point less its start point.
            let (points, segments) = (c.points * d, c.segments * d);
            for (dx, dz) in slice
                .chunks_exact_mut(points)
                .zip(dz.chunks_exact(segments))
            {
                for (k, dz) in dz.chunks_exact(d).enumerate() {
                    for (j, &v) in dz.iter().enumerate() {
                        dx[(k + 1) * d + j] += v;
                        dx[k * d + j] -= v;
                    }
                }
            }
            Ok(dx)
        }),
        |threads| {
            let mut dx = zeros::<T>("path gradient", x.shape())?;
            let (sigs, derivs, row) = (s.slice(), g.slice(), s.last());
            par_rows(
                threads,
                dx.as_slice_mut().expect("fresh arrays are contiguous"),
                c.points * c.shape.dim,
                || (Segments::new(&c.shape), Reverse::new(n)),
                |(ws, r), b, dx| {
                    r.s.copy_from_slice(&sigs[b * row + st..(b + 1) * row]);
                    r.ds.copy_from_slice(&derivs[b * row + st..(b + 1) * row]);
                    let d = c.shape.dim;
                    for k in (0..c.segments).rev() {
                        ws.segment(&c, &x, b, k);
                        // The signature before segment k: s ⊗ exp(z)⁻¹ = s ⊗ exp(−z).
                        ws.z.iter_mut().for_each(|v| *v = -*v);
                        tensor_exp(&c.shape, &ws.z, &mut ws.tmp, &mut ws.series);
                        ws.z.iter_mut().for_each(|v| *v = -*v);
                        tensor_mul(&c.shape, &r.s, &ws.tmp, &mut r.prev);
                        r.dprev.fill(T::zero());
                        r.de.fill(T::zero());
                        let (ds, prev, e) = (&r.ds, &r.prev, &ws.e);
                        tensor_mul_backprop(&c.shape, ds, prev, e, &mut r.dprev, &mut r.de);
                        r.dz.fill(T::zero());
                        tensor_exp_backprop(&c.shape, &ws.z, &r.de, &mut r.dz, &mut ws.series);
                        for j in 0..d {
                            dx[(k + 1) * d + j] += r.dz[j];
                            dx[k * d + j] -= r.dz[j];
                        }
                        std::mem::swap(&mut r.s, &mut r.prev);
                        std::mem::swap(&mut r.ds, &mut r.dprev);
                    }
                },
            );
            Ok(dx)
        },
    )?;
    let out = crate::transform::transform_path_backprop(dx.view(), options)?;
    check_result("path gradient", &out, 2)?;
    Ok(out)
}

/// The body of [`crate::log_sig_corrected`] (see [`crate::api`]): the log-signature of the corrected
/// signature.
pub(crate) fn log_sig_corrected<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    correction: ArrayViewD<'_, T>,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let p = path_rows("path", paths.view())?;
    let Some(c) = Correction::new(correction, &p, degree, options)? else {
        return crate::logsig::log_sig(paths.view(), degree, method, options);
    };
    let sigs = corrected(&p, &c, options)?;
    crate::logsig::sig_to_log_sig(sigs.view(), p.last(), degree, method, options)
}

/// The paths with time augmentation applied (lead-lag is refused with a correction).
fn transformed<T: Scalar>(p: &Rows<'_, T>, options: &SigOptions) -> Result<ArrayD<T>> {
    crate::transform::transform_path(p.data.view(), options)
}

/// A checked, non-empty correction and where each of its entries goes in a segment's tensor.
struct Correction<'a, T> {
    data: CowArray<'a, T, IxDyn>,
    /// Where row `(b, k)` starts: `b · batch_stride + k · segment_stride`.
    batch_stride: usize,
    segment_stride: usize,
    /// `position[j]`: the index in a tensor of `shape` (levels `1..=N`) of the row's entry `j`.
    position: Vec<usize>,
    /// The transformed paths' tensor shape, points and segments.
    shape: TensorShape,
    batch: usize,
    points: usize,
    segments: usize,
}

impl<'a, T: Scalar> Correction<'a, T> {
    /// `None` for an empty correction (all zero, so the plain operation), else the checked
    /// correction for paths `p`.
    fn new(
        correction: ArrayViewD<'a, T>,
        p: &Rows<'_, T>,
        degree: usize,
        options: &SigOptions,
    ) -> Result<Option<Self>> {
        if correction.is_empty() {
            return Ok(None);
        }
        if options.transform.lead_lag {
            return Err(Error::invalid(
                "a correction cannot be combined with lead_lag",
            ));
        }
        let d = p.last();
        let shape = TensorShape::new(aug_dim(d, options.transform.time_aug, false)?, degree)?;
        let dims = p.data.shape();
        let points = dims[dims.len() - 2];
        let segments = points.saturating_sub(1);
        let c_shape = correction.shape().to_vec();
        let width = *c_shape
            .last()
            .ok_or_else(|| shape_error(p, segments, None))?;
        let (batch_stride, segment_stride) = match c_shape.len() {
            1 => (0, 0),
            2 if c_shape[0] == segments => (0, width),
            _ => {
                let mut expected = p.batch_shape.clone();
                expected.extend([segments, width]);
                if c_shape != expected {
                    return Err(shape_error(p, segments, Some(&c_shape)));
                }
                (segments * width, width)
            }
        };
        let position = positions(d, &shape, width)?;
        let rows = Rows::new("correction", correction, 1)?;
        rows.check_finite("correction", false)?;
        Ok(Some(Correction {
            data: rows.data,
            batch_stride,
            segment_stride,
            position,
            shape,
            batch: p.batch(),
            points,
            segments,
        }))
    }

    /// Runs `on_cpu` or `on_gpu` as the options' device and the work (about `degree · len`
    /// multiply-adds per segment for its exponential and its product) decide.
    fn execute<R>(
        &self,
        options: &SigOptions,
        on_gpu: impl FnOnce(&crate::device::GpuDevice) -> Result<R>,
        on_cpu: impl FnOnce(usize) -> Result<R>,
    ) -> Result<R> {
        let segments = self.batch as u128 * self.segments as u128;
        let work = segments * (self.shape.degree * self.shape.len()) as u128;
        let (device, n_jobs) = (&options.exec.device, options.exec.n_jobs);
        execute(device, n_jobs, Precision::of::<T>(), work, on_gpu, on_cpu)
    }

    /// The segments of the transformed paths `x` as the GPU reads them, given to `f`.
    #[cfg(feature = "gpu")]
    fn on_gpu<R>(&self, x: &ArrayD<T>, f: impl FnOnce(&gpu::CorrectedSegments<'_, T>) -> R) -> R {
        let d = self.shape.dim;
        let x = x.as_slice().expect("fresh arrays are contiguous");
        let fill = |b: usize, k: usize, row: &mut [T]| {
            let at = (b * self.points + k) * d;
            for (j, v) in row[..d].iter_mut().enumerate() {
                *v = x[at + d + j] - x[at + j];
            }
            row[d..].copy_from_slice(self.row(b, k));
        };
        f(&gpu::CorrectedSegments {
            paths: self.batch,
            segments: self.segments,
            positions: &self.position,
            fill: &fill,
        })
    }

    fn row(&self, b: usize, k: usize) -> &[T] {
        let start = b * self.batch_stride + k * self.segment_stride;
        let data = self.data.as_slice().expect("standard layout is contiguous");
        &data[start..start + self.position.len()]
    }
}

fn shape_error<T: Scalar>(p: &Rows<'_, T>, segments: usize, got: Option<&[usize]>) -> Error {
    let per_path: Vec<String> = p.batch_shape.iter().map(|n| n.to_string()).collect();
    Error::invalid(format!(
        "correction must have shape (C,), ({segments}, C) or ({}{segments}, C) for these paths, got {}",
        per_path.iter().map(|n| format!("{n}, ")).collect::<String>(),
        got.map_or("a scalar".to_string(), |s| format!("{s:?}"))
    ))
}

/// Where each entry of a correction row of `width` entries goes in a tensor of `shape`: levels
/// `2..=m` of `d` letters laid end to end, `width = d² + … + d^m` with `m ≤ N`, and each letter
/// keeping its index in the (possibly time-augmented) alphabet.
fn positions(d: usize, shape: &TensorShape, width: usize) -> Result<Vec<usize>> {
    if shape.degree < 2 {
        return Err(Error::invalid(format!(
            "a correction needs degree 2 or more (it has levels 2 and above), got degree {}",
            shape.degree
        )));
    }
    let mut position = Vec::new();
    let mut level_len = d;
    for k in 2..=shape.degree {
        level_len = level_len.saturating_mul(d);
        if position.len().saturating_add(level_len) > width {
            break;
        }
        for idx in 0..level_len {
            // The digits of `idx` in base d, most significant first, read in base `shape.dim`.
            let (mut rest, mut place, mut at) = (idx, 1, 0);
            for _ in 0..k {
                at += (rest % d) * place;
                rest /= d;
                place *= shape.dim;
            }
            position.push(shape.offset(k) + at);
        }
        if position.len() == width {
            return Ok(position);
        }
    }
    let sizes: Vec<String> = (2..=shape.degree)
        .scan(0usize, |total, k| {
            *total = total.saturating_add(d.saturating_pow(k as u32));
            Some(total.to_string())
        })
        .collect();
    Err(Error::invalid(format!(
        "a correction row holds whole levels 2..=m of the path's {d} channels ({} entries for \
         degree {}), got {width}",
        sizes.join(", "),
        shape.degree
    )))
}

/// One thread's buffers for building a segment's exponential.
struct Segments<T> {
    /// The segment's element `Δx + c` and its exponential (levels `1..=N`).
    z: Vec<T>,
    e: Vec<T>,
    tmp: Vec<T>,
    series: SeriesScratch<T>,
}

impl<T: Scalar> Segments<T> {
    fn new(shape: &TensorShape) -> Self {
        let n = shape.len();
        Segments {
            z: vec![T::zero(); n],
            e: vec![T::zero(); n],
            tmp: vec![T::zero(); n],
            series: SeriesScratch::new(shape),
        }
    }

    /// `z = Δx + c` and `e = exp(z)` for segment `k` of path `b` of the transformed paths `x`.
    fn segment(&mut self, c: &Correction<'_, T>, x: &ArrayD<T>, b: usize, k: usize) {
        let d = c.shape.dim;
        let x = x.as_slice().expect("fresh arrays are contiguous");
        let point = |j: usize| &x[(b * c.points + j) * d..(b * c.points + j + 1) * d];
        self.z.fill(T::zero());
        for ((z, &to), &from) in self.z.iter_mut().zip(point(k + 1)).zip(point(k)) {
            *z = to - from;
        }
        for (&at, &v) in c.position.iter().zip(c.row(b, k)) {
            self.z[at] = v;
        }
        tensor_exp(&c.shape, &self.z, &mut self.e, &mut self.series);
    }
}

/// One thread's buffers for the reverse walk: the signature and its gradient after and before a
/// segment, and the gradients of the segment's exponential and element.
struct Reverse<T> {
    s: Vec<T>,
    ds: Vec<T>,
    prev: Vec<T>,
    dprev: Vec<T>,
    de: Vec<T>,
    dz: Vec<T>,
}

impl<T: Scalar> Reverse<T> {
    fn new(n: usize) -> Self {
        let zero = || vec![T::zero(); n];
        Reverse {
            s: zero(),
            ds: zero(),
            prev: zero(),
            dprev: zero(),
            de: zero(),
            dz: zero(),
        }
    }
}
