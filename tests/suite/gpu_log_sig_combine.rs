//! `log_sig_combine` and `log_sig_join` with their gradients on the GPU (the whole chain on the
//! device): pySigLib's cases in f32 (and f64 where the adapter has it) within the CPU's tolerances;
//! random rows against the CPU across the test chunk of rows; what a call moves. Skipped like the
//! other GPU tests without an adapter.

use crate::common::gpu::{gpu, CHUNK};
use crate::common::{assert_close, random, reference_dir, to_f32, to_f64, Case};
use ndarray::ArrayD;
use roughsig::{
    log_sig_combine, log_sig_combine_backprop, log_sig_join, log_sig_join_backprop, Device,
    SigOptions,
};

/// The named arrays of a case, `f` applied to each.
fn arrays<A>(case: &Case, names: &[&str], f: impl Fn(ArrayD<f64>) -> A) -> Vec<A> {
    names.iter().map(|n| f(case.array(n))).collect()
}

fn pair<A>((a, b): (A, A)) -> Vec<A> {
    vec![a, b]
}

/// Runs `op` on the case's inputs in f32 (and f64 when `f64`) and compares each output with the
/// case's arrays `outputs`.
fn check_case(
    case: &Case,
    f64: bool,
    inputs: &[&str],
    outputs: &[&str],
    op32: impl Fn(&[ArrayD<f32>]) -> Vec<ArrayD<f32>>,
    op64: impl Fn(&[ArrayD<f64>]) -> Vec<ArrayD<f64>>,
) {
    let want = arrays(case, outputs, |a| a);
    let got32 = op32(&arrays(case, inputs, |a| to_f32(&a)));
    for (g, w) in got32.iter().zip(&want) {
        assert_close(&format!("{} f32", case.name), &to_f64(g), w, 2e-4, 2e-4);
    }
    assert!(roughsig::last_backend().is_some_and(|b| b.is_gpu()));
    if f64 {
        let got = op64(&arrays(case, inputs, |a| a));
        for (g, w) in got.iter().zip(&want) {
            assert_close(&format!("{} f64", case.name), g, w, 1e-10, 1e-12);
        }
    }
}

#[test]
fn log_sig_combine_and_join_golden_cases_on_the_gpu() {
    let Some((device, f64)) = gpu() else { return };
    let dir = reference_dir("log_sig_combine");
    let all = |function: &str, count: usize| {
        let cases = Case::all_in(&dir, function);
        assert_eq!(cases.len(), count, "{function}");
        cases
    };
    let shape = |case: &Case| {
        let opts = case.options().device(device.clone());
        (case.usize("dimension"), case.usize("degree"), opts)
    };
    for case in &all("log_sig_combine", 5) {
        let (d, n, o) = shape(case);
        check_case(
            case,
            f64,
            &["log_sig1", "log_sig2"],
            &["log_sig"],
            |x| vec![log_sig_combine(x[0].view(), x[1].view(), d, n, &o).unwrap()],
            |x| vec![log_sig_combine(x[0].view(), x[1].view(), d, n, &o).unwrap()],
        );
    }
    for case in &all("log_sig_combine_backprop", 5) {
        let (d, n, o) = shape(case);
        check_case(
            case,
            f64,
            &["deriv", "log_sig1", "log_sig2"],
            &["log_sig1_derivs", "log_sig2_derivs"],
            |x| {
                pair(
                    log_sig_combine_backprop(x[0].view(), x[1].view(), x[2].view(), d, n, &o)
                        .unwrap(),
                )
            },
            |x| {
                pair(
                    log_sig_combine_backprop(x[0].view(), x[1].view(), x[2].view(), d, n, &o)
                        .unwrap(),
                )
            },
        );
    }
    for case in &all("log_sig_join", 4) {
        let (d, n, o) = shape(case);
        check_case(
            case,
            f64,
            &["log_sig", "displacement"],
            &["log_sig_joined"],
            |x| vec![log_sig_join(x[0].view(), x[1].view(), d, n, &o).unwrap()],
            |x| vec![log_sig_join(x[0].view(), x[1].view(), d, n, &o).unwrap()],
        );
    }
    for case in &all("log_sig_join_backprop", 4) {
        let (d, n, o) = shape(case);
        check_case(
            case,
            f64,
            &["deriv", "log_sig", "displacement"],
            &["log_sig_derivs", "displacement_derivs"],
            |x| {
                pair(
                    log_sig_join_backprop(x[0].view(), x[1].view(), x[2].view(), d, n, &o).unwrap(),
                )
            },
            |x| {
                pair(
                    log_sig_join_backprop(x[0].view(), x[1].view(), x[2].view(), d, n, &o).unwrap(),
                )
            },
        );
    }
}

#[test]
fn log_sig_combine_matches_the_cpu() {
    let Some((device, f64)) = gpu() else { return };
    let cpu = SigOptions::default().device(Device::Cpu);
    let on_gpu = SigOptions::default().device(device);
    for (batch, dim, degree) in [
        (1, 1, 3),
        (2, 2, 4),
        (3, 3, 3),
        (2, 2, 6),
        (CHUNK + 3, 2, 3),
    ] {
        let what = format!("batch {batch}, dim {dim}, degree {degree}");
        let len = roughsig::log_sig_length(dim, degree, &cpu).unwrap();
        let seed = (batch * 31 + dim * 7 + degree) as u64;
        let (a, b, g) = (
            random(&[batch, len], seed) * 0.5,
            random(&[batch, len], seed + 1) * 0.5,
            random(&[batch, len], seed + 2),
        );
        let want = log_sig_combine(a.view(), b.view(), dim, degree, &cpu).unwrap();
        let (want_a, want_b) =
            log_sig_combine_backprop(g.view(), a.view(), b.view(), dim, degree, &cpu).unwrap();
        let (a32, b32, g32) = (to_f32(&a), to_f32(&b), to_f32(&g));
        let got = log_sig_combine(a32.view(), b32.view(), dim, degree, &on_gpu).unwrap();
        assert!(
            roughsig::last_backend().is_some_and(|b| b.is_gpu()),
            "{what}"
        );
        // Only the coordinates cross: both factors up, the product down.
        let report = roughsig::gpu::last_gpu_report().unwrap();
        assert_eq!(report.op, "log_sig_combine");
        assert_eq!(
            report.bytes_downloaded as usize,
            4 * batch * len,
            "{what}: {report:?}"
        );
        assert_close(&format!("f32 {what}"), &to_f64(&got), &want, 1e-4, 1e-5);
        let (got_a, got_b) =
            log_sig_combine_backprop(g32.view(), a32.view(), b32.view(), dim, degree, &on_gpu)
                .unwrap();
        assert_close(
            &format!("d1 f32 {what}"),
            &to_f64(&got_a),
            &want_a,
            1e-4,
            1e-5,
        );
        assert_close(
            &format!("d2 f32 {what}"),
            &to_f64(&got_b),
            &want_b,
            1e-4,
            1e-5,
        );
        if f64 {
            let got = log_sig_combine(a.view(), b.view(), dim, degree, &on_gpu).unwrap();
            assert_close(&format!("f64 {what}"), &got, &want, 1e-12, 1e-13);
            let (got_a, got_b) =
                log_sig_combine_backprop(g.view(), a.view(), b.view(), dim, degree, &on_gpu)
                    .unwrap();
            assert_close(&format!("d1 f64 {what}"), &got_a, &want_a, 1e-12, 1e-13);
            assert_close(&format!("d2 f64 {what}"), &got_b, &want_b, 1e-12, 1e-13);
        }
    }
}
