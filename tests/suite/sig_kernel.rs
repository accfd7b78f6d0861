//! Signature kernels: every pySigLib 4.0.0 reference case (f64 and f32), the limit `<S(x), S(y)>`,
//! gradients against finite differences, Gram matrices, and bad input.

use crate::common::{assert_close, random, reference_dir, to_f32, to_f64, Case};
use ndarray::{s, Array3, ArrayD, Axis, IxDyn};
use roughsig::{
    sig, sig_kernel, sig_kernel_backprop, sig_kernel_gram, sig_kernel_gram_backprop,
    sig_kernel_gram_sym, Error, SigKernelOptions, SigOptions, StaticKernel,
};

/// f32 against the f64 reference, relative to the array's largest entry. The scheme's rounding
/// error grows with the number of grid cells (up to ~2000 here) and kernels reach ~30, so the f32
/// results carry ~1e-5 relative error; gradients, sums of many cell contributions, a bit more.
const F32_TOL: (f64, f64) = (1e-4, 1e-4);
const F32_GRAD_TOL: (f64, f64) = (5e-4, 5e-4);

fn dyadic_order(case: &Case) -> (usize, usize) {
    let v = &case.json["params"]["dyadic_order"];
    match v.as_array() {
        Some(pair) => (
            pair[0].as_u64().unwrap() as usize,
            pair[1].as_u64().unwrap() as usize,
        ),
        None => {
            let l = v.as_u64().unwrap() as usize;
            (l, l)
        }
    }
}

fn case_options(case: &Case) -> SigKernelOptions {
    SigKernelOptions::default()
        .dyadic_order(dyadic_order(case))
        .time_aug(case.flag("time_aug"))
        .lead_lag(case.flag("lead_lag"))
        .end_time(case.end_time())
        .return_grid(case.flag("return_grid"))
}

fn check_count(function: &str, checked: usize) {
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::golden_dir().join("index.json")).unwrap(),
    )
    .unwrap();
    let expected = index["counts"][function].as_u64().unwrap() as usize;
    assert_eq!(
        checked, expected,
        "{function}: checked {checked} of {expected}"
    );
}

#[test]
fn sig_kernel_golden() {
    let cases = Case::all("sig_kernel");
    for case in &cases {
        let (x, y) = (case.array("path1"), case.array("path2"));
        let want = if case.flag("return_grid") {
            case.array("grid")
        } else {
            case.array("kernel")
        };
        let opts = case_options(case);
        let got = sig_kernel(x.view(), y.view(), &opts).unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&case.name, &got, &want, rtol, atol);
        let got32 = sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &opts).unwrap();
        assert_close(
            &format!("{} f32", case.name),
            &to_f64(&got32),
            &want,
            F32_TOL.0,
            F32_TOL.1,
        );
    }
    check_count("sig_kernel", cases.len());
}

/// pySigLib returns `(1, L, d)` gradients for unbatched `(L, d)` paths; roughsig returns `(L, d)`.
fn unbatched_quirk(want: ArrayD<f64>, path: &ArrayD<f64>) -> ArrayD<f64> {
    if path.ndim() == 2 && want.ndim() == 3 {
        assert_eq!(want.shape()[0], 1);
        want.index_axis_move(Axis(0), 0)
    } else {
        want
    }
}

/// Every `sig_kernel` and `sig_kernel_backprop` case of the reference set `set` (`counts` of each):
/// kernels and both gradients in f64 (1e-10, where `f64`) and in f32, with `options` read from
/// each case.
pub(crate) fn check_kernel_cases(
    set: &str,
    counts: (usize, usize),
    options: impl Fn(&Case) -> SigKernelOptions,
    f64: bool,
) {
    let dir = reference_dir(set);
    let (kernels, grads) = (
        Case::all_in(&dir, "sig_kernel"),
        Case::all_in(&dir, "sig_kernel_backprop"),
    );
    assert_eq!((kernels.len(), grads.len()), counts);
    for case in &kernels {
        let (x, y, opts) = (case.array("path1"), case.array("path2"), options(case));
        let want = case.array("kernel");
        if f64 {
            let got = sig_kernel(x.view(), y.view(), &opts).unwrap();
            assert_close(&case.name, &got, &want, 1e-10, 1e-12);
        }
        let got32 = sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &opts).unwrap();
        let (r, a) = F32_TOL;
        assert_close(&case.name, &to_f64(&got32), &want, r, a);
    }
    for case in &grads {
        let (x, y, d) = (
            case.array("path1"),
            case.array("path2"),
            case.array("derivs"),
        );
        let opts = options(case);
        let (want_x, want_y) = (case.array("path1_derivs"), case.array("path2_derivs"));
        if f64 {
            let (gx, gy) = sig_kernel_backprop(d.view(), x.view(), y.view(), &opts).unwrap();
            assert_close(&format!("{} dx", case.name), &gx, &want_x, 1e-10, 1e-12);
            assert_close(&format!("{} dy", case.name), &gy, &want_y, 1e-10, 1e-12);
        }
        let (x32, y32, d32) = (to_f32(&x), to_f32(&y), to_f32(&d));
        let (gx, gy) = sig_kernel_backprop(d32.view(), x32.view(), y32.view(), &opts).unwrap();
        let (r, a) = F32_GRAD_TOL;
        assert_close(
            &format!("{} dx f32", case.name),
            &to_f64(&gx),
            &want_x,
            r,
            a,
        );
        assert_close(
            &format!("{} dy f32", case.name),
            &to_f64(&gy),
            &want_y,
            r,
            a,
        );
    }
}

