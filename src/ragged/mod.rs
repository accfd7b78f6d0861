//! Batches of paths of different lengths (ragged batches), computing little of the padding.
//!
//! A ragged batch is stored as an array `(batch, length, dim)` and a length per path: path `i` is its
//! first `lengths[i]` points, what follows is ignored. The results equal those of the batch padded by
//! repeating each path's last point (the usual workaround), exactly:
//!
//! - padded steps have no spatial increment, so without time augmentation the padded signature is
//!   the signature of the path's own points, and the gradient at padded points is zero;
//! - with time augmentation the time channel runs on over the padding, at the padded length's time
//!   step: the path's own points get the end time `end_time·(ℓ'−1)/(L'−1)` (ℓ', L' the transformed
//!   lengths), and the padding is one straight time-only segment appended with [`sig_join`], whose
//!   gradient goes to no point.
//!
//! The paths are sorted by length and cut into groups; each group runs as one batch padded to its
//! own longest path, so the batched kernels do the work and the padding computed is what remains
//! inside a group. On the CPU a group is one lane group (8 paths) and the groups run in parallel,
//! one thread each, so the threads balance the paths' own steps; on a GPU (or with too few paths to
//! give every thread groups) there are at most 16 groups of at least 16 paths, run in turn. The
//! padded points' gradients within a group are folded into each path's last point, which is exact
//! since the padding is that point repeated.

mod kernel;

pub use kernel::{
    sig_kernel_backprop_ragged, sig_kernel_gram_backprop_ragged, sig_kernel_gram_ragged,
    sig_kernel_ragged,
};

use crate::api::{
    sig, sig_backprop, sig_join, sig_join_backprop, sig_to_log_sig, sig_to_log_sig_backprop,
    transform_path, transform_path_backprop,
};
use crate::device::{execute, on_gpu};
use crate::options::Execution;
use crate::scalar::Precision;
use crate::{Device, Error, LogSigMethod, Result, Scalar, SigOptions};
use ndarray::{
    s, Array, Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMut3, Axis,
    Dimension,
};
use rayon::prelude::*;

/// Signatures of a ragged batch: path `i` is the first `lengths[i]` points of `paths[i]`
/// (`(batch, length, dim)`). Output `(batch, sig_length)` (with the scalar term if the options ask),
/// equal to [`sig`] of the batch padded by repeating each path's last point, on the device the
/// options choose. The paths run sorted by length in groups, each padded to its own longest path, so
/// only the padding within a group is computed: on the CPU groups of 8 paths run in parallel, one
/// thread each; on a GPU at most 16 groups of at least 16 paths run in turn.
///
/// ```
/// use roughsig::{ndarray::array, sig, sig_ragged, SigOptions};
/// let paths = array![[[0.0, 0.0], [1.0, 2.0], [9.0, 9.0]], [[1.0, 1.0], [2.0, 0.0], [3.0, 3.0]]];
/// let opts = SigOptions::default();
/// let ragged = sig_ragged(paths.view(), &[2, 3], 2, &opts)?;
/// let first = sig(paths.slice(roughsig::ndarray::s![0, ..2, ..]), 2, &opts)?;
/// assert_eq!(ragged.row(0).into_dyn(), first);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig_ragged<T: Scalar>(
    paths: ArrayView3<'_, T>,
    lengths: &[usize],
    degree: usize,
    options: &SigOptions,
) -> Result<Array2<T>> {
    let ragged = Ragged::new(paths, lengths, options)?;
    let row = crate::sig_length(paths.dim().2, degree, options)?;
    let work = ragged.work(degree, options)?;
    let groups = ragged.run(options, work, |group, own| {
        let (padded, own_options) = ragged.gather(group, own);
        let s = sig(padded.view(), degree, &own_options)?;
        ragged.with_tail(group, s.view(), degree, own, false)
    })?;
    let mut out = Array2::zeros((lengths.len(), row));
    for (group, s) in groups {
        for (k, &i) in group.iter().enumerate() {
            out.row_mut(i).assign(&s.index_axis(Axis(0), k));
        }
    }
    Ok(out)
}

