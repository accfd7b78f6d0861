//! Log-signatures: every pySigLib 4.0.0 reference case (f64 and f32), the algebra they rest on
//! (exp ∘ log = id, Lyndon words, the bracket basis), gradients against finite differences, and errors.

use crate::common::{assert_close, random, to_f32, to_f64, Case};
use ndarray::{ArrayD, ArrayView1, Axis, IxDyn};
use roughsig::{
    log_sig, log_sig_backprop, log_sig_length, lyndon_to_words, lyndon_word_index, lyndon_words,
    sig, sig_combine, sig_length, sig_to_log_sig, sig_to_log_sig_backprop, Device, Error,
    LogSigMethod, SigOptions, TensorShape,
};

const METHODS: [LogSigMethod; 4] = [
    LogSigMethod::Expanded,
    LogSigMethod::Words,
    LogSigMethod::Lyndon,
    LogSigMethod::Bch,
];

/// f32 results against the f64 reference: relative to the array's largest entry.
const F32_TOL: (f64, f64) = (2e-4, 2e-4);

fn case_method(case: &Case) -> LogSigMethod {
    LogSigMethod::from_pysiglib(case.json["params"]["method"].as_i64().unwrap()).unwrap()
}

fn index_count(function: &str) -> usize {
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::golden_dir().join("index.json")).unwrap(),
    )
    .unwrap();
    index["counts"][function].as_u64().unwrap() as usize
}

/// The case's `lyndon_words` are ours, in the same order.
fn check_words(case: &Case, dim: usize, degree: usize) {
    let Some(listed) = case.json.get("lyndon_words") else {
        return;
    };
    let listed: Vec<Vec<usize>> = serde_json::from_value(listed.clone()).unwrap();
    assert_eq!(lyndon_words(dim, degree).unwrap(), listed, "{}", case.name);
}

#[test]
fn log_sig_golden() {
    let cases = Case::all("log_sig");
    for case in &cases {
        let (path, want) = (case.array("path"), case.array("log_sig"));
        let (degree, method, opts) = (case.usize("degree"), case_method(case), case.options());
        let got = log_sig(path.view(), degree, method, &opts).unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&case.name, &got, &want, rtol, atol);
        let got32 = log_sig(to_f32(&path).view(), degree, method, &opts).unwrap();
        let name = format!("{} f32", case.name);
        assert_close(&name, &to_f64(&got32), &want, F32_TOL.0, F32_TOL.1);
        if method != LogSigMethod::Expanded {
            check_words(case, case.usize("aug_dimension"), degree);
        }
    }
    assert_eq!(cases.len(), index_count("log_sig"));
}

#[test]
fn sig_to_log_sig_golden() {
    let cases = Case::all("sig_to_log_sig");
    for case in &cases {
        let (sigs, want) = (case.array("sig"), case.array("log_sig"));
        let (d, n, method) = (
            case.usize("dimension"),
            case.usize("degree"),
            case_method(case),
        );
        let opts = case.options();
        let got = sig_to_log_sig(sigs.view(), d, n, method, &opts).unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&case.name, &got, &want, rtol, atol);
        let got32 = sig_to_log_sig(to_f32(&sigs).view(), d, n, method, &opts).unwrap();
        let name = format!("{} f32", case.name);
        assert_close(&name, &to_f64(&got32), &want, F32_TOL.0, F32_TOL.1);
        check_words(case, d, n);
    }
    assert_eq!(cases.len(), index_count("sig_to_log_sig"));
}

#[test]
fn log_sig_length_golden() {
    let case = Case::load("lengths_table");
    let table = case.array("table");
    for row in table.outer_iter() {
        let (d, n) = (row[0] as usize, row[1] as usize);
        let opts = SigOptions::default()
            .time_aug(row[2] != 0.0)
            .lead_lag(row[3] != 0.0);
        match log_sig_length(d, n, &opts) {
            Ok(len) => assert_eq!(len as f64, row[6], "{row}"),
            Err(e) => assert_eq!(row[6], -1.0, "{row}: {e}"),
        }
    }
}

