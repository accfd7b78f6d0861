//! `sig_combine`, `sig_join` and their gradients on the GPU against the CPU, and every pySigLib
//! golden case of them on the GPU in f32 and f64. Skipped like the other GPU tests without an adapter.

use crate::common::gpu::{gpu, CHUNK};
use crate::common::{assert_close, random, to_f32, to_f64, Case};
use ndarray::ArrayD;
use roughsig::{Device, SigOptions};

fn opts(device: Device, scalar_term: bool) -> SigOptions {
    SigOptions::default()
        .device(device)
        .scalar_term(scalar_term)
}

/// Signatures of random paths (so every level has its natural size), `batch` of them.
fn sigs(batch: usize, dim: usize, degree: usize, st: bool, seed: u64) -> ArrayD<f64> {
    let path = random(&[batch, 6, dim], seed) / 2.0;
    roughsig::sig(path.view(), degree, &opts(Device::Cpu, st)).unwrap()
}

/// f32 on the GPU against f64 on the CPU.
fn close32(what: &str, got: &ArrayD<f32>, want: &ArrayD<f64>) {
    assert_close(&format!("{what} f32"), &to_f64(got), want, 1e-4, 1e-4);
}

#[test]
fn sig_combine_and_sig_join_match_the_cpu() {
    let Some((device, f64)) = gpu() else { return };
    // Batches below and across the test chunk of rows, with and without the scalar term.
    for (batch, dim, degree) in [
        (1, 1, 1),
        (3, 2, 4),
        (CHUNK + 5, 3, 3),
        (2, 5, 2),
        (4, 2, 6),
    ] {
        for st in [false, true] {
            for prepend in [false, true] {
                let what = format!(
                    "batch {batch}, dim {dim}, degree {degree}, st {st}, prepend {prepend}"
                );
                let seed = (batch * 101 + dim * 7 + degree) as u64;
                let (a, b) = (
                    sigs(batch, dim, degree, st, seed),
                    sigs(batch, dim, degree, st, seed + 1),
                );
                let z = random(&[batch, dim], seed + 2) / 2.0;
                let g = random(a.shape(), seed + 3);
                let (cpu, gpu_opts) = (opts(Device::Cpu, st), opts(device.clone(), st));

                let want = roughsig::sig_combine(a.view(), b.view(), dim, degree, &cpu).unwrap();
                let (wa, wb) =
                    roughsig::sig_combine_backprop(g.view(), a.view(), b.view(), dim, degree, &cpu)
                        .unwrap();
                let joined =
                    roughsig::sig_join(a.view(), z.view(), dim, degree, prepend, &cpu).unwrap();
                let (ws, wz) = roughsig::sig_join_backprop(
                    g.view(),
                    a.view(),
                    z.view(),
                    dim,
                    degree,
                    prepend,
                    &cpu,
                )
                .unwrap();

                let (a32, b32, z32, g32) = (to_f32(&a), to_f32(&b), to_f32(&z), to_f32(&g));
                let got =
                    roughsig::sig_combine(a32.view(), b32.view(), dim, degree, &gpu_opts).unwrap();
                assert!(
                    roughsig::last_backend().is_some_and(|b| b.is_gpu()),
                    "{what}"
                );
                close32(&format!("sig_combine {what}"), &got, &want);
                let (da, db) = roughsig::sig_combine_backprop(
                    g32.view(),
                    a32.view(),
                    b32.view(),
                    dim,
                    degree,
                    &gpu_opts,
                )
                .unwrap();
                close32(&format!("sig_combine_backprop da {what}"), &da, &wa);
                close32(&format!("sig_combine_backprop db {what}"), &db, &wb);
                let got =
                    roughsig::sig_join(a32.view(), z32.view(), dim, degree, prepend, &gpu_opts)
                        .unwrap();
                close32(&format!("sig_join {what}"), &got, &joined);
                let (ds, dz) = roughsig::sig_join_backprop(
                    g32.view(),
                    a32.view(),
                    z32.view(),
                    dim,
                    degree,
                    prepend,
                    &gpu_opts,
                )
                .unwrap();
                close32(&format!("sig_join_backprop ds {what}"), &ds, &ws);
                close32(&format!("sig_join_backprop dz {what}"), &dz, &wz);

                if f64 {
                    let tight = |w: &str, got: &ArrayD<f64>, want: &ArrayD<f64>| {
                        assert_close(&format!("{w} f64 {what}"), got, want, 1e-12, 1e-13)
                    };
                    let got =
                        roughsig::sig_combine(a.view(), b.view(), dim, degree, &gpu_opts).unwrap();
                    tight("sig_combine", &got, &want);
                    let (da, db) = roughsig::sig_combine_backprop(
                        g.view(),
                        a.view(),
                        b.view(),
                        dim,
                        degree,
                        &gpu_opts,
                    )
                    .unwrap();
                    tight("sig_combine_backprop da", &da, &wa);
                    tight("sig_combine_backprop db", &db, &wb);
                    let got =
                        roughsig::sig_join(a.view(), z.view(), dim, degree, prepend, &gpu_opts)
                            .unwrap();
                    tight("sig_join", &got, &joined);
                    let (ds, dz) = roughsig::sig_join_backprop(
                        g.view(),
                        a.view(),
                        z.view(),
                        dim,
                        degree,
                        prepend,
                        &gpu_opts,
                    )
                    .unwrap();
                    tight("sig_join_backprop ds", &ds, &ws);
                    tight("sig_join_backprop dz", &dz, &wz);
                }
            }
        }
    }
}

