//! Ragged batches: `sig_ragged` and `sig_backprop_ragged` against `sig` and `sig_backprop` of the
//! batch padded by repeating each path's last point (built here, independently of the library), over
//! every transform, in f64 and f32, on the CPU and (with the `gpu` feature and an adapter) the GPU.

use crate::common::{assert_close, random, to_f32, to_f64};
use ndarray::{s, Array3, ArrayD, Ix3};
use roughsig::{sig, sig_backprop, sig_backprop_ragged, sig_ragged, Device, Error, SigOptions};

/// 40 paths of 1 to 9 points (the ragged functions cut them into groups of 16: three groups).
fn lengths() -> Vec<usize> {
    (0..40).map(|i| 1 + (i * 7 + 3) % 9).collect()
}

fn paths() -> Array3<f64> {
    random(&[lengths().len(), 9, 3], 21)
        .into_dimensionality::<Ix3>()
        .unwrap()
}

pub fn padded(paths: &Array3<f64>, lengths: &[usize]) -> Array3<f64> {
    let mut out = paths.clone();
    for (i, &l) in lengths.iter().enumerate() {
        for j in l..paths.dim().1 {
            let last = paths.slice(s![i, l - 1, ..]).to_owned();
            out.slice_mut(s![i, j, ..]).assign(&last);
        }
    }
    out
}

/// The padded batch's gradient with the padded points' gradients added to the last real point
/// (the padding is that point repeated), and zero at the padded points.
pub fn folded(grads: &ArrayD<f64>, lengths: &[usize]) -> ArrayD<f64> {
    let mut g = grads.clone().into_dimensionality::<Ix3>().unwrap();
    for (i, &l) in lengths.iter().enumerate() {
        let tail = g.slice(s![i, l.., ..]).sum_axis(ndarray::Axis(0));
        let mut last = g.slice_mut(s![i, l - 1, ..]);
        last += &tail;
        g.slice_mut(s![i, l.., ..]).fill(0.0);
    }
    g.into_dyn()
}

/// Every transform, and both ways the CPU runs the groups: in parallel, one thread each (40 paths
/// are enough for 2 threads), and one after the other, each on all threads (not for 16).
fn option_grid() -> Vec<SigOptions> {
    let mut v = Vec::new();
    for time_aug in [false, true] {
        for lead_lag in [false, true] {
            for (scalar_term, n_jobs) in [(false, 2), (true, 16)] {
                v.push(
                    SigOptions::default()
                        .time_aug(time_aug)
                        .lead_lag(lead_lag)
                        .scalar_term(scalar_term)
                        .end_time(2.5)
                        .n_jobs(n_jobs)
                        .device(Device::Cpu),
                );
            }
        }
    }
    v
}

/// Ragged signatures and gradients of `paths` with `opts` (on its device), in f64.
fn ragged(x: &Array3<f64>, degree: usize, opts: &SigOptions) -> (ArrayD<f64>, ArrayD<f64>) {
    let sigs = sig_ragged(x.view(), &lengths(), degree, opts).unwrap();
    let derivs = sigs.mapv(|v| (3.0 * v).cos());
    let grads = sig_backprop_ragged(
        x.view(),
        &lengths(),
        sigs.view(),
        derivs.view(),
        degree,
        opts,
    )
    .unwrap();
    (sigs.into_dyn(), grads.into_dyn())
}

/// The same from the padded batch through `sig` and `sig_backprop` on the CPU.
fn reference(x: &Array3<f64>, degree: usize, opts: &SigOptions) -> (ArrayD<f64>, ArrayD<f64>) {
    let p = padded(x, &lengths());
    let cpu = opts.clone().device(Device::Cpu);
    let sigs = sig(p.view(), degree, &cpu).unwrap();
    let derivs = sigs.mapv(|v| (3.0 * v).cos());
    let grads = sig_backprop(p.view(), sigs.view(), derivs.view(), degree, &cpu).unwrap();
    (sigs, folded(&grads, &lengths()))
}

#[test]
fn ragged_batches_equal_padded_batches_f64() {
    let x = paths();
    for opts in option_grid() {
        for degree in [1, 3] {
            let (sigs, grads) = ragged(&x, degree, &opts);
            let (want_sigs, want_grads) = reference(&x, degree, &opts);
            let what = format!("{opts:?} degree {degree}");
            assert_close(&format!("sig {what}"), &sigs, &want_sigs, 1e-12, 1e-13);
            assert_close(&format!("grad {what}"), &grads, &want_grads, 1e-10, 1e-12);
        }
    }
}

