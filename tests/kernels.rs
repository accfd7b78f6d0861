//! Every CPU kernel plan against one plain reference.
//!
//! For each instruction set this machine has × step layout × lead-lag step × f32 and f64, and for
//! dimensions 1–9, 12, 16, 17 × every flag combination × batches that take the row, lane and split
//! strategies, `sig` and `sig_backprop` are compared with signatures computed here by multiplying
//! out the exponentials of the increments, and gradients by the product rule on that product.
//!
//! Forcing a plan is process-wide, so these cases live in their own test binary and run in one test,
//! one plan at a time.

use roughsig::cpu_plan::{self, Batch, Force, Isa, LeadLagStep, Plan, StepLayout};
use roughsig::ndarray::{Array3, ArrayD, Axis, IxDyn};
use roughsig::SigOptions;
use roughsig::{sig, sig_backprop, transform_path, transform_path_backprop, Device, Scalar};

/// A truncated tensor series, level 0 first; level `m` holds `d^m` coefficients, words in
/// lexicographic order (first letter slowest).
type Series = Vec<Vec<f64>>;

/// The truncated product `a ⊗ b`.
fn mul(a: &Series, b: &Series) -> Series {
    (0..a.len())
        .map(|m| {
            let mut c = vec![0.0; a[m].len()];
            for i in 0..=m {
                let right = b[m - i].len();
                for (x, &ax) in a[i].iter().enumerate() {
                    for (y, &by) in b[m - i].iter().enumerate() {
                        c[x * right + y] += ax * by;
                    }
                }
            }
            c
        })
        .collect()
}

/// `x ⊗ v` for a level `x` and a vector `v`.
fn outer(x: &[f64], v: &[f64]) -> Vec<f64> {
    x.iter()
        .flat_map(|&a| v.iter().map(move |&b| a * b))
        .collect()
}

/// `exp(v)` truncated at `degree`: level `m` is `v^{⊗m} / m!`.
fn exp(v: &[f64], degree: usize) -> Series {
    let mut e = vec![vec![1.0]];
    for m in 1..=degree {
        let level = outer(&e[m - 1], v).iter().map(|x| x / m as f64).collect();
        e.push(level);
    }
    e
}

/// The derivative of `exp(v)` in `v[c]`, by the product rule on `E_m = E_{m-1} ⊗ v / m`.
fn exp_deriv(v: &[f64], c: usize, degree: usize) -> Series {
    let e = exp(v, degree);
    let unit: Vec<f64> = (0..v.len()).map(|i| (i == c) as u8 as f64).collect();
    let mut de = vec![vec![0.0]];
    for m in 1..=degree {
        let a = outer(&de[m - 1], v);
        let b = outer(&e[m - 1], &unit);
        de.push(a.iter().zip(&b).map(|(a, b)| (a + b) / m as f64).collect());
    }
    de
}

fn one(d: usize, degree: usize) -> Series {
    (0..=degree)
        .map(|m| {
            let mut l = vec![0.0; d.pow(m as u32)];
            l[0] = (m == 0) as u8 as f64;
            l
        })
        .collect()
}

/// The increments of one path (`points` rows of `d`).
fn increments(path: &[f64], d: usize) -> Vec<Vec<f64>> {
    path.chunks(d)
        .zip(path.chunks(d).skip(1))
        .map(|(a, b)| b.iter().zip(a).map(|(b, a)| b - a).collect())
        .collect()
}

/// The signature of one path: the product of its increments' exponentials.
fn sig_ref(path: &[f64], d: usize, degree: usize) -> Series {
    increments(path, d)
        .iter()
        .fold(one(d, degree), |s, v| mul(&s, &exp(v, degree)))
}

/// The gradient of `<g, sig(path)>` in the path: the increment `k`'s derivative in channel `c`
/// is `<g, P_k ⊗ ∂_c exp(v_k) ⊗ Q_k>`, `P_k` and `Q_k` the products before and after it.
fn sig_backprop_ref(path: &[f64], d: usize, degree: usize, g: &Series) -> Vec<f64> {
    let inc = increments(path, d);
    let exps: Vec<Series> = inc.iter().map(|v| exp(v, degree)).collect();
    let mut before = vec![one(d, degree)];
    for e in &exps {
        before.push(mul(before.last().unwrap(), e));
    }
    let mut after = vec![one(d, degree)];
    for e in exps.iter().rev() {
        after.push(mul(e, after.last().unwrap()));
    }
    after.reverse();
    let dot = |a: &Series, b: &Series| -> f64 {
        a.iter()
            .zip(b)
            .flat_map(|(a, b)| a.iter().zip(b))
            .map(|(a, b)| a * b)
            .sum()
    };
    let mut grad = vec![0.0; path.len()];
    for (k, v) in inc.iter().enumerate() {
        for c in 0..d {
            let term = mul(&mul(&before[k], &exp_deriv(v, c, degree)), &after[k + 1]);
            let dv = dot(g, &term);
            grad[(k + 1) * d + c] += dv;
            grad[k * d + c] -= dv;
        }
    }
    grad
}