/// Gradients of `F(sig_ragged(paths, lengths))` with respect to the paths, given the signatures
/// `sigs` (`(batch, sig_length)`, as [`sig_ragged`] returns them) and `sig_derivs = dF/dsig`. Output
/// `(batch, length, dim)`, zero at the ignored points; equal to [`sig_backprop`] of the padded batch
/// with the padded points' gradients added to each path's last point (the padding is that point).
pub fn sig_backprop_ragged<T: Scalar>(
    paths: ArrayView3<'_, T>,
    lengths: &[usize],
    sigs: ArrayView2<'_, T>,
    sig_derivs: ArrayView2<'_, T>,
    degree: usize,
    options: &SigOptions,
) -> Result<Array3<T>> {
    let ragged = Ragged::new(paths, lengths, options)?;
    let row = crate::sig_length(paths.dim().2, degree, options)?;
    for (what, a) in [("sigs", &sigs), ("sig_derivs", &sig_derivs)] {
        if a.shape() != [lengths.len(), row] {
            return Err(Error::invalid(format!(
                "{what} has shape {:?}, expected [{}, {row}] (batch, signature length)",
                a.shape(),
                lengths.len()
            )));
        }
    }
    // The reverse sweep costs about three forward passes.
    let work = ragged.work(degree, options)?.saturating_mul(3);
    let groups = ragged.run(options, work, |group, own| {
        let (padded, own_options) = ragged.gather(group, own);
        let rows = |a: &ArrayView2<'_, T>| a.select(Axis(0), group);
        let (given, derivs) = (rows(&sigs), rows(&sig_derivs));
        // The group's own signatures: the given ones without the time-only tail of the padding.
        let own_sigs = ragged.with_tail(group, given.view().into_dyn(), degree, own, true)?;
        let own_derivs = match ragged.tail(group) {
            Some(tail) => {
                sig_join_backprop(
                    derivs.view(),
                    own_sigs.view(),
                    tail.view(),
                    ragged.aug_dim,
                    degree,
                    false,
                    own,
                )?
                .0
            }
            None => derivs.into_dyn(),
        };
        shaped::<T, ndarray::Ix3>(sig_backprop(
            padded.view(),
            own_sigs.view(),
            own_derivs.view(),
            degree,
            &own_options,
        )?)
    })?;
    let mut out = Array3::zeros(paths.dim());
    for (group, g) in groups {
        fold(out.view_mut(), lengths, &group, g.view());
    }
    Ok(out)
}

/// Log-signatures of a ragged batch (see [`sig_ragged`]), in the form `method`: equal to
/// [`crate::log_sig`] of the batch padded by repeating each path's last point.
pub fn log_sig_ragged<T: Scalar>(
    paths: ArrayView3<'_, T>,
    lengths: &[usize],
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let sigs = sig_ragged(paths, lengths, degree, options)?;
    sig_to_log_sig(sigs.view(), paths.dim().2, degree, method, options)
}

/// Gradients of `F(log_sig_ragged(paths, lengths))` with respect to the paths, given
/// `log_sig_derivs = dF/dlog_sig`. Output `(batch, length, dim)`, zero at the ignored points; equal to
/// [`crate::log_sig_backprop`] of the padded batch with the padded points' gradients added to each
/// path's last point.
pub fn log_sig_backprop_ragged<T: Scalar>(
    paths: ArrayView3<'_, T>,
    lengths: &[usize],
    log_sig_derivs: ArrayView2<'_, T>,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<Array3<T>> {
    let sigs = sig_ragged(paths, lengths, degree, options)?;
    let dim = paths.dim().2;
    let d_sigs =
        sig_to_log_sig_backprop(sigs.view(), log_sig_derivs, dim, degree, method, options)?;
    let d_sigs: Array2<T> = shaped(d_sigs)?;
    sig_backprop_ragged(paths, lengths, sigs.view(), d_sigs.view(), degree, options)
}

/// The transformed paths of a ragged batch: [`transform_path`] of the batch padded by repeating each
/// path's last point, `(batch, L', d')` (the transform is a copy of the points, so the padding costs
/// no more than the output it fills).
pub fn transform_path_ragged<T: Scalar>(
    paths: ArrayView3<'_, T>,
    lengths: &[usize],
    options: &SigOptions,
) -> Result<Array3<T>> {
    let (batch, length, _) = paths.dim();
    check_lengths("lengths", lengths, batch, length)?;
    let all: Vec<usize> = (0..batch).collect();
    shaped(transform_path(
        padded(paths, lengths, &all, length).view(),
        options,
    )?)
}

/// The gradient with respect to a ragged batch of paths given `derivs` `(batch, L', d')` of
/// [`transform_path_ragged`]'s output: [`transform_path_backprop`] with the padded points' gradients
/// added to each path's last point, zero at the ignored points.
pub fn transform_path_backprop_ragged<T: Scalar>(
    derivs: ArrayView3<'_, T>,
    lengths: &[usize],
    options: &SigOptions,
) -> Result<Array3<T>> {
    let g: Array3<T> = shaped(transform_path_backprop(derivs, options)?)?;
    let (batch, length, _) = g.dim();
    check_lengths("lengths", lengths, batch, length)?;
    let mut out = Array3::zeros(g.dim());
    let all: Vec<usize> = (0..batch).collect();
    fold(out.view_mut(), lengths, &all, g.view());
    Ok(out)
}

