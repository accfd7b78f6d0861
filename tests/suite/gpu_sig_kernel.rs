//! Signature kernels on the GPU against the CPU: `sig_kernel` (`sig_kernel_forward`), its gradient
//! `sig_kernel_backprop` (`sig_kernel_backward`), the Gram matrices and their gradient, over a grid of
//! shapes and options in f32 and f64, and the pySigLib golden cases on the GPU.
//!
//! Skipped (with a message on stderr) where no GPU adapter exists; `ROUGHSIG_REQUIRE_GPU=1` turns the
//! skip into a failure. f64 checks are skipped, with a message, on adapters without f64. lavapipe is
//! slow: the sizes are kept small.

use crate::common::gpu::{gpu, CHUNK};
use crate::common::{assert_close, random, to_f32, to_f64, Case};
use ndarray::{ArrayD, Axis};
use roughsig::{
    sig_kernel, sig_kernel_backprop, sig_kernel_gram, sig_kernel_gram_backprop,
    sig_kernel_gram_sym, Device, SigKernelOptions, StaticKernel,
};

fn kernel_on(device: &Device, opts: &SigKernelOptions) -> SigKernelOptions {
    opts.clone().device(device.clone())
}

/// `sig_kernel` on the GPU (f32 always, f64 when the adapter has it) against the CPU in f64, for
/// `batch` pairs of paths of `l1` and `l2` points. Paths are scaled to unit size. f32 carries a
/// rounding error that grows with the number of anti-diagonals of the refined grid.
fn check_kernel(
    device: &Device,
    f64: bool,
    batch: usize,
    (l1, l2): (usize, usize),
    dim: usize,
    opts: &SigKernelOptions,
) {
    let what = format!("batch {batch}, lengths ({l1}, {l2}), dim {dim}, {opts:?}");
    let seed = (batch * 1_000_003 + l1 * 1009 + l2 * 31 + dim) as u64;
    let x = random(&[batch, l1, dim], seed) / (l1.max(1) as f64).sqrt();
    let y = random(&[batch, l2, dim], seed + 7) / (l2.max(1) as f64).sqrt();
    let cpu_opts = opts.clone().device(Device::Cpu);
    let want = sig_kernel(x.view(), y.view(), &cpu_opts).unwrap();
    let gpu_opts = kernel_on(device, opts);
    if f64 {
        let got = sig_kernel(x.view(), y.view(), &gpu_opts).unwrap();
        assert_close(
            &format!("sig_kernel f64, {what}"),
            &got,
            &want,
            1e-10,
            1e-10,
        );
    }
    let steps = |l: usize, lam: usize| {
        (l.saturating_sub(1) * (1 + opts.transform.lead_lag as usize)) << lam
    };
    let diagonals = steps(l1, opts.dyadic_order.0) + steps(l2, opts.dyadic_order.1) + 1;
    // The scheme's own f32 error (the CPU's, in f32) bounds what the GPU may be off by, too: on long
    // refined grids the tiny cell increments h round away in 1 + h/2 and the error drifts.
    let cpu32 = sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &cpu_opts).unwrap();
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let cpu_err = to_f64(&cpu32)
        .iter()
        .zip(&want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale;
    let tol = 2e-5 * (1.0 + (diagonals as f64).sqrt()) + 3.0 * cpu_err;
    let got = sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &gpu_opts).unwrap();
    assert_close(
        &format!("sig_kernel f32, {what}"),
        &to_f64(&got),
        &want,
        tol,
        tol,
    );
    assert!(
        roughsig::last_backend().is_some_and(|b| b.is_gpu()),
        "{what}"
    );
}

/// Lengths 1..300, dimensions 1..5, dyadic orders 0..2 (also asymmetric), the transforms, and every
/// static kernel.
#[test]
fn sig_kernel_forward_matches_cpu() {
    let Some((device, f64)) = gpu() else { return };
    let transforms = [(false, false), (true, false), (false, true), (true, true)];
    let lengths = [
        (1, 1),
        (1, 5),
        (2, 2),
        (5, 3),
        (17, 64),
        (66, 130),
        (300, 40),
    ];
    for (i, &(l1, l2)) in lengths.iter().enumerate() {
        for (j, &(time_aug, lead_lag)) in transforms.iter().enumerate() {
            for dyadic_order in [(0, 0), (1, 1), (2, 0), (0, 2), (2, 1)] {
                if l1 * l2 > 5000 && dyadic_order != (0, 0) && j > 0 {
                    continue;
                }
                let dim = 1 + (i + j) % 5;
                let opts = SigKernelOptions::default()
                    .dyadic_order(dyadic_order)
                    .time_aug(time_aug)
                    .lead_lag(lead_lag)
                    .end_time(if j % 2 == 0 { 1.0 } else { 2.5 });
                check_kernel(&device, f64, 3, (l1, l2), dim, &opts);
            }
        }
    }
    // The longest grids: 300 points both sides, refined.
    for dyadic_order in [(0, 0), (2, 2)] {
        let opts = SigKernelOptions::default().dyadic_order(dyadic_order);
        check_kernel(&device, f64, 1, (300, 300), 2, &opts);
    }
}

