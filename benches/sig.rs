//! Signature forward and backprop at pySigLib's benchmark configurations, f32 and f64, one thread and
//! all threads, and the GPU path beside the CPU where an adapter exists.
//! Run: `cargo bench --bench sig` (filter with e.g. `-- forward/f64`, `-- lead_lag` or `-- gpu`).
//!
//! On a software adapter (lavapipe) the GPU numbers say nothing about GPUs: it is there for
//! correctness. `ROUGHSIG_ADAPTER=<name>` picks the adapter.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{Array3, ArrayD};
use roughsig::cpu_plan::{force, Force, LeadLagStep};
use roughsig::{sig, sig_backprop, Device, Scalar, SigOptions};
use std::time::Duration;

/// (batch, length, dim, degree)
const CONFIGS: [(usize, usize, usize, usize); 5] = [
    (128, 256, 4, 6),
    (32, 1024, 8, 5),
    (1, 4096, 2, 10),
    (1024, 64, 3, 4),
    (64, 128, 16, 3),
];

fn path<T: Scalar>(batch: usize, length: usize, dim: usize) -> Array3<T> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    Array3::from_shape_simple_fn((batch, length, dim), || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        T::from_f64(((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2)
    })
}

fn bench_dtype<T: Scalar>(c: &mut Criterion) {
    for (direction, backward) in [("forward", false), ("backprop", true)] {
        let mut group = c.benchmark_group(format!("{direction}/{}", T::NAME));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        for &(batch, length, dim, degree) in &CONFIGS {
            let x = path::<T>(batch, length, dim);
            for n_jobs in [1, -1] {
                let opts = SigOptions::default().n_jobs(n_jobs).device(Device::Cpu);
                let s: ArrayD<T> = sig(x.view(), degree, &opts).unwrap();
                let ones = s.mapv(|_| T::one());
                group.throughput(Throughput::Elements((batch * length) as u64));
                let id = BenchmarkId::new(
                    format!("b{batch}_l{length}_d{dim}_n{degree}"),
                    format!("jobs{n_jobs}"),
                );
                group.bench_function(id, |b| {
                    if backward {
                        b.iter(|| {
                            sig_backprop(x.view(), s.view(), ones.view(), degree, &opts).unwrap()
                        })
                    } else {
                        b.iter(|| sig(x.view(), degree, &opts).unwrap())
                    }
                });
            }
        }
        group.finish();
    }
}

/// Lead-lag paths (batch, length, dim, degree, time_aug), timed with the step that skips the still
/// half of the channels and with the dense step, side by side.
const LEAD_LAG: [(usize, usize, usize, usize, bool); 3] = [
    (64, 256, 4, 4, true),
    (64, 256, 5, 4, false),
    (64, 256, 8, 3, true),
];

fn bench_lead_lag<T: Scalar>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("lead_lag/{}", T::NAME));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for &(batch, length, dim, degree, time_aug) in &LEAD_LAG {
        let x = path::<T>(batch, length, dim);
        let opts = SigOptions::default()
            .lead_lag(true)
            .time_aug(time_aug)
            .n_jobs(1)
            .device(Device::Cpu);
        let time = if time_aug { "_time" } else { "" };
        for step in [LeadLagStep::Compact, LeadLagStep::Dense] {
            let id = format!("{step:?}/b{batch}_l{length}_d{dim}_n{degree}{time}");
            force(Force {
                lead_lag: Some(step),
                ..Force::default()
            });
            group.bench_function(id, |b| b.iter(|| sig(x.view(), degree, &opts).unwrap()));
        }
        force(Force::default());
    }
    group.finish();
}

/// CPU and GPU side by side at pySigLib's published GPU benchmark shapes (batch 256, length 10 000,
/// d in {2, 4, 8, 16}, N in {2, 3}), shortened to length 1000 on a software adapter.
#[cfg(feature = "gpu")]
fn bench_gpu(c: &mut Criterion) {
    let adapters = roughsig::gpu::adapters();
    let Some(first) = adapters.adapters.first() else {
        eprintln!("gpu benchmarks skipped: no adapter");
        return;
    };
    let length = if first.device_type == "Cpu" {
        1000
    } else {
        10_000
    };
    let mut group = c.benchmark_group("gpu");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for dim in [2, 4, 8, 16] {
        for degree in [2, 3] {
            let x = path::<f32>(256, length, dim);
            for (name, device) in [("cpu", Device::Cpu), ("gpu", Device::Gpu(None))] {
                let opts = SigOptions::default().device(device);
                let s = sig(x.view(), degree, &opts).unwrap();
                let ones = s.mapv(|_| 1.0f32);
                let id = format!("b256_l{length}_d{dim}_n{degree}");
                group.bench_function(BenchmarkId::new(format!("forward/{name}"), &id), |b| {
                    b.iter(|| sig(x.view(), degree, &opts).unwrap())
                });
                group.bench_function(BenchmarkId::new(format!("backprop/{name}"), &id), |b| {
                    b.iter(|| sig_backprop(x.view(), s.view(), ones.view(), degree, &opts).unwrap())
                });
            }
        }
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_dtype::<f64>(c);
    bench_dtype::<f32>(c);
    bench_lead_lag::<f64>(c);
    bench_lead_lag::<f32>(c);
    #[cfg(feature = "gpu")]
    bench_gpu(c);
}

criterion_group!(sig_benches, benches);
criterion_main!(sig_benches);
