//! The log-signature subcommands end to end: reference cases through .npy files, the length, and one
//! clear `error: …` line for bad input.

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
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

fn out_path(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "roughsig-cli-logsig-{}-{test}.npy",
        std::process::id()
    ))
}

/// (exit code, stdout, stderr)
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("ROUGHSIG_DEVICE")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run, expect failure with exactly one `error: …` line on stderr, and return it.
fn fails(args: &[&str]) -> String {
    let (code, _, stderr) = run(args);
    assert_eq!(code, Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    lines[0].to_string()
}

fn read(path: &Path) -> ArrayD<f64> {
    ArrayD::<f64>::read_npy(File::open(path).unwrap()).unwrap()
}

/// Read an output file and remove it (never a reference file: those are read with [`read`]).
fn take(path: &Path) -> ArrayD<f64> {
    let a = read(path);
    let _ = std::fs::remove_file(path);
    a
}

fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape());
    let scale = want.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-10 * w.abs() + 1e-12 * scale,
            "{g} vs {w}"
        );
    }
}

#[test]
fn log_sig_matches_golden() {
    // pySigLib's methods 2 and 3: the tensor route and the BCH route.
    for (case, method) in [
        ("logsig_m2_d2_deg3_L8_ta1_ll1_et2.5", "lyndon"),
        ("logsig_m3_d2_deg3_L8_ta1_ll1_et2.5", "bch"),
    ] {
        let out = out_path(method);
        let o = out.to_str().unwrap();
        let path = golden(case, "path.npy");
        let args = [
            "log-sig",
            &path,
            "--degree",
            "3",
            "--method",
            method,
            "--time-aug",
            "--lead-lag",
            "--end-time",
            "2.5",
            "-o",
            o,
            "--jobs",
            "1",
        ];
        let (code, _, stderr) = run(&args);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
        let want = golden(case, "log_sig.npy");
        let want = ArrayD::<f64>::read_npy(File::open(want).unwrap()).unwrap();
        assert_close(&take(&out), &want);
    }
    let out = out_path("lyndon");
    let o = out.to_str().unwrap();

    // The expanded form with its scalar slot, in f32, timed.
    let case = "logsig_m0_d3_deg3_L10_st1";
    let path = golden(case, "path.npy");
    let args = [
        "log-sig",
        &path,
        "--degree",
        "3",
        "--method",
        "expanded",
        "--scalar-term",
        "--dtype",
        "f32",
        "--repeat",
        "2",
        "-o",
        o,
    ];
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    let timing: serde_json::Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(timing["op"], "log-sig");
    assert_eq!(timing["dtype"], "f32");
    let got = ArrayD::<f32>::read_npy(File::open(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    let want = ArrayD::<f64>::read_npy(File::open(golden(case, "log_sig.npy")).unwrap()).unwrap();
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.iter().zip(&want) {
        assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
    }
}

#[test]
fn sig_to_log_sig_matches_golden() {
    let case = "sig2logsig_m2_d3_deg4_st1";
    let out = out_path("sig2logsig");
    let sig = golden(case, "sig.npy");
    let args = [
        "sig-to-log-sig",
        &sig,
        "--dimension",
        "3",
        "--degree",
        "4",
        "--method",
        "2",
        "-o",
        out.to_str().unwrap(),
    ];
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    let want = ArrayD::<f64>::read_npy(File::open(golden(case, "log_sig.npy")).unwrap()).unwrap();
    assert_close(&take(&out), &want);
    // The same on a GPU, where there is one (it must be there under ROUGHSIG_REQUIRE_GPU=1).
    if !crate::gpu() {
        return;
    }
    let mut on_gpu = args.to_vec();
    on_gpu.extend_from_slice(&["--device", "gpu"]);
    let (code, _, stderr) = run(&on_gpu);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &want);
}

#[test]
fn log_sig_length_prints_the_count() {
    let (code, stdout, _) = run(&[
        "log-sig-length",
        "--dimension",
        "2",
        "--degree",
        "3",
        "--time-aug",
        "--lead-lag",
    ]);
    assert_eq!((code, stdout.trim()), (Some(0), "55"));
    let msg = fails(&["log-sig-length", "--dimension", "3", "--degree", "0"]);
    assert!(msg.contains("degree must be a positive integer"), "{msg}");
    let msg = fails(&["log-sig-length", "--dimension", "10", "--degree", "100"]);
    assert!(msg.contains("overflow"), "{msg}");
}

#[test]
fn log_sig_bad_input_is_one_line() {
    let path = golden("logsig_m1_d3_deg3_L10_s", "path.npy");
    let out = out_path("bad");
    let o = out.to_str().unwrap();
    let base = ["log-sig", &path, "--degree", "3", "-o", o];
    let with = |extra: &[&'static str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        fails(&args)
    };
    assert!(with(&["--method", "brackets"]).contains("unknown log-signature method"));
    assert!(with(&["--method", "4"]).contains("method must be one of 0, 1, 2 or 3"));
    // sig-to-log-sig checks its input before choosing a device.
    let msg = fails(&[
        "sig-to-log-sig",
        &path,
        "--dimension",
        "3",
        "--degree",
        "3",
        "--method",
        "words",
        "--device",
        "gpu",
        "-o",
        o,
    ]);
    assert!(msg.contains("sig has length"), "{msg}");
    let msg = fails(&[
        "sig-to-log-sig",
        &path,
        "--dimension",
        "3",
        "--degree",
        "3",
        "--method",
        "words",
        "-o",
        o,
    ]);
    assert!(msg.contains("sig has length"), "{msg}");
    assert!(!out.exists());
}

/// pySigLib's `logsig_to_sig` and its backprop on one reference case (words form, scalar term).
#[test]
fn log_sig_to_sig_matches_the_reference_case() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/log_sig_to_sig/logsig_to_sig_m1_d2_deg4_ta0_ll0_st1");
    let file = |dir: &Path, name: &str| dir.join(name).to_str().unwrap().to_string();
    let (log_sig, out) = (file(&case, "log_sig.npy"), out_path("log_sig_to_sig"));
    let size = [
        "--dimension",
        "2",
        "--degree",
        "4",
        "--method",
        "words",
        "--scalar-term",
    ];
    let mut args = vec!["log-sig-to-sig", &log_sig];
    args.extend_from_slice(&size);
    args.extend_from_slice(&["-o", out.to_str().unwrap()]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &read(&case.join("sig.npy")));

    let bp = case.with_file_name("logsig_to_sig_m1_d2_deg4_ta0_ll0_st1_bp");
    let derivs = file(&bp, "sig_derivs.npy");
    let mut args = vec!["log-sig-to-sig-backprop", &log_sig, &derivs];
    args.extend_from_slice(&size);
    args.extend_from_slice(&["-o", out.to_str().unwrap()]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &read(&bp.join("log_sig_derivs.npy")));
    // The same on a GPU, where there is one (it must be there under ROUGHSIG_REQUIRE_GPU=1).
    if !crate::gpu() {
        return;
    }
    let mut on_gpu = args.clone();
    on_gpu.extend_from_slice(&["--device", "gpu"]);
    let (code, _, stderr) = run(&on_gpu);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &read(&bp.join("log_sig_derivs.npy")));
}

