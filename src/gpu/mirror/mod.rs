//! Plain-Rust mirrors of the shaders, line by line: the same slots, loops and index arithmetic as the
//! WGSL, one invocation at a time, so that a failing GPU test can be stepped through on the CPU. Tests
//! only; each mirror is checked against the CPU drivers in its own tests.

// The mirrors keep the shaders' spelling (`a = x * b + a`, `t % 2 == 0`, `(n + WG - 1) / WG`) so
// they read line for line.
#![allow(
    clippy::assign_op_pattern,
    clippy::manual_is_multiple_of,
    clippy::manual_div_ceil
)]

pub(crate) mod sig_kernel_backward;
pub(crate) mod sig_kernel_chain;
pub(crate) mod sig_kernel_forward;
pub(crate) mod sig_kernel_gram;

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
    pub consts: [f64; 1],
}

#[cfg(test)]
impl PairsCase {
    pub(crate) fn all(seed: u64) -> Vec<PairsCase> {
        use crate::sig_kernel::testing::lifted_rows;
        use crate::StaticKernel;
        let mut seed = seed;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 52) as f64 - 0.5
        };
        let kernels = [
            (StaticKernel::Linear, false, false),
            (StaticKernel::ScaledLinear { scale: 1.7 }, true, true),
            (StaticKernel::Rbf { sigma: 0.3 }, false, true),
            (StaticKernel::Rbf { sigma: 2.0 }, true, false),
        ];
        kernels
            .into_iter()
            .map(|(kernel, time_aug, lead_lag)| {
                let opts = crate::SigKernelOptions::default()
                    .static_kernel(kernel)
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
                let (kind, value) = match kernel {
                    StaticKernel::Linear => (0, 1.0),
                    StaticKernel::ScaledLinear { scale: s } => (0, s * s),
                    StaticKernel::Rbf { sigma } => (1, 1.0 / sigma),
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
                        ..Default::default()
                    },
                    pairs,
                    index,
                    consts: [value],
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