/// A checked ragged batch and what its transform needs.
struct Ragged<'a, T> {
    paths: ArrayView3<'a, T>,
    lengths: &'a [usize],
    /// Channels after lead-lag and time augmentation.
    aug_dim: usize,
    transform: crate::PathTransform,
}

/// The fewest paths in a group, and the most groups, where groups run one after the other.
const GROUP_MIN: usize = 16;
const GROUPS_MAX: usize = 16;

/// Paths in a group where groups run in parallel on the CPU: one lane group of the batched kernels.
const CPU_GROUP: usize = 8;

impl<'a, T: Scalar> Ragged<'a, T> {
    fn new(paths: ArrayView3<'a, T>, lengths: &'a [usize], options: &SigOptions) -> Result<Self> {
        let (batch, length, dim) = paths.dim();
        check_lengths("lengths", lengths, batch, length)?;
        let t = &options.transform;
        Ok(Ragged {
            paths,
            lengths,
            aug_dim: dim * (1 + t.lead_lag as usize) + t.time_aug as usize,
            transform: *t,
        })
    }

    /// The paths' indices by increasing length, cut into groups of `size`.
    fn groups(&self, size: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.lengths.len()).collect();
        order.sort_by_key(|&i| self.lengths[i]);
        order.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
    }

    /// About the multiply-adds of the paths' own steps, for the device choice.
    fn work(&self, degree: usize, options: &SigOptions) -> Result<u128> {
        let row = crate::sig_length(self.paths.dim().2, degree, options)? as u128;
        let steps: u128 = self
            .lengths
            .iter()
            .map(|&l| (self.transformed(l) - 1) as u128)
            .sum();
        Ok(steps.saturating_mul(row))
    }

    /// `f(group, options)` for every group (see [`run`]): on the CPU groups of [`CPU_GROUP`] paths,
    /// otherwise at most [`GROUPS_MAX`] groups of at least [`GROUP_MIN`].
    fn run<R: Send>(
        &self,
        options: &SigOptions,
        work: u128,
        f: impl Fn(&[usize], &SigOptions) -> Result<R> + Sync,
    ) -> Result<Vec<(Vec<usize>, R)>> {
        let batch = self.lengths.len();
        let groups = |cut| {
            self.groups(match cut {
                Cut::Small => CPU_GROUP,
                Cut::Large => GROUP_MIN.max(batch.div_ceil(GROUPS_MAX)),
            })
        };
        run::<T, _, _>(&options.exec, work, groups, |group, exec| {
            let mut own = options.clone();
            own.exec = exec.clone();
            f(group, &own)
        })
    }

    /// The points of a group's longest path.
    fn longest(&self, group: &[usize]) -> usize {
        group.iter().map(|&i| self.lengths[i]).max().unwrap_or(1)
    }

    /// Points after lead-lag (`2L − 1` for `L` points).
    fn transformed(&self, points: usize) -> usize {
        if self.transform.lead_lag {
            2 * points - 1
        } else {
            points
        }
    }

    /// The group's paths padded to its longest by repeating each one's last point, and the options
    /// for them: with time augmentation, the end time their last point reaches in the full padding.
    fn gather(&self, group: &[usize], options: &SigOptions) -> (Array3<T>, SigOptions) {
        let longest = self.longest(group);
        let padded = padded(self.paths, self.lengths, group, longest);
        let mut own = options.clone();
        let (l, full) = (
            self.transformed(longest),
            self.transformed(self.paths.dim().1),
        );
        if full > 1 {
            own.transform.end_time =
                options.transform.end_time * (l - 1) as f64 / (full - 1) as f64;
        }
        (padded, own)
    }

    /// The time-only segment (one row per path of the group) that the rest of the padding adds,
    /// if there is time augmentation and padding beyond the group's longest path.
    fn tail(&self, group: &[usize]) -> Option<Array2<T>> {
        let (longest, length) = (self.longest(group), self.paths.dim().1);
        if !self.transform.time_aug || longest == length {
            return None;
        }
        let full = self.transformed(length);
        let steps = (full - self.transformed(longest)) as f64;
        let time = T::from_f64(self.transform.end_time * steps / (full - 1) as f64);
        let mut tail = Array2::zeros((group.len(), self.aug_dim));
        tail.column_mut(self.aug_dim - 1).fill(time);
        Some(tail)
    }

    /// The signatures `s` of a group with the rest of its padding appended, or removed (`inverse`:
    /// the segment run backwards).
    fn with_tail(
        &self,
        group: &[usize],
        s: ArrayViewD<'_, T>,
        degree: usize,
        options: &SigOptions,
        inverse: bool,
    ) -> Result<ArrayD<T>> {
        let Some(mut tail) = self.tail(group) else {
            return Ok(s.to_owned().into_dyn());
        };
        if inverse {
            tail.mapv_inplace(|v| -v);
        }
        sig_join(s, tail.view(), self.aug_dim, degree, false, options)
    }
}

