//! Checks of the signature kernels' inputs and outputs: non-finite values, named by batch item.

use crate::{Error, Result, Scalar};

/// Fail on NaN or infinity in `data`, an array of `per_item`-sized items of `batch_shape`.
pub(super) fn check_finite_items<T: Scalar>(
    what: &'static str,
    data: &[T],
    batch_shape: &[usize],
    per_item: usize,
) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(flat) => Err(Error::NonFinite {
            what,
            item: unravel(flat / per_item.max(1), batch_shape),
            point: 0,
            channel: 0,
            value: data[flat].to_f64(),
        }),
    }
}

/// Turn an overflowed result into [`Error::KernelOverflow`] naming the first bad batch item.
pub(super) fn check_output<T: Scalar>(
    what: &'static str,
    data: &[T],
    batch_shape: &[usize],
    per_item: usize,
) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(flat) => Err(Error::KernelOverflow {
            what,
            item: unravel(flat / per_item.max(1), batch_shape),
        }),
    }
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &n) in index.iter_mut().zip(shape).rev() {
        *slot = flat % n.max(1);
        flat /= n.max(1);
    }
    index
}
