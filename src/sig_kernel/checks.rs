//! Checks of the signature kernels' inputs and outputs: non-finite values, named by batch item.

use crate::batch::first_non_finite;
use crate::{Error, Result, Scalar};

/// Fail on NaN or infinity in `data`, an array of `per_item`-sized items of `batch_shape`.
pub(super) fn check_finite_items<T: Scalar>(
    what: &'static str,
    data: &[T],
    batch_shape: &[usize],
    per_item: usize,
) -> Result<()> {
    match first_non_finite(data, batch_shape, per_item) {
        None => Ok(()),
        Some((item, index, value)) => Err(Error::NonFiniteValue {
            what,
            item,
            index,
            value,
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
    match first_non_finite(data, batch_shape, per_item) {
        None => Ok(()),
        Some((item, _, _)) => Err(Error::KernelOverflow { what, item }),
    }
}