/// pySigLib's polynomial, Matérn and rational-quadratic cases on the GPU (f64 where the adapter has
/// it).
#[test]
fn point_kernels_match_pysiglib_on_gpu() {
    let Some((device, f64)) = gpu() else { return };
    crate::sig_kernel::check_point_kernel_cases(|o| kernel_on(&device, &o), f64);
}

/// `max_batch` cuts a Gram matrix into chunks of at most that many pairs, one submission each, with
/// the same results.
#[test]
fn max_batch_chunks_the_gram_matrix_on_gpu() {
    let Some((device, _)) = gpu() else { return };
    let (x, y) = (random(&[6, 5, 2], 61), random(&[5, 4, 2], 62));
    let opts = SigKernelOptions::default().dyadic_order(1);
    let (x32, y32) = (to_f32(&x), to_f32(&y));
    let want = sig_kernel_gram(x32.view(), y32.view(), &kernel_on(&device, &opts)).unwrap();
    let capped = kernel_on(&device, &opts.max_batch(4));
    let got = sig_kernel_gram(x32.view(), y32.view(), &capped).unwrap();
    let report = roughsig::gpu::last_gpu_report().expect("a GPU call reports");
    assert!(report.submissions >= 30 / 4, "{report:?}");
    assert_close("gram", &to_f64(&got), &to_f64(&want), 1e-6, 1e-6);
}

/// Every static kernel (bilinear ones from increments, point kernels from points, a fractional
/// polynomial degree through the shader's own logarithm), normalisation, and batches across chunk
/// boundaries.
#[test]
fn sig_kernel_forward_static_kernels_normalize_and_chunks() {
    let Some((device, f64)) = gpu() else { return };
    for static_kernel in crate::sig_kernel::kernels() {
        for normalize in [false, true] {
            let opts = SigKernelOptions::default()
                .static_kernel(static_kernel.clone())
                .normalize(normalize)
                .dyadic_order((1, 0))
                .time_aug(normalize);
            check_kernel(&device, f64, 4, (12, 9), 3, &opts);
        }
    }
    for batch in [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5] {
        check_kernel(&device, f64, batch, (6, 8), 2, &SigKernelOptions::default());
    }
}

/// `return_grid` on the GPU: the whole refined grid of every pair equals the CPU's, with the
/// transforms, refinement, both static-kernel families and a path of one point (a grid of ones).
#[test]
fn sig_kernel_grid_on_gpu_matches_cpu() {
    let Some((device, f64)) = gpu() else { return };
    for (l1, l2, dyadic_order, time_aug, lead_lag) in [
        (4, 6, (0, 0), false, false),
        (7, 5, (1, 2), true, false),
        (5, 9, (2, 0), false, true),
        (1, 4, (1, 1), true, true),
    ] {
        let opts = SigKernelOptions::default()
            .return_grid(true)
            .dyadic_order(dyadic_order)
            .time_aug(time_aug)
            .lead_lag(lead_lag)
            .static_kernel(if lead_lag {
                StaticKernel::Rbf { sigma: 0.7 }
            } else {
                StaticKernel::Linear
            });
        let x = random(&[3, l1, 2], 91) / 2.0;
        let y = random(&[3, l2, 2], 92) / 2.0;
        let want = sig_kernel(x.view(), y.view(), &kernel_on(&Device::Cpu, &opts)).unwrap();
        let what = format!("grid ({l1}, {l2}) {opts:?}");
        let got32 = sig_kernel(
            to_f32(&x).view(),
            to_f32(&y).view(),
            &kernel_on(&device, &opts),
        );
        assert_close(&what, &to_f64(&got32.unwrap()), &want, 1e-4, 1e-4);
        if f64 {
            let got = sig_kernel(x.view(), y.view(), &kernel_on(&device, &opts)).unwrap();
            assert_close(&what, &got, &want, 1e-10, 1e-10);
        }
    }
}

