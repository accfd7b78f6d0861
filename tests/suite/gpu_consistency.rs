//! Real dispatches against the CPU drivers: a grid of shapes and options for `sig_forward`,
//! `sig_backward` and `log_sig` (`sig_forward` then `tensor_series`, every method), in f32 and f64, and
//! the pySigLib golden cases on the GPU. The signature kernels' are in `gpu_sig_kernel.rs`.
//!
//! Skipped (with a message on stderr, shown even when output is captured) where no GPU adapter exists; `ROUGHSIG_REQUIRE_GPU=1` turns the
//! skip into a failure. The adapter is the one `ROUGHSIG_ADAPTER` names, else the most capable one
//! (lavapipe included). f64 checks are skipped, with a message, on adapters without f64.

use crate::common::{assert_close, expect_overflow, random, to_f32, to_f64, Case};
use ndarray::ArrayD;
use roughsig::{Device, LogSigMethod, SigOptions};

const METHODS: [LogSigMethod; 3] = [
    LogSigMethod::Expanded,
    LogSigMethod::Words,
    LogSigMethod::Lyndon,
];

use crate::common::gpu::{gpu, CHUNK};

fn on(device: &Device, opts: &SigOptions) -> SigOptions {
    opts.clone().device(device.clone())
}

fn cpu(opts: &SigOptions) -> SigOptions {
    opts.clone().device(Device::Cpu)
}

/// One grid point: forward and backward on the GPU (f32 always, f64 when the adapter has it) against
/// the CPU in f64. Paths are scaled to unit size (|increment| ~ 1/sqrt(length)).
fn check(
    device: &Device,
    f64: bool,
    batch: usize,
    length: usize,
    dim: usize,
    degree: usize,
    opts: &SigOptions,
) {
    let what = format!("batch {batch}, length {length}, dim {dim}, degree {degree}, {opts:?}");
    let seed = (batch * 1_000_003 + length * 1009 + dim * 101 + degree) as u64;
    let path = random(&[batch, length, dim], seed) / (length.max(1) as f64).sqrt();
    let want = roughsig::sig(path.view(), degree, &cpu(opts)).unwrap();
    let derivs = random(want.shape(), seed + 1);
    let want_grad =
        roughsig::sig_backprop(path.view(), want.view(), derivs.view(), degree, &cpu(opts))
            .unwrap();

    if f64 {
        let got = roughsig::sig(path.view(), degree, &on(device, opts)).unwrap();
        assert_close(
            &format!("sig_forward f64, {what}"),
            &got,
            &want,
            1e-10,
            1e-10,
        );
        let got = roughsig::sig_backprop(
            path.view(),
            want.view(),
            derivs.view(),
            degree,
            &on(device, opts),
        )
        .unwrap();
        assert_close(
            &format!("sig_backward f64, {what}"),
            &got,
            &want_grad,
            1e-10,
            1e-10,
        );
    }

    // f32: absolute tolerance ~1e-4 for unit-scale paths, growing with the number of steps and levels.
    let steps = length.saturating_sub(1) * (1 + opts.transform.lead_lag as usize);
    let tol = 2e-5 * (1.0 + (steps as f64).sqrt()) * (1.0 + degree as f64);
    let got = roughsig::sig(to_f32(&path).view(), degree, &on(device, opts)).unwrap();
    assert_abs(
        &format!("sig_forward f32, {what}"),
        &to_f64(&got),
        &want,
        tol,
    );
    let got = roughsig::sig_backprop(
        to_f32(&path).view(),
        to_f32(&want).view(),
        to_f32(&derivs).view(),
        degree,
        &on(device, opts),
    )
    .unwrap();
    assert_abs(
        &format!("sig_backward f32, {what}"),
        &to_f64(&got),
        &want_grad,
        tol * 4.0,
    );
}

/// `|got - want| <= tol · max(1, max|want|)` element by element.
fn assert_abs(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}[{i}]: got {g}, want {w} (tolerance {:e})",
            tol * scale
        );
    }
}