/// Every pySigLib golden case of the four functions, on the GPU: f64 within the cases' tolerance
/// where the adapter has f64, f32 within 2e-4.
#[test]
fn sig_combine_and_sig_join_golden_on_gpu() {
    let Some((device, f64)) = gpu() else { return };
    let on = |case: &Case| case.options().device(device.clone());
    let check = |case: &Case, name: &str, got64: Option<ArrayD<f64>>, got32: ArrayD<f32>| {
        let want = case.array(name);
        if let Some(got) = got64 {
            let (rtol, atol) = case.tolerance();
            assert_close(&format!("{} {name}", case.name), &got, &want, rtol, atol);
        }
        assert_close(
            &format!("{} {name} f32", case.name),
            &to_f64(&got32),
            &want,
            2e-4,
            2e-4,
        );
    };
    for case in Case::all("sig_combine") {
        let (a, b) = (case.array("sig1"), case.array("sig2"));
        let (d, n, o) = (case.usize("dimension"), case.usize("degree"), on(&case));
        let run32 = roughsig::sig_combine(to_f32(&a).view(), to_f32(&b).view(), d, n, &o).unwrap();
        let run64 = f64.then(|| roughsig::sig_combine(a.view(), b.view(), d, n, &o).unwrap());
        check(&case, "combined", run64, run32);
    }
    for case in Case::all("sig_combine_backprop") {
        let (g, a, b) = (case.array("deriv"), case.array("sig1"), case.array("sig2"));
        let (d, n, o) = (case.usize("dimension"), case.usize("degree"), on(&case));
        let (da32, db32) = roughsig::sig_combine_backprop(
            to_f32(&g).view(),
            to_f32(&a).view(),
            to_f32(&b).view(),
            d,
            n,
            &o,
        )
        .unwrap();
        let run64 = f64.then(|| {
            roughsig::sig_combine_backprop(g.view(), a.view(), b.view(), d, n, &o).unwrap()
        });
        let (da64, db64) = run64.map_or((None, None), |(x, y)| (Some(x), Some(y)));
        check(&case, "sig1_deriv", da64, da32);
        check(&case, "sig2_deriv", db64, db32);
    }
    for case in Case::all("sig_join") {
        let (s, v) = (case.array("sig"), case.array("displacement"));
        let (d, n, p) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.flag("prepend"),
        );
        let o = opts(device.clone(), false);
        let run32 = roughsig::sig_join(to_f32(&s).view(), to_f32(&v).view(), d, n, p, &o).unwrap();
        let run64 = f64.then(|| roughsig::sig_join(s.view(), v.view(), d, n, p, &o).unwrap());
        check(&case, "joined", run64, run32);
    }
    for case in Case::all("sig_join_backprop") {
        let (g, s, v) = (
            case.array("d_out"),
            case.array("sig"),
            case.array("displacement"),
        );
        let (d, n, p) = (
            case.usize("dimension"),
            case.usize("degree"),
            case.flag("prepend"),
        );
        let o = opts(device.clone(), false);
        let (ds32, dv32) = roughsig::sig_join_backprop(
            to_f32(&g).view(),
            to_f32(&s).view(),
            to_f32(&v).view(),
            d,
            n,
            p,
            &o,
        )
        .unwrap();
        let run64 = f64.then(|| {
            roughsig::sig_join_backprop(g.view(), s.view(), v.view(), d, n, p, &o).unwrap()
        });
        let (ds64, dv64) = run64.map_or((None, None), |(x, y)| (Some(x), Some(y)));
        check(&case, "d_sig", ds64, ds32);
        check(&case, "d_displacement", dv64, dv32);
    }
}