/// A small deterministic generator (the reference must not depend on a crate's stream).
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Which batch strategy a case is built to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Strategy {
    Rows,
    Lanes,
    Split,
}

/// One shape and flag combination, with its reference results (f64).
struct Case {
    degree: usize,
    opts: SigOptions,
    paths: Array3<f64>,
    derivs: ArrayD<f64>,
    sigs: ArrayD<f64>,
    grads: ArrayD<f64>,
}

/// The split strategy's shortest piece, in increments, for signatures of `len` coefficients (as
/// the library cuts paths: at least 256 steps and 2^15 coefficient-steps).
fn min_piece(len: usize) -> usize {
    256.max((1 << 15) / len)
}

fn transformed_dim(d: usize, opts: &SigOptions) -> usize {
    (d << opts.transform.lead_lag as u32) + opts.transform.time_aug as usize
}

/// The number of coefficients of a signature of dimension `d` truncated at `degree` (no level 0).
fn sig_length(d: usize, degree: usize) -> usize {
    (1..=degree).map(|m| d.pow(m as u32)).sum()
}

/// The largest degree (at most `max`, at least 1) whose signature has at most `len` coefficients.
fn degree_within(d: usize, len: usize, max: usize) -> usize {
    (1..=max)
        .take_while(|&n| sig_length(d, n) <= len)
        .last()
        .unwrap_or(1)
}

impl Case {
    fn new(strategy: Strategy, d: usize, flags: u8, seed: u64) -> Case {
        let opts = SigOptions::default()
            .time_aug(flags & 1 != 0)
            .lead_lag(flags & 2 != 0)
            .scalar_term(flags & 4 != 0)
            .end_time(1.5)
            .device(Device::Cpu)
            .n_jobs(2);
        let dt = transformed_dim(d, &opts);
        // Lane groups hold 8 (f64) or 16 (f32) signatures within 16 KiB; the others go to the
        // top of the size range the kernels are tuned for, or a smaller one where the reference's
        // cost grows with the length of a split path.
        let (degree, batch) = match strategy {
            Strategy::Rows => (degree_within(dt, 6000, 8), 3),
            Strategy::Lanes => (degree_within(dt, 256, 8), 19),
            Strategy::Split => (degree_within(dt, 400, 6), 1),
        };
        let increments = match strategy {
            Strategy::Split => 2 * min_piece(sig_length(dt, degree)) + 7,
            _ => 6,
        };
        let points = if opts.transform.lead_lag {
            increments.div_ceil(2) + 1
        } else {
            increments + 1
        };
        let mut rng = Lcg(seed);
        let scale = 1.5 / (points as f64).sqrt();
        let paths = Array3::from_shape_fn((batch, points, d), |_| scale * rng.uniform());
        let t = transform_path(paths.view(), &opts).unwrap();
        let (len, st) = (sig_length(dt, degree), opts.scalar_term as usize);
        let derivs = ArrayD::from_shape_fn(IxDyn(&[batch, len + st]), |_| rng.uniform());
        let mut sigs = ArrayD::zeros(IxDyn(&[batch, len + st]));
        let mut tgrads = ArrayD::zeros(t.raw_dim());
        for b in 0..batch {
            let path: Vec<f64> = t.index_axis(Axis(0), b).iter().copied().collect();
            let s = sig_ref(&path, dt, degree);
            let flat: Vec<f64> = s.iter().skip(1 - st).flatten().copied().collect();
            sigs.index_axis_mut(Axis(0), b).assign(&ndarray_row(&flat));
            let row = derivs.index_axis(Axis(0), b);
            let mut g: Series = vec![vec![0.0]];
            let mut at = 0;
            if st == 1 {
                g[0][0] = row[0];
                at = 1;
            }
            for m in 1..=degree {
                let n = dt.pow(m as u32);
                g.push(row.iter().skip(at).take(n).copied().collect());
                at += n;
            }
            let grad = sig_backprop_ref(&path, dt, degree, &g);
            let mut dst = tgrads.index_axis_mut(Axis(0), b);
            for (dst, src) in dst.iter_mut().zip(grad) {
                *dst = src;
            }
        }
        let grads = transform_path_backprop(tgrads.view(), &opts).unwrap();
        Case {
            degree,
            opts,
            paths,
            derivs,
            sigs,
            grads,
        }
    }

    /// Run the case in dtype `T` under the current plan; return the plan it ran with.
    fn check<T: Scalar>(&self, tol: f64, what: &dyn Fn() -> String) -> Plan {
        let cast = |a: &ArrayD<f64>| a.mapv(T::from_f64);
        let paths = cast(&self.paths.clone().into_dyn());
        let s = sig(paths.view(), self.degree, &self.opts).unwrap();
        let plan = cpu_plan::last_plan().expect("a CPU call records its plan");
        assert_close(&s, &self.sigs, tol, &|| format!("sig {}", what()));
        let backward = sig_backprop(
            paths.view(),
            s.view(),
            cast(&self.derivs).view(),
            self.degree,
            &self.opts,
        )
        .unwrap();
        let back_plan = cpu_plan::last_plan().unwrap();
        assert_close(&backward, &self.grads, tol, &|| {
            format!("sig_backprop {}", what())
        });
        assert_eq!(
            std::mem::discriminant(&plan.batch),
            std::mem::discriminant(&back_plan.batch),
            "forward and backward share out the batch alike: {}",
            what()
        );
        plan
    }
}

