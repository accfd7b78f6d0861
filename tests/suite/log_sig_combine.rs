//! Products and segments of log-signatures: `log_sig_combine`, `log_sig_join`, `linear_sig`,
//! `linear_log_sig` and their gradients. pySigLib 4.0.0's cases (`tests/data/log_sig_combine`, made
//! by `scripts/log_sig_combine_reference.py`) in f64 and f32; Chen's identity (the combined
//! log-signatures of two pieces are the whole path's); straight segments against `sig` and `log_sig`
//! of the two-point path; gradients against central differences; the errors.

use crate::common::{assert_close, assert_gradient, random, reference_dir, to_f32, to_f64, Case};
use ndarray::{concatenate, s, ArrayD, Axis};
use roughsig::{
    linear_log_sig, linear_log_sig_backprop, linear_sig, linear_sig_backprop, log_sig,
    log_sig_combine, log_sig_combine_backprop, log_sig_join, log_sig_join_backprop, sig, Error,
    LogSigMethod, SigOptions,
};

fn cases(function: &str, count: usize) -> Vec<Case> {
    let cases = Case::all_in(&reference_dir("log_sig_combine"), function);
    assert_eq!(cases.len(), count, "{function} cases");
    cases
}

fn method(case: &Case) -> LogSigMethod {
    LogSigMethod::from_pysiglib(case.usize("method") as i64).unwrap()
}

/// `got` (f64) and `got32` (the same call in f32) against pySigLib's `want`.
fn check(case: &Case, got: &ArrayD<f64>, got32: &ArrayD<f32>, want: &ArrayD<f64>) {
    assert_close(&case.name, got, want, 1e-10, 1e-12);
    assert_close(&case.name, &to_f64(got32), want, 2e-4, 2e-4);
}

#[test]
fn log_sig_combine_matches_pysiglib() {
    for case in &cases("log_sig_combine", 5) {
        let (a, b) = (case.array("log_sig1"), case.array("log_sig2"));
        let (dim, deg, opts) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.options(),
        );
        let got = log_sig_combine(a.view(), b.view(), dim, deg, &opts).unwrap();
        let got32 = log_sig_combine(to_f32(&a).view(), to_f32(&b).view(), dim, deg, &opts).unwrap();
        check(case, &got, &got32, &case.array("log_sig"));
    }
    for case in &cases("log_sig_combine_backprop", 5) {
        let (g, a, b) = (
            case.array("deriv"),
            case.array("log_sig1"),
            case.array("log_sig2"),
        );
        let (dim, deg, opts) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.options(),
        );
        let (da, db) =
            log_sig_combine_backprop(g.view(), a.view(), b.view(), dim, deg, &opts).unwrap();
        let (g32, a32, b32) = (to_f32(&g), to_f32(&a), to_f32(&b));
        let (da32, db32) =
            log_sig_combine_backprop(g32.view(), a32.view(), b32.view(), dim, deg, &opts).unwrap();
        check(case, &da, &da32, &case.array("log_sig1_derivs"));
        check(case, &db, &db32, &case.array("log_sig2_derivs"));
    }
}

#[test]
fn log_sig_join_matches_pysiglib() {
    for case in &cases("log_sig_join", 4) {
        let (l, v) = (case.array("log_sig"), case.array("displacement"));
        let (dim, deg, opts) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.options(),
        );
        let got = log_sig_join(l.view(), v.view(), dim, deg, &opts).unwrap();
        let got32 = log_sig_join(to_f32(&l).view(), to_f32(&v).view(), dim, deg, &opts).unwrap();
        check(case, &got, &got32, &case.array("log_sig_joined"));
    }
    for case in &cases("log_sig_join_backprop", 4) {
        let (g, l, v) = (
            case.array("deriv"),
            case.array("log_sig"),
            case.array("displacement"),
        );
        let (dim, deg, opts) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.options(),
        );
        let (dl, dv) =
            log_sig_join_backprop(g.view(), l.view(), v.view(), dim, deg, &opts).unwrap();
        let (g32, l32, v32) = (to_f32(&g), to_f32(&l), to_f32(&v));
        let (dl32, dv32) =
            log_sig_join_backprop(g32.view(), l32.view(), v32.view(), dim, deg, &opts).unwrap();
        check(case, &dl, &dl32, &case.array("log_sig_derivs"));
        check(case, &dv, &dv32, &case.array("displacement_derivs"));
    }
}

