//! The public API under arbitrary input: shapes (empty axes included), strides (reversed, stepped and
//! transposed views), values (NaN, infinities, huge and subnormal numbers), options (any end time,
//! any `n_jobs`, absurd degrees) and dtypes. Every call returns a typed error or a result of the
//! right shape whose values are finite; nothing panics. Cases per property: `PROPTEST_CASES`
//! (64 by default, which `cargo test` runs); failures are kept in `proptest-regressions/` and
//! replayed first.

use ndarray::{ArrayD, Axis, IxDyn, Slice};
use proptest::prelude::*;
use roughsig::{
    log_sig, log_sig_backprop, log_sig_corrected, sig, sig_backprop, sig_combine, sig_corrected,
    sig_corrected_backprop, sig_join, sig_kernel, sig_kernel_backprop, sig_kernel_gram,
    sig_to_log_sig, transform_path, Device, Error, KernelSolver, LogSigMethod, SigKernelOptions,
    SigOptions, StaticKernel,
};

/// A value: mostly ordinary, sometimes one that breaks naive code.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -3.0f64..3.0,
        1 => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e300),
            Just(-1e200),
            Just(1e30),
            Just(5e-324),
            Just(0.0),
        ],
    ]
}

/// A degree: small ones that run, and absurd ones that must be refused before anything is allocated.
fn degree() -> impl Strategy<Value = usize> {
    prop_oneof![
        9 => 0usize..6,
        1 => prop_oneof![Just(64usize), Just(1 << 20), Just(1 << 40), Just(usize::MAX)],
    ]
}

fn options() -> impl Strategy<Value = SigOptions> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            4 => 0.1f64..10.0,
            1 => prop_oneof![
                Just(0.0),
                Just(-2.0),
                Just(1e39),
                Just(f64::NAN),
                Just(f64::INFINITY)
            ],
        ],
        prop_oneof![
            4 => -2i32..5,
            1 => prop_oneof![Just(0i32), Just(-1000), Just(100_000), Just(i32::MAX), Just(i32::MIN)],
        ],
    )
        .prop_map(|(time_aug, lead_lag, scalar_term, end_time, n_jobs)| SigOptions::default().time_aug(time_aug).lead_lag(lead_lag).scalar_term(scalar_term).end_time(end_time).n_jobs(n_jobs).device(Device::Cpu))
}

/// Signature-kernel options: small dyadic orders that run and absurd ones that must be refused, every
/// static kernel with ordinary and broken parameters, every flag (`normalize` with `return_grid`
/// included, which is refused), and the signature options' end times and thread counts.
fn kernel_options() -> impl Strategy<Value = SigKernelOptions> {
    let order =
        prop_oneof![4 => 0usize..3, 1 => prop_oneof![Just(40usize), Just(63), Just(usize::MAX)]];
    let parameter = prop_oneof![
        4 => 0.1f64..3.0,
        1 => prop_oneof![Just(0.0), Just(-1.0), Just(f64::NAN), Just(f64::INFINITY), Just(1e-300)],
    ];
    let kernel = (0u8..8, parameter.clone(), parameter).prop_map(|(k, p, q)| match k {
        0 => StaticKernel::Linear,
        1 => StaticKernel::ScaledLinear { scale: p },
        2 => StaticKernel::Rbf { sigma: p },
        3 => StaticKernel::Polynomial {
            degree: p,
            gamma: q - 1.0,
            scale: q,
        },
        4 => StaticKernel::Matern12 { sigma: p },
        5 => StaticKernel::Matern32 { sigma: p },
        6 => StaticKernel::Matern52 { sigma: p },
        _ => StaticKernel::RationalQuadratic { sigma: p, alpha: q },
    });
    // Finite differences mostly; the polynomial solver with orders in range and out of it.
    let solver = prop_oneof![
        3 => Just(KernelSolver::FiniteDifference),
        1 => prop_oneof![0usize..4, Just(8), Just(65)].prop_map(|order| KernelSolver::Polynomial { order }),
    ];
    (
        order.clone(),
        order,
        kernel,
        solver,
        any::<[bool; 4]>(),
        options(),
    )
        .prop_map(
            |(l1, l2, static_kernel, solver, [time_aug, lead_lag, normalize, return_grid], o)| {
                SigKernelOptions::default()
                    .dyadic_order((l1, l2))
                    .solver(solver)
                    .static_kernel(static_kernel.clone())
                    .time_aug(time_aug)
                    .lead_lag(lead_lag)
                    .end_time(o.transform.end_time)
                    .normalize(normalize)
                    .return_grid(return_grid)
                    .n_jobs(o.exec.n_jobs)
                    .device(Device::Cpu)
            },
        )
}

/// An array of `shape` with arbitrary values, seen through a view that is contiguous, reversed
/// along an axis, stepped along an axis or with its last two axes swapped.
#[derive(Debug, Clone)]
struct Input {
    data: ArrayD<f64>,
    view: u8,
}

impl Input {
    fn view(&self) -> ndarray::ArrayViewD<'_, f64> {
        let mut v = self.data.view();
        let nd = v.ndim();
        match self.view % 4 {
            1 if nd > 0 => v.invert_axis(Axis(0)),
            2 if nd > 0 => v.slice_axis_inplace(Axis(nd - 1), Slice::new(0, None, 2)),
            3 if nd > 1 => v.swap_axes(nd - 1, nd - 2),
            _ => {}
        }
        v
    }
}