/// A case's static kernel, in the command line's syntax in its parameters.
fn static_kernel_of(case: &Case) -> StaticKernel {
    case.json["params"]["static_kernel"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// pySigLib's polynomial, Matérn and rational-quadratic kernels (`tests/data/static_kernels`, made
/// by `scripts/static_kernels_reference.py`), on the device `on` picks (f64 where `f64`).
pub(crate) fn check_point_kernel_cases(
    on: impl Fn(SigKernelOptions) -> SigKernelOptions,
    f64: bool,
) {
    let options = |case: &Case| on(case_options(case).static_kernel(static_kernel_of(case)));
    check_kernel_cases("static_kernels", (6, 6), options, f64);
}

#[test]
fn point_kernels_match_pysiglib() {
    check_point_kernel_cases(|o| o.device(roughsig::Device::Cpu), true);
}

/// pySigLib's polynomial solver (`tests/data/polynomial_solver`, made by
/// `scripts/polynomial_solver_reference.py`): orders 2 to 16, several static kernels and flags,
/// `normalize`, `return_grid`; kernels and both gradients in f64 (1e-10) and f32.
#[test]
fn polynomial_solver_matches_pysiglib() {
    check_kernel_cases("polynomial_solver", (7, 5), polynomial_options, true);
}

/// The options of a polynomial solver case.
pub(crate) fn polynomial_options(case: &Case) -> SigKernelOptions {
    SigKernelOptions::default()
        .solver(roughsig::KernelSolver::Polynomial {
            order: case.usize("order"),
        })
        .static_kernel(static_kernel_of(case))
        .time_aug(case.flag("time_aug"))
        .lead_lag(case.flag("lead_lag"))
        .normalize(case.flag("normalize"))
        .return_grid(case.flag("return_grid"))
}

/// At a high order the polynomial solver converges to the PDE's solution, which the
/// finite-difference scheme approaches as it refines; its gradients (normalised, of the grid, of
/// Gram matrices) agree with central differences; bad orders are errors.
#[test]
fn polynomial_solver_converges_and_differentiates() {
    let (x, y) = (random(&[2, 6, 2], 71) * 0.5, random(&[2, 5, 2], 72) * 0.5);
    let poly =
        |order| SigKernelOptions::default().solver(roughsig::KernelSolver::Polynomial { order });
    let exact = sig_kernel(x.view(), y.view(), &poly(40)).unwrap();
    let fine = sig_kernel(
        x.view(),
        y.view(),
        &SigKernelOptions::default().dyadic_order(7),
    )
    .unwrap();
    assert_close("against finite differences", &fine, &exact, 1e-5, 1e-5);
    let low = sig_kernel(x.view(), y.view(), &poly(20)).unwrap();
    assert_close("orders 20 and 40", &low, &exact, 1e-13, 1e-13);

    let w = random(&[2], 73);
    for opts in [
        poly(6),
        poly(5).normalize(true).time_aug(true),
        poly(4)
            .static_kernel(StaticKernel::Rbf { sigma: 0.9 })
            .lead_lag(true),
    ] {
        let (gx, gy) = sig_kernel_backprop(w.view(), x.view(), y.view(), &opts).unwrap();
        let nx = numeric_grad(&x, |xp| objective(xp, &y, &w, &opts));
        let ny = numeric_grad(&y, |yp| objective(&x, yp, &w, &opts));
        assert_close(&format!("dx {opts:?}"), &gx, &nx, 1e-6, 1e-7);
        assert_close(&format!("dy {opts:?}"), &gy, &ny, 1e-6, 1e-7);
    }
    let grid = poly(6).return_grid(true);
    let dgrid = random(&[2, 6, 5], 74);
    let (gx, _) = sig_kernel_backprop(dgrid.view(), x.view(), y.view(), &grid).unwrap();
    let nx = numeric_grad(&x, |xp| {
        (&sig_kernel(xp.view(), y.view(), &grid).unwrap() * &dgrid).sum()
    });
    assert_close("grid dx", &gx, &nx, 1e-6, 1e-7);
    let dgram = random(&[2, 2], 75);
    let (gx, _) = sig_kernel_gram_backprop(dgram.view(), x.view(), y.view(), &poly(6)).unwrap();
    let nx = numeric_grad(&x, |xp| {
        (&sig_kernel_gram(xp.view(), y.view(), &poly(6)).unwrap() * &dgram).sum()
    });
    assert_close("gram dx", &gx, &nx, 1e-6, 1e-7);

    for bad in [poly(1), poly(65), poly(8).dyadic_order(1)] {
        assert!(matches!(
            sig_kernel(x.view(), y.view(), &bad),
            Err(Error::Invalid(_))
        ));
    }
}

#[test]
fn sig_kernel_backprop_golden() {
    let cases = Case::all("sig_kernel_backprop");
    for case in &cases {
        let (x, y, d) = (
            case.array("path1"),
            case.array("path2"),
            case.array("derivs"),
        );
        let want_x = unbatched_quirk(case.array("path1_derivs"), &x);
        let want_y = unbatched_quirk(case.array("path2_derivs"), &y);
        let opts = case_options(case);
        let (gx, gy) = sig_kernel_backprop(d.view(), x.view(), y.view(), &opts).unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&format!("{} dx", case.name), &gx, &want_x, rtol, atol);
        assert_close(&format!("{} dy", case.name), &gy, &want_y, rtol, atol);
        let (gx32, gy32) = sig_kernel_backprop(
            to_f32(&d).view(),
            to_f32(&x).view(),
            to_f32(&y).view(),
            &opts,
        )
        .unwrap();
        let (r, a) = F32_GRAD_TOL;
        assert_close(
            &format!("{} dx f32", case.name),
            &to_f64(&gx32),
            &want_x,
            r,
            a,
        );
        assert_close(
            &format!("{} dy f32", case.name),
            &to_f64(&gy32),
            &want_y,
            r,
            a,
        );
        if case.json["outputs"].get("kernel").is_some() {
            let k = sig_kernel(x.view(), y.view(), &opts).unwrap();
            assert_close(&case.name, &k, &case.array("kernel"), rtol, atol);
        }
    }
    check_count("sig_kernel_backprop", cases.len());
}

/// `1 + Σ_k <S_k(x), S_k(y)>` from truncated signatures.
fn sig_inner(x: &ArrayD<f64>, y: &ArrayD<f64>, degree: usize, opts: &SigOptions) -> f64 {
    let sx = sig(x.view(), degree, opts).unwrap();
    let sy = sig(y.view(), degree, opts).unwrap();
    1.0 + sx.iter().zip(sy.iter()).map(|(a, b)| a * b).sum::<f64>()
}

/// A short smooth path: `scale·(sin, cos)`-like curves sampled at `len` points.
fn smooth(len: usize, dim: usize, phase: f64, scale: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[len, dim]), |ix| {
        let t = ix[0] as f64 / (len - 1) as f64;
        scale * ((1.3 + ix[1] as f64) * t + phase + 0.7 * ix[1] as f64).sin()
    })
}

