//! The increments of the path a signature is taken of, generated on the fly from the original path.
//!
//! Lead-lag point `j` (`j = 0 … 2L-2`) is `(x_⌊j/2⌋, x_⌈j/2⌉)`, channels (lag, lead): an even step moves
//! the lead channels by `Δx_{j/2}`, an odd step the lag channels by `Δx_{⌊j/2⌋}`. Time, if on, is the
//! last channel and advances by `end_time / (L' - 1)` per step. Neither transform is ever materialised.

use super::Support;
use crate::{PathTransform, Scalar};

/// The increments of one path of `len` points in `R^dim`, stored row-major in `path`.
#[derive(Clone, Copy, Debug)]
pub struct Increments<'a, T> {
    path: &'a [T],
    dim: usize,
    lead_lag: bool,
    /// The time channel's increment, when time augmentation is on.
    dt: Option<T>,
}

impl<'a, T: Scalar> Increments<'a, T> {
    pub fn new(path: &'a [T], dim: usize, transform: &PathTransform) -> Self {
        let PathTransform {
            time_aug,
            lead_lag,
            end_time,
        } = *transform;
        let points = path.len() / dim;
        let transformed = if lead_lag && points > 0 {
            2 * points - 1
        } else {
            points
        };
        let dt = time_aug.then(|| {
            if transformed > 1 {
                T::from_f64(end_time / (transformed - 1) as f64)
            } else {
                T::zero()
            }
        });
        Increments {
            path,
            dim,
            lead_lag,
            dt,
        }
    }

    /// Channels of each increment.
    pub fn aug_dim(&self) -> usize {
        self.dim * (1 + self.lead_lag as usize) + self.dt.is_some() as usize
    }

    /// Number of increments (segments of the transformed path).
    pub fn count(&self) -> usize {
        let points = self.path.len() / self.dim;
        match points {
            0 => 0,
            p if self.lead_lag => 2 * (p - 1),
            p => p - 1,
        }
    }

    /// The original segment increment `t` comes from, and the channel it starts at in `z`.
    fn source(&self, t: usize) -> (usize, usize) {
        if self.lead_lag {
            (t / 2, if t.is_multiple_of(2) { self.dim } else { 0 })
        } else {
            (t, 0)
        }
    }

    /// Increments `steps` as the increments of a path of their own: the points they move, the steps
    /// renumbered from 0 (keeping a lead-lag step's parity) and the same time step. Returns it, the
    /// renumbered steps and the first point's index in this path, so that gradients scattered
    /// through the window land at `first_point · dim` of this path's layout.
    pub fn window(&self, steps: std::ops::Range<usize>) -> (Self, std::ops::Range<usize>, usize) {
        if steps.is_empty() {
            return (Increments { path: &[], ..*self }, 0..0, 0);
        }
        let (first, last) = (self.source(steps.start).0, self.source(steps.end - 1).0);
        let shift = if self.lead_lag { 2 * first } else { first };
        let window = Increments {
            path: &self.path[first * self.dim..(last + 2) * self.dim],
            ..*self
        };
        (window, steps.start - shift..steps.end - shift, first)
    }

    /// Values of the path the increments are taken of (points × dimension): its gradient's length.
    pub fn path_len(&self) -> usize {
        self.path.len()
    }

    /// Whether the path is lead-lag transformed: every step then moves only half of the channels.
    pub fn lead_lag(&self) -> bool {
        self.lead_lag
    }

    /// Lead-lag only: write the entries of increment `t` that can be non-zero into `zp` (the moving
    /// block of `dim`, then time if on) and say where they sit; the other channels are zero.
    pub fn fill_lead_lag(&self, t: usize, zp: &mut [T]) -> Support {
        debug_assert!(self.lead_lag);
        let d = self.dim;
        let (seg, start) = self.source(t);
        self.fill_segment(seg, &mut zp[..d]);
        if let Some(dt) = self.dt {
            zp[d] = dt;
        }
        Support {
            width: d,
            lead: start != 0,
            time: self.dt.is_some(),
        }
    }

    /// The path's own dimension, before the transforms.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether time augmentation is on.
    pub fn time(&self) -> bool {
        self.dt.is_some()
    }

