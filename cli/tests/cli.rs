//! The `roughsig` binary end to end: golden cases through .npy files, dtypes, timing output, and one
//! clear line on stderr for every bad input.

use ndarray::{array, ArrayD, IxDyn};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_roughsig");

fn golden(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/golden")
        .join(case)
}

/// A fresh scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(test: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("roughsig-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("ROUGHSIG_DEVICE")
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run and expect success with a silent stderr.
fn ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let r = run(args);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert!(r.stderr.is_empty(), "unexpected stderr: {}", r.stderr);
    r
}

/// Run and expect failure with exactly one `error: …` line on stderr; returns that line.
fn fails<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let r = run(args);
    assert_ne!(r.code, Some(0), "expected failure, stdout: {}", r.stdout);
    assert!(r.code.is_some(), "killed by a signal: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got: {:?}",
        r.stderr
    );
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    lines[0].to_string()
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

fn read64(path: &Path) -> ArrayD<f64> {
    ArrayD::<f64>::read_npy(File::open(path).unwrap()).unwrap()
}

fn write<A: ndarray_npy::WritableElement>(path: &Path, a: &ArrayD<A>) {
    a.write_npy(File::create(path).unwrap()).unwrap();
}

/// `|got - ref| <= rtol·|ref| + 1e-12·max|ref|`, NaN matching NaN and infinities by position.
fn assert_close(got: &ArrayD<f64>, expected: &ArrayD<f64>, rtol: f64) {
    assert_eq!(got.shape(), expected.shape());
    let scale = expected
        .iter()
        .filter(|x| x.is_finite())
        .fold(0.0_f64, |m, x| m.max(x.abs()));
    for (i, (g, e)) in got.iter().zip(expected.iter()).enumerate() {
        if e.is_finite() {
            assert!(
                (g - e).abs() <= rtol * e.abs() + 1e-12 * scale,
                "entry {i}: got {g}, expected {e}"
            );
        } else {
            assert!(!g.is_finite(), "entry {i}: got {g}, expected {e}");
        }
    }
}

#[test]
fn sig_matches_golden() {
    let dir = scratch("sig");
    let case = golden("sig_flags_d2_L10_deg4_ta1_ll1_et2.5_st1");
    let out = dir.join("sig.npy");
    let args = [
        "--time-aug",
        "--lead-lag",
        "--end-time",
        "2.5",
        "--scalar-term",
    ];
    let mut cmd = vec![
        "sig".into(),
        p(&case.join("path.npy")),
        "--degree".into(),
        "4".into(),
    ];
    cmd.extend(args.iter().map(|s| s.to_string()));
    cmd.extend(["-o".into(), p(&out), "--jobs".into(), "1".into()]);
    ok(&cmd);
    assert_close(&read64(&out), &read64(&case.join("sig.npy")), 1e-10);
}

#[test]
fn sig_backprop_matches_golden() {
    let dir = scratch("sigbp");
    let case = golden("sigbp_flags_d2_L10_deg4_ta1_ll1_et2.5_st1");
    let out = dir.join("grad.npy");
    ok(&[
        "sig-backprop",
        &p(&case.join("path.npy")),
        &p(&case.join("sig.npy")),
        &p(&case.join("sig_derivs.npy")),
        "--degree",
        "4",
        "--time-aug",
        "--lead-lag",
        "--end-time",
        "2.5",
        "-o",
        &p(&out),
    ]);
    assert_close(&read64(&out), &read64(&case.join("path_derivs.npy")), 1e-10);
}

