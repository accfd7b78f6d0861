//! `sig_coef` on the GPU (on lavapipe in CI): pySigLib's cases and random words (the empty word,
//! repeated letters, a word of the longest length the kernel keeps) against the CPU, in f32 and f64,
//! with and without prefixes and transforms; the same for the gradient; a path longer than one
//! dispatch may cross (lavapipe's loop budget) in several windows; longer words stay on the CPU.

use crate::common::gpu::gpu;
use crate::common::{assert_close, random, to_f32, to_f64};
use crate::sig_coef::{array, cases, setup};
use roughsig::{sig_coef, sig_coef_backprop, Device, Error, SigOptions};

#[test]
fn sig_coef_on_gpu_matches_pysiglib_and_the_cpu() {
    let Some((device, f64)) = gpu() else { return };
    for case in cases() {
        let (words, opts) = setup(&case);
        let on = opts.device(device.clone());
        let path = array(&case, "path");
        let what = case.file_name().unwrap().to_string_lossy().into_owned();
        if f64 {
            let got = sig_coef(path.view(), &words, true, &on).unwrap();
            assert_close(&what, &got, &array(&case, "prefix_coefs"), 1e-10, 1e-12);
        }
        let got = sig_coef(to_f32(&path).view(), &words, false, &on).unwrap();
        assert_close(&what, &to_f64(&got), &array(&case, "coefs"), 2e-4, 1e-5);
        let report = roughsig::gpu::last_gpu_report().expect("a GPU call reports");
        assert_eq!(report.op, "sig_coef");
    }

    let longest: Vec<usize> = (0..32).map(|i| i % 3).collect();
    let words = vec![
        vec![],
        vec![0],
        vec![1, 2],
        vec![2, 2, 0, 1],
        vec![0, 1, 2, 0, 1, 2],
        longest,
    ];
    let path = random(&[3, 2, 9, 2], 81) * 0.4;
    for (time_aug, lead_lag) in [(false, false), (true, false), (false, true), (true, true)] {
        let opts = SigOptions::default().time_aug(time_aug).lead_lag(lead_lag);
        // Letters below the transformed dimension: 2 channels widen to 3, 4 or 5.
        let words: Vec<Vec<usize>> = if time_aug || lead_lag {
            words.clone()
        } else {
            words
                .iter()
                .map(|w| w.iter().map(|&l| l % 2).collect())
                .collect()
        };
        for prefixes in [false, true] {
            let cpu = opts.clone().device(Device::Cpu);
            let want = sig_coef(path.view(), &words, prefixes, &cpu).unwrap();
            let on = opts.clone().device(device.clone());
            let what = format!("time_aug {time_aug}, lead_lag {lead_lag}, prefixes {prefixes}");
            if f64 {
                let got = sig_coef(path.view(), &words, prefixes, &on).unwrap();
                assert_close(&what, &got, &want, 1e-12, 1e-14);
            }
            let got = sig_coef(to_f32(&path).view(), &words, prefixes, &on).unwrap();
            assert_close(&what, &to_f64(&got), &want, 1e-4, 1e-6);
        }
    }

    let too_long = vec![vec![0; 33]];
    let on = SigOptions::default().device(device.clone());
    let err = sig_coef(path.view(), &too_long, false, &on).unwrap_err();
    assert!(matches!(err, Error::Device(_)), "{err}");
    let derivs = random(&[3, 2, 1], 82);
    let err = sig_coef_backprop(path.view(), &too_long, derivs.view(), &on).unwrap_err();
    assert!(matches!(err, Error::Device(_)), "{err}");
}

#[test]
fn sig_coef_backprop_on_gpu_matches_pysiglib_and_the_cpu() {
    let Some((device, f64)) = gpu() else { return };
    for case in cases() {
        let (words, opts) = setup(&case);
        let on = opts.device(device.clone());
        let (path, derivs) = (array(&case, "path"), array(&case, "derivs"));
        let want = array(&case, "path_derivs");
        let what = case.file_name().unwrap().to_string_lossy().into_owned();
        if f64 {
            let got = sig_coef_backprop(path.view(), &words, derivs.view(), &on).unwrap();
            assert_close(&what, &got, &want, 1e-9, 1e-11);
        }
        let got =
            sig_coef_backprop(to_f32(&path).view(), &words, to_f32(&derivs).view(), &on).unwrap();
        assert_close(&what, &to_f64(&got), &want, 2e-3, 2e-4);
        let report = roughsig::gpu::last_gpu_report().expect("a GPU call reports");
        assert_eq!(report.op, "sig_coef_backprop");
        // The coefficients forward, the adjoint backward (each in one window or more), the gather.
        assert!(report.dispatches >= 3, "{what}: {}", report.dispatches);
    }

    let words = vec![
        vec![],
        vec![0],
        vec![1, 2],
        vec![2, 2, 0, 1],
        vec![0, 1, 2, 0, 1, 2],
    ];
    // More paths than one workgroup holds words of.
    let path = random(&[3, 5, 9, 2], 83) * 0.4;
    for (time_aug, lead_lag) in [(false, false), (true, false), (false, true), (true, true)] {
        let opts = SigOptions::default().time_aug(time_aug).lead_lag(lead_lag);
        let words: Vec<Vec<usize>> = if time_aug || lead_lag {
            words.clone()
        } else {
            words
                .iter()
                .map(|w| w.iter().map(|&l| l % 2).collect())
                .collect()
        };
        for prefixes in [false, true] {
            let cpu = opts.clone().device(Device::Cpu);
            let coefs = sig_coef(path.view(), &words, prefixes, &cpu).unwrap();
            let derivs = random(coefs.shape(), 84);
            let want = sig_coef_backprop(path.view(), &words, derivs.view(), &cpu).unwrap();
            let on = opts.clone().device(device.clone());
            let what = format!("time_aug {time_aug}, lead_lag {lead_lag}, prefixes {prefixes}");
            if f64 {
                let got = sig_coef_backprop(path.view(), &words, derivs.view(), &on).unwrap();
                assert_close(&what, &got, &want, 1e-11, 1e-13);
            }
            let got = sig_coef_backprop(to_f32(&path).view(), &words, to_f32(&derivs).view(), &on)
                .unwrap();
            assert_close(&what, &to_f64(&got), &want, 1e-4, 1e-5);
        }
    }
}

