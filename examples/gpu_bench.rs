//! GPU against CPU on the benchmark shapes, one markdown table: `scripts/gpu_bench.sh` runs it.
//!
//! `cargo run --release --example gpu_bench -- [--quick] [--f64] [--repeats R]`. For each shape it
//! times `sig` and `sig_backprop` on the GPU end to end (upload, kernels, read-back; the best of R
//! calls), the GPU's kernel time alone (timestamp queries, where the adapter has them: the data is on
//! the device, as the published GPU numbers are measured) and the CPU with every core.
use ndarray::Array3;
use roughsig::{sig, sig_backprop, Device, Scalar, SigOptions};
use std::time::Instant;

struct Shape(usize, usize, usize, usize);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let f64 = args.iter().any(|a| a == "--f64");
    let repeats = args
        .iter()
        .position(|a| a == "--repeats")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 2 } else { 10 });
    let shapes: Vec<Shape> = if quick {
        vec![
            Shape(16, 200, 2, 3),
            Shape(8, 256, 4, 4),
            Shape(1, 4000, 4, 4),
            Shape(4, 128, 8, 3),
        ]
    } else {
        let mut v: Vec<Shape> = [
            (2, 2),
            (2, 3),
            (4, 2),
            (4, 3),
            (8, 2),
            (8, 3),
            (16, 2),
            (16, 3),
        ]
        .iter()
        .map(|&(d, n)| Shape(256, 10_000, d, n))
        .collect();
        v.extend([
            Shape(128, 256, 4, 6),
            Shape(128, 500, 4, 6),
            Shape(32, 1024, 8, 5),
            Shape(1, 100_000, 4, 6),
        ]);
        v
    };
    let list = roughsig::gpu::adapters();
    print!("{list}");
    println!();
    println!(
        "| op | dtype | (batch, length, dim, degree) | GPU kernel ms | GPU end-to-end ms | CPU ms | \
         CPU / GPU kernel | largest dispatch | dispatches |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for s in &shapes {
        run::<f32>(s, repeats);
        if f64 {
            run::<f64>(s, repeats);
        }
    }
}

fn paths<T: Scalar>(s: &Shape) -> Array3<T> {
    let mut x = 0x9e3779b97f4a7c15u64;
    Array3::from_shape_simple_fn((s.0, s.1, s.2), || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Steps of a random walk scaled like normalised data: increments of about 1/sqrt(length).
        T::from_f64(((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) / (s.1 as f64).sqrt())
    })
}

/// The best of `repeats` timed calls of `f` (after one untimed call), and the smallest kernel time
/// the GPU reported over them.
fn best<R>(repeats: usize, mut f: impl FnMut() -> R) -> (f64, Option<f64>) {
    std::hint::black_box(f());
    let (mut wall, mut kernel) = (f64::MAX, None::<f64>);
    for _ in 0..repeats {
        let t = Instant::now();
        std::hint::black_box(f());
        wall = wall.min(t.elapsed().as_secs_f64() * 1e3);
        if let Some(k) = roughsig::gpu::last_gpu_report().and_then(|r| r.kernel_ms) {
            kernel = Some(kernel.map_or(k, |b: f64| b.min(k)));
        }
    }
    (wall, kernel)
}

fn run<T: Scalar>(s: &Shape, repeats: usize) {
    let x = paths::<T>(s);
    let gpu = SigOptions {
        device: Device::Gpu(None),
        ..Default::default()
    };
    let cpu = SigOptions {
        device: Device::Cpu,
        ..Default::default()
    };
    let shape = format!("({}, {}, {}, {})", s.0, s.1, s.2, s.3);
    let sigs = match sig(x.view(), s.3, &cpu) {
        Ok(v) => v,
        Err(e) => return println!("| sig | {} | {shape} | {e} |", T::NAME),
    };
    let derivs = sigs.mapv(|v| v.cos());
    for op in ["sig", "sig_backprop"] {
        let call = |o: &SigOptions| -> roughsig::Result<()> {
            match op {
                "sig" => sig(x.view(), s.3, o).map(drop),
                _ => sig_backprop(x.view(), sigs.view(), derivs.view(), s.3, o).map(drop),
            }
        };
        if let Err(e) = call(&gpu) {
            println!("| {op} | {} | {shape} | GPU: {e} | | | | | |", T::NAME);
            continue;
        }
        let (g_wall, g_kernel) = best(repeats, || call(&gpu));
        let report = roughsig::gpu::last_gpu_report().unwrap_or_default();
        let (c_wall, _) = best(repeats.min(3), || call(&cpu));
        let kernel = g_kernel.map_or("–".into(), |k| format!("{k:.3}"));
        let ratio = g_kernel.map_or("–".into(), |k| format!("{:.1}x", c_wall / k));
        println!(
            "| {op} | {} | {shape} | {kernel} | {g_wall:.3} | {c_wall:.3} | {ratio} | {} | {} |",
            T::NAME,
            report.max_invocations,
            report.dispatches
        );
    }
}
