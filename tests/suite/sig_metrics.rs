//! `sig_mmd`, `sig_score` and `expected_sig_score`: pySigLib 4.0.0's cases (`tests/data/sig_metrics`,
//! made by `scripts/sig_metrics_reference.py`) in f64 and f32; the estimators against their
//! definitions from whole Gram matrices, across the tiles a large sample is reduced in; gradients
//! against central differences and, across tiles, against the whole Gram matrices' backward pass;
//! the errors.

use crate::common::{assert_close, assert_gradient, random, reference_dir, to_f32, Case};
use ndarray::{Array2, ArrayD, Axis, IxDyn};
use roughsig::{
    expected_sig_score, expected_sig_score_backprop, sig_kernel_gram, sig_kernel_gram_backprop,
    sig_mmd, sig_mmd_backprop, sig_score, sig_score_backprop, Error, SigKernelOptions,
    StaticKernel,
};

fn options(case: &Case) -> SigKernelOptions {
    let opts = SigKernelOptions::default()
        .dyadic_order(case.usize("dyadic_order"))
        .time_aug(case.flag("time_aug"))
        .lead_lag(case.flag("lead_lag"));
    match case.json["params"]["rbf"].as_f64() {
        Some(sigma) => opts.static_kernel(StaticKernel::Rbf { sigma }),
        None => opts,
    }
}

fn scalar(x: f64) -> ArrayD<f64> {
    ArrayD::from_elem(IxDyn(&[]), x)
}

#[test]
fn metrics_match_pysiglib() {
    let cases = Case::all_in(&reference_dir("sig_metrics"), "sig_mmd")
        .into_iter()
        .chain(Case::all_in(&reference_dir("sig_metrics"), "sig_score"))
        .chain(Case::all_in(
            &reference_dir("sig_metrics"),
            "expected_sig_score",
        ))
        .collect::<Vec<_>>();
    assert_eq!(cases.len(), 5);
    for case in &cases {
        let (x, y, want) = (
            case.array("sample1"),
            case.array("sample2"),
            case.array("value"),
        );
        let opts = options(case);
        let lam = case.json["params"]["lam"].as_f64().unwrap_or(1.0);
        let (x32, y32) = (to_f32(&x), to_f32(&y));
        let (got, got32) = match case.json["function"].as_str().unwrap() {
            "sig_mmd" => (
                scalar(sig_mmd(x.view(), y.view(), &opts).unwrap()),
                scalar(sig_mmd(x32.view(), y32.view(), &opts).unwrap() as f64),
            ),
            "sig_score" => (
                sig_score(x.view(), y.view(), lam, &opts).unwrap(),
                sig_score(x32.view(), y32.view(), lam, &opts)
                    .unwrap()
                    .mapv(f64::from),
            ),
            _ => (
                scalar(expected_sig_score(x.view(), y.view(), lam, &opts).unwrap()),
                scalar(expected_sig_score(x32.view(), y32.view(), lam, &opts).unwrap() as f64),
            ),
        };
        let want = want.into_shape_with_order(got.shape()).unwrap();
        assert_close(&case.name, &got, &want, 1e-10, 1e-12);
        assert_close(&case.name, &got32, &want, 2e-4, 2e-4);
    }
}

/// Samples larger than one tile of Gram entries give the estimators of the whole matrices.
#[test]
fn tiled_estimators_equal_the_whole_gram_matrices() {
    let opts = SigKernelOptions::default();
    let (m, n) = (300, 260);
    let (x, y) = (random(&[m, 3, 2], 1) * 0.3, random(&[n, 4, 2], 2) * 0.3);
    let gram =
        |a: &ArrayD<f64>, b: &ArrayD<f64>| sig_kernel_gram(a.view(), b.view(), &opts).unwrap();
    let (xx, yy, xy) = (gram(&x, &x), gram(&y, &y), gram(&x, &y));
    let off = |g: &ArrayD<f64>, k: usize| {
        (g.sum() - (0..k).map(|i| g[[i, i]]).sum::<f64>()) / (k * (k - 1)) as f64
    };
    let want = off(&xx, m) - 2.0 * xy.mean().unwrap() + off(&yy, n);
    let got = sig_mmd(x.view(), y.view(), &opts).unwrap();
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
        "{got} vs {want}"
    );

    let lam = 0.7;
    let scores = sig_score(x.view(), y.view(), lam, &opts).unwrap();
    let want = xy
        .sum_axis(Axis(0))
        .mapv(|s| lam * off(&xx, m) - 2.0 * s / m as f64);
    assert_close("sig_score", &scores, &want, 1e-12, 1e-13);
    let expected = expected_sig_score(x.view(), y.view(), lam, &opts).unwrap();
    assert!((expected - want.mean().unwrap()).abs() <= 1e-12 * expected.abs().max(1.0));
}

