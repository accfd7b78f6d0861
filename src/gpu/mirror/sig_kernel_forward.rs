//! `shaders/sig_kernel_forward.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.
//!
//! A workgroup is run whole: between two barriers its invocations touch disjoint points and read
//! only earlier diagonals, so running them one after the other is one of the orders the GPU may pick.

use super::PointRows;
use crate::gpu::kernels::{GramParams, SigKernelParams};

type Scalar = f64;

const WG: u32 = 256;
const SHARED_ROWS: u32 = 512;

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
    pub scratch: &'a mut [Scalar],
}

/// One invocation's `diag_base` and `diag_stride`.
#[derive(Clone, Copy)]
struct Lane {
    diag_base: u32,
    diag_stride: u32,
}

impl Lane {
    fn near(self, s: u32, r: u32) -> usize {
        (self.diag_base + (s % 3) * self.diag_stride + r) as usize
    }
}

impl Dispatch<'_> {
    fn slot(&self, pair: u32, s: u32, r: u32) -> usize {
        ((pair * 3 + s % 3) * self.params.rows + r) as usize
    }

    /// K at row r of diagonal s (`diag` is the workgroup's memory).
    fn k_get(&self, lane: Lane, diag: &[Scalar], pair: u32, s: u32, r: u32) -> Scalar {
        if self.params.rows <= SHARED_ROWS {
            return diag[lane.near(s, r)];
        }
        self.scratch[self.slot(pair, s, r)]
    }

    fn k_set(&mut self, lane: Lane, diag: &mut [Scalar], pair: u32, s: u32, r: u32, v: Scalar) {
        if self.params.rows <= SHARED_ROWS {
            diag[lane.near(s, r)] = v;
        } else {
            let w = self.slot(pair, s, r);
            self.scratch[w] = v;
        }
    }

    fn point(&self, h: Scalar, left: Scalar, up: Scalar, corner: Scalar) -> Scalar {
        let h2 = h * h * self.scheme[1];
        let a = 1.0 + 0.5 * h + h2;
        let b = 1.0 - h2;
        (left + up) * a - corner * b
    }

    fn increment(&self, pair: u32, r: u32, c: u32) -> Scalar {
        let p = self.params;
        let base = pair * p.n1 * p.n2;
        self.gram[(base + ((r - 1) >> p.lam1) * p.n2 + ((c - 1) >> p.lam2)) as usize]
            * self.scheme[0]
    }

    fn ahead(&self, pair: u32, r: u32, c: i64) -> Scalar {
        let p = self.params;
        if r == 0 || r >= p.rows || c < 1 || c >= p.cols as i64 {
            return 0.0;
        }
        let rows = PointRows {
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
        };
        let g = rows.base_gram(
            self.pairs,
            pair,
            (r - 1) >> p.lam1,
            (c as u32 - 1) >> p.lam2,
        );
        g * self.scheme[0]
    }

    /// The entry point `main` for workgroup `wid`, all of its invocations (`diag` is the
    /// workgroup's memory).
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
        // Per invocation: its pair, first row and slots in `diag`.
        let lanes: Vec<(u32, u32, Lane)> = (0..WG)
            .map(|lid| {
                let pair = first + lid / span;
                let mut lane = lid % span;
                if pair >= p.n_pairs {
                    lane = rows;
                }
                let mut at = Lane {
                    diag_base: 0,
                    diag_stride: SHARED_ROWS,
                };
                if rows <= WG {
                    at = Lane {
                        diag_base: lid / span * 3 * span,
                        diag_stride: span,
                    };
                }
                (pair, lane, at)
            })
            .collect();
        let in_diag = rows <= SHARED_ROWS;
        let mut diag = vec![Scalar::NAN; 3 * SHARED_ROWS as usize];
        if in_diag {
            for &(pair, lane, at) in &lanes {
                let mut r = lane;
                while r < rows {
                    if p.d_begin >= 1 {
                        diag[at.near(p.d_begin - 1, r)] =
                            self.scratch[self.slot(pair, p.d_begin - 1, r)];
                    }
                    if p.d_begin >= 2 {
                        diag[at.near(p.d_begin - 2, r)] =
                            self.scratch[self.slot(pair, p.d_begin - 2, r)];
                    }
                    r += span;
                }
            }
            // workgroupBarrier()
        }
        if rows <= WG {
            // g[lid] = g0 … g7 of invocation lid.
            let mut g: Vec<[Scalar; 8]> = lanes
                .iter()
                .map(|&(pair, r, _)| {
                    let c0 = p.d_begin as i64 - r as i64;
                    std::array::from_fn(|j| self.ahead(pair, r, c0 + j as i64))
                })
                .collect();
            for s in p.d_begin..p.d_end {
                for (lid, &(pair, lane, at)) in lanes.iter().enumerate() {
                    let r = lane;
                    let c = s as i64 - r as i64;
                    let h = g[lid][0];
                    g[lid].rotate_left(1);
                    g[lid][7] = self.ahead(pair, r, c + 8);
                    if r < rows && c >= 0 && c < cols as i64 {
                        let mut v: Scalar = 1.0;
                        if r > 0 && c > 0 {
                            v = self.point(
                                h,
                                diag[at.near(s - 1, r)],
                                diag[at.near(s - 1, r - 1)],
                                diag[at.near(s - 2, r - 1)],
                            );
                        }
                        diag[at.near(s, r)] = v;
                    }
                }
                // workgroupBarrier()
            }
        }
        for s in (p.d_begin..p.d_end).filter(|_| rows > WG) {
            let mut r_lo = 0u32;
            if s >= cols {
                r_lo = s - (cols - 1);
            }
            let r_hi = s.min(rows - 1);
            let strips = (r_hi - r_lo) / WG + 1;
            for (lid, &(pair, _, at)) in lanes.iter().enumerate() {
                for k in 0..strips {
                    let r = r_lo + k * WG + lid as u32;
                    if r <= r_hi {
                        let c = s - r;
                        let mut v: Scalar = 1.0;
                        if r > 0 && c > 0 {
                            v = self.point(
                                self.increment(pair, r, c),
                                self.k_get(at, &diag, pair, s - 1, r),
                                self.k_get(at, &diag, pair, s - 1, r - 1),
                                self.k_get(at, &diag, pair, s - 2, r - 1),
                            );
                        }
                        self.k_set(at, &mut diag, pair, s, r, v);
                    }
                }
            }
            // (storageBarrier() unless in_diag;) workgroupBarrier()
        }
        if in_diag {
            for &(pair, lane, at) in &lanes {
                let mut r = lane;
                while r < rows {
                    if p.d_end >= 1 {
                        let w = self.slot(pair, p.d_end - 1, r);
                        self.scratch[w] = diag[at.near(p.d_end - 1, r)];
                    }
                    if p.d_end >= 2 {
                        let w = self.slot(pair, p.d_end - 2, r);
                        self.scratch[w] = diag[at.near(p.d_end - 2, r)];
                    }
                    r += span;
                }
            }
        }
        let last = rows + cols - 2;
        for &(pair, lane, at) in &lanes {
            if lane == 0 && p.d_end == last + 1 {
                self.kernels[pair as usize] = self.k_get(at, &diag, pair, last, rows - 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::mirror::PairsCase;
    use crate::gpu::sig_kernel::forward_pack;
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

    /// The mirror over every workgroup of a chunk, in windows of 5 diagonals, with the pairs per
    /// workgroup the driver picks.
    fn dispatch(inputs: &Inputs<'_>, grid: KernelGrid) -> Vec<f64> {
        let n_pairs = inputs.index.len() / 2;
        let rows = (grid.n1 << grid.lam1) + 1;
        let cols = (grid.n2 << grid.lam2) + 1;
        let scheme = crate::gpu::sig_kernel::consts::<f64>(grid);
        let pack = forward_pack(grid) as u32;
        let mut kernels = vec![f64::NAN; n_pairs];
        let mut scratch = vec![f64::NAN; n_pairs * 3 * rows];
        let diagonals = (rows + cols - 1) as u32;
        let g = inputs.gram_params;
        let mut d = 0;
        while d < diagonals {
            let params = SigKernelParams {
                n_pairs: n_pairs as u32,
                n1: grid.n1 as u32,
                n2: grid.n2 as u32,
                lam1: grid.lam1,
                lam2: grid.lam2,
                rows: rows as u32,
                cols: cols as u32,
                d_begin: d,
                d_end: (d + 5).min(diagonals),
                dim: g.dim,
                kind: g.kind,
                point_kernel: g.point_kernel,
                pack,
                ..Default::default()
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
                scratch: &mut scratch,
            };
            for wid in 0..(n_pairs as u32).div_ceil(pack) {
                disp.workgroup(wid);
            }
            d = params.d_end;
        }
        kernels
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
        }
    }

    /// The linear kernel on every shape of the sweep: the row walk with one or several pairs per
    /// workgroup (the last workgroup partly empty), the strips with the diagonals in workgroup
    /// memory and in `scratch`.
    #[test]
    fn sig_kernel_forward_mirror_matches_cpu() {
        let mut seed = 11u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 52) as f64 - 0.5
        };
        for (batch, l1, l2, dim, lam) in [
            // 32 pairs per workgroup, one workgroup partly empty.
            (3, 5, 7, 2, (0, 0)),
            // 4 pairs per workgroup: three workgroups, the last with one pair.
            (9, 60, 20, 2, (0, 0)),
            (2, 2, 90, 1, (1, 0)),
            (2, 70, 3, 3, (0, 2)),
            (1, 40, 45, 2, (2, 1)),
            // More rows than invocations: strips, the diagonals still in workgroup memory.
            (1, 200, 6, 2, (1, 0)),
            // Taller than the workgroup memory holds: the diagonals stay in `scratch`.
            (1, 300, 4, 2, (1, 0)),
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
            close(&dispatch(&inputs, grid), want.as_slice().unwrap());
        }
    }

    /// Every static-kernel family, with and without the transforms, through the row walk's own
    /// base Gram matrices, for pairs mixing the paths of two sides.
    #[test]
    fn sig_kernel_forward_mirror_computes_each_static_kernel() {
        for case in PairsCase::all(17) {
            let (l1, l2) = case.lengths;
            let grid = KernelGrid {
                n1: case.params.n1 as usize,
                n2: case.params.n2 as usize,
                lam1: 0,
                lam2: 0,
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
            let got = dispatch(&inputs, grid);
            let opts = case.opts.clone().n_jobs(1).device(Device::Cpu);
            let want: Vec<f64> = (0..case.pairs.len())
                .map(|k| {
                    let (x, y) = case.paths(k);
                    let x = ArrayView3::from_shape((1, l1, case.dim), x).unwrap();
                    let y = ArrayView3::from_shape((1, l2, case.dim), y).unwrap();
                    sig_kernel(x, y, &opts).unwrap()[0]
                })
                .collect();
            close(&got, &want);
        }
    }
}