    /// Write `x_{seg+1} - x_seg` of the original path into `dx` (length [`Increments::dim`]).
    pub fn fill_segment(&self, seg: usize, dx: &mut [T]) {
        let d = self.dim;
        let (a, b) = self.path[seg * d..(seg + 2) * d].split_at(d);
        for ((z, &bi), &ai) in dx.iter_mut().zip(b).zip(a) {
            *z = bi - ai;
        }
    }

    /// Write increment `t` into `z` (length [`Increments::aug_dim`]).
    pub fn fill(&self, t: usize, z: &mut [T]) {
        self.fill_strided(t, z, 1, 0);
    }

    /// Write increment `t` into a lane-interleaved `z`: channel `j` at `j·stride + lane`. Always
    /// inlined, so that [`Increments::fill`]'s unit stride stays a plain, vectorised loop.
    #[inline(always)]
    pub fn fill_strided(&self, t: usize, z: &mut [T], stride: usize, lane: usize) {
        let d = self.dim;
        let (seg, start) = self.source(t);
        if self.lead_lag {
            // The other half of the lead-lag channels does not move in this segment.
            let other = if start == 0 { d } else { 0 };
            for i in other..other + d {
                z[i * stride + lane] = T::zero();
            }
        }
        let (a, b) = (
            &self.path[seg * d..(seg + 1) * d],
            &self.path[(seg + 1) * d..(seg + 2) * d],
        );
        for (i, (&bi, &ai)) in b.iter().zip(a).enumerate() {
            z[(start + i) * stride + lane] = bi - ai;
        }
        if let Some(dt) = self.dt {
            z[(self.aug_dim() - 1) * stride + lane] = dt;
        }
    }

    /// Route the gradient `dz` of increment `t` back to the points of the original path (`out` is laid
    /// out like the path). The time channel's gradient has no path point to go to and is dropped.
    pub fn scatter(&self, t: usize, dz: &[T], out: &mut [T]) {
        self.scatter_strided(t, dz, 1, 0, out);
    }

    /// [`Increments::scatter`] from a lane-interleaved `dz`: channel `j` at `j·stride + lane`.
    #[inline(always)]
    pub fn scatter_strided(&self, t: usize, dz: &[T], stride: usize, lane: usize, out: &mut [T]) {
        let d = self.dim;
        let (seg, start) = self.source(t);
        let (a, b) = out[seg * d..(seg + 2) * d].split_at_mut(d);
        for (i, (ai, bi)) in a.iter_mut().zip(b).enumerate() {
            let g = dz[(start + i) * stride + lane];
            *bi += g;
            *ai -= g;
        }
    }
}

/// Write increments `steps` of every path in `incs` (all made with the same options) into
/// lane-interleaved `zs`, one step after the other: channel `j` of step `t` of path `l` at
/// `((t - steps.start)·aug_dim + j)·incs.len() + l`.
///
/// Without the transforms each entry is a plain difference of consecutive points, and all the
/// lanes of a channel are written together: one contiguous run per channel rather than a strided
/// scalar store per lane, which was the slower half of preparing a lane group's steps.
pub fn fill_lanes<T: Scalar, const L: usize>(
    incs: &[Increments<'_, T>; L],
    steps: std::ops::Range<usize>,
    zs: &mut [T],
) {
    let first = &incs[0];
    let w = first.aug_dim() * L;
    if first.lead_lag || first.dt.is_some() {
        for (l, inc) in incs.iter().enumerate() {
            for (t, z) in steps.clone().zip(zs.chunks_exact_mut(w)) {
                inc.fill_strided(t, z, L, l);
            }
        }
        return;
    }
    let d = first.dim;
    let span = steps.start * d..(steps.end + 1) * d;
    let points: [&[T]; L] = std::array::from_fn(|l| &incs[l].path[span.clone()]);
    for (u, z) in zs.chunks_exact_mut(w).take(steps.len()).enumerate() {
        for (i, zi) in z.chunks_exact_mut(L).enumerate() {
            let (a, b) = (u * d + i, (u + 1) * d + i);
            for (l, x) in zi.iter_mut().enumerate() {
                *x = points[l][b] - points[l][a];
            }
        }
    }
}