/// A random walk of 4000 points: the coefficients and the gradient come from time chunks joined on
/// the host (two paths are too few invocations for a GPU); left whole, the paths are crossed in
/// windows of segments, several dispatches on lavapipe; both equal the CPU's.
#[test]
fn sig_coef_on_gpu_crosses_a_long_path_in_windows() {
    let Some((device, f64)) = gpu() else { return };
    let (n, len) = (2, 4000);
    let steps = random(&[n, len, 2], 86) * 0.03;
    let mut path = steps.clone();
    for p in 0..n {
        for t in 1..len {
            for i in 0..2 {
                path[[p, t, i]] = path[[p, t - 1, i]] + steps[[p, t, i]];
            }
        }
    }
    let words = vec![vec![0], vec![1, 0], vec![0, 1, 1, 0, 1]];
    let cpu = SigOptions::default().device(Device::Cpu);
    let on = SigOptions::default().device(device);
    let want = sig_coef(path.view(), &words, true, &cpu).unwrap();
    let derivs = random(want.shape(), 87);
    let want_grad = sig_coef_backprop(path.view(), &words, derivs.view(), &cpu).unwrap();
    if f64 {
        let got = sig_coef(path.view(), &words, true, &on).unwrap();
        assert_close("coefficients", &got, &want, 1e-10, 1e-12);
        let got = sig_coef_backprop(path.view(), &words, derivs.view(), &on).unwrap();
        assert_close("gradient", &got, &want_grad, 1e-8, 1e-10);
    }
    let got = sig_coef(to_f32(&path).view(), &words, true, &on).unwrap();
    assert_close("coefficients (f32)", &to_f64(&got), &want, 2e-3, 2e-4);
    let got = sig_coef_backprop(to_f32(&path).view(), &words, to_f32(&derivs).view(), &on).unwrap();
    assert_close("gradient (f32)", &to_f64(&got), &want_grad, 2e-2, 2e-3);
    // Whole paths, one invocation per (path, word): both walks cross them in windows.
    roughsig::gpu::set_time_chunk_target(1);
    let got = sig_coef(to_f32(&path).view(), &words, true, &on).unwrap();
    let forward = roughsig::gpu::last_gpu_report().expect("a GPU call reports");
    assert_close("whole paths (f32)", &to_f64(&got), &want, 2e-3, 2e-4);
    let got = sig_coef_backprop(to_f32(&path).view(), &words, to_f32(&derivs).view(), &on).unwrap();
    let backward = roughsig::gpu::last_gpu_report().expect("a GPU call reports");
    assert_close(
        "whole paths' gradient (f32)",
        &to_f64(&got),
        &want_grad,
        2e-2,
        2e-3,
    );
    if f64 {
        let got = sig_coef_backprop(path.view(), &words, derivs.view(), &on).unwrap();
        assert_close("whole paths' gradient", &got, &want_grad, 1e-8, 1e-10);
    }
    roughsig::gpu::set_time_chunk_target(1 << 16);
    // One invocation per (path, word) in every window.
    assert_eq!(forward.max_invocations, 64, "{forward:?}");
    assert!(forward.dispatches >= 2, "{forward:?}");
    assert!(backward.dispatches >= 5, "{backward:?}");
    // Without prefixes, with the empty word, through the chunks too.
    let words = vec![vec![], vec![1], vec![0, 1, 1, 0, 1], vec![1, 1]];
    let want = sig_coef(path.view(), &words, false, &cpu).unwrap();
    let got = sig_coef(to_f32(&path).view(), &words, false, &on).unwrap();
    assert_close(
        "single coefficients (f32)",
        &to_f64(&got),
        &want,
        2e-3,
        2e-4,
    );
    if f64 {
        let got = sig_coef(path.view(), &words, false, &on).unwrap();
        assert_close("single coefficients", &got, &want, 1e-10, 1e-12);
    }
}
