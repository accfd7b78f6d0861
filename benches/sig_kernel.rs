//! Signature-kernel forward and forward+backward at pySigLib's benchmark configuration (batch 32,
//! length 128, dimension 8, dyadic order 0 and 2), all threads. Run: `cargo bench --bench sig_kernel`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::{Array1, Array3};
use roughsig::{sig_kernel, sig_kernel_backprop, Device, Scalar, SigKernelOptions};
use std::time::Duration;

const BATCH: usize = 32;
const LENGTH: usize = 128;
const DIM: usize = 8;

/// Random-walk paths with small steps, so that the kernels stay moderate.
fn paths<T: Scalar>(seed: u64) -> Array3<T> {
    let mut s = seed | 1;
    let mut p = Array3::from_shape_simple_fn((BATCH, LENGTH, DIM), || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.1
    });
    p.accumulate_axis_inplace(ndarray::Axis(1), |&prev, cur| *cur += prev);
    p.mapv(T::from_f64)
}

fn bench_dtype<T: Scalar>(c: &mut Criterion) {
    let (x, y) = (
        paths::<T>(0x2545_F491_4F6C_DD1D),
        paths::<T>(0x9E37_79B9_7F4A_7C15),
    );
    let derivs = Array1::<T>::from_elem(BATCH, T::one());
    let mut group = c.benchmark_group(format!("sig_kernel/{}", T::NAME));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for order in [0, 2] {
        let opts = SigKernelOptions::default()
            .dyadic_order((order, order))
            .device(Device::Cpu)
            .n_jobs(-1);
        let id = format!("b{BATCH}_l{LENGTH}_d{DIM}");
        group.bench_function(BenchmarkId::new(format!("forward/{id}"), order), |b| {
            b.iter(|| sig_kernel(x.view(), y.view(), &opts).unwrap())
        });
        group.bench_function(
            BenchmarkId::new(format!("forward+backward/{id}"), order),
            |b| {
                b.iter(|| {
                    let k = sig_kernel(x.view(), y.view(), &opts).unwrap();
                    let grads =
                        sig_kernel_backprop(derivs.view(), x.view(), y.view(), &opts).unwrap();
                    (k, grads)
                })
            },
        );
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_dtype::<f64>(c);
    bench_dtype::<f32>(c);
}

criterion_group!(sig_kernel_benches, benches);
criterion_main!(sig_kernel_benches);
