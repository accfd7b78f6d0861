//! Quick timing of one signature configuration:
//! `cargo run --release --example timing -- B L D N [jobs]` (f64; set `TIMING_F32=1` for f32).
use roughsig::{sig, sig_backprop, SigOptions};
use std::time::Instant;

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let (b, l, d, n) = (a[0], a[1], a[2], a[3]);
    if std::env::var_os("TIMING_F32").is_some() {
        return run::<f32>(b, l, d, n, a.get(4).copied().unwrap_or(1) as i32);
    }
    run::<f64>(b, l, d, n, a.get(4).copied().unwrap_or(1) as i32);
}

fn run<T: roughsig::Scalar>(b: usize, l: usize, d: usize, n: usize, jobs: i32) {
    let mut s = 1u64;
    let x = ndarray::Array3::from_shape_simple_fn((b, l, d), || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        T::from_f64(((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2)
    });
    let o = SigOptions {
        n_jobs: jobs,
        ..Default::default()
    };
    let mut best = f64::MAX;
    let mut out = sig(x.view(), n, &o).unwrap();
    for _ in 0..15 {
        let t = Instant::now();
        out = sig(x.view(), n, &o).unwrap();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    let g = out.mapv(|_| T::one());
    let mut best_b = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let _ = sig_backprop(x.view(), out.view(), g.view(), n, &o).unwrap();
        best_b = best_b.min(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "sig {best:.2} ms, sig_backprop {best_b:.2} ms ({:?})",
        roughsig::algebra::simd::isa()
    );
}
