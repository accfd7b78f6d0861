//! Shapes at the API boundary: any number of leading batch axes, checked inputs, checked allocations.

use crate::{Error, Result, Scalar};
use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};

/// An input of shape `(batch…, inner…)` made contiguous, with its batch axes split off.
pub(crate) struct Rows<'a, T> {
    pub batch_shape: Vec<usize>,
    pub data: CowArray<'a, T, IxDyn>,
}

impl<'a, T: Scalar> Rows<'a, T> {
    /// `inner` is the number of trailing non-batch axes.
    pub fn new(what: &'static str, a: ArrayViewD<'a, T>, inner: usize) -> Result<Self> {
        if a.ndim() < inner {
            return Err(Error::Rank {
                what,
                min: inner,
                got: a.ndim(),
            });
        }
        let batch_shape = a.shape()[..a.ndim() - inner].to_vec();
        let data = if a.is_standard_layout() {
            CowArray::from(a)
        } else {
            CowArray::from(a.as_standard_layout().into_owned())
        };
        Ok(Rows { batch_shape, data })
    }

    pub fn batch(&self) -> usize {
        self.batch_shape.iter().product()
    }

    /// Size of the last axis.
    pub fn last(&self) -> usize {
        self.data.shape().last().copied().unwrap_or(1)
    }

    pub fn slice(&self) -> &[T] {
        // as_standard_layout always yields a contiguous, row-major array.
        self.data.as_slice().expect("standard layout is contiguous")
    }

    /// Fail on the first NaN or infinity, naming the batch item, point (second-to-last axis when
    /// `points` is set) and channel.
    pub fn check_finite(&self, what: &'static str, points: bool) -> Result<()> {
        // Chunks checked without an early exit vectorise; only a chunk that fails is searched.
        const CHUNK: usize = 1024;
        let all_finite = |c: &[T]| c.iter().fold(true, |ok, x| ok & x.is_finite());
        let Some(chunk) = self.slice().chunks(CHUNK).position(|c| !all_finite(c)) else {
            return Ok(());
        };
        let rest = &self.slice()[chunk * CHUNK..];
        let flat = chunk * CHUNK + rest.iter().position(|x| !x.is_finite()).unwrap_or(0);
        let shape = self.data.shape();
        let channels = self.last().max(1);
        let per_item = if points {
            shape[shape.len() - 2] * channels
        } else {
            channels
        };
        let mut item_flat = flat / per_item.max(1);
        let mut item = vec![0; self.batch_shape.len()];
        for (slot, &n) in item.iter_mut().zip(&self.batch_shape).rev() {
            *slot = item_flat % n;
            item_flat /= n;
        }
        Err(Error::NonFinite {
            what,
            item,
            point: (flat % per_item) / channels,
            channel: flat % channels,
            value: self.slice()[flat].to_f64(),
        })
    }
}

/// Paths `(batch…, length, dim)`: at least two axes and at least one channel.
pub(crate) fn paths<'a, T: Scalar>(
    what: &'static str,
    a: ArrayViewD<'a, T>,
) -> Result<Rows<'a, T>> {
    let rows = Rows::new(what, a, 2)?;
    if rows.last() == 0 {
        return Err(Error::ZeroChannels { what });
    }
    rows.check_finite(what, true)?;
    Ok(rows)
}

pub(crate) fn same_batch<T, U>(
    a: &'static str,
    x: &Rows<T>,
    b: &'static str,
    y: &Rows<U>,
) -> Result<()> {
    if x.batch_shape != y.batch_shape {
        return Err(Error::BatchMismatch {
            a,
            a_shape: x.batch_shape.clone(),
            b,
            b_shape: y.batch_shape.clone(),
        });
    }
    Ok(())
}

/// Require the last axis of `rows` to be `expected`.
pub(crate) fn expect_len<T: Scalar>(
    what: &'static str,
    rows: &Rows<T>,
    expected: usize,
) -> Result<()> {
    if rows.last() != expected {
        return Err(Error::Length {
            what,
            expected: expected.to_string(),
            got: rows.last(),
        });
    }
    Ok(())
}

/// Whether a signature of `len` coefficients carries the scalar term, for levels of `levels`
/// coefficients; any other length is an error.
pub(crate) fn infer_scalar_term(what: &'static str, len: usize, levels: usize) -> Result<bool> {
    if len == levels {
        Ok(false)
    } else if Some(len) == levels.checked_add(1) {
        Ok(true)
    } else {
        Err(Error::Length {
            what,
            expected: format!("{levels} or {} (with the scalar term)", levels + 1),
            got: len,
        })
    }
}

/// A zeroed output array, refusing sizes that could not be allocated.
pub(crate) fn zeros<T: Scalar>(what: &'static str, shape: &[usize]) -> Result<ArrayD<T>> {
    let elements = shape
        .iter()
        .try_fold(1u128, |acc, &n| acc.checked_mul(n as u128))
        .unwrap_or(u128::MAX);
    check_bytes(
        what,
        elements.saturating_mul(std::mem::size_of::<T>() as u128),
    )?;
    Ok(ArrayD::zeros(IxDyn(shape)))
}

/// Refuse a buffer larger than the machine's memory.
pub(crate) fn check_bytes(what: &'static str, bytes: u128) -> Result<()> {
    let limit = memory_limit();
    if bytes > limit {
        return Err(Error::TooLarge { what, bytes, limit });
    }
    Ok(())
}

/// Physical memory where the OS tells it (Linux), else the largest allocation Rust allows.
fn memory_limit() -> u128 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
    total.unwrap_or(isize::MAX as u128).min(isize::MAX as u128)
}
