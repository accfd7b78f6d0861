//! The signature-kernel subcommands (kernels, Gram matrices, metrics and their gradients) end to end.

use ndarray::{ArrayD, Axis};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_roughsig");

fn golden(case: &str, file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/golden")
        .join(case)
        .join(file)
        .to_str()
        .unwrap()
        .to_string()
}

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("roughsig-clik-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run and return (success, stderr).
fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("ROUGHSIG_DEVICE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) {
    let (success, stderr) = run(args);
    assert!(success && stderr.is_empty(), "stderr: {stderr}");
}

fn read(path: &str) -> ArrayD<f64> {
    ArrayD::<f64>::read_npy(File::open(path).unwrap()).unwrap()
}

fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape());
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (g, w) in got.iter().zip(want.iter()) {
        assert!(
            (g - w).abs() <= 1e-10 * w.abs() + 1e-12 * scale,
            "{g} vs {w}"
        );
    }
}

#[test]
fn sig_kernel_and_backprop_match_golden() {
    let dir = Scratch::new("golden");
    let out = dir.file("k.npy");
    // Asymmetric dyadic orders.
    let case = "sigker_asym_do12";
    ok(&[
        "sig-kernel",
        &golden(case, "path1.npy"),
        &golden(case, "path2.npy"),
        "--dyadic-order",
        "1,2",
        "-o",
        &out,
    ]);
    assert_close(&read(&out), &read(&golden(case, "kernel.npy")));
    // Unbatched paths give a 0-d kernel; time augmentation and lead-lag with an end time.
    let case = "sigker_single_d5_L20x15_do2_s";
    ok(&[
        "sig-kernel",
        &golden(case, "path1.npy"),
        &golden(case, "path2.npy"),
        "--dyadic-order",
        "2",
        "-o",
        &out,
    ]);
    let k = read(&out);
    assert_eq!(k.ndim(), 0);
    assert_close(&k, &read(&golden(case, "kernel.npy")));

    let case = "sigkerbp_tall_d2_L5x8_do1_b";
    let (d1, d2) = (dir.file("d1.npy"), dir.file("d2.npy"));
    let args = [
        "--dyadic-order",
        "1",
        "--time-aug",
        "--lead-lag",
        "--end-time",
        "2.5",
    ];
    let mut cmd = vec![
        "sig-kernel-backprop".to_string(),
        golden(case, "derivs.npy"),
        golden(case, "path1.npy"),
        golden(case, "path2.npy"),
    ];
    cmd.extend(args.iter().map(|s| s.to_string()));
    cmd.extend(["-o".into(), d1.clone(), "--output2".into(), d2.clone()]);
    ok(&cmd.iter().map(String::as_str).collect::<Vec<_>>());
    assert_close(&read(&d1), &read(&golden(case, "path1_derivs.npy")));
    assert_close(&read(&d2), &read(&golden(case, "path2_derivs.npy")));

    // pySigLib returns (1, L, d) for unbatched paths; the CLI returns (L, d).
    let case = "sigkerbp_single_d5_L20x15_do0_s";
    ok(&[
        "sig-kernel-backprop",
        &golden(case, "derivs.npy"),
        &golden(case, "path1.npy"),
        &golden(case, "path2.npy"),
        "-o",
        &d1,
        "--output2",
        &d2,
        "--dtype",
        "f64",
    ]);
    let want = read(&golden(case, "path1_derivs.npy")).index_axis_move(Axis(0), 0);
    assert_close(&read(&d1), &want);
}

#[test]
fn sig_kernel_gram_is_all_pairs() {
    let dir = Scratch::new("gram");
    let case = "sigker_eq_d3_L10x10_do1_b";
    let (x, y) = (golden(case, "path1.npy"), golden(case, "path2.npy"));
    let (gram, sym, pairs) = (dir.file("g.npy"), dir.file("s.npy"), dir.file("k.npy"));
    let opts = [
        "--dyadic-order",
        "1",
        "--static-kernel",
        "rbf:0.5",
        "--normalize",
    ];
    let with = |head: &[&str], out: &str| {
        let mut v: Vec<&str> = head.to_vec();
        v.extend(opts);
        v.extend(["-o", out]);
        ok(&v);
    };
    with(&["sig-kernel-gram", &x, &y], &gram);
    with(&["sig-kernel", &x, &y], &pairs);
    let (g, k) = (read(&gram), read(&pairs));
    assert_eq!(g.shape(), &[3, 3]);
    assert_close(&g.diag().to_owned().into_dyn(), &k);
    // The same file twice: the symmetric case, exactly symmetric with a unit diagonal.
    with(&["sig-kernel-gram", &x, &x], &sym);
    let s = read(&sym);
    assert_eq!(s, s.t());
    assert!(s.diag().iter().all(|&v| (v - 1.0).abs() < 1e-14));
}