#[test]
fn transform_path_and_sig_combine_and_sig_join_match_golden() {
    let dir = scratch("tp");
    let out = dir.join("out.npy");
    let case = golden("tp_d3_L10_s_ta1_ll1_et2.5");
    let path = p(&case.join("path.npy"));
    ok(&[
        "transform-path",
        &path,
        "--time-aug",
        "--lead-lag",
        "--end-time",
        "2.5",
        "-o",
        &p(&out),
    ]);
    assert_close(&read64(&out), &read64(&case.join("transformed.npy")), 1e-10);

    let case = golden("tpbp_d2_L5_ta1_ll1");
    let derivs = p(&case.join("derivs.npy"));
    ok(&[
        "transform-path-backprop",
        &derivs,
        "--time-aug",
        "--lead-lag",
        "--end-time",
        "2.5",
        "-o",
        &p(&out),
    ]);
    assert_close(&read64(&out), &read64(&case.join("path_derivs.npy")), 1e-10);

    let case = golden("sigcomb_d2_deg3_ta1_ll1_st0_b");
    let (s1, s2) = (p(&case.join("sig1.npy")), p(&case.join("sig2.npy")));
    let size = [
        "--dimension",
        "2",
        "--degree",
        "3",
        "--time-aug",
        "--lead-lag",
    ];
    let mut cmd = vec!["sig-combine", &s1, &s2, "-o"];
    let o = p(&out);
    cmd.push(&o);
    cmd.extend(size);
    ok(&cmd);
    assert_close(&read64(&out), &read64(&case.join("combined.npy")), 1e-10);

    let case = golden("sigjoin_d3_deg3_prep1_st1_s");
    let (sig, disp) = (p(&case.join("sig.npy")), p(&case.join("displacement.npy")));
    ok(&[
        "sig-join",
        &sig,
        &disp,
        "--dimension",
        "3",
        "--degree",
        "3",
        "--prepend",
        "-o",
        &o,
    ]);
    assert_close(&read64(&out), &read64(&case.join("joined.npy")), 1e-10);
}

#[test]
fn sig_combine_backprop_matches_golden() {
    let dir = scratch("combbp");
    let case = golden("sigcombbp_d3_deg3_st1_s");
    let (o1, o2) = (dir.join("d1.npy"), dir.join("d2.npy"));
    ok(&[
        "sig-combine-backprop",
        &p(&case.join("deriv.npy")),
        &p(&case.join("sig1.npy")),
        &p(&case.join("sig2.npy")),
        "--dimension",
        "3",
        "--degree",
        "3",
        "-o",
        &p(&o1),
        "--output2",
        &p(&o2),
    ]);
    assert_close(&read64(&o1), &read64(&case.join("sig1_deriv.npy")), 1e-10);
    assert_close(&read64(&o2), &read64(&case.join("sig2_deriv.npy")), 1e-10);
}

#[test]
fn sig_join_backprop_matches_golden() {
    let dir = scratch("joinbp");
    let case = golden("sigjoinbp_d2_deg5_prep1_st0_b");
    let (o1, o2) = (dir.join("d1.npy"), dir.join("d2.npy"));
    ok(&[
        "sig-join-backprop",
        &p(&case.join("d_out.npy")),
        &p(&case.join("sig.npy")),
        &p(&case.join("displacement.npy")),
        "--dimension",
        "2",
        "--degree",
        "5",
        "--prepend",
        "-o",
        &p(&o1),
        "--output2",
        &p(&o2),
    ]);
    assert_close(&read64(&o1), &read64(&case.join("d_sig.npy")), 1e-10);
    assert_close(
        &read64(&o2),
        &read64(&case.join("d_displacement.npy")),
        1e-10,
    );
}

#[test]
fn dtypes_follow_the_input_or_dtype_flag() {
    let dir = scratch("dtypes");
    let case = golden("sig_flags_d2_L10_deg4_ta1_ll1_et2.5_st1");
    let path64 = read64(&case.join("path.npy"));
    let path32 = dir.join("path32.npy");
    write(&path32, &path64.mapv(|x| x as f32));
    let flags = [
        "--degree",
        "4",
        "--time-aug",
        "--lead-lag",
        "--end-time",
        "2.5",
        "--scalar-term",
    ];
    let out = dir.join("out.npy");

    let mut cmd = vec!["sig".to_string(), p(&path32), "-o".into(), p(&out)];
    cmd.extend(flags.iter().map(|s| s.to_string()));
    ok(&cmd);
    let got =
        ArrayD::<f32>::read_npy(File::open(&out).unwrap()).expect("f32 input gives an f32 output");
    assert_close(&got.mapv(f64::from), &read64(&case.join("sig.npy")), 1e-4);

    cmd.extend(["--dtype".into(), "f64".into()]);
    ok(&cmd);
    assert!(
        ArrayD::<f64>::read_npy(File::open(&out).unwrap()).is_ok(),
        "--dtype f64 gives f64"
    );

    // Integer input is converted to f64.
    let ints = dir.join("ints.npy");
    write(&ints, &array![[0_i64, 0], [1, 2]].into_dyn());
    ok(&["sig", &p(&ints), "--degree", "2", "-o", &p(&out)]);
    assert_eq!(
        read64(&out).as_slice().unwrap(),
        &[1.0, 2.0, 0.5, 1.0, 1.0, 2.0]
    );

    // f32 and f64 inputs together need --dtype.
    let sbp = golden("sigbp_flags_d2_L10_deg4_ta1_ll1_et2.5_st1");
    let bp32 = dir.join("bp32.npy");
    write(&bp32, &read64(&sbp.join("path.npy")).mapv(|x| x as f32));
    let mut bp = vec![
        "sig-backprop".to_string(),
        p(&bp32),
        p(&sbp.join("sig.npy")),
        p(&sbp.join("sig_derivs.npy")),
    ];
    bp.extend(
        [
            "--degree",
            "4",
            "--time-aug",
            "--lead-lag",
            "--end-time",
            "2.5",
            "-o",
        ]
        .map(String::from),
    );
    bp.push(p(&out));
    let msg = fails(&bp);
    assert!(msg.contains("--dtype"), "{msg}");
    bp.extend(["--dtype".into(), "f32".into()]);
    ok(&bp);
    assert!(ArrayD::<f32>::read_npy(File::open(&out).unwrap()).is_ok());
}

