//! GPU against CPU on the benchmark shapes, one markdown table: `scripts/gpu_bench.sh` runs it.
//!
//! `cargo run --release --example gpu_bench -- [--quick] [--f64] [--repeats R] [--only SECTIONS]`.
//! `--only` takes a comma-separated list of the sections below (`sig`, `kernels`, `log_sig`,
//! `combine`, `sig_coef`, `corrected`) and runs those alone. For each shape it
//! times `sig` and `sig_backprop` on the GPU end to end (upload, kernels, read-back; the best of R
//! calls), the GPU's kernel time alone (timestamp queries, where the adapter has them: the data is on
//! the device, as the published GPU numbers are measured) and the CPU with every core; then the
//! same for `sig_kernel` and its backprop (shape `(batch, length, dim, dyadic order)`), one Gram
//! matrix, `log_sig` and `log_sig_backprop` (Lyndon words), `sig_combine` and its gradient, and
//! `log_sig_to_sig` and `log_sig_combine` (Lyndon brackets) with their gradients, and `sig_coef`
//! (ten words of up to six letters) with its gradient, `sig_corrected` (a level-2 correction)
//! with its gradient, and the polynomial kernel solver (order 8) with its gradient.
use ndarray::{Array3, ArrayD};
use roughsig::gpu::GpuReport;
use roughsig::{
    log_sig, log_sig_backprop, log_sig_combine, log_sig_combine_backprop, log_sig_to_sig,
    log_sig_to_sig_backprop, sig, sig_backprop, sig_coef, sig_coef_backprop, sig_combine,
    sig_combine_backprop, sig_corrected, sig_corrected_backprop, sig_kernel, sig_kernel_backprop,
    sig_kernel_gram, Device, LogSigMethod, Scalar, SigKernelOptions, SigOptions,
};
use std::time::Instant;

struct Shape(usize, usize, usize, usize);

/// The sections `--only` picks from, in the order they run.
const SECTIONS: [&str; 6] = [
    "sig",
    "kernels",
    "log_sig",
    "combine",
    "sig_coef",
    "corrected",
];

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
    let only: Vec<String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(unknown) = only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
        eprintln!(
            "gpu_bench: unknown section '{unknown}' (sections: {})",
            SECTIONS.join(", ")
        );
        std::process::exit(2);
    }
    let wants = |section: &str| only.is_empty() || only.iter().any(|s| s == section);
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
        "| op | dtype | (batch, length, dim, degree) | GPU kernel ms | GPU end-to-end ms | \
         upload / wait / download ms | CPU ms | CPU / GPU kernel | largest dispatch | dispatches | \
         most GPU time: kernel dispatches× ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    if wants("sig") {
        for s in &shapes {
            run::<f32>(s, repeats);
            if f64 {
                run::<f64>(s, repeats);
            }
        }
    }
    if wants("kernels") {
        // Signature kernels: (pairs, length, dim, dyadic order), then one Gram matrix (n × n paths).
        let (kernels, gram): (Vec<Shape>, Shape) = if quick {
            (
                vec![Shape(8, 64, 4, 0), Shape(8, 64, 4, 1)],
                Shape(32, 32, 4, 0),
            )
        } else {
            (
                vec![
                    Shape(32, 128, 8, 0),
                    Shape(32, 128, 8, 2),
                    Shape(128, 512, 8, 0),
                    Shape(128, 512, 8, 2),
                ],
                Shape(512, 128, 8, 0),
            )
        };
        for s in &kernels {
            run_kernel::<f32>(s, repeats);
            if f64 {
                run_kernel::<f64>(s, repeats);
            }
        }
        run_gram::<f32>(&gram, repeats);
        // The polynomial solver, order 8: (pairs, length, dim, order).
        run_polynomial::<f32>(
            &if quick {
                Shape(8, 32, 4, 8)
            } else {
                Shape(32, 128, 8, 8)
            },
            repeats,
        );
    }
    // Log-signatures (Lyndon words) and their gradient, and Chen's product of signatures.
    let (logs, combines) = if quick {
        (vec![Shape(8, 64, 3, 3)], vec![Shape(64, 2, 3, 3)])
    } else {
        (
            vec![Shape(128, 256, 4, 6), Shape(32, 1024, 8, 4)],
            vec![Shape(4096, 2, 4, 6), Shape(1024, 2, 8, 4)],
        )
    };
    if wants("log_sig") {
        for s in &logs {
            run_log_sig::<f32>(s, repeats);
        }
    }
    if wants("combine") {
        for s in &combines {
            run_combine::<f32>(s, repeats);
            run_log_sig_products::<f32>(s, repeats);
        }
    }
    if wants("sig_coef") {
        // Chosen words' coefficients: (batch, length, dim, longest word).
        let coefs = if quick {
            Shape(8, 256, 4, 6)
        } else {
            Shape(128, 256, 8, 6)
        };
        run_sig_coef::<f32>(&coefs, repeats);
    }
    if wants("corrected") {
        // Signatures with a level-2 correction per segment: (batch, length, dim, degree).
        let corrected = if quick {
            Shape(8, 256, 4, 4)
        } else {
            Shape(128, 256, 4, 6)
        };
        run_corrected::<f32>(&corrected, repeats);
    }
}