#[test]
fn sig_kernel_errors_are_one_line() {
    let dir = Scratch::new("errors");
    let case = "sigker_asym_do12";
    let (x, y) = (golden(case, "path1.npy"), golden(case, "path2.npy"));
    let out = dir.file("k.npy");
    let bad_dim = dir.file("bad.npy");
    ArrayD::<f64>::zeros(ndarray::IxDyn(&[2, 4, 2]))
        .write_npy(File::create(&bad_dim).unwrap())
        .unwrap();
    for (args, expect) in [
        (
            vec!["sig-kernel", &x, &y, "--dyadic-order", "1,x", "-o", &out],
            "dyadic-order",
        ),
        (
            vec!["sig-kernel", &x, &y, "--static-kernel", "poly", "-o", &out],
            "static kernel",
        ),
        (vec!["sig-kernel", &x, &bad_dim, "-o", &out], "dimension"),
    ] {
        let (success, stderr) = run(&args);
        assert!(!success, "{args:?}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(expect),
            "{stderr}"
        );
    }
}

/// `--device gpu` runs the gradient and the Gram matrix on the GPU (skipped without an adapter, a
/// failure under `ROUGHSIG_REQUIRE_GPU=1`).
#[test]
fn sig_kernel_backprop_and_gram_on_gpu() {
    if !crate::gpu() {
        eprintln!("skipping: no GPU adapter");
        return;
    }
    let dir = Scratch::new("gpu");
    let case = "sigkerbp_tall_d2_L5x8_do1_b";
    let (d1, d2) = (dir.file("d1.npy"), dir.file("d2.npy"));
    ok(&[
        "sig-kernel-backprop",
        &golden(case, "derivs.npy"),
        &golden(case, "path1.npy"),
        &golden(case, "path2.npy"),
        "--dyadic-order",
        "1",
        "--time-aug",
        "--lead-lag",
        "--end-time",
        "2.5",
        "--device",
        "gpu",
        "-o",
        &d1,
        "--output2",
        &d2,
    ]);
    assert_close(&read(&d1), &read(&golden(case, "path1_derivs.npy")));
    assert_close(&read(&d2), &read(&golden(case, "path2_derivs.npy")));
    let (x, y) = (golden(case, "path1.npy"), golden(case, "path2.npy"));
    let (cpu, gpu) = (dir.file("cpu.npy"), dir.file("gpu.npy"));
    ok(&["sig-kernel-gram", &x, &y, "--device", "cpu", "-o", &cpu]);
    ok(&["sig-kernel-gram", &x, &y, "--device", "gpu", "-o", &gpu]);
    assert_close(&read(&gpu), &read(&cpu));
}

