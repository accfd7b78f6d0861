//! Signature coefficients at chosen words, without the full signature, and their gradient.
//!
//! The coefficients of a word `w = (i_1, …, i_k)` and of its prefixes, `c_j = S^{(i_1 … i_j)}`, follow
//! the path segment by segment by Chen's identity restricted to those prefixes: across a straight
//! segment with increment `Δ`,
//!
//! ```text
//! c_j ← c_j + Σ_{m<j} c_m · Δ_{i_{m+1}} ⋯ Δ_{i_j} / (j − m)!
//! ```
//!
//! evaluated by Horner's rule in `O(k²)` per segment: a word costs `O(L·k²)`, whatever the
//! dimension. The gradient is the exact adjoint of that recursion, in `O(L·k³)`: on the CPU from the
//! states `c` kept per segment (`L·(k + 1)` numbers per word and thread); on the GPU, where each
//! (path, word) is one invocation with its state in registers, from the inverse segments.

use crate::batch::{check_bytes, check_result, paths as path_rows, zeros, Rows};
use crate::cpu::par_rows;
use crate::device::{execute, on_gpu};
#[cfg(feature = "gpu")]
use crate::gpu;
use crate::layout::aug_dim;
use crate::scalar::Precision;
use crate::transform::{transform_path, transform_path_backprop};
use crate::{Error, Result, Scalar, SigOptions};
use ndarray::{ArrayD, ArrayViewD};

/// The body of [`crate::sig_coef`] (see [`crate::api`]).
pub(crate) fn sig_coef<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    words: &[Vec<usize>],
    prefixes: bool,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let path = Transformed::new(paths, words, options)?;
    let row = if prefixes {
        prefix_count(words)
    } else {
        words.len()
    };
    let mut out_shape = path.batch_shape.clone();
    out_shape.push(row);
    let batch = path.rows.batch();
    // About `len·k²` multiply-adds per word and path.
    let per_path: u128 = words.iter().map(|w| (w.len() * w.len()) as u128 + 1).sum();
    let work = batch as u128 * path.len as u128 * per_path;
    let out = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        work,
        on_gpu!(|device| {
            let mut out = zeros::<T>("signature coefficients", &out_shape)?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            let shape = (batch, path.len, path.dim);
            gpu::sig_coef(device, path.points(), shape, words, prefixes, slice)?;
            Ok(out)
        }),
        |threads| {
            let mut out = zeros::<T>("signature coefficients", &out_shape)?;
            let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
            par_rows(threads, slice, row, Vec::new, |states, b, row| {
                let x = path.item(b);
                let mut at = 0;
                for word in words {
                    let c = path.run(x, word, states);
                    if prefixes {
                        let k = word.len().max(1);
                        row[at..at + k].copy_from_slice(&c[c.len() - k..]);
                        at += k;
                    } else {
                        row[at] = c[word.len()];
                        at += 1;
                    }
                }
            });
            Ok(out)
        },
    )?;
    check_result("signature coefficients", &out, 1)?;
    Ok(out)
}