/// Every pySigLib golden case of `sig_kernel` without `return_grid`, on the GPU.
#[test]
fn sig_kernel_forward_golden_on_gpu() {
    let Some((device, f64)) = gpu() else { return };
    let mut checked = 0;
    for case in Case::all("sig_kernel") {
        if case.flag("return_grid") {
            continue;
        }
        let (x, y, want) = (
            case.array("path1"),
            case.array("path2"),
            case.array("kernel"),
        );
        let v = &case.json["params"]["dyadic_order"];
        let dyadic_order = match v.as_array() {
            Some(p) => (
                p[0].as_u64().unwrap() as usize,
                p[1].as_u64().unwrap() as usize,
            ),
            None => (v.as_u64().unwrap() as usize, v.as_u64().unwrap() as usize),
        };
        let opts = kernel_on(
            &device,
            &SigKernelOptions::default()
                .dyadic_order(dyadic_order)
                .time_aug(case.flag("time_aug"))
                .lead_lag(case.flag("lead_lag"))
                .end_time(case.end_time()),
        );
        if f64 {
            let got = sig_kernel(x.view(), y.view(), &opts).unwrap();
            let (rtol, atol) = case.tolerance();
            assert_close(&case.name, &got, &want, rtol, atol);
        }
        let got = sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &opts).unwrap();
        assert_close(
            &format!("{} f32", case.name),
            &to_f64(&got),
            &want,
            1e-4,
            1e-4,
        );
        checked += 1;
    }
    assert!(checked > 0, "no sig_kernel golden cases");
}

/// Largest absolute entry (at least 1): tolerances are relative to it.
fn scale(a: &ArrayD<f64>) -> f64 {
    a.iter().fold(1.0f64, |m, v| m.max(v.abs()))
}

/// Largest difference relative to `want`'s scale.
fn rel_err(got: &ArrayD<f64>, want: &ArrayD<f64>) -> f64 {
    got.iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale(want)
}

/// `sig_kernel_backprop` on the GPU (f32 always, f64 when the adapter has it) against the CPU in
/// f64, for `batch` pairs of paths of `l1` and `l2` points and random `dF/dk`. f64 evaluates every
/// expression in the CPU's order (up to fused multiply-adds), so it agrees to rounding; f32 may be
/// off by the scheme's own f32 error (measured on the CPU in f32) and a little more.
fn check_backprop(
    device: &Device,
    f64: bool,
    batch: usize,
    (l1, l2): (usize, usize),
    dim: usize,
    opts: &SigKernelOptions,
) {
    let what = format!("batch {batch}, lengths ({l1}, {l2}), dim {dim}, {opts:?}");
    let seed = (batch * 7919 + l1 * 131 + l2 * 17 + dim) as u64;
    let x = random(&[batch, l1, dim], seed) / (l1.max(1) as f64).sqrt();
    let y = random(&[batch, l2, dim], seed + 3) / (l2.max(1) as f64).sqrt();
    let d = random(&[batch], seed + 5);
    let cpu_opts = opts.clone().device(Device::Cpu);
    let (wx, wy) = sig_kernel_backprop(d.view(), x.view(), y.view(), &cpu_opts).unwrap();
    let gpu_opts = kernel_on(device, opts);
    if f64 {
        let (gx, gy) = sig_kernel_backprop(d.view(), x.view(), y.view(), &gpu_opts).unwrap();
        assert!(
            roughsig::last_backend().is_some_and(|b| b.is_gpu()),
            "{what}"
        );
        assert_close(&format!("dx f64, {what}"), &gx, &wx, 1e-9, 1e-10);
        assert_close(&format!("dy f64, {what}"), &gy, &wy, 1e-9, 1e-10);
    }
    let (d32, x32, y32) = (to_f32(&d), to_f32(&x), to_f32(&y));
    let (cx, cy) = sig_kernel_backprop(d32.view(), x32.view(), y32.view(), &cpu_opts).unwrap();
    let steps = |l: usize, lam: usize| {
        (l.saturating_sub(1) * (1 + opts.transform.lead_lag as usize)) << lam
    };
    let diagonals = steps(l1, opts.dyadic_order.0) + steps(l2, opts.dyadic_order.1) + 1;
    let base = 1e-4 * (1.0 + (diagonals as f64).sqrt());
    let (gx, gy) = sig_kernel_backprop(d32.view(), x32.view(), y32.view(), &gpu_opts).unwrap();
    assert!(
        roughsig::last_backend().is_some_and(|b| b.is_gpu()),
        "{what}"
    );
    for (name, got, cpu32, want) in [("dx", &gx, &cx, &wx), ("dy", &gy, &cy, &wy)] {
        let tol = base + 3.0 * rel_err(&to_f64(cpu32), want);
        assert_close(&format!("{name} f32, {what}"), &to_f64(got), want, tol, tol);
    }
}