/// `--lengths` and `--lengths2` make either side a ragged batch (a side without lengths is whole),
/// through the kernels, their gradients and the Gram matrix (symmetric when the same file and
/// lengths are given twice), matching the library's ragged functions.
#[test]
fn lengths_make_ragged_kernels() {
    use ndarray::{Array1, Array3};
    let dir = Scratch::new("ragged");
    let save = |name: &str, a: &ArrayD<f64>| {
        a.write_npy(File::create(dir.file(name)).unwrap()).unwrap();
        dir.file(name)
    };
    let x = Array3::from_shape_fn((3, 5, 2), |(i, j, k)| {
        ((i + 2 * j + 3 * k) as f64 / 4.0).sin()
    });
    let y = Array3::from_shape_fn((3, 4, 2), |(i, j, k)| ((3 * i + j + k) as f64 / 3.0).cos());
    let (fx, fy) = (
        save("x.npy", &x.clone().into_dyn()),
        save("y.npy", &y.clone().into_dyn()),
    );
    let lx = [5usize, 2, 3];
    let l = ArrayD::from_shape_vec(vec![3], lx.iter().map(|&v| v as i64).collect()).unwrap();
    l.write_npy(File::create(dir.file("l.npy")).unwrap())
        .unwrap();
    let fl = dir.file("l.npy");
    let (out, out2) = (dir.file("o.npy"), dir.file("o2.npy"));
    let opts = roughsig::SigKernelOptions::default().dyadic_order(1);
    let full = [4usize; 3];

    ok(&[
        "sig-kernel",
        &fx,
        &fy,
        "--lengths",
        &fl,
        "--dyadic-order",
        "1",
        "-o",
        &out,
    ]);
    let want = roughsig::sig_kernel_ragged(x.view(), &lx, y.view(), &full, &opts).unwrap();
    assert_close(&read(&out), &want);

    let d = save("d.npy", &Array1::from_vec(vec![1.0, -0.5, 2.0]).into_dyn());
    ok(&[
        "sig-kernel-backprop",
        &d,
        &fy,
        &fx,
        "--lengths2",
        &fl,
        "--dyadic-order",
        "1",
        "-o",
        &out,
        "--output2",
        &out2,
    ]);
    let derivs = read(&d);
    let (gy, gx) =
        roughsig::sig_kernel_backprop_ragged(derivs.view(), y.view(), &full, x.view(), &lx, &opts)
            .unwrap();
    assert_close(&read(&out), &gy.into_dyn());
    assert_close(&read(&out2), &gx.into_dyn());

    ok(&[
        "sig-kernel-gram",
        &fx,
        &fx,
        "--lengths",
        &fl,
        "--lengths2",
        &fl,
        "--dyadic-order",
        "1",
        "-o",
        &out,
    ]);
    let want = roughsig::sig_kernel_gram_ragged(x.view(), &lx, x.view(), &lx, &opts).unwrap();
    let got = read(&out);
    assert_close(&got, &want.into_dyn());
    assert_eq!(
        got,
        got.t(),
        "the symmetric Gram matrix is exactly symmetric"
    );

    ok(&[
        "transform-path",
        &fx,
        "--lead-lag",
        "--lengths",
        &fl,
        "-o",
        &out,
    ]);
    let sig_opts = roughsig::SigOptions::default().lead_lag(true);
    let want = roughsig::transform_path_ragged(x.view(), &lx, &sig_opts).unwrap();
    assert_close(&read(&out), &want.into_dyn());

    // Lengths for a batch of another size are refused, naming the side.
    let (success, err) = run(&["sig-kernel", &fx, &fy, "--lengths2", &d, "-o", &out]);
    assert!(!success && err.contains("integer"), "{err}");
    let two = ArrayD::from_shape_vec(vec![2], vec![1i64, 2]).unwrap();
    two.write_npy(File::create(dir.file("two.npy")).unwrap())
        .unwrap();
    let (success, err) = run(&[
        "sig-kernel",
        &fx,
        &fy,
        "--lengths2",
        &dir.file("two.npy"),
        "-o",
        &out,
    ]);
    assert!(!success && err.contains("y_lengths"), "{err}");
}

