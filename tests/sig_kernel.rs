//! Signature kernels: every pySigLib 4.0.0 reference case (f64 and f32), the limit `<S(x), S(y)>`,
//! gradients against finite differences, Gram matrices, and bad input.

mod common;

use common::{assert_close, random, to_f32, to_f64, Case};
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
    SigKernelOptions {
        dyadic_order: dyadic_order(case),
        time_aug: case.flag("time_aug"),
        lead_lag: case.flag("lead_lag"),
        end_time: case.end_time(),
        return_grid: case.flag("return_grid"),
        ..Default::default()
    }
}

fn check_count(function: &str, checked: usize) {
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::golden_dir().join("index.json")).unwrap(),
    )
    .unwrap();
    let expected = index["counts"][function].as_u64().unwrap() as usize;
    assert_eq!(checked, expected, "{function}: checked {checked} of {expected}");
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
        assert_close(&format!("{} dx f32", case.name), &to_f64(&gx32), &want_x, r, a);
        assert_close(&format!("{} dy f32", case.name), &to_f64(&gy32), &want_y, r, a);
        if case.json["outputs"].get("kernel").is_some() {
            let k = sig_kernel(x.view(), y.view(), &opts).unwrap();
            assert_close(&case.name, &k, &case.array("kernel"), rtol, atol);
        }
    }
    check_count("sig_kernel_backprop", cases.len());
}