/// The four time-augmentation / lead-lag combinations; the scalar term and end time vary with them.
fn option_grid() -> Vec<SigOptions> {
    [(false, false), (true, false), (false, true), (true, true)]
        .into_iter()
        .enumerate()
        .map(|(i, (time_aug, lead_lag))| {
            SigOptions::default()
                .time_aug(time_aug)
                .lead_lag(lead_lag)
                .end_time(if i % 2 == 0 { 1.0 } else { 2.5 })
                .scalar_term(i >= 2)
        })
        .collect()
}

/// One option combination for each `(dim, degree)` of a shape grid, in turn: every dimension and
/// every degree meets every combination. Each (dimension, degree, transform) is a kernel key whose
/// pipelines lavapipe compiles anew (about 90 % of these grids' time with a cold shader cache, as CI
/// has), so the full product would cost four times as much for little more coverage.
fn options_for(dim: usize, degree: usize) -> SigOptions {
    option_grid().swap_remove((dim + degree) % 4)
}

/// Dimensions 1..8 and degrees 0..8 (signatures up to a few thousand coefficients), paths of 0, 1, 2
/// and 6 points, the option combinations in turn ([`options_for`]).
#[test]
fn sig_forward_and_backward_shape_grid() {
    let Some((device, f64)) = gpu() else { return };
    for dim in 1..=8 {
        for degree in 0..=8 {
            let opts = options_for(dim, degree);
            let d = dim * if opts.transform.lead_lag { 2 } else { 1 }
                + opts.transform.time_aug as usize;
            let len = roughsig::TensorShape::new(d, degree).unwrap().len();
            if len > 4000 {
                continue;
            }
            for length in [0, 1, 2, 6] {
                check(&device, f64, 3, length, dim, degree, &opts);
            }
        }
    }
}

/// Batches around the chunk size (and one of several chunks), so chunk boundaries and partial
/// workgroups are crossed.
#[test]
fn sig_forward_and_backward_chunk_boundaries() {
    let Some((device, f64)) = gpu() else { return };
    for batch in [1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5] {
        for opts in option_grid() {
            check(&device, f64, batch, 8, 2, 4, &opts);
        }
    }
}

/// Long paths: many Horner steps and a long reverse sweep.
#[test]
fn sig_forward_and_backward_long_paths() {
    let Some((device, f64)) = gpu() else { return };
    for opts in option_grid() {
        check(&device, f64, 2, 400, 2, 5, &opts);
        check(&device, f64, 1, 150, 4, 4, &opts);
        // Cheap steps, many per dispatch: where lavapipe's loop limit bites first.
        check(&device, f64, 1, 3000, 1, 1, &opts);
        check(&device, f64, 1, 1500, 3, 2, &opts);
    }
}

/// Batch shapes with several leading axes, and an empty batch.
#[test]
fn sig_forward_batch_axes() {
    let Some((device, _)) = gpu() else { return };
    let path = to_f32(&random(&[2, 3, 5, 2], 9));
    let opts = SigOptions::default();
    let want = roughsig::sig(path.view(), 3, &cpu(&opts)).unwrap();
    let got = roughsig::sig(path.view(), 3, &on(&device, &opts)).unwrap();
    assert_eq!(got.shape(), &[2, 3, 14]);
    assert_abs("batch axes", &to_f64(&got), &to_f64(&want), 1e-5);
    let empty = ndarray::Array3::<f32>::zeros((0, 5, 2));
    let got = roughsig::sig(empty.view(), 3, &on(&device, &opts)).unwrap();
    assert_eq!(got.shape(), &[0, 14]);
}

/// Whether `result` is the adapter refusing a signature too large for its loop limit (lavapipe only):
/// such cases are skipped, and listed.
fn refused<T>(name: &str, result: &roughsig::Result<T>, skipped: &mut Vec<String>) -> bool {
    match result {
        Err(roughsig::Error::Device(msg)) if msg.contains("loop iterations") => {
            skipped.push(name.to_string());
            true
        }
        _ => false,
    }
}