#[test]
fn sig_kernel_converges_to_the_signature_inner_product() {
    // The scheme is second order in the mesh: at λ = 7 the error is far below the tolerance, and
    // the truncation at degree 12 drops terms of size ~|x|^12|y|^12/12!².
    let x = smooth(4, 2, 0.1, 0.6);
    let y = smooth(3, 2, 1.2, 0.5);
    for (time_aug, lead_lag, degree) in [(false, false, 12), (true, false, 10), (false, true, 8)] {
        let sig_opts = SigOptions::default().time_aug(time_aug).lead_lag(lead_lag);
        let want = sig_inner(&x, &y, degree, &sig_opts);
        let opts = SigKernelOptions::default()
            .dyadic_order((7, 7))
            .time_aug(time_aug)
            .lead_lag(lead_lag);
        let got = sig_kernel(x.view(), y.view(), &opts).unwrap()[[]];
        assert!(
            (got - want).abs() <= 1e-6 * want.abs(),
            "ta {time_aug} ll {lead_lag}: PDE {got}, signatures {want}"
        );
        // And the error shrinks with refinement.
        let coarse = opts.clone().dyadic_order((2, 2));
        let got2 = sig_kernel(x.view(), y.view(), &coarse).unwrap()[[]];
        assert!((got2 - want).abs() > (got - want).abs());
    }
}

