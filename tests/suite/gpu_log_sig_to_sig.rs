//! `log_sig_to_sig` and its gradient on the GPU (the Lie elements expanded and exponentiated on the
//! device) against the CPU in f64, in every form, with and without scalar terms, across the test
//! chunk of rows; pySigLib's cases; the dispatches each form adds. Skipped like the other GPU tests without an adapter.

use crate::common::gpu::{gpu, CHUNK};
use crate::common::{assert_close, random, reference_dir, to_f32, to_f64, Case};
use ndarray::ArrayD;
use roughsig::{log_sig_to_sig, log_sig_to_sig_backprop, Device, LogSigMethod, SigOptions};

const METHODS: [LogSigMethod; 3] = [
    LogSigMethod::Expanded,
    LogSigMethod::Words,
    LogSigMethod::Lyndon,
];

/// Log-signatures of `batch` random paths in form `method` (their scalar slot random when
/// `scalar_term`, as a user's array may hold anything there) and random derivatives of the
/// signatures.
fn inputs(
    batch: usize,
    dim: usize,
    degree: usize,
    method: LogSigMethod,
    opts: &SigOptions,
) -> (ArrayD<f64>, ArrayD<f64>) {
    let seed = (batch * 131 + dim * 17 + degree) as u64;
    let paths = random(&[batch, 6, dim], seed) * 0.4;
    let cpu = opts.clone().device(Device::Cpu);
    let logs = roughsig::log_sig(paths.view(), degree, method, &cpu).unwrap();
    let sigs = roughsig::sig(paths.view(), degree, &cpu).unwrap();
    (logs, random(sigs.shape(), seed + 1))
}

fn check(device: &Device, f64: bool, batch: usize, dim: usize, degree: usize, st: bool) {
    let opts = SigOptions::default().scalar_term(st);
    let (cpu, on_gpu) = (
        opts.clone().device(Device::Cpu),
        opts.device(device.clone()),
    );
    for method in METHODS {
        let what = format!("batch {batch}, dim {dim}, degree {degree}, {method:?}, st {st}");
        let (l, g) = inputs(batch, dim, degree, method, &cpu);
        let want = log_sig_to_sig(l.view(), dim, degree, method, &cpu).unwrap();
        let want_d =
            log_sig_to_sig_backprop(l.view(), g.view(), dim, degree, method, &cpu).unwrap();

        let got = log_sig_to_sig(to_f32(&l).view(), dim, degree, method, &on_gpu).unwrap();
        assert!(
            roughsig::last_backend().is_some_and(|b| b.is_gpu()),
            "{what}"
        );
        assert_close(&format!("f32 {what}"), &to_f64(&got), &want, 1e-4, 1e-5);
        let got_d = log_sig_to_sig_backprop(
            to_f32(&l).view(),
            to_f32(&g).view(),
            dim,
            degree,
            method,
            &on_gpu,
        )
        .unwrap();
        assert!(
            roughsig::last_backend().is_some_and(|b| b.is_gpu()),
            "{what}"
        );
        assert_close(
            &format!("backprop f32 {what}"),
            &to_f64(&got_d),
            &want_d,
            1e-4,
            1e-5,
        );
        if f64 {
            let got = log_sig_to_sig(l.view(), dim, degree, method, &on_gpu).unwrap();
            assert_close(&format!("f64 {what}"), &got, &want, 1e-12, 1e-13);
            let got_d =
                log_sig_to_sig_backprop(l.view(), g.view(), dim, degree, method, &on_gpu).unwrap();
            assert_close(
                &format!("backprop f64 {what}"),
                &got_d,
                &want_d,
                1e-12,
                1e-13,
            );
        }
    }
}

#[test]
fn log_sig_to_sig_matches_the_cpu() {
    let Some((device, f64)) = gpu() else { return };
    for (batch, dim, degree, st) in [
        (1, 1, 1, false),
        (2, 2, 4, true),
        (3, 3, 3, false),
        (2, 2, 6, false),
        (1, 4, 2, true),
    ] {
        check(&device, f64, batch, dim, degree, st);
    }
    // More rows than one dispatch holds in these tests.
    check(&device, f64, CHUNK + 3, 2, 3, true);
}

