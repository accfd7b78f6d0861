//! `shaders/sig_kernel_backward.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.
//!
//! A workgroup is run whole: between two barriers its invocations touch disjoint points and read
//! only other diagonals, so running them one after the other is one of the orders the GPU may pick.

use crate::gpu::kernels::SigKernelParams;

type Scalar = f64;

const WG: u32 = 64;
const SHARED_ROWS: u32 = 512;

fn near(s: u32, r: u32) -> usize {
    ((s % 3) * SHARED_ROWS + r) as usize
}

/// The buffers of one dispatch.
pub(crate) struct Dispatch<'a> {
    pub params: SigKernelParams,
    pub gram: &'a [Scalar],
    pub consts: &'a [Scalar],
    pub seeds: &'a [Scalar],
    pub grads: &'a mut [Scalar],
    pub grid: &'a mut [Scalar],
    pub scratch: &'a mut [Scalar],
}

impl Dispatch<'_> {
    fn at(&self, pair: u32, r: u32, c: u32) -> usize {
        ((pair * self.params.rows + r) * self.params.cols + c) as usize
    }

    fn slot(&self, pair: u32, s: u32, r: u32) -> usize {
        ((pair * 3 + s % 3) * self.params.rows + r) as usize
    }

    /// K̄ at row r of diagonal s (`adj` is the workgroup's memory).
    fn kbar(&self, adj: &[Scalar], pair: u32, s: u32, r: u32) -> Scalar {
        if self.params.rows <= SHARED_ROWS {
            return adj[near(s, r)];
        }
        self.scratch[self.slot(pair, s, r)]
    }

    fn cell_h(&self, pair: u32, i: u32, j: u32) -> Scalar {
        let p = self.params;
        self.gram[((pair * p.n1 + (i >> p.lam1)) * p.n2 + (j >> p.lam2)) as usize] * self.consts[0]
    }

    fn coef_a(&self, h: Scalar) -> Scalar {
        let h2 = h * h * self.consts[1];
        1.0 + 0.5 * h + h2
    }

    fn coef_b(&self, h: Scalar) -> Scalar {
        let h2 = h * h * self.consts[1];
        1.0 - h2
    }

    fn forward(&mut self, pair: u32) {
        let p = self.params;
        let rows = p.rows;
        let cols = p.cols;
        for s in p.d_begin..p.d_end {
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
                            let h = self.cell_h(pair, r - 1, c - 1);
                            v = (self.grid[self.at(pair, r, c - 1)]
                                + self.grid[self.at(pair, r - 1, c)])
                                * self.coef_a(h)
                                - self.grid[self.at(pair, r - 1, c - 1)] * self.coef_b(h);
                        }
                        let w = self.at(pair, r, c);
                        self.grid[w] = v;
                    }
                }
            }
            // storageBarrier()
        }
        let cells = p.n1 * p.n2;
        if p.d_end == rows + cols - 1 {
            self.grads[(pair * (cells + 1) + cells) as usize] =
                self.grid[self.at(pair, rows - 1, cols - 1)];
        }
    }

    fn backward(&mut self, pair: u32) {
        let p = self.params;
        let last_r = p.rows - 1;
        let last_c = p.cols - 1;
        let sixth = self.consts[2];
        let in_adj = p.rows <= SHARED_ROWS;
        let mut adj = vec![Scalar::NAN; 3 * SHARED_ROWS as usize];
        if in_adj {
            for lid in 0..WG {
                let mut r = lid;
                while r < p.rows {
                    adj[near(p.d_end, r)] = self.scratch[self.slot(pair, p.d_end, r)];
                    adj[near(p.d_end + 1, r)] = self.scratch[self.slot(pair, p.d_end + 1, r)];
                    r += WG;
                }
            }
            // workgroupBarrier()
        }
        let mut t = p.d_end;
        while t > p.d_begin {
            let s = t - 1;
            let mut r_lo = 1u32;
            if s > last_c + 1 {
                r_lo = s - last_c;
            }
            let mut r_hi = 0u32;
            if s >= 1 {
                r_hi = (s - 1).min(last_r);
            }
            let mut strips = 0u32;
            if r_hi >= r_lo {
                strips = (r_hi - r_lo) / WG + 1;
            }
            for lid in 0..WG {
                for k in 0..strips {
                    let r = r_lo + k * WG + lid;
                    if r <= r_hi {
                        let c = s - r;
                        let mut v: Scalar = 0.0;
                        if r == last_r && c == last_c {
                            v = self.seeds[pair as usize];
                        }
                        if c < last_c {
                            v = v + self.kbar(&adj, pair, s + 1, r)
                                * self.coef_a(self.cell_h(pair, r - 1, c));
                        }
                        if r < last_r {
                            let a = self.coef_a(self.cell_h(pair, r, c - 1));
                            if c < last_c {
                                v = v
                                    + (self.kbar(&adj, pair, s + 1, r + 1) * a
                                        - self.kbar(&adj, pair, s + 2, r + 1)
                                            * self.coef_b(self.cell_h(pair, r, c)));
                            } else {
                                v = v + self.kbar(&adj, pair, s + 1, r + 1) * a;
                            }
                        }
                        let h = self.cell_h(pair, r - 1, c - 1);
                        let dh = v
                            * ((self.grid[self.at(pair, r - 1, c)]
                                + self.grid[self.at(pair, r, c - 1)])
                                * (0.5 + h * sixth)
                                + self.grid[self.at(pair, r - 1, c - 1)] * h * sixth);
                        if in_adj {
                            adj[near(s, r)] = v;
                        } else {
                            let w = self.slot(pair, s, r);
                            self.scratch[w] = v;
                        }
                        let g = self.at(pair, r, c);
                        self.grid[g] = dh;
                    }
                }
            }
            // storageBarrier(); workgroupBarrier()
            t -= 1;
        }
        if in_adj {
            for lid in 0..WG {
                let mut r = lid;
                while r < p.rows {
                    let w = self.slot(pair, p.d_begin, r);
                    self.scratch[w] = adj[near(p.d_begin, r)];
                    let w = self.slot(pair, p.d_begin + 1, r);
                    self.scratch[w] = adj[near(p.d_begin + 1, r)];
                    r += WG;
                }
            }
        }
    }

    fn reduce(&mut self, pair: u32) {
        let p = self.params;
        let cells = p.n1 * p.n2;
        let sub1 = 1u32 << p.lam1;
        let sub2 = 1u32 << p.lam2;
        let strips = (p.d_end - p.d_begin + WG - 1) / WG;
        for lid in 0..WG {
            for k in 0..strips {
                let cell = p.d_begin + k * WG + lid;
                if cell < p.d_end {
                    let a = cell / p.n2;
                    let b = cell % p.n2;
                    let mut acc: Scalar = 0.0;
                    let mut i = sub1;
                    while i > 0 {
                        let r = (a << p.lam1) + i;
                        let mut row: Scalar = 0.0;
                        for j in 0..sub2 {
                            row = row + self.grid[self.at(pair, r, (b << p.lam2) + j + 1)];
                        }
                        acc = acc + row;
                        i -= 1;
                    }
                    self.grads[(pair * (cells + 1) + cell) as usize] = acc * self.consts[0];
                }
            }
        }
    }

    /// The entry point `main` for workgroup `pair`, all of its invocations.
    pub(crate) fn workgroup(&mut self, pair: u32) {
        if pair >= self.params.n_pairs {
            return;
        }
        if self.params.phase == 0 {
            self.forward(pair);
        } else if self.params.phase == 1 {
            self.backward(pair);
        } else {
            self.reduce(pair);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::KernelGrid;
    use crate::sig_kernel::pde::{self, Grid, Seed};

    /// The mirror over every workgroup of a chunk, phase by phase, in windows of `window` diagonals
    /// (and base cells), as the driver cuts them.
    fn dispatch(gram: &[f64], seeds: &[f64], grid: KernelGrid, window: u32) -> Vec<f64> {
        let n_pairs = seeds.len();
        let rows = (grid.n1 << grid.lam1) + 1;
        let cols = (grid.n2 << grid.lam2) + 1;
        let cells = grid.n1 * grid.n2;
        let consts = crate::gpu::sig_kernel::backward_consts::<f64>(grid);
        let mut grads = vec![f64::NAN; n_pairs * (cells + 1)];
        let mut grid_buf = vec![f64::NAN; n_pairs * rows * cols];
        let mut scratch = vec![f64::NAN; n_pairs * 3 * rows];
        let diagonals = (rows + cols - 1) as u32;
        let ranges = |n: u32| {
            (0..n.div_ceil(window))
                .map(|k| (k * window, ((k + 1) * window).min(n)))
                .collect::<Vec<_>>()
        };
        let mut steps: Vec<(u32, (u32, u32))> = Vec::new();
        steps.extend(ranges(diagonals).into_iter().map(|r| (0, r)));
        steps.extend(ranges(diagonals).into_iter().rev().map(|r| (1, r)));
        steps.extend(ranges(cells as u32).into_iter().map(|r| (2, r)));
        for (phase, (d_begin, d_end)) in steps {
            let params = SigKernelParams {
                n_pairs: n_pairs as u32,
                n1: grid.n1 as u32,
                n2: grid.n2 as u32,
                lam1: grid.lam1,
                lam2: grid.lam2,
                rows: rows as u32,
                cols: cols as u32,
                d_begin,
                d_end,
                phase,
            };
            let mut disp = Dispatch {
                params,
                gram,
                consts: &consts,
                seeds,
                grads: &mut grads,
                grid: &mut grid_buf,
                scratch: &mut scratch,
            };
            for pair in 0..n_pairs as u32 {
                disp.workgroup(pair);
            }
        }
        grads
    }

    #[test]
    fn sig_kernel_backward_mirror_matches_cpu() {
        let mut seed = 29u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 52) as f64 - 0.5
        };
        for (batch, n1, n2, lam, window) in [
            (3, 4, 6, (0, 0), 5),
            (2, 1, 89, (1, 0), 7),
            (2, 69, 2, (0, 2), 64),
            (1, 30, 35, (2, 1), 11),
            (2, 1, 1, (1, 2), 3),
            // Taller than the workgroup memory holds: the adjoint stays in `scratch`.
            (1, 300, 3, (1, 0), 97),
        ] {
            let grid = KernelGrid {
                n1,
                n2,
                lam1: lam.0 as u32,
                lam2: lam.1 as u32,
            };
            let cells = n1 * n2;
            let gram: Vec<f64> = (0..batch * cells).map(|_| rand() * 1.5).collect();
            let seeds: Vec<f64> = (0..batch).map(|_| rand() * 3.0).collect();
            let got = dispatch(&gram, &seeds, grid, window);
            let pde_grid = Grid::new(n1, n2, lam).unwrap();
            let mut s = pde::Scratch::default();
            for p in 0..batch {
                let mut dg = vec![0.0; cells];
                let g = &gram[p * cells..(p + 1) * cells];
                let k = pde::backprop(
                    &pde_grid,
                    g,
                    Seed::Last(seeds[p]),
                    usize::MAX,
                    &mut s,
                    &mut dg,
                );
                let out = &got[p * (cells + 1)..(p + 1) * (cells + 1)];
                // The same scheme in the same order; the CPU fuses some multiply-adds where the CPU
                // has FMA, so the two agree to rounding rather than to the bit.
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * (1.0 + b.abs());
                assert!(close(out[cells], k), "kernel {} vs {k}", out[cells]);
                for (g, w) in out[..cells].iter().zip(&dg) {
                    assert!(close(*g, *w), "{g} vs {w}");
                }
            }
        }
    }
}
