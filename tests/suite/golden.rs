//! Every pySigLib 4.0.0 reference case for the signature functions, in f64 (tight) and f32.

use crate::common::{assert_close, expect_overflow, to_f32, to_f64, Case};
use roughsig::SigOptions;

/// f32 results against the f64 reference: relative to the array's largest entry.
const F32_TOL: (f64, f64) = (2e-4, 2e-4);

/// Cases that only make sense in f64: subnormal levels.
fn f64_only(case: &Case) -> bool {
    case.name.contains("tiny")
}

fn check_count(function: &str, checked: usize) {
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::golden_dir().join("index.json")).unwrap(),
    )
    .unwrap();
    let expected = index["counts"][function].as_u64().unwrap() as usize;
    assert_eq!(
        checked, expected,
        "{function}: checked {checked} of {expected} cases"
    );
}

#[test]
fn sig_forward_golden() {
    let cases = Case::all("sig");
    for case in &cases {
        let (path, want) = (case.array("path"), case.array("sig"));
        let degree = case.usize("degree");
        let opts = case.options();
        if case.overflows() {
            expect_overflow(&case.name, &want, roughsig::sig(path.view(), degree, &opts));
            continue;
        }
        let got = roughsig::sig(path.view(), degree, &opts).unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&case.name, &got, &want, rtol, atol);
        if !f64_only(case) {
            let got32 = roughsig::sig(to_f32(&path).view(), degree, &opts).unwrap();
            assert_close(
                &format!("{} f32", case.name),
                &to_f64(&got32),
                &want,
                F32_TOL.0,
                F32_TOL.1,
            );
        }
    }
    check_count("sig", cases.len());
}

#[test]
fn sig_backward_golden() {
    let cases = Case::all("sig_backprop");
    for case in &cases {
        let (path, sig, derivs) = (
            case.array("path"),
            case.array("sig"),
            case.array("sig_derivs"),
        );
        let want = case.array("path_derivs");
        let degree = case.usize("degree");
        let opts = case.options();
        let got =
            roughsig::sig_backprop(path.view(), sig.view(), derivs.view(), degree, &opts).unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&case.name, &got, &want, rtol, atol);
        let got32 = roughsig::sig_backprop(
            to_f32(&path).view(),
            to_f32(&sig).view(),
            to_f32(&derivs).view(),
            degree,
            &opts,
        )
        .unwrap();
        assert_close(
            &format!("{} f32", case.name),
            &to_f64(&got32),
            &want,
            F32_TOL.0,
            1e-3,
        );
    }
    check_count("sig_backprop", cases.len());
}

#[test]
fn transform_path_golden() {
    let cases = Case::all("transform_path");
    for case in &cases {
        let got = roughsig::transform_path(case.array("path").view(), &case.options()).unwrap();
        assert_close(&case.name, &got, &case.array("transformed"), 1e-12, 1e-14);
    }
    check_count("transform_path", cases.len());
    let cases = Case::all("transform_path_backprop");
    for case in &cases {
        let got = roughsig::transform_path_backprop(case.array("derivs").view(), &case.options())
            .unwrap();
        assert_close(&case.name, &got, &case.array("path_derivs"), 1e-12, 1e-14);
    }
    check_count("transform_path_backprop", cases.len());
}

#[test]
fn sig_combine_golden() {
    let cases = Case::all("sig_combine");
    for case in &cases {
        let (a, b) = (case.array("sig1"), case.array("sig2"));
        let (d, n) = (case.usize("dimension"), case.usize("degree"));
        let got = roughsig::sig_combine(a.view(), b.view(), d, n, &case.options()).unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&case.name, &got, &case.array("combined"), rtol, atol);
    }
    check_count("sig_combine", cases.len());
    let cases = Case::all("sig_combine_backprop");
    for case in &cases {
        let (g, a, b) = (case.array("deriv"), case.array("sig1"), case.array("sig2"));
        let (d, n) = (case.usize("dimension"), case.usize("degree"));
        let (da, db) =
            roughsig::sig_combine_backprop(g.view(), a.view(), b.view(), d, n, &case.options())
                .unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&case.name, &da, &case.array("sig1_deriv"), rtol, atol);
        assert_close(&case.name, &db, &case.array("sig2_deriv"), rtol, atol);
    }
    check_count("sig_combine_backprop", cases.len());
}

#[test]
fn sig_join_golden() {
    let cases = Case::all("sig_join");
    for case in &cases {
        let (s, v) = (case.array("sig"), case.array("displacement"));
        let (d, n) = (case.usize("dimension"), case.usize("degree"));
        let got = roughsig::sig_join(
            s.view(),
            v.view(),
            d,
            n,
            case.flag("prepend"),
            &SigOptions::default(),
        )
        .unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&case.name, &got, &case.array("joined"), rtol, atol);
    }
    check_count("sig_join", cases.len());
    let cases = Case::all("sig_join_backprop");
    for case in &cases {
        let (g, s, v) = (
            case.array("d_out"),
            case.array("sig"),
            case.array("displacement"),
        );
        let (d, n) = (case.usize("dimension"), case.usize("degree"));
        let opts = SigOptions::default();
        let (ds, dv) = roughsig::sig_join_backprop(
            g.view(),
            s.view(),
            v.view(),
            d,
            n,
            case.flag("prepend"),
            &opts,
        )
        .unwrap();
        let (rtol, atol) = case.tolerance();
        assert_close(&case.name, &ds, &case.array("d_sig"), rtol, atol);
        assert_close(&case.name, &dv, &case.array("d_displacement"), rtol, atol);
    }
    check_count("sig_join_backprop", cases.len());
}

#[test]
fn sig_length_golden() {
    let case = Case::load("lengths_table");
    let table = case.array("table");
    assert!(table.shape()[0] > 100);
    for row in table.outer_iter() {
        let (d, n) = (row[0] as usize, row[1] as usize);
        for (st, col) in [(false, 4), (true, 5)] {
            let opts = SigOptions::default()
                .time_aug(row[2] != 0.0)
                .lead_lag(row[3] != 0.0)
                .scalar_term(st);
            assert_eq!(
                roughsig::sig_length(d, n, &opts).unwrap() as f64,
                row[col],
                "{row}"
            );
        }
    }
}

/// Every reference case in the repository (`tests/data/*/*/case.json`) has the arrays it names: a
/// missing file is named here, not as a panic inside some other test.
#[test]
fn every_reference_case_has_its_arrays() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut missing = Vec::new();
    let mut cases = 0;
    for set in std::fs::read_dir(&data).unwrap() {
        let set = set.unwrap().path();
        for case in std::fs::read_dir(&set).into_iter().flatten() {
            let dir = case.unwrap().path();
            let Ok(text) = std::fs::read_to_string(dir.join("case.json")) else {
                continue;
            };
            cases += 1;
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            for section in ["inputs", "outputs"] {
                for entry in json[section]
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.values())
                {
                    if let Some(file) = entry["file"].as_str() {
                        if !dir.join(file).exists() {
                            missing.push(dir.join(file));
                        }
                    }
                }
            }
        }
    }
    assert!(
        cases > 100,
        "only {cases} reference cases found under {}",
        data.display()
    );
    assert!(missing.is_empty(), "reference arrays missing: {missing:#?}");
}