/// `sig_corrected` and its gradient with one level-2 correction row per segment and path.
fn run_corrected<T: Scalar>(s: &Shape, repeats: usize) {
    let (cpu, gpu) = (sig_options(Device::Cpu), sig_options(Device::Gpu(None)));
    let x = paths::<T>(s);
    let c = paths::<T>(&Shape(s.0, s.1 - 1, s.2 * s.2, 0));
    let shape = format!("({}, {}, {}, {}), level 2", s.0, s.1, s.2, s.3);
    let sigs = match sig_corrected(x.view(), c.view(), s.3, &cpu) {
        Ok(sigs) => sigs,
        Err(e) => return println!("| sig_corrected | {} | {shape} | {e} |", T::NAME),
    };
    let derivs = sigs.mapv(|v| v.cos());
    compare("sig_corrected", T::NAME, &shape, repeats, &gpu, &cpu, |o| {
        sig_corrected(x.view(), c.view(), s.3, o).map(drop)
    });
    compare(
        "sig_corrected_backprop",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| {
            sig_corrected_backprop(x.view(), c.view(), sigs.view(), derivs.view(), s.3, o).map(drop)
        },
    );
}

/// `sig_coef` and its gradient for ten words of lengths 1 to `s.3` over the `s.2` letters.
fn run_sig_coef<T: Scalar>(s: &Shape, repeats: usize) {
    let (cpu, gpu) = (sig_options(Device::Cpu), sig_options(Device::Gpu(None)));
    let x = paths::<T>(s);
    let words: Vec<Vec<usize>> = (0..10)
        .map(|w| (0..1 + w % s.3).map(|i| (w + 3 * i) % s.2).collect())
        .collect();
    let derivs = ArrayD::<T>::ones(vec![s.0, words.len()]);
    let shape = format!("({}, {}, {}), 10 words ≤ {}", s.0, s.1, s.2, s.3);
    compare("sig_coef", T::NAME, &shape, repeats, &gpu, &cpu, |o| {
        sig_coef(x.view(), &words, false, o).map(drop)
    });
    compare(
        "sig_coef_backprop",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| sig_coef_backprop(x.view(), &words, derivs.view(), o).map(drop),
    );
}

/// Time `call` on the GPU and the CPU and print the row (or the GPU's error).
fn compare<O>(
    op: &str,
    dtype: &str,
    shape: &str,
    repeats: usize,
    gpu: &O,
    cpu: &O,
    call: impl Fn(&O) -> roughsig::Result<()>,
) {
    if let Err(e) = call(gpu) {
        return println!("| {op} | {dtype} | {shape} | GPU: {e} | | | | | | | |");
    }
    let g = best(repeats, || call(gpu));
    let c_wall = best(repeats.min(3), || call(cpu)).wall;
    row(op, dtype, shape, g, c_wall);
}

fn sig_options(device: Device) -> SigOptions {
    SigOptions::default().device(device)
}

fn run_log_sig<T: Scalar>(s: &Shape, repeats: usize) {
    let x = paths::<T>(s);
    let (gpu, cpu) = (sig_options(Device::Gpu(None)), sig_options(Device::Cpu));
    let shape = format!("({}, {}, {}, {})", s.0, s.1, s.2, s.3);
    let method = LogSigMethod::Words;
    let derivs = match log_sig(x.view(), s.3, method, &cpu) {
        Ok(v) => v.mapv(|v| v.cos()),
        Err(e) => return println!("| log_sig | {} | {shape} | {e} |", T::NAME),
    };
    compare("log_sig", T::NAME, &shape, repeats, &gpu, &cpu, |o| {
        log_sig(x.view(), s.3, method, o).map(drop)
    });
    compare(
        "log_sig_backprop",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| log_sig_backprop(x.view(), derivs.view(), s.3, method, o).map(drop),
    );
}

