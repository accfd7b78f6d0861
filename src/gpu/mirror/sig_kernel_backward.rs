//! `shaders/sig_kernel_backward.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.
//!
//! A workgroup is run whole: between two barriers its invocations touch disjoint points and read
//! only other diagonals, so running them one after the other is one of the orders the GPU may pick.

use super::Slots;
use crate::gpu::kernels::SigKernelParams;

type Scalar = f64;

const WG: u32 = 256;

/// The buffers of one dispatch.
pub(crate) struct Dispatch<'a> {
    pub params: SigKernelParams,
    pub gram: &'a [Scalar],
    pub consts: &'a [Scalar],
    pub seeds: &'a [Scalar],
    pub grads: &'a mut [Scalar],
    pub grid: &'a mut [Scalar],
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

    fn cell_h(&self, pair: u32, i: u32, j: u32) -> Scalar {
        let p = self.params;
        self.gram[((pair * p.n1 + (i >> p.lam1)) * p.n2 + (j >> p.lam2)) as usize] * self.consts[0]
    }

    fn h_ahead(&self, pair: u32, i: i64, j: i64) -> Scalar {
        let p = self.params;
        if i < 0 || j < 0 || i >= p.rows as i64 - 1 || j >= p.cols as i64 - 1 {
            return 0.0;
        }
        self.cell_h(pair, i as u32, j as u32)
    }

    fn coef_a(&self, h: Scalar) -> Scalar {
        let h2 = h * h * self.consts[1];
        1.0 + 0.5 * h + h2
    }

    fn coef_b(&self, h: Scalar) -> Scalar {
        let h2 = h * h * self.consts[1];
        1.0 - h2
    }

    fn above(&self, pair: u32, lid: u32, c: i64) -> Scalar {
        let p = self.params;
        if pair >= p.n_pairs || lid != 0 || p.b0 <= p.r0 || c < 0 || c >= p.cols as i64 {
            return 0.0;
        }
        self.grid[self.at(pair, p.b0 - 1, c as u32)]
    }

    fn forward(&mut self, first: u32) {
        let lanes = self.lanes(first);
        let p = self.params;
        let rows = p.rows;
        let cols = p.cols;
        let mut diag = vec![Scalar::NAN; 3 * WG as usize];
        for &(pair, l, at) in &lanes {
            let r = p.b0 + l;
            let live = pair < p.n_pairs && r <= p.b1;
            for k in 1..=2 {
                if live && p.d_begin >= l + k && p.d_begin - k - l < cols {
                    diag[at.near(p.d_begin - k, l)] =
                        self.grid[self.at(pair, r, p.d_begin - k - l)];
                }
            }
        }
        // workgroupBarrier()
        // Per invocation: its row, column, and g0 … g3, corner, u0 … u3.
        struct Walk {
            r: u32,
            i: i64,
            c: i64,
            g: [Scalar; 4],
            corner: Scalar,
            u: [Scalar; 4],
        }
        let mut walks: Vec<Walk> = lanes
            .iter()
            .map(|&(pair, l, _)| {
                let r = p.b0 + l;
                let i = r as i64 - 1;
                let mut c = p.d_begin as i64 - l as i64;
                if !(pair < p.n_pairs && r <= p.b1) {
                    c = cols as i64;
                }
                Walk {
                    r,
                    i,
                    c,
                    g: std::array::from_fn(|k| self.h_ahead(pair, i, c - 1 + k as i64)),
                    corner: self.above(pair, l, c - 1),
                    u: std::array::from_fn(|k| self.above(pair, l, c + k as i64)),
                }
            })
            .collect();
        for t in p.d_begin..p.d_end {
            for (w_i, &(pair, l, at)) in lanes.iter().enumerate() {
                let (r, i, c) = (walks[w_i].r, walks[w_i].i, walks[w_i].c);
                let next_g = self.h_ahead(pair, i, c + 3);
                let next_u = self.above(pair, l, c + 4);
                let w = &mut walks[w_i];
                let h = w.g[0];
                let up = w.u[0];
                let up_left = w.corner;
                w.g.rotate_left(1);
                w.g[3] = next_g;
                w.corner = w.u[0];
                w.u.rotate_left(1);
                w.u[3] = next_u;
                if c >= 0 && c < cols as i64 {
                    let cc = c as u32;
                    let mut v: Scalar = 1.0;
                    if r == p.r0 && r > 0 {
                        v = self.ckpt[self.ckpt_at(pair, r, cc)];
                    } else if r > 0 && cc > 0 {
                        let mut k_up = up;
                        let mut k_corner = up_left;
                        if l > 0 {
                            k_up = diag[at.near(t - 1, l - 1)];
                            k_corner = diag[at.near(t - 2, l - 1)];
                        }
                        v = (diag[at.near(t - 1, l)] + k_up) * self.coef_a(h)
                            - k_corner * self.coef_b(h);
                    }
                    diag[at.near(t, l)] = v;
                    let at = self.at(pair, r, cc);
                    self.grid[at] = v;
                    if p.step > 0 && r > p.r0 && r < rows - 1 && r % p.step == 0 {
                        let at = self.ckpt_at(pair, r, cc);
                        self.ckpt[at] = v;
                    }
                    if r == rows - 1 && cc == cols - 1 {
                        let cells = p.n1 * p.n2;
                        self.grads[(pair * (cells + 1) + cells) as usize] = v;
                    }
                }
                walks[w_i].c = c + 1;
            }
            // workgroupBarrier()
        }
    }

    fn below(&self, pair: u32, r: u32, c: i64) -> Scalar {
        let p = self.params;
        if pair >= p.n_pairs || r != p.b1 || r + 1 >= p.rows || c < 1 || c >= p.cols as i64 {
            return 0.0;
        }
        if r + 1 > p.r1 {
            return self.edge[self.edge_at(pair, self.block() + 1, c as u32)];
        }
        self.grid[self.bar_at(pair, r + 1, c as u32)]
    }

    fn backward(&mut self, first: u32) {
        let lanes = self.lanes(first);
        let p = self.params;
        let last_r = p.rows - 1;
        let last_c = p.cols - 1;
        let mut diag = vec![Scalar::NAN; 3 * WG as usize];
        for &(pair, l, at) in &lanes {
            let r = p.b0 + l;
            let live = pair < p.n_pairs && r <= p.b1;
            for k in 0..2 {
                let t = p.d_end + k;
                if live && t > l && t - l <= last_c {
                    diag[at.near(t, l)] = self.grid[self.bar_at(pair, r, t - l)];
                }
            }
        }
        // workgroupBarrier()
        // Per invocation: its row, column, and x0 … x4, y0 … y3, right, z0 … z3.
        struct Walk {
            r: u32,
            c: i64,
            x: [Scalar; 5],
            y: [Scalar; 4],
            right: Scalar,
            z: [Scalar; 4],
        }
        let mut walks: Vec<Walk> = lanes
            .iter()
            .map(|&(pair, l, _)| {
                let r = p.b0 + l;
                let ri = r as i64;
                let mut c = p.d_end as i64 - 1 - l as i64;
                if !(pair < p.n_pairs && r <= p.b1) {
                    c = -1;
                }
                Walk {
                    r,
                    c,
                    x: std::array::from_fn(|k| self.h_ahead(pair, ri, c - k as i64)),
                    y: std::array::from_fn(|k| self.h_ahead(pair, ri - 1, c - k as i64)),
                    right: self.below(pair, r, c + 1),
                    z: std::array::from_fn(|k| self.below(pair, r, c - k as i64)),
                }
            })
            .collect();
        let mut t = p.d_end;
        while t > p.d_begin {
            let s = t - 1;
            for (w_i, &(pair, l, at)) in lanes.iter().enumerate() {
                let (r, c) = (walks[w_i].r, walks[w_i].c);
                let ri = r as i64;
                let next_x = self.h_ahead(pair, ri, c - 5);
                let next_y = self.h_ahead(pair, ri - 1, c - 4);
                let next_z = self.below(pair, r, c - 4);
                let w = &mut walks[w_i];
                let h_here = w.x[0];
                let h_left = w.x[1];
                let h_up = w.y[0];
                let k_below = w.z[0];
                let k_below_right = w.right;
                w.x.rotate_left(1);
                w.x[4] = next_x;
                w.y.rotate_left(1);
                w.y[3] = next_y;
                w.right = w.z[0];
                w.z.rotate_left(1);
                w.z[3] = next_z;
                if c >= 1 && c <= last_c as i64 {
                    let cc = c as u32;
                    let mut v: Scalar = 0.0;
                    if p.seeded == 1 {
                        v = self.seeds[((pair * p.rows + r) * p.cols + cc) as usize];
                    } else if r == last_r && cc == last_c {
                        v = self.seeds[pair as usize];
                    }
                    if cc < last_c {
                        v = v + diag[at.near(s + 1, l)] * self.coef_a(h_up);
                    }
                    if r < last_r {
                        let mut kb = k_below;
                        let mut kbr = k_below_right;
                        if r < p.b1 {
                            kb = diag[at.near(s + 1, l + 1)];
                            kbr = diag[at.near(s + 2, l + 1)];
                        }
                        let a = self.coef_a(h_left);
                        if cc < last_c {
                            v = v + (kb * a - kbr * self.coef_b(h_here));
                        } else {
                            v = v + kb * a;
                        }
                    }
                    diag[at.near(s, l)] = v;
                    if r == p.r0 + 1 && p.r0 > 0 {
                        let at = self.edge_at(pair, self.block(), cc);
                        self.edge[at] = v;
                    }
                    let at = self.bar_at(pair, r, cc);
                    self.grid[at] = v;
                }
                walks[w_i].c = c - 1;
            }
            // workgroupBarrier()
            t -= 1;
        }
    }

    fn reduce(&mut self, pair: u32, cell: u32) {
        let p = self.params;
        let cells = p.n1 * p.n2;
        let sixth = self.consts[2];
        let sub1 = 1u32 << p.lam1;
        let sub2 = 1u32 << p.lam2;
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
                    * ((self.grid[self.at(pair, r - 1, c)] + self.grid[self.at(pair, r, c - 1)])
                        * (0.5 + h * sixth)
                        + self.grid[self.at(pair, r - 1, c - 1)] * h * sixth);
                row = row + dh;
            }
            acc = acc + row;
            i -= 1;
        }
        self.grads[(pair * (cells + 1) + cell) as usize] = acc * self.consts[0];
    }

    /// Per invocation of the sweeps' workgroup whose first pair is `first`: its pair, its row in
    /// the band and its slots in `diag`.
    fn lanes(&self, first: u32) -> Vec<(u32, u32, Slots)> {
        let span = WG / self.params.pack;
        (0..WG)
            .map(|lid| (first + lid / span, lid % span, Slots::new(lid, span)))
            .collect()
    }

    /// The entry point `main` for workgroup `wid`, all of its invocations.
    pub(crate) fn workgroup(&mut self, wid: u32) {
        let p = self.params;
        if p.phase == 2 {
            let per_pair = (p.d_end - p.d_begin + WG - 1) / WG;
            let pair = wid / per_pair;
            for lid in 0..WG {
                let cell = p.d_begin + (wid % per_pair) * WG + lid;
                if pair < p.n_pairs && cell < p.d_end {
                    self.reduce(pair, cell);
                }
            }
            return;
        }
        let first = wid * self.params.pack;
        if first >= self.params.n_pairs {
            return;
        }
        if self.params.phase == 0 {
            self.forward(first);
        } else {
            self.backward(first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::KernelGrid;
    use crate::sig_kernel::pde::{self, Grid, Seed};

    /// The mirror over every workgroup of a chunk, phase by phase, in bands of at most `band` rows
    /// and windows of `window` diagonals (and base cells), as the driver cuts them: the grid whole
    /// (`step == 0`) or in blocks of `step` rows between checkpoints; seeds per pair, or (`seeded`)
    /// at every point.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        gram: &[f64],
        seeds: &[f64],
        seeded: bool,
        grid: KernelGrid,
        band: usize,
        window: u32,
        step: usize,
    ) -> Vec<f64> {
        let rows = (grid.n1 << grid.lam1) + 1;
        let cols = (grid.n2 << grid.lam2) + 1;
        let n_pairs = seeds.len() / if seeded { rows * cols } else { 1 };
        let cells = grid.n1 * grid.n2;
        let consts = crate::gpu::sig_kernel::backward_consts::<f64>(grid);
        let pack = crate::gpu::sig_kernel::sweep_pack(grid) as u32;
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
        let mut ckpt = vec![f64::NAN; n_pairs * n_ckpt * cols];
        let mut edge = vec![f64::NAN; n_pairs * 2 * cols];
        let ranges = |(begin, end): (u32, u32)| {
            (0..(end - begin).div_ceil(window))
                .map(|k| (begin + k * window, (begin + (k + 1) * window).min(end)))
                .collect::<Vec<_>>()
        };
        // (phase, block rows, band rows, window)
        type Step = (u32, (usize, usize), (usize, usize), (u32, u32));
        let sweep = |phase: u32, b: (usize, usize), lo: usize| -> Vec<Step> {
            let mut out = Vec::new();
            for b0 in (lo..=b.1).step_by(band) {
                let rows_of = (b0, (b0 + band - 1).min(b.1));
                let diagonals = (rows_of.1 - rows_of.0 + cols) as u32;
                out.extend(
                    ranges((0, diagonals))
                        .into_iter()
                        .map(|w| (phase, b, rows_of, w)),
                );
            }
            if phase == 1 {
                out.reverse();
            }
            out
        };
        let mut steps: Vec<Step> = Vec::new();
        if blocks.len() > 1 {
            for &b in &blocks {
                steps.extend(sweep(0, b, b.0));
            }
        }
        for &b in blocks.iter().rev() {
            steps.extend(sweep(0, b, b.0));
            steps.extend(sweep(1, b, b.0 + 1));
            let (a0, a1) = (b.0 >> grid.lam1, b.1 >> grid.lam1);
            let cells = ((a0 * grid.n2) as u32, (a1 * grid.n2) as u32);
            steps.extend(ranges(cells).into_iter().map(|r| (2, b, (0, 0), r)));
        }
        for (phase, (r0, r1), (b0, b1), (d_begin, d_end)) in steps {
            let params = SigKernelParams {
                n_pairs: n_pairs as u32,
                d_begin,
                d_end,
                phase,
                r0: r0 as u32,
                r1: r1 as u32,
                step: step as u32,
                seeded: seeded as u32,
                b0: b0 as u32,
                b1: b1 as u32,
                pack,
                ..crate::gpu::sig_kernel::base_params(grid).unwrap()
            };
            let mut disp = Dispatch {
                params,
                gram,
                consts: &consts,
                seeds,
                grads: &mut grads,
                grid: &mut grid_buf,
                ckpt: &mut ckpt,
                edge: &mut edge,
            };
            let workgroups = if phase == 2 {
                n_pairs as u32 * (d_end - d_begin).div_ceil(WG)
            } else {
                (n_pairs as u32).div_ceil(pack)
            };
            for wid in 0..workgroups {
                disp.workgroup(wid);
            }
        }
        grads
    }

    #[test]
    fn sig_kernel_backward_mirror_matches_cpu() {
        let mut rand = crate::gpu::mirror::uniform(29);
        // (batch, n1, n2, dyadic orders, band rows, window, block step (0: whole), seeded at every
        // point)
        for (batch, n1, n2, lam, band, window, step, seeded) in [
            // Several pairs per workgroup: one partly empty workgroup, then two, the last with one.
            (3, 4, 6, (0, 0), 256, 5, 0, false),
            (9, 30, 7, (0, 0), 256, 9, 0, false),
            (2, 1, 89, (1, 0), 256, 7, 0, false),
            (2, 69, 2, (0, 2), 256, 64, 0, false),
            (1, 30, 35, (2, 1), 256, 11, 0, false),
            (2, 1, 1, (1, 2), 256, 3, 0, false),
            // Taller than a workgroup: two bands.
            (1, 150, 3, (1, 0), 256, 37, 0, false),
            (1, 300, 3, (1, 0), 256, 97, 0, false),
            // Narrow bands: the rows above and below each band come from the grid.
            (2, 9, 11, (1, 1), 5, 6, 0, false),
            (1, 12, 4, (0, 2), 1, 4, 0, false),
            // Checkpointed blocks (multiples of 2^λ1 rows), the last one short, in bands.
            (2, 9, 7, (0, 1), 256, 6, 2, false),
            (1, 13, 5, (1, 0), 4, 9, 6, false),
            (1, 300, 3, (1, 0), 256, 97, 50, false),
            (1, 40, 6, (1, 0), 7, 13, 24, false),
            // Seeds at every point, whole and in blocks.
            (2, 5, 6, (1, 1), 3, 4, 0, true),
            (2, 7, 4, (1, 0), 256, 5, 4, true),
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
            let got = dispatch(&gram, &seeds, seeded, grid, band, window, step);
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
