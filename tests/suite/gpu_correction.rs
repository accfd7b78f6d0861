//! `sig_corrected`, `sig_corrected_backprop` and `log_sig_corrected` on the GPU (the segments'
//! exponentials multiplied as a tree of pairwise products): pySigLib's cases in f32 (and f64 where
//! the adapter has it) within the CPU's tolerances; the CPU in f64 for segment counts that are and
//! are not powers of two, every layout of the correction, time augmentation, scalar terms and more
//! paths than one group; the dispatches the tree takes. Skipped like the other GPU tests without an
//! adapter.

use crate::common::gpu::{gpu, CHUNK};
use crate::common::{assert_close, random, reference_dir, to_f32, to_f64, Case};
use ndarray::ArrayD;
use roughsig::{
    log_sig_corrected, sig, sig_corrected, sig_corrected_backprop, Device, LogSigMethod, SigOptions,
};

#[test]
fn corrections_on_gpu_match_pysiglib() {
    let Some((device, f64)) = gpu() else { return };
    let dir = reference_dir("correction");
    for function in ["sig", "log_sig", "sig_backprop"] {
        for case in Case::all_in(&dir, function) {
            let opts = case.options().device(device.clone());
            let (path, c, degree) = (
                case.array("path"),
                case.array("correction"),
                case.usize("degree"),
            );
            let run = |path: &ArrayD<f64>, c: &ArrayD<f64>, f32: bool| -> ArrayD<f64> {
                macro_rules! call {
                    ($conv:expr, $back:expr) => {{
                        let (p, c) = ($conv(path), $conv(c));
                        let got = match function {
                            "sig" => sig_corrected(p.view(), c.view(), degree, &opts),
                            "log_sig" => {
                                let m = case.usize("method") as i64;
                                let method = LogSigMethod::from_pysiglib(m).unwrap();
                                log_sig_corrected(p.view(), c.view(), degree, method, &opts)
                            }
                            _ => {
                                let s = $conv(&case.array("sig"));
                                let ds = $conv(&case.array("sig_derivs"));
                                sig_corrected_backprop(
                                    p.view(),
                                    c.view(),
                                    s.view(),
                                    ds.view(),
                                    degree,
                                    &opts,
                                )
                            }
                        };
                        $back(&got.unwrap())
                    }};
                }
                if f32 {
                    call!(to_f32, to_f64)
                } else {
                    call!(|a: &ArrayD<f64>| a.clone(), |a: &ArrayD<f64>| a.clone())
                }
            };
            let want = case.array(match function {
                "sig_backprop" => "grad",
                other => other,
            });
            assert_close(&case.name, &run(&path, &c, true), &want, 2e-4, 2e-4);
            assert!(
                roughsig::last_backend().is_some_and(|b| b.is_gpu()),
                "{}",
                case.name
            );
            if f64 {
                assert_close(&case.name, &run(&path, &c, false), &want, 1e-10, 1e-12);
            }
        }
    }
}

/// `d² + … + d^m`: a correction row of levels 2 to m.
fn width(d: usize, m: usize) -> usize {
    (2..=m).map(|k| d.pow(k as u32)).sum()
}

/// `sig_corrected` and its gradient on the GPU against the CPU in f64 (`opts` without a device),
/// in f32 and, where the adapter has it, f64; returns the report of the f32 forward call.
fn check(
    what: &str,
    (path, c, degree): (&ArrayD<f64>, &ArrayD<f64>, usize),
    opts: &SigOptions,
    (device, f64): (&Device, bool),
) -> roughsig::gpu::GpuReport {
    let (cpu, on_gpu) = (
        opts.clone().device(Device::Cpu),
        opts.clone().device(device.clone()),
    );
    let want = sig_corrected(path.view(), c.view(), degree, &cpu).unwrap();
    let ds = random(want.shape(), 7 + degree as u64);
    let want_d =
        sig_corrected_backprop(path.view(), c.view(), want.view(), ds.view(), degree, &cpu)
            .unwrap();
    let (p32, c32, w32, ds32) = (to_f32(path), to_f32(c), to_f32(&want), to_f32(&ds));
    let got = sig_corrected(p32.view(), c32.view(), degree, &on_gpu).unwrap();
    let report = roughsig::gpu::last_gpu_report().unwrap();
    assert!(
        roughsig::last_backend().is_some_and(|b| b.is_gpu()),
        "{what}"
    );
    assert_close(&format!("f32 {what}"), &to_f64(&got), &want, 1e-4, 1e-5);
    let got_d = sig_corrected_backprop(
        p32.view(),
        c32.view(),
        w32.view(),
        ds32.view(),
        degree,
        &on_gpu,
    )
    .unwrap();
    assert_close(
        &format!("backprop f32 {what}"),
        &to_f64(&got_d),
        &want_d,
        1e-4,
        1e-5,
    );
    if f64 {
        let got = sig_corrected(path.view(), c.view(), degree, &on_gpu).unwrap();
        assert_close(&format!("f64 {what}"), &got, &want, 1e-12, 1e-13);
        let got_d = sig_corrected_backprop(
            path.view(),
            c.view(),
            want.view(),
            ds.view(),
            degree,
            &on_gpu,
        )
        .unwrap();
        assert_close(
            &format!("backprop f64 {what}"),
            &got_d,
            &want_d,
            1e-12,
            1e-13,
        );
    }
    report
}

