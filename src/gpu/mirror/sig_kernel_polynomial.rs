//! `shaders/sig_kernel_polynomial.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is
//! `f64`.
//!
//! A workgroup is run whole: between two barriers its invocations touch distinct rows' and columns'
//! edges and read only what earlier diagonals wrote, so running them one after the other is one of
//! the orders the GPU may pick.

use crate::gpu::kernels::PolynomialParams;

type Scalar = f64;

const WG: u32 = 64;
const KEEP: u32 = 1;
const GRID: u32 = 2;
const SEEDED: u32 = 4;

/// The buffers of one dispatch.
pub(crate) struct Dispatch<'a> {
    pub params: PolynomialParams,
    pub gram: &'a [Scalar],
    pub tables: &'a [Scalar],
    pub seeds: &'a [Scalar],
    pub grads: &'a mut [Scalar],
    pub edges: &'a mut [Scalar],
    pub kept: &'a mut [Scalar],
    pub grid: &'a mut [Scalar],
}

impl Dispatch<'_> {
    fn same(&self, n: u32, k: u32) -> Scalar {
        self.tables[(n * self.params.size + k) as usize]
    }

    fn slope(&self, n: u32, k: u32) -> Scalar {
        let size = self.params.size;
        self.tables[(size * size + n * size + k) as usize]
    }

    fn opposite(&self, n: u32, k: u32) -> Scalar {
        let size = self.params.size;
        self.tables[(2 * size * size + k * size + n) as usize]
    }

    fn rows_of(&self, s: u32) -> (u32, u32) {
        let mut lo = 0;
        if s >= self.params.n2 {
            lo = s - (self.params.n2 - 1);
        }
        (lo, s.min(self.params.n1 - 1))
    }

    /// The entry point `main` for workgroup `pair`, all of its invocations.
    pub(crate) fn workgroup(&mut self, pair: u32) {
        let p = self.params;
        if pair >= p.n_pairs {
            return;
        }
        let (n1, n2, size) = (p.n1, p.n2, p.size);
        let cells = n1 * n2;
        let last = n1 + n2 - 2;
        let hb = pair * 2 * (n1 + n2) * size;
        let vb = hb + n1 * size;
        let dhb = vb + n2 * size;
        let dvb = dhb + n1 * size;
        let kb = pair * 2 * cells * size;
        let gb = pair * (n1 + 1) * (n2 + 1);
        let base = pair * cells;
        let u = |x: u32| x as usize;
        let mut h = [0.0; 65];
        let mut v = [0.0; 65];
        let mut pw = [0.0; 65];
        let mut a = [0.0; 65];
        let mut b = [0.0; 65];
        let mut c = [0.0; 65];
        let mut e = [0.0; 65];
        if p.mode == 0 {
            if p.d_begin == 0 {
                for lid in 0..WG {
                    let mut i = lid;
                    while i < n1 {
                        for k in 0..size {
                            self.edges[u(hb + i * size + k)] = if k == 0 { 1.0 } else { 0.0 };
                        }
                        i += WG;
                    }
                    let mut j = lid;
                    while j < n2 {
                        for k in 0..size {
                            self.edges[u(vb + j * size + k)] = if k == 0 { 1.0 } else { 0.0 };
                        }
                        j += WG;
                    }
                    if p.flags & GRID != 0 {
                        let mut j = lid;
                        while j <= n2 {
                            self.grid[u(gb + j)] = 1.0;
                            j += WG;
                        }
                        let mut i = lid;
                        while i <= n1 {
                            self.grid[u(gb + i * (n2 + 1))] = 1.0;
                            i += WG;
                        }
                    }
                }
                // storageBarrier(); workgroupBarrier()
            }
            for s in p.d_begin..p.d_end {
                let span = self.rows_of(s);
                let strips = (span.1 - span.0) / WG + 1;
                for lid in 0..WG {
                    for t in 0..strips {
                        let i = span.0 + t * WG + lid;
                        if i <= span.1 {
                            let j = s - i;
                            let rho = self.gram[u(base + i * n2 + j)];
                            let at = (i * n2 + j) * size;
                            let mut pp: Scalar = 1.0;
                            for k in 0..u(size) {
                                pw[k] = pp;
                                pp = pp * rho;
                                h[k] = self.edges[u(hb + i * size) + k];
                                v[k] = self.edges[u(vb + j * size) + k];
                                a[k] = 0.0;
                                b[k] = 0.0;
                                if p.flags & KEEP != 0 {
                                    self.kept[u(kb + at) + k] = v[k];
                                    self.kept[u(kb + cells * size + at) + k] = h[k];
                                }
                            }
                            for k in 0..size {
                                for n in 1..size {
                                    a[u(n)] = a[u(n)] + self.opposite(n, k) * v[u(k)];
                                    b[u(n)] = b[u(n)] + self.opposite(n, k) * h[u(k)];
                                }
                            }
                            let mut end_h: Scalar = 0.0;
                            let mut end_v: Scalar = 0.0;
                            for k in 0..u(size) {
                                end_h = end_h + v[k];
                                end_v = end_v + h[k];
                            }
                            c[0] = end_h;
                            e[0] = end_v;
                            let mut corner_h = end_h;
                            let mut corner_v = end_v;
                            for n in 1..size {
                                let mut sh = h[u(n)];
                                let mut sv = v[u(n)];
                                for k in 1..n {
                                    let f = self.same(n, k) * pw[u(n - k)];
                                    sh = sh + f * h[u(k)];
                                    sv = sv + f * v[u(k)];
                                }
                                c[u(n)] = sh + pw[u(n)] * a[u(n)];
                                e[u(n)] = sv + pw[u(n)] * b[u(n)];
                                corner_h = corner_h + c[u(n)];
                                corner_v = corner_v + e[u(n)];
                            }
                            for k in 0..u(size) {
                                self.edges[u(hb + i * size) + k] = c[k];
                                self.edges[u(vb + j * size) + k] = e[k];
                            }
                            if p.flags & GRID != 0 {
                                self.grid[u(gb + (i + 1) * (n2 + 1) + j + 1)] =
                                    0.5 * (corner_h + corner_v);
                            }
                        }
                    }
                }
                // storageBarrier(); workgroupBarrier()
            }
            if p.d_end == last + 1 {
                let mut end_h: Scalar = 0.0;
                let mut end_v: Scalar = 0.0;
                for k in 0..size {
                    end_h = end_h + self.edges[u(hb + (n1 - 1) * size + k)];
                    end_v = end_v + self.edges[u(vb + (n2 - 1) * size + k)];
                }
                self.grads[u(pair * p.k_stride + p.k_at)] = 0.5 * (end_h + end_v);
            }
            return;
        }
        if p.d_end == last + 1 {
            for k in 0..u(n1 * size) {
                self.edges[u(dhb) + k] = 0.0;
            }
            for k in 0..u(n2 * size) {
                self.edges[u(dvb) + k] = 0.0;
            }
            // storageBarrier(); workgroupBarrier()
        }
        for ss in p.d_begin..p.d_end {
            let s = p.d_end - 1 - (ss - p.d_begin);
            let span = self.rows_of(s);
            let strips = (span.1 - span.0) / WG + 1;
            for lid in 0..WG {
                for t in 0..strips {
                    let i = span.0 + t * WG + lid;
                    if i > span.1 {
                        continue;
                    }
                    let j = s - i;
                    let rho = self.gram[u(base + i * n2 + j)];
                    let at = (i * n2 + j) * size;
                    let mut seed: Scalar = 0.0;
                    if p.flags & SEEDED != 0 {
                        seed = 0.5 * self.seeds[u(gb + (i + 1) * (n2 + 1) + j + 1)];
                    } else if i + 1 == n1 && j + 1 == n2 {
                        seed = 0.5 * self.seeds[u(pair)];
                    }
                    let mut pp: Scalar = 1.0;
                    for k in 0..u(size) {
                        pw[k] = pp;
                        pp = pp * rho;
                        h[k] = self.kept[u(kb + cells * size + at) + k];
                        v[k] = self.kept[u(kb + at) + k];
                        a[k] = self.edges[u(dhb + i * size) + k] + seed;
                        b[k] = self.edges[u(dvb + j * size) + k] + seed;
                    }
                    let mut d_rho: Scalar = 0.0;
                    for k in 0..size {
                        let (mut ah, mut av, mut oh, mut ov): (Scalar, Scalar, Scalar, Scalar) =
                            (0.0, 0.0, 0.0, 0.0);
                        for n in 1..size {
                            let o = self.opposite(n, k);
                            let sl = n as Scalar * pw[u(n - 1)];
                            av = av + o * (pw[u(n)] * a[u(n)]);
                            ah = ah + o * (pw[u(n)] * b[u(n)]);
                            oh = oh + o * (sl * a[u(n)]);
                            ov = ov + o * (sl * b[u(n)]);
                        }
                        e[u(k)] = a[0] + av;
                        c[u(k)] = b[0] + ah;
                        d_rho = d_rho + (oh * v[u(k)] + ov * h[u(k)]);
                    }
                    for n in 1..size {
                        let g1 = a[u(n)];
                        let g2 = b[u(n)];
                        c[u(n)] = c[u(n)] + g1;
                        e[u(n)] = e[u(n)] + g2;
                        for k in 1..n {
                            let f = self.same(n, k) * pw[u(n - k)];
                            c[u(k)] = c[u(k)] + f * g1;
                            e[u(k)] = e[u(k)] + f * g2;
                            d_rho = d_rho
                                + self.slope(n, k)
                                    * pw[u(n - k - 1)]
                                    * (h[u(k)] * g1 + v[u(k)] * g2);
                        }
                    }
                    self.grads[u(pair * p.k_stride + i * n2 + j)] = d_rho;
                    for k in 0..u(size) {
                        self.edges[u(dhb + i * size) + k] = c[k];
                        self.edges[u(dvb + j * size) + k] = e[k];
                    }
                }
            }
            // storageBarrier(); workgroupBarrier()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig_kernel::polynomial::{backprop, solve, Scratch, Tables};

    /// Every workgroup of one chunk through every window of `step` diagonals, forward (`mode` 0) or
    /// backward (1, the windows last first).
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        params: PolynomialParams,
        step: u32,
        gram: &[f64],
        tables: &[f64],
        seeds: &[f64],
        bufs: (&mut [f64], &mut [f64], &mut [f64], &mut [f64]),
    ) {
        let (grads, edges, kept, grid) = bufs;
        let diagonals = params.n1 + params.n2 - 1;
        let mut windows: Vec<(u32, u32)> = (0..diagonals)
            .step_by(step as usize)
            .map(|d| (d, (d + step).min(diagonals)))
            .collect();
        if params.mode == 1 {
            windows.reverse();
        }
        for (d_begin, d_end) in windows {
            let mut disp = Dispatch {
                params: PolynomialParams {
                    d_begin,
                    d_end,
                    ..params
                },
                gram,
                tables,
                seeds,
                grads: &mut *grads,
                edges: &mut *edges,
                kept: &mut *kept,
                grid: &mut *grid,
            };
            for pair in 0..params.n_pairs {
                disp.workgroup(pair);
            }
        }
    }

    /// Two pairs of a 3 × 4 grid at order 6, in windows of 2 diagonals: the kernels, the corners and
    /// `dF/dG` (seeded at the last corner and at every one) equal the CPU solver's to rounding.
    #[test]
    fn mirror_matches_the_cpu_solver() {
        let (n1, n2, order) = (3u32, 4u32, 6usize);
        let (cells, corners, size) = (
            (n1 * n2) as usize,
            ((n1 + 1) * (n2 + 1)) as usize,
            order + 1,
        );
        let t = Tables::<f64>::new(order);
        let tables = t.flat();
        let gram: Vec<f64> = (0..2 * cells)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.17)
            .collect();
        let d_grid: Vec<f64> = (0..2 * corners)
            .map(|i| (i % 5) as f64 * 0.3 - 0.6)
            .collect();
        let params = PolynomialParams {
            n_pairs: 2,
            n1,
            n2,
            size: size as u32,
            flags: KEEP | GRID,
            k_stride: cells as u32 + 1,
            k_at: cells as u32,
            ..Default::default()
        };
        let mut grads = vec![f64::NAN; 2 * (cells + 1)];
        let mut edges = vec![f64::NAN; 2 * 2 * (n1 + n2) as usize * size];
        let mut kept = vec![f64::NAN; 2 * 2 * cells * size];
        let mut grid = vec![f64::NAN; 2 * corners];
        let bufs = (&mut grads[..], &mut edges[..], &mut kept[..], &mut grid[..]);
        sweep(params, 2, &gram, &tables, &[], bufs);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-13 * (1.0 + b.abs());
        let mut s = Scratch::default();
        let mut row = Vec::new();
        for pair in 0..2 {
            let g = &gram[pair * cells..(pair + 1) * cells];
            let mut want_grid = vec![0.0; corners];
            let rows = |i: usize, r: &mut [f64]| r.copy_from_slice(&g[i * 4..(i + 1) * 4]);
            let k = solve(&t, (3, 4), &mut s, &mut row, rows, Some(&mut want_grid));
            assert!(
                close(grads[pair * (cells + 1) + cells], k),
                "kernel of pair {pair}"
            );
            for (got, want) in grid[pair * corners..(pair + 1) * corners]
                .iter()
                .zip(&want_grid)
            {
                assert!(close(*got, *want), "corner of pair {pair}: {got} vs {want}");
            }
        }
        // Backward, from the kept edges, seeded at the last corner (dF/dk = 1.5, −0.5), then at
        // every corner.
        for (flags, seeds) in [(0, vec![1.5, -0.5]), (SEEDED, d_grid.clone())] {
            let back = PolynomialParams {
                mode: 1,
                flags,
                ..params
            };
            let bufs = (&mut grads[..], &mut edges[..], &mut kept[..], &mut grid[..]);
            sweep(back, 2, &gram, &tables, &seeds, bufs);
            for pair in 0..2 {
                let g = &gram[pair * cells..(pair + 1) * cells];
                let mut want = vec![0.0; cells];
                match flags {
                    0 => backprop(&t, (3, 4), g, seeds[pair], None, &mut s, &mut want),
                    _ => {
                        let d = &d_grid[pair * corners..(pair + 1) * corners];
                        backprop(&t, (3, 4), g, 0.0, Some(d), &mut s, &mut want)
                    }
                };
                for (c, w) in want.iter().enumerate() {
                    let got = grads[pair * (cells + 1) + c];
                    assert!(
                        close(got, *w),
                        "flags {flags}, pair {pair}, cell {c}: {got} vs {w}"
                    );
                }
            }
        }
    }
}