fn ndarray_row(v: &[f64]) -> roughsig::ndarray::ArrayView1<'_, f64> {
    roughsig::ndarray::ArrayView1::from(v)
}

/// `got` within `tol` of `want`, relative to the largest coefficient of `want` (at least 1).
fn assert_close<T: Scalar>(
    got: &ArrayD<T>,
    want: &ArrayD<f64>,
    tol: f64,
    what: &dyn Fn() -> String,
) {
    assert_eq!(got.shape(), want.shape(), "{}", what());
    let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (Scalar::to_f64(*g) - w).abs();
        assert!(
            err <= tol * scale,
            "{}: coefficient {i}: {} vs {w} (scale {scale})",
            what(),
            Scalar::to_f64(*g)
        );
    }
}

#[test]
fn every_plan_matches_the_reference() {
    let isas = cpu_plan::available_isas();
    assert_eq!(isas[0], Isa::Baseline, "the baseline runs everywhere");
    let dims = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17];
    let mut seen = std::collections::HashSet::new();
    let mut seed = 1;
    for strategy in [Strategy::Rows, Strategy::Lanes, Strategy::Split] {
        for d in dims {
            for flags in 0..8u8 {
                seed += 1;
                let case = Case::new(strategy, d, flags, seed);
                let lead_lags: &[Option<LeadLagStep>] = if case.opts.transform.lead_lag {
                    &[Some(LeadLagStep::Dense), Some(LeadLagStep::Compact)]
                } else {
                    &[None]
                };
                for &isa in &isas {
                    for layout in [StepLayout::Rows, StepLayout::Reversed] {
                        for &lead_lag in lead_lags {
                            cpu_plan::force(Force {
                                isa: Some(isa),
                                layout: Some(layout),
                                lead_lag,
                            });
                            let what = || {
                                format!(
                                    "{strategy:?} d={d} degree={} flags={flags:03b} {isa:?} {layout:?} {lead_lag:?}",
                                    case.degree
                                )
                            };
                            for plan in [
                                case.check::<f64>(1e-10, &|| format!("f64 {}", what())),
                                case.check::<f32>(2e-4, &|| format!("f32 {}", what())),
                            ] {
                                assert_eq!(plan.isa, isa, "{}", what());
                                assert_eq!(plan.layout, layout, "{}", what());
                                let ll = lead_lag.unwrap_or(LeadLagStep::Dense);
                                assert_eq!(plan.lead_lag, ll, "{}", what());
                                let batch = match plan.batch {
                                    Batch::Rows => Strategy::Rows,
                                    Batch::Lanes(_) => Strategy::Lanes,
                                    Batch::Split(_) => Strategy::Split,
                                };
                                assert_eq!(batch, strategy, "{}", what());
                                seen.insert((isa, layout, ll, strategy));
                            }
                        }
                    }
                }
            }
        }
    }
    cpu_plan::force(Force::default());
    // Every part of the plan space was reached (lead-lag steps only matter for lead-lag paths,
    // which every strategy has).
    assert_eq!(seen.len(), isas.len() * 2 * 2 * 3);
}

#[test]
fn the_reference_is_exact_on_a_straight_line() {
    // Points along one direction, unevenly spaced: the signature is exp of the whole increment.
    let dir = [0.3, -0.7, 0.2];
    let path: Vec<f64> = [0.0, 0.1, 0.45, 0.5, 1.0]
        .iter()
        .flat_map(|&t| dir.iter().map(move |&v| t * v))
        .collect();
    let (got, want) = (sig_ref(&path, 3, 5), exp(&dir, 5));
    for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
        assert!((g - w).abs() < 1e-14, "{g} vs {w}");
    }
}

#[test]
fn the_reference_gradient_matches_finite_differences() {
    let (d, degree) = (2, 4);
    let mut rng = Lcg(7);
    let path: Vec<f64> = (0..4 * d).map(|_| rng.uniform()).collect();
    let g: Series = exp(&[0.0; 2], degree)
        .iter()
        .map(|l| l.iter().map(|_| rng.uniform()).collect())
        .collect();
    let value = |p: &[f64]| -> f64 {
        let s = sig_ref(p, d, degree);
        s.iter()
            .flatten()
            .zip(g.iter().flatten())
            .map(|(a, b)| a * b)
            .sum()
    };
    let grad = sig_backprop_ref(&path, d, degree, &g);
    let h = 1e-6;
    for i in 0..path.len() {
        let (mut up, mut down) = (path.clone(), path.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (value(&up) - value(&down)) / (2.0 * h);
        assert!(
            (fd - grad[i]).abs() < 1e-7,
            "point value {i}: {fd} vs {}",
            grad[i]
        );
    }
}