/// The truncated exponential `Σ_{k=1}^{N} L^k / k!` (levels only), from Chen's product.
fn tensor_exp(shape: &TensorShape, l: &[f64]) -> Vec<f64> {
    // Chen's product of levels computes (1 + a)(1 + b) − 1; the bare product a·b is that minus a
    // and b.
    let product = |a: &[f64], b: &[f64]| {
        let (a1, b1, opts) = (
            ArrayView1::from(a),
            ArrayView1::from(b),
            SigOptions::default(),
        );
        let mut out = sig_combine(a1, b1, shape.dim, shape.degree, &opts).unwrap();
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o -= x + y;
        }
        out.into_raw_vec_and_offset().0
    };
    let (mut power, mut sum) = (l.to_vec(), l.to_vec());
    let mut factorial = 1.0;
    for k in 2..=shape.degree {
        power = product(&power, l);
        factorial *= k as f64;
        for (s, p) in sum.iter_mut().zip(&power) {
            *s += p / factorial;
        }
    }
    sum
}

#[test]
fn log_sig_exp_inverts_log() {
    for (d, n, ta, ll) in [
        (2, 5, false, false),
        (3, 4, true, false),
        (2, 3, true, true),
    ] {
        let opts = SigOptions::default()
            .time_aug(ta)
            .lead_lag(ll)
            .end_time(0.7);
        let path = random(&[3, 9, d], 7 + d as u64);
        let s = sig(path.view(), n, &opts).unwrap();
        let l = log_sig(path.view(), n, LogSigMethod::Expanded, &opts).unwrap();
        let aug_dim = d * if ll { 2 } else { 1 } + ta as usize;
        let shape = TensorShape::new(aug_dim, n).unwrap();
        let aug = s.shape()[1];
        assert_eq!(aug, sig_length(d, n, &opts).unwrap());
        for (srow, lrow) in s.outer_iter().zip(l.outer_iter()) {
            let back = tensor_exp(&shape, lrow.as_slice().unwrap());
            let want = srow.to_owned();
            let got = ArrayD::from_shape_vec(IxDyn(&[aug]), back).unwrap();
            assert_close("exp(log(S))", &got, &want, 1e-12, 1e-13);
        }
    }
}

#[test]
fn log_sig_forms_agree() {
    for (d, n) in [(1, 4), (2, 6), (3, 4), (4, 3)] {
        let path = random(&[2, 3, 7, d], 11 + d as u64);
        let opts = SigOptions::default();
        let expanded = log_sig(path.view(), n, LogSigMethod::Expanded, &opts).unwrap();
        let words = log_sig(path.view(), n, LogSigMethod::Words, &opts).unwrap();
        let lyndon = log_sig(path.view(), n, LogSigMethod::Lyndon, &opts).unwrap();
        assert_eq!(words.shape(), &[2, 3, log_sig_length(d, n, &opts).unwrap()]);
        // Words are the expanded logarithm read at the Lyndon words.
        let shape = TensorShape::new(d, n).unwrap();
        for (p, word) in lyndon_words(d, n).unwrap().iter().enumerate() {
            let f = shape.word_index(word).unwrap();
            assert_eq!(lyndon_word_index(d, n, word).unwrap(), Some(p));
            let (a, b) = (
                words.index_axis(Axis(2), p),
                expanded.index_axis(Axis(2), f),
            );
            assert_eq!(a, b, "d={d} n={n} word {word:?}");
        }
        // The bracket coordinates, expanded back, give the words' coefficients.
        let back = lyndon_to_words(lyndon.view(), d, n).unwrap();
        assert_close(&format!("d={d} n={n}"), &back, &words, 1e-12, 1e-13);
    }
}

/// The BCH route (in the Lie algebra) and the tensor route (through the signature) give the same
/// coordinates: several dimensions × degrees, the transforms, paths of one and two points, f32
/// against f64, one thread and several, a batch of 11 (a group of paths evaluated together and
/// three alone).
#[test]
fn bch_equals_the_tensor_route() {
    let flags = [
        SigOptions::default(),
        SigOptions::default()
            .time_aug(true)
            .lead_lag(true)
            .end_time(2.0),
    ];
    for (d, n) in [(1, 5), (2, 1), (2, 7), (3, 5), (4, 4), (5, 3)] {
        for (f, opts) in flags.iter().enumerate() {
            for length in [1, 2, 9] {
                let path = random(&[11, length, d], 100 + (d * 10 + n) as u64);
                let name = format!("d={d} n={n} flags {f} length {length}");
                let want = log_sig(path.view(), n, LogSigMethod::Lyndon, opts).unwrap();
                let got = log_sig(path.view(), n, LogSigMethod::Bch, opts).unwrap();
                assert_close(&name, &got, &want, 1e-11, 1e-12);
                let one = opts.clone().n_jobs(1);
                let single = log_sig(path.view(), n, LogSigMethod::Bch, &one).unwrap();
                assert_eq!(single, got, "{name}: threads");
                let got32 = log_sig(to_f32(&path).view(), n, LogSigMethod::Bch, opts).unwrap();
                assert_close(&format!("{name} f32"), &to_f64(&got32), &want, 2e-4, 2e-4);
                let derivs = random(&[11, want.shape()[1]], 7);
                let g_want =
                    log_sig_backprop(path.view(), derivs.view(), n, LogSigMethod::Lyndon, opts)
                        .unwrap();
                let g_got =
                    log_sig_backprop(path.view(), derivs.view(), n, LogSigMethod::Bch, opts)
                        .unwrap();
                assert_close(&format!("{name} gradient"), &g_got, &g_want, 1e-10, 1e-11);
            }
        }
    }
}