#[test]
fn repeat_prints_one_json_line() {
    let dir = scratch("repeat");
    let case = golden("sig_flags_d2_L10_deg4_ta1_ll1_et2.5_st1");
    let r = run(&[
        "sig",
        &p(&case.join("path.npy")),
        "--degree",
        "4",
        "-o",
        &p(&dir.join("o.npy")),
        "--repeat",
        "3",
        "--device",
        "cpu",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    for key in [
        "op",
        "device",
        "dtype",
        "repeats",
        "min_ms",
        "median_ms",
        "shape",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["op"], "sig");
    assert_eq!(v["device"], "cpu");
    assert_eq!(v["dtype"], "f64");
    assert_eq!(v["repeats"], 3);
    assert_eq!(v["shape"], serde_json::json!([3, 10, 2]));
    assert!(v["min_ms"].as_f64().unwrap() <= v["median_ms"].as_f64().unwrap());
}

/// A bad `ROUGHSIG_DEVICE` is one error line naming the variable and the value.
#[test]
fn a_bad_device_variable_is_named() {
    let dir = scratch("bad-device-env");
    let case = golden("sig_flags_d2_L10_deg4_ta1_ll1_et2.5_st1");
    let out = Command::new(BIN)
        .args(["sig", &p(&case.join("path.npy")), "--degree", "2", "-o"])
        .arg(dir.join("o.npy"))
        .env("ROUGHSIG_DEVICE", "garbage")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ROUGHSIG_DEVICE") && stderr.contains("garbage"),
        "{stderr}"
    );
}

/// `sig-combine` on the GPU from the command line: the golden result, and `--repeat`'s JSON carries
/// the device's report, with each kernel's time (skipped without an adapter, like the other GPU
/// tests).
#[test]
fn sig_combine_runs_on_the_gpu_with_a_report() {
    if !crate::gpu() {
        return;
    }
    let dir = scratch("combine-gpu");
    let case = golden("sigcomb_d3_deg3_ta0_ll0_st0_s");
    let out = dir.join("o.npy");
    let r = run(&[
        "sig-combine",
        &p(&case.join("sig1.npy")),
        &p(&case.join("sig2.npy")),
        "--dimension",
        "3",
        "--degree",
        "3",
        "-o",
        &p(&out),
        "--device",
        "gpu",
        "--repeat",
        "1",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // The JSON line (a driver may have written its own lines before it).
    let line = r.stderr.lines().rev().find(|l| l.starts_with('{'));
    let v: serde_json::Value = serde_json::from_str(line.expect("a JSON line")).unwrap();
    assert!(v["device"].as_str().unwrap().starts_with("gpu"), "{v}");
    assert_eq!(v["gpu"]["op"], "sig_combine", "{v}");
    // With timestamp queries, the time of each kernel: here the one dispatch of `sig_combine`.
    if !v["gpu"]["kernel_ms"].is_null() {
        assert_eq!(v["gpu"]["kernels"][0]["name"], "sig_combine", "{v}");
        assert_eq!(v["gpu"]["kernels"][0]["dispatches"], 1, "{v}");
    }
    let (got, want) = (read64(&out), read64(&case.join("combined.npy")));
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{g} vs {w}");
    }
}

#[test]
fn sig_length_prints_the_number() {
    let r = ok(&[
        "sig-length",
        "--dimension",
        "2",
        "--degree",
        "3",
        "--time-aug",
    ]);
    assert_eq!(r.stdout.trim(), "39");
    let r = ok(&[
        "sig-length",
        "--dimension",
        "2",
        "--degree",
        "4",
        "--time-aug",
        "--lead-lag",
        "--scalar-term",
    ]);
    assert_eq!(r.stdout.trim(), "781");
    let msg = fails(&["sig-length", "--dimension", "10", "--degree", "100"]);
    assert!(msg.contains("overflow"), "{msg}");
    // Degrees far beyond any signature: a clean error, not a panic or an abort.
    let huge = usize::MAX.to_string();
    let msg = fails(&["sig-length", "--dimension", "2", "--degree", &huge]);
    assert!(msg.contains("overflow"), "{msg}");
    for dim in ["0", "1"] {
        for degree in [huge.as_str(), "100000000000"] {
            for cmd in ["sig-length", "log-sig-length"] {
                let msg = fails(&[cmd, "--dimension", dim, "--degree", degree]);
                // (A log-signature of dimension 0 is refused for its dimension first.)
                let zero = dim == "0" && cmd == "log-sig-length";
                let what = if zero { "dimension" } else { "degree" };
                assert!(msg.contains(what), "{cmd} {dim} {degree}: {msg}");
            }
        }
    }
}

#[test]
fn overflow_is_one_line_and_no_file() {
    let dir = scratch("overflow");
    let case = golden("sig_overflow_d2_L10_deg8_scale1e40");
    let out = dir.join("o.npy");
    let path = p(&case.join("path.npy"));
    let msg = fails(&["sig", &path, "--degree", "8", "-o", &p(&out)]);
    assert!(msg.contains("overflowed") && msg.contains("f64"), "{msg}");
    assert!(!out.exists());
    // f32 paths whose degree-2 terms pass f32's range.
    let mut a = ArrayD::<f32>::zeros(IxDyn(&[2, 3, 2]));
    a.slice_mut(ndarray::s![1, 1.., ..]).fill(1e20);
    write(&dir.join("big32.npy"), &a);
    let msg = fails(&[
        "sig",
        &p(&dir.join("big32.npy")),
        "--degree",
        "2",
        "-o",
        &p(&out),
    ]);
    assert!(msg.contains("batch item [1]"), "{msg}");
    assert!(!out.exists());
    // An end time beyond f32's range.
    let msg = fails(&[
        "sig",
        &p(&dir.join("big32.npy")),
        "--degree",
        "2",
        "--time-aug",
        "--end-time",
        "1e39",
        "-o",
        &p(&out),
    ]);
    assert!(msg.contains("end_time"), "{msg}");
}

/// A path file in `dir` holding `a`.
fn path_file(dir: &Path, name: &str, a: ArrayD<f64>) -> String {
    let file = dir.join(name);
    write(&file, &a);
    p(&file)
}

#[test]
fn bad_files_give_one_line_naming_the_file() {
    let dir = scratch("badfiles");
    let out = p(&dir.join("o.npy"));
    let good =
        std::fs::read(golden("sig_flags_d2_L10_deg4_ta1_ll1_et2.5_st1").join("path.npy")).unwrap();

    let missing = p(&dir.join("missing.npy"));
    let msg = fails(&["sig", &missing, "--degree", "2", "-o", &out]);
    assert!(msg.contains("missing.npy"), "{msg}");

    let text = dir.join("text.npy");
    std::fs::write(&text, "this is not an npy file\n").unwrap();
    let msg = fails(&["sig", &p(&text), "--degree", "2", "-o", &out]);
    assert!(msg.contains("text.npy") && msg.contains("npy"), "{msg}");

    for (name, len) in [
        ("short_header.npy", 60),
        ("short_data.npy", good.len() - 8),
        ("magic.npy", 3),
    ] {
        let f = dir.join(name);
        std::fs::write(&f, &good[..len]).unwrap();
        let msg = fails(&["sig", &p(&f), "--degree", "2", "-o", &out]);
        assert!(msg.contains(name), "{msg}");
    }

    // float16: a hand-written header and two values.
    let header = "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 64 - (10 + header.len() + 1) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad));
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend([0x00, 0x3c, 0x00, 0x40]); // 1.0, 2.0
    let f16 = dir.join("half.npy");
    std::fs::write(&f16, bytes).unwrap();
    let msg = fails(&["sig", &p(&f16), "--degree", "2", "-o", &out]);
    assert!(
        msg.contains("unsupported dtype") && msg.contains("<f2") && msg.contains("half.npy"),
        "{msg}"
    );

    // A header whose shape claims far more data than the file holds: refused, not allocated.
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000, 3), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 64 - (10 + header.len() + 1) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad));
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 64]);
    let liar = dir.join("liar.npy");
    std::fs::write(&liar, bytes).unwrap();
    let msg = fails(&["sig", &p(&liar), "--degree", "2", "-o", &out]);
    assert!(
        msg.contains("liar.npy") && msg.contains("truncated"),
        "{msg}"
    );

    // Bytes after the data are ignored, as numpy does.
    let mut long = good.clone();
    long.extend([0u8; 5]);
    let trailing = dir.join("trailing.npy");
    std::fs::write(&trailing, long).unwrap();
    ok(&["sig", &p(&trailing), "--degree", "2", "-o", &out]);
    std::fs::remove_file(&out).unwrap();

    // An output that cannot be created.
    let path = p(&golden("sig_flags_d2_L10_deg4_ta1_ll1_et2.5_st1").join("path.npy"));
    let bad_out = p(&dir.join("no/such/dir/o.npy"));
    let msg = fails(&["sig", &path, "--degree", "2", "-o", &bad_out]);
    assert!(msg.contains("o.npy"), "{msg}");
}

