//! Ragged signature kernels, Gram matrices and transformed paths against the library's functions on
//! the batches padded by repeating each path's last point (padding and folding built in
//! `ragged.rs`, independently of the library), gradients included, in f64 and f32, on the CPU and
//! (with the `gpu` feature and an adapter) the GPU.

use crate::common::{assert_close, random, to_f32, to_f64};
use crate::ragged::{folded, padded};
use ndarray::{Array2, Array3, ArrayD, Ix3};
use roughsig::{
    sig_kernel, sig_kernel_backprop, sig_kernel_backprop_ragged, sig_kernel_gram,
    sig_kernel_gram_backprop, sig_kernel_gram_backprop_ragged, sig_kernel_gram_ragged,
    sig_kernel_ragged, transform_path, transform_path_backprop, transform_path_backprop_ragged,
    transform_path_ragged, Device, Error, SigKernelOptions, SigOptions, StaticKernel,
};

/// 40 paths of 1 to 9 points and 40 of 1 to 7: three groups a side where groups are large.
fn x_lengths() -> Vec<usize> {
    (0..40).map(|i| 1 + (i * 7 + 3) % 9).collect()
}

fn y_lengths() -> Vec<usize> {
    (0..40).map(|i| 1 + (i * 5 + 1) % 7).collect()
}

fn sides() -> (Array3<f64>, Array3<f64>) {
    let shape = |l| [40, l, 2];
    let x = random(&shape(9), 31).into_dimensionality::<Ix3>().unwrap();
    let y = random(&shape(7), 32).into_dimensionality::<Ix3>().unwrap();
    (x, y)
}

/// Every static kernel, transform, normalisation and a refined grid, with both ways the CPU runs
/// the units: in parallel, one thread each (2 threads), and one after the other (16 threads, more
/// than there are Gram blocks).
fn option_grid() -> Vec<SigKernelOptions> {
    let kernels = [
        StaticKernel::Linear,
        StaticKernel::ScaledLinear { scale: 0.7 },
        StaticKernel::Rbf { sigma: 0.8 },
    ];
    let mut v = Vec::new();
    for (k, static_kernel) in kernels.into_iter().enumerate() {
        for (time_aug, lead_lag) in [(false, false), (false, true), (true, false)] {
            let normalize = k == 1 || lead_lag;
            let n_jobs = if k == 2 { 16 } else { 2 };
            v.push(
                SigKernelOptions::default()
                    .static_kernel(static_kernel.clone())
                    .time_aug(time_aug)
                    .lead_lag(lead_lag)
                    .end_time(1.5)
                    .normalize(normalize)
                    .dyadic_order((k % 2, 1))
                    .n_jobs(n_jobs)
                    .device(Device::Cpu),
            );
        }
    }
    v
}

fn seed(k: &ArrayD<f64>) -> ArrayD<f64> {
    k.mapv(|v| (2.0 * v).cos())
}

/// Ragged paired kernels and their gradients against the padded batches' (all f64, on the CPU).
fn check_pairs(x: &Array3<f64>, y: &Array3<f64>, opts: &SigKernelOptions, tol: f64) {
    let (xl, yl) = (x_lengths(), y_lengths());
    let (px, py) = (padded(x, &xl), padded(y, &yl));
    let cpu = opts.clone().device(Device::Cpu);
    let want = sig_kernel(px.view(), py.view(), &cpu).unwrap();
    let got = sig_kernel_ragged(x.view(), &xl, y.view(), &yl, opts).unwrap();
    assert_close(&format!("kernel {opts:?}"), &got, &want, tol, tol);
    let d = seed(&want);
    let (wx, wy) = sig_kernel_backprop(d.view(), px.view(), py.view(), &cpu).unwrap();
    let (gx, gy) =
        sig_kernel_backprop_ragged(d.view(), x.view(), &xl, y.view(), &yl, opts).unwrap();
    let what = format!("{opts:?}");
    assert_close(
        &format!("dx {what}"),
        &gx.into_dyn(),
        &folded(&wx, &xl),
        100.0 * tol,
        tol,
    );
    assert_close(
        &format!("dy {what}"),
        &gy.into_dyn(),
        &folded(&wy, &yl),
        100.0 * tol,
        tol,
    );
}

