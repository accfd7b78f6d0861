//! Plain-Rust mirrors of the shaders, line by line: the same slots, loops and index arithmetic as the
//! WGSL, one invocation at a time, so that a failing GPU test can be stepped through on the CPU. Tests
//! only; each mirror is checked against the CPU drivers in its own tests.

// The mirrors keep the shaders' spelling (`a = x * b + a`, `t % 2 == 0`, `(n + WG - 1) / WG`,
// element-wise copies) so they read line for line.
#![allow(
    clippy::assign_op_pattern,
    clippy::manual_memcpy,
    clippy::manual_is_multiple_of,
    clippy::manual_div_ceil
)]

pub(crate) mod sig_coef;
pub(crate) mod sig_coef_backprop;
pub(crate) mod sig_kernel_backward;
pub(crate) mod sig_kernel_chain;
pub(crate) mod sig_kernel_forward;
pub(crate) mod sig_kernel_gram;
pub(crate) mod sig_kernel_polynomial;

/// `shaders/common/exp_neg.wgsl`: `e^x` for `x ≤ 0` (`scalar` is `f64`).
fn exp_neg(x: f64) -> f64 {
    if x < -740.0 {
        return 0.0;
    }
    let k = (x * std::f64::consts::LOG2_E + 0.5).floor();
    let r = (x - k * 0.693145751953125) - k * 1.4286068203094173e-6;
    let mut p: f64 = 1.0;
    let mut i = 13u32;
    while i >= 1 {
        p = 1.0 + r * p / i as f64;
        i -= 1;
    }
    // ldexp(p, k), in two halves so that neither power leaves f64's range.
    let k = k as i32;
    p * 2f64.powi(k / 2) * 2f64.powi(k - k / 2)
}

/// `shaders/common/point_kernel.wgsl`'s `ln_pos`: `ln x` for `x > 0`.
fn ln_pos(x: f64) -> f64 {
    let mut m = x;
    let mut e: f64 = 0.0;
    for _ in 0..9 {
        let k = ((m as f32).clamp(1e-30, 1e30).log2() + 0.5).floor();
        m = m * 2f64.powi(-(k as i32));
        e = e + k as f64;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p: f64 = 1.0 / 23.0;
    let mut j = 11u32;
    while j >= 1 {
        p = 1.0 / (2 * j - 1) as f64 + s2 * p;
        j -= 1;
    }
    (e * 0.693145751953125 + 2.0 * s * p) + e * 1.4286068203094173e-6
}

/// `point_kernel.wgsl`'s `exp_any`: `e^x` for any `x`.
fn exp_any(x: f64) -> f64 {
    if x <= 0.0 {
        return exp_neg(x);
    }
    1.0 / exp_neg(-x)
}

/// `point_kernel.wgsl`'s `power`: `b^y` for `b > 0` or integer `y`.
fn power(b: f64, y: f64) -> f64 {
    if y == 0.0 {
        return 1.0;
    }
    if b == 0.0 {
        return 0.0;
    }
    let v = exp_any(y * ln_pos(b.abs()));
    if b < 0.0 && y - 2.0 * (y * 0.5).floor() == 1.0 {
        return -v;
    }
    v
}

/// The rows and constants `point_kernel.wgsl` reads.
pub(crate) struct PointRows<'a> {
    pub params: crate::gpu::kernels::GramParams,
    pub side_a: &'a [f64],
    pub side_b: &'a [f64],
    pub consts: &'a [f64],
}

