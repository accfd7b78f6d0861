//! `sig_corrected`, `sig_corrected_backprop` and `log_sig_corrected`: pySigLib 4.0.0's cases
//! (`tests/data/correction`, made by `scripts/correction_reference.py`) in f64 and f32; what needs
//! no reference (a zero correction is the plain signature, level 2 adds the corrections, Chen's
//! identity across a split path); gradients against central differences; the errors.

use crate::common::{assert_close, assert_gradient, random, reference_dir, to_f32, to_f64, Case};
use ndarray::{s, Array1, Array2, ArrayD, Axis, IxDyn};
use roughsig::{
    log_sig, log_sig_corrected, sig, sig_combine, sig_corrected, sig_corrected_backprop, Error,
    LogSigMethod, SigOptions,
};

fn cases(function: &str) -> Vec<Case> {
    Case::all_in(&reference_dir("correction"), function)
}

#[test]
fn sig_and_log_sig_match_pysiglib() {
    let (sigs, logs) = (cases("sig"), cases("log_sig"));
    assert_eq!((sigs.len(), logs.len()), (6, 4));
    for case in sigs.iter().chain(&logs) {
        let (path, c) = (case.array("path"), case.array("correction"));
        let (opts, degree) = (case.options(), case.usize("degree"));
        let (got, got32, want) = if case.json["function"] == "sig" {
            (
                sig_corrected(path.view(), c.view(), degree, &opts).unwrap(),
                sig_corrected(to_f32(&path).view(), to_f32(&c).view(), degree, &opts).unwrap(),
                case.array("sig"),
            )
        } else {
            let method = LogSigMethod::from_pysiglib(case.usize("method") as i64).unwrap();
            let (p32, c32) = (to_f32(&path), to_f32(&c));
            (
                log_sig_corrected(path.view(), c.view(), degree, method, &opts).unwrap(),
                log_sig_corrected(p32.view(), c32.view(), degree, method, &opts).unwrap(),
                case.array("log_sig"),
            )
        };
        assert_close(&case.name, &got, &want, 1e-10, 1e-12);
        assert_close(&case.name, &to_f64(&got32), &want, 2e-4, 2e-4);
    }
}

#[test]
fn sig_backprop_matches_pysiglib() {
    let all = cases("sig_backprop");
    assert_eq!(all.len(), 6);
    for case in &all {
        let (path, c) = (case.array("path"), case.array("correction"));
        let (s, ds) = (case.array("sig"), case.array("sig_derivs"));
        let (opts, degree) = (case.options(), case.usize("degree"));
        let got = sig_corrected_backprop(path.view(), c.view(), s.view(), ds.view(), degree, &opts)
            .unwrap();
        assert_close(&case.name, &got, &case.array("grad"), 1e-10, 1e-12);
        let (p32, c32, s32, ds32) = (to_f32(&path), to_f32(&c), to_f32(&s), to_f32(&ds));
        let got32 = sig_corrected_backprop(
            p32.view(),
            c32.view(),
            s32.view(),
            ds32.view(),
            degree,
            &opts,
        )
        .unwrap();
        assert_close(&case.name, &to_f64(&got32), &case.array("grad"), 2e-4, 2e-4);
    }
}

/// `d² + … + d^m`: a correction row of levels 2 to m.
fn width(d: usize, m: usize) -> usize {
    (2..=m).map(|k| d.pow(k as u32)).sum()
}

#[test]
fn zero_and_empty_corrections_are_the_plain_signature() {
    let path = random(&[3, 6, 2], 1);
    for opts in [SigOptions::default(), SigOptions::default().time_aug(true)] {
        let plain = sig(path.view(), 4, &opts).unwrap();
        let zero = Array1::<f64>::zeros(width(2, 3));
        let got = sig_corrected(path.view(), zero.view(), 4, &opts).unwrap();
        assert_close("zero correction", &got, &plain, 1e-13, 1e-14);
        let empty = Array1::<f64>::zeros(0);
        assert_eq!(
            sig_corrected(path.view(), empty.view(), 4, &opts).unwrap(),
            plain
        );
        let logs = log_sig(path.view(), 4, LogSigMethod::Lyndon, &opts).unwrap();
        let got = log_sig_corrected(path.view(), zero.view(), 4, LogSigMethod::Lyndon, &opts);
        assert_close("zero correction", &got.unwrap(), &logs, 1e-12, 1e-13);
    }
}

