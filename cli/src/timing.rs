//! `--repeat`: time the computation (never the file I/O) and report one JSON line on stderr.

use super::args::Common;
use roughsig::{Device, Result};
use std::time::Instant;

/// What a timed run reports besides the timings.
pub struct Timing<'a> {
    pub op: &'static str,
    pub common: &'a Common,
    pub dtype: &'static str,
    pub shape: &'a [usize],
}

impl Timing<'_> {
    /// Run `f` once (with `first = true`: progress bars allowed), then `repeat` more times, timed.
    pub fn run<R>(&self, mut f: impl FnMut(bool) -> Result<R>) -> Result<R> {
        let start = Instant::now();
        let result = f(true)?;
        let first_ms = ms(start);
        let repeats = self.common.repeat;
        if repeats == 0 {
            return Ok(result);
        }
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let start = Instant::now();
            std::hint::black_box(f(false)?);
            times.push(ms(start));
        }
        times.sort_by(f64::total_cmp);
        let median = if repeats % 2 == 1 {
            times[repeats / 2]
        } else {
            0.5 * (times[repeats / 2 - 1] + times[repeats / 2])
        };
        // The GPU's account of the last repeat, when it ran there.
        let gpu = roughsig::gpu::last_gpu_report()
            .filter(|_| roughsig::last_backend().is_some_and(|b| b.is_gpu()))
            .map(|r| {
                serde_json::json!({
                    "op": r.op,
                    "dispatches": r.dispatches,
                    "submissions": r.submissions,
                    "max_invocations": r.max_invocations,
                    "min_invocations": r.min_invocations,
                    "workgroups": r.workgroups,
                    "bytes_uploaded": r.bytes_uploaded,
                    "bytes_downloaded": r.bytes_downloaded,
                    "buffers_created": r.buffers_created,
                    "kernel_ms": r.kernel_ms,
                    "upload_ms": r.upload_ms,
                    "wait_ms": r.wait_ms,
                    "download_ms": r.download_ms,
                    "kernels": r.kernels.iter().map(|k| serde_json::json!({
                        "name": k.name,
                        "dispatches": k.dispatches,
                        "ms": k.ms,
                    })).collect::<Vec<_>>(),
                })
            });
        let line = serde_json::json!({
            "op": self.op,
            "device": roughsig::last_backend().map(|b| b.to_string()),
            "requested_device": device_name(&self.common.device),
            "threads": roughsig::threads(self.common.jobs)?,
            "dtype": self.dtype,
            "shape": self.shape,
            "repeats": repeats,
            "first_ms": first_ms,
            "min_ms": times[0],
            "median_ms": median,
            "mean_ms": times.iter().sum::<f64>() / repeats as f64,
            "max_ms": times[repeats - 1],
            "gpu": gpu,
        });
        eprintln!("{line}");
        Ok(result)
    }
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Gpu(None) => "gpu".into(),
        Device::Gpu(Some(name)) => format!("gpu:{name}"),
        _ => "auto".into(),
    }
}
