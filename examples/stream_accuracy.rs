//! How accurate an interval's signature is when taken from a stream: from the cached dyadic blocks
//! (`SigStream`), directly from the interval's points, and as `S(0,a)⁻¹ ⊗ S(0,b)` from two prefix
//! signatures (the inverse being the signature of the reversed prefix). The reference is the direct
//! computation in f64. `cargo run --release --example stream_accuracy`.
use roughsig::ndarray::{s, Array2, ArrayView2};
use roughsig::{sig, sig_combine, Device, Scalar, SigOptions, SigStream};

fn cpu() -> SigOptions {
    SigOptions::default().device(Device::Cpu)
}

/// The largest difference from `want`, relative to its largest coefficient.
fn rel_err<T: Scalar>(got: &[T], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max((Scalar::to_f64(*g) - w).abs()));
    err / scale
}

/// The interval `a..=b`'s signature by the three methods, in `T`.
fn methods<T: Scalar>(path: ArrayView2<'_, f64>, a: usize, b: usize, degree: usize) -> [Vec<T>; 3] {
    let path = path.mapv(T::from_f64);
    let dim = path.ncols();
    let mut stream = SigStream::<T>::new(dim, degree).unwrap();
    stream.extend(path.view()).unwrap();
    let dyadic = stream.sig(a, b).unwrap().to_vec();
    let direct = sig(path.slice(s![a..=b, ..]), degree, &cpu()).unwrap();
    let prefix_rev = sig(path.slice(s![..=a;-1, ..]), degree, &cpu()).unwrap();
    let prefix = sig(path.slice(s![..=b, ..]), degree, &cpu()).unwrap();
    let inverse = sig_combine(prefix_rev.view(), prefix.view(), dim, degree, &cpu()).unwrap();
    [
        dyadic,
        direct.into_raw_vec_and_offset().0,
        inverse.into_raw_vec_and_offset().0,
    ]
}

fn main() {
    println!("| points | degree | dtype | dyadic blocks | direct | prefix inverse |");
    println!("|---|---|---|---|---|---|");
    let dim = 2;
    for len in [1_000, 10_000, 100_000, 1_000_000] {
        // A random walk with steps of 0.01 per channel: prefix signatures grow with the length.
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut path = Array2::<f64>::zeros((len, dim));
        for i in 1..len {
            for c in 0..dim {
                path[[i, c]] = path[[i - 1, c]] + 0.02 * uniform();
            }
        }
        // The last thousand points: a recent window, as a stream would ask for.
        let (a, b) = (len - 1000, len - 1);
        for degree in [4, 6] {
            let want = sig(path.slice(s![a..=b, ..]), degree, &cpu()).unwrap();
            let want = want.as_slice().unwrap();
            let [d64, _, i64] = methods::<f64>(path.view(), a, b, degree);
            let [d32, x32, i32] = methods::<f32>(path.view(), a, b, degree);
            println!(
                "| {len} | {degree} | f64 | {:.1e} | (reference) | {:.1e} |",
                rel_err(&d64, want),
                rel_err(&i64, want)
            );
            println!(
                "| {len} | {degree} | f32 | {:.1e} | {:.1e} | {:.1e} |",
                rel_err(&d32, want),
                rel_err(&x32, want),
                rel_err(&i32, want)
            );
        }
    }
}
