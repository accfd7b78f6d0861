//! Log-signatures at (batch 32, length 256, dim 4, degree 5), f64, all threads: each method forward
//! and backward, beside the signature alone (the log's share is the difference). Run:
//! `cargo bench --bench logsig` (filter with e.g. `-- lyndon`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array3;
use roughsig::{log_sig, log_sig_backprop, sig, sig_to_log_sig, Device, LogSigMethod, SigOptions};
use std::time::Duration;

const BATCH: usize = 32;
const LENGTH: usize = 256;
const DIM: usize = 4;
const DEGREE: usize = 5;

fn path() -> Array3<f64> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    Array3::from_shape_simple_fn((BATCH, LENGTH, DIM), || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2
    })
}

fn benches(c: &mut Criterion) {
    let x = path();
    let opts = SigOptions::default().device(Device::Cpu);
    let config = format!("b{BATCH}_l{LENGTH}_d{DIM}_n{DEGREE}");
    let mut group = c.benchmark_group("logsig");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function(BenchmarkId::new("sig", &config), |b| {
        b.iter(|| sig(x.view(), DEGREE, &opts).unwrap())
    });
    let sigs = sig(x.view(), DEGREE, &opts).unwrap();
    for method in [
        LogSigMethod::Expanded,
        LogSigMethod::Words,
        LogSigMethod::Lyndon,
    ] {
        let name = method.name();
        group.bench_function(BenchmarkId::new(format!("{name}/forward"), &config), |b| {
            b.iter(|| log_sig(x.view(), DEGREE, method, &opts).unwrap())
        });
        group.bench_function(BenchmarkId::new(format!("{name}/from_sig"), &config), |b| {
            b.iter(|| sig_to_log_sig(sigs.view(), DIM, DEGREE, method, &opts).unwrap())
        });
        let ones = log_sig(x.view(), DEGREE, method, &opts)
            .unwrap()
            .mapv(|_| 1.0);
        group.bench_function(BenchmarkId::new(format!("{name}/backprop"), &config), |b| {
            b.iter(|| log_sig_backprop(x.view(), ones.view(), DEGREE, method, &opts).unwrap())
        });
    }
    group.finish();
}

criterion_group!(logsig_benches, benches);
criterion_main!(logsig_benches);