#[test]
fn linear_sig_and_linear_log_sig_match_pysiglib() {
    for case in &cases("linear_sig", 3) {
        let v = case.array("displacement");
        let (dim, deg, opts) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.options(),
        );
        let got = linear_sig(v.view(), dim, deg, &opts).unwrap();
        let got32 = linear_sig(to_f32(&v).view(), dim, deg, &opts).unwrap();
        check(case, &got, &got32, &case.array("sig"));
    }
    for case in &cases("linear_log_sig", 4) {
        let v = case.array("displacement");
        let (dim, deg, opts) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.options(),
        );
        let got = linear_log_sig(v.view(), dim, deg, method(case), &opts).unwrap();
        let got32 = linear_log_sig(to_f32(&v).view(), dim, deg, method(case), &opts).unwrap();
        check(case, &got, &got32, &case.array("log_sig"));
    }
    for case in &cases("linear_log_sig_backprop", 4) {
        let (g, v) = (case.array("deriv"), case.array("displacement"));
        let (dim, deg, opts, m) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.options(),
            method(case),
        );
        let got = linear_log_sig_backprop(g.view(), v.view(), dim, deg, m, &opts).unwrap();
        let (g32, v32) = (to_f32(&g), to_f32(&v));
        let got32 = linear_log_sig_backprop(g32.view(), v32.view(), dim, deg, m, &opts).unwrap();
        check(case, &got, &got32, &case.array("displacement_derivs"));
    }
}

/// Chen's identity in log coordinates: combining the log-signatures of a path's two pieces (the
/// second starting where the first ends) gives the whole path's; joining a segment, the path
/// extended by it.
#[test]
fn combined_pieces_are_the_whole_path() {
    let lyndon = LogSigMethod::Lyndon;
    for (dim, deg, ll) in [(2, 5, false), (3, 3, true), (3, 4, true)] {
        // Lead-lag of the whole path is the lead-lag pieces end to end (time augmentation is not:
        // each piece's clock starts at 0).
        let opts = SigOptions::default().lead_lag(ll);
        let path = random(&[2, 9, dim], 5) * 0.4;
        let (first, second) = (path.slice(s![.., ..5, ..]), path.slice(s![.., 4.., ..]));
        let whole = log_sig(path.view(), deg, lyndon, &opts).unwrap();
        let l1 = log_sig(first, deg, lyndon, &opts).unwrap();
        let l2 = log_sig(second, deg, lyndon, &opts).unwrap();
        let name = format!("{dim} {deg} {ll}");
        let got = log_sig_combine(l1.view(), l2.view(), dim, deg, &opts).unwrap();
        assert_close(&name, &got, &whole, 1e-12, 1e-13);

        let plain = SigOptions::default();
        let v = &path.slice(s![.., 8, ..]) - &path.slice(s![.., 7, ..]);
        let head = log_sig(path.slice(s![.., ..8, ..]), deg, lyndon, &plain).unwrap();
        let want = log_sig(path.view(), deg, lyndon, &plain).unwrap();
        let joined = log_sig_join(head.view(), v.view(), dim, deg, &plain).unwrap();
        assert_close(&name, &joined, &want, 1e-12, 1e-13);
    }
}

