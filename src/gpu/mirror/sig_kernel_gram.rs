//! `shaders/sig_kernel_gram.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.

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
    pub gram: &'a mut [Scalar],
}

impl Dispatch<'_> {
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
        let rows = PointRows {
            params: p,
            side_a: self.side_a,
            side_b: self.side_b,
            consts: self.consts,
        };
        self.gram[cell as usize] = rows.base_gram(self.pairs, pair, a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::mirror::PairsCase;
    use crate::sig_kernel::testing::gram_of;

    /// The mirror's Gram matrices equal the CPU's for bilinear and every point kernel, with and without the
    /// transforms, for pairs that mix the paths of two sides.
    #[test]
    fn sig_kernel_gram_mirror_matches_cpu() {
        for case in PairsCase::all(5) {
            let cells = (case.params.n1 * case.params.n2) as usize;
            let mut gram = vec![0.0; case.pairs.len() * cells];
            let mut disp = Dispatch {
                params: case.params,
                side_a: &case.a,
                side_b: &case.b,
                pairs: &case.index,
                consts: &case.consts,
                gram: &mut gram,
            };
            let groups = (case.pairs.len() * cells).div_ceil(WG as usize) as u32;
            for w in 0..groups {
                for lid in 0..WG {
                    disp.invocation(w, 0, groups, lid);
                }
            }
            for k in 0..case.pairs.len() {
                let (x, y) = case.paths(k);
                let want = gram_of(&case.opts, x, y, case.dim);
                for (g, w) in gram[k * cells..(k + 1) * cells].iter().zip(&want) {
                    // Powers go through exp and ln in the shader: rounding relative to the entry.
                    let tol = 1e-13 * w.abs().max(1.0);
                    assert!((g - w).abs() <= tol, "{:?}: {g} vs {w}", case.opts);
                }
            }
        }
    }
}