/// Every pySigLib golden case of `sig` and `sig_backprop`, on the GPU.
#[test]
fn sig_forward_and_backward_golden_on_gpu() {
    let Some((device, f64)) = gpu() else { return };
    let mut skipped = Vec::new();
    for case in Case::all("sig") {
        let (path, want) = (case.array("path"), case.array("sig"));
        let (degree, opts) = (case.usize("degree"), on(&device, &case.options()));
        let got = roughsig::sig(to_f32(&path).view(), degree, &opts);
        if refused(&case.name, &got, &mut skipped) {
            continue;
        }
        if f64 && case.overflows() {
            // The same refusal as the CPU's, naming the same item.
            let got = roughsig::sig(path.view(), degree, &opts);
            let on_cpu = roughsig::sig(path.view(), degree, &cpu(&case.options()));
            assert_eq!(format!("{got:?}"), format!("{on_cpu:?}"), "{}", case.name);
            expect_overflow(&case.name, &want, got);
        } else if f64 {
            let got = roughsig::sig(path.view(), degree, &opts).unwrap();
            let (rtol, atol) = case.tolerance();
            assert_close(&case.name, &got, &want, rtol, atol);
        }
        if !(case.overflows() || case.name.contains("tiny")) {
            let got = got.unwrap();
            assert_close(
                &format!("{} f32", case.name),
                &to_f64(&got),
                &want,
                2e-4,
                2e-4,
            );
        }
    }
    for case in Case::all("sig_backprop") {
        let (path, sig, derivs) = (
            case.array("path"),
            case.array("sig"),
            case.array("sig_derivs"),
        );
        let want = case.array("path_derivs");
        let (degree, opts) = (case.usize("degree"), on(&device, &case.options()));
        let got = roughsig::sig_backprop(
            to_f32(&path).view(),
            to_f32(&sig).view(),
            to_f32(&derivs).view(),
            degree,
            &opts,
        );
        if refused(&case.name, &got, &mut skipped) {
            continue;
        }
        let got = got.unwrap();
        if f64 {
            let got = roughsig::sig_backprop(path.view(), sig.view(), derivs.view(), degree, &opts)
                .unwrap();
            let (rtol, atol) = case.tolerance();
            assert_close(&case.name, &got, &want, rtol, atol);
        }
        assert_close(
            &format!("{} f32", case.name),
            &to_f64(&got),
            &want,
            2e-4,
            1e-3,
        );
    }
    assert!(skipped.is_empty(), "refused by the adapter: {skipped:?}");
}

/// Signatures whose single Horner step is long (degree 8 over 3 channels, 9 840 coefficients; degree
/// 6 over 8 channels, 299 592) run on the GPU too, with the work spread over invocations.
#[test]
fn sig_forward_and_backward_large_signatures() {
    let Some((device, f64)) = gpu() else { return };
    let opts = SigOptions::default();
    check(&device, f64, 1, 10, 3, 8, &opts);
    let path = to_f32(&random(&[1, 3, 8], 5));
    let want = roughsig::sig(path.view(), 6, &cpu(&opts)).unwrap();
    let got = roughsig::sig(path.view(), 6, &on(&device, &opts)).unwrap();
    assert_abs("(1, 3, 8) degree 6", &to_f64(&got), &to_f64(&want), 1e-4);
}

/// The per-call report: a second call of the same shape creates no buffers, and the dispatches are
/// counted.
#[test]
fn sig_forward_report_counts_the_work_and_reuses_buffers() {
    let Some((device, _)) = gpu() else { return };
    let path = to_f32(&random(&[4, 50, 3], 2));
    let opts = on(&device, &SigOptions::default());
    roughsig::sig(path.view(), 3, &opts).unwrap();
    roughsig::sig(path.view(), 3, &opts).unwrap();
    let r = roughsig::gpu::last_gpu_report().expect("a report after a GPU call");
    assert_eq!(r.op, "sig");
    assert_eq!(r.buffers_created, 0, "{r:?}");
    assert!(r.dispatches >= 2 && r.submissions == 1, "{r:?}");
    assert_eq!(r.bytes_uploaded, (4 * 50 * 3 + 4) as u64 * 4, "{r:?}");
    assert!(
        r.max_invocations >= r.min_invocations && r.min_invocations > 0,
        "{r:?}"
    );
}