#[test]
fn bad_arguments_give_one_line() {
    let dir = scratch("badargs");
    let out = p(&dir.join("o.npy"));
    let path = p(&golden("sig_flags_d2_L10_deg4_ta1_ll1_et2.5_st1").join("path.npy"));

    let msg = fails(&["sig", &path, "--degree", "-3", "-o", &out]);
    assert!(msg.contains("degree") && msg.contains("-3"), "{msg}");
    let msg = fails(&["sig", &path, "--degree", "three", "-o", &out]);
    assert!(msg.contains("degree") && msg.contains("three"), "{msg}");
    let msg = fails(&["sig", &path, "-o", &out]);
    assert!(msg.contains("--degree"), "{msg}");
    let msg = fails(&["sig", &path, "--degree", "2", "-o", &out, "--device", "tpu"]);
    assert!(msg.contains("tpu"), "{msg}");
    let msg = fails(&["sig", &path, "--degree", "2", "-o", &out, "--jobs", "0"]);
    assert!(msg.contains("jobs"), "{msg}");
    let msg = fails(&["sig-length", "--dimension", "-1", "--degree", "2"]);
    assert!(msg.contains("dimension"), "{msg}");
    fails(&["no-such-command"]);
    assert!(
        !std::path::Path::new(&out).exists(),
        "no output after a failure"
    );
}