/// The gradient of a join is one submission of three dispatches (the segment's exponential, the
/// product's adjoint, the displacement's reduction), one invocation per coefficient or a workgroup
/// per (row, channel).
#[test]
fn sig_join_backprop_is_one_submission() {
    let Some((device, _)) = gpu() else { return };
    let (batch, dim, degree) = (8, 3, 4);
    let s = to_f32(&sigs(batch, dim, degree, false, 5));
    let z = to_f32(&random(&[batch, dim], 6));
    let g = to_f32(&random(s.shape(), 7));
    roughsig::sig_join_backprop(
        g.view(),
        s.view(),
        z.view(),
        dim,
        degree,
        false,
        &opts(device, false),
    )
    .unwrap();
    let r = roughsig::gpu::last_gpu_report().expect("a GPU call ran");
    assert_eq!(r.op, "sig_join_backprop");
    assert_eq!((r.dispatches, r.submissions), (3, 1), "{r:?}");
    // The product's adjoint: an invocation per (row, factor, coefficient).
    let sig_len = (1..=degree).map(|k| dim.pow(k as u32)).sum::<usize>() as u64;
    assert!(r.max_invocations >= 2 * batch as u64 * sig_len, "{r:?}");
}

/// Signatures kept on the device: their products (`combine`, `join`) and the products' gradients
/// equal the host functions' on the same signatures, a product's log-signature is that of its
/// download, and the gradients with respect to the paths refuse a product.
#[test]
fn resident_products_match_the_host_functions() {
    let Some((device, f64)) = gpu() else { return };
    for (time_aug, st, prepend) in [
        (false, false, false),
        (true, true, false),
        (false, true, true),
    ] {
        let what = format!("time_aug {time_aug}, st {st}, prepend {prepend}");
        let (batch, dim, degree) = (6, 2, 4);
        let o = opts(device.clone(), st).time_aug(time_aug);
        let d = dim + time_aug as usize;
        let (xa, xb) = (
            random(&[batch, 9, dim], 31) / 2.0,
            random(&[batch, 7, dim], 32) / 2.0,
        );
        let z = random(&[batch, d], 33) / 2.0;
        let g = random(&[batch, roughsig::sig_length(dim, degree, &o).unwrap()], 34);
        let check = |got: &ArrayD<f64>, want: &ArrayD<f64>, name: &str| {
            assert_close(&format!("{name} {what}"), got, want, 1e-9, 1e-9)
        };
        let check32 = |got: &ArrayD<f32>, want: &ArrayD<f64>, name: &str| {
            close32(&format!("{name} {what}"), got, want)
        };
        // f64 where the adapter has it, f32 always; the reference is the host API on the CPU.
        let cpu = o.clone().device(Device::Cpu);
        let a = roughsig::sig(xa.view(), degree, &cpu).unwrap();
        let b = roughsig::sig(xb.view(), degree, &cpu).unwrap();
        let combined = roughsig::sig_combine(a.view(), b.view(), dim, degree, &cpu).unwrap();
        let (da, db) =
            roughsig::sig_combine_backprop(g.view(), a.view(), b.view(), dim, degree, &cpu)
                .unwrap();
        let joined = roughsig::sig_join(a.view(), z.view(), d, degree, prepend, &cpu).unwrap();
        let (ds, dz) =
            roughsig::sig_join_backprop(g.view(), a.view(), z.view(), d, degree, prepend, &cpu)
                .unwrap();
        let method = roughsig::LogSigMethod::Words;
        let logs = roughsig::sig_to_log_sig(combined.view(), dim, degree, method, &cpu).unwrap();

        if f64 {
            let (pa, pb) = (
                roughsig::gpu::GpuPaths::new(xa.view(), &o).unwrap(),
                roughsig::gpu::GpuPaths::new(xb.view(), &o).unwrap(),
            );
            let (sa, sb) = (pa.sig(degree).unwrap(), pb.sig(degree).unwrap());
            let product = sa.combine(&sb).unwrap();
            check(&product.to_host().unwrap(), &combined, "combine");
            check(
                &product.log_sig(method).unwrap(),
                &logs,
                "combine's log_sig",
            );
            let (ga, gb) = sa.combine_backprop(&sb, g.view()).unwrap();
            check(&ga, &da, "combine_backprop a");
            check(&gb, &db, "combine_backprop b");
            let j = sa.join(z.view(), prepend).unwrap();
            check(&j.to_host().unwrap(), &joined, "join");
            let (gs, gz) = sa.join_backprop(z.view(), g.view(), prepend).unwrap();
            check(&gs, &ds, "join_backprop sigs");
            check(&gz, &dz, "join_backprop displacements");
            // A product is not the signature of the paths: no path gradient from it.
            assert!(pa.sig_backprop(&product, g.view()).is_err());
            assert!(product.log_sig_backprop(method, logs.view()).is_err());
        }
        let (pa, pb) = (
            roughsig::gpu::GpuPaths::new(to_f32(&xa).view(), &o).unwrap(),
            roughsig::gpu::GpuPaths::new(to_f32(&xb).view(), &o).unwrap(),
        );
        let (sa, sb) = (pa.sig(degree).unwrap(), pb.sig(degree).unwrap());
        let product = sa.combine(&sb).unwrap();
        check32(&product.to_host().unwrap(), &combined, "combine");
        let (ga, gb) = sa.combine_backprop(&sb, to_f32(&g).view()).unwrap();
        check32(&ga, &da, "combine_backprop a");
        check32(&gb, &db, "combine_backprop b");
        let j = sa.join(to_f32(&z).view(), prepend).unwrap();
        check32(&j.to_host().unwrap(), &joined, "join");
        let (gs, gz) = sa
            .join_backprop(to_f32(&z).view(), to_f32(&g).view(), prepend)
            .unwrap();
        check32(&gs, &ds, "join_backprop sigs");
        check32(&gz, &dz, "join_backprop displacements");
        // Products of products stay on the device.
        let twice = product.combine(&sb).unwrap();
        let want = roughsig::sig_combine(combined.view(), b.view(), dim, degree, &cpu).unwrap();
        check32(&twice.to_host().unwrap(), &want, "combine of a combine");
        // Mismatched partners are errors, not wrong answers.
        let short = roughsig::gpu::GpuPaths::new(to_f32(&xb).view(), &o).unwrap();
        assert!(sa.combine(&short.sig(degree - 1).unwrap()).is_err());
        let z_bad = to_f32(&random(&[batch, d + 1], 35));
        assert!(sa.join(z_bad.view(), prepend).is_err());
    }
}