#[test]
fn metrics_match_the_reference_cases() {
    let dir = Scratch::new("metrics");
    let case = |name: &str, file: &str| {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/sig_metrics");
        data.join(name).join(file).to_str().unwrap().to_string()
    };
    let out = dir.file("out.npy");
    let (x, y) = (
        case("sig_mmd_1", "sample1.npy"),
        case("sig_mmd_1", "sample2.npy"),
    );
    let kernel = [
        "--time-aug",
        "--static-kernel",
        "rbf:1.5",
        "--dyadic-order",
        "0",
    ];
    let mut args = vec!["sig-mmd", &x, &y, "-o", &out];
    args.extend_from_slice(&kernel);
    ok(&args);
    assert_close(&read(&out), &read(&case("sig_mmd_1", "value.npy")));

    let (x, y) = (
        case("sig_score_2", "sample1.npy"),
        case("sig_score_2", "sample2.npy"),
    );
    ok(&[
        "sig-score",
        &x,
        &y,
        "--lam",
        "0.5",
        "--dyadic-order",
        "1",
        "-o",
        &out,
    ]);
    assert_close(&read(&out), &read(&case("sig_score_2", "value.npy")));
    let (x, y) = (
        case("expected_sig_score_4", "sample1.npy"),
        case("expected_sig_score_4", "sample2.npy"),
    );
    ok(&[
        "expected-sig-score",
        &x,
        &y,
        "--lam",
        "2.0",
        "--dyadic-order",
        "1",
        "-o",
        &out,
    ]);
    assert_close(
        &read(&out),
        &read(&case("expected_sig_score_4", "value.npy")),
    );
    // One path is too few for the unbiased estimator: one clear line.
    let one = dir.file("one.npy");
    read(&x)
        .slice_axis(Axis(0), (0..1).into())
        .to_owned()
        .write_npy(File::create(&one).unwrap())
        .unwrap();
    let (success, stderr) = run(&["sig-score", &one, &y, "-o", &out]);
    assert!(
        !success && stderr.starts_with("error: ") && stderr.contains("at least 2"),
        "{stderr}"
    );
}

#[test]
fn point_kernels_match_the_reference_cases() {
    let dir = Scratch::new("point-kernels");
    let case = |name: &str, file: &str| {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/static_kernels");
        data.join(name).join(file).to_str().unwrap().to_string()
    };
    let out = dir.file("out.npy");
    for (name, flags) in [
        (
            "matern32",
            &["--static-kernel", "matern32:1.3", "--time-aug"][..],
        ),
        (
            "polynomial_frac",
            &[
                "--static-kernel",
                "polynomial:2.5,1.0,0.7",
                "--dyadic-order",
                "1",
                "--time-aug",
                "--end-time",
                "2",
            ][..],
        ),
    ] {
        let kernel = format!("sig_kernel_{name}");
        let (x, y) = (case(&kernel, "path1.npy"), case(&kernel, "path2.npy"));
        let mut args = vec!["sig-kernel", &x, &y, "-o", &out];
        args.extend_from_slice(flags);
        ok(&args);
        assert_close(&read(&out), &read(&case(&kernel, "kernel.npy")));
    }
    let (success, stderr) = run(&[
        "sig-kernel",
        &case("sig_kernel_matern32", "path1.npy"),
        &case("sig_kernel_matern32", "path2.npy"),
        "--static-kernel",
        "rational-quadratic:1",
        "-o",
        &out,
    ]);
    assert!(
        !success && stderr.starts_with("error: ") && stderr.contains("SIGMA,ALPHA"),
        "{stderr}"
    );
}

#[test]
fn the_polynomial_solver_matches_the_reference_cases() {
    let dir = Scratch::new("polynomial-solver");
    let case = |name: &str, file: &str| {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/polynomial_solver");
        data.join(name).join(file).to_str().unwrap().to_string()
    };
    let out = dir.file("out.npy");
    let kernel = "sig_kernel_order4_rbf_time";
    let (x, y) = (case(kernel, "path1.npy"), case(kernel, "path2.npy"));
    ok(&[
        "sig-kernel",
        &x,
        &y,
        "--method",
        "polynomial",
        "--order",
        "4",
        "--static-kernel",
        "rbf:0.8",
        "--time-aug",
        "-o",
        &out,
    ]);
    assert_close(&read(&out), &read(&case(kernel, "kernel.npy")));
    let (success, stderr) = run(&["sig-kernel", &x, &y, "--method", "polynomial", "-o", &out]);
    assert!(
        !success && stderr.starts_with("error: ") && stderr.contains("--order"),
        "{stderr}"
    );
}