#[test]
fn bad_arrays_give_one_line() {
    let dir = scratch("badarrays");
    let out = p(&dir.join("o.npy"));

    let mut nan = ArrayD::<f64>::zeros(IxDyn(&[2, 5, 2]));
    nan[[1, 3, 0]] = f64::NAN;
    let f = path_file(&dir, "nan.npy", nan);
    let msg = fails(&["sig", &f, "--degree", "2", "-o", &out]);
    assert!(
        msg.contains("NaN") && msg.contains("[1]") && msg.contains("point 3"),
        "{msg}"
    );

    let f = path_file(&dir, "flat.npy", ArrayD::zeros(IxDyn(&[5])));
    let msg = fails(&["sig", &f, "--degree", "2", "-o", &out]);
    assert!(msg.contains("axes"), "{msg}");

    let f = path_file(&dir, "nochannels.npy", ArrayD::zeros(IxDyn(&[5, 0])));
    let msg = fails(&["sig", &f, "--degree", "2", "-o", &out]);
    assert!(msg.contains("0 channels"), "{msg}");

    // sig-backprop with a signature of the wrong degree, and with a batch mismatch.
    let case = golden("sigbp_flags_d2_L10_deg4_ta1_ll1_et2.5_st1");
    let (path, sig, derivs) = (
        p(&case.join("path.npy")),
        p(&case.join("sig.npy")),
        p(&case.join("sig_derivs.npy")),
    );
    let flags = ["--time-aug", "--lead-lag", "-o", &out];
    let mut cmd = vec!["sig-backprop", &path, &sig, &derivs, "--degree", "3"];
    cmd.extend(flags);
    let msg = fails(&cmd);
    assert!(msg.contains("sig") && msg.contains("length"), "{msg}");

    let full = read64(&case.join("sig.npy"));
    let two = path_file(
        &dir,
        "sig2.npy",
        full.slice(ndarray::s![..1, ..]).to_owned().into_dyn(),
    );
    let mut cmd = vec!["sig-backprop", &path, &two, &derivs, "--degree", "4"];
    cmd.extend(flags);
    let msg = fails(&cmd);
    assert!(msg.contains("batch"), "{msg}");
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn outputs_are_written_whole_or_not_at_all() {
    let dir = scratch("atomic");
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let comb = golden("sigcombbp_d3_deg3_st1_s");
    let args = |o1: &str, o2: &str| {
        vec![
            "sig-combine-backprop".to_string(),
            p(&comb.join("deriv.npy")),
            p(&comb.join("sig1.npy")),
            p(&comb.join("sig2.npy")),
            "--dimension".into(),
            "3".into(),
            "--degree".into(),
            "3".into(),
            "-o".into(),
            o1.into(),
            "--output2".into(),
            o2.into(),
        ]
    };
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (o1, o2) = (p(&out.join("d1.npy")), p(&out.join("d2.npy")));

    // The second output cannot be created: neither is left behind, nor any temporary file.
    let missing = p(&dir.join("no/such/dir/d2.npy"));
    let msg = fails(&args(&o1, &missing));
    assert!(msg.contains("d2.npy"), "{msg}");
    assert!(listing(&out).is_empty(), "{:?}", listing(&out));

    // The same file twice, textually or not: refused before computing.
    let msg = fails(&args(&o1, &o1));
    assert!(msg.contains("same file"), "{msg}");
    let again = p(&out.join(".").join("d1.npy"));
    let msg = fails(&args(&o1, &again));
    assert!(msg.contains("same file"), "{msg}");
    assert!(listing(&out).is_empty(), "{:?}", listing(&out));

    // Success: both outputs, and nothing else.
    ok(&args(&o1, &o2));
    assert_eq!(listing(&out), ["d1.npy", "d2.npy"]);
    assert_close(
        &read64(Path::new(&o2)),
        &read64(&comb.join("sig2_deriv.npy")),
        1e-10,
    );
}

/// A write that fails part-way (a file-size limit standing in for a full disk) leaves no partial
/// output and no temporary file, and an existing output untouched.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_leaves_no_partial_output() {
    let dir = scratch("fullwrite");
    let path = path_file(
        &dir,
        "path.npy",
        ArrayD::from_shape_fn(IxDyn(&[4, 10, 3]), |i| (i[1] * 3 + i[2]) as f64 * 0.1),
    );
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = p(&out.join("s.npy"));
    // The signature is 4 × 363 f64s, about 11 kB: beyond a 1-block file-size limit. The limit's
    // signal is ignored, so the write fails with an error instead of killing the process.
    let limited = |o: &str| {
        Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 1 && exec \"$@\"")
            .arg("sh")
            .args([BIN, "sig", &path, "--degree", "5", "-o", o])
            .env_remove("ROUGHSIG_DEVICE")
            .output()
            .unwrap()
    };
    let r = limited(&o);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("s.npy"), "{stderr}");
    assert!(listing(&out).is_empty(), "{:?}", listing(&out));

    std::fs::write(&o, b"old").unwrap();
    let r = limited(&o);
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(listing(&out), ["s.npy"]);
    assert_eq!(std::fs::read(&o).unwrap(), b"old");

    // Without the limit the output replaces the old file.
    ok(&["sig", &path, "--degree", "5", "-o", &o]);
    assert_eq!(read64(Path::new(&o)).shape(), &[4, 363]);
    assert_eq!(listing(&out), ["s.npy"]);
}