/// The body of [`crate::sig_coef_backprop`] (see [`crate::api`]).
pub(crate) fn sig_coef_backprop<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    words: &[Vec<usize>],
    derivs: ArrayViewD<'_, T>,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let path = Transformed::new(paths, words, options)?;
    let d = Rows::new("derivs", derivs, 1)?;
    d.check_finite("derivs", false)?;
    let count = prefix_count(words);
    // Derivatives of the prefixes' coefficients, or of the words' alone (the same layout when every
    // word has at most one letter).
    let prefixes = d.last() == count;
    if !prefixes && d.last() != words.len() || d.batch_shape != path.batch_shape {
        return Err(Error::invalid(format!(
            "derivs has shape {:?}, expected the batch shape {:?} followed by {} (one per word) or {count} \
             (one per prefix)",
            d.data.shape(),
            path.batch_shape,
            words.len(),
        )));
    }
    let ds = d.slice();
    let item_len = path.len * path.dim;
    let mut shape = path.batch_shape.clone();
    shape.extend([path.len, path.dim]);
    let batch = path.rows.batch();
    // About `len·k³/3` multiply-adds per word and path.
    let per_path: u128 = words.iter().map(|w| (w.len().pow(3) / 3) as u128 + 1).sum();
    let work = batch as u128 * path.len as u128 * per_path;
    let grads = execute(
        &options.exec.device,
        options.exec.n_jobs,
        Precision::of::<T>(),
        work,
        on_gpu!(|device| {
            let mut grads = zeros::<T>("path gradient", &shape)?;
            let slice = grads.as_slice_mut().expect("fresh arrays are contiguous");
            let dims = (batch, path.len, path.dim);
            gpu::sig_coef_backprop(device, path.points(), dims, words, prefixes, ds, slice)?;
            Ok(grads)
        }),
        |threads| {
            let mut grads = zeros::<T>("path gradient", &shape)?;
            let slice = grads.as_slice_mut().expect("fresh arrays are contiguous");
            par_rows(threads, slice, item_len, Backward::default, |ws, b, g| {
                let x = path.item(b);
                let d = &ds[b * d.last()..(b + 1) * d.last()];
                let mut at = 0;
                for word in words {
                    let k = word.len();
                    ws.adjoint.clear();
                    ws.adjoint.resize(k + 1, T::zero());
                    if prefixes {
                        let n = k.max(1);
                        if k > 0 {
                            ws.adjoint[1..].copy_from_slice(&d[at..at + n]);
                        }
                        at += n;
                    } else {
                        ws.adjoint[k] = d[at];
                        at += 1;
                    }
                    if k > 0 {
                        path.run(x, word, &mut ws.states);
                        ws.backprop(&path, x, word, g);
                    }
                }
            });
            Ok(grads)
        },
    )?;
    let grads = if path.transformed.is_some() {
        transform_path_backprop(grads.view(), options)?
    } else {
        grads
    };
    check_result("path gradient", &grads, 2)?;
    Ok(grads)
}

/// The number of coefficients with `prefixes`: a word's non-empty prefixes (one for the empty word).
fn prefix_count(words: &[Vec<usize>]) -> usize {
    words.iter().map(|w| w.len().max(1)).sum()
}

/// Checked paths after lead-lag and time augmentation, as points of `dim` channels.
struct Transformed<'a, T> {
    rows: Rows<'a, T>,
    /// The transformed paths, when a transform is on.
    transformed: Option<ArrayD<T>>,
    batch_shape: Vec<usize>,
    len: usize,
    dim: usize,
    /// `1/j!` and `1/j` up to the longest word's length.
    inv_fact: Vec<T>,
    inv: Vec<T>,
}

impl<'a, T: Scalar> Transformed<'a, T> {
    fn new(paths: ArrayViewD<'a, T>, words: &[Vec<usize>], options: &SigOptions) -> Result<Self> {
        options.validate::<T>()?;
        let rows = path_rows("path", paths.clone())?;
        let t = &options.transform;
        let dim = aug_dim(rows.last(), t.time_aug, t.lead_lag)?;
        if words.is_empty() {
            return Err(Error::invalid("words must name at least one word"));
        }
        for (w, word) in words.iter().enumerate() {
            if let Some((l, &letter)) = word.iter().enumerate().find(|(_, &i)| i >= dim) {
                return Err(Error::invalid(format!(
                    "words[{w}][{l}] = {letter}: letters must be below the (transformed) \
                     dimension {dim}"
                )));
            }
        }
        let transformed = if t.time_aug || t.lead_lag {
            Some(transform_path(paths, options)?)
        } else {
            None
        };
        let shape = transformed
            .as_ref()
            .map_or(rows.data.shape(), |a| a.shape());
        let len = shape[shape.len() - 2];
        let longest = words.iter().map(Vec::len).max().unwrap_or(0);
        // Each thread keeps a word's states along the path.
        let states = (len as u128 + 1) * (longest as u128 + 1) * std::mem::size_of::<T>() as u128;
        check_bytes("signature coefficients' states", states)?;
        let inv: Vec<T> = (0..=longest)
            .map(|j| T::one() / T::from_f64(j.max(1) as f64))
            .collect();
        let mut inv_fact = inv.clone();
        for j in 1..=longest {
            inv_fact[j] = inv_fact[j - 1] * inv[j];
        }
        Ok(Transformed {
            batch_shape: rows.batch_shape.clone(),
            rows,
            transformed,
            len,
            dim,
            inv_fact,
            inv,
        })
    }