/// Inputs of a megabyte and more reach the device through a staging buffer of the pool: the
/// results match the CPU, and a second call of the same shape creates no buffer, that one included.
#[test]
fn large_inputs_are_uploaded_through_the_pool() {
    let Some((device, _)) = gpu() else { return };
    let path = to_f32(&random(&[32, 2048, 4], 4));
    let opts = on(&device, &SigOptions::default());
    let want = roughsig::sig(path.view(), 2, &cpu(&opts)).unwrap();
    for _ in 0..2 {
        let got = roughsig::sig(path.view(), 2, &opts).unwrap();
        assert_abs("sig", &to_f64(&got), &to_f64(&want), 1e-3);
    }
    let r = roughsig::gpu::last_gpu_report().expect("a report after a GPU call");
    assert!(r.bytes_uploaded >= 1 << 20, "{r:?}");
    assert_eq!(r.buffers_created, 0, "{r:?}");
}

/// `log_sig` on the GPU against the CPU in f64, every method, f32 always and f64 when the adapter has
/// it. A size the adapter refuses (lavapipe's loop limit) is listed in `skipped`.
#[allow(clippy::too_many_arguments)]
fn check_log_sig(
    device: &Device,
    f64: bool,
    batch: usize,
    length: usize,
    dim: usize,
    degree: usize,
    opts: &SigOptions,
    skipped: &mut Vec<String>,
) {
    let what = format!("batch {batch}, length {length}, dim {dim}, degree {degree}, {opts:?}");
    let seed = (batch * 1_000_003 + length * 1009 + dim * 101 + degree) as u64;
    let path = random(&[batch, length, dim], seed) / (length.max(1) as f64).sqrt();
    let steps = length.saturating_sub(1) * (1 + opts.transform.lead_lag as usize);
    let tol = 4e-5 * (1.0 + (steps as f64).sqrt()) * (1.0 + degree as f64);
    for method in METHODS {
        let what = format!("log_sig {method:?}, {what}");
        let want = roughsig::log_sig(path.view(), degree, method, &cpu(opts)).unwrap();
        let got = roughsig::log_sig(to_f32(&path).view(), degree, method, &on(device, opts));
        if refused(&what, &got, skipped) {
            return;
        }
        assert!(
            roughsig::last_backend().is_some_and(|b| b.is_gpu()),
            "{what}"
        );
        assert_abs(&format!("{what} f32"), &to_f64(&got.unwrap()), &want, tol);
        if f64 {
            let got = roughsig::log_sig(path.view(), degree, method, &on(device, opts)).unwrap();
            assert_abs(&format!("{what} f64"), &got, &want, 1e-10);
        }
        // `sig_to_log_sig` from the CPU's signatures, with and without their scalar term.
        for st in [false, true] {
            let what = format!("sig_to_log_sig {method:?}, scalar term {st}, {what}");
            let sig_opts = cpu(opts).scalar_term(st);
            let sigs = roughsig::sig(path.view(), degree, &sig_opts).unwrap();
            let to_log = |s: &ArrayD<f64>, o: &SigOptions| {
                roughsig::sig_to_log_sig(s.view(), dim, degree, method, o)
            };
            let want = to_log(&sigs, &cpu(opts)).unwrap();
            let got = roughsig::sig_to_log_sig(
                to_f32(&sigs).view(),
                dim,
                degree,
                method,
                &on(device, opts),
            );
            if refused(&what, &got, skipped) {
                return;
            }
            assert!(
                roughsig::last_backend().is_some_and(|b| b.is_gpu()),
                "{what}"
            );
            assert_abs(&format!("{what} f32"), &to_f64(&got.unwrap()), &want, tol);
            if f64 {
                let got = to_log(&sigs, &on(device, opts)).unwrap();
                assert_abs(&format!("{what} f64"), &got, &want, 1e-10);
            }
        }
    }
}