/// The library logs why `Device::Auto` keeps large work on the CPU (here: no hardware GPU); the
/// command line shows it as one of its own lines, and `RUST_LOG=off` silences it. Skipped where a
/// hardware GPU would take the work.
#[test]
fn auto_device_notes_come_through_the_log() {
    if roughsig::gpu::adapters().auto.is_some() {
        return;
    }
    let dir = scratch("auto-note");
    // About 2^27 multiply-adds: large enough for Auto to consider a GPU.
    let path = ArrayD::<f64>::zeros(IxDyn(&[128, 1000, 4]));
    let input = dir.join("p.npy");
    path.write_npy(File::create(&input).unwrap()).unwrap();
    let out = dir.join("s.npy");
    let args = [
        "sig",
        input.to_str().unwrap(),
        "--degree",
        "5",
        "-o",
        out.to_str().unwrap(),
    ];
    let shown = run(&args);
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    assert!(
        shown
            .stderr
            .lines()
            .any(|l| l.starts_with("roughsig: Device::Auto runs on the CPU")),
        "{}",
        shown.stderr
    );
    let silent = Command::new(BIN)
        .args(args)
        .env_remove("ROUGHSIG_DEVICE")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&silent.stderr);
    assert!(!stderr.contains("roughsig: Device::Auto"), "{stderr}");
}