/// The words form is solved into bracket coordinates on the device (one dispatch more than the
/// bracket form, forward and backward), and both Lyndon forms expand the coordinates there (one
/// dispatch more than the expanded form).
#[test]
fn log_sig_to_sig_expands_and_solves_on_the_device() {
    let Some((device, _)) = gpu() else { return };
    let opts = SigOptions::default().device(device);
    let dispatches = |method| {
        let (l, g) = inputs(4, 3, 4, method, &SigOptions::default());
        let (l, g) = (to_f32(&l), to_f32(&g));
        log_sig_to_sig(l.view(), 3, 4, method, &opts).unwrap();
        let forward = roughsig::gpu::last_gpu_report().unwrap();
        assert_eq!(forward.op, "log_sig_to_sig");
        log_sig_to_sig_backprop(l.view(), g.view(), 3, 4, method, &opts).unwrap();
        let backward = roughsig::gpu::last_gpu_report().unwrap();
        assert_eq!(backward.op, "log_sig_to_sig_backprop");
        (forward.dispatches, backward.dispatches)
    };
    let expanded = dispatches(LogSigMethod::Expanded);
    let lyndon = dispatches(LogSigMethod::Lyndon);
    let words = dispatches(LogSigMethod::Words);
    // Forward: 3 chain steps and the output for degree 4; backward: 3 chain steps and 4 reverse steps.
    assert_eq!(expanded, (4, 7));
    assert_eq!(lyndon, (expanded.0 + 1, expanded.1 + 2));
    assert_eq!(words, (lyndon.0 + 1, lyndon.1 + 2));
}

/// pySigLib's `logsig_to_sig` cases and their gradients, run on the GPU in f32 (and f64 where the
/// adapter has it) within the CPU's tolerances.
#[test]
fn log_sig_to_sig_golden_cases_on_the_gpu() {
    let Some((device, f64)) = gpu() else { return };
    let dir = reference_dir("log_sig_to_sig");
    let method = |case: &Case| LogSigMethod::from_pysiglib(case.usize("method") as i64).unwrap();
    for function in ["logsig_to_sig", "logsig_to_sig_backprop"] {
        let cases = Case::all_in(&dir, function);
        assert_eq!(cases.len(), 12, "{function}");
        for case in &cases {
            let (dim, degree) = (case.usize("dimension"), case.usize("degree"));
            let opts = case.options().device(device.clone());
            let l = case.array("log_sig");
            let run32 = |l: &ArrayD<f64>| -> ArrayD<f64> {
                let l = to_f32(l);
                let got = match function {
                    "logsig_to_sig" => log_sig_to_sig(l.view(), dim, degree, method(case), &opts),
                    _ => {
                        let g = to_f32(&case.array("sig_derivs"));
                        log_sig_to_sig_backprop(
                            l.view(),
                            g.view(),
                            dim,
                            degree,
                            method(case),
                            &opts,
                        )
                    }
                };
                to_f64(&got.unwrap())
            };
            let want = match function {
                "logsig_to_sig" => case.array("sig"),
                _ => case.array("log_sig_derivs"),
            };
            assert_close(&case.name, &run32(&l), &want, 2e-4, 2e-4);
            if f64 {
                let got = match function {
                    "logsig_to_sig" => log_sig_to_sig(l.view(), dim, degree, method(case), &opts),
                    _ => {
                        let g = case.array("sig_derivs");
                        log_sig_to_sig_backprop(
                            l.view(),
                            g.view(),
                            dim,
                            degree,
                            method(case),
                            &opts,
                        )
                    }
                };
                assert_close(&case.name, &got.unwrap(), &want, 1e-10, 1e-12);
            }
        }
    }
}
