//! `shaders/sig_kernel_forward.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.
//!
//! A workgroup is run whole: between two barriers its invocations touch disjoint points and read
//! only earlier diagonals, so running them one after the other is one of the orders the GPU may pick.

use super::{PointRows, Slots};
use crate::gpu::kernels::{GramParams, SigKernelParams};

type Scalar = f64;

const WG: u32 = 256;

/// The buffers of one dispatch.
pub(crate) struct Dispatch<'a> {
    pub params: SigKernelParams,
    pub side_a: &'a [Scalar],
    pub side_b: &'a [Scalar],
    pub pairs: &'a [u32],
    pub consts: &'a [Scalar],
    pub gram: &'a [Scalar],
    pub scheme: &'a [Scalar],
    pub kernels: &'a mut [Scalar],
    pub carry: &'a mut [Scalar],
}

/// The row's walk through its base cells (`walk_b`, `walk_g`, `walk_hi`, `walk_lo`).
#[derive(Clone, Copy, Default)]
struct Walk {
    b: i64,
    g: Scalar,
    hi: Scalar,
    lo: Scalar,
}

/// One invocation's private state: its slots in `diag`, its row's walk, and its walk along the
/// diagonals (`c`, g0 … g7, `corner`, u0 … u3).
struct Lane {
    pair: u32,
    l: u32,
    r: u32,
    live: bool,
    slots: Slots,
    walk: Walk,
    c: i64,
    g: [Scalar; 8],
    corner: Scalar,
    u: [Scalar; 4],
}

