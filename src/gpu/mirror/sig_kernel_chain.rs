//! `shaders/sig_kernel_chain.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.

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
    pub dgram: &'a [Scalar],
    pub grads: &'a mut [Scalar],
}

impl Dispatch<'_> {
    fn row_len(&self, n: u32) -> u32 {
        (n + self.params.kind) * self.params.dim
    }

    fn dg(&self, pair: u32, a: i32, b: i32) -> Scalar {
        let p = self.params;
        if a < 0 || b < 0 || a >= p.n1 as i32 || b >= p.n2 as i32 {
            return 0.0;
        }
        self.dgram[(pair * (p.n1 * p.n2 + 1) + a as u32 * p.n2 + b as u32) as usize]
    }

    /// The entry point `main` for invocation `lid` of workgroup `(wx, wy)` of a grid `groups_x` wide.
    pub(crate) fn invocation(&mut self, wx: u32, wy: u32, groups_x: u32, lid: u32) {
        let p = self.params;
        let d = p.dim;
        let ra = self.row_len(p.n1);
        let rb = self.row_len(p.n2);
        let mut mine = p.n1 + p.kind;
        let mut other = p.n2 + p.kind;
        if p.side == 1 {
            mine = p.n2 + p.kind;
            other = p.n1 + p.kind;
        }
        let item = (wy * groups_x + wx) * WG + lid;
        if item >= p.n_pairs * mine {
            return;
        }
        let pair = item / mine;
        let t = item % mine;
        let pa = self.pairs[(2 * pair) as usize] * ra;
        let pb = self.pairs[(2 * pair + 1) as usize] * rb;
        let mut out = pair * (ra + rb + 1) + t * d;
        if p.side == 1 {
            out = out + ra;
        }
        if p.side == 0 && t == 0 {
            self.grads[(pair * (ra + rb + 1) + ra + rb) as usize] =
                self.dgram[(pair * (p.n1 * p.n2 + 1) + p.n1 * p.n2) as usize];
        }
        let c0 = self.consts[0];
        for ch in 0..d {
            self.grads[(out + ch) as usize] = 0.0;
        }
        if p.kind == 0 {
            for ch in 0..d {
                let mut acc: Scalar = 0.0;
                for u in 0..other {
                    if p.side == 0 {
                        acc = acc
                            + self.dg(pair, t as i32, u as i32)
                                * self.side_b[(pb + u * d + ch) as usize];
                    } else {
                        acc = acc
                            + self.dg(pair, u as i32, t as i32)
                                * self.side_a[(pa + u * d + ch) as usize];
                    }
                }
                self.grads[(out + ch) as usize] = c0 * acc;
            }
            return;
        }
        for u in 0..other {
            let mut i = t;
            let mut j = u;
            if p.side == 1 {
                i = u;
                j = t;
            }
            let ii = i as i32;
            let jj = j as i32;
            let w = ((self.dg(pair, ii - 1, jj - 1) - self.dg(pair, ii - 1, jj))
                - self.dg(pair, ii, jj - 1))
                + self.dg(pair, ii, jj);
            if w != 0.0 {
                let mut dist2: Scalar = 0.0;
                for ch in 0..d {
                    let diff = self.side_a[(pa + i * d + ch) as usize]
                        - self.side_b[(pb + j * d + ch) as usize];
                    dist2 = dist2 + diff * diff;
                }
                let s = w * exp_neg(-dist2 * c0) * c0 * 2.0;
                for ch in 0..d {
                    let g = s
                        * (self.side_a[(pa + i * d + ch) as usize]
                            - self.side_b[(pb + j * d + ch) as usize]);
                    let o = (out + ch) as usize;
                    if p.side == 0 {
                        self.grads[o] = self.grads[o] - g;
                    } else {
                        self.grads[o] = self.grads[o] + g;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig_kernel::testing::{lifted_grads, lifted_rows};
    use crate::{SigKernelOptions, StaticKernel};

    /// The mirror's path gradients equal the CPU's chain from `dF/dG` for bilinear and RBF kernels,
    /// with and without the transforms, for pairs that mix the paths of two sides.
    #[test]
    fn sig_kernel_chain_mirror_matches_cpu() {
        let mut seed = 9u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 52) as f64 - 0.5
        };
        for (kernel, time_aug, lead_lag) in [
            (StaticKernel::Linear, false, false),
            (StaticKernel::ScaledLinear(0.6), true, true),
            (StaticKernel::Rbf { sigma: 0.4 }, false, false),
            (StaticKernel::Rbf { sigma: 1.5 }, true, true),
        ] {
            let opts = SigKernelOptions {
                static_kernel: kernel,
                time_aug,
                lead_lag,
                ..Default::default()
            };
            let (dim, l1, l2) = (2, 5, 7);
            let xs: Vec<f64> = (0..2 * l1 * dim).map(|_| rand()).collect();
            let ys: Vec<f64> = (0..3 * l2 * dim).map(|_| rand()).collect();
            let (a, n1, aug) = lifted_rows(&opts, &xs, l1, dim);
            let (b, n2, _) = lifted_rows(&opts, &ys, l2, dim);
            let pairs = [(1u32, 2u32), (0, 0), (1, 1)];
            let index: Vec<u32> = pairs.iter().flat_map(|&(p, q)| [p, q]).collect();
            let cells = n1 * n2;
            let dgram: Vec<f64> = (0..pairs.len() * (cells + 1)).map(|_| rand()).collect();
            let kind = matches!(kernel, StaticKernel::Rbf { .. }) as u32;
            let consts = [match kernel {
                StaticKernel::Linear => 1.0,
                StaticKernel::ScaledLinear(s) => s * s,
                StaticKernel::Rbf { sigma } => 1.0 / sigma,
            }];
            let (ra, rb) = (a.len() / 2, b.len() / 3);
            let per = ra + rb + 1;
            let mut grads = vec![f64::NAN; pairs.len() * per];
            for side in 0..2u32 {
                let mut disp = Dispatch {
                    params: GramParams {
                        n_pairs: pairs.len() as u32,
                        n1: n1 as u32,
                        n2: n2 as u32,
                        dim: aug as u32,
                        kind,
                        side,
                        _pad: [0; 2],
                    },
                    side_a: &a,
                    side_b: &b,
                    pairs: &index,
                    consts: &consts,
                    dgram: &dgram,
                    grads: &mut grads,
                };
                let rows = if side == 0 { n1 } else { n2 } + kind as usize;
                let groups = (pairs.len() * rows).div_ceil(WG as usize) as u32;
                for w in 0..groups {
                    for lid in 0..WG {
                        disp.invocation(w, 0, groups, lid);
                    }
                }
            }
            for (k, &(p, q)) in pairs.iter().enumerate() {
                let (p, q) = (p as usize, q as usize);
                let x = &xs[p * l1 * dim..(p + 1) * l1 * dim];
                let y = &ys[q * l2 * dim..(q + 1) * l2 * dim];
                let dg = &dgram[k * (cells + 1)..][..cells];
                let (gx, gy) = lifted_grads(&opts, x, y, dim, dg);
                let got = &grads[k * per..(k + 1) * per];
                let want = gx
                    .iter()
                    .chain(&gy)
                    .chain([&dgram[k * (cells + 1) + cells]]);
                for (g, w) in got.iter().zip(want) {
                    assert!((g - w).abs() <= 1e-13, "{kernel:?}: {g} vs {w}");
                }
            }
        }
    }
}
