//! Properties that need no reference: exact signatures, Chen's identity, gradients against finite
//! differences, and serial against parallel runs.

use crate::common::{assert_gradient, random};
use ndarray::{s, Array1, ArrayD, IxDyn};
use proptest::prelude::*;
use roughsig::{sig, sig_backprop, SigOptions, TensorShape};

/// `exp(z)` level by level, the naive way: `z^{⊗k}/k!`.
fn naive_exp(z: &[f64], degree: usize) -> Vec<f64> {
    let mut out = Vec::new();
    let mut level = vec![1.0];
    for k in 1..=degree {
        level = level
            .iter()
            .flat_map(|a| z.iter().map(move |b| a * b / k as f64))
            .collect();
        out.extend_from_slice(&level);
    }
    out
}

#[test]
fn sig_forward_straight_line_is_exp() {
    for (d, n, len) in [(1, 6, 5), (2, 5, 7), (3, 4, 3), (4, 3, 10), (7, 2, 4)] {
        let start = random(&[d], 1);
        let z = random(&[d], 2);
        // Uneven spacing along the line does not change the signature.
        let ts: Vec<f64> = (0..len)
            .map(|i| (i * i) as f64 / ((len - 1) * (len - 1)) as f64)
            .collect();
        let path = ArrayD::from_shape_fn(IxDyn(&[len, d]), |ix| {
            start[[ix[1]]] + ts[ix[0]] * z[[ix[1]]]
        });
        let got = sig(path.view(), n, &SigOptions::default()).unwrap();
        let want = naive_exp(z.as_slice().unwrap(), n);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-13 * (1.0 + w.abs()),
                "d={d} n={n}: {g} vs {w}"
            );
        }
        let got32 = sig(path.mapv(|x| x as f32).view(), n, &SigOptions::default()).unwrap();
        for (g, w) in got32.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "f32 d={d} n={n}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn sig_forward_trivial_cases() {
    let opts = SigOptions::default().scalar_term(true);
    for len in [0, 1] {
        for flags in 0..4 {
            let o = opts
                .clone()
                .time_aug(flags & 1 == 1)
                .lead_lag(flags & 2 == 2);
            let s = sig(random(&[2, len, 3], 3).view(), 3, &o).unwrap();
            assert_eq!(s.shape(), &[2, roughsig::sig_length(3, 3, &o).unwrap()]);
            for row in s.outer_iter() {
                assert_eq!(row[0], 1.0);
                assert!(row.iter().skip(1).all(|&x| x == 0.0));
            }
        }
    }
    // Degree 0: only the scalar term, or nothing.
    assert_eq!(
        sig(random(&[4, 2], 1).view(), 0, &opts)
            .unwrap()
            .as_slice()
            .unwrap(),
        &[1.0]
    );
    assert_eq!(
        sig(random(&[4, 2], 1).view(), 0, &SigOptions::default())
            .unwrap()
            .len(),
        0
    );
    // An empty batch keeps its shape.
    assert_eq!(
        sig(random(&[0, 5, 3], 1).view(), 2, &opts).unwrap().shape(),
        &[0, 13]
    );
    // Several batch axes are kept.
    assert_eq!(
        sig(random(&[2, 3, 5, 2], 1).view(), 2, &opts)
            .unwrap()
            .shape(),
        &[2, 3, 7]
    );
}