#[test]
fn corrections_on_gpu_match_the_cpu() {
    let Some((device, f64)) = gpu() else { return };
    // (paths, points, channels, degree, levels of the correction, time augmentation, scalar term)
    let shapes = [
        (1, 1, 2, 3, 2, false, true),
        (2, 2, 2, 3, 2, false, false),
        (3, 4, 2, 4, 3, true, true),
        (2, 6, 3, 3, 3, false, false),
        (2, 9, 2, 2, 2, false, true),
        (1, 17, 2, 3, 2, true, false),
        (CHUNK + 3, 5, 2, 3, 2, false, false),
    ];
    for (i, &(batch, len, d, degree, m, time_aug, st)) in shapes.iter().enumerate() {
        let seed = 40 + 3 * i as u64;
        let path = random(&[batch, len, d], seed) * 0.5;
        let segments = len.saturating_sub(1);
        // Every layout: one row for all, one per segment, one per segment and path.
        let layouts = [
            random(&[width(d, m)], seed + 1) * 0.3,
            random(&[segments, width(d, m)], seed + 1) * 0.3,
            random(&[batch, segments, width(d, m)], seed + 1) * 0.3,
        ];
        let opts = SigOptions::default().time_aug(time_aug).scalar_term(st);
        for (l, c) in layouts.iter().enumerate() {
            check(
                &format!("shape {i}, layout {l}"),
                (&path, c, degree),
                &opts,
                (&device, f64),
            );
        }
    }
}

/// A zero correction on the GPU is the plain signature; the tree of products over 5 segments (8
/// rows per path) is 3 rounds: the placement, the exponential's 3 steps at degree 3, then the
/// products, one invocation per coefficient of every pair.
#[test]
fn corrections_on_gpu_multiply_segments_as_a_tree() {
    let Some((device, _)) = gpu() else { return };
    let (batch, len, d, degree) = (4, 6, 2, 3);
    let path = to_f32(&random(&[batch, len, d], 71));
    let zero = ArrayD::<f32>::zeros(vec![width(d, 2)]);
    let opts = SigOptions::default().device(device);
    let got = sig_corrected(path.view(), zero.view(), degree, &opts).unwrap();
    let report = roughsig::gpu::last_gpu_report().unwrap();
    assert_eq!(report.op, "sig_corrected");
    assert_eq!(report.dispatches as usize, 1 + degree + 3);
    // The placement and the exponential's output run one invocation per coefficient of every row.
    let sig_len = d + d * d + d * d * d;
    assert!(
        report.max_invocations >= (batch * 8 * sig_len) as u64,
        "{report:?}"
    );
    let plain = sig(
        path.view(),
        degree,
        &SigOptions::default().device(Device::Cpu),
    )
    .unwrap();
    assert_close(
        "zero correction",
        &to_f64(&got),
        &to_f64(&plain),
        1e-5,
        1e-6,
    );

    let ds = ArrayD::<f32>::ones(got.shape());
    sig_corrected_backprop(
        path.view(),
        zero.view(),
        got.view(),
        ds.view(),
        degree,
        &opts,
    )
    .unwrap();
    let report = roughsig::gpu::last_gpu_report().unwrap();
    assert_eq!(report.op, "sig_corrected_backprop");
    // The forward steps but the last product, 3 products back, the exponential's reverse (2 chain
    // steps and 3 reverse steps at degree 3) and the placement's transpose.
    assert_eq!(
        report.dispatches as usize,
        (1 + degree + 2) + 3 + (2 + 3) + 1
    );
}

/// A path longer than one tree holds is cut into windows of segments whose products a second tree
/// multiplies (its leaves uploaded, no exponential): the same numbers as the CPU.
#[test]
fn long_corrected_paths_cross_in_windows() {
    let Some((device, f64)) = gpu() else { return };
    roughsig::gpu::set_max_tree_rows(8);
    let (batch, d, degree) = (3, 2, 3);
    for (len, windows) in [(10, 2usize), (18, 3), (41, 5)] {
        let path = random(&[batch, len, d], 90 + len as u64) * 0.4;
        let c = random(&[batch, len - 1, width(d, 2)], 91) * 0.2;
        let opts = SigOptions::default().scalar_term(true);
        let what = format!("length {len}");
        let report = check(&what, (&path, &c, degree), &opts, (&device, f64));
        // The forward call's last tree is the windows': its rounds only, the windows padded to a
        // power of two.
        let rounds = windows.next_power_of_two().max(2).trailing_zeros() as u64;
        assert_eq!(report.dispatches, rounds, "{what}");
    }
    roughsig::gpu::set_max_tree_rows(usize::MAX);
}