impl PointRows<'_> {
    /// `pairs.wgsl`'s `base_gram`: `G[a, b]` of pair `pair`.
    pub(crate) fn base_gram(&self, pairs: &[u32], pair: u32, a: u32, b: u32) -> f64 {
        if self.params.kind == 0 {
            return self.bilinear_gram(pairs, pair, a, b);
        }
        let (pa, pb) = self.point_rows(pairs, pair);
        let kappa = |i: u32, j: u32| self.kernel_at(pa, i, pb, j).0;
        (kappa(a + 1, b + 1) - kappa(a + 1, b)) - (kappa(a, b + 1) - kappa(a, b))
    }

    /// `pairs.wgsl`'s `bilinear_gram`.
    pub(crate) fn bilinear_gram(&self, pairs: &[u32], pair: u32, a: u32, b: u32) -> f64 {
        let p = self.params;
        let d = p.dim;
        let pa = pairs[(2 * pair) as usize] * p.n1 * d;
        let pb = pairs[(2 * pair + 1) as usize] * p.n2 * d;
        let mut g: f64 = 0.0;
        for c in 0..d {
            g = g + self.side_a[(pa + a * d + c) as usize] * self.side_b[(pb + b * d + c) as usize];
        }
        g * self.consts[0]
    }

    /// `pairs.wgsl`'s `point_rows`.
    pub(crate) fn point_rows(&self, pairs: &[u32], pair: u32) -> (u32, u32) {
        let (p, d) = (self.params, self.params.dim);
        (
            pairs[(2 * pair) as usize] * (p.n1 + 1) * d,
            pairs[(2 * pair + 1) as usize] * (p.n2 + 1) * d,
        )
    }

    /// `point_kernel.wgsl`'s `kernel_at`: `(κ, h)`.
    pub(crate) fn kernel_at(&self, pa: u32, i: u32, pb: u32, j: u32) -> (f64, f64) {
        let d = self.params.dim;
        let c0 = self.consts[0];
        let a = |c: u32| self.side_a[(pa + i * d + c) as usize];
        let b = |c: u32| self.side_b[(pb + j * d + c) as usize];
        if self.params.point_kernel == 5 {
            let mut base = self.consts[1];
            for c in 0..d {
                base = base + a(c) * b(c);
            }
            if c0 == 0.0 {
                return (self.consts[2], 0.0);
            }
            if self.consts[3] != 0.0 && base <= 0.0 {
                return (0.0, 0.0);
            }
            let below = power(base, c0 - 1.0);
            return (self.consts[2] * below * base, self.consts[2] * c0 * below);
        }
        let mut r2: f64 = 0.0;
        for c in 0..d {
            let diff = a(c) - b(c);
            r2 = r2 + diff * diff;
        }
        match self.params.point_kernel {
            0 => {
                let k = exp_neg(-r2 * c0);
                (k, -2.0 * c0 * k)
            }
            1 => {
                let r = r2.sqrt();
                let k = exp_neg(-r * c0);
                let mut h = 0.0;
                if r > 0.0 {
                    h = -c0 * k / r;
                }
                (k, h)
            }
            2 => {
                let u = c0 * r2.sqrt();
                let e = exp_neg(-u);
                ((1.0 + u) * e, -c0 * c0 * e)
            }
            3 => {
                let u = c0 * r2.sqrt();
                let e = exp_neg(-u);
                let k = (1.0 + u + u * u / 3.0) * e;
                (k, -c0 * c0 / 3.0 * (1.0 + u) * e)
            }
            _ => {
                let b = 1.0 + r2 * c0;
                let k = exp_any(-self.consts[1] * ln_pos(b));
                (k, -2.0 * self.consts[1] * c0 * k / b)
            }
        }
    }
}

/// Where an invocation of the PDE kernels' sweeps keeps its pair's diagonals in workgroup memory:
/// `diag_base` and `span` (the band's rows there) of shaders/common/bands.wgsl, which
/// sig_kernel_forward.wgsl and sig_kernel_backward.wgsl share.
#[derive(Clone, Copy)]
pub(crate) struct Slots {
    diag_base: u32,
    span: u32,
}

impl Slots {
    /// `enter_slots(lid)`: invocation `lid` of a workgroup whose pairs have `span` (WG / pack)
    /// invocations each.
    pub(crate) fn new(lid: u32, span: u32) -> Slots {
        Slots {
            diag_base: lid / span * 3 * span,
            span,
        }
    }

    /// `near(t, l)`: diagonal t of the band's row b0 + l.
    pub(crate) fn near(self, t: u32, l: u32) -> usize {
        (self.diag_base + (t % 3) * self.span + l) as usize
    }
}

/// Uniform values in [−0.5, 0.5) from `seed` (xorshift64), for tests: reproducible without a crate.
#[cfg(test)]
pub(crate) fn uniform(mut seed: u64) -> impl FnMut() -> f64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 52) as f64 - 0.5
    }
}

