//! `shaders/sig_kernel_gram.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.

use super::exp_neg;
use crate::gpu::kernels::GramParams;

type Scalar = f64;

const WG: u32 = 64;

/// The buffers of one dispatch.
pub(crate) struct Dispatch<'a> {
    pub params: GramParams,
    pub side_a: &'a [Scalar],
    pub side_b: &'a [Scalar],
    pub pairs: &'a [u32],
    pub consts: &'a [Scalar],
    pub gram: &'a mut [Scalar],
}

impl Dispatch<'_> {
    fn rbf(&self, pa: u32, i: u32, pb: u32, j: u32) -> Scalar {
        let d = self.params.dim;
        let mut dist2: Scalar = 0.0;
        for c in 0..d {
            let diff =
                self.side_a[(pa + i * d + c) as usize] - self.side_b[(pb + j * d + c) as usize];
            dist2 = dist2 + diff * diff;
        }
        exp_neg(-dist2 * self.consts[0])
    }

    /// The entry point `main` for invocation `lid` of workgroup `(wx, wy)` of a grid `groups_x` wide.
    pub(crate) fn invocation(&mut self, wx: u32, wy: u32, groups_x: u32, lid: u32) {
        let p = self.params;
        let cells = p.n1 * p.n2;
        let cell = (wy * groups_x + wx) * WG + lid;
        if cell >= p.n_pairs * cells {
            return;
        }
        let pair = cell / cells;
        let a = (cell % cells) / p.n2;
        let b = cell % p.n2;
        let d = p.dim;
        let mut g: Scalar = 0.0;
        if p.kind == 0 {
            let pa = self.pairs[(2 * pair) as usize] * p.n1 * d;
            let pb = self.pairs[(2 * pair + 1) as usize] * p.n2 * d;
            for c in 0..d {
                g = g + self.side_a[(pa + a * d + c) as usize]
                    * self.side_b[(pb + b * d + c) as usize];
            }
            g = g * self.consts[0];
        } else {
            let pa = self.pairs[(2 * pair) as usize] * (p.n1 + 1) * d;
            let pb = self.pairs[(2 * pair + 1) as usize] * (p.n2 + 1) * d;
            g = (self.rbf(pa, a + 1, pb, b + 1) - self.rbf(pa, a + 1, pb, b))
                - (self.rbf(pa, a, pb, b + 1) - self.rbf(pa, a, pb, b));
        }
        self.gram[cell as usize] = g;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig_kernel::testing::{gram_of, lifted_rows};
    use crate::{SigKernelOptions, StaticKernel};

    /// The mirror's Gram matrices equal the CPU's for bilinear and RBF kernels, with and without the
    /// transforms, for pairs that mix the paths of two sides.
    #[test]
    fn sig_kernel_gram_mirror_matches_cpu() {
        let mut seed = 5u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 52) as f64 - 0.5
        };
        for (kernel, time_aug, lead_lag) in [
            (StaticKernel::Linear, false, false),
            (StaticKernel::ScaledLinear(1.7), true, false),
            (StaticKernel::Rbf { sigma: 0.3 }, false, true),
            (StaticKernel::Rbf { sigma: 2.0 }, true, true),
        ] {
            let opts = SigKernelOptions {
                static_kernel: kernel,
                time_aug,
                lead_lag,
                ..Default::default()
            };
            let (dim, l1, l2) = (2, 6, 9);
            let xs: Vec<f64> = (0..3 * l1 * dim).map(|_| rand()).collect();
            let ys: Vec<f64> = (0..2 * l2 * dim).map(|_| rand()).collect();
            let (a, n1, aug) = lifted_rows(&opts, &xs, l1, dim);
            let (b, n2, _) = lifted_rows(&opts, &ys, l2, dim);
            let pairs = [(2u32, 0u32), (0, 1), (1, 1)];
            let index: Vec<u32> = pairs.iter().flat_map(|&(p, q)| [p, q]).collect();
            let cells = n1 * n2;
            let mut gram = vec![0.0; pairs.len() * cells];
            let kind = matches!(kernel, StaticKernel::Rbf { .. }) as u32;
            let consts = [match kernel {
                StaticKernel::Linear => 1.0,
                StaticKernel::ScaledLinear(s) => s * s,
                StaticKernel::Rbf { sigma } => 1.0 / sigma,
            }];
            let mut disp = Dispatch {
                params: GramParams {
                    n_pairs: pairs.len() as u32,
                    n1: n1 as u32,
                    n2: n2 as u32,
                    dim: aug as u32,
                    kind,
                    side: 0,
                    _pad: [0; 2],
                },
                side_a: &a,
                side_b: &b,
                pairs: &index,
                consts: &consts,
                gram: &mut gram,
            };
            let groups = (pairs.len() * cells).div_ceil(WG as usize) as u32;
            for w in 0..groups {
                for lid in 0..WG {
                    disp.invocation(w, 0, groups, lid);
                }
            }
            for (k, &(p, q)) in pairs.iter().enumerate() {
                let (p, q) = (p as usize, q as usize);
                let x = &xs[p * l1 * dim..(p + 1) * l1 * dim];
                let y = &ys[q * l2 * dim..(q + 1) * l2 * dim];
                let want = gram_of(&opts, x, y, dim);
                for (g, w) in gram[k * cells..(k + 1) * cells].iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-14, "{kernel:?}: {g} vs {w}");
                }
            }
        }
    }
}