/// Ragged Gram matrices (general and symmetric) and their gradients against the padded batches'.
fn check_gram(x: &Array3<f64>, y: &Array3<f64>, opts: &SigKernelOptions, tol: f64) {
    let (xl, yl) = (x_lengths(), y_lengths());
    let (px, py) = (padded(x, &xl), padded(y, &yl));
    let cpu = opts.clone().device(Device::Cpu);
    let want = sig_kernel_gram(px.view(), py.view(), &cpu).unwrap();
    let got = sig_kernel_gram_ragged(x.view(), &xl, y.view(), &yl, opts).unwrap();
    let what = format!("{opts:?}");
    assert_close(&format!("gram {what}"), &got.into_dyn(), &want, tol, tol);
    let sym = sig_kernel_gram(px.view(), px.view(), &cpu).unwrap();
    let got = sig_kernel_gram_ragged(x.view(), &xl, x.view(), &xl, opts).unwrap();
    assert_close(&format!("gram sym {what}"), &got.into_dyn(), &sym, tol, tol);
    let d = seed(&want);
    let (wx, wy) = sig_kernel_gram_backprop(d.view(), px.view(), py.view(), &cpu).unwrap();
    let d2 = d.view().into_dimensionality().unwrap();
    let (gx, gy) = sig_kernel_gram_backprop_ragged(d2, x.view(), &xl, y.view(), &yl, opts).unwrap();
    assert_close(
        &format!("gram dx {what}"),
        &gx.into_dyn(),
        &folded(&wx, &xl),
        100.0 * tol,
        tol,
    );
    assert_close(
        &format!("gram dy {what}"),
        &gy.into_dyn(),
        &folded(&wy, &yl),
        100.0 * tol,
        tol,
    );
}

#[test]
fn ragged_kernels_equal_padded_kernels_f64() {
    let (x, y) = sides();
    for opts in option_grid() {
        check_pairs(&x, &y, &opts, 1e-12);
        check_gram(&x, &y, &opts, 1e-12);
    }
}

/// With `return_grid` the padded pairs' grids come back, and their gradients fold.
#[test]
fn ragged_kernel_grids_are_the_padded_grids() {
    let (x, y) = sides();
    let opts = SigKernelOptions::default()
        .return_grid(true)
        .dyadic_order(1)
        .device(Device::Cpu);
    check_pairs(&x, &y, &opts, 1e-12);
}

#[test]
fn ragged_kernels_equal_padded_kernels_f32() {
    let (x, y) = sides();
    let (xl, yl) = (x_lengths(), y_lengths());
    let (x32, y32) = (to_f32(&x.clone().into_dyn()), to_f32(&y.clone().into_dyn()));
    let (x32, y32) = (
        x32.into_dimensionality::<Ix3>().unwrap(),
        y32.into_dimensionality::<Ix3>().unwrap(),
    );
    for opts in option_grid() {
        let want = sig_kernel(padded(&x, &xl).view(), padded(&y, &yl).view(), &opts).unwrap();
        let got = sig_kernel_ragged(x32.view(), &xl, y32.view(), &yl, &opts).unwrap();
        assert_close("kernel f32", &to_f64(&got), &want, 1e-4, 1e-5);
        let want = sig_kernel_gram(padded(&x, &xl).view(), padded(&y, &yl).view(), &opts).unwrap();
        let got = sig_kernel_gram_ragged(x32.view(), &xl, y32.view(), &yl, &opts).unwrap();
        assert_close("gram f32", &to_f64(&got.into_dyn()), &want, 1e-4, 1e-5);
    }
}

#[cfg(feature = "gpu")]
#[test]
fn ragged_kernels_on_the_gpu_equal_padded_kernels() {
    let Some((device, f64)) = crate::common::gpu::gpu() else {
        return;
    };
    let (x, y) = sides();
    let (xl, yl) = (x_lengths(), y_lengths());
    // One option set per static kernel: plain, lead-lag (normalised) and time-augmented.
    for opts in option_grid().into_iter().step_by(4) {
        let on_gpu = opts.clone().device(device.clone());
        if f64 {
            check_pairs(&x, &y, &on_gpu, 1e-9);
            check_gram(&x, &y, &on_gpu, 1e-9);
        }
        let (x32, y32) = (to_f32(&x.clone().into_dyn()), to_f32(&y.clone().into_dyn()));
        let x32 = x32.into_dimensionality::<Ix3>().unwrap();
        let y32 = y32.into_dimensionality::<Ix3>().unwrap();
        let (px, py) = (padded(&x, &xl), padded(&y, &yl));
        let want = sig_kernel_gram(px.view(), py.view(), &opts).unwrap();
        let got = sig_kernel_gram_ragged(x32.view(), &xl, y32.view(), &yl, &on_gpu).unwrap();
        assert_close(
            "gpu gram f32",
            &to_f64(&got.clone().into_dyn()),
            &want,
            1e-4,
            1e-5,
        );
        let d = seed(&want);
        let (wx, wy) = sig_kernel_gram_backprop(d.view(), px.view(), py.view(), &opts).unwrap();
        let d32: Array2<f32> = to_f32(&d).into_dimensionality().unwrap();
        let (gx, gy) =
            sig_kernel_gram_backprop_ragged(d32.view(), x32.view(), &xl, y32.view(), &yl, &on_gpu)
                .unwrap();
        assert_close(
            "gpu gram dx f32",
            &to_f64(&gx.into_dyn()),
            &folded(&wx, &xl),
            1e-3,
            1e-4,
        );
        assert_close(
            "gpu gram dy f32",
            &to_f64(&gy.into_dyn()),
            &folded(&wy, &yl),
            1e-3,
            1e-4,
        );
        let want = sig_kernel(px.view(), py.view(), &opts).unwrap();
        let got = sig_kernel_ragged(x32.view(), &xl, y32.view(), &yl, &on_gpu).unwrap();
        assert_close("gpu kernel f32", &to_f64(&got), &want, 1e-4, 1e-5);
        let d32: ndarray::Array1<f32> = to_f32(&seed(&want)).into_dimensionality().unwrap();
        let (wx, wy) =
            sig_kernel_backprop(seed(&want).view(), px.view(), py.view(), &opts).unwrap();
        let (gx, gy) = sig_kernel_backprop_ragged(
            d32.view().into_dyn(),
            x32.view(),
            &xl,
            y32.view(),
            &yl,
            &on_gpu,
        )
        .unwrap();
        assert_close(
            "gpu dx f32",
            &to_f64(&gx.into_dyn()),
            &folded(&wx, &xl),
            1e-3,
            1e-4,
        );
        assert_close(
            "gpu dy f32",
            &to_f64(&gy.into_dyn()),
            &folded(&wy, &yl),
            1e-3,
            1e-4,
        );
    }
}

