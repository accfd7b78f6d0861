//! `shaders/sig_kernel_chain.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.

use super::PointRows;
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
                let rows = PointRows {
                    params: p,
                    side_a: self.side_a,
                    side_b: self.side_b,
                    consts: self.consts,
                };
                let h = w * rows.kernel_at(pa, i, pb, j).1;
                for ch in 0..d {
                    let pv = self.side_a[(pa + i * d + ch) as usize];
                    let qv = self.side_b[(pb + j * d + ch) as usize];
                    let mut g = h * (pv - qv);
                    if p.point_kernel == 5 {
                        g = h * qv;
                        if p.side == 1 {
                            g = h * pv;
                        }
                    } else if p.side == 1 {
                        g = -g;
                    }
                    let o = (out + ch) as usize;
                    self.grads[o] = self.grads[o] + g;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::mirror::PairsCase;
    use crate::sig_kernel::testing::lifted_grads;

    /// The mirror's path gradients equal the CPU's chain from a random `dF/dG` for bilinear and RBF
    /// kernels, with and without the transforms, for pairs that mix the paths of two sides.
    #[test]
    fn sig_kernel_chain_mirror_matches_cpu() {
        let mut seed = 9u64;
        let mut rand = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for case in PairsCase::all(9) {
            let p = case.params;
            let cells = (p.n1 * p.n2) as usize;
            let n = case.pairs.len();
            let dgram: Vec<f64> = (0..n * (cells + 1)).map(|_| rand()).collect();
            let (ra, rb) = (case.a.len() / 3, case.b.len() / 2);
            let per = ra + rb + 1;
            let mut grads = vec![f64::NAN; n * per];
            for side in 0..2u32 {
                let mut disp = Dispatch {
                    params: GramParams { side, ..p },
                    side_a: &case.a,
                    side_b: &case.b,
                    pairs: &case.index,
                    consts: &case.consts,
                    dgram: &dgram,
                    grads: &mut grads,
                };
                let rows = if side == 0 { p.n1 } else { p.n2 } + p.kind;
                let groups = (n * rows as usize).div_ceil(WG as usize) as u32;
                for w in 0..groups {
                    for lid in 0..WG {
                        disp.invocation(w, 0, groups, lid);
                    }
                }
            }
            for k in 0..n {
                let (x, y) = case.paths(k);
                let dg = &dgram[k * (cells + 1)..][..cells];
                let (gx, gy) = lifted_grads(&case.opts, x, y, case.dim, dg);
                let got = &grads[k * per..(k + 1) * per];
                let want = gx
                    .iter()
                    .chain(&gy)
                    .chain([&dgram[k * (cells + 1) + cells]]);
                for (g, w) in got.iter().zip(want) {
                    assert!((g - w).abs() <= 1e-13, "{:?}: {g} vs {w}", case.opts);
                }
            }
        }
    }
}
