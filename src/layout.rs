//! Where each level of a truncated signature lives, with checked arithmetic.
//!
//! Level `k` holds `d^k` coefficients in row-major word order: word `(i1..ik)` sits at
//! `offset_k + i1·d^(k-1) + … + ik`. Levels are stored one after the other, level 1 first; the
//! optional scalar term (level 0, the constant 1) is prepended only at the API boundary.

use crate::{Error, Result, SigOptions};

/// The levels `1..=degree` of a truncated tensor series over `R^dim`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorShape {
    /// The letters of the words: the path's (transformed) dimension.
    pub dim: usize,
    /// The highest level.
    pub degree: usize,
    /// `offsets[k]` is the start of level `k` for `k` in `1..=degree`; `offsets[degree + 1]` is the length.
    offsets: Vec<usize>,
}

/// The largest degree accepted anywhere in the crate.
///
/// For a path of dimension 2 or more the signature length overflows long before this degree (at
/// degree 63 for dimension 2); the cap matters for dimension 1, whose signature has `degree`
/// coefficients, and dimension 0, whose has none: it keeps the per-degree tables and the per-step work
/// of those cases bounded instead of letting a mistyped degree allocate or loop without end.
pub const MAX_DEGREE: usize = 1 << 16;

impl TensorShape {
    /// Fails with [`Error::Overflow`] when `dim + dim^2 + … + dim^degree` does not fit in `isize`,
    /// and with [`Error::Invalid`] when `degree` exceeds [`MAX_DEGREE`]. Nothing is allocated before
    /// both checks pass.
    pub fn new(dim: usize, degree: usize) -> Result<Self> {
        let overflow = || Error::Overflow { dim, degree };
        if degree > MAX_DEGREE {
            // For dim >= 2 the length overflows first: report that, as for any smaller degree.
            return Err(if dim >= 2 {
                overflow()
            } else {
                Error::invalid(format!(
                    "degree {degree} is too large (the largest supported degree is {MAX_DEGREE})"
                ))
            });
        }
        // Check the length before allocating anything: dim >= 2 overflows within 63 levels.
        let mut level = 1usize;
        let mut len = 0usize;
        for _ in 1..=degree {
            level = level.checked_mul(dim).ok_or_else(overflow)?;
            len = len.checked_add(level).ok_or_else(overflow)?;
        }
        // Signatures are indexed with isize-sized slices: keep one spare bit.
        if len > isize::MAX as usize {
            return Err(overflow());
        }
        let mut offsets: Vec<usize> = vec![0; degree + 2];
        let mut level = 1usize;
        for k in 1..=degree {
            level *= dim;
            offsets[k + 1] = offsets[k] + level;
        }
        Ok(TensorShape {
            dim,
            degree,
            offsets,
        })
    }

    /// Number of coefficients at levels `1..=degree`.
    pub fn len(&self) -> usize {
        self.offsets[self.degree + 1]
    }

    /// Whether there are no coefficients (degree 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The levels below the top: the same dimension, one degree lower (degree 0 stays 0).
    pub fn lower(&self) -> TensorShape {
        TensorShape::new(self.dim, self.degree.saturating_sub(1))
            .expect("a lower degree of a valid shape is valid")
    }

    /// Start of level `k` (`1 <= k <= degree + 1`).
    pub fn offset(&self, k: usize) -> usize {
        self.offsets[k]
    }

    /// Number of coefficients at level `k`, `dim^k`.
    pub fn level_len(&self, k: usize) -> usize {
        self.offsets[k + 1] - self.offsets[k]
    }

    /// `dim^(degree - 1)`: the scratch length Horner's step needs (at least 1).
    pub fn top_scratch_len(&self) -> usize {
        if self.degree < 2 {
            1
        } else {
            self.level_len(self.degree - 1)
        }
    }

    /// The flat index of a word (letters in `0..dim`), levels only (no scalar term).
    pub fn word_index(&self, word: &[usize]) -> Option<usize> {
        if word.is_empty() || word.len() > self.degree || word.iter().any(|&i| i >= self.dim) {
            return None;
        }
        let within = word.iter().fold(0, |acc, &i| acc * self.dim + i);
        Some(self.offsets[word.len()] + within)
    }

    /// The word at a flat index (levels only), the inverse of [`TensorShape::word_index`].
    pub fn index_word(&self, index: usize) -> Option<Vec<usize>> {
        if index >= self.len() {
            return None;
        }
        let k = (1..=self.degree).find(|&k| index < self.offsets[k + 1])?;
        let mut rest = index - self.offsets[k];
        let mut word = vec![0; k];
        for slot in word.iter_mut().rev() {
            *slot = rest % self.dim;
            rest /= self.dim;
        }
        Some(word)
    }
}

/// Channels of the path the signature is taken of, after the optional lead-lag (doubling the channels)
/// and time augmentation (one more channel).
pub fn aug_dim(dim: usize, time_aug: bool, lead_lag: bool) -> Result<usize> {
    let doubled = if lead_lag {
        dim.checked_mul(2)
    } else {
        Some(dim)
    };
    doubled
        .and_then(|d| d.checked_add(time_aug as usize))
        .ok_or_else(|| Error::invalid(format!("dimension {dim} is too large")))
}

/// Length of the truncated signature of a `dim`-channel path at `degree`, under the transforms and
/// scalar-term choice of `options` (pySigLib's `sig_length`). Checked: overflow is an error, and so is
/// a degree above [`MAX_DEGREE`].
pub fn sig_length(dim: usize, degree: usize, options: &crate::SigOptions) -> Result<usize> {
    let d = aug_dim(dim, options.transform.time_aug, options.transform.lead_lag)?;
    let len = TensorShape::new(d, degree)?.len();
    len.checked_add(options.scalar_term as usize)
        .ok_or(Error::Overflow { dim: d, degree })
}

/// The shape of a batch of paths: paths of `length` points in `R^dim`, stored contiguously.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PathsShape {
    pub length: usize,
    pub dim: usize,
}

impl PathsShape {
    /// Increments per path after the transforms.
    pub(crate) fn increments(&self, opts: &SigOptions) -> usize {
        match self.length {
            0 => 0,
            n if opts.transform.lead_lag => 2 * (n - 1),
            n => n - 1,
        }
    }
}
