//! Bad input is a typed error, never a panic, a silent wrong answer or an absurd allocation.

use crate::common::random;
use ndarray::{ArrayD, IxDyn};
use roughsig::{sig, sig_backprop, sig_combine, sig_join, Device, Error, SigOptions};

fn opts() -> SigOptions {
    SigOptions::default()
}

#[test]
fn paths_need_two_axes_and_channels() {
    let flat = random(&[5], 1);
    assert!(matches!(
        sig(flat.view(), 2, &opts()),
        Err(Error::Rank { min: 2, got: 1, .. })
    ));
    let scalar = ArrayD::<f64>::zeros(IxDyn(&[]));
    assert!(matches!(
        sig(scalar.view(), 2, &opts()),
        Err(Error::Rank { got: 0, .. })
    ));
    let empty = ArrayD::<f64>::zeros(IxDyn(&[5, 0]));
    assert!(matches!(
        sig(empty.view(), 2, &opts()),
        Err(Error::ZeroChannels { .. })
    ));
}

#[test]
fn non_finite_points_are_located() {
    let mut path = random(&[2, 3, 4, 2], 1);
    path[[1, 2, 3, 1]] = f64::NAN;
    let err = sig(path.view(), 2, &opts()).unwrap_err();
    match &err {
        Error::NonFinite {
            item,
            point,
            channel,
            ..
        } => assert_eq!((item.as_slice(), *point, *channel), (&[1, 2][..], 3, 1)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("batch item [1, 2], point 3"),
        "{err}"
    );
    path[[1, 2, 3, 1]] = f64::INFINITY;
    assert!(matches!(
        sig(path.view(), 2, &opts()),
        Err(Error::NonFinite { .. })
    ));
    let good = random(&[2, 4, 2], 2);
    let s = sig(good.view(), 2, &opts()).unwrap();
    let mut w = s.clone();
    w[[0, 1]] = f64::NAN;
    // A coefficient, not a point, is named in a row of coefficients.
    let err = sig_backprop(good.view(), s.view(), w.view(), 2, &opts()).unwrap_err();
    match &err {
        Error::NonFiniteValue {
            what: "sig_derivs",
            item,
            index,
            ..
        } => assert_eq!((item.as_slice(), *index), (&[0][..], 1)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("batch item [0], entry 1"), "{err}");
}

#[test]
fn sizes_that_overflow_or_do_not_fit_are_refused() {
    let path = random(&[3, 8], 1);
    assert!(matches!(
        sig(path.view(), 30, &opts()),
        Err(Error::Overflow { .. })
    ));
    assert!(matches!(
        roughsig::sig_length(10, 100, &opts()),
        Err(Error::Overflow { .. })
    ));
    // 8^15 ≈ 3.5e13 coefficients: representable, but far beyond any memory.
    assert!(matches!(
        sig(path.view(), 15, &opts()),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn absurd_degrees_are_refused_before_allocating() {
    use roughsig::{log_sig_length, lyndon_words, sig_length, MAX_DEGREE};
    // Dimension 2 or more: the length overflows, whatever the degree.
    let path = random(&[3, 2], 1);
    assert!(matches!(
        sig(path.view(), usize::MAX, &opts()),
        Err(Error::Overflow { .. })
    ));
    assert!(matches!(
        sig_length(2, usize::MAX, &opts()),
        Err(Error::Overflow { .. })
    ));
    assert!(matches!(
        log_sig_length(2, usize::MAX, &opts()),
        Err(Error::Overflow { .. })
    ));
    // Dimension 1 (length = degree) and 0 (length 0): refused above MAX_DEGREE.
    let line = random(&[3, 1], 1);
    for degree in [usize::MAX, 100_000_000_000, MAX_DEGREE + 1] {
        let err = sig(line.view(), degree, &opts()).unwrap_err();
        assert!(
            matches!(err, Error::Invalid(_)) && err.to_string().contains("degree"),
            "{err}"
        );
        assert!(matches!(
            sig_length(1, degree, &opts()),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            sig_length(0, degree, &opts()),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            log_sig_length(1, degree, &opts()),
            Err(Error::Invalid(_))
        ));
        assert!(lyndon_words(1, degree).is_err());
        let s = ArrayD::<f64>::zeros(IxDyn(&[2, 3]));
        assert!(sig_combine(s.view(), s.view(), 1, degree, &opts()).is_err());
    }
    // The cap itself is fine, and quick for the lengths.
    assert_eq!(sig_length(1, MAX_DEGREE, &opts()).unwrap(), MAX_DEGREE);
    assert_eq!(sig_length(0, MAX_DEGREE, &opts()).unwrap(), 0);
    assert_eq!(log_sig_length(1, MAX_DEGREE, &opts()).unwrap(), 1);
    assert_eq!(lyndon_words(1, MAX_DEGREE).unwrap(), vec![vec![0]]);
}

#[test]
fn lengths_must_match_dimension_and_degree() {
    let path = random(&[2, 5, 3], 1);
    let s = sig(path.view(), 3, &opts()).unwrap();
    // A signature of degree 3 passed as degree 4.
    let err = sig_backprop(path.view(), s.view(), s.view(), 4, &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Length {
                what: "sig",
                got: 39,
                ..
            }
        ),
        "{err}"
    );
    // Derivatives two short.
    let short = s.slice(ndarray::s![.., ..37]).to_owned();
    assert!(matches!(
        sig_backprop(path.view(), s.view(), short.view(), 3, &opts()),
        Err(Error::Length {
            what: "sig_derivs",
            ..
        })
    ));
    // sig_combine: scalar term on one side only, or the wrong dimension.
    let st = sig(path.view(), 3, &opts().scalar_term(true)).unwrap();
    assert!(matches!(
        sig_combine(s.view(), st.view(), 3, 3, &opts()),
        Err(Error::Length { .. })
    ));
    assert!(matches!(
        sig_combine(s.view(), s.view(), 2, 3, &opts()),
        Err(Error::Length { .. })
    ));
    // sig_join: the displacement must have `dimension` channels (not one more).
    let v = random(&[2, 4], 2);
    assert!(matches!(
        sig_join(s.view(), v.view(), 3, 3, false, &opts()),
        Err(Error::Length { .. })
    ));
}

#[test]
fn batch_shapes_must_agree() {
    let path = random(&[2, 5, 3], 1);
    let s = sig(path.view(), 2, &opts()).unwrap();
    let one = s.slice(ndarray::s![..1, ..]).to_owned();
    assert!(matches!(
        sig_backprop(path.view(), s.view(), one.view(), 2, &opts()),
        Err(Error::BatchMismatch { .. })
    ));
    assert!(matches!(
        sig_backprop(path.view(), one.view(), one.view(), 2, &opts()),
        Err(Error::BatchMismatch { .. })
    ));
    assert!(matches!(
        sig_combine(s.view(), one.view(), 3, 2, &opts()),
        Err(Error::BatchMismatch { .. })
    ));
}

#[test]
fn bad_options_are_refused() {
    let path = random(&[5, 3], 1);
    let zero_jobs = opts().n_jobs(0);
    assert!(matches!(
        sig(path.view(), 2, &zero_jobs),
        Err(Error::Invalid(_))
    ));
    let nan_time = opts().time_aug(true).end_time(f64::NAN);
    assert!(matches!(
        sig(path.view(), 2, &nan_time),
        Err(Error::Invalid(_))
    ));
    assert!(matches!("tpu".parse::<Device>(), Err(Error::Invalid(_))));
}

/// Any thread count is safe: absurd ones are clamped, and asking for many different counts does not
/// leave a pool of threads behind for each.
#[cfg(target_os = "linux")]
#[test]
fn thread_counts_are_bounded_and_pools_freed() {
    let alive = || {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
        line["Threads:".len()..].trim().parse::<usize>().unwrap()
    };
    let o = |n_jobs| opts().n_jobs(n_jobs).device(Device::Cpu);
    let path = random(&[100, 5, 2], 3);
    let serial = sig(path.view(), 3, &o(1)).unwrap();
    for n_jobs in 2..=60 {
        assert_eq!(sig(path.view(), 3, &o(n_jobs)).unwrap(), serial);
    }
    let few = random(&[4, 5, 2], 4);
    let serial = sig(few.view(), 3, &o(1)).unwrap();
    for n_jobs in [3000, 100_000, i32::MAX] {
        assert_eq!(sig(few.view(), 3, &o(n_jobs)).unwrap(), serial);
    }
    assert_eq!(
        roughsig::threads(i32::MAX).unwrap(),
        roughsig::max_threads()
    );
    // Replaced pools' threads exit once woken: allow them a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive() > 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(alive() <= 300, "{} threads alive", alive());
}

/// The memory available to this process, as the library reads it (Linux).
fn mem_available() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// A signature whose output fits in memory but whose workspace does not is refused before anything
/// is allocated, naming the sizes; it used to pass the check and abort in the allocator.
#[test]
fn workspaces_count_against_memory() {
    let Some(available) = mem_available() else {
        return;
    };
    // Degree 2 in dimension d: an output of 8·d² bytes about 40 % of what is available, and a
    // workspace (a signature being built, and the top level turned back to rows) larger still.
    let d = (0.4 * available / 8.0).sqrt() as usize;
    let path = ArrayD::<f64>::zeros(IxDyn(&[1, 2, d]));
    let one_thread = SigOptions::default().n_jobs(1).device(Device::Cpu);
    match sig(path.view(), 2, &one_thread) {
        Err(Error::TooLarge { what, bytes, limit }) => {
            assert!(
                what.contains("output") && what.contains("workspace"),
                "{what}"
            );
            assert!(bytes > limit);
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|a| a.len())),
    }
}

/// f32 paths whose degree-2 terms leave f32's range: an error naming the item, not infinities.
#[test]
fn overflowing_results_are_errors() {
    let mut path = ArrayD::<f32>::zeros(IxDyn(&[3, 4, 2]));
    path.slice_mut(ndarray::s![2, 2.., ..]).fill(1e20);
    let cpu = SigOptions::default().device(Device::Cpu);
    assert!(matches!(
        sig(path.view(), 2, &cpu),
        Err(Error::ResultOverflow { ref item, .. }) if item == &[2]
    ));
    // The same path in f64 is fine.
    let path64 = path.mapv(f64::from);
    let s = sig(path64.view(), 2, &cpu).unwrap();
    assert!(s.iter().all(|x| x.is_finite()));
    // Gradients that overflow are refused the same way.
    let small = ndarray::Array3::from_shape_fn((2, 3, 2), |(_, t, _)| t as f32).into_dyn();
    let s = sig(small.view(), 2, &cpu).unwrap();
    let mut derivs = ArrayD::<f32>::zeros(s.raw_dim());
    derivs.slice_mut(ndarray::s![1, ..]).fill(3e38);
    assert!(matches!(
        sig_backprop(small.view(), s.view(), derivs.view(), 2, &cpu),
        Err(Error::ResultOverflow { ref item, .. }) if item == &[1]
    ));
}

/// An end time that f32 cannot hold is refused for f32 paths and accepted for f64.
#[test]
fn end_time_must_fit_the_dtype() {
    let o = SigOptions::default()
        .time_aug(true)
        .end_time(1e39)
        .device(Device::Cpu);
    let path = random(&[4, 2], 3);
    let msg = sig(path.mapv(|x| x as f32).view(), 2, &o)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("end_time") && msg.contains("f32"), "{msg}");
    assert!(sig(path.view(), 2, &o).is_ok());
}

/// Joining or combining signatures over zero letters is refused (it used to reach the step kernels
/// with an empty alphabet and panic).
#[test]
fn zero_dimension_signatures_are_refused() {
    let sigs = ArrayD::<f64>::zeros(IxDyn(&[1]));
    let v = ArrayD::<f64>::zeros(IxDyn(&[0]));
    assert!(matches!(
        sig_join(sigs.view(), v.view(), 0, 1, false, &opts()),
        Err(Error::NotPositive { what: "dimension" })
    ));
    assert!(matches!(
        sig_combine(sigs.view(), sigs.view(), 0, 1, &opts()),
        Err(Error::NotPositive { what: "dimension" })
    ));
}

/// Built without the GPU backend, a GPU request is an error that says so, and `Auto` runs on the
/// CPU whatever the size.
#[cfg(not(feature = "gpu"))]
#[test]
fn without_the_gpu_backend_gpu_requests_are_errors() {
    let paths = random(&[64, 256, 4], 3);
    let gpu = opts().device(Device::Gpu(None));
    match sig(paths.view(), 6, &gpu) {
        Err(Error::Device(msg)) => assert!(msg.contains("`gpu` feature"), "{msg}"),
        other => panic!("expected a device error, got {other:?}"),
    }
    sig(paths.view(), 6, &opts()).unwrap();
    assert!(!roughsig::last_backend().unwrap().is_gpu());
}