#[test]
fn scaled_linear_is_the_linear_kernel_of_scaled_paths() {
    let (x, y) = (random(&[3, 6, 2], 1), random(&[3, 5, 2], 2));
    let s = 1.7;
    let scaled = SigKernelOptions::default()
        .static_kernel(StaticKernel::ScaledLinear { scale: s })
        .dyadic_order((1, 0));
    let plain = SigKernelOptions::default().dyadic_order((1, 0));
    let a = sig_kernel(x.view(), y.view(), &scaled).unwrap();
    let b = sig_kernel((&x * s).view(), (&y * s).view(), &plain).unwrap();
    assert_close("scaled linear", &a, &b, 1e-12, 1e-13);
}

/// `F(x, y) = Σ_i w_i k(x_i, y_i)`.
fn objective(x: &ArrayD<f64>, y: &ArrayD<f64>, w: &ArrayD<f64>, opts: &SigKernelOptions) -> f64 {
    let k = sig_kernel(x.view(), y.view(), opts).unwrap();
    k.iter().zip(w.iter()).map(|(a, b)| a * b).sum()
}

/// Central differences of `f` at `x`, one coordinate at a time.
fn numeric_grad(x: &ArrayD<f64>, f: impl Fn(&ArrayD<f64>) -> f64) -> ArrayD<f64> {
    let h = 1e-6;
    let mut g = ArrayD::zeros(x.raw_dim());
    for i in 0..x.len() {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp.as_slice_mut().unwrap()[i] += h;
        xm.as_slice_mut().unwrap()[i] -= h;
        g.as_slice_mut().unwrap()[i] = (f(&xp) - f(&xm)) / (2.0 * h);
    }
    g
}

/// Every static kernel but a custom one: bilinear, radial, and the polynomial with an integer and a
/// fractional degree.
pub(crate) fn kernels() -> [StaticKernel; 9] {
    [
        StaticKernel::Linear,
        StaticKernel::ScaledLinear { scale: 0.8 },
        StaticKernel::Rbf { sigma: 0.7 },
        StaticKernel::Matern12 { sigma: 0.9 },
        StaticKernel::Matern32 { sigma: 0.6 },
        StaticKernel::Matern52 { sigma: 1.1 },
        StaticKernel::RationalQuadratic {
            sigma: 0.7,
            alpha: 1.6,
        },
        // An integer degree (negative bases kept) and a fractional one (bases clamped at 0).
        StaticKernel::Polynomial {
            degree: 3.0,
            gamma: 0.2,
            scale: 0.6,
        },
        StaticKernel::Polynomial {
            degree: 1.5,
            gamma: 2.0,
            scale: 0.4,
        },
    ]
}

