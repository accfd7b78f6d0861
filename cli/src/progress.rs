//! `sig` and `sig_backprop` over a big batch in chunks, with a progress bar on a terminal.
//!
//! Every batch item is computed independently, so the chunked result is identical to one call. Any
//! error in a chunk is reported by redoing the whole call, so that messages name the global batch item.

use ndarray::{s, Array2, Array3, ArrayD, Ix2, Ix3};
use roughsig::{Result, Scalar, SigOptions};
use std::io::IsTerminal;

/// Batches of at most this many items never show a bar.
const MIN_BATCH: usize = 64;

/// Whether a bar may be shown at all (stderr is a terminal).
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
}

/// (batch items, length, dim) when `paths` is a batch big enough to chunk.
fn chunkable(shape: &[usize]) -> Option<(usize, usize, usize)> {
    let n = shape.len();
    if n < 3 {
        return None;
    }
    let batch: usize = shape[..n - 2].iter().product();
    (batch > MIN_BATCH).then(|| (batch, shape[n - 2], shape[n - 1]))
}

fn bar(len: usize, op: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(op.to_string());
    bar
}

fn chunks(batch: usize) -> impl Iterator<Item = (usize, usize)> {
    let size = batch.div_ceil(100).max(16);
    (0..batch)
        .step_by(size)
        .map(move |a| (a, (a + size).min(batch)))
}

pub fn sig<T: Scalar>(
    paths: &ArrayD<T>,
    degree: usize,
    opts: &SigOptions,
    progress: bool,
) -> Result<ArrayD<T>> {
    let Some((batch, len, dim)) = chunkable(paths.shape()).filter(|_| progress) else {
        return roughsig::sig(paths.view(), degree, opts);
    };
    let flat = paths
        .to_shape((batch, len, dim))
        .expect("same element count");
    let bar = bar(batch, "sig");
    let mut out: Option<Array2<T>> = None;
    for (a, b) in chunks(batch) {
        let Ok(part) = roughsig::sig(flat.slice(s![a..b, .., ..]), degree, opts) else {
            bar.finish_and_clear();
            return roughsig::sig(paths.view(), degree, opts);
        };
        let part = part
            .into_dimensionality::<Ix2>()
            .expect("(chunk, sig_length)");
        out.get_or_insert_with(|| Array2::zeros((batch, part.ncols())))
            .slice_mut(s![a..b, ..])
            .assign(&part);
        bar.inc((b - a) as u64);
    }
    bar.finish_and_clear();
    let out = out.expect("batch > 0");
    let mut shape = paths.shape()[..paths.ndim() - 2].to_vec();
    shape.push(out.ncols());
    Ok(out
        .into_shape_with_order(shape)
        .expect("same element count")
        .into_dyn())
}

pub fn sig_backprop<T: Scalar>(
    paths: &ArrayD<T>,
    sigs: &ArrayD<T>,
    derivs: &ArrayD<T>,
    degree: usize,
    opts: &SigOptions,
    progress: bool,
) -> Result<ArrayD<T>> {
    let whole = || roughsig::sig_backprop(paths.view(), sigs.view(), derivs.view(), degree, opts);
    let Some((batch, len, dim)) = chunkable(paths.shape()).filter(|_| progress) else {
        return whole();
    };
    let batch_shape = &paths.shape()[..paths.ndim() - 2];
    let rows_ok = |a: &ArrayD<T>| {
        a.ndim() == batch_shape.len() + 1 && &a.shape()[..batch_shape.len()] == batch_shape
    };
    if !rows_ok(sigs) || !rows_ok(derivs) || sigs.shape() != derivs.shape() {
        return whole();
    }
    let width = sigs.shape()[sigs.ndim() - 1];
    let flat_p = paths
        .to_shape((batch, len, dim))
        .expect("same element count");
    let flat_s = sigs.to_shape((batch, width)).expect("same element count");
    let flat_d = derivs.to_shape((batch, width)).expect("same element count");
    let bar = bar(batch, "sig-backprop");
    let mut out = Array3::<T>::zeros((batch, len, dim));
    for (a, b) in chunks(batch) {
        let part = roughsig::sig_backprop(
            flat_p.slice(s![a..b, .., ..]),
            flat_s.slice(s![a..b, ..]),
            flat_d.slice(s![a..b, ..]),
            degree,
            opts,
        );
        let Ok(part) = part else {
            bar.finish_and_clear();
            return whole();
        };
        out.slice_mut(s![a..b, .., ..]).assign(
            &part
                .into_dimensionality::<Ix3>()
                .expect("(chunk, length, dim)"),
        );
        bar.inc((b - a) as u64);
    }
    bar.finish_and_clear();
    Ok(out
        .into_shape_with_order(paths.shape())
        .expect("same element count")
        .into_dyn())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Dimension, IxDyn};

    fn paths(shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(shape), |i| {
            let k: usize = (0..i.ndim()).map(|a| (a + 3) * i[a]).sum();
            (k as f64 * 0.7).sin()
        })
    }

    #[test]
    fn chunks_cover_the_batch() {
        for batch in [65, 100, 1601, 10_000] {
            let mut next = 0;
            for (a, b) in chunks(batch) {
                assert_eq!(a, next);
                assert!(b > a);
                next = b;
            }
            assert_eq!(next, batch);
        }
    }

    #[test]
    fn chunked_equals_one_call() {
        let opts = SigOptions::default()
            .time_aug(true)
            .lead_lag(true)
            .scalar_term(true);
        let x = paths(&[5, 40, 6, 3]);
        let whole = roughsig::sig(x.view(), 3, &opts).unwrap();
        assert_eq!(sig(&x, 3, &opts, true).unwrap(), whole);
        let derivs = whole.mapv(|v| v.cos());
        let grad = roughsig::sig_backprop(x.view(), whole.view(), derivs.view(), 3, &opts).unwrap();
        assert_eq!(
            sig_backprop(&x, &whole, &derivs, 3, &opts, true).unwrap(),
            grad
        );
    }

    #[test]
    fn chunked_errors_name_the_global_item() {
        let mut x = paths(&[100, 4, 2]);
        x[[90, 1, 0]] = f64::NAN;
        let e = sig(&x, 2, &SigOptions::default(), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[90]"), "{e}");
    }
}