/// Lengths, dimensions, dyadic orders (also a pair), the transforms and unequal lengths.
#[test]
fn sig_kernel_backward_matches_cpu() {
    let Some((device, f64)) = gpu() else { return };
    let transforms = [(false, false), (true, false), (false, true), (true, true)];
    let lengths = [(1, 4), (2, 2), (5, 3), (9, 17), (40, 70)];
    for (i, &(l1, l2)) in lengths.iter().enumerate() {
        for (j, &(time_aug, lead_lag)) in transforms.iter().enumerate() {
            for dyadic_order in [(0, 0), (1, 1), (2, 0), (1, 2)] {
                if l1 * l2 > 1000 && (dyadic_order != (0, 0) || j > 1) {
                    continue;
                }
                let opts = SigKernelOptions::default()
                    .dyadic_order(dyadic_order)
                    .time_aug(time_aug)
                    .lead_lag(lead_lag)
                    .end_time(if j % 2 == 0 { 1.0 } else { 2.5 });
                check_backprop(&device, f64, 2, (l1, l2), 1 + (i + j) % 4, &opts);
            }
        }
    }
    // Taller than a workgroup (357 rows: two bands), refined.
    let opts = SigKernelOptions::default().dyadic_order((2, 1));
    check_backprop(&device, f64, 1, (90, 80), 2, &opts);
}

/// Every static kernel, normalisation, and batches across chunk boundaries.
#[test]
fn sig_kernel_backward_static_kernels_normalize_and_chunks() {
    let Some((device, f64)) = gpu() else { return };
    for static_kernel in crate::sig_kernel::kernels() {
        for normalize in [false, true] {
            for dyadic_order in [(0, 0), (1, 2)] {
                let opts = SigKernelOptions::default()
                    .static_kernel(static_kernel.clone())
                    .normalize(normalize)
                    .dyadic_order(dyadic_order)
                    .lead_lag(normalize);
                check_backprop(&device, f64, 3, (7, 5), 2, &opts);
            }
        }
    }
    for batch in [CHUNK, CHUNK + 1, 2 * CHUNK + 5] {
        let opts = SigKernelOptions::default().normalize(batch == CHUNK + 1);
        check_backprop(&device, f64, batch, (5, 6), 2, &opts);
    }
}

/// Grids taller than one buffer holds (forced here by lowering the rows a buffer may hold) are swept
/// back block by block from checkpoint rows on the GPU, seeded by `dF/dk` or (`return_grid`) by
/// `dF/dK` at every point, or normalised, and agree with the CPU; `return_grid`'s forward
/// grids come back block by block too.
#[test]
fn sig_kernel_backward_checkpointed_and_seeded_on_gpu() {
    let Some((device, f64)) = gpu() else { return };
    let (batch, l1, l2, dim) = (3, 21, 13, 2);
    let x = random(&[batch, l1, dim], 41) / (l1 as f64).sqrt();
    let y = random(&[batch, l2, dim], 42) / (l2 as f64).sqrt();
    roughsig::gpu::set_max_grid_rows(9);
    for dyadic_order in [(0, 0), (1, 0), (2, 1)] {
        for (return_grid, normalize) in [(false, false), (true, false), (false, true)] {
            let opts = SigKernelOptions::default()
                .dyadic_order(dyadic_order)
                .return_grid(return_grid)
                .normalize(normalize);
            let what = format!("{opts:?}");
            let (rows, cols) = (
                ((l1 - 1) << dyadic_order.0) + 1,
                ((l2 - 1) << dyadic_order.1) + 1,
            );
            let d = if return_grid {
                random(&[batch, rows, cols], 43)
            } else {
                random(&[batch], 43)
            };
            let cpu_opts = opts.clone().device(Device::Cpu);
            let gpu_opts = kernel_on(&device, &opts);
            let (wx, wy) = sig_kernel_backprop(d.view(), x.view(), y.view(), &cpu_opts).unwrap();
            let (tol, got) = if f64 {
                let got = sig_kernel_backprop(d.view(), x.view(), y.view(), &gpu_opts).unwrap();
                (1e-9, got)
            } else {
                let (d32, x32, y32) = (to_f32(&d), to_f32(&x), to_f32(&y));
                let got =
                    sig_kernel_backprop(d32.view(), x32.view(), y32.view(), &gpu_opts).unwrap();
                (2e-3, (to_f64(&got.0), to_f64(&got.1)))
            };
            assert!(
                roughsig::last_backend().is_some_and(|b| b.is_gpu()),
                "{what}"
            );
            assert_close(&format!("dx, {what}"), &got.0, &wx, tol, tol);
            assert_close(&format!("dy, {what}"), &got.1, &wy, tol, tol);
            if return_grid && !normalize && f64 {
                let want = sig_kernel(x.view(), y.view(), &cpu_opts).unwrap();
                let got = sig_kernel(x.view(), y.view(), &gpu_opts).unwrap();
                assert_close(&format!("grid, {what}"), &got, &want, 1e-12, 1e-12);
            }
        }
    }
    roughsig::gpu::set_max_grid_rows(usize::MAX);
}