/// On a machine without a display, listing the adapters writes nothing on stderr: Mesa's
/// device-select layer, which would complain there about `XDG_RUNTIME_DIR`, is kept quiet.
#[test]
fn devices_are_listed_quietly_without_a_display() {
    let out = Command::new(BIN)
        .arg("devices")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "stderr: {stderr}");
}

#[test]
fn sig_windows_writes_each_window_and_its_log_signature() {
    let dir = scratch("sig-windows");
    let path: ArrayD<f64> = ArrayD::from_shape_fn(IxDyn(&[30, 2]), |ix| {
        ((ix[0] * (ix[1] + 2)) as f64 / 7.0).sin()
    });
    write(&dir.join("x.npy"), &path);
    let common = [
        "--degree",
        "3",
        "--window",
        "8",
        "--stride",
        "5",
        "--lead-lag",
        "--time-aug",
    ];
    let mut args = vec!["sig-windows".to_string(), p(&dir.join("x.npy"))];
    args.extend(common.iter().map(|s| s.to_string()));
    args.extend(["-o".into(), p(&dir.join("w.npy"))]);
    ok(&args);
    let got = read64(&dir.join("w.npy"));
    let opts = roughsig::SigOptions::default()
        .lead_lag(true)
        .time_aug(true);
    let want = roughsig::sig_windows(path.view(), 3, 8, 5, &opts).unwrap();
    assert_eq!(
        got.shape(),
        &[5, roughsig::sig_length(2, 3, &opts).unwrap()]
    );
    assert_close(&got, &want, 1e-12);
    // The first window is the signature of the first eight points.
    let first = roughsig::sig(path.slice(ndarray::s![0..8, ..]), 3, &opts).unwrap();
    assert_close(
        &got.index_axis(ndarray::Axis(0), 0).to_owned(),
        &first,
        1e-12,
    );

    args.extend(["--log-sig".into(), "lyndon".into()]);
    ok(&args);
    let logs = read64(&dir.join("w.npy"));
    let method = roughsig::LogSigMethod::Lyndon;
    let want = roughsig::sig_to_log_sig(want.view(), 2, 3, method, &opts).unwrap();
    assert_close(&logs, &want, 1e-12);

    let err = fails(&[
        "sig-windows",
        &p(&dir.join("x.npy")),
        "--degree",
        "3",
        "--window",
        "0",
        "-o",
        &p(&dir.join("z.npy")),
    ]);
    assert!(err.contains("window"), "{err}");
}