/// The BCH gradient walks back through `BCH(z, −y)`: still the tensor route's gradient after 300
/// steps, in f64 and f32.
#[test]
fn bch_gradient_of_a_long_path() {
    let path = random(&[9, 300, 3], 5) * 0.3;
    let opts = SigOptions::default();
    let derivs = random(&[9, log_sig_length(3, 4, &opts).unwrap()], 6);
    let want =
        log_sig_backprop(path.view(), derivs.view(), 4, LogSigMethod::Lyndon, &opts).unwrap();
    let got = log_sig_backprop(path.view(), derivs.view(), 4, LogSigMethod::Bch, &opts).unwrap();
    assert_close("f64", &got, &want, 1e-9, 1e-10);
    let got32 = log_sig_backprop(
        to_f32(&path).view(),
        to_f32(&derivs).view(),
        4,
        LogSigMethod::Bch,
        &opts,
    )
    .unwrap();
    assert_close("f32", &to_f64(&got32), &want, 2e-3, 2e-3);
}

/// A single segment's logarithm is its increment: bracket coordinates at the letters, 0 elsewhere.
#[test]
fn log_sig_of_a_segment_is_its_increment() {
    let path = ndarray::array![[0.0, 0.0, 0.0], [0.5, -1.0, 2.0]].into_dyn();
    let l = log_sig(path.view(), 4, LogSigMethod::Lyndon, &Default::default()).unwrap();
    for (i, v) in l.iter().enumerate() {
        let want: f64 = [0.5, -1.0, 2.0].get(i).copied().unwrap_or(0.0);
        assert!((v - want).abs() < 1e-15, "[{i}] {v}");
    }
}

/// The definition: strictly smaller than each proper suffix.
fn is_lyndon(w: &[usize]) -> bool {
    (1..w.len()).all(|i| w < &w[i..])
}

#[test]
fn lyndon_words_by_brute_force() {
    for d in 1usize..=4 {
        for n in 1..=5 {
            let mut want: Vec<Vec<usize>> = Vec::new();
            for k in 1..=n {
                let mut level: Vec<Vec<usize>> = (0..d.pow(k as u32))
                    .map(|mut x| {
                        let mut w = vec![0; k];
                        for slot in w.iter_mut().rev() {
                            *slot = x % d;
                            x /= d;
                        }
                        w
                    })
                    .filter(|w| is_lyndon(w))
                    .collect();
                level.sort();
                want.extend(level);
            }
            let got = lyndon_words(d, n).unwrap();
            assert_eq!(got, want, "d={d} n={n}");
            assert_eq!(
                got.len(),
                log_sig_length(d, n, &Default::default()).unwrap()
            );
            assert_eq!(lyndon_word_index(d, n, &[d - 1, 0]).unwrap(), None);
        }
    }
    // Witt's formula at a size too big to list: 10 letters, length 8.
    let witt: usize = [10, 45, 330, 2475, 19998, 166485, 1428570, 12498750]
        .iter()
        .sum();
    assert_eq!(log_sig_length(10, 8, &Default::default()).unwrap(), witt);
}