/// pySigLib returns `(1, L, d)` gradients for unbatched `(L, d)` paths; roughsig returns `(L, d)`.
fn unbatched_quirk(want: ArrayD<f64>, path: &ArrayD<f64>) -> ArrayD<f64> {
    if path.ndim() == 2 && want.ndim() == 3 {
        want.index_axis_move(Axis(0), 0)
    } else {
        want
    }
}

/// Every pySigLib golden case of `sig_kernel_backprop`, on the GPU.
#[test]
fn sig_kernel_backward_golden_on_gpu() {
    let Some((device, f64)) = gpu() else { return };
    let mut checked = 0;
    for case in Case::all("sig_kernel_backprop") {
        if case.flag("return_grid") {
            continue;
        }
        let (x, y, d) = (
            case.array("path1"),
            case.array("path2"),
            case.array("derivs"),
        );
        let want_x = unbatched_quirk(case.array("path1_derivs"), &x);
        let want_y = unbatched_quirk(case.array("path2_derivs"), &y);
        let opts = kernel_on(
            &device,
            &SigKernelOptions::default()
                .dyadic_order(dyadic_order(&case))
                .time_aug(case.flag("time_aug"))
                .lead_lag(case.flag("lead_lag"))
                .end_time(case.end_time()),
        );
        if f64 {
            let (gx, gy) = sig_kernel_backprop(d.view(), x.view(), y.view(), &opts).unwrap();
            let (rtol, atol) = case.tolerance();
            assert_close(&format!("{} dx", case.name), &gx, &want_x, rtol, atol);
            assert_close(&format!("{} dy", case.name), &gy, &want_y, rtol, atol);
        }
        let (gx, gy) = sig_kernel_backprop(
            to_f32(&d).view(),
            to_f32(&x).view(),
            to_f32(&y).view(),
            &opts,
        )
        .unwrap();
        let (dx, dy) = (to_f64(&gx), to_f64(&gy));
        assert_close(&format!("{} dx f32", case.name), &dx, &want_x, 5e-4, 5e-4);
        assert_close(&format!("{} dy f32", case.name), &dy, &want_y, 5e-4, 5e-4);
        checked += 1;
    }
    assert!(checked > 0, "no sig_kernel_backprop golden cases");
}

fn dyadic_order(case: &Case) -> (usize, usize) {
    let v = &case.json["params"]["dyadic_order"];
    match v.as_array() {
        Some(p) => (
            p[0].as_u64().unwrap() as usize,
            p[1].as_u64().unwrap() as usize,
        ),
        None => (v.as_u64().unwrap() as usize, v.as_u64().unwrap() as usize),
    }
}