#[test]
fn log_sig_products_and_segments_match_the_reference_cases() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/log_sig_combine");
    let file = |case: &str, name: &str| data.join(case).join(name).to_str().unwrap().to_string();
    let (out, out2) = (out_path("log_sig_products"), out_path("log_sig_products2"));
    let (o, o2) = (out.to_str().unwrap(), out2.to_str().unwrap());
    let size = |d: &'static str, n: &'static str| ["--dimension", d, "--degree", n];

    let case = "log_sig_combine_d3_deg3_ta1_ll0";
    let (a, b) = (file(case, "log_sig1.npy"), file(case, "log_sig2.npy"));
    let mut args = vec!["log-sig-combine", &a, &b, "--time-aug", "-o", o];
    args.extend_from_slice(&size("3", "3"));
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &read(Path::new(&file(case, "log_sig.npy"))));
    if crate::gpu() {
        args.extend_from_slice(&["--device", "gpu"]);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, Some(0), "{stderr}");
        assert_close(&take(&out), &read(Path::new(&file(case, "log_sig.npy"))));
    }
    let bp = format!("{case}_bp");
    let g = file(&bp, "deriv.npy");
    let mut args = vec![
        "log-sig-combine-backprop",
        &g,
        &a,
        &b,
        "--time-aug",
        "-o",
        o,
    ];
    args.extend_from_slice(&["--output2", o2]);
    args.extend_from_slice(&size("3", "3"));
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(
        &take(&out),
        &read(Path::new(&file(&bp, "log_sig1_derivs.npy"))),
    );
    assert_close(
        &take(&out2),
        &read(Path::new(&file(&bp, "log_sig2_derivs.npy"))),
    );

    let case = "log_sig_join_d3_deg5";
    let (l, v) = (file(case, "log_sig.npy"), file(case, "displacement.npy"));
    let mut args = vec!["log-sig-join", &l, &v, "-o", o];
    args.extend_from_slice(&size("3", "5"));
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(
        &take(&out),
        &read(Path::new(&file(case, "log_sig_joined.npy"))),
    );

    let case = "linear_log_sig_d2_deg4_m0_st1";
    let v = file(case, "displacement.npy");
    let mut args = vec![
        "linear-log-sig",
        &v,
        "--method",
        "expanded",
        "--scalar-term",
        "-o",
        o,
    ];
    args.extend_from_slice(&size("2", "4"));
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &read(Path::new(&file(case, "log_sig.npy"))));

    let case = "linear_sig_d3_deg3_st1";
    let v = file(case, "displacement.npy");
    let mut args = vec!["linear-sig", &v, "--scalar-term", "-o", o];
    args.extend_from_slice(&size("3", "3"));
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &read(Path::new(&file(case, "sig.npy"))));
    // A displacement of the wrong width is one clear line.
    let n = args.len();
    (args[n - 3], args[n - 1]) = ("4", "2"); // --dimension 4 --degree 2
    assert!(fails(&args).contains("displacement"));
}