#[test]
fn sig_kernel_backprop_matches_finite_differences() {
    let (x, y) = (random(&[2, 5, 2], 3), random(&[2, 4, 2], 4));
    let w = ArrayD::from_shape_vec(IxDyn(&[2]), vec![0.7, -1.3]).unwrap();
    let mut checked = 0;
    for kernel in kernels() {
        for (time_aug, lead_lag) in [(false, false), (true, false), (false, true), (true, true)] {
            for dyadic_order in [(0, 0), (1, 1), (0, 1)] {
                for normalize in [false, true] {
                    let opts = SigKernelOptions::default()
                        .static_kernel(kernel.clone())
                        .time_aug(time_aug)
                        .lead_lag(lead_lag)
                        .end_time(1.5)
                        .dyadic_order(dyadic_order)
                        .normalize(normalize)
                        .n_jobs(1);
                    let what = format!("{opts:?}");
                    let (gx, gy) =
                        sig_kernel_backprop(w.view(), x.view(), y.view(), &opts).unwrap();
                    let nx = numeric_grad(&x, |xp| objective(xp, &y, &w, &opts));
                    let ny = numeric_grad(&y, |yp| objective(&x, yp, &w, &opts));
                    assert_close(&format!("dx {what}"), &gx, &nx, 1e-6, 1e-7);
                    assert_close(&format!("dy {what}"), &gy, &ny, 1e-6, 1e-7);
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 9 * 24);
}

#[test]
fn sig_kernel_backprop_of_the_whole_grid() {
    let (x, y) = (random(&[4, 2], 5), random(&[3, 2], 6));
    for kernel in kernels() {
        let opts = SigKernelOptions::default()
            .static_kernel(kernel.clone())
            .dyadic_order((1, 1))
            .lead_lag(true)
            .return_grid(true);
        let grid = sig_kernel(x.view(), y.view(), &opts).unwrap();
        assert_eq!(grid.shape(), &[13, 9]);
        let seed = random(grid.shape(), 7);
        let f = |x: &ArrayD<f64>, y: &ArrayD<f64>| -> f64 {
            let g = sig_kernel(x.view(), y.view(), &opts).unwrap();
            g.iter().zip(seed.iter()).map(|(a, b)| a * b).sum()
        };
        let (gx, gy) = sig_kernel_backprop(seed.view(), x.view(), y.view(), &opts).unwrap();
        assert_close(
            "grid dx",
            &gx,
            &numeric_grad(&x, |xp| f(xp, &y)),
            1e-6,
            1e-7,
        );
        assert_close(
            "grid dy",
            &gy,
            &numeric_grad(&y, |yp| f(&x, yp)),
            1e-6,
            1e-7,
        );
    }
}

#[test]
fn sig_kernel_gram_matches_pairwise_calls() {
    let (xs, ys) = (random(&[3, 6, 2], 8), random(&[4, 5, 2], 9));
    for kernel in kernels() {
        for normalize in [false, true] {
            let opts = SigKernelOptions::default()
                .static_kernel(kernel.clone())
                .dyadic_order((1, 2))
                .time_aug(true)
                .normalize(normalize);
            let gram = sig_kernel_gram(xs.view(), ys.view(), &opts).unwrap();
            assert_eq!(gram.shape(), &[3, 4]);
            for i in 0..3 {
                for j in 0..4 {
                    let k = sig_kernel(xs.index_axis(Axis(0), i), ys.index_axis(Axis(0), j), &opts)
                        .unwrap()[[]];
                    let g = gram[[i, j]];
                    assert!((g - k).abs() <= 1e-14 * k.abs(), "({i}, {j}): {g} vs {k}");
                }
            }
        }
    }
}

#[test]
fn sig_kernel_gram_symmetric_case() {
    let xs = random(&[5, 6, 3], 10);
    for normalize in [false, true] {
        let opts = SigKernelOptions::default()
            .dyadic_order((1, 1))
            .lead_lag(true)
            .normalize(normalize);
        let copy = xs.clone();
        let full = sig_kernel_gram(xs.view(), copy.view(), &opts).unwrap();
        for sym in [
            sig_kernel_gram(xs.view(), xs.view(), &opts).unwrap(),
            sig_kernel_gram_sym(xs.view(), &opts).unwrap(),
        ] {
            assert_close("symmetric gram", &sym, &full, 1e-13, 1e-14);
            assert_eq!(sym, sym.t(), "exactly symmetric");
            if normalize {
                for i in 0..5 {
                    assert!((sym[[i, i]] - 1.0).abs() < 1e-14);
                }
            }
        }
    }
}

#[test]
fn sig_kernel_gram_backprop_matches_finite_differences() {
    let (xs, ys) = (random(&[2, 4, 2], 11), random(&[3, 5, 2], 12));
    let w = random(&[2, 3], 13);
    for kernel in [StaticKernel::Linear, StaticKernel::Rbf { sigma: 1.1 }] {
        for normalize in [false, true] {
            let opts = SigKernelOptions::default()
                .static_kernel(kernel.clone())
                .dyadic_order((1, 0))
                .time_aug(true)
                .normalize(normalize);
            let f = |x: &ArrayD<f64>, y: &ArrayD<f64>| -> f64 {
                let g = sig_kernel_gram(x.view(), y.view(), &opts).unwrap();
                g.iter().zip(w.iter()).map(|(a, b)| a * b).sum()
            };
            let (gx, gy) = sig_kernel_gram_backprop(w.view(), xs.view(), ys.view(), &opts).unwrap();
            assert_close(
                "gram dx",
                &gx,
                &numeric_grad(&xs, |xp| f(xp, &ys)),
                1e-6,
                1e-7,
            );
            assert_close(
                "gram dy",
                &gy,
                &numeric_grad(&ys, |yp| f(&xs, yp)),
                1e-6,
                1e-7,
            );
        }
    }
}

#[test]
fn sig_kernel_f32_matches_f64() {
    let (x, y) = (random(&[3, 20, 3], 14), random(&[3, 15, 3], 15));
    let w = random(&[3], 16);
    for kernel in kernels() {
        let opts = SigKernelOptions::default()
            .static_kernel(kernel.clone())
            .dyadic_order((2, 2))
            .time_aug(true)
            .lead_lag(true);
        let k64 = sig_kernel(x.view(), y.view(), &opts).unwrap();
        let k32 = sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &opts).unwrap();
        assert_close("f32 kernel", &to_f64(&k32), &k64, F32_TOL.0, F32_TOL.1);
        let (gx, gy) = sig_kernel_backprop(w.view(), x.view(), y.view(), &opts).unwrap();
        let (gx32, gy32) = sig_kernel_backprop(
            to_f32(&w).view(),
            to_f32(&x).view(),
            to_f32(&y).view(),
            &opts,
        )
        .unwrap();
        let (r, a) = F32_GRAD_TOL;
        assert_close("f32 dx", &to_f64(&gx32), &gx, r, a);
        assert_close("f32 dy", &to_f64(&gy32), &gy, r, a);
    }
}

#[test]
fn single_points_give_the_trivial_kernel() {
    let (x, y) = (random(&[2, 1, 3], 17), random(&[2, 5, 3], 18));
    for (time_aug, lead_lag) in [(false, false), (true, true)] {
        let opts = SigKernelOptions::default()
            .dyadic_order((1, 1))
            .time_aug(time_aug)
            .lead_lag(lead_lag);
        // The single point on either side.
        for (a, b) in [(&x, &y), (&y, &x)] {
            let k = sig_kernel(a.view(), b.view(), &opts).unwrap();
            assert!(k.iter().all(|&v| v == 1.0));
            let w = random(&[2], 19);
            let (ga, gb) = sig_kernel_backprop(w.view(), a.view(), b.view(), &opts).unwrap();
            assert!(ga.iter().chain(gb.iter()).all(|&v| v == 0.0));
        }
    }
}

#[test]
fn leading_batch_axes_are_kept() {
    let (x, y) = (random(&[2, 3, 4, 2], 20), random(&[2, 3, 6, 2], 21));
    let opts = SigKernelOptions::default();
    let k = sig_kernel(x.view(), y.view(), &opts).unwrap();
    assert_eq!(k.shape(), &[2, 3]);
    let k12 = sig_kernel(x.slice(s![1, 2, .., ..]), y.slice(s![1, 2, .., ..]), &opts).unwrap();
    assert_eq!(k12.shape(), &[] as &[usize]);
    assert_eq!(k[[1, 2]], k12[[]]);
    let gram = sig_kernel_gram(x.view(), y.view(), &opts).unwrap();
    assert_eq!(gram.shape(), &[2, 3, 2, 3]);
    assert_eq!(gram[[1, 2, 1, 2]], k12[[]]);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let opts = SigKernelOptions::default();
    let x = random(&[2, 5, 3], 22);
    // Dimension mismatch (pySigLib: "path1, path2 have different dimensions").
    let y = random(&[2, 5, 2], 23);
    assert!(matches!(
        sig_kernel(x.view(), y.view(), &opts),
        Err(Error::Length { got: 2, .. })
    ));
    // Batch mismatch.
    let y = random(&[1, 5, 3], 24);
    assert!(matches!(
        sig_kernel(x.view(), y.view(), &opts),
        Err(Error::BatchMismatch { .. })
    ));
    // Length 0.
    let y = Array3::<f64>::zeros((2, 0, 3));
    assert!(matches!(
        sig_kernel(x.view(), y.view(), &opts),
        Err(Error::Length { got: 0, .. })
    ));
    assert!(matches!(
        sig_kernel_gram(x.view(), y.view(), &opts),
        Err(Error::Length { got: 0, .. })
    ));
    // NaN (pySigLib returns NaN with a warning).
    let mut y = random(&[2, 5, 3], 25);
    y[[1, 3, 2]] = f64::NAN;
    match sig_kernel(x.view(), y.view(), &opts) {
        Err(Error::NonFinite {
            item,
            point,
            channel,
            ..
        }) => assert_eq!((item, point, channel), (vec![1], 3, 2)),
        other => panic!("expected NonFinite, got {other:?}"),
    }
    let w = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0, f64::INFINITY]).unwrap();
    let y = random(&[2, 5, 3], 26);
    assert!(matches!(
        sig_kernel_backprop(w.view(), x.view(), y.view(), &opts),
        Err(Error::NonFiniteValue { index: 0, .. })
    ));
    // Derivatives of the wrong shape.
    let w = random(&[3], 27);
    assert!(matches!(
        sig_kernel_backprop(w.view(), x.view(), y.view(), &opts),
        Err(Error::BatchMismatch { .. })
    ));
    let w = random(&[2, 3], 28);
    assert!(sig_kernel_gram_backprop(w.view(), x.view(), y.view(), &opts).is_err());
    // Bad options.
    for bad in [
        SigKernelOptions::default().static_kernel(StaticKernel::Rbf { sigma: 0.0 }),
        SigKernelOptions::default().dyadic_order((40, 30)),
        SigKernelOptions::default()
            .normalize(true)
            .return_grid(true),
        SigKernelOptions::default().end_time(f64::NAN),
    ] {
        assert!(matches!(
            sig_kernel(x.view(), y.view(), &bad),
            Err(Error::Invalid(_))
        ));
    }
    // A refinement whose rows could not be allocated is refused up front, not attempted; one with
    // more points than any call could sweep is refused before that.
    let huge = SigKernelOptions::default().dyadic_order((0, 35));
    assert!(matches!(
        sig_kernel(x.view(), y.view(), &huge),
        Err(Error::TooLarge { .. })
    ));
    let huger = SigKernelOptions::default().dyadic_order((2, 42));
    assert!(matches!(
        sig_kernel(x.view(), y.view(), &huger),
        Err(Error::Invalid(_))
    ));
    let grid_gram = SigKernelOptions::default().return_grid(true);
    assert!(matches!(
        sig_kernel_gram(x.view(), y.view(), &grid_gram),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn overflow_is_an_error_with_advice() {
    // Increments of ~1e8 make the PDE overflow f64 (pySigLib returns inf with a warning); paths of
    // ~1e3 and a few points give huge but finite kernels.
    let opts = SigKernelOptions::default();
    let (xs, ys) = (random(&[2, 5, 3], 31), random(&[2, 5, 3], 32));
    let big = sig_kernel((&xs * 1e3).view(), (&ys * 1e3).view(), &opts).unwrap();
    assert!(big.iter().all(|v| v.abs() > 1e20));
    assert!(big.iter().all(|v| v.is_finite()));
    let x = random(&[2, 40, 3], 29);
    let y = random(&[2, 40, 3], 30);
    let err = sig_kernel((&x * 1e8).view(), (&y * 1e8).view(), &opts).unwrap_err();
    assert!(matches!(err, Error::KernelOverflow { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("normalise the paths") && message.contains("rbf"));
    // A bounded static kernel does not overflow.
    let rbf = SigKernelOptions::default().static_kernel(StaticKernel::Rbf { sigma: 1.0 });
    let k = sig_kernel((&x * 1e8).view(), (&y * 1e8).view(), &rbf).unwrap();
    assert!(k.iter().all(|v| v.is_finite()));
}

#[test]
fn static_kernels_parse() {
    assert_eq!(
        "linear".parse::<StaticKernel>().unwrap(),
        StaticKernel::Linear
    );
    assert_eq!(
        "rbf:0.5".parse::<StaticKernel>().unwrap(),
        StaticKernel::Rbf { sigma: 0.5 }
    );
    assert_eq!(
        "scaled-linear:2".parse::<StaticKernel>().unwrap(),
        StaticKernel::ScaledLinear { scale: 2.0 }
    );
    assert_eq!(
        "polynomial:2,0.5,1.5".parse::<StaticKernel>().unwrap(),
        StaticKernel::Polynomial {
            degree: 2.0,
            gamma: 0.5,
            scale: 1.5
        }
    );
    assert_eq!(
        "matern52:0.3".parse::<StaticKernel>().unwrap(),
        StaticKernel::Matern52 { sigma: 0.3 }
    );
    assert_eq!(
        "rational-quadratic:0.8, 2".parse::<StaticKernel>().unwrap(),
        StaticKernel::RationalQuadratic {
            sigma: 0.8,
            alpha: 2.0
        }
    );
    for bad in [
        "rbf",
        "rbf:-1",
        "rbf:x",
        "poly:3",
        "linear:1",
        "",
        "polynomial:3",
        "polynomial:-1,1,1",
        "polynomial:2,1,-1",
        "matern12:0",
        "matern32:nan",
        "rational-quadratic:1",
        "rational-quadratic:1,0",
        "rbf:1,2",
    ] {
        assert!(bad.parse::<StaticKernel>().is_err(), "{bad}");
    }
}

/// A dyadic order whose refined grid would take days (found by the fuzz test: order 40 on one side
/// of a three-point path passed every memory check and ran on) is refused at once.
#[test]
fn huge_refinements_are_refused() {
    let x = random(&[1, 3, 2], 31);
    for dyadic_order in [(40, 0), (0, 40), (21, 21)] {
        let opts = SigKernelOptions::default()
            .dyadic_order(dyadic_order)
            .device(roughsig::Device::Cpu);
        match sig_kernel(x.view(), x.view(), &opts) {
            Err(Error::Invalid(msg)) => assert!(msg.contains("too large"), "{msg}"),
            other => panic!("{dyadic_order:?}: expected Invalid, got {other:?}"),
        }
    }
}

/// The RBF kernel written by a caller, through `CustomStaticKernel`.
#[derive(Debug)]
struct UserRbf(f64);

impl roughsig::CustomStaticKernel for UserRbf {
    fn value(&self, p: &[f64], q: &[f64]) -> f64 {
        let r2: f64 = p.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
        (-r2 / self.0).exp()
    }

    fn gradients(&self, p: &[f64], q: &[f64], dp: &mut [f64], dq: &mut [f64]) {
        let k = self.value(p, q);
        for i in 0..p.len() {
            dp[i] = -2.0 / self.0 * k * (p[i] - q[i]);
            dq[i] = -dp[i];
        }
    }
}

/// A custom kernel gives what the built-in kernel it re-implements gives: kernels, both gradients
/// and Gram matrices, in f64 and f32, with the transforms and refinement; it runs on the CPU only.
#[test]
fn custom_static_kernels_match_the_built_in_ones() {
    let custom = StaticKernel::Custom(roughsig::CustomKernel::new(UserRbf(0.8)));
    let (x, y) = (random(&[3, 5, 2], 41), random(&[3, 4, 2], 42));
    let w = random(&[3], 43);
    for (time_aug, lead_lag, dyadic_order) in [(false, false, (0, 0)), (true, true, (1, 2))] {
        let base = SigKernelOptions::default()
            .time_aug(time_aug)
            .lead_lag(lead_lag)
            .dyadic_order(dyadic_order);
        let builtin = base.clone().static_kernel(StaticKernel::Rbf { sigma: 0.8 });
        let user = base.static_kernel(custom.clone());
        let what = format!("{user:?}");
        let k = |o: &SigKernelOptions| sig_kernel(x.view(), y.view(), o).unwrap();
        assert_close(&what, &k(&user), &k(&builtin), 1e-14, 1e-14);
        let k32 = |o: &SigKernelOptions| {
            to_f64(&sig_kernel(to_f32(&x).view(), to_f32(&y).view(), o).unwrap())
        };
        assert_close(&what, &k32(&user), &k32(&builtin), 1e-6, 1e-6);
        let g =
            |o: &SigKernelOptions| sig_kernel_backprop(w.view(), x.view(), y.view(), o).unwrap();
        let ((ux, uy), (bx, by)) = (g(&user), g(&builtin));
        assert_close(&what, &ux, &bx, 1e-13, 1e-14);
        assert_close(&what, &uy, &by, 1e-13, 1e-14);
        let gram = |o: &SigKernelOptions| sig_kernel_gram(x.view(), y.view(), o).unwrap();
        assert_close(&what, &gram(&user), &gram(&builtin), 1e-14, 1e-14);
    }
    let on_gpu = SigKernelOptions::default()
        .static_kernel(custom)
        .device(roughsig::Device::Gpu(None));
    assert!(matches!(
        sig_kernel(x.view(), y.view(), &on_gpu),
        Err(Error::Device(_))
    ));
}

/// `max_batch` caps the pairs in flight (here the CPU's threads) without changing any result; 0 is
/// an error.
#[test]
fn max_batch_leaves_results_unchanged() {
    let (x, y) = (random(&[6, 5, 2], 51), random(&[5, 4, 2], 52));
    let base = SigKernelOptions::default()
        .dyadic_order(1)
        .device(roughsig::Device::Cpu);
    let d = random(&[6, 5], 53);
    let run = |o: &SigKernelOptions| {
        let g = sig_kernel_gram(x.view(), y.view(), o).unwrap();
        let (dx, dy) = sig_kernel_gram_backprop(d.view(), x.view(), y.view(), o).unwrap();
        (g, dx, dy)
    };
    let want = run(&base);
    for cap in [1, 4] {
        let got = run(&base.clone().max_batch(cap));
        assert_close("gram", &got.0, &want.0, 1e-15, 1e-15);
        assert_close("dx", &got.1, &want.1, 1e-15, 1e-15);
        assert_close("dy", &got.2, &want.2, 1e-15, 1e-15);
    }
    assert!(matches!(
        sig_kernel_gram(x.view(), y.view(), &base.max_batch(0)),
        Err(Error::Invalid(_))
    ));
}