/// `Σ w · f(x)` and its central-difference gradient in every entry of `x`.
fn numeric_gradient(
    x: &ArrayD<f64>,
    w: &ArrayD<f64>,
    f: impl Fn(&ArrayD<f64>) -> ArrayD<f64>,
) -> ArrayD<f64> {
    let h = 1e-5;
    let mut grad = ArrayD::zeros(x.raw_dim());
    for (i, g) in grad.iter_mut().enumerate() {
        let mut plus = x.clone();
        plus.as_slice_mut().unwrap()[i] += h;
        let mut minus = x.clone();
        minus.as_slice_mut().unwrap()[i] -= h;
        *g = ((&f(&plus) - &f(&minus)) * w).sum() / (2.0 * h);
    }
    grad
}

fn flag_sets() -> Vec<SigOptions> {
    let mut sets = Vec::new();
    for (ta, ll, st) in [
        (false, false, false),
        (false, false, true),
        (true, false, false),
        (false, true, true),
        (true, true, false),
    ] {
        sets.push(
            SigOptions::default()
                .time_aug(ta)
                .lead_lag(ll)
                .scalar_term(st)
                .end_time(1.3),
        );
    }
    sets
}

#[test]
fn log_sig_backprop_matches_finite_differences() {
    for opts in flag_sets() {
        for method in METHODS {
            let path = random(&[2, 5, 2], 3) * 0.7;
            let n = 4;
            let out = log_sig(path.view(), n, method, &opts).unwrap();
            let w = random(out.shape(), 5);
            let got = log_sig_backprop(path.view(), w.view(), n, method, &opts).unwrap();
            let want =
                numeric_gradient(&path, &w, |p| log_sig(p.view(), n, method, &opts).unwrap());
            let what = format!("{method:?} {opts:?}");
            assert_close(&what, &got, &want, 1e-6, 1e-7);
        }
    }
}

#[test]
fn sig_to_log_sig_backprop_matches_finite_differences() {
    for opts in flag_sets() {
        for method in METHODS {
            let (d, n) = (2, 4);
            let path = random(&[3, 6, d], 9) * 0.6;
            // A signature, then perturbed off the group: the map is a polynomial everywhere.
            let s = sig(path.view(), n, &opts).unwrap() + random(&[3, 1], 4) * 0.1;
            let out = sig_to_log_sig(s.view(), d, n, method, &opts).unwrap();
            let w = random(out.shape(), 6);
            let got = sig_to_log_sig_backprop(s.view(), w.view(), d, n, method, &opts).unwrap();
            let want = numeric_gradient(&s, &w, |x| {
                sig_to_log_sig(x.view(), d, n, method, &opts).unwrap()
            });
            let what = format!("{method:?} {opts:?}");
            assert_close(&what, &got, &want, 1e-6, 1e-7);
            if opts.scalar_term {
                assert!(got.index_axis(Axis(1), 0).iter().all(|&v| v == 0.0));
            }
        }
    }
}

#[test]
fn log_sig_f32_gradient_tracks_f64() {
    let path = random(&[4, 20, 3], 21) * 0.3;
    let opts = SigOptions::default();
    for method in METHODS {
        let out = log_sig(path.view(), 4, method, &opts).unwrap();
        let w = random(out.shape(), 22);
        let g64 = log_sig_backprop(path.view(), w.view(), 4, method, &opts).unwrap();
        let g32 =
            log_sig_backprop(to_f32(&path).view(), to_f32(&w).view(), 4, method, &opts).unwrap();
        assert_close(&format!("{method:?}"), &to_f64(&g32), &g64, 2e-4, 2e-4);
    }
}

#[test]
fn log_sig_threads_agree() {
    let path = random(&[13, 16, 3], 31);
    for method in METHODS {
        let one = SigOptions::default().n_jobs(1);
        let all = SigOptions::default().n_jobs(-1);
        assert_eq!(
            log_sig(path.view(), 4, method, &one).unwrap(),
            log_sig(path.view(), 4, method, &all).unwrap()
        );
    }
}

#[test]
fn log_sig_method_names() {
    for (text, want) in [
        ("expanded", LogSigMethod::Expanded),
        ("0", LogSigMethod::Expanded),
        ("words", LogSigMethod::Words),
        ("1", LogSigMethod::Words),
        ("lyndon", LogSigMethod::Lyndon),
        ("2", LogSigMethod::Lyndon),
        ("bch", LogSigMethod::Bch),
        ("3", LogSigMethod::Bch),
    ] {
        assert_eq!(text.parse::<LogSigMethod>().unwrap(), want);
    }
    for bad in ["4", "-1", "brackets", ""] {
        assert!(matches!(
            bad.parse::<LogSigMethod>(),
            Err(Error::Invalid(_))
        ));
    }
    assert_eq!(LogSigMethod::default(), LogSigMethod::Words);
}