/// The Gram matrix (also the symmetric one) and its gradient on the GPU against the CPU, for `n × m`
/// pairs of paths of `l1` and `l2` points.
fn check_gram(
    device: &Device,
    f64: bool,
    (n, m): (usize, usize),
    (l1, l2): (usize, usize),
    opts: &SigKernelOptions,
) {
    let what = format!("{n}×{m} pairs, lengths ({l1}, {l2}), {opts:?}");
    let seed = (n * 101 + m * 7 + l1 * 3 + l2) as u64;
    let xs = random(&[n, l1, 2], seed) / (l1 as f64).sqrt();
    let ys = random(&[m, l2, 2], seed + 1) / (l2 as f64).sqrt();
    let d = random(&[n, m], seed + 2);
    let cpu_opts = opts.clone().device(Device::Cpu);
    let gpu_opts = kernel_on(device, opts);
    let want = sig_kernel_gram(xs.view(), ys.view(), &cpu_opts).unwrap();
    let want_sym = sig_kernel_gram_sym(xs.view(), &cpu_opts).unwrap();
    let (wx, wy) = sig_kernel_gram_backprop(d.view(), xs.view(), ys.view(), &cpu_opts).unwrap();
    let on_gpu = || {
        assert!(
            roughsig::last_backend().is_some_and(|b| b.is_gpu()),
            "{what}"
        )
    };
    if f64 {
        let got = sig_kernel_gram(xs.view(), ys.view(), &gpu_opts).unwrap();
        on_gpu();
        assert_close(&format!("gram f64, {what}"), &got, &want, 1e-10, 1e-10);
        let sym = sig_kernel_gram_sym(xs.view(), &gpu_opts).unwrap();
        assert_close(
            &format!("gram_sym f64, {what}"),
            &sym,
            &want_sym,
            1e-10,
            1e-10,
        );
        if opts.dyadic_order.0 == opts.dyadic_order.1 {
            assert_eq!(sym, sym.t(), "{what}: not exactly symmetric");
        }
        let (gx, gy) = sig_kernel_gram_backprop(d.view(), xs.view(), ys.view(), &gpu_opts).unwrap();
        on_gpu();
        assert_close(&format!("gram dxs f64, {what}"), &gx, &wx, 1e-9, 1e-10);
        assert_close(&format!("gram dys f64, {what}"), &gy, &wy, 1e-9, 1e-10);
    }
    let (xs32, ys32, d32) = (to_f32(&xs), to_f32(&ys), to_f32(&d));
    let got = sig_kernel_gram(xs32.view(), ys32.view(), &gpu_opts).unwrap();
    on_gpu();
    assert_close(
        &format!("gram f32, {what}"),
        &to_f64(&got),
        &want,
        1e-4,
        1e-4,
    );
    let (gx, gy) =
        sig_kernel_gram_backprop(d32.view(), xs32.view(), ys32.view(), &gpu_opts).unwrap();
    on_gpu();
    let (dx, dy) = (to_f64(&gx), to_f64(&gy));
    assert_close(&format!("gram dxs f32, {what}"), &dx, &wx, 5e-4, 5e-4);
    assert_close(&format!("gram dys f32, {what}"), &dy, &wy, 5e-4, 5e-4);
}

/// Gram matrices and their gradients: static kernels, normalisation, dyadic orders, and more pairs
/// than one chunk holds.
#[test]
fn sig_kernel_gram_matches_cpu() {
    let Some((device, f64)) = gpu() else { return };
    for static_kernel in [StaticKernel::Linear, StaticKernel::Rbf { sigma: 0.9 }] {
        for normalize in [false, true] {
            let opts = SigKernelOptions::default()
                .static_kernel(static_kernel.clone())
                .normalize(normalize)
                .dyadic_order((1, 0))
                .time_aug(normalize);
            check_gram(&device, f64, (3, 4), (6, 5), &opts);
        }
    }
    let opts = SigKernelOptions::default()
        .dyadic_order((1, 1))
        .lead_lag(true);
    check_gram(&device, f64, (2, 3), (4, 1), &opts);
    // 9 × 9 = 81 pairs: two chunks of at most 70.
    let opts = SigKernelOptions::default().normalize(true);
    check_gram(&device, f64, (9, 9), (4, 5), &opts);
}

/// At the benchmark shape (32 pairs of length 128, dimension 8, dyadic order 2) the largest dispatch
/// of the forward and of the backward pass launches at least 32 768 invocations (the Gram matrices
/// are computed on the device, one invocation per cell), all in one submission, and the kernels and
/// gradients still match the CPU's.
#[test]
fn sig_kernel_dispatches_are_wide_at_the_benchmark_shape() {
    let Some((device, _)) = gpu() else {
        return;
    };
    let opts = SigKernelOptions::default().dyadic_order((2, 2));
    let x = to_f32(&(random(&[32, 128, 8], 81) / 128f64.sqrt()));
    let y = to_f32(&(random(&[32, 128, 8], 82) / 128f64.sqrt()));
    let on_gpu = kernel_on(&device, &opts);
    let on_cpu = kernel_on(&Device::Cpu, &opts);
    let got = sig_kernel(x.view(), y.view(), &on_gpu).unwrap();
    let report = roughsig::gpu::last_gpu_report().expect("a GPU call reports");
    assert_eq!(report.op, "sig_kernel");
    assert!(report.max_invocations >= 32_768, "{report:?}");
    assert_eq!(report.submissions, 1, "{report:?}");
    let want = sig_kernel(x.view(), y.view(), &on_cpu).unwrap();
    assert_close("sig_kernel", &to_f64(&got), &to_f64(&want), 1e-3, 1e-3);
    let ds = ArrayD::<f32>::ones(got.shape());
    let (gx, gy) = sig_kernel_backprop(ds.view(), x.view(), y.view(), &on_gpu).unwrap();
    let report = roughsig::gpu::last_gpu_report().expect("a GPU call reports");
    assert_eq!(report.op, "sig_kernel_backprop");
    assert!(report.max_invocations >= 32_768, "{report:?}");
    let (wx, wy) = sig_kernel_backprop(ds.view(), x.view(), y.view(), &on_cpu).unwrap();
    assert_close("path1 gradient", &to_f64(&gx), &to_f64(&wx), 1e-3, 1e-3);
    assert_close("path2 gradient", &to_f64(&gy), &to_f64(&wy), 1e-3, 1e-3);
}

