//! `sig_coef` and `sig_coef_backprop` against pySigLib 4.0.0's (cases in `tests/data/sig_coef`, made by
//! `scripts/sig_coef_reference.py`), against the full signature at each word's index, and the
//! gradient against finite differences; the word helpers against their definitions.

use crate::common::{assert_close, random, to_f32, to_f64};
use ndarray::{ArrayD, Axis};
use ndarray_npy::ReadNpyExt;
use roughsig::{sig, sig_coef, sig_coef_backprop, word_to_idx, words, Device, Error, SigOptions};
use std::path::{Path, PathBuf};

pub(crate) fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sig_coef");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    assert_eq!(v.len(), 5, "the reference cases");
    v
}

pub(crate) fn array(case: &Path, name: &str) -> ArrayD<f64> {
    let file = std::fs::File::open(case.join(format!("{name}.npy"))).unwrap();
    ArrayD::<f64>::read_npy(file).unwrap()
}

pub(crate) fn setup(case: &Path) -> (Vec<Vec<usize>>, SigOptions) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("case.json")).unwrap()).unwrap();
    let words = json["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w.as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as usize)
                .collect()
        })
        .collect();
    let opts = SigOptions::default()
        .time_aug(json["time_aug"].as_bool().unwrap())
        .lead_lag(json["lead_lag"].as_bool().unwrap())
        .end_time(json["end_time"].as_f64().unwrap());
    (words, opts)
}

#[test]
fn sig_coef_matches_pysiglib() {
    for case in cases() {
        let (words, opts) = setup(&case);
        let path = array(&case, "path");
        let what = case.file_name().unwrap().to_string_lossy().into_owned();
        let got = sig_coef(path.view(), &words, false, &opts).unwrap();
        assert_close(&what, &got, &array(&case, "coefs"), 1e-10, 1e-12);
        let got = sig_coef(path.view(), &words, true, &opts).unwrap();
        assert_close(&what, &got, &array(&case, "prefix_coefs"), 1e-10, 1e-12);
        let derivs = array(&case, "derivs");
        let got = sig_coef_backprop(path.view(), &words, derivs.view(), &opts).unwrap();
        assert_close(&what, &got, &array(&case, "path_derivs"), 1e-9, 1e-11);
        let path32 = to_f32(&path);
        let got = sig_coef(path32.view(), &words, true, &opts).unwrap();
        assert_close(
            &what,
            &to_f64(&got),
            &array(&case, "prefix_coefs"),
            2e-4,
            1e-5,
        );
    }
}

/// Every word up to degree 4 of a transformed path: its coefficient is the signature's entry.
#[test]
fn sig_coef_is_the_signature_at_each_word() {
    let path = random(&[2, 7, 2], 41);
    for (time_aug, lead_lag) in [(false, false), (true, true)] {
        let opts = SigOptions::default().time_aug(time_aug).lead_lag(lead_lag);
        let aug = 2 * (1 + lead_lag as usize) + time_aug as usize;
        let all: Vec<Vec<usize>> = words(aug, 4).unwrap().into_iter().skip(1).collect();
        let got = sig_coef(path.view(), &all, false, &opts).unwrap();
        let s = sig(path.view(), 4, &opts).unwrap();
        let idx: Vec<usize> = all
            .iter()
            .map(|w| word_to_idx(w, aug, false).unwrap())
            .collect();
        let want = s.select(Axis(1), &idx);
        assert_close("coefficients", &got, &want, 1e-12, 1e-13);
    }
}

/// Central differences of `Σ w·coef` against the gradient, for words' and prefixes' derivatives.
#[test]
fn sig_coef_gradient_matches_finite_differences() {
    let path = random(&[2, 6, 3], 43);
    let words = vec![vec![0, 2], vec![1, 1, 0, 2], vec![2, 0, 1]];
    for prefixes in [false, true] {
        let opts = SigOptions::default().lead_lag(prefixes);
        let c = sig_coef(path.view(), &words, prefixes, &opts).unwrap();
        let w = random(c.shape(), 44);
        let grad = sig_coef_backprop(path.view(), &words, w.view(), &opts).unwrap();
        let f = |p: &ArrayD<f64>| (sig_coef(p.view(), &words, prefixes, &opts).unwrap() * &w).sum();
        let h = 1e-6;
        for (i, g) in grad.iter().enumerate() {
            let mut plus = path.clone();
            let mut minus = path.clone();
            plus.as_slice_mut().unwrap()[i] += h;
            minus.as_slice_mut().unwrap()[i] -= h;
            let fd = (f(&plus) - f(&minus)) / (2.0 * h);
            assert!(
                (fd - g).abs() <= 1e-6 * (1.0 + g.abs()),
                "[{i}]: {g} vs {fd}"
            );
        }
    }
}

#[test]
fn sig_coef_bad_input_is_an_error() {
    let path = random(&[2, 5, 3], 45);
    let opts = SigOptions::default();
    let err = sig_coef(path.view(), &[vec![0, 3]], false, &opts).unwrap_err();
    assert!(err.to_string().contains("words[0][1] = 3"), "{err}");
    // With time augmentation letter 3 is the time.
    assert!(sig_coef(
        path.view(),
        &[vec![0, 3]],
        false,
        &opts.clone().time_aug(true)
    )
    .is_ok());
    assert!(sig_coef(path.view(), &[], false, &opts).is_err());
    let mut nan = path.clone();
    nan[[1, 2, 0]] = f64::NAN;
    let err = sig_coef(nan.view(), &[vec![0]], false, &opts).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    let words = [vec![0, 1]];
    let derivs = random(&[2, 3], 46);
    let err = sig_coef_backprop(path.view(), &words, derivs.view(), &opts).unwrap_err();
    assert!(err.to_string().contains("derivs has shape"), "{err}");
    // Checked before any device is chosen.
    let gpu = opts.clone().device(Device::Gpu(None));
    let err = sig_coef_backprop(path.view(), &words, derivs.view(), &gpu).unwrap_err();
    assert!(err.to_string().contains("derivs has shape"), "{err}");
}