#[test]
fn log_sig_bad_inputs_are_errors() {
    let opts = SigOptions::default();
    let path = random(&[2, 5, 3], 1);
    for method in METHODS {
        let err = log_sig(path.view(), 0, method, &opts).unwrap_err();
        assert!(
            matches!(err, Error::NotPositive { what: "degree" }),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains("degree must be a positive integer"));
        let s = sig(path.view(), 2, &opts).unwrap();
        assert!(matches!(
            sig_to_log_sig(s.view(), 3, 0, method, &opts),
            Err(Error::NotPositive { what: "degree" })
        ));
        assert!(matches!(
            sig_to_log_sig(s.view(), 0, 2, method, &opts),
            Err(Error::NotPositive { what: "dimension" })
        ));
        // A signature of the wrong length for (dimension, degree).
        assert!(matches!(
            sig_to_log_sig(s.view(), 3, 3, method, &opts),
            Err(Error::Length { what: "sig", .. })
        ));
        assert!(matches!(
            sig_to_log_sig(s.view(), 2, 2, method, &opts),
            Err(Error::Length { what: "sig", .. })
        ));
        // Derivatives shaped for another method or another batch.
        let l = log_sig(path.view(), 2, method, &opts).unwrap();
        let longer = ArrayD::<f64>::zeros(IxDyn(&[2, l.shape()[1] + 1]));
        assert!(matches!(
            log_sig_backprop(path.view(), longer.view(), 2, method, &opts),
            Err(Error::Length { .. })
        ));
        let other_batch = ArrayD::<f64>::zeros(IxDyn(&[3, l.shape()[1]]));
        assert!(matches!(
            log_sig_backprop(path.view(), other_batch.view(), 2, method, &opts),
            Err(Error::BatchMismatch { .. })
        ));
        let gs = sig_to_log_sig(s.view(), 3, 2, method, &opts).unwrap();
        let mut nan = gs.clone();
        nan[[1, 0]] = f64::NAN;
        assert!(matches!(
            sig_to_log_sig_backprop(s.view(), nan.view(), 3, 2, method, &opts),
            Err(Error::NonFiniteValue { .. })
        ));
        let gpu = SigOptions::default().device(Device::Gpu(None));
        // Both have a GPU kernel: without an adapter, asking for one is a device error.
        if crate::common::no_adapter() {
            assert!(matches!(
                log_sig(path.view(), 2, method, &gpu),
                Err(Error::Device(_))
            ));
            assert!(matches!(
                sig_to_log_sig(s.view(), 3, 2, method, &gpu),
                Err(Error::Device(_))
            ));
        }
    }
    assert!(matches!(
        log_sig_length(3, 0, &opts),
        Err(Error::NotPositive { what: "degree" })
    ));
    assert!(matches!(
        log_sig_length(0, 3, &opts),
        Err(Error::NotPositive { what: "dimension" })
    ));
    assert!(matches!(
        log_sig_length(10, 100, &opts),
        Err(Error::Overflow { .. })
    ));
    assert!(matches!(lyndon_words(10, 100), Err(Error::Overflow { .. })));
    assert!(matches!(lyndon_words(3, 0), Err(Error::NotPositive { .. })));
    assert!(matches!(
        lyndon_word_index(0, 2, &[0]),
        Err(Error::NotPositive { .. })
    ));
    let wide = random(&[1, 3, 10], 2);
    assert!(matches!(
        log_sig(wide.view(), 100, LogSigMethod::Lyndon, &opts),
        Err(Error::Overflow { .. })
    ));
}

#[test]
fn log_sig_degenerate_paths() {
    // 0 or 1 points: the signature is trivial and so is its logarithm.
    for len in [0, 1] {
        let path = ArrayD::<f64>::zeros(IxDyn(&[2, len, 3]));
        for method in METHODS {
            let l = log_sig(path.view(), 3, method, &Default::default()).unwrap();
            assert!(l.iter().all(|&v| v == 0.0));
        }
    }
    // An empty batch.
    let path = ArrayD::<f64>::zeros(IxDyn(&[0, 4, 2]));
    let l = log_sig(path.view(), 3, LogSigMethod::Lyndon, &Default::default()).unwrap();
    assert_eq!(l.shape(), &[0, 5]);
}