/// A straight segment's signature and log-signature are those of the two-point path.
#[test]
fn segments_are_two_point_paths() {
    let v = random(&[3, 2, 3], 7);
    let zeros = ArrayD::<f64>::zeros(vec![3, 2, 1, 3]);
    let path = concatenate(Axis(2), &[zeros.view(), v.view().insert_axis(Axis(2))]).unwrap();
    for st in [false, true] {
        let opts = SigOptions::default().scalar_term(st);
        for deg in [1, 2, 5] {
            let want = sig(path.view(), deg, &opts).unwrap();
            let got = linear_sig(v.view(), 3, deg, &opts).unwrap();
            assert_close(&format!("sig {deg} {st}"), &got, &want, 1e-14, 1e-15);
            for m in [
                LogSigMethod::Expanded,
                LogSigMethod::Words,
                LogSigMethod::Lyndon,
            ] {
                let want = log_sig(path.view(), deg, m, &opts).unwrap();
                let got = linear_log_sig(v.view(), 3, deg, m, &opts).unwrap();
                assert_close(&format!("{m:?} {deg} {st}"), &got, &want, 1e-13, 1e-14);
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let (dim, deg) = (2, 4);
    let opts = SigOptions::default().lead_lag(true);
    let len = roughsig::log_sig_length(dim, deg, &opts).unwrap();
    let (a, b, g) = (
        random(&[2, len], 1) * 0.4,
        random(&[2, len], 2) * 0.4,
        random(&[2, len], 3),
    );
    let (da, db) = log_sig_combine_backprop(g.view(), a.view(), b.view(), dim, deg, &opts).unwrap();
    let combine = |a: &ArrayD<f64>, b: &ArrayD<f64>| {
        (&log_sig_combine(a.view(), b.view(), dim, deg, &opts).unwrap() * &g).sum()
    };
    assert_gradient("combine a", &a, &da, |a| combine(a, &b));
    assert_gradient("combine b", &b, &db, |b| combine(&a, b));

    let plain = SigOptions::default();
    let len = roughsig::log_sig_length(dim, deg, &plain).unwrap();
    let (l, v, g) = (
        random(&[2, len], 4) * 0.4,
        random(&[2, dim], 5),
        random(&[2, len], 6),
    );
    let (dl, dv) = log_sig_join_backprop(g.view(), l.view(), v.view(), dim, deg, &plain).unwrap();
    let join = |l: &ArrayD<f64>, v: &ArrayD<f64>| {
        (&log_sig_join(l.view(), v.view(), dim, deg, &plain).unwrap() * &g).sum()
    };
    assert_gradient("join log_sig", &l, &dl, |l| join(l, &v));
    assert_gradient("join displacement", &v, &dv, |v| join(&l, v));

    let st = SigOptions::default().scalar_term(true);
    let n = roughsig::sig_length(dim, deg, &st).unwrap();
    let g = random(&[2, n], 7);
    let dv = linear_sig_backprop(g.view(), v.view(), dim, deg, &st).unwrap();
    assert_gradient("linear_sig", &v, &dv, |v| {
        (&linear_sig(v.view(), dim, deg, &st).unwrap() * &g).sum()
    });
    for m in [
        LogSigMethod::Expanded,
        LogSigMethod::Words,
        LogSigMethod::Lyndon,
    ] {
        let out = linear_log_sig(v.view(), dim, deg, m, &st).unwrap();
        let g = random(out.shape(), 8);
        let dv = linear_log_sig_backprop(g.view(), v.view(), dim, deg, m, &st).unwrap();
        assert_gradient(&format!("linear_log_sig {m:?}"), &v, &dv, |v| {
            (&linear_log_sig(v.view(), dim, deg, m, &st).unwrap() * &g).sum()
        });
    }
}

#[test]
fn bad_input_is_an_error() {
    let opts = SigOptions::default();
    let (a, v) = (random(&[2, 8], 1), random(&[2, 2], 2));
    let err = |r: roughsig::Result<ArrayD<f64>>| r.unwrap_err();
    let short = random(&[2, 7], 3);
    assert!(matches!(
        err(log_sig_combine(a.view(), short.view(), 2, 4, &opts)),
        Error::Length { .. }
    ));
    let other_batch = random(&[3, 8], 3);
    assert!(matches!(
        err(log_sig_combine(a.view(), other_batch.view(), 2, 4, &opts)),
        Error::BatchMismatch { .. }
    ));
    let mut nan = a.clone();
    nan[[0, 5]] = f64::NAN;
    assert!(matches!(
        err(log_sig_combine(a.view(), nan.view(), 2, 4, &opts)),
        Error::NonFiniteValue { .. }
    ));
    assert!(matches!(
        err(log_sig_combine(a.view(), a.view(), 2, 0, &opts)),
        Error::NotPositive { .. }
    ));
    let v3 = random(&[2, 3], 4);
    assert!(matches!(
        err(log_sig_join(a.view(), v3.view(), 2, 4, &opts)),
        Error::Length { .. }
    ));
    let v_batch = random(&[3, 2], 4);
    assert!(matches!(
        err(log_sig_join(a.view(), v_batch.view(), 2, 4, &opts)),
        Error::BatchMismatch { .. }
    ));
    assert!(matches!(
        err(linear_sig(v3.view(), 2, 4, &opts)),
        Error::Length { .. }
    ));
    let mut v_nan = v.clone();
    v_nan[[1, 1]] = f64::INFINITY;
    assert!(matches!(
        err(linear_sig(v_nan.view(), 2, 4, &opts)),
        Error::NonFiniteValue { .. }
    ));
    assert!(matches!(
        err(linear_log_sig(
            v_nan.view(),
            2,
            4,
            LogSigMethod::Words,
            &opts
        )),
        Error::NonFiniteValue { .. }
    ));
    let g = random(&[2, 9], 5);
    assert!(matches!(
        err(linear_log_sig_backprop(
            g.view(),
            v.view(),
            2,
            4,
            LogSigMethod::Words,
            &opts
        )),
        Error::Length { .. }
    ));
    assert!(matches!(
        err(linear_sig_backprop(g.view(), v.view(), 2, 4, &opts)),
        Error::Length { .. }
    ));
}