/// Grids of one band pack several pairs per workgroup (8 pairs of 30 points in one workgroup of 256
/// invocations here, so 5 pairs leave three slots empty): the forward sweep computing each base Gram
/// matrix inside the sweep (no Gram pass), and the gradient's sweeps, for the linear kernel and a
/// point kernel.
#[test]
fn one_band_grids_pack_pairs_per_workgroup() {
    let Some((device, f64)) = gpu() else {
        return;
    };
    for kernel in [StaticKernel::Linear, StaticKernel::Rbf { sigma: 0.7 }] {
        let opts = SigKernelOptions::default().static_kernel(kernel);
        let x = random(&[5, 30, 3], 91) / 30f64.sqrt();
        let y = random(&[5, 20, 3], 92) / 20f64.sqrt();
        let want = sig_kernel(x.view(), y.view(), &kernel_on(&Device::Cpu, &opts)).unwrap();
        let on_gpu = kernel_on(&device, &opts);
        let got = sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &on_gpu).unwrap();
        let report = roughsig::gpu::last_gpu_report().expect("a GPU call reports");
        assert_eq!(report.op, "sig_kernel");
        assert_eq!(report.max_invocations, 256, "{report:?}");
        assert_eq!(report.workgroups, report.dispatches, "{report:?}");
        assert_close("packed f32", &to_f64(&got), &want, 1e-5, 1e-5);
        if f64 {
            let got = sig_kernel(x.view(), y.view(), &on_gpu).unwrap();
            assert_close("packed f64", &got, &want, 1e-12, 1e-12);
        }
        check_backprop(&device, f64, 5, (30, 20), 3, &opts);
    }
}

/// Wide grids (thousands of diagonals per band) for a bilinear and a point kernel: the sweep is cut
/// into as many dispatches as the adapter's loop budget needs, and still agrees with the CPU.
#[test]
fn wide_grids_match_cpu() {
    let Some((device, f64)) = gpu() else {
        return;
    };
    for kernel in [StaticKernel::Linear, StaticKernel::Rbf { sigma: 0.7 }] {
        let opts = SigKernelOptions::default().static_kernel(kernel);
        let x = random(&[2, 6, 2], 93) / 6f64.sqrt();
        let y = random(&[2, 2500, 2], 94) / 50.0;
        let want = sig_kernel(x.view(), y.view(), &kernel_on(&Device::Cpu, &opts)).unwrap();
        let on_gpu = kernel_on(&device, &opts);
        let got = sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &on_gpu).unwrap();
        assert_close("wide f32", &to_f64(&got), &want, 1e-3, 1e-3);
        if f64 {
            let got = sig_kernel(x.view(), y.view(), &on_gpu).unwrap();
            assert_close("wide f64", &got, &want, 1e-11, 1e-11);
        }
    }
}