#[test]
fn ragged_batches_equal_padded_batches_f32() {
    let x = paths();
    let x32 = to_f32(&x.clone().into_dyn())
        .into_dimensionality::<Ix3>()
        .unwrap();
    for opts in option_grid() {
        let sigs = sig_ragged(x32.view(), &lengths(), 3, &opts).unwrap();
        let derivs = to_f32(&to_f64(&sigs.clone().into_dyn()).mapv(|v| (3.0 * v).cos()))
            .into_dimensionality()
            .unwrap();
        let grads =
            sig_backprop_ragged(x32.view(), &lengths(), sigs.view(), derivs.view(), 3, &opts)
                .unwrap();
        let (want_sigs, want_grads) = reference(&x, 3, &opts);
        assert_close("sig f32", &to_f64(&sigs.into_dyn()), &want_sigs, 1e-4, 1e-5);
        assert_close(
            "grad f32",
            &to_f64(&grads.into_dyn()),
            &want_grads,
            1e-3,
            1e-4,
        );
    }
}

#[cfg(feature = "gpu")]
#[test]
fn ragged_batches_on_the_gpu_equal_padded_batches() {
    let Some((device, f64)) = crate::common::gpu::gpu() else {
        return;
    };
    let x = paths();
    for opts in option_grid() {
        let on_gpu = opts.clone().device(device.clone());
        let (want_sigs, want_grads) = reference(&x, 3, &opts);
        if f64 {
            let (sigs, grads) = ragged(&x, 3, &on_gpu);
            assert_close("gpu sig", &sigs, &want_sigs, 1e-9, 1e-10);
            assert_close("gpu grad", &grads, &want_grads, 1e-8, 1e-9);
        }
        let x32 = to_f32(&x.clone().into_dyn())
            .into_dimensionality::<Ix3>()
            .unwrap();
        let sigs = sig_ragged(x32.view(), &lengths(), 3, &on_gpu).unwrap();
        assert_close(
            "gpu sig f32",
            &to_f64(&sigs.into_dyn()),
            &want_sigs,
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn ragged_bad_input_is_an_error() {
    let x = paths();
    let opts = SigOptions::default();
    let err = sig_ragged(x.view(), &[1, 2], 2, &opts).unwrap_err();
    assert!(matches!(err, Error::Length { .. }), "{err}");
    for bad in [0, 10] {
        let mut bad_lengths = lengths();
        bad_lengths[2] = bad;
        let err = sig_ragged(x.view(), &bad_lengths, 2, &opts).unwrap_err();
        assert!(err.to_string().contains("lengths[2]"), "{err}");
    }
    let sigs = sig_ragged(x.view(), &lengths(), 2, &opts).unwrap();
    let short = sigs.slice(s![.., 1..]);
    let err = sig_backprop_ragged(x.view(), &lengths(), short, sigs.view(), 2, &opts).unwrap_err();
    assert!(err.to_string().contains("sigs has shape"), "{err}");
}

/// Log-signatures of ragged batches, every method, against `log_sig` and `log_sig_backprop` of the
/// padded batch (gradients folded).
#[test]
fn ragged_log_signatures_equal_padded_ones() {
    use roughsig::LogSigMethod;
    use roughsig::{log_sig, log_sig_backprop, log_sig_backprop_ragged, log_sig_ragged};
    let x = paths();
    let p = padded(&x, &lengths());
    for opts in option_grid() {
        for method in [
            LogSigMethod::Expanded,
            LogSigMethod::Words,
            LogSigMethod::Lyndon,
        ] {
            let got = log_sig_ragged(x.view(), &lengths(), 3, method, &opts).unwrap();
            let want = log_sig(p.view(), 3, method, &opts).unwrap();
            let what = format!("{opts:?} {method:?}");
            assert_close(&format!("log_sig {what}"), &got, &want, 1e-11, 1e-12);
            let derivs = want.mapv(|v| (2.0 * v).sin());
            let d2 = derivs.view().into_dimensionality().unwrap();
            let got = log_sig_backprop_ragged(x.view(), &lengths(), d2, 3, method, &opts).unwrap();
            let want = log_sig_backprop(p.view(), derivs.view(), 3, method, &opts).unwrap();
            let want = folded(&want, &lengths());
            assert_close(&format!("grad {what}"), &got.into_dyn(), &want, 1e-9, 1e-11);
        }
    }
}