#[test]
fn level_two_adds_every_segments_correction() {
    // Level 2 of Chen's product is linear in each segment's level 2, so a level-2 correction adds
    // the sum of the segments' rows, whatever the path; level 1 is unchanged.
    let (d, length) = (3, 7);
    let path = random(&[length, d], 2);
    let c = random(&[length - 1, d * d], 3);
    let opts = SigOptions::default();
    let plain = sig(path.view(), 2, &opts).unwrap();
    let got = sig_corrected(path.view(), c.view(), 2, &opts).unwrap();
    let mut want = plain.clone();
    let total = c.sum_axis(Axis(0));
    want.slice_mut(s![d..]).zip_mut_with(&total, |w, t| *w += t);
    assert_close("level 2", &got, &want, 1e-12, 1e-13);
}

#[test]
fn chens_identity_holds_across_a_split() {
    // The signature of the whole path is the product of its two halves', each half taking its
    // segments' correction rows.
    let (d, degree, length, split) = (2, 4, 9, 4);
    let path = random(&[length, d], 4);
    let c = random(&[length - 1, width(d, 3)], 5).mapv(|v| 0.3 * v);
    let opts = SigOptions::default();
    let whole = sig_corrected(path.view(), c.view(), degree, &opts).unwrap();
    let first = sig_corrected(
        path.slice(s![..=split, ..]),
        c.slice(s![..split, ..]),
        degree,
        &opts,
    )
    .unwrap();
    let second = sig_corrected(
        path.slice(s![split.., ..]),
        c.slice(s![split.., ..]),
        degree,
        &opts,
    )
    .unwrap();
    let joined = sig_combine(first.view(), second.view(), d, degree, &opts).unwrap();
    assert_close("Chen", &joined, &whole, 1e-12, 1e-13);
}

#[test]
fn gradients_agree_with_finite_differences() {
    for (opts, m, per_path) in [
        (SigOptions::default(), 2, false),
        (SigOptions::default().time_aug(true).end_time(1.5), 3, true),
        (SigOptions::default().scalar_term(true), 3, false),
    ] {
        let (batch, length, d, degree) = (2, 5, 2, 3);
        let path = random(&[batch, length, d], 6);
        let c = if per_path {
            random(&[batch, length - 1, width(d, m)], 7)
        } else {
            random(&[width(d, m)], 7)
        };
        let f = |x: &ArrayD<f64>| -> ArrayD<f64> {
            sig_corrected(x.view(), c.view(), degree, &opts).unwrap()
        };
        let s = f(&path);
        let weights = random(s.shape(), 8);
        let grad = sig_corrected_backprop(
            path.view(),
            c.view(),
            s.view(),
            weights.view(),
            degree,
            &opts,
        )
        .unwrap();
        assert_eq!(grad.shape(), path.shape());
        assert_gradient("sig_corrected", &path, &grad, |x| (&f(x) * &weights).sum());
    }
}

#[test]
fn bad_corrections_are_errors() {
    let path = random(&[2, 5, 2], 9);
    let opts = SigOptions::default();
    let row = Array1::<f64>::zeros(width(2, 2));
    let invalid = |r: roughsig::Result<ArrayD<f64>>, what: &str| match r {
        Err(Error::Invalid(msg)) => assert!(msg.contains(what), "{msg}"),
        other => panic!("expected an Invalid error about {what}, got {other:?}"),
    };
    // A width that is not whole levels, levels past the degree, degree 1.
    invalid(
        sig_corrected(path.view(), Array1::zeros(5).view(), 3, &opts),
        "whole levels",
    );
    invalid(
        sig_corrected(path.view(), Array1::zeros(width(2, 3)).view(), 2, &opts),
        "whole levels",
    );
    invalid(sig_corrected(path.view(), row.view(), 1, &opts), "degree 2");
    // Rows for the wrong number of segments or paths.
    invalid(
        sig_corrected(path.view(), Array2::zeros((3, 4)).view(), 3, &opts),
        "shape",
    );
    let wrong_batch = ArrayD::<f64>::zeros(IxDyn(&[3, 4, 4]));
    invalid(
        sig_corrected(path.view(), wrong_batch.view(), 3, &opts),
        "shape",
    );
    invalid(
        sig_corrected(path.view(), row.view(), 3, &opts.clone().lead_lag(true)),
        "lead_lag",
    );
    let mut nan = row.clone();
    nan[1] = f64::NAN;
    assert!(matches!(
        sig_corrected(path.view(), nan.view(), 3, &opts),
        Err(Error::NonFiniteValue {
            what: "correction",
            ..
        })
    ));
}