impl Dispatch<'_> {
    fn carry_len(&self) -> u32 {
        3 * WG + 2 * self.params.cols
    }

    fn slot(&self, pair: u32, t: u32, l: u32) -> usize {
        (pair * self.carry_len() + (t % 3) * WG + l) as usize
    }

    fn edge_at(&self, pair: u32, band: u32, c: u32) -> usize {
        (pair * self.carry_len() + 3 * WG + (band % 2) * self.params.cols + c) as usize
    }

    fn band(&self) -> u32 {
        self.params.b0 / WG
    }

    fn point(&self, h: Scalar, left: Scalar, up: Scalar, corner: Scalar) -> Scalar {
        let h2 = h * h * self.scheme[1];
        let a = 1.0 + 0.5 * h + h2;
        let b = 1.0 - h2;
        (left + up) * a - corner * b
    }

    fn one_band(&self) -> bool {
        let p = self.params;
        p.b1 - p.b0 + 1 == p.rows
    }

    fn rows(&self) -> PointRows<'_> {
        let p = self.params;
        PointRows {
            params: GramParams {
                n_pairs: p.n_pairs,
                n1: p.n1,
                n2: p.n2,
                dim: p.dim,
                kind: p.kind,
                point_kernel: p.point_kernel,
                ..Default::default()
            },
            side_a: self.side_a,
            side_b: self.side_b,
            consts: self.consts,
        }
    }

    fn walk_start(&self, walk: &mut Walk, pair: u32, r: u32, c: i64) {
        let p = self.params;
        let mut b = 0;
        if c >= 1 {
            b = (c - 1) >> p.lam2;
        }
        walk.b = b - 1;
        walk.g = 0.0;
        walk.hi = 0.0;
        walk.lo = 0.0;
        if !self.one_band() || p.kind == 0 || r == 0 || r >= p.rows || c >= p.cols as i64 {
            return;
        }
        let a = (r - 1) >> p.lam1;
        let rows = self.rows();
        let (pa, pb) = rows.point_rows(self.pairs, pair);
        walk.hi = rows.kernel_at(pa, a + 1, pb, b as u32).0;
        walk.lo = rows.kernel_at(pa, a, pb, b as u32).0;
    }

    fn ahead(&self, walk: &mut Walk, pair: u32, r: u32, c: i64) -> Scalar {
        let p = self.params;
        if r == 0 || r >= p.rows || c < 1 || c >= p.cols as i64 {
            return 0.0;
        }
        let a = (r - 1) >> p.lam1;
        let b = (c as u32 - 1) >> p.lam2;
        if self.one_band() {
            if b as i64 != walk.b {
                let rows = self.rows();
                if p.kind == 0 {
                    walk.g = rows.bilinear_gram(self.pairs, pair, a, b);
                } else {
                    let (pa, pb) = rows.point_rows(self.pairs, pair);
                    let hi = rows.kernel_at(pa, a + 1, pb, b + 1).0;
                    let lo = rows.kernel_at(pa, a, pb, b + 1).0;
                    walk.g = (hi - walk.hi) - (lo - walk.lo);
                    walk.hi = hi;
                    walk.lo = lo;
                }
                walk.b = b as i64;
            }
            return walk.g * self.scheme[0];
        }
        self.gram[((pair * p.n1 + a) * p.n2 + b) as usize] * self.scheme[0]
    }

    fn above(&self, pair: u32, l: u32, c: i64) -> Scalar {
        let p = self.params;
        if pair >= p.n_pairs || l != 0 || p.b0 == 0 || c < 0 || c >= p.cols as i64 {
            return 0.0;
        }
        self.carry[self.edge_at(pair, self.band() + 1, c as u32)]
    }

    /// The entry point `main` for workgroup `wid`, all of its invocations.
    pub(crate) fn workgroup(&mut self, wid: u32) {
        let p = self.params;
        let pack = p.pack;
        let span = WG / pack;
        let first = wid * pack;
        if first >= p.n_pairs {
            return;
        }
        let rows = p.rows;
        let cols = p.cols;
        let mut diag = vec![Scalar::NAN; 3 * WG as usize];
        let mut lanes: Vec<Lane> = (0..WG)
            .map(|lid| {
                let pair = first + lid / span;
                let l = lid % span;
                let r = p.b0 + l;
                let live = pair < p.n_pairs && r <= p.b1;
                Lane {
                    pair,
                    l,
                    r,
                    live,
                    slots: Slots::new(lid, span),
                    walk: Walk::default(),
                    c: 0,
                    g: [0.0; 8],
                    corner: 0.0,
                    u: [0.0; 4],
                }
            })
            .collect();
        for lane in &lanes {
            let (pair, l) = (lane.pair, lane.l);
            for k in 1..=2 {
                if lane.live && p.d_begin >= l + k && p.d_begin - k - l < cols {
                    diag[lane.slots.near(p.d_begin - k, l)] =
                        self.carry[self.slot(pair, p.d_begin - k, l)];
                }
            }
        }
        // workgroupBarrier()
        for lane in lanes.iter_mut() {
            let (pair, l, r) = (lane.pair, lane.l, lane.r);
            let mut c = p.d_begin as i64 - l as i64;
            if !lane.live {
                c = cols as i64;
            }
            lane.c = c;
            self.walk_start(&mut lane.walk, pair, r, c);
            let walk = &mut lane.walk;
            lane.g = std::array::from_fn(|k| self.ahead(walk, pair, r, c + k as i64));
            lane.corner = self.above(pair, l, c - 1);
            lane.u = std::array::from_fn(|k| self.above(pair, l, c + k as i64));
        }
        for t in p.d_begin..p.d_end {
            for lane in lanes.iter_mut() {
                let (pair, l, r, c) = (lane.pair, lane.l, lane.r, lane.c);
                let h = lane.g[0];
                let up = lane.u[0];
                let up_left = lane.corner;
                lane.g.rotate_left(1);
                lane.g[7] = self.ahead(&mut lane.walk, pair, r, c + 8);
                lane.corner = lane.u[0];
                lane.u.rotate_left(1);
                lane.u[3] = self.above(pair, l, c + 4);
                if c >= 0 && c < cols as i64 {
                    let cc = c as u32;
                    let mut v: Scalar = 1.0;
                    if r > 0 && cc > 0 {
                        let mut k_up = up;
                        let mut k_corner = up_left;
                        if l > 0 {
                            k_up = diag[lane.slots.near(t - 1, l - 1)];
                            k_corner = diag[lane.slots.near(t - 2, l - 1)];
                        }
                        v = self.point(h, diag[lane.slots.near(t - 1, l)], k_up, k_corner);
                    }
                    diag[lane.slots.near(t, l)] = v;
                    if r == p.b1 && r < rows - 1 {
                        let at = self.edge_at(pair, self.band(), cc);
                        self.carry[at] = v;
                    }
                    if r == rows - 1 && cc == cols - 1 {
                        self.kernels[pair as usize] = v;
                    }
                }
                lane.c = c + 1;
            }
            // workgroupBarrier()
        }
        let band_end = p.b1 - p.b0 + cols;
        for lane in &lanes {
            let (pair, l) = (lane.pair, lane.l);
            for k in 1..=2 {
                if lane.live && p.d_end < band_end && p.d_end >= l + k && p.d_end - k - l < cols {
                    let at = self.slot(pair, p.d_end - k, l);
                    self.carry[at] = diag[lane.slots.near(p.d_end - k, l)];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::mirror::PairsCase;
    use crate::gpu::sig_kernel::{base_params, sweep_pack};
    use crate::gpu::KernelGrid;
    use crate::sig_kernel::testing::{gram_of, lifted_rows};
    use crate::{sig_kernel, Device, SigKernelOptions};
    use ndarray::{Array3, ArrayView3};

    /// The inputs of one call: the sides' rows, the pairs, the static kernel.
    struct Inputs<'a> {
        side_a: &'a [f64],
        side_b: &'a [f64],
        index: &'a [u32],
        consts: &'a [f64],
        gram_params: GramParams,
        /// The base Gram matrices the CPU computes, for the strips.
        gram: &'a [f64],
    }

    /// The mirror over every workgroup of a chunk, in bands of 256 rows and windows of `window`
    /// diagonals, with the pairs per workgroup the driver picks; where that is one dispatch, without
    /// a `carry` buffer (it must not be touched).
    fn dispatch(inputs: &Inputs<'_>, grid: KernelGrid, window: u32) -> Vec<f64> {
        let n_pairs = inputs.index.len() / 2;
        let rows = (grid.n1 << grid.lam1) + 1;
        let cols = (grid.n2 << grid.lam2) + 1;
        let scheme = crate::gpu::sig_kernel::consts::<f64>(grid);
        let pack = sweep_pack(grid) as u32;
        let band = WG as usize;
        let mut kernels = vec![f64::NAN; n_pairs];
        let one_dispatch = rows <= band && rows - 1 + cols <= window as usize;
        let carry_len = if one_dispatch {
            0
        } else {
            3 * WG as usize + 2 * cols
        };
        let mut carry = vec![f64::NAN; n_pairs * carry_len];
        let g = inputs.gram_params;
        for b0 in (0..rows).step_by(band) {
            let b1 = (b0 + band - 1).min(rows - 1);
            let diagonals = (b1 - b0 + cols) as u32;
            let mut d = 0;
            while d < diagonals {
                let params = SigKernelParams {
                    n_pairs: n_pairs as u32,
                    d_begin: d,
                    d_end: d.saturating_add(window).min(diagonals),
                    dim: g.dim,
                    kind: g.kind,
                    point_kernel: g.point_kernel,
                    pack,
                    b0: b0 as u32,
                    b1: b1 as u32,
                    ..base_params(grid).unwrap()
                };
                let mut disp = Dispatch {
                    params,
                    side_a: inputs.side_a,
                    side_b: inputs.side_b,
                    pairs: inputs.index,
                    consts: inputs.consts,
                    gram: inputs.gram,
                    scheme: &scheme,
                    kernels: &mut kernels,
                    carry: &mut carry,
                };
                for wid in 0..(n_pairs as u32).div_ceil(pack) {
                    disp.workgroup(wid);
                }
                d = params.d_end;
            }
        }
        kernels
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
        }
    }

    /// The linear kernel on every shape of the sweep: one band with one or several pairs per
    /// workgroup (the last workgroup partly empty), and taller grids in bands.
    #[test]
    fn sig_kernel_forward_mirror_matches_cpu() {
        let mut rand = crate::gpu::mirror::uniform(11);
        for (batch, l1, l2, dim, lam) in [
            // 32 pairs per workgroup, one workgroup partly empty.
            (3, 5, 7, 2, (0, 0)),
            // 4 pairs per workgroup: three workgroups, the last with one pair.
            (9, 60, 20, 2, (0, 0)),
            (2, 2, 90, 1, (1, 0)),
            (2, 70, 3, 3, (0, 2)),
            (1, 40, 45, 2, (2, 1)),
            // Taller than a workgroup: bands, the row above each carried from the band before.
            (2, 150, 5, 2, (1, 1)),
            (1, 300, 4, 2, (1, 0)),
            // 257 rows: the last band is one row.
            (1, 129, 3, 2, (1, 0)),
        ] {
            let opts = SigKernelOptions::default()
                .dyadic_order(lam)
                .n_jobs(1)
                .device(Device::Cpu);
            let x = Array3::from_shape_simple_fn((batch, l1, dim), &mut rand);
            let y = Array3::from_shape_simple_fn((batch, l2, dim), &mut rand);
            let want = sig_kernel(x.view(), y.view(), &opts).unwrap();
            let (xs, ys) = (x.as_slice().unwrap(), y.as_slice().unwrap());
            let (side_a, n1, channels) = lifted_rows(&opts, xs, l1, dim);
            let (side_b, n2, _) = lifted_rows(&opts, ys, l2, dim);
            let grid = KernelGrid {
                n1,
                n2,
                lam1: lam.0 as u32,
                lam2: lam.1 as u32,
                order: None,
            };
            let gram: Vec<f64> = (0..batch)
                .flat_map(|p| {
                    let (a, b) = (l1 * dim, l2 * dim);
                    gram_of(&opts, &xs[p * a..(p + 1) * a], &ys[p * b..(p + 1) * b], dim)
                })
                .collect();
            let index: Vec<u32> = (0..batch as u32).flat_map(|p| [p, p]).collect();
            let inputs = Inputs {
                side_a: &side_a,
                side_b: &side_b,
                index: &index,
                consts: &[1.0, 0.0, 0.0, 0.0],
                gram_params: GramParams {
                    n1: n1 as u32,
                    n2: n2 as u32,
                    dim: channels as u32,
                    ..Default::default()
                },
                gram: &gram,
            };
            for window in [5, u32::MAX] {
                close(&dispatch(&inputs, grid, window), want.as_slice().unwrap());
            }
        }
    }

    /// Every static-kernel family, with and without the transforms, through the base Gram matrices
    /// a grid of one band forms itself as each row walks its base cells (with refinement, several
    /// refined columns per base column), for pairs mixing the paths of two sides, in one dispatch
    /// and in windows that start a row's walk mid-row.
    #[test]
    fn sig_kernel_forward_mirror_computes_each_static_kernel() {
        for case in PairsCase::all(17) {
            let (l1, l2) = case.lengths;
            for lam in [(0, 0), (1, 2), (0, 3)] {
                let grid = KernelGrid {
                    n1: case.params.n1 as usize,
                    n2: case.params.n2 as usize,
                    lam1: lam.0 as u32,
                    lam2: lam.1 as u32,
                    order: None,
                };
                let inputs = Inputs {
                    side_a: &case.a,
                    side_b: &case.b,
                    index: &case.index,
                    consts: &case.consts,
                    gram_params: case.params,
                    gram: &[],
                };
                let opts = case
                    .opts
                    .clone()
                    .dyadic_order(lam)
                    .n_jobs(1)
                    .device(Device::Cpu);
                let want: Vec<f64> = (0..case.pairs.len())
                    .map(|k| {
                        let (x, y) = case.paths(k);
                        let x = ArrayView3::from_shape((1, l1, case.dim), x).unwrap();
                        let y = ArrayView3::from_shape((1, l2, case.dim), y).unwrap();
                        sig_kernel(x, y, &opts).unwrap()[0]
                    })
                    .collect();
                for window in [3, 5, u32::MAX] {
                    close(&dispatch(&inputs, grid, window), &want);
                }
            }
        }
    }
}