/// Chen's identity: the signature of a concatenation is the product of the pieces' signatures, with
/// or without lead-lag and time (the pieces' end times chosen so the time step matches).
fn chen_holds(
    d: usize,
    n: usize,
    len: usize,
    cut: usize,
    time_aug: bool,
    lead_lag: bool,
    seed: u64,
) {
    let path = random(&[len, d], seed);
    let steps = |points: usize| if lead_lag { 2 * (points - 1) } else { points - 1 } as f64;
    let opts_for = |points: usize| {
        SigOptions::default()
            .time_aug(time_aug)
            .lead_lag(lead_lag)
            .end_time(0.7 * steps(points))
    };
    let whole = sig(path.view(), n, &opts_for(len)).unwrap();
    let a = sig(path.slice(s![..cut + 1, ..]), n, &opts_for(cut + 1)).unwrap();
    let b = sig(path.slice(s![cut.., ..]), n, &opts_for(len - cut)).unwrap();
    let joined = roughsig::sig_combine(a.view(), b.view(), d, n, &opts_for(len)).unwrap();
    for (x, y) in whole.iter().zip(joined.iter()) {
        assert!((x - y).abs() <= 1e-11 * (1.0 + x.abs()), "{x} vs {y}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn sig_forward_chen_identity(d in 1usize..5, n in 1usize..6, len in 2usize..12, cut_frac in 0.0f64..1.0,
                                 time_aug: bool, lead_lag: bool, seed in 0u64..1000) {
        let cut = 1 + ((len - 2) as f64 * cut_frac) as usize;
        chen_holds(d, n, len, cut.min(len - 1), time_aug, lead_lag, seed);
    }
}

/// `F(path) = <w, sig(path)>`.
fn objective(path: &ArrayD<f64>, w: &ArrayD<f64>, n: usize, o: &SigOptions) -> f64 {
    (sig(path.view(), n, o).unwrap() * w).sum()
}

#[test]
fn sig_backward_matches_finite_differences() {
    for (d, n, len) in [(1, 4, 6), (2, 4, 7), (3, 3, 5), (2, 1, 4), (3, 2, 2)] {
        for flags in 0..8 {
            let o = SigOptions::default()
                .time_aug(flags & 1 == 1)
                .lead_lag(flags & 2 == 2)
                .scalar_term(flags & 4 == 4)
                .end_time(1.7);
            let path = random(&[2, len, d], (d * 100 + n * 10 + flags) as u64);
            let sigs = sig(path.view(), n, &o).unwrap();
            let w = random(sigs.shape(), 7);
            let grad = sig_backprop(path.view(), sigs.view(), w.view(), n, &o).unwrap();
            assert_gradient(&format!("d={d} n={n} flags={flags}"), &path, &grad, |p| {
                objective(p, &w, n, &o)
            });
        }
    }
}

#[test]
fn combine_and_join_backprop_match_finite_differences() {
    let (d, n) = (3, 4);
    let o = SigOptions::default();
    let a = sig(random(&[2, 5, d], 1).view(), n, &o).unwrap();
    let b = sig(random(&[2, 4, d], 2).view(), n, &o).unwrap();
    let w = random(a.shape(), 3);
    let (da, db) = roughsig::sig_combine_backprop(w.view(), a.view(), b.view(), d, n, &o).unwrap();
    let combine = |x: &ArrayD<f64>, y: &ArrayD<f64>| {
        (roughsig::sig_combine(x.view(), y.view(), d, n, &o).unwrap() * &w).sum()
    };
    assert_gradient("combine sig1", &a, &da, |x| combine(x, &b));
    assert_gradient("combine sig2", &b, &db, |y| combine(&a, y));
    let v = random(&[2, d], 4);
    for prepend in [false, true] {
        let (ds, dv) =
            roughsig::sig_join_backprop(w.view(), a.view(), v.view(), d, n, prepend, &o).unwrap();
        let join = |x: &ArrayD<f64>, y: &ArrayD<f64>| {
            (roughsig::sig_join(x.view(), y.view(), d, n, prepend, &o).unwrap() * &w).sum()
        };
        assert_gradient("join sig", &a, &ds, |x| join(x, &v));
        assert_gradient("join displacement", &v, &dv, |y| join(&a, y));
    }
}

#[test]
fn transform_path_backprop_is_the_adjoint() {
    for flags in 0..4 {
        let o = SigOptions::default()
            .time_aug(flags & 1 == 1)
            .lead_lag(flags & 2 == 2)
            .end_time(3.0);
        let x = random(&[2, 6, 3], flags as u64);
        let tx = roughsig::transform_path(x.view(), &o).unwrap();
        let t0 = roughsig::transform_path((&x * 0.0).view(), &o).unwrap();
        let g = random(tx.shape(), 9);
        let back = roughsig::transform_path_backprop(g.view(), &o).unwrap();
        let lhs = ((&tx - &t0) * &g).sum();
        let rhs = (&x * &back).sum();
        assert!(
            (lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()),
            "flags={flags}: {lhs} vs {rhs}"
        );
    }
}

#[test]
fn serial_and_parallel_agree_exactly() {
    let path = random(&[7, 20, 3], 5);
    let o = |n_jobs| {
        SigOptions::default()
            .lead_lag(true)
            .time_aug(true)
            .n_jobs(n_jobs)
    };
    let one = sig(path.view(), 4, &o(1)).unwrap();
    let w = random(one.shape(), 6);
    let g1 = sig_backprop(path.view(), one.view(), w.view(), 4, &o(1)).unwrap();
    for jobs in [2, 3, -1, -2] {
        assert_eq!(one, sig(path.view(), 4, &o(jobs)).unwrap());
        assert_eq!(
            g1,
            sig_backprop(path.view(), one.view(), w.view(), 4, &o(jobs)).unwrap()
        );
    }
}

#[test]
fn non_contiguous_input_is_read_correctly() {
    let path = random(&[3, 8], 11);
    let transposed_copy = path.t().to_owned();
    let a = sig(path.t(), 3, &SigOptions::default()).unwrap();
    let b = sig(transposed_copy.view(), 3, &SigOptions::default()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn tensor_shape_words_round_trip() {
    let shape = TensorShape::new(3, 4).unwrap();
    for i in 0..shape.len() {
        let w = shape.index_word(i).unwrap();
        assert_eq!(shape.word_index(&w), Some(i));
    }
    assert_eq!(shape.word_index(&[2, 0]), Some(3 + 2 * 3));
    assert_eq!(shape.index_word(shape.len()), None);
}

#[test]
fn long_path_reverse_sweep_stays_accurate() {
    // Recovering prefixes with exp(-z) over many steps: the gradient of a 2000-step path still
    // matches the finite difference of its last point.
    let path = random(&[2000, 2], 3) * 0.05;
    let o = SigOptions::default();
    let s = sig(path.view(), 4, &o).unwrap();
    let w = Array1::from_elem(s.len(), 1.0).into_dyn();
    let g = sig_backprop(path.view(), s.view(), w.view(), 4, &o).unwrap();
    let h = 1e-6;
    for point in [0, 1000, 1999] {
        let bump = |delta: f64| {
            let mut p = path.clone();
            p[[point, 0]] += delta;
            objective(&p, &w, 4, &o)
        };
        let fd = (bump(h) - bump(-h)) / (2.0 * h);
        assert!(
            (fd - g[[point, 0]]).abs() < 1e-6,
            "point {point}: {} vs {fd}",
            g[[point, 0]]
        );
    }
}

/// Batches large enough to be computed several paths at a time (interleaved lanes) give each path
/// the same signature and gradient as computing it alone, for every flag combination.
#[test]
fn batched_lanes_match_single_paths() {
    for flags in 0..4 {
        let o = SigOptions::default()
            .time_aug(flags & 1 == 1)
            .lead_lag(flags & 2 == 2)
            .scalar_term(true)
            .end_time(2.0);
        let (batch, len, d, n) = (19, 9, 3, 3);
        let path = random(&[batch, len, d], 40 + flags as u64);
        let sigs = sig(path.view(), n, &o).unwrap();
        let w = random(sigs.shape(), 41);
        let grads = sig_backprop(path.view(), sigs.view(), w.view(), n, &o).unwrap();
        for i in 0..batch {
            let one = path.slice(s![i..i + 1, .., ..]);
            let s1 = sig(one, n, &o).unwrap();
            let ws = w.slice(s![i..i + 1, ..]);
            let g1 = sig_backprop(one, s1.view(), ws, n, &o).unwrap();
            for (a, b) in sigs.slice(s![i, ..]).iter().zip(s1.iter()) {
                assert!(
                    (a - b).abs() <= 1e-13 * (1.0 + b.abs()),
                    "flags={flags} item {i}: {a} vs {b}"
                );
            }
            for (a, b) in grads.slice(s![i, .., ..]).iter().zip(g1.iter()) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "flags={flags} item {i}: {a} vs {b}"
                );
            }
        }
        let s32 = sig(path.mapv(|x| x as f32).view(), n, &o).unwrap();
        for (a, b) in s32.iter().zip(sigs.iter()) {
            assert!(
                (*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "f32 flags={flags}: {a} vs {b}"
            );
        }
    }
}

/// The same across the shapes small enough for interleaved lanes (degrees 1 to 5, dimensions 1 to
/// 8), in f64 and f32, with batches that are not a multiple of any lane count. (4, 4) takes 8 f32
/// lanes forward and 16 backward.
#[test]
fn batched_lanes_match_single_paths_across_shapes() {
    let o = SigOptions::default();
    for (d, n) in [
        (1, 5),
        (2, 5),
        (2, 1),
        (3, 4),
        (3, 2),
        (4, 3),
        (4, 4),
        (5, 2),
        (7, 2),
        (8, 2),
    ] {
        let (batch, len) = (37, 6);
        let path = random(&[batch, len, d], 70 + 10 * d as u64 + n as u64) * 0.5;
        let sigs = sig(path.view(), n, &o).unwrap();
        let w = random(sigs.shape(), 71);
        let grads = sig_backprop(path.view(), sigs.view(), w.view(), n, &o).unwrap();
        let p32 = path.mapv(|x| x as f32);
        let s32 = sig(p32.view(), n, &o).unwrap();
        let w32 = w.mapv(|x| x as f32);
        let g32 = sig_backprop(p32.view(), s32.view(), w32.view(), n, &o).unwrap();
        for i in 0..batch {
            let one = path.slice(s![i..i + 1, .., ..]);
            let s1 = sig(one, n, &o).unwrap();
            let g1 = sig_backprop(one, s1.view(), w.slice(s![i..i + 1, ..]), n, &o).unwrap();
            let close = |a: f64, b: f64, tol: f64, what: &str| {
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "d={d} n={n} item {i} {what}: {a} vs {b}"
                );
            };
            for (a, b) in sigs.slice(s![i, ..]).iter().zip(s1.iter()) {
                close(*a, *b, 1e-13, "sig");
            }
            for (a, b) in grads.slice(s![i, .., ..]).iter().zip(g1.iter()) {
                close(*a, *b, 1e-12, "grad");
            }
            let one = p32.slice(s![i..i + 1, .., ..]);
            let s1 = sig(one, n, &o).unwrap();
            let g1 = sig_backprop(one, s1.view(), w32.slice(s![i..i + 1, ..]), n, &o).unwrap();
            for (a, b) in s32.slice(s![i, ..]).iter().zip(s1.iter()) {
                close(*a as f64, *b as f64, 1e-5, "f32 sig");
            }
            for (a, b) in g32.slice(s![i, .., ..]).iter().zip(g1.iter()) {
                close(*a as f64, *b as f64, 1e-4, "f32 grad");
            }
        }
    }
}

/// A batch smaller than the thread count is cut in time and joined with Chen's identity: signatures
/// and gradients match the serial computation to rounding, with and without the transforms.
#[test]
fn time_split_matches_serial() {
    for flags in 0..4 {
        let o = |n_jobs| {
            SigOptions::default()
                .time_aug(flags & 1 == 1)
                .lead_lag(flags & 2 == 2)
                .scalar_term(true)
                .n_jobs(n_jobs)
                .device(roughsig::Device::Cpu)
        };
        let path = random(&[2, 1500, 3], 60 + flags as u64) * 0.1;
        let serial = sig(path.view(), 4, &o(1)).unwrap();
        let w = random(serial.shape(), 61);
        let serial_grad = sig_backprop(path.view(), serial.view(), w.view(), 4, &o(1)).unwrap();
        for jobs in [2, 3, 5] {
            let split = sig(path.view(), 4, &o(jobs)).unwrap();
            for (a, b) in split.iter().zip(serial.iter()) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "flags={flags} jobs={jobs}: {a} vs {b}"
                );
            }
            let grad = sig_backprop(path.view(), serial.view(), w.view(), 4, &o(jobs)).unwrap();
            for (a, b) in grad.iter().zip(serial_grad.iter()) {
                assert!(
                    (a - b).abs() <= 1e-10 * (1.0 + b.abs()),
                    "grad flags={flags} jobs={jobs}: {a} vs {b}"
                );
            }
        }
    }
}

