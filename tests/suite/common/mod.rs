//! Helpers shared by the integration tests: golden cases on disk, tolerant comparison.
#![allow(dead_code)]

#[cfg(feature = "gpu")]
pub mod gpu;

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use std::path::PathBuf;

pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

/// The reference cases of pySigLib's functions beyond the golden set, in the same layout.
pub fn reference_dir(set: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(set)
}

/// One reference case: its `case.json` and a loader for its arrays.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub json: serde_json::Value,
}

impl Case {
    pub fn load(name: &str) -> Case {
        Case::load_from(&golden_dir(), name)
    }

    fn load_from(dir: &std::path::Path, name: &str) -> Case {
        let dir = dir.join(name);
        let text = std::fs::read_to_string(dir.join("case.json")).unwrap();
        Case {
            name: name.to_string(),
            dir,
            json: serde_json::from_str(&text).unwrap(),
        }
    }

    /// Every golden case whose `function` is `function`, sorted by name.
    pub fn all(function: &str) -> Vec<Case> {
        Case::all_in(&golden_dir(), function)
    }

    /// Every case in `dir` whose `function` is `function`, sorted by name.
    pub fn all_in(dir: &std::path::Path, function: &str) -> Vec<Case> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                e.path()
                    .join("case.json")
                    .exists()
                    .then(|| e.file_name().to_string_lossy().into_owned())
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|n| Case::load_from(dir, n))
            .filter(|c| c.json["function"] == function)
            .collect()
    }

    pub fn array(&self, name: &str) -> ArrayD<f64> {
        let file = self.json["inputs"]
            .get(name)
            .or_else(|| self.json["outputs"].get(name))
            .unwrap_or_else(|| panic!("{}: no array {name}", self.name))["file"]
            .as_str()
            .unwrap()
            .to_string();
        let f = std::fs::File::open(self.dir.join(file)).unwrap();
        ArrayD::<f64>::read_npy(f).unwrap()
    }

    pub fn flag(&self, key: &str) -> bool {
        self.json["params"][key].as_bool().unwrap_or(false)
    }

    pub fn usize(&self, key: &str) -> usize {
        self.json["params"][key]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: no param {key}", self.name)) as usize
    }

    pub fn end_time(&self) -> f64 {
        self.json["params"]["end_time"].as_f64().unwrap_or(1.0)
    }

    pub fn options(&self) -> roughsig::SigOptions {
        roughsig::SigOptions::default()
            .time_aug(self.flag("time_aug"))
            .lead_lag(self.flag("lead_lag"))
            .end_time(self.end_time())
            .scalar_term(self.flag("scalar_term"))
    }

    /// Whether pySigLib's output holds infinities or NaN (the deliberate overflow cases).
    pub fn overflows(&self) -> bool {
        self.json["outputs_contain_nonfinite"].as_bool() == Some(true)
    }

    /// The tolerance the case asks for: `|got-ref| <= rtol·|ref| + atol·max|ref|`.
    pub fn tolerance(&self) -> (f64, f64) {
        let hint = &self.json["tolerance_hint"];
        (
            hint["rtol"].as_f64().unwrap_or(1e-10),
            hint["atol_rel_to_max_abs"].as_f64().unwrap_or(1e-12),
        )
    }
}

/// Compare element by element; non-finite reference entries must be non-finite at the same place
/// (the signs of overflowing infinities depend on the evaluation order).
pub fn assert_close(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>, rtol: f64, atol_rel: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let max = want
        .iter()
        .filter(|x| x.is_finite())
        .fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        if !w.is_finite() {
            assert!(!g.is_finite(), "{what}[{i}]: got {g}, want {w}");
            continue;
        }
        let tol = rtol * w.abs() + atol_rel * max;
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (tolerance {tol:e})"
        );
    }
}

pub fn to_f32(a: &ArrayD<f64>) -> ArrayD<f32> {
    a.mapv(|x| x as f32)
}

pub fn to_f64(a: &ArrayD<f32>) -> ArrayD<f64> {
    a.mapv(|x| x as f64)
}

/// A deterministic pseudo-random array (xorshift), values in [-1, 1).
pub fn random(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    ArrayD::from_shape_simple_fn(ndarray::IxDyn(shape), || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    })
}

/// Where pySigLib returns infinities, roughsig refuses with `ResultOverflow`, naming a batch item
/// whose reference row is not finite.
pub fn expect_overflow(name: &str, want: &ArrayD<f64>, got: roughsig::Result<ArrayD<f64>>) {
    let item = match got {
        Err(roughsig::Error::ResultOverflow { item, .. }) => item,
        other => panic!("{name}: expected ResultOverflow, got {other:?}"),
    };
    let batch_shape = &want.shape()[..want.ndim() - 1];
    assert_eq!(item.len(), batch_shape.len(), "{name}: {item:?}");
    let flat = item
        .iter()
        .zip(batch_shape)
        .fold(0, |acc, (&i, &n)| acc * n + i);
    let len = want.shape()[want.ndim() - 1];
    let row = &want.as_slice().unwrap()[flat * len..(flat + 1) * len];
    assert!(
        row.iter().any(|x| !x.is_finite()),
        "{name}: item {item:?} is finite in the reference"
    );
}

/// Whether no GPU adapter can be had: the library was built without its GPU backend, or wgpu finds
/// no adapter.
pub fn no_adapter() -> bool {
    #[cfg(feature = "gpu")]
    return roughsig::gpu::adapters().adapters.is_empty();
    #[cfg(not(feature = "gpu"))]
    return true;
}

/// Central differences of `f` at `x` against `grad`, coordinate by coordinate, within `1e-6` of the
/// gradient's largest entry (at least 1).
pub fn assert_gradient(
    what: &str,
    x: &ArrayD<f64>,
    grad: &ArrayD<f64>,
    f: impl Fn(&ArrayD<f64>) -> f64,
) {
    let h = 1e-6;
    let scale = grad.iter().fold(1.0f64, |m, g| m.max(g.abs()));
    for i in 0..x.len() {
        let (mut up, mut down) = (x.clone(), x.clone());
        up.as_slice_mut().unwrap()[i] += h;
        down.as_slice_mut().unwrap()[i] -= h;
        let fd = (f(&up) - f(&down)) / (2.0 * h);
        let g = grad.as_slice().unwrap()[i];
        assert!(
            (fd - g).abs() <= 1e-6 * scale,
            "{what}[{i}]: analytic {g}, finite difference {fd}"
        );
    }
}
