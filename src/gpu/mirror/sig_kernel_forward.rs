//! `shaders/sig_kernel_forward.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.
//!
//! A workgroup is run whole: between two barriers its invocations touch disjoint points and read
//! only earlier diagonals, so running them one after the other is one of the orders the GPU may pick.

use crate::gpu::kernels::SigKernelParams;

type Scalar = f64;

const WG: u32 = 256;
const SHARED_ROWS: u32 = 512;

/// The buffers of one dispatch.
pub(crate) struct Dispatch<'a> {
    pub params: SigKernelParams,
    pub gram: &'a [Scalar],
    pub consts: &'a [Scalar],
    pub kernels: &'a mut [Scalar],
    pub scratch: &'a mut [Scalar],
}

fn near(s: u32, r: u32) -> usize {
    ((s % 3) * SHARED_ROWS + r) as usize
}

impl Dispatch<'_> {
    fn slot(&self, pair: u32, s: u32, r: u32) -> usize {
        ((pair * 3 + s % 3) * self.params.rows + r) as usize
    }

    /// K at row r of diagonal s (`diag` is the workgroup's memory).
    fn k_get(&self, diag: &[Scalar], pair: u32, s: u32, r: u32) -> Scalar {
        if self.params.rows <= SHARED_ROWS {
            return diag[near(s, r)];
        }
        self.scratch[self.slot(pair, s, r)]
    }

    fn k_set(&mut self, diag: &mut [Scalar], pair: u32, s: u32, r: u32, v: Scalar) {
        if self.params.rows <= SHARED_ROWS {
            diag[near(s, r)] = v;
        } else {
            let w = self.slot(pair, s, r);
            self.scratch[w] = v;
        }
    }

    fn point(&self, h: Scalar, left: Scalar, up: Scalar, corner: Scalar) -> Scalar {
        let h2 = h * h * self.consts[1];
        let a = 1.0 + 0.5 * h + h2;
        let b = 1.0 - h2;
        (left + up) * a - corner * b
    }

    fn increment(&self, base: u32, r: u32, c: u32) -> Scalar {
        let p = self.params;
        self.gram[(base + ((r - 1) >> p.lam1) * p.n2 + ((c - 1) >> p.lam2)) as usize]
            * self.consts[0]
    }

    fn ahead(&self, base: u32, r: u32, c: i64) -> Scalar {
        if r == 0 || r >= self.params.rows || c < 1 || c >= self.params.cols as i64 {
            return 0.0;
        }
        self.increment(base, r, c as u32)
    }

    /// The entry point `main` for workgroup `pair`, all of its invocations (`diag` is the
    /// workgroup's memory).
    pub(crate) fn workgroup(&mut self, pair: u32) {
        let p = self.params;
        if pair >= p.n_pairs {
            return;
        }
        let rows = p.rows;
        let cols = p.cols;
        let base = pair * p.n1 * p.n2;
        let in_diag = rows <= SHARED_ROWS;
        let mut diag = vec![Scalar::NAN; 3 * SHARED_ROWS as usize];
        if in_diag {
            for lid in 0..WG {
                let mut r = lid;
                while r < rows {
                    if p.d_begin >= 1 {
                        diag[near(p.d_begin - 1, r)] =
                            self.scratch[self.slot(pair, p.d_begin - 1, r)];
                    }
                    if p.d_begin >= 2 {
                        diag[near(p.d_begin - 2, r)] =
                            self.scratch[self.slot(pair, p.d_begin - 2, r)];
                    }
                    r += WG;
                }
            }
            // workgroupBarrier()
        }
        if rows <= WG {
            // g[lid] = g0 … g7 of invocation lid.
            let mut g: Vec<[Scalar; 8]> = (0..WG)
                .map(|r| {
                    let c0 = p.d_begin as i64 - r as i64;
                    std::array::from_fn(|j| self.ahead(base, r, c0 + j as i64))
                })
                .collect();
            for s in p.d_begin..p.d_end {
                for lid in 0..WG {
                    let r = lid;
                    let c = s as i64 - r as i64;
                    let g = &mut g[lid as usize];
                    let h = g[0];
                    g.rotate_left(1);
                    g[7] = self.ahead(base, r, c + 8);
                    if r < rows && c >= 0 && c < cols as i64 {
                        let mut v: Scalar = 1.0;
                        if r > 0 && c > 0 {
                            v = self.point(
                                h,
                                diag[near(s - 1, r)],
                                diag[near(s - 1, r - 1)],
                                diag[near(s - 2, r - 1)],
                            );
                        }
                        diag[near(s, r)] = v;
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
            for lid in 0..WG {
                for k in 0..strips {
                    let r = r_lo + k * WG + lid;
                    if r <= r_hi {
                        let c = s - r;
                        let mut v: Scalar = 1.0;
                        if r > 0 && c > 0 {
                            v = self.point(
                                self.increment(base, r, c),
                                self.k_get(&diag, pair, s - 1, r),
                                self.k_get(&diag, pair, s - 1, r - 1),
                                self.k_get(&diag, pair, s - 2, r - 1),
                            );
                        }
                        self.k_set(&mut diag, pair, s, r, v);
                    }
                }
            }
            // (storageBarrier() unless in_diag;) workgroupBarrier()
        }
        if in_diag {
            for lid in 0..WG {
                let mut r = lid;
                while r < rows {
                    if p.d_end >= 1 {
                        let w = self.slot(pair, p.d_end - 1, r);
                        self.scratch[w] = diag[near(p.d_end - 1, r)];
                    }
                    if p.d_end >= 2 {
                        let w = self.slot(pair, p.d_end - 2, r);
                        self.scratch[w] = diag[near(p.d_end - 2, r)];
                    }
                    r += WG;
                }
            }
        }
        let last = rows + cols - 2;
        if p.d_end == last + 1 {
            self.kernels[pair as usize] = self.k_get(&diag, pair, last, rows - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::KernelGrid;
    use crate::{sig_kernel, Device, SigKernelOptions};
    use ndarray::Array3;

    /// The mirror over every workgroup of a chunk, in windows of 5 diagonals, from the base Gram
    /// matrices the CPU code computes.
    fn dispatch(gram: &[f64], n_pairs: usize, grid: KernelGrid) -> Vec<f64> {
        let rows = (grid.n1 << grid.lam1) + 1;
        let cols = (grid.n2 << grid.lam2) + 1;
        let consts = crate::gpu::sig_kernel::consts::<f64>(grid);
        let mut kernels = vec![f64::NAN; n_pairs];
        let mut scratch = vec![f64::NAN; n_pairs * 3 * rows];
        let diagonals = (rows + cols - 1) as u32;
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
                ..Default::default()
            };
            let mut disp = Dispatch {
                params,
                gram,
                consts: &consts,
                kernels: &mut kernels,
                scratch: &mut scratch,
            };
            for pair in 0..n_pairs as u32 {
                disp.workgroup(pair);
            }
            d = params.d_end;
        }
        kernels
    }

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
            (3, 5, 7, 2, (0, 0)),
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
            let grid = KernelGrid {
                n1: l1 - 1,
                n2: l2 - 1,
                lam1: lam.0 as u32,
                lam2: lam.1 as u32,
                order: None,
            };
            // Linear kernel: G[a, b] = <Δx_a, Δy_b>.
            let mut gram = Vec::new();
            for p in 0..batch {
                for a in 0..grid.n1 {
                    for b in 0..grid.n2 {
                        gram.push(
                            (0..dim)
                                .map(|i| {
                                    (x[[p, a + 1, i]] - x[[p, a, i]])
                                        * (y[[p, b + 1, i]] - y[[p, b, i]])
                                })
                                .sum(),
                        );
                    }
                }
            }
            let got = dispatch(&gram, batch, grid);
            for (g, w) in got.iter().zip(want.iter()) {
                assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
            }
        }
    }
}