#[test]
fn corrections_match_the_reference_cases() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/correction");
    let file = |case: &str, name: &str| data.join(case).join(name).to_str().unwrap().to_string();
    let out = out_path("correction");
    let o = out.to_str().unwrap();
    let want = |case: &str, name: &str| read(Path::new(&file(case, name)));
    let (path, c) = (file("sig_3", "path.npy"), file("sig_3", "correction.npy"));
    let flags = ["--time-aug", "--end-time", "2", "--degree", "4"];

    let mut args = vec!["sig", &path, "--correction", &c, "-o", o];
    args.extend_from_slice(&flags);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &want("sig_3", "sig.npy"));

    let (s, ds) = (
        file("sig_backprop_3", "sig.npy"),
        file("sig_backprop_3", "sig_derivs.npy"),
    );
    let mut args = vec!["sig-backprop", &path, &s, &ds, "--correction", &c, "-o", o];
    args.extend_from_slice(&flags);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &want("sig_backprop_3", "grad.npy"));

    let (path, c) = (
        file("log_sig_1", "path.npy"),
        file("log_sig_1", "correction.npy"),
    );
    let args = [
        "log-sig",
        &path,
        "--degree",
        "4",
        "--method",
        "words",
        "--correction",
        &c,
        "-o",
        o,
    ];
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_close(&take(&out), &want("log_sig_1", "log_sig.npy"));

    // Lead-lag cannot take a correction: one clear line.
    let line = fails(&[
        "sig",
        &path,
        "--degree",
        "4",
        "--lead-lag",
        "--correction",
        &c,
        "-o",
        o,
    ]);
    assert!(line.contains("lead_lag"), "{line}");
    assert!(!out.exists());
}

/// log-sig-backprop and sig-to-log-sig-backprop through .npy files: the library's gradients, for the
/// Lyndon words form of a reference path (on a GPU too, where there is one).
#[test]
fn log_sig_gradients_match_the_library() {
    use ndarray_npy::WriteNpyExt;
    let path_file = golden("logsig_m1_d2_deg4_L10_b", "path.npy");
    let path = read(Path::new(&path_file));
    let (opts, method) = (
        roughsig::SigOptions::default(),
        roughsig::LogSigMethod::Words,
    );
    let logs = roughsig::log_sig(path.view(), 4, method, &opts).unwrap();
    let sigs = roughsig::sig(path.view(), 4, &opts).unwrap();
    let derivs = logs.mapv(|v| (3.0 * v).cos());
    let (sig_file, derivs_file, out) = (
        out_path("log_sig_grad_sigs"),
        out_path("log_sig_grad_derivs"),
        out_path("log_sig_grad"),
    );
    sigs.write_npy(File::create(&sig_file).unwrap()).unwrap();
    derivs
        .write_npy(File::create(&derivs_file).unwrap())
        .unwrap();
    let want = roughsig::log_sig_backprop(path.view(), derivs.view(), 4, method, &opts).unwrap();
    let want_sigs =
        roughsig::sig_to_log_sig_backprop(sigs.view(), derivs.view(), 2, 4, method, &opts).unwrap();
    let (d, s, o) = (
        derivs_file.to_str().unwrap(),
        sig_file.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let by_path = [
        "log-sig-backprop",
        &path_file,
        d,
        "--degree",
        "4",
        "--method",
        "words",
        "-o",
        o,
    ];
    let by_sig = [
        "sig-to-log-sig-backprop",
        s,
        d,
        "--dimension",
        "2",
        "--degree",
        "4",
        "--method",
        "words",
        "-o",
        o,
    ];
    let devices: &[&[&str]] = if crate::gpu() {
        &[&[], &["--device", "gpu"]]
    } else {
        &[&[]]
    };
    for device in devices {
        for (args, want) in [(&by_path[..], &want), (&by_sig[..], &want_sigs)] {
            let args: Vec<&str> = args.iter().chain(device.iter()).copied().collect();
            let (code, _, stderr) = run(&args);
            assert_eq!(code, Some(0), "{stderr}");
            assert_close(&take(&out), want);
        }
    }
    let _ = std::fs::remove_file(&sig_file);
    let _ = std::fs::remove_file(&derivs_file);
}