    /// Every batch item's points, end to end.
    fn points(&self) -> &[T] {
        match &self.transformed {
            Some(a) => a.as_slice().expect("fresh arrays are contiguous"),
            None => self.rows.slice(),
        }
    }

    /// The points of batch item `b`.
    fn item(&self, b: usize) -> &[T] {
        let n = self.len * self.dim;
        &self.points()[b * n..(b + 1) * n]
    }

    /// The coefficients `c_0 … c_k` of `word`'s prefixes over the path `x`; `states` keeps them
    /// before every segment (`(k + 1)` per segment) and at the end (the last `k + 1`).
    fn run<'s>(&self, x: &[T], word: &[usize], states: &'s mut Vec<T>) -> &'s [T] {
        let k = word.len();
        let segments = self.len.saturating_sub(1);
        states.clear();
        states.resize((segments + 1) * (k + 1), T::zero());
        states[0] = T::one();
        for s in 0..segments {
            let (old, new) = states[s * (k + 1)..].split_at_mut(k + 1);
            let new = &mut new[..k + 1];
            new.copy_from_slice(old);
            let delta = |l: usize| x[(s + 1) * self.dim + word[l]] - x[s * self.dim + word[l]];
            for j in (1..=k).rev() {
                let mut acc = T::zero();
                for (m, &c) in old[..j].iter().enumerate() {
                    acc = (acc + c) * delta(m) * self.inv[j - m];
                }
                new[j] += acc;
            }
        }
        &states[segments * (k + 1)..]
    }
}

/// One thread's buffers for the gradient.
#[derive(Default)]
struct Backward<T> {
    states: Vec<T>,
    /// `dF/dc_j` after the segment being reversed.
    adjoint: Vec<T>,
    next: Vec<T>,
    delta: Vec<T>,
    d_delta: Vec<T>,
    /// The products of a span of increments without each one of them.
    excl: Vec<T>,
}

impl<T: Scalar> Backward<T> {
    /// Add the gradient of `Σ_j adjoint_j·c_j` (the final prefixes of `word` over `x`, with
    /// `states` from [`Transformed::run`]) to the points' gradient `g`.
    fn backprop(&mut self, path: &Transformed<'_, T>, x: &[T], word: &[usize], g: &mut [T]) {
        let (k, dim) = (word.len(), path.dim);
        let f = &path.inv_fact;
        for s in (0..path.len.saturating_sub(1)).rev() {
            let c = &self.states[s * (k + 1)..(s + 1) * (k + 1)];
            self.delta.clear();
            self.delta
                .extend(word.iter().map(|&i| x[(s + 1) * dim + i] - x[s * dim + i]));
            self.d_delta.clear();
            self.d_delta.resize(k, T::zero());
            self.next.clear();
            self.next.extend_from_slice(&self.adjoint);
            // c_j gains c_m·P(m, j), P(m, j) = Δ_{m+1}⋯Δ_j / (j − m)! (letters 1-based). For each m
            // the span grows with j, keeping the products without each of its factors (no
            // division: increments may be zero): O(k³) a segment.
            for m in 0..k {
                self.excl.clear();
                let mut prod = T::one();
                for j in m + 1..=k {
                    let v = self.delta[j - 1];
                    for e in self.excl.iter_mut() {
                        *e *= v;
                    }
                    self.excl.push(prod);
                    prod *= v;
                    let a = self.adjoint[j];
                    if a == T::zero() {
                        continue;
                    }
                    if m > 0 {
                        self.next[m] += a * prod * f[j - m];
                    }
                    let w = a * c[m] * f[j - m];
                    for (l, &e) in self.excl.iter().enumerate() {
                        self.d_delta[m + l] += w * e;
                    }
                }
            }
            for (l, &i) in word.iter().enumerate() {
                g[(s + 1) * dim + i] += self.d_delta[l];
                g[s * dim + i] -= self.d_delta[l];
            }
            std::mem::swap(&mut self.adjoint, &mut self.next);
        }
    }
}
