//! `log_sig_to_sig` and its gradient: pySigLib 4.0.0's `logsig_to_sig` cases (`tests/data/
//! log_sig_to_sig`, made by `scripts/log_sig_to_sig_reference.py`) in f64 and f32; the inverse of
//! `log_sig` in every form; the gradient against central differences; the errors.

use crate::common::{assert_close, assert_gradient, random, reference_dir, to_f32, to_f64, Case};
use ndarray::ArrayD;
use roughsig::{
    log_sig, log_sig_to_sig, log_sig_to_sig_backprop, sig, Error, LogSigMethod, SigOptions,
};

fn method(case: &Case) -> LogSigMethod {
    LogSigMethod::from_pysiglib(case.usize("method") as i64).unwrap()
}

#[test]
fn log_sig_to_sig_matches_pysiglib() {
    let dir = reference_dir("log_sig_to_sig");
    let cases = Case::all_in(&dir, "logsig_to_sig");
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let (l, want) = (case.array("log_sig"), case.array("sig"));
        let (dim, deg, opts) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.options(),
        );
        let got = log_sig_to_sig(l.view(), dim, deg, method(case), &opts).unwrap();
        assert_close(&case.name, &got, &want, 1e-10, 1e-12);
        let got32 = log_sig_to_sig(to_f32(&l).view(), dim, deg, method(case), &opts).unwrap();
        assert_close(&case.name, &to_f64(&got32), &want, 2e-4, 2e-4);
    }
}

#[test]
fn log_sig_to_sig_backprop_matches_pysiglib() {
    let dir = reference_dir("log_sig_to_sig");
    let cases = Case::all_in(&dir, "logsig_to_sig_backprop");
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let (l, g, want) = (
            case.array("log_sig"),
            case.array("sig_derivs"),
            case.array("log_sig_derivs"),
        );
        let (dim, deg, opts) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.options(),
        );
        let m = method(case);
        let got = log_sig_to_sig_backprop(l.view(), g.view(), dim, deg, m, &opts).unwrap();
        assert_close(&case.name, &got, &want, 1e-10, 1e-12);
        let (l32, g32) = (to_f32(&l), to_f32(&g));
        let got32 = log_sig_to_sig_backprop(l32.view(), g32.view(), dim, deg, m, &opts).unwrap();
        assert_close(&case.name, &to_f64(&got32), &want, 2e-4, 2e-4);
    }
}

const METHODS: [LogSigMethod; 3] = [
    LogSigMethod::Expanded,
    LogSigMethod::Words,
    LogSigMethod::Lyndon,
];

#[test]
fn log_sig_to_sig_inverts_log_sig() {
    for (dim, deg, ta, ll, st) in [(2, 5, false, false, false), (3, 4, true, true, true)] {
        let opts = SigOptions::default()
            .time_aug(ta)
            .lead_lag(ll)
            .scalar_term(st);
        let paths = random(&[3, 9, dim], 11) * 0.5;
        let want = sig(paths.view(), deg, &opts).unwrap();
        for m in METHODS {
            let l = log_sig(paths.view(), deg, m, &opts).unwrap();
            let s = log_sig_to_sig(l.view(), dim, deg, m, &opts).unwrap();
            assert_close(&format!("{m:?} {dim} {deg}"), &s, &want, 1e-12, 1e-13);
        }
    }
}

#[test]
fn log_sig_to_sig_backprop_matches_finite_differences() {
    let (dim, deg) = (2, 4);
    let opts = SigOptions::default().scalar_term(true);
    for m in METHODS {
        let len = match m {
            LogSigMethod::Expanded => roughsig::sig_length(dim, deg, &opts).unwrap(),
            _ => roughsig::log_sig_length(dim, deg, &opts).unwrap(),
        };
        let l = random(&[2, len], 3) * 0.4;
        let out_len = roughsig::sig_length(dim, deg, &opts).unwrap();
        let g = random(&[2, out_len], 4);
        let f = |l: &ArrayD<f64>| -> f64 {
            let s = log_sig_to_sig(l.view(), dim, deg, m, &opts).unwrap();
            (&s * &g).sum()
        };
        let grad = log_sig_to_sig_backprop(l.view(), g.view(), dim, deg, m, &opts).unwrap();
        assert_gradient(&format!("{m:?}"), &l, &grad, f);
    }
}

#[test]
fn log_sig_to_sig_errors() {
    let opts = SigOptions::default();
    let l = random(&[2, 8], 1);
    let words = LogSigMethod::Words;
    let err = |r: roughsig::Result<ArrayD<f64>>| r.unwrap_err();
    assert!(matches!(
        err(log_sig_to_sig(l.view(), 2, 3, words, &opts)),
        Error::Length { .. }
    ));
    assert!(matches!(
        err(log_sig_to_sig(l.view(), 2, 0, words, &opts)),
        Error::NotPositive { .. }
    ));
    let mut nan = l.clone();
    nan[[1, 3]] = f64::NAN;
    assert!(matches!(
        err(log_sig_to_sig(nan.view(), 2, 4, words, &opts)),
        Error::NonFiniteValue { .. }
    ));
    let g = random(&[3, 30], 2);
    assert!(matches!(
        err(log_sig_to_sig_backprop(
            l.view(),
            g.view(),
            2,
            4,
            words,
            &opts
        )),
        Error::BatchMismatch { .. }
    ));
    let g = random(&[2, 29], 2);
    assert!(matches!(
        err(log_sig_to_sig_backprop(
            l.view(),
            g.view(),
            2,
            4,
            words,
            &opts
        )),
        Error::Length { .. }
    ));
}