#[test]
fn lengths_make_a_ragged_batch_for_sig_and_its_gradient() {
    let dir = scratch("ragged");
    let path: ArrayD<f64> = ArrayD::from_shape_fn(IxDyn(&[3, 6, 2]), |ix| {
        ((ix[0] + ix[1] * (ix[2] + 2)) as f64 / 5.0).cos()
    });
    write(&dir.join("x.npy"), &path);
    let lengths = ArrayD::from_shape_vec(IxDyn(&[3]), vec![6i64, 2, 4]).unwrap();
    write(&dir.join("l.npy"), &lengths);
    let x = p(&dir.join("x.npy"));
    let l = p(&dir.join("l.npy"));
    let s = p(&dir.join("s.npy"));
    ok(&[
        "sig",
        &x,
        "--degree",
        "3",
        "--time-aug",
        "--lengths",
        &l,
        "-o",
        &s,
    ]);
    let got = read64(&dir.join("s.npy"));
    let opts = roughsig::SigOptions::default().time_aug(true);
    let x3 = path.clone().into_dimensionality::<ndarray::Ix3>().unwrap();
    let want = roughsig::sig_ragged(x3.view(), &[6, 2, 4], 3, &opts).unwrap();
    assert_close(&got, &want.clone().into_dyn(), 1e-12);

    let derivs = want.mapv(|v| v.sin()).into_dyn();
    write(&dir.join("d.npy"), &derivs);
    let d = p(&dir.join("d.npy"));
    let g = p(&dir.join("g.npy"));
    ok(&[
        "sig-backprop",
        &x,
        &s,
        &d,
        "--degree",
        "3",
        "--time-aug",
        "--lengths",
        &l,
        "-o",
        &g,
    ]);
    let got = read64(&dir.join("g.npy"));
    let d2 = derivs.into_dimensionality::<ndarray::Ix2>().unwrap();
    let want =
        roughsig::sig_backprop_ragged(x3.view(), &[6, 2, 4], want.view(), d2.view(), 3, &opts)
            .unwrap();
    assert_close(&got, &want.into_dyn(), 1e-12);

    let logs = p(&dir.join("logs.npy"));
    ok(&[
        "log-sig",
        &x,
        "--degree",
        "3",
        "--method",
        "lyndon",
        "--time-aug",
        "--lengths",
        &l,
        "-o",
        &logs,
    ]);
    let method = roughsig::LogSigMethod::Lyndon;
    let want = roughsig::log_sig_ragged(x3.view(), &[6, 2, 4], 3, method, &opts).unwrap();
    assert_close(&read64(&dir.join("logs.npy")), &want, 1e-12);

    // Lengths that are not integers, or too long, are refused with the file named.
    let refused = |file: &str| {
        let f = p(&dir.join(file));
        fails(&["sig", &x, "--degree", "2", "--lengths", &f, "-o", &s])
    };
    let bad = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.5f64, 2.0, 3.0]).unwrap();
    write(&dir.join("bad.npy"), &bad);
    let err = refused("bad.npy");
    assert!(err.contains("integer"), "{err}");
    let long = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1i64, 7, 3]).unwrap();
    write(&dir.join("long.npy"), &long);
    let err = refused("long.npy");
    assert!(err.contains("lengths[1]"), "{err}");
}

/// `sig-coef` and `sig-coef-backprop` on a pySigLib reference case (lead-lag and time, words over
/// the seven transformed channels), and malformed words refused.
#[test]
fn sig_coef_matches_the_reference_case() {
    let case =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/sig_coef/sig_coef_ta1_ll1");
    let dir = scratch("sig-coef");
    let path = p(&case.join("path.npy"));
    let out = dir.join("c.npy");
    let words = "0;1,0;2,1,0;6,0,2,2;1,1,1,0,2,6";
    let flags = [
        "--words",
        words,
        "--time-aug",
        "--lead-lag",
        "--end-time",
        "2.5",
    ];
    let mut args = vec!["sig-coef", &path];
    args.extend(flags);
    let o = p(&out);
    args.extend(["-o", &o]);
    ok(&args);
    assert_close(&read64(&out), &read64(&case.join("coefs.npy")), 1e-10);
    args.push("--prefixes");
    ok(&args);
    assert_close(
        &read64(&out),
        &read64(&case.join("prefix_coefs.npy")),
        1e-10,
    );

    let derivs = p(&case.join("derivs.npy"));
    let mut args = vec!["sig-coef-backprop", &path, &derivs];
    args.extend(flags);
    args.extend(["-o", &o]);
    ok(&args);
    assert_close(&read64(&out), &read64(&case.join("path_derivs.npy")), 1e-9);

    for bad in ["0,x", "0,-1", "0;7"] {
        let err = fails(&[
            "sig-coef",
            &path,
            "--words",
            bad,
            "--lead-lag",
            "--time-aug",
            "-o",
            &o,
        ]);
        assert!(
            err.contains("word") || err.contains("integer"),
            "{bad}: {err}"
        );
    }
}