/// The padded points' gradients are zero and ignored points may hold anything, even NaN.
#[test]
fn ragged_kernels_ignore_the_points_past_each_length() {
    let (mut x, y) = sides();
    let (xl, yl) = (x_lengths(), y_lengths());
    let opts = SigKernelOptions::default().device(Device::Cpu);
    let clean = sig_kernel_ragged(x.view(), &xl, y.view(), &yl, &opts).unwrap();
    for (i, &l) in xl.iter().enumerate() {
        x.slice_mut(ndarray::s![i, l.., ..]).fill(f64::NAN);
    }
    let dirty = sig_kernel_ragged(x.view(), &xl, y.view(), &yl, &opts).unwrap();
    assert_eq!(clean, dirty);
    let d = ArrayD::from_elem(vec![40], 1.0);
    let (gx, _) =
        sig_kernel_backprop_ragged(d.view(), x.view(), &xl, y.view(), &yl, &opts).unwrap();
    for (i, &l) in xl.iter().enumerate() {
        assert!(gx.slice(ndarray::s![i, l.., ..]).iter().all(|&v| v == 0.0));
        assert!(gx
            .slice(ndarray::s![i, ..l, ..])
            .iter()
            .all(|v| v.is_finite()));
    }
}

#[test]
fn ragged_kernel_bad_input_is_an_error() {
    let (x, y) = sides();
    let (xl, yl) = (x_lengths(), y_lengths());
    let opts = SigKernelOptions::default().device(Device::Cpu);
    let err = sig_kernel_ragged(x.view(), &xl[..3], y.view(), &yl, &opts).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Length {
                what: "x_lengths",
                ..
            }
        ),
        "{err}"
    );
    let mut long = yl.clone();
    long[5] = 8;
    let err = sig_kernel_gram_ragged(x.view(), &xl, y.view(), &long, &opts).unwrap_err();
    assert!(err.to_string().contains("y_lengths[5] = 8"), "{err}");
    let narrow = y.slice(ndarray::s![.., .., ..1]);
    let err = sig_kernel_gram_ragged(x.view(), &xl, narrow, &yl, &opts).unwrap_err();
    assert!(matches!(err, Error::Length { .. }), "{err}");
    let fewer = y.slice(ndarray::s![..39, .., ..]);
    let err = sig_kernel_ragged(x.view(), &xl, fewer, &yl[..39], &opts).unwrap_err();
    assert!(err.to_string().contains("batch"), "{err}");
    let d = ArrayD::from_elem(vec![39], 1.0);
    let err =
        sig_kernel_backprop_ragged(d.view(), x.view(), &xl, y.view(), &yl, &opts).unwrap_err();
    assert!(err.to_string().contains("derivs has shape"), "{err}");
    let d = Array2::from_elem((40, 39), 1.0);
    let err =
        sig_kernel_gram_backprop_ragged(d.view(), x.view(), &xl, y.view(), &yl, &opts).unwrap_err();
    assert!(err.to_string().contains("derivs has shape"), "{err}");
}

/// Transformed ragged paths are the transformed padded paths; their gradient folds.
#[test]
fn ragged_transformed_paths_are_the_padded_ones() {
    let (x, _) = sides();
    let xl = x_lengths();
    let p = padded(&x, &xl);
    for (time_aug, lead_lag) in [(false, false), (true, false), (true, true)] {
        let opts = SigOptions::default().time_aug(time_aug).lead_lag(lead_lag);
        let got = transform_path_ragged(x.view(), &xl, &opts).unwrap();
        let want = transform_path(p.view(), &opts).unwrap();
        assert_eq!(got.into_dyn(), want);
        let d = want.mapv(|v| v.sin());
        let d3 = d.view().into_dimensionality().unwrap();
        let got = transform_path_backprop_ragged(d3, &xl, &opts).unwrap();
        let want = folded(&transform_path_backprop(d.view(), &opts).unwrap(), &xl);
        assert_close("transform grad", &got.into_dyn(), &want, 1e-14, 1e-15);
    }
}
