//! `shaders/sig_kernel_backward.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.
//!
//! A workgroup is run whole: between two barriers its invocations touch disjoint points and read
//! only other diagonals, so running them one after the other is one of the orders the GPU may pick.

use crate::gpu::kernels::SigKernelParams;

type Scalar = f64;

const WG: u32 = 256;
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
    pub ckpt: &'a mut [Scalar],
    pub edge: &'a mut [Scalar],
}

impl Dispatch<'_> {
    fn at(&self, pair: u32, r: u32, c: u32) -> usize {
        let p = self.params;
        ((pair * (p.r1 - p.r0 + 1) + r - p.r0) * p.cols + c) as usize
    }

    fn bar_at(&self, pair: u32, r: u32, c: u32) -> usize {
        let p = self.params;
        self.at(pair, r, c) + (p.n_pairs * (p.r1 - p.r0 + 1) * p.cols) as usize
    }

    fn ckpt_at(&self, pair: u32, r: u32, c: u32) -> usize {
        let p = self.params;
        let per_pair = (p.rows - 2) / p.step;
        ((pair * per_pair + r / p.step - 1) * p.cols + c) as usize
    }

    fn edge_at(&self, pair: u32, block: u32, c: u32) -> usize {
        ((pair * 2 + block % 2) * self.params.cols + c) as usize
    }

    fn block(&self) -> u32 {
        if self.params.step == 0 {
            return 0;
        }
        self.params.r0 / self.params.step
    }

    fn slot(&self, pair: u32, s: u32, r: u32) -> usize {
        ((pair * 3 + s % 3) * self.params.rows + r) as usize
    }

    /// K̄ at row r of diagonal s (`adj` is the workgroup's memory).
    fn kbar(&self, adj: &[Scalar], pair: u32, s: u32, r: u32) -> Scalar {
        if r > self.params.r1 {
            return self.edge[self.edge_at(pair, self.block() + 1, s - r)];
        }
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
        let in_adj = rows <= SHARED_ROWS;
        let mut adj = vec![Scalar::NAN; 3 * SHARED_ROWS as usize];
        if in_adj {
            for lid in 0..WG {
                let mut r = p.r0 + lid;
                while r <= p.r1 {
                    if p.d_begin > r && p.d_begin - 1 - r < cols {
                        adj[near(p.d_begin - 1, r)] =
                            self.grid[self.at(pair, r, p.d_begin - 1 - r)];
                    }
                    if p.d_begin >= r + 2 && p.d_begin - 2 - r < cols {
                        adj[near(p.d_begin - 2, r)] =
                            self.grid[self.at(pair, r, p.d_begin - 2 - r)];
                    }
                    r += WG;
                }
            }
            // workgroupBarrier()
        }
        for s in p.d_begin..p.d_end {
            let mut r_lo = p.r0;
            if s >= cols && s - (cols - 1) > r_lo {
                r_lo = s - (cols - 1);
            }
            let r_hi = s.min(p.r1);
            let mut strips = 0u32;
            if r_hi >= r_lo {
                strips = (r_hi - r_lo) / WG + 1;
            }
            for lid in 0..WG {
                for k in 0..strips {
                    let r = r_lo + k * WG + lid;
                    if r <= r_hi {
                        let c = s - r;
                        let mut v: Scalar = 1.0;
                        if r == p.r0 && r > 0 {
                            v = self.ckpt[self.ckpt_at(pair, r, c)];
                        } else if r > 0 && c > 0 {
                            let h = self.cell_h(pair, r - 1, c - 1);
                            if in_adj {
                                v = (adj[near(s - 1, r)] + adj[near(s - 1, r - 1)])
                                    * self.coef_a(h)
                                    - adj[near(s - 2, r - 1)] * self.coef_b(h);
                            } else {
                                v = (self.grid[self.at(pair, r, c - 1)]
                                    + self.grid[self.at(pair, r - 1, c)])
                                    * self.coef_a(h)
                                    - self.grid[self.at(pair, r - 1, c - 1)] * self.coef_b(h);
                            }
                        }
                        if in_adj {
                            adj[near(s, r)] = v;
                        }
                        let w = self.at(pair, r, c);
                        self.grid[w] = v;
                        if p.step > 0 && r > p.r0 && r < rows - 1 && r % p.step == 0 {
                            let w = self.ckpt_at(pair, r, c);
                            self.ckpt[w] = v;
                        }
                    }
                }
            }
            // workgroupBarrier() with the diagonals in `adj`, else storageBarrier()
        }
        let cells = p.n1 * p.n2;
        if p.d_end == rows + cols - 1 {
            let k = if in_adj {
                adj[near(rows + cols - 2, rows - 1)]
            } else {
                self.grid[self.at(pair, rows - 1, cols - 1)]
            };
            self.grads[(pair * (cells + 1) + cells) as usize] = k;
        }
    }

    fn backward(&mut self, pair: u32) {
        let p = self.params;
        let last_r = p.rows - 1;
        let last_c = p.cols - 1;
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
            let mut r_lo = p.r0 + 1;
            if s > last_c + r_lo {
                r_lo = s - last_c;
            }
            let mut r_hi = 0u32;
            if s >= 1 {
                r_hi = (s - 1).min(p.r1);
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
                        if p.seeded == 1 {
                            v = self.seeds[((pair * p.rows + r) * p.cols + c) as usize];
                        } else if r == last_r && c == last_c {
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
                        if in_adj {
                            adj[near(s, r)] = v;
                        } else {
                            let w = self.slot(pair, s, r);
                            self.scratch[w] = v;
                        }
                        if r == p.r0 + 1 && p.r0 > 0 {
                            let w = self.edge_at(pair, self.block(), c);
                            self.edge[w] = v;
                        }
                        let g = self.bar_at(pair, r, c);
                        self.grid[g] = v;
                    }
                }
            }
            // (storageBarrier() unless in_adj;) workgroupBarrier()
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
        let sixth = self.consts[2];
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
                            let c = (b << p.lam2) + j + 1;
                            let h = self.cell_h(pair, r - 1, c - 1);
                            let dh = self.grid[self.bar_at(pair, r, c)]
                                * ((self.grid[self.at(pair, r - 1, c)]
                                    + self.grid[self.at(pair, r, c - 1)])
                                    * (0.5 + h * sixth)
                                    + self.grid[self.at(pair, r - 1, c - 1)] * h * sixth);
                            row = row + dh;
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
    /// (and base cells), as the driver cuts them: the grid whole (`step == 0`) or in blocks of
    /// `step` rows between checkpoints; seeds per pair, or (`seeded`) at every point.
    fn dispatch(
        gram: &[f64],
        seeds: &[f64],
        seeded: bool,
        grid: KernelGrid,
        window: u32,
        step: usize,
    ) -> Vec<f64> {
        let rows = (grid.n1 << grid.lam1) + 1;
        let cols = (grid.n2 << grid.lam2) + 1;
        let n_pairs = seeds.len() / if seeded { rows * cols } else { 1 };
        let cells = grid.n1 * grid.n2;
        let consts = crate::gpu::sig_kernel::backward_consts::<f64>(grid);
        let blocks: Vec<(usize, usize)> = if step == 0 {
            vec![(0, rows - 1)]
        } else {
            (0..rows - 1)
                .step_by(step)
                .map(|r0| (r0, (r0 + step).min(rows - 1)))
                .collect()
        };
        let held = if step == 0 { rows } else { step + 1 };
        let n_ckpt = (rows - 2).checked_div(step).unwrap_or(1).max(1);
        let mut grads = vec![f64::NAN; n_pairs * (cells + 1)];
        let mut grid_buf = vec![f64::NAN; 2 * n_pairs * held * cols];
        let mut scratch = vec![f64::NAN; n_pairs * 3 * rows];
        let mut ckpt = vec![f64::NAN; n_pairs * n_ckpt * cols];
        let mut edge = vec![f64::NAN; n_pairs * 2 * cols];
        let ranges = |(begin, end): (u32, u32)| {
            (0..(end - begin).div_ceil(window))
                .map(|k| (begin + k * window, (begin + (k + 1) * window).min(end)))
                .collect::<Vec<_>>()
        };
        let diagonals = |(r0, r1): (usize, usize)| ranges((r0 as u32, (r1 + cols) as u32));
        // (phase, block rows, window)
        type Step = (u32, (usize, usize), (u32, u32));
        let mut steps: Vec<Step> = Vec::new();
        if blocks.len() > 1 {
            for &b in &blocks {
                steps.extend(diagonals(b).into_iter().map(|r| (0, b, r)));
            }
        }
        for &b in blocks.iter().rev() {
            steps.extend(diagonals(b).into_iter().map(|r| (0, b, r)));
            steps.extend(diagonals(b).into_iter().rev().map(|r| (1, b, r)));
            let (a0, a1) = (b.0 >> grid.lam1, b.1 >> grid.lam1);
            let cells = ((a0 * grid.n2) as u32, (a1 * grid.n2) as u32);
            steps.extend(ranges(cells).into_iter().map(|r| (2, b, r)));
        }
        for (phase, (r0, r1), (d_begin, d_end)) in steps {
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
                r0: r0 as u32,
                r1: r1 as u32,
                step: step as u32,
                seeded: seeded as u32,
                ..Default::default()
            };
            let mut disp = Dispatch {
                params,
                gram,
                consts: &consts,
                seeds,
                grads: &mut grads,
                grid: &mut grid_buf,
                scratch: &mut scratch,
                ckpt: &mut ckpt,
                edge: &mut edge,
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
        // (batch, n1, n2, dyadic orders, window, block step (0: whole), seeded at every point)
        for (batch, n1, n2, lam, window, step, seeded) in [
            (3, 4, 6, (0, 0), 5, 0, false),
            (2, 1, 89, (1, 0), 7, 0, false),
            (2, 69, 2, (0, 2), 64, 0, false),
            (1, 30, 35, (2, 1), 11, 0, false),
            (2, 1, 1, (1, 2), 3, 0, false),
            // Taller than a workgroup: two strips per diagonal, still in workgroup memory.
            (1, 150, 3, (1, 0), 37, 0, false),
            // Taller than the workgroup memory holds: the adjoint stays in `scratch`.
            (1, 300, 3, (1, 0), 97, 0, false),
            // Checkpointed blocks (multiples of 2^λ1 rows), the last one short.
            (2, 9, 7, (0, 1), 6, 2, false),
            (1, 13, 5, (1, 0), 9, 6, false),
            (1, 300, 3, (1, 0), 97, 50, false),
            // Seeds at every point, whole and in blocks.
            (2, 5, 6, (1, 1), 4, 0, true),
            (2, 7, 4, (1, 0), 5, 4, true),
        ] {
            let grid = KernelGrid {
                n1,
                n2,
                lam1: lam.0 as u32,
                lam2: lam.1 as u32,
                order: None,
            };
            let cells = n1 * n2;
            let points = ((n1 << lam.0) + 1) * ((n2 << lam.1) + 1);
            let per = if seeded { points } else { 1 };
            let gram: Vec<f64> = (0..batch * cells).map(|_| rand() * 1.5).collect();
            let seeds: Vec<f64> = (0..batch * per).map(|_| rand() * 3.0).collect();
            let got = dispatch(&gram, &seeds, seeded, grid, window, step);
            let pde_grid = Grid::new(n1, n2, lam).unwrap();
            let mut s = pde::Scratch::default();
            for p in 0..batch {
                let mut dg = vec![0.0; cells];
                let g = &gram[p * cells..(p + 1) * cells];
                let seed = if seeded {
                    Seed::Grid(&seeds[p * points..(p + 1) * points])
                } else {
                    Seed::Last(seeds[p])
                };
                let k = pde::backprop(&pde_grid, g, seed, usize::MAX, &mut s, &mut dg);
                let out = &got[p * (cells + 1)..(p + 1) * (cells + 1)];
                // The same scheme in the same order; the CPU fuses some multiply-adds where the CPU
                // has FMA, so the two agree to rounding rather than to the bit.
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * (1.0 + b.abs());
                assert!(close(out[cells], k), "kernel {} vs {k}", out[cells]);
                for (g, w) in out[..cells].iter().zip(&dg) {
                    assert!(close(*g, *w), "{g} vs {w} (step {step}, seeded {seeded})");
                }
            }
        }
    }
}