/// Chen's product of `s.0` pairs of signatures (dimension `s.2`, degree `s.3`) and its gradient.
fn run_combine<T: Scalar>(s: &Shape, repeats: usize) {
    let cpu = sig_options(Device::Cpu);
    let gpu = sig_options(Device::Gpu(None));
    let x = paths::<T>(&Shape(s.0, 8, s.2, s.3));
    let shape = format!("{} pairs, dim {}, degree {}", s.0, s.2, s.3);
    let a = match sig(x.view(), s.3, &cpu) {
        Ok(v) => v,
        Err(e) => return println!("| sig_combine | {} | {shape} | {e} |", T::NAME),
    };
    let b = a.mapv(|v| v * T::from_f64(0.5));
    let g = a.mapv(|v| v.cos());
    compare("sig_combine", T::NAME, &shape, repeats, &gpu, &cpu, |o| {
        sig_combine(a.view(), b.view(), s.2, s.3, o).map(drop)
    });
    compare(
        "sig_combine_backprop",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| sig_combine_backprop(g.view(), a.view(), b.view(), s.2, s.3, o).map(drop),
    );
}

/// The exponentials of `s.0` log-signatures in the Lyndon bracket basis (dimension `s.2`, degree
/// `s.3`) and their products (`log_sig_combine`), with their gradients.
fn run_log_sig_products<T: Scalar>(s: &Shape, repeats: usize) {
    let (cpu, gpu) = (sig_options(Device::Cpu), sig_options(Device::Gpu(None)));
    let method = LogSigMethod::Lyndon;
    let x = paths::<T>(&Shape(s.0, 8, s.2, s.3));
    let shape = format!("{} rows, dim {}, degree {}", s.0, s.2, s.3);
    let (l, sig_derivs) = match (
        log_sig(x.view(), s.3, method, &cpu),
        sig(x.view(), s.3, &cpu),
    ) {
        (Ok(l), Ok(sigs)) => (l, sigs.mapv(|v| v.cos())),
        (Err(e), _) | (_, Err(e)) => {
            return println!("| log_sig_to_sig | {} | {shape} | {e} |", T::NAME)
        }
    };
    let (b, g) = (l.mapv(|v| v * T::from_f64(0.5)), l.mapv(|v| v.cos()));
    let (d, n) = (s.2, s.3);
    compare(
        "log_sig_to_sig",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| log_sig_to_sig(l.view(), d, n, method, o).map(drop),
    );
    compare(
        "log_sig_to_sig_backprop",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| log_sig_to_sig_backprop(l.view(), sig_derivs.view(), d, n, method, o).map(drop),
    );
    compare(
        "log_sig_combine",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| log_sig_combine(l.view(), b.view(), d, n, o).map(drop),
    );
    compare(
        "log_sig_combine_backprop",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| log_sig_combine_backprop(g.view(), l.view(), b.view(), d, n, o).map(drop),
    );
}

/// One table row: the GPU's kernel and end-to-end times against the CPU's, and what the GPU's last
/// call dispatched.
fn row(op: &str, dtype: &str, shape: &str, gpu: Best, cpu: f64) {
    let report = gpu.report.unwrap_or_default();
    let kernel = gpu.kernel.map_or("–".into(), |k| format!("{k:.3}"));
    let ratio = gpu
        .kernel
        .map_or("–".into(), |k| format!("{:.1}x", cpu / k));
    // The kernels that took the most time, in the fastest call.
    let mut kernels = report.kernels.clone();
    kernels.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    let by_kernel: Vec<String> = kernels
        .iter()
        .take(4)
        .map(|k| format!("{} {}× {:.3}", k.name, k.dispatches, k.ms))
        .collect();
    println!(
        "| {op} | {dtype} | {shape} | {kernel} | {:.3} | {:.1} / {:.1} / {:.1} | {cpu:.3} | {ratio} | \
         {} | {} | {} |",
        gpu.wall,
        report.upload_ms,
        report.wait_ms,
        report.download_ms,
        report.max_invocations,
        report.dispatches,
        by_kernel.join("; ")
    );
}

fn kernel_options(device: Device, lam: usize) -> SigKernelOptions {
    SigKernelOptions::default()
        .dyadic_order((lam, lam))
        .device(device)
}