/// pySigLib's polynomial solver cases on the GPU (`sig_kernel_polynomial.wgsl`): kernels,
/// normalisation, grids and gradients, in f32 and (where the adapter has it) f64, within the CPU's
/// tolerances; pairs of short grids packed per workgroup, tall ones in bands, the sweeps in windows
/// of diagonals on lavapipe.
#[test]
fn polynomial_solver_on_gpu_matches_pysiglib() {
    let Some((device, f64)) = gpu() else { return };
    let on_gpu = |case: &Case| crate::sig_kernel::polynomial_options(case).device(device.clone());
    crate::sig_kernel::check_kernel_cases("polynomial_solver", (7, 5), on_gpu, f64);
    // It ran there: the Gram pass (144 cells, 3 workgroups), then the sweep with the three pairs of
    // 8 rows in one workgroup.
    let (x, y) = (random(&[3, 9, 2], 61) * 0.5, random(&[3, 7, 2], 62) * 0.5);
    let opts = roughsig::SigKernelOptions::default()
        .solver(roughsig::KernelSolver::Polynomial { order: 8 })
        .device(device);
    let got = roughsig::sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &opts).unwrap();
    assert!(roughsig::last_backend().is_some_and(|b| b.is_gpu()));
    let report = roughsig::gpu::last_gpu_report().unwrap();
    assert_eq!((report.dispatches, report.workgroups), (2, 4), "{report:?}");
    let cpu = opts.clone().device(roughsig::Device::Cpu);
    let want = roughsig::sig_kernel(x.view(), y.view(), &cpu).unwrap();
    assert_close("order 8", &to_f64(&got), &want, 1e-4, 1e-5);
    // 149 rows of cells: three bands of rows (64, 64, 21) one after the other, forward and back,
    // each in two windows of diagonals on lavapipe.
    let (x, y) = (
        random(&[2, 150, 2], 63) * 0.1,
        random(&[2, 200, 2], 64) * 0.1,
    );
    let cpu = opts.clone().device(roughsig::Device::Cpu);
    let want = roughsig::sig_kernel(x.view(), y.view(), &cpu).unwrap();
    let got = roughsig::sig_kernel(to_f32(&x).view(), to_f32(&y).view(), &opts).unwrap();
    assert_close("three bands", &to_f64(&got), &want, 1e-4, 1e-5);
    let report = roughsig::gpu::last_gpu_report().unwrap();
    assert!(
        report.dispatches >= 4,
        "the Gram pass and a dispatch per band: {report:?}"
    );
    backprop_matches_cpu("three bands", (&x, &y), &random(&[2], 65), &opts, f64);
    // Packed pairs over windows: three pairs of 5 × 599 cells at order 4 in one workgroup, the
    // sweeps in several windows of diagonals on lavapipe.
    let (x, y) = (
        random(&[3, 6, 2], 66) * 0.3,
        random(&[3, 600, 2], 67) * 0.05,
    );
    let opts = opts.solver(roughsig::KernelSolver::Polynomial { order: 4 });
    backprop_matches_cpu("packed windows", (&x, &y), &random(&[3], 68), &opts, false);
    // The Gram pass, each sweep (one dispatch a window), and the chain's two passes.
    let report = roughsig::gpu::last_gpu_report().unwrap();
    assert!(report.dispatches >= 5, "{report:?}");
}

/// `sig_kernel_backprop` with `opts` (on the GPU) against the CPU: in f32, and in f64 with `f64`.
fn backprop_matches_cpu(
    what: &str,
    (x, y): (&ArrayD<f64>, &ArrayD<f64>),
    derivs: &ArrayD<f64>,
    opts: &SigKernelOptions,
    f64: bool,
) {
    let cpu = opts.clone().device(Device::Cpu);
    let (want1, want2) = sig_kernel_backprop(derivs.view(), x.view(), y.view(), &cpu).unwrap();
    let (d, x32, y32) = (to_f32(derivs), to_f32(x), to_f32(y));
    let (got1, got2) = sig_kernel_backprop(d.view(), x32.view(), y32.view(), opts).unwrap();
    assert_close(
        &format!("{what}, path 1"),
        &to_f64(&got1),
        &want1,
        1e-3,
        1e-4,
    );
    assert_close(
        &format!("{what}, path 2"),
        &to_f64(&got2),
        &want2,
        1e-3,
        1e-4,
    );
    if f64 {
        let (got1, got2) = sig_kernel_backprop(derivs.view(), x.view(), y.view(), opts).unwrap();
        assert_close(&format!("{what}, f64"), &got1, &want1, 1e-10, 1e-12);
        assert_close(&format!("{what}, f64"), &got2, &want2, 1e-10, 1e-12);
    }
}

/// Where the adapter has timestamp queries, the report times every kernel of a call: the gradient's
/// Gram pass, its sweeps and reduction, and the chain to the paths, each dispatch counted once and
/// within the call's kernel time.
#[test]
fn the_report_times_each_kernel() {
    let Some((device, _)) = gpu() else { return };
    let opts = kernel_on(&device, &SigKernelOptions::default().dyadic_order(1));
    let (x, y) = (random(&[4, 20, 3], 71) * 0.3, random(&[4, 30, 3], 72) * 0.3);
    let derivs = random(&[4], 73);
    let (x, y, derivs) = (to_f32(&x), to_f32(&y), to_f32(&derivs));
    sig_kernel_backprop(derivs.view(), x.view(), y.view(), &opts).unwrap();
    let report = roughsig::gpu::last_gpu_report().unwrap();
    let Some(total) = report.kernel_ms else {
        assert!(report.kernels.is_empty(), "{report:?}");
        return;
    };
    let names: Vec<&str> = report.kernels.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(
        names,
        ["sig_kernel_gram", "sig_kernel_backward", "sig_kernel_chain"],
        "{report:?}"
    );
    let dispatches: u64 = report.kernels.iter().map(|k| k.dispatches).sum();
    assert_eq!(dispatches, report.dispatches, "{report:?}");
    for k in &report.kernels {
        assert!(k.ms >= 0.0 && k.ms <= total * (1.0 + 1e-9), "{report:?}");
    }
}