#[test]
fn gradients_agree_with_finite_differences() {
    let (x, y) = (random(&[3, 4, 2], 5) * 0.5, random(&[2, 2, 5, 2], 6) * 0.5);
    let kernels = [
        SigKernelOptions::default().dyadic_order(1),
        // Unequal dyadic orders: k(x, x') ≠ k(x', x), so no triangle is taken for the sample.
        SigKernelOptions::default().dyadic_order((1, 2)),
        SigKernelOptions::default()
            .static_kernel(StaticKernel::Rbf { sigma: 0.8 })
            .time_aug(true),
    ];
    for opts in &kernels {
        let (dx, dy) = sig_mmd_backprop(0.7, x.view(), y.view(), opts).unwrap();
        assert_eq!((dx.shape(), dy.shape()), (x.shape(), y.shape()));
        let mmd =
            |a: &ArrayD<f64>, b: &ArrayD<f64>| 0.7 * sig_mmd(a.view(), b.view(), opts).unwrap();
        assert_gradient("sig_mmd sample1", &x, &dx, |a| mmd(a, &y));
        assert_gradient("sig_mmd sample2", &y, &dy, |b| mmd(&x, b));

        let lam = 0.6;
        let derivs = random(&[2, 2], 7);
        let (dx, dy) = sig_score_backprop(derivs.view(), x.view(), y.view(), lam, opts).unwrap();
        let score = |a: &ArrayD<f64>, b: &ArrayD<f64>| {
            (&sig_score(a.view(), b.view(), lam, opts).unwrap() * &derivs).sum()
        };
        assert_gradient("sig_score sample", &x, &dx, |a| score(a, &y));
        assert_gradient("sig_score y", &y, &dy, |b| score(&x, b));

        let (dx, dy) = expected_sig_score_backprop(1.3, x.view(), y.view(), lam, opts).unwrap();
        let expected = |a: &ArrayD<f64>, b: &ArrayD<f64>| {
            1.3 * expected_sig_score(a.view(), b.view(), lam, opts).unwrap()
        };
        assert_gradient("expected_sig_score sample1", &x, &dx, |a| expected(a, &y));
        assert_gradient("expected_sig_score sample2", &y, &dy, |b| expected(&x, b));
    }
}

/// Samples larger than one tile give the gradients of the whole Gram matrices' weighted sums.
#[test]
fn tiled_gradients_equal_the_whole_gram_matrices() {
    let opts = SigKernelOptions::default();
    let (m, n) = (300, 260);
    let (x, y) = (random(&[m, 3, 2], 8) * 0.3, random(&[n, 3, 2], 9) * 0.3);
    let off = |k: usize| {
        Array2::from_shape_fn((k, k), |(i, j)| {
            if i == j {
                0.0
            } else {
                1.0 / (k * (k - 1)) as f64
            }
        })
        .into_dyn()
    };
    let cross = Array2::from_elem((m, n), -2.0 / (m * n) as f64).into_dyn();
    let grad = |w: &ArrayD<f64>, a: &ArrayD<f64>, b: &ArrayD<f64>| {
        sig_kernel_gram_backprop(w.view(), a.view(), b.view(), &opts).unwrap()
    };
    let (xx1, xx2) = grad(&off(m), &x, &x);
    let (yy1, yy2) = grad(&off(n), &y, &y);
    let (xy1, xy2) = grad(&cross, &x, &y);
    let (dx, dy) = sig_mmd_backprop(1.0, x.view(), y.view(), &opts).unwrap();
    assert_close(
        "sample1 gradient",
        &dx,
        &(&(&xx1 + &xx2) + &xy1),
        1e-10,
        1e-12,
    );
    assert_close(
        "sample2 gradient",
        &dy,
        &(&(&yy1 + &yy2) + &xy2),
        1e-10,
        1e-12,
    );
}

#[test]
fn bad_input_is_an_error() {
    let opts = SigKernelOptions::default();
    let (x, one) = (random(&[4, 5, 2], 1), random(&[1, 5, 2], 2));
    assert!(matches!(
        sig_mmd(x.view(), one.view(), &opts),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        sig_score(one.view(), x.view(), 1.0, &opts),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        sig_score(x.view(), x.view(), f64::NAN, &opts),
        Err(Error::Invalid(_))
    ));
    let flat = random(&[5], 3);
    assert!(sig_mmd(x.view(), flat.view(), &opts).is_err());
    let other_dim = random(&[3, 5, 3], 4);
    assert!(sig_mmd(x.view(), other_dim.view(), &opts).is_err());
    let mut nan = x.clone();
    nan[[1, 2, 0]] = f64::NAN;
    assert!(sig_mmd(nan.view(), x.view(), &opts).is_err());
    assert!(sig_mmd_backprop(f64::NAN, x.view(), x.view(), &opts).is_err());
    let wrong = random(&[3], 5);
    assert!(matches!(
        sig_score_backprop(wrong.view(), x.view(), x.view(), 1.0, &opts),
        Err(Error::Invalid(_))
    ));
}