fn run_kernel<T: Scalar>(s: &Shape, repeats: usize) {
    let x = paths::<T>(s);
    let y = x.mapv(|v| v * T::from_f64(0.5));
    let (gpu, cpu) = (
        kernel_options(Device::Gpu(None), s.3),
        kernel_options(Device::Cpu, s.3),
    );
    let shape = format!("({}, {}, {}, λ={})", s.0, s.1, s.2, s.3);
    let ds = ArrayD::<T>::ones(vec![s.0]);
    for op in ["sig_kernel", "sig_kernel_backprop"] {
        let call = |o: &SigKernelOptions| -> roughsig::Result<()> {
            match op {
                "sig_kernel" => sig_kernel(x.view(), y.view(), o).map(drop),
                _ => sig_kernel_backprop(ds.view(), x.view(), y.view(), o).map(drop),
            }
        };
        if let Err(e) = call(&gpu) {
            println!("| {op} | {} | {shape} | GPU: {e} | | | | | | | |", T::NAME);
            continue;
        }
        let g = best(repeats, || call(&gpu));
        let c_wall = best(repeats.min(3), || call(&cpu)).wall;
        row(op, T::NAME, &shape, g, c_wall);
    }
}

/// `sig_kernel` and its gradient by the polynomial solver of order `s.3`.
fn run_polynomial<T: Scalar>(s: &Shape, repeats: usize) {
    let x = paths::<T>(s);
    let y = x.mapv(|v| v * T::from_f64(0.5));
    let solver = roughsig::KernelSolver::Polynomial { order: s.3 };
    let options = |device| SigKernelOptions::default().solver(solver).device(device);
    let (gpu, cpu) = (options(Device::Gpu(None)), options(Device::Cpu));
    let shape = format!("({}, {}, {}), order {}", s.0, s.1, s.2, s.3);
    let ds = ArrayD::<T>::ones(vec![s.0]);
    compare(
        "sig_kernel polynomial",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| sig_kernel(x.view(), y.view(), o).map(drop),
    );
    compare(
        "sig_kernel_backprop polynomial",
        T::NAME,
        &shape,
        repeats,
        &gpu,
        &cpu,
        |o| sig_kernel_backprop(ds.view(), x.view(), y.view(), o).map(drop),
    );
}

fn run_gram<T: Scalar>(s: &Shape, repeats: usize) {
    let x = paths::<T>(s);
    let y = x.mapv(|v| v * T::from_f64(0.5));
    let (gpu, cpu) = (
        kernel_options(Device::Gpu(None), s.3),
        kernel_options(Device::Cpu, s.3),
    );
    let shape = format!("{0} × {0} paths of ({1}, {2}), λ={3}", s.0, s.1, s.2, s.3);
    if let Err(e) = sig_kernel_gram(x.view(), y.view(), &gpu) {
        return println!(
            "| sig_kernel_gram | {} | {shape} | GPU: {e} | | | | | | | |",
            T::NAME
        );
    }
    let g = best(repeats.min(3), || sig_kernel_gram(x.view(), y.view(), &gpu));
    let c_wall = best(1, || sig_kernel_gram(x.view(), y.view(), &cpu)).wall;
    row("sig_kernel_gram", T::NAME, &shape, g, c_wall);
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

/// The best of `repeats` timed calls of `f` (after one untimed call): its wall time, the smallest
/// kernel time the GPU reported over them, and the GPU's report of the fastest call.
fn best<R>(repeats: usize, mut f: impl FnMut() -> R) -> Best {
    std::hint::black_box(f());
    let mut b = Best {
        wall: f64::MAX,
        kernel: None,
        report: None,
    };
    for _ in 0..repeats {
        let t = Instant::now();
        std::hint::black_box(f());
        let wall = t.elapsed().as_secs_f64() * 1e3;
        let report = roughsig::gpu::last_gpu_report();
        if let Some(k) = report.as_ref().and_then(|r| r.kernel_ms) {
            b.kernel = Some(b.kernel.map_or(k, |m: f64| m.min(k)));
        }
        if wall < b.wall {
            b.wall = wall;
            b.report = report;
        }
    }
    b
}

struct Best {
    wall: f64,
    kernel: Option<f64>,
    report: Option<GpuReport>,
}

fn run<T: Scalar>(s: &Shape, repeats: usize) {
    let x = paths::<T>(s);
    let gpu = SigOptions::default().device(Device::Gpu(None));
    let cpu = SigOptions::default().device(Device::Cpu);
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
            println!("| {op} | {} | {shape} | GPU: {e} | | | | | | | |", T::NAME);
            continue;
        }
        let g = best(repeats, || call(&gpu));
        let c_wall = best(repeats.min(3), || call(&cpu)).wall;
        row(op, T::NAME, &shape, g, c_wall);
    }
}