/// Dimensions 1..5, degrees 1..6 (signatures up to a few thousand coefficients), paths of 0, 1, 2
/// and 50 points, the option combinations in turn ([`options_for`]), every method.
#[test]
fn log_sig_shape_grid() {
    let Some((device, f64)) = gpu() else { return };
    let mut skipped = Vec::new();
    for dim in 1..=5 {
        for degree in 1..=6 {
            let opts = options_for(dim, degree);
            let d = dim * if opts.transform.lead_lag { 2 } else { 1 }
                + opts.transform.time_aug as usize;
            let len = roughsig::TensorShape::new(d, degree).unwrap().len();
            if len > 4000 {
                continue;
            }
            for length in [0, 1, 2, 50] {
                check_log_sig(&device, f64, 3, length, dim, degree, &opts, &mut skipped);
            }
        }
    }
    if !skipped.is_empty() {
        eprintln!("refused by the adapter's loop limit: {skipped:?}");
    }
}

/// Batches around the chunk size, so chunk boundaries and partial workgroups are crossed.
#[test]
fn log_sig_chunk_boundaries() {
    let Some((device, f64)) = gpu() else { return };
    let mut skipped = Vec::new();
    for batch in [1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5] {
        for opts in option_grid() {
            check_log_sig(&device, f64, batch, 8, 2, 4, &opts, &mut skipped);
        }
    }
    assert!(skipped.is_empty(), "{skipped:?}");
}

/// Every pySigLib golden case of `log_sig`, on the GPU.
#[test]
fn log_sig_golden_on_gpu() {
    let Some((device, f64)) = gpu() else { return };
    let mut skipped = Vec::new();
    for case in Case::all("log_sig") {
        let (path, want) = (case.array("path"), case.array("log_sig"));
        let method =
            LogSigMethod::from_pysiglib(case.json["params"]["method"].as_i64().unwrap()).unwrap();
        let (degree, opts) = (case.usize("degree"), on(&device, &case.options()));
        let got = roughsig::log_sig(to_f32(&path).view(), degree, method, &opts);
        if refused(&case.name, &got, &mut skipped) {
            continue;
        }
        if f64 {
            let got = roughsig::log_sig(path.view(), degree, method, &opts).unwrap();
            let (rtol, atol) = case.tolerance();
            assert_close(&case.name, &got, &want, rtol, atol);
        }
        assert_close(
            &format!("{} f32", case.name),
            &to_f64(&got.unwrap()),
            &want,
            2e-4,
            2e-4,
        );
    }
    assert!(skipped.is_empty(), "refused by the adapter: {skipped:?}");
}

/// Paths kept on the device: signatures, log-signatures and gradients from the resident arrays equal
/// the host API's on the same adapter, and the second call of a shape creates no buffers.
#[test]
fn sig_forward_device_resident_matches_the_host_api() {
    let Some((device, _)) = gpu() else { return };
    let paths = to_f32(&random(&[5, 40, 2], 11));
    let opts = on(&device, &SigOptions::default())
        .lead_lag(true)
        .scalar_term(true);
    let resident = roughsig::gpu::GpuPaths::new(paths.view(), &opts).unwrap();
    let sigs = resident.sig(3).unwrap();
    let host = roughsig::sig(paths.view(), 3, &opts).unwrap();
    assert_eq!(sigs.to_host().unwrap(), host);
    for method in [
        LogSigMethod::Expanded,
        LogSigMethod::Words,
        LogSigMethod::Lyndon,
    ] {
        let got = sigs.log_sig(method).unwrap();
        let want = roughsig::log_sig(paths.view(), 3, method, &opts).unwrap();
        assert_abs("resident log_sig", &to_f64(&got), &to_f64(&want), 1e-6);
    }
    let derivs = host.mapv(|x| x.sin());
    let got = resident.sig_backprop(&sigs, derivs.view()).unwrap();
    let want = roughsig::sig_backprop(paths.view(), host.view(), derivs.view(), 3, &opts).unwrap();
    assert_abs("resident sig_backprop", &to_f64(&got), &to_f64(&want), 1e-6);
    let again = resident.sig(3).unwrap();
    drop(again);
    let _ = resident.sig(3).unwrap();
    let report = roughsig::gpu::last_gpu_report().unwrap();
    assert_eq!(report.buffers_created, 0, "{report:?}");
    assert_eq!(report.bytes_downloaded, 0, "{report:?}");
}
