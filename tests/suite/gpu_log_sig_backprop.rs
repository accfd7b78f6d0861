//! `log_sig_backprop` and `sig_to_log_sig_backprop` on the GPU (the reverse tensor logarithm chained
//! to the reverse sweep on the device) against the CPU, in every form, with the path transforms and
//! across the test chunk of rows; and the device-resident training step. Skipped like the other GPU
//! tests without an adapter.

use crate::common::gpu::{gpu, CHUNK};
use crate::common::{assert_close, random, to_f32, to_f64};
use ndarray::ArrayD;
use roughsig::{Device, LogSigMethod, SigOptions};

const METHODS: [LogSigMethod; 3] = [
    LogSigMethod::Expanded,
    LogSigMethod::Words,
    LogSigMethod::Lyndon,
];

fn with(device: Device, opts: &SigOptions) -> SigOptions {
    opts.clone().device(device)
}

/// Both gradients on the GPU (f32, and f64 where the adapter has it) against the CPU in f64.
fn check(
    device: &Device,
    f64: bool,
    batch: usize,
    length: usize,
    dim: usize,
    degree: usize,
    opts: &SigOptions,
) {
    let seed = (batch * 7919 + length * 131 + dim * 17 + degree) as u64;
    let path = random(&[batch, length, dim], seed) / (length as f64).sqrt();
    let (cpu, on_gpu) = (with(Device::Cpu, opts), with(device.clone(), opts));
    for method in METHODS {
        let what = format!(
            "batch {batch}, length {length}, dim {dim}, degree {degree}, {method:?}, {opts:?}"
        );
        let logs = roughsig::log_sig(path.view(), degree, method, &cpu).unwrap();
        let g = random(logs.shape(), seed + 1);
        let want = roughsig::log_sig_backprop(path.view(), g.view(), degree, method, &cpu).unwrap();
        let sigs = roughsig::sig(path.view(), degree, &cpu).unwrap();
        let gs = if method == LogSigMethod::Expanded {
            random(sigs.shape(), seed + 2)
        } else {
            g.clone()
        };
        let want_s =
            roughsig::sig_to_log_sig_backprop(sigs.view(), gs.view(), dim, degree, method, &cpu)
                .unwrap();

        let got = roughsig::log_sig_backprop(
            to_f32(&path).view(),
            to_f32(&g).view(),
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
            &format!("log_sig_backprop f32 {what}"),
            &to_f64(&got),
            &want,
            2e-3,
            2e-4,
        );
        let got_s = roughsig::sig_to_log_sig_backprop(
            to_f32(&sigs).view(),
            to_f32(&gs).view(),
            dim,
            degree,
            method,
            &on_gpu,
        )
        .unwrap();
        assert_close(
            &format!("sig_to_log_sig_backprop f32 {what}"),
            &to_f64(&got_s),
            &want_s,
            1e-4,
            1e-4,
        );
        if f64 {
            let got =
                roughsig::log_sig_backprop(path.view(), g.view(), degree, method, &on_gpu).unwrap();
            assert_close(
                &format!("log_sig_backprop f64 {what}"),
                &got,
                &want,
                1e-10,
                1e-12,
            );
            let got_s = roughsig::sig_to_log_sig_backprop(
                sigs.view(),
                gs.view(),
                dim,
                degree,
                method,
                &on_gpu,
            )
            .unwrap();
            assert_close(
                &format!("sig_to_log_sig_backprop f64 {what}"),
                &got_s,
                &want_s,
                1e-10,
                1e-12,
            );
        }
    }
}

#[test]
fn log_sig_backprop_matches_the_cpu() {
    let Some((device, f64)) = gpu() else { return };
    let plain = SigOptions::default();
    for (batch, length, dim, degree) in [
        (1, 2, 1, 1),
        (2, 9, 2, 4),
        (3, 20, 3, 3),
        (2, 6, 2, 6),
        (1, 5, 4, 2),
    ] {
        check(&device, f64, batch, length, dim, degree, &plain);
    }
    let transforms = SigOptions::default()
        .time_aug(true)
        .lead_lag(true)
        .scalar_term(true);
    check(&device, f64, 2, 7, 2, 3, &transforms);
    // More rows than one dispatch holds in these tests.
    check(&device, f64, CHUNK + 3, 4, 2, 3, &plain);
}

/// A training step with the data on the device: signatures, log-signatures and the path gradient of
/// a loss on them, with only the log-signatures and the gradient moving.
#[test]
fn log_sig_backprop_from_resident_signatures_matches_the_host_api() {
    let Some((device, _)) = gpu() else { return };
    let paths = to_f32(&random(&[6, 30, 3], 21));
    let opts = with(device, &SigOptions::default().time_aug(true));
    let resident = roughsig::gpu::GpuPaths::new(paths.view(), &opts).unwrap();
    let sigs = resident.sig(3).unwrap();
    for method in METHODS {
        let logs = sigs.log_sig(method).unwrap();
        let g: ArrayD<f32> = logs.mapv(|x| x.cos());
        let got = sigs.log_sig_backprop(method, g.view()).unwrap();
        let report = roughsig::gpu::last_gpu_report().unwrap();
        assert_eq!(report.op, "log_sig_backprop");
        assert_eq!(
            report.bytes_downloaded as usize,
            4 * paths.len().next_multiple_of(1),
            "{report:?}"
        );
        let want = roughsig::log_sig_backprop(paths.view(), g.view(), 3, method, &opts).unwrap();
        assert_close(
            &format!("{method:?}"),
            &to_f64(&got),
            &to_f64(&want),
            1e-5,
            1e-6,
        );
    }
    // Derivatives of the wrong shape are an error, not a panic.
    let wrong = ndarray::Array2::<f32>::zeros((5, 3));
    assert!(sigs
        .log_sig_backprop(LogSigMethod::Words, wrong.view())
        .is_err());
}

/// The bracket form's triangular solve runs on the device, as one more dispatch after the words'
/// form (forward), or before the reverse logarithm (backward).
#[test]
fn lyndon_brackets_are_solved_on_the_device() {
    let Some((device, _)) = gpu() else { return };
    let paths = to_f32(&random(&[4, 12, 3], 31));
    let opts = with(device, &SigOptions::default());
    let dispatches = |method| {
        let logs = roughsig::log_sig(paths.view(), 4, method, &opts).unwrap();
        let forward = roughsig::gpu::last_gpu_report().unwrap().dispatches;
        roughsig::log_sig_backprop(paths.view(), logs.view(), 4, method, &opts).unwrap();
        let backward = roughsig::gpu::last_gpu_report().unwrap().dispatches;
        (forward, backward)
    };
    let (words, lyndon) = (
        dispatches(LogSigMethod::Words),
        dispatches(LogSigMethod::Lyndon),
    );
    assert_eq!(
        (lyndon.0, lyndon.1),
        (words.0 + 1, words.1 + 1),
        "{words:?} {lyndon:?}"
    );
}
