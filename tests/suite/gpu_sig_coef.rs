//! `sig_coef` on the GPU (on lavapipe in CI): pySigLib's cases and random words (the empty word,
//! repeated letters, a word of the longest length the kernel keeps) against the CPU, in f32 and f64,
//! with and without prefixes and transforms; longer words and the gradient stay on the CPU.

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