/// How a ragged call's work is cut: many small units that CPU threads take one each, or a few
/// large ones run in turn, each a batch that the backend shares out itself.
#[derive(Clone, Copy)]
enum Cut {
    Small,
    Large,
}

/// `f(unit, execution)` for every unit of work, on the backend `exec` chooses for `work`; the results
/// with their units. On the CPU, when the small cut gives every thread a unit, the small units run
/// in parallel, one thread each: the threads balance real work and none waits for another between
/// units. Otherwise (a GPU, or too few units for the threads) the large units run one after the
/// other.
fn run<T: Scalar, U: Send + Sync, R: Send>(
    exec: &Execution,
    work: u128,
    units: impl Fn(Cut) -> Vec<U>,
    f: impl Fn(&U, &Execution) -> Result<R> + Sync,
) -> Result<Vec<(U, R)>> {
    let in_turn = |exec: &Execution| -> Result<Vec<(U, R)>> {
        units(Cut::Large)
            .into_iter()
            .map(|u| f(&u, exec).map(|r| (u, r)))
            .collect()
    };
    execute(
        &exec.device,
        exec.n_jobs,
        Precision::of::<T>(),
        work,
        on_gpu!(|device| {
            let _ = device;
            in_turn(exec)
        }),
        |threads| {
            let on_cpu = |n_jobs: usize| Execution {
                n_jobs: n_jobs as i32,
                device: Device::Cpu,
            };
            let small = units(Cut::Small);
            if small.len() < threads {
                return in_turn(&on_cpu(threads));
            }
            let one = on_cpu(1);
            crate::cpu::pool(threads).install(|| {
                small
                    .into_par_iter()
                    .map(|u| f(&u, &one).map(|r| (u, r)))
                    .collect()
            })
        },
    )
}

/// Check a ragged batch's lengths against its `batch` paths of `length` points.
fn check_lengths(what: &'static str, lengths: &[usize], batch: usize, length: usize) -> Result<()> {
    if lengths.len() != batch {
        return Err(Error::Length {
            what,
            got: lengths.len(),
            expected: batch.to_string(),
        });
    }
    match lengths
        .iter()
        .enumerate()
        .find(|(_, &l)| l == 0 || l > length)
    {
        Some((i, &l)) => Err(Error::invalid(format!(
            "{what}[{i}] = {l}: each length must be between 1 and the paths' {length} points"
        ))),
        None => Ok(()),
    }
}

/// The paths `group` of a ragged batch, each padded to `points` by repeating its last point.
fn padded<T: Scalar>(
    paths: ArrayView3<'_, T>,
    lengths: &[usize],
    group: &[usize],
    points: usize,
) -> Array3<T> {
    let dim = paths.dim().2;
    let mut out = Array3::zeros((group.len(), points, dim));
    for (k, &i) in group.iter().enumerate() {
        let l = lengths[i];
        out.slice_mut(s![k, ..l, ..])
            .assign(&paths.slice(s![i, ..l, ..]));
        let last = paths.slice(s![i, l - 1, ..]);
        for mut point in out.slice_mut(s![k, l.., ..]).outer_iter_mut() {
            point.assign(&last);
        }
    }
    out
}

/// Add the gradients `g` of the padded paths `group` into `out` (the ragged batch's gradient): a
/// padded point repeats its path's last point, so its gradient is added there.
fn fold<T: Scalar>(
    mut out: ArrayViewMut3<'_, T>,
    lengths: &[usize],
    group: &[usize],
    g: ArrayView3<'_, T>,
) {
    for (k, &i) in group.iter().enumerate() {
        let l = lengths[i];
        let mut dst = out.slice_mut(s![i, ..l, ..]);
        dst += &g.slice(s![k, ..l, ..]);
        let folded = g.slice(s![k, l.., ..]).sum_axis(Axis(0));
        let mut last = dst.slice_mut(s![l - 1, ..]);
        last += &folded;
    }
}

/// `a` with its static number of axes (the shapes are the library's own: a mismatch is a bug,
/// reported as an error rather than a panic).
fn shaped<T, D: Dimension>(a: ArrayD<T>) -> Result<Array<T, D>> {
    a.into_dimensionality()
        .map_err(|e| Error::invalid(format!("internal shape: {e}")))
}
