//! `transform_path` and its backprop: time augmentation and lead-lag, materialised (the signature
//! functions never need this; it is here for callers who want the transformed path itself).

use crate::batch::{check_result, paths as path_rows, zeros, Rows};
use crate::layout::aug_dim;
use crate::{Error, Result, Scalar, SigOptions};
use ndarray::{ArrayD, ArrayViewD};

/// The body of [`crate::transform_path`] (see [`crate::api`]).
pub(crate) fn transform_path<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let p = path_rows("path", paths)?;
    let shape = p.data.shape();
    let (len, dim) = (shape[shape.len() - 2], p.last());
    let new_len = transformed_len(len, options.transform.lead_lag);
    let new_dim = aug_dim(dim, options.transform.time_aug, options.transform.lead_lag)?;
    let mut out_shape = p.batch_shape.clone();
    out_shape.extend([new_len, new_dim]);
    let mut out = zeros::<T>("transformed path", &out_shape)?;
    if out.is_empty() {
        return Ok(out);
    }
    let src = p.slice();
    let rows = out.as_slice_mut().expect("fresh arrays are contiguous");
    for (b, item) in rows.chunks_mut(new_len * new_dim).enumerate() {
        let x = &src[b * len * dim..(b + 1) * len * dim];
        for (j, point) in item.chunks_mut(new_dim).enumerate() {
            let (lag, lead) = if options.transform.lead_lag {
                (j / 2, j.div_ceil(2))
            } else {
                (j, j)
            };
            point[..dim].copy_from_slice(&x[lag * dim..(lag + 1) * dim]);
            if options.transform.lead_lag {
                point[dim..2 * dim].copy_from_slice(&x[lead * dim..(lead + 1) * dim]);
            }
            if options.transform.time_aug {
                point[new_dim - 1] = time_at(j, new_len, options.transform.end_time);
            }
        }
    }
    Ok(out)
}

/// The body of [`crate::transform_path_backprop`] (see [`crate::api`]).
pub(crate) fn transform_path_backprop<T: Scalar>(
    derivs: ArrayViewD<'_, T>,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let g = Rows::new("derivs", derivs, 2)?;
    g.check_finite("derivs", true)?;
    let shape = g.data.shape();
    let (new_len, new_dim) = (shape[shape.len() - 2], g.last());
    let channels = new_dim.saturating_sub(options.transform.time_aug as usize);
    let factor = 1 + options.transform.lead_lag as usize;
    if channels == 0 || channels % factor != 0 {
        return Err(Error::Length {
            what: "derivs (channels)",
            expected: format!(
                "{factor}·d{} with d ≥ 1",
                if options.transform.time_aug {
                    " + 1"
                } else {
                    ""
                }
            ),
            got: new_dim,
        });
    }
    let dim = channels / factor;
    let len = if options.transform.lead_lag {
        if new_len % 2 == 0 && new_len != 0 {
            return Err(Error::Length {
                what: "derivs (points)",
                expected: "an odd number 2L-1 of lead-lag points".into(),
                got: new_len,
            });
        }
        new_len.div_ceil(2)
    } else {
        new_len
    };
    let mut out_shape = g.batch_shape.clone();
    out_shape.extend([len, dim]);
    let mut out = zeros::<T>("path gradient", &out_shape)?;
    if out.is_empty() {
        return Ok(out);
    }
    let src = g.slice();
    let rows = out.as_slice_mut().expect("fresh arrays are contiguous");
    for (b, item) in rows.chunks_mut(len * dim).enumerate() {
        let gb = &src[b * new_len * new_dim..(b + 1) * new_len * new_dim];
        for (j, point) in gb.chunks(new_dim).enumerate() {
            let (lag, lead) = if options.transform.lead_lag {
                (j / 2, j.div_ceil(2))
            } else {
                (j, j)
            };
            for c in 0..dim {
                item[lag * dim + c] += point[c];
                if options.transform.lead_lag {
                    item[lead * dim + c] += point[dim + c];
                }
            }
        }
    }
    check_result("path gradient", &out, 2)?;
    Ok(out)
}

fn transformed_len(len: usize, lead_lag: bool) -> usize {
    if lead_lag && len > 0 {
        2 * len - 1
    } else {
        len
    }
}

/// Time at point `j` of `n` points; a single point sits at time 0.
fn time_at<T: Scalar>(j: usize, n: usize, end_time: f64) -> T {
    if n > 1 {
        T::from_f64(j as f64 * end_time / (n - 1) as f64)
    } else {
        T::zero()
    }
}
