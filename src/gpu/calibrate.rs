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
    /// The adapter's name.
    pub adapter: String,
    /// The driver's name and version.
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
    Some(dir.join("calibration.tsv"))
}

/// The record's first line; then one line per adapter and driver, fields separated by tabs, `-` for
/// "never faster".
const HEADER: &str = "# adapter\tdriver\tf32_min_work\tf64_min_work";

/// A name as one field: tabs and line breaks (which would split it) become spaces.
fn field(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn to_line(c: &Calibration) -> String {
    let work = |w: Option<u128>| w.map_or("-".to_string(), |w| w.to_string());
    format!(
        "{}\t{}\t{}\t{}",
        field(&c.adapter),
        field(&c.driver),
        work(c.f32_min_work),
        work(c.f64_min_work)
    )
}

/// A record line, or `None` for a comment or a malformed line (a damaged record is ignored, never
/// an error: calibration only tunes `Device::Auto`).
fn from_line(line: &str) -> Option<Calibration> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [adapter, driver, f32_min_work, f64_min_work] = fields[..] else {
        return None;
    };
    let work = |w: &str| -> Option<Option<u128>> {
        match w {
            "-" => Some(None),
            w => w.parse().ok().map(Some),
        }
    };
    (!adapter.starts_with('#')).then_some(())?;
    Some(Calibration {
        adapter: adapter.to_string(),
        driver: driver.to_string(),
        f32_min_work: work(f32_min_work)?,
        f64_min_work: work(f64_min_work)?,
    })
}

fn read(file: &std::path::Path) -> Vec<Calibration> {
    std::fs::read_to_string(file)
        .map(|text| text.lines().filter_map(from_line).collect())
        .unwrap_or_default()
}

/// Every calibration recorded on this machine (read once per process).
pub fn recorded() -> &'static [Calibration] {
    static CACHE: OnceLock<Vec<Calibration>> = OnceLock::new();
    CACHE.get_or_init(|| cache_file().map(|f| read(&f)).unwrap_or_default())
}

/// The recorded calibration of an adapter, if any.
pub(crate) fn of(name: &str, driver: &str) -> Option<&'static Calibration> {
    let (name, driver) = (field(name), field(driver));
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
    let mut all = read(&file);
    let (adapter, driver) = (field(&c.adapter), field(&c.driver));
    all.retain(|o| !(o.adapter == adapter && o.driver == driver));
    all.push(c.clone());
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut text = format!("{HEADER}\n");
    for c in &all {
        text.push_str(&to_line(c));
        text.push('\n');
    }
    let tmp = file.with_extension(format!("tsv.{}.tmp", std::process::id()));
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
    let gpu = SigOptions::default().device(Device::Gpu(Some(device.name.clone())));
    let cpu = SigOptions::default().device(Device::Cpu);
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
            assert_eq!(from_line(&to_line(&c)), Some(c));
        }
        // A tab in a name cannot split its line.
        let c = Calibration {
            adapter: "a\tb".into(),
            driver: "d".into(),
            f32_min_work: None,
            f64_min_work: None,
        };
        assert_eq!(from_line(&to_line(&c)).unwrap().adapter, "a b");
        for damaged in [HEADER, "", "a\td\t12", "a\td\tx\t-", "a\td\t-\t-\t-"] {
            assert_eq!(from_line(damaged), None, "{damaged:?}");
        }
    }
}