/// Pairs of random transformed paths for the mirrors of the kernels over pairs: each static-kernel
/// family with and without the transforms, two sides of 3 and 2 paths, pairs mixing them.
#[cfg(test)]
pub(crate) struct PairsCase {
    pub opts: crate::SigKernelOptions,
    pub dim: usize,
    pub lengths: (usize, usize),
    /// The original paths of each side, laid end to end.
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    /// Their transformed rows, as the kernels read them.
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    pub pairs: Vec<(usize, usize)>,
    pub index: Vec<u32>,
    pub params: crate::gpu::kernels::GramParams,
    pub consts: [f64; 4],
}

#[cfg(test)]
impl PairsCase {
    pub(crate) fn all(seed: u64) -> Vec<PairsCase> {
        use crate::sig_kernel::testing::lifted_rows;
        use crate::StaticKernel;
        let mut rand = uniform(seed);
        let kernels = [
            (StaticKernel::Linear, false, false),
            (StaticKernel::ScaledLinear { scale: 1.7 }, true, true),
            (StaticKernel::Rbf { sigma: 0.3 }, false, true),
            (StaticKernel::Rbf { sigma: 2.0 }, true, false),
            (StaticKernel::Matern12 { sigma: 0.7 }, false, false),
            (StaticKernel::Matern32 { sigma: 1.3 }, true, false),
            (StaticKernel::Matern52 { sigma: 0.9 }, false, true),
            (
                StaticKernel::RationalQuadratic {
                    sigma: 0.8,
                    alpha: 1.7,
                },
                true,
                true,
            ),
            (
                StaticKernel::Polynomial {
                    degree: 3.0,
                    gamma: 0.5,
                    scale: 1.2,
                },
                false,
                false,
            ),
            (
                StaticKernel::Polynomial {
                    degree: 2.5,
                    gamma: 1.0,
                    scale: 0.7,
                },
                true,
                false,
            ),
        ];
        kernels
            .into_iter()
            .map(|(kernel, time_aug, lead_lag)| {
                let opts = crate::SigKernelOptions::default()
                    .static_kernel(kernel.clone())
                    .time_aug(time_aug)
                    .lead_lag(lead_lag);
                let (dim, l1, l2) = (2, 6, 9);
                let xs: Vec<f64> = (0..3 * l1 * dim).map(|_| rand()).collect();
                let ys: Vec<f64> = (0..2 * l2 * dim).map(|_| rand()).collect();
                let (a, n1, aug) = lifted_rows(&opts, &xs, l1, dim);
                let (b, n2, _) = lifted_rows(&opts, &ys, l2, dim);
                let pairs = vec![(2, 0), (0, 1), (1, 1)];
                let index = pairs
                    .iter()
                    .flat_map(|&(p, q)| [p as u32, q as u32])
                    .collect();
                let (kind, point_kernel, consts) =
                    match crate::sig_kernel::point_kernel::Point::<f64>::new(&kernel) {
                        Some(point) => {
                            let (k, consts) = point.gpu_constants();
                            (1, k, consts)
                        }
                        None => match kernel {
                            StaticKernel::ScaledLinear { scale: s } => {
                                (0, 0, [s * s, 0.0, 0.0, 0.0])
                            }
                            _ => (0, 0, [1.0, 0.0, 0.0, 0.0]),
                        },
                    };
                PairsCase {
                    opts,
                    dim,
                    lengths: (l1, l2),
                    xs,
                    ys,
                    a,
                    b,
                    params: crate::gpu::kernels::GramParams {
                        n_pairs: pairs.len() as u32,
                        n1: n1 as u32,
                        n2: n2 as u32,
                        dim: aug as u32,
                        kind,
                        point_kernel,
                        ..Default::default()
                    },
                    pairs,
                    index,
                    consts,
                }
            })
            .collect()
    }

    /// The original paths of pair `k`.
    pub(crate) fn paths(&self, k: usize) -> (&[f64], &[f64]) {
        let ((p, q), (l1, l2), d) = (self.pairs[k], self.lengths, self.dim);
        (
            &self.xs[p * l1 * d..(p + 1) * l1 * d],
            &self.ys[q * l2 * d..(q + 1) * l2 * d],
        )
    }
}

#[cfg(test)]
mod tests {
    /// The mirror's `exp_neg` against `f64::exp` down to f64's smallest normal numbers.
    #[test]
    fn exp_neg_matches_exp() {
        for i in 0..=1910 {
            let x = -(i as f64) * 0.37;
            let (got, want) = (super::exp_neg(x), x.exp());
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want,
                "{x}: {got} vs {want}"
            );
        }
    }
}