fn input(max_rank: usize) -> impl Strategy<Value = Input> {
    (
        proptest::collection::vec(0usize..5, 0..=max_rank),
        any::<u8>(),
    )
        .prop_flat_map(|(shape, view)| {
            let len = shape.iter().product::<usize>();
            (
                proptest::collection::vec(value(), len),
                Just(shape),
                Just(view),
            )
        })
        .prop_map(|(values, shape, view)| Input {
            data: ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap(),
            view,
        })
}

/// A result is a typed error, or finite values: inputs with NaN or infinity are refused, and finite
/// inputs that overflow are refused as `ResultOverflow`.
fn check(what: &str, result: roughsig::Result<ArrayD<f64>>) -> Option<ArrayD<f64>> {
    match result {
        Ok(a) => {
            assert!(
                a.iter().all(|x| x.is_finite()),
                "{what}: non-finite values in Ok"
            );
            Some(a)
        }
        Err(e) => {
            // Every error renders as one line.
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'), "{what}: {msg:?}");
            None
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn fuzz_sig_and_gradient(x in input(4), degree in degree(), o in options(), seed in any::<u64>()) {
        let path = x.view();
        if let Some(s) = check("sig", sig(path.view(), degree, &o)) {
            let shape = path.shape();
            let batch = &shape[..shape.len() - 2];
            prop_assert_eq!(&s.shape()[..s.ndim() - 1], batch);
            let derivs = crate::common::random(s.shape(), seed);
            if let Some(g) = check("sig_backprop", sig_backprop(path.view(), s.view(), derivs.view(), degree, &o)) {
                prop_assert_eq!(g.shape(), path.shape());
            }
            let f32_path = path.mapv(|v| v as f32);
            match sig(f32_path.view(), degree, &o) {
                Ok(s) => prop_assert!(s.iter().all(|v| v.is_finite())),
                Err(e) => prop_assert!(!e.to_string().contains('\n')),
            }
        }
    }

    #[test]
    fn fuzz_corrections(x in input(4), c in input(3), degree in degree(), o in options(), seed in any::<u64>()) {
        let (path, c) = (x.view(), c.view());
        if let Some(s) = check("sig_corrected", sig_corrected(path.view(), c.view(), degree, &o)) {
            let derivs = crate::common::random(s.shape(), seed);
            let g = sig_corrected_backprop(path.view(), c.view(), s.view(), derivs.view(), degree, &o);
            if let Some(g) = check("sig_corrected_backprop", g) {
                prop_assert_eq!(g.shape(), path.shape());
            }
        }
        check("log_sig_corrected", log_sig_corrected(path.view(), c.view(), degree, LogSigMethod::Lyndon, &o));
    }

    #[test]
    fn fuzz_log_sig_and_transforms(x in input(3), degree in degree(), o in options(), method in 0u8..4, seed in any::<u64>()) {
        let method = [LogSigMethod::Expanded, LogSigMethod::Words, LogSigMethod::Lyndon, LogSigMethod::Bch][method as usize];
        let path = x.view();
        if let Some(l) = check("log_sig", log_sig(path.view(), degree, method, &o)) {
            let derivs = crate::common::random(l.shape(), seed);
            let g = log_sig_backprop(path.view(), derivs.view(), degree, method, &o);
            if let Some(g) = check("log_sig_backprop", g) {
                prop_assert_eq!(g.shape(), path.shape());
            }
        }
        check("transform_path", transform_path(path.view(), &o));
    }

    #[test]
    fn fuzz_signature_arithmetic(
        a in input(3),
        b in input(3),
        dim in prop_oneof![4 => 0usize..4, 1 => Just(usize::MAX)],
        degree in degree(),
        o in options(),
        method in 0u8..3,
    ) {
        let method = [LogSigMethod::Expanded, LogSigMethod::Words, LogSigMethod::Lyndon][method as usize];
        check("sig_combine", sig_combine(a.view(), b.view(), dim, degree, &o));
        check("sig_join", sig_join(a.view(), b.view(), dim, degree, o.transform.time_aug, &o));
        check("sig_to_log_sig", sig_to_log_sig(a.view(), dim, degree, method, &o));
    }

    #[test]
    fn fuzz_signature_kernels(x in input(3), y in input(3), o in kernel_options(), seed in any::<u64>()) {
        let (x, y) = (x.view(), y.view());
        if let Some(k) = check("sig_kernel", sig_kernel(x.view(), y.view(), &o)) {
            let derivs = crate::common::random(k.shape(), seed);
            match sig_kernel_backprop(derivs.view(), x.view(), y.view(), &o) {
                Ok((dx, dy)) => {
                    prop_assert_eq!(dx.shape(), x.shape());
                    prop_assert_eq!(dy.shape(), y.shape());
                    prop_assert!(dx.iter().chain(dy.iter()).all(|v| v.is_finite()));
                }
                Err(e) => prop_assert!(!e.to_string().contains('\n')),
            }
        }
        check("sig_kernel_gram", sig_kernel_gram(x.view(), y.view(), &o));
    }
}

/// The regressions the fuzzer's areas were opened for stay errors.
#[test]
fn absurd_requests_are_typed_errors() {
    let path = crate::common::random(&[2, 3, 2], 1);
    let o = SigOptions::default().n_jobs(i32::MAX).device(Device::Cpu);
    // `n_jobs` far beyond the cores is clamped, not a thread per job.
    assert!(sig(path.view(), 2, &o).is_ok());
    assert!(matches!(
        sig(path.view(), usize::MAX, &o),
        Err(Error::Overflow { .. })
    ));
}