/// Lead-lag signatures equal the signatures of the materialised lead-lag path, which take dense
/// steps: one thread, two (the time split cuts paths at odd steps too), and f32; their gradients
/// match finite differences. Here, at transformed dimensions 9, 10, 16 and 17, the reverse sweep
/// skips the still half of each step's channels; forward, f64 at 16 does (the others take dense
/// steps in reversed words, which are faster).
#[test]
fn lead_lag_steps_match_the_materialised_path() {
    for (d, n, len, batch) in [(4, 3, 40, 3), (5, 3, 30, 2), (8, 2, 30, 2), (5, 2, 700, 1)] {
        for time_aug in [false, true] {
            let path = random(&[batch, len, d], (d * 10 + n) as u64);
            let plain = SigOptions::default()
                .time_aug(time_aug)
                .end_time(1.3)
                .n_jobs(1);
            let ll = plain.clone().lead_lag(true);
            let materialised = roughsig::transform_path(path.view(), &ll).unwrap();
            let plain = plain.time_aug(false);
            let want = sig(materialised.view(), n, &plain).unwrap();
            for jobs in [1, 2] {
                let o = ll.clone().n_jobs(jobs);
                let got = sig(path.view(), n, &o).unwrap();
                let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!(
                        (g - w).abs() <= 1e-12 * scale,
                        "d={d} n={n} time={time_aug} jobs={jobs}: {g} vs {w}"
                    );
                }
                let got32 = sig(path.mapv(|x| x as f32).view(), n, &o).unwrap();
                for (g, w) in got32.iter().zip(want.iter()) {
                    assert!(
                        (*g as f64 - w).abs() <= 1e-4 * scale,
                        "f32 d={d} n={n} time={time_aug}: {g} vs {w}"
                    );
                }
            }
            // The reverse sweep, split in time on two threads, against one thread.
            let sigs = sig(path.view(), n, &ll).unwrap();
            let derivs = random(sigs.shape(), 9);
            let one = sig_backprop(path.view(), sigs.view(), derivs.view(), n, &ll).unwrap();
            let two_threads = ll.clone().n_jobs(2);
            let two = sig_backprop(path.view(), sigs.view(), derivs.view(), n, &two_threads);
            let scale = one.iter().fold(1.0f64, |m, x| m.max(x.abs()));
            for (a, b) in two.unwrap().iter().zip(one.iter()) {
                assert!(
                    (a - b).abs() <= 1e-9 * scale,
                    "backprop d={d} n={n}: {a} vs {b}"
                );
            }
            if len <= 40 {
                let short = path.slice(s![.., ..6, ..]).to_owned().into_dyn();
                let sigs = sig(short.view(), n, &ll).unwrap();
                let w = random(sigs.shape(), 5);
                let grad = sig_backprop(short.view(), sigs.view(), w.view(), n, &ll).unwrap();
                assert_gradient(&format!("lead-lag d={d} n={n}"), &short, &grad, |p| {
                    objective(p, &w, n, &ll)
                });
            }
        }
    }
}