/// The gradients of the Gram matrix and of the metrics: the directional derivative of
/// `F = Σ derivs · op(x, y)` along (vx, vy), from each gradient subcommand, against central
/// differences of the forward subcommand.
#[test]
fn gram_and_metric_gradients_match_finite_differences() {
    use ndarray::{Array3, Dimension};
    let dir = Scratch::new("metric-gradients");
    let save = |name: &str, a: &ArrayD<f64>| {
        a.write_npy(File::create(dir.file(name)).unwrap()).unwrap();
        dir.file(name)
    };
    let x = Array3::from_shape_fn((4, 5, 2), |(i, j, k)| {
        ((i + 2 * j + 3 * k) as f64 / 4.0).sin() * 0.6
    })
    .into_dyn();
    let y = Array3::from_shape_fn((3, 6, 2), |(i, j, k)| {
        ((3 * i + j + k) as f64 / 3.0).cos() * 0.6
    })
    .into_dyn();
    let vx = x.mapv(|v| (7.0 * v).sin());
    let vy = y.mapv(|v| (5.0 * v).cos());
    let (fx, fy) = (save("x.npy", &x), save("y.npy", &y));
    let (out, out2) = (dir.file("o.npy"), dir.file("o2.npy"));
    let kernel = ["--static-kernel", "rbf:0.7", "--dyadic-order", "1"];
    let derivs = |shape: &[usize]| {
        ArrayD::from_shape_fn(shape, |i| {
            1.0 + 0.25 * i.slice().iter().sum::<usize>() as f64
        })
    };
    for (op, derivs, extra) in [
        ("sig-kernel-gram", derivs(&[4, 3]), &[][..]),
        ("sig-mmd", derivs(&[]), &[][..]),
        ("sig-score", derivs(&[3]), &["--lam", "0.5"][..]),
        ("expected-sig-score", derivs(&[1]), &["--lam", "2"][..]),
    ] {
        let fd = save("derivs.npy", &derivs);
        let mut args = vec![format!("{op}-backprop"), fd, fx.clone(), fy.clone()];
        args.extend(kernel.iter().chain(extra).map(|s| s.to_string()));
        args.extend(["-o".into(), out.clone(), "--output2".into(), out2.clone()]);
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let (gx, gy) = (read(&out), read(&out2));
        assert_eq!((gx.shape(), gy.shape()), (x.shape(), y.shape()), "{op}");
        let along = (&gx * &vx).sum() + (&gy * &vy).sum();

        let eps = 1e-4;
        let f = |s: f64| {
            let xs = save("xs.npy", &(&x + &(&vx * s)));
            let ys = save("ys.npy", &(&y + &(&vy * s)));
            let mut args = vec![op, &xs, &ys];
            args.extend(kernel.iter().chain(extra));
            args.extend(["-o", &out]);
            ok(&args);
            (&read(&out) * &derivs).sum()
        };
        let central = (f(eps) - f(-eps)) / (2.0 * eps);
        assert!(
            (along - central).abs() <= 1e-6 * central.abs().max(1.0),
            "{op}: {along} against finite differences {central}"
        );
    }

    // The Gram matrix's gradient of ragged batches, as the library computes it.
    let l = ArrayD::from_shape_vec(vec![4], vec![5i64, 2, 3, 4]).unwrap();
    l.write_npy(File::create(dir.file("l.npy")).unwrap())
        .unwrap();
    let g = derivs(&[4, 3]);
    let fg = save("g.npy", &g);
    ok(&[
        "sig-kernel-gram-backprop",
        &fg,
        &fx,
        &fy,
        "--lengths",
        &dir.file("l.npy"),
        "-o",
        &out,
        "--output2",
        &out2,
    ]);
    let opts = roughsig::SigKernelOptions::default();
    let x3 = x.view().into_dimensionality::<ndarray::Ix3>().unwrap();
    let y3 = y.view().into_dimensionality::<ndarray::Ix3>().unwrap();
    let g2 = g.view().into_dimensionality::<ndarray::Ix2>().unwrap();
    let (wx, wy) =
        roughsig::sig_kernel_gram_backprop_ragged(g2, x3, &[5, 2, 3, 4], y3, &[6; 3], &opts)
            .unwrap();
    assert_close(&read(&out), &wx.into_dyn());
    assert_close(&read(&out2), &wy.into_dyn());

    // A scalar derivative must be one value.
    let two = save("two.npy", &derivs(&[2]));
    let (success, stderr) = run(&[
        "sig-mmd-backprop",
        &two,
        &fx,
        &fy,
        "-o",
        &out,
        "--output2",
        &out2,
    ]);
    assert!(
        !success && stderr.starts_with("error: ") && stderr.contains("one value"),
        "{stderr}"
    );
}
