//! `SigStream` against direct computation: random pushes (single points and batches) and pops,
//! then intervals of the points held, each equal to `sig` of that run of points.

use crate::common::random;
use ndarray::{s, Array2, ArrayD};
use roughsig::{sig, Device, SigOptions, SigStream};

/// A small deterministic generator for the sequences of operations.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// `sig` of the points `a..=b` of `held` (rows), on the CPU.
fn direct(held: &Array2<f64>, a: usize, b: usize, degree: usize) -> ArrayD<f64> {
    let opts = SigOptions::default().device(Device::Cpu);
    sig(held.slice(s![a..=b, ..]), degree, &opts).unwrap()
}

fn assert_rel(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn intervals_match_direct_computation_over_pushes_and_pops() {
    for (dim, degree, seed) in [(1, 4, 1), (2, 4, 2), (3, 3, 3), (5, 2, 4)] {
        let mut rng = Lcg(seed);
        let source = random(&[600, dim], seed) / 4.0;
        let (mut next, mut first) = (0, 0);
        let mut stream = SigStream::<f64>::new(dim, degree).unwrap();
        for round in 0..40 {
            // Push one point or a batch, sometimes pop from the front.
            let n = if rng.below(3) == 0 { 1 } else { rng.below(40) };
            let n = n.min(source.shape()[0] - next);
            let batch = source
                .slice(s![next..next + n, ..])
                .into_dimensionality()
                .unwrap();
            stream.extend(batch).unwrap();
            next += n;
            if rng.below(4) == 0 {
                let k = rng.below(stream.len() + 1);
                stream.pop_front(k);
                first += k.min(next - first);
            }
            assert_eq!(stream.len(), next - first);
            if stream.is_empty() {
                continue;
            }
            let held = source.slice(s![first..next, ..]).to_owned();
            let held: Array2<f64> = held.into_dimensionality().unwrap();
            let mut intervals = vec![(0, stream.len() - 1)];
            // Now and then enough intervals for `sig_batch` to share them over threads.
            let count = if round % 5 == 0 { 70 } else { 6 };
            for _ in 0..count {
                let a = rng.below(stream.len());
                let b = a + rng.below(stream.len() - a);
                intervals.push((a, b));
            }
            let batch = stream.sig_batch(&intervals).unwrap();
            for (row, &(a, b)) in batch.rows().into_iter().zip(&intervals) {
                let want = direct(&held, a, b, degree);
                let what = format!("dim {dim}, round {round}, interval ({a}, {b})");
                assert_rel(
                    &what,
                    row.as_slice().unwrap(),
                    want.as_slice().unwrap(),
                    1e-11,
                );
                let one = stream.sig(a, b).unwrap();
                assert_eq!(one.as_slice().unwrap(), row.as_slice().unwrap(), "{what}");
            }
        }
    }
}

#[test]
fn long_intervals_from_the_blocks_are_accurate_in_f32() {
    // 5000 points: an interval's signature from the cached blocks equals the direct one in f32.
    let (dim, degree) = (2, 4);
    let source = random(&[5000, dim], 9) / 40.0;
    let mut stream = SigStream::<f32>::new(dim, degree).unwrap();
    stream
        .extend(
            source
                .mapv(|x| x as f32)
                .view()
                .into_dimensionality()
                .unwrap(),
        )
        .unwrap();
    let held: Array2<f64> = source.into_dimensionality().unwrap();
    for (a, b) in [(0, 4999), (17, 4321), (1000, 1008), (3, 3)] {
        let got = stream.sig(a, b).unwrap().mapv(f64::from);
        let want = direct(&held, a, b, degree);
        assert_rel(
            &format!("({a}, {b})"),
            got.as_slice().unwrap(),
            want.as_slice().unwrap(),
            2e-5,
        );
    }
}

#[test]
fn bad_points_and_intervals_are_errors() {
    assert!(SigStream::<f64>::new(0, 2).is_err());
    assert!(SigStream::<f64>::new(2, 0).is_err());
    assert!(SigStream::<f64>::new(1 << 20, 1 << 20).is_err());
    let mut stream = SigStream::<f64>::new(2, 3).unwrap();
    assert!(stream.push(&[1.0]).is_err());
    assert!(stream.push(&[1.0, f64::NAN]).is_err());
    assert!(stream.sig(0, 0).is_err(), "no point held");
    stream.push(&[0.0, 0.0]).unwrap();
    stream.push(&[1.0, 2.0]).unwrap();
    assert!(stream.sig(1, 0).is_err());
    assert!(stream.sig(0, 2).is_err());
    assert_eq!(
        stream
            .sig(1, 1)
            .unwrap()
            .iter()
            .filter(|x| **x != 0.0)
            .count(),
        0
    );
    assert_eq!(stream.sig(0, 1).unwrap()[1], 2.0);
    stream.pop_front(5);
    assert!(stream.is_empty());
}

#[test]
fn windows_match_direct_computation() {
    use roughsig::SigWindowStream;
    let (dim, degree) = (3, 3);
    let source = random(&[300, dim], 21) / 5.0;
    let held: Array2<f64> = source.clone().into_dimensionality().unwrap();
    for (window, stride) in [
        (1, 1),
        (2, 1),
        (17, 1),
        (50, 7),
        (8, 20),
        (300, 1),
        (301, 1),
    ] {
        let mut stream = SigWindowStream::<f64>::new(dim, degree, window, stride).unwrap();
        // Fed in uneven batches: what comes out does not depend on how points arrive.
        let mut got = Vec::new();
        let mut at = 0;
        for n in [1, 5, 60, 3, 231] {
            let rows = stream.extend(held.slice(s![at..at + n, ..])).unwrap();
            got.extend(rows.rows().into_iter().map(|r| r.to_vec()));
            at += n;
        }
        let ends: Vec<usize> = (window - 1..300).step_by(stride).collect();
        assert_eq!(got.len(), ends.len(), "window {window}, stride {stride}");
        for (row, &end) in got.iter().zip(&ends) {
            let want = direct(&held, end + 1 - window, end, degree);
            let what = format!("window {window}, stride {stride}, end {end}");
            assert_rel(&what, row, want.as_slice().unwrap(), 1e-11);
        }
    }
    assert!(SigWindowStream::<f64>::new(2, 2, 0, 1).is_err());
    assert!(SigWindowStream::<f64>::new(2, 2, 3, 0).is_err());
}

#[test]
fn sig_windows_is_sig_of_each_window_with_every_flag() {
    let path = random(&[2, 3, 40, 2], 41) / 4.0;
    for flags in 0..8 {
        let opts = SigOptions::default()
            .time_aug(flags & 1 == 1)
            .lead_lag(flags & 2 == 2)
            .scalar_term(flags & 4 == 4)
            .end_time(1.7)
            .device(Device::Cpu);
        for (window, stride) in [(1, 3), (6, 1), (13, 4), (40, 1), (41, 1)] {
            let got = roughsig::sig_windows(path.view(), 3, window, stride, &opts).unwrap();
            let ends: Vec<usize> = (window - 1..40).step_by(stride).collect();
            let len = roughsig::sig_length(2, 3, &opts).unwrap();
            assert_eq!(got.shape(), &[2, 3, ends.len(), len]);
            for (w, &end) in ends.iter().enumerate() {
                let slice = path.slice(s![.., .., end + 1 - window..=end, ..]);
                let want = sig(slice, 3, &opts).unwrap();
                let got = got.slice(s![.., .., w, ..]).to_owned().into_dyn();
                let what =
                    format!("flags {flags:03b}, window {window}, stride {stride}, end {end}");
                assert_rel(
                    &what,
                    got.as_slice().unwrap(),
                    want.as_slice().unwrap(),
                    1e-11,
                );
            }
        }
    }
    let opts = SigOptions::default();
    assert!(roughsig::sig_windows(path.view(), 3, 0, 1, &opts).is_err());
    assert!(roughsig::sig_windows(path.view(), 3, 2, 0, &opts).is_err());
    let mut bad = path.clone();
    bad[[1, 2, 7, 0]] = f64::NAN;
    assert!(roughsig::sig_windows(bad.view(), 3, 5, 1, &opts).is_err());
}

#[test]
fn log_signatures_of_intervals_and_windows_match_log_sig() {
    use roughsig::{log_sig, LogSigMethod, LogSigWindowStream};
    let (dim, degree) = (2, 4);
    let source = random(&[120, dim], 51) / 4.0;
    let held: Array2<f64> = source.clone().into_dimensionality().unwrap();
    let opts = SigOptions::default().device(Device::Cpu);
    for method in [
        LogSigMethod::Expanded,
        LogSigMethod::Words,
        LogSigMethod::Lyndon,
    ] {
        let mut stream = SigStream::<f64>::new(dim, degree).unwrap();
        stream.extend(held.view()).unwrap();
        let intervals = [(0, 119), (3, 77), (50, 51)];
        let batch = stream.log_sig_batch(&intervals, method).unwrap();
        for (row, &(a, b)) in batch.rows().into_iter().zip(&intervals) {
            let want = log_sig(held.slice(s![a..=b, ..]), degree, method, &opts).unwrap();
            let what = format!("{method:?} ({a}, {b})");
            assert_rel(
                &what,
                row.as_slice().unwrap(),
                want.as_slice().unwrap(),
                1e-11,
            );
            let one = stream.log_sig(a, b, method).unwrap();
            assert_eq!(one, row, "{what}");
        }
        let mut windows = LogSigWindowStream::<f64>::new(dim, degree, 30, 20, method).unwrap();
        let got = windows.extend(held.view()).unwrap();
        let ends: Vec<usize> = (29..120).step_by(20).collect();
        assert_eq!(got.nrows(), ends.len());
        for (row, &end) in got.rows().into_iter().zip(&ends) {
            let want = log_sig(held.slice(s![end - 29..=end, ..]), degree, method, &opts).unwrap();
            let what = format!("{method:?} window ending {end}");
            assert_rel(
                &what,
                row.as_slice().unwrap(),
                want.as_slice().unwrap(),
                1e-11,
            );
        }
    }
}

#[test]
fn a_recent_window_of_a_long_stream_is_as_accurate_as_direct_computation() {
    // 100 000 points of a random walk in f32; the last thousand from the blocks against the
    // direct f32 computation, both against f64.
    let (dim, degree, len) = (2, 4, 100_000);
    let steps = random(&[len, dim], 61) * 0.01;
    let mut path = Array2::<f64>::zeros((len, dim));
    for i in 1..len {
        for c in 0..dim {
            path[[i, c]] = path[[i - 1, c]] + steps[[i, c]];
        }
    }
    let path32 = path.mapv(|x| x as f32);
    let mut stream = SigStream::<f32>::new(dim, degree).unwrap();
    stream.extend(path32.view()).unwrap();
    let (a, b) = (len - 1000, len - 1);
    let opts = SigOptions::default().device(Device::Cpu);
    let want = sig(path.slice(s![a..=b, ..]), degree, &opts).unwrap();
    let direct = sig(path32.slice(s![a..=b, ..]), degree, &opts).unwrap();
    let dyadic = stream.sig(a, b).unwrap();
    let err = |got: &[f32]| -> f64 {
        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let e = got
            .iter()
            .zip(want.iter())
            .fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
        e / scale
    };
    let (e_dyadic, e_direct) = (
        err(dyadic.as_slice().unwrap()),
        err(direct.as_slice().unwrap()),
    );
    assert!(
        e_dyadic <= 10.0 * e_direct + 1e-7,
        "dyadic {e_dyadic:e}, direct {e_direct:e}"
    );
}

/// `LogSigStream` over pushes and pops: each interval's log-signature is `log_sig` of its points.
#[test]
fn log_sig_streams_match_log_sig_after_pops() {
    use roughsig::{log_sig, LogSigMethod, LogSigStream};
    let (dim, degree) = (3, 3);
    let source: Array2<f64> = (random(&[90, dim], 53) / 3.0)
        .into_dimensionality()
        .unwrap();
    let opts = SigOptions::default().device(Device::Cpu);
    for method in [LogSigMethod::Words, LogSigMethod::Lyndon] {
        let mut stream = LogSigStream::<f64>::new(dim, degree, method).unwrap();
        stream.extend(source.slice(s![..60, ..])).unwrap();
        stream.pop_front(17);
        for row in source.slice(s![60.., ..]).rows() {
            stream.push(row.as_slice().unwrap()).unwrap();
        }
        assert_eq!(stream.len(), 73);
        let intervals = [(0, 72), (5, 40), (30, 31), (9, 9)];
        let batch = stream.log_sig_batch(&intervals).unwrap();
        for (row, &(a, b)) in batch.rows().into_iter().zip(&intervals) {
            let points = source.slice(s![17 + a..=17 + b, ..]);
            let want = log_sig(points, degree, method, &opts).unwrap();
            let what = format!("{method:?} ({a}, {b})");
            assert_rel(
                &what,
                row.as_slice().unwrap(),
                want.as_slice().unwrap(),
                1e-11,
            );
            assert_eq!(stream.log_sig(a, b).unwrap(), row, "{what}");
        }
        let sig = stream.stream().sig(0, 72).unwrap();
        assert_eq!(sig.len(), 3 + 9 + 27);
    }
}
