//! The device choice, measured: `roughsig calibrate` times `sig` on an adapter and on the CPU over
//! a ladder of workloads and records, per adapter and driver, the smallest workload from which the
//! GPU was faster at every larger rung. `Device::Auto` then uses that threshold instead of the
//! conservative default. The record lives in the user's cache directory
//! (`$ROUGHSIG_CACHE_DIR`, else `$XDG_CACHE_HOME/roughsig`, else `~/.cache/roughsig`).

use super::GpuDevice;
use crate::{Device, Error, Result, SigOptions};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

/// What calibration found for one adapter and driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calibration {
    pub adapter: String,
    pub driver: String,
    /// The workload (about `batch · increments · sig_length` multiply-adds) from which the GPU was
    /// faster than the CPU in f32 at every rung measured; `None`: it never was.
    pub f32_min_work: Option<u128>,
    /// The same in f64; `None` also where the adapter has no f64.
    pub f64_min_work: Option<u128>,
}

fn cache_file() -> Option<PathBuf> {
    let dir = std::env::var_os("ROUGHSIG_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("roughsig")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/roughsig")))?;
    Some(dir.join("calibration.json"))
}

fn to_json(c: &Calibration) -> serde_json::Value {
    serde_json::json!({
        "adapter": c.adapter,
        "driver": c.driver,
        "f32_min_work": c.f32_min_work.map(|w| w.to_string()),
        "f64_min_work": c.f64_min_work.map(|w| w.to_string()),
    })
}

fn from_json(v: &serde_json::Value) -> Option<Calibration> {
    let work = |k: &str| v[k].as_str().and_then(|s| s.parse().ok());
    Some(Calibration {
        adapter: v["adapter"].as_str()?.to_string(),
        driver: v["driver"].as_str()?.to_string(),
        f32_min_work: work("f32_min_work"),
        f64_min_work: work("f64_min_work"),
    })
}

/// Every calibration recorded on this machine (read once per process).
pub fn recorded() -> &'static [Calibration] {
    static CACHE: OnceLock<Vec<Calibration>> = OnceLock::new();
    CACHE.get_or_init(|| {
        cache_file()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| {
                v.as_array()
                    .map(|a| a.iter().filter_map(from_json).collect())
            })
            .unwrap_or_default()
    })
}

/// The recorded calibration of an adapter, if any.
pub(crate) fn of(name: &str, driver: &str) -> Option<&'static Calibration> {
    recorded()
        .iter()
        .find(|c| c.adapter == name && c.driver == driver)
}

/// Write `c` into the cache file, replacing the entry of the same adapter and driver (written to a
/// temporary file and renamed into place).
pub fn save(c: &Calibration) -> Result<PathBuf> {
    let file = cache_file()
        .ok_or_else(|| Error::invalid("no cache directory (set ROUGHSIG_CACHE_DIR or HOME)"))?;
    let io = |e: std::io::Error| Error::invalid(format!("{}: {e}", file.display()));
    let mut all: Vec<Calibration> = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter_map(from_json).collect())
        })
        .unwrap_or_default();
    all.retain(|o| !(o.adapter == c.adapter && o.driver == c.driver));
    all.push(c.clone());
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_json::Value::Array(all.iter().map(to_json).collect()).to_string();
    let tmp = file.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, &file).map_err(io)?;
    Ok(file)
}

/// The best of three timed calls of `f`, in seconds.
fn best(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut t = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        f()?;
        t = t.min(start.elapsed().as_secs_f64());
    }
    Ok(t)
}

/// The smallest rung from which the GPU beat the CPU at every larger rung.
fn threshold<T: crate::Scalar>(device: &GpuDevice, rungs: &[usize]) -> Result<Option<u128>> {
    let (length, dim, degree) = (256usize, 4usize, 4usize);
    let gpu = SigOptions {
        device: Device::Gpu(Some(device.name.clone())),
        ..Default::default()
    };
    let cpu = SigOptions {
        device: Device::Cpu,
        ..Default::default()
    };
    let sig_len = crate::sig_length(dim, degree, &cpu)? as u128;
    let mut wins = Vec::new();
    for &batch in rungs {
        let x = ndarray::Array3::<T>::from_shape_fn((batch, length, dim), |(b, i, j)| {
            T::from_f64(((b * 7 + i * 3 + j) as f64 * 0.61).sin() * 0.05)
        });
        let g = best(|| crate::sig(x.view(), degree, &gpu).map(drop))?;
        let c = best(|| crate::sig(x.view(), degree, &cpu).map(drop))?;
        let work = batch as u128 * (length as u128 - 1) * sig_len;
        wins.push((work, g < c));
    }
    let mut min = None;
    for &(work, win) in wins.iter().rev() {
        if !win {
            break;
        }
        min = Some(work);
    }
    Ok(min)
}

/// Measure `device` against the CPU (f32, and f64 where the adapter has it) over batches of
/// 4 to 1024 paths of (256, 4) at degree 4. Takes seconds on a GPU, minutes on lavapipe.
pub fn calibrate(device: &GpuDevice) -> Result<Calibration> {
    let entry = device.entry()?;
    let rungs = [4usize, 16, 64, 256, 1024];
    let f32_min_work = threshold::<f32>(device, &rungs)?;
    let f64_min_work = if entry.has_f64() {
        threshold::<f64>(device, &rungs)?
    } else {
        None
    };
    Ok(Calibration {
        adapter: entry.info.name.clone(),
        driver: format!("{} {}", entry.info.driver, entry.info.driver_info)
            .trim()
            .to_string(),
        f32_min_work,
        f64_min_work,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibration_round_trips_through_its_record() {
        for (f32_min_work, f64_min_work) in [(Some(1u128 << 40), None), (None, Some(12345))] {
            let c = Calibration {
                adapter: "NVIDIA H200".into(),
                driver: "NVIDIA 570.1".into(),
                f32_min_work,
                f64_min_work,
            };
            assert_eq!(from_json(&to_json(&c)), Some(c));
        }
        assert_eq!(from_json(&serde_json::json!({"adapter": 3})), None);
    }
}
