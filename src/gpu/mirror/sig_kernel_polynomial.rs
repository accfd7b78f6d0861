//! `shaders/sig_kernel_polynomial.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is
//! `f64`.
//!
//! A workgroup is run diagonal by diagonal, its invocations one after the other within a diagonal
//! (one of the orders the GPU may pick: between two barriers they write distinct slots of `flow`
//! and of the buffers, and read only what earlier diagonals or dispatches wrote). Each invocation's
//! private arrays live in a `Private`; `flow` starts as NaN, so a read of a slot no diagonal wrote
//! shows in the results.

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

/// One invocation's function-scope variables that outlive a diagonal.
struct Private {
    h: [Scalar; 65],
    v: [Scalar; 65],
    pw: [Scalar; 65],
    a: [Scalar; 65],
    b: [Scalar; 65],
    c: [Scalar; 65],
    e: [Scalar; 65],
    rho_next: Scalar,
}

impl Default for Private {
    fn default() -> Private {
        Private {
            h: [0.0; 65],
            v: [0.0; 65],
            pw: [0.0; 65],
            a: [0.0; 65],
            b: [0.0; 65],
            c: [0.0; 65],
            e: [0.0; 65],
            rho_next: 0.0,
        }
    }
}

/// The pair's offsets into the buffers (`main`'s lets).
#[derive(Clone, Copy)]
struct Offsets {
    hb: u32,
    vb: u32,
    dhb: u32,
    dvb: u32,
    kb: u32,
    gb: u32,
    base: u32,
}

/// Where invocation `lid` of a workgroup works (`main`'s lets): its pair (the workgroup's `sub`-th),
/// its row `l` of the band and `i` of the grid, the pair's offsets, and whether it has a cell.
#[derive(Clone, Copy)]
struct Place {
    sub: u32,
    l: u32,
    pair: u32,
    i: u32,
    live: bool,
    o: Offsets,
}

fn u(x: u32) -> usize {
    x as usize
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

    fn flow_at(&self, sub: u32, t: u32, l: u32) -> usize {
        let p = self.params;
        u(((sub * 2 + t % 2) * (p.b1 - p.b0 + 1) + l) * p.size)
    }

    fn rho_at(&self, live: bool, base: u32, i: u32, j: i64) -> Scalar {
        if !live || j < 0 || j >= self.params.n2 as i64 {
            return 0.0;
        }
        self.gram[u(base + i * self.params.n2) + j as usize]
    }

    /// The entry point `main` for workgroup `wid`, all of its invocations.
    pub(crate) fn workgroup(&mut self, wid: u32) {
        let p = self.params;
        let span = WG / p.pack;
        let first = wid * p.pack;
        if first >= p.n_pairs {
            return;
        }
        let mut flow = vec![Scalar::NAN; 2048];
        let mut inv: Vec<Private> = (0..WG).map(|_| Private::default()).collect();
        if p.mode == 0 {
            for lid in 0..WG {
                let Place { l, pair, o, .. } = self.place(first, lid);
                if p.b0 == 0 && p.d_begin == 0 && p.flags & GRID != 0 && pair < p.n_pairs {
                    let (n1, n2) = (p.n1, p.n2);
                    for j in (l..=n2).step_by(u(span)) {
                        self.grid[u(o.gb + j)] = 1.0;
                    }
                    for r in (l..=n1).step_by(u(span)) {
                        self.grid[u(o.gb + r * (n2 + 1))] = 1.0;
                    }
                }
            }
            for (lid, me) in (0..WG).zip(inv.iter_mut()) {
                let Place { l, i, live, o, .. } = self.place(first, lid);
                for k in 0..u(p.size) {
                    me.h[k] = if k == 0 { 1.0 } else { 0.0 };
                    if live && p.d_begin > l && p.d_begin - l < p.n2 {
                        me.h[k] = self.edges[u(o.hb + i * p.size) + k];
                    }
                }
                me.rho_next = self.rho_at(live, o.base, i, p.d_begin as i64 - l as i64);
            }
            for t in p.d_begin..p.d_end {
                for (lid, me) in (0..WG).zip(inv.iter_mut()) {
                    self.forward_step(&mut flow, me, t, first, lid);
                }
                // workgroupBarrier()
            }
            return;
        }
        for (lid, me) in (0..WG).zip(inv.iter_mut()) {
            let Place { l, i, live, o, .. } = self.place(first, lid);
            for k in 0..u(p.size) {
                me.c[k] = 0.0;
                if live && p.d_end >= l && p.d_end - l < p.n2 {
                    me.c[k] = self.edges[u(o.dhb + i * p.size) + k];
                }
            }
            me.rho_next = self.rho_at(live, o.base, i, p.d_end as i64 - 1 - l as i64);
        }
        for tt in p.d_begin..p.d_end {
            let t = p.d_end - 1 - (tt - p.d_begin);
            for (lid, me) in (0..WG).zip(inv.iter_mut()) {
                self.backward_step(&mut flow, me, t, first, lid);
            }
            // workgroupBarrier()
        }
    }

    /// Invocation `lid` of the workgroup whose first pair is `first`.
    fn place(&self, first: u32, lid: u32) -> Place {
        let p = self.params;
        let span = WG / p.pack;
        let (sub, l) = (lid / span, lid % span);
        let pair = first + sub;
        Place {
            sub,
            l,
            pair,
            i: p.b0 + l,
            live: l < p.b1 - p.b0 + 1 && pair < p.n_pairs,
            o: self.offsets(pair),
        }
    }

    /// `main`'s offsets of pair `pair` into the buffers.
    fn offsets(&self, pair: u32) -> Offsets {
        let p = self.params;
        let (n1, n2, size) = (p.n1, p.n2, p.size);
        let cells = n1 * n2;
        let hb = pair * 2 * (n1 + n2) * size;
        let vb = hb + n1 * size;
        let dhb = vb + n2 * size;
        Offsets {
            hb,
            vb,
            dhb,
            dvb: dhb + n1 * size,
            kb: pair * 2 * cells * size,
            gb: pair * (n1 + 1) * (n2 + 1),
            base: pair * cells,
        }
    }

    /// What both sweeps' loop bodies start with on diagonal `t`: invocation `lid`'s place, ρ of its
    /// cell (the next one's, `dir` columns on, loaded now), and its cell's column, `None` where it
    /// has no cell on this diagonal.
    fn enter(
        &self,
        me: &mut Private,
        t: u32,
        first: u32,
        lid: u32,
        dir: i64,
    ) -> (Place, Scalar, Option<u32>) {
        let place = self.place(first, lid);
        let Place { l, i, live, o, .. } = place;
        let j = t as i64 - l as i64;
        let rho = me.rho_next;
        me.rho_next = self.rho_at(live, o.base, i, j + dir);
        let cell = (live && j >= 0 && j < self.params.n2 as i64).then_some(j as u32);
        (place, rho, cell)
    }

    /// Mode 0's loop body: diagonal `t`, invocation `lid` of the workgroup whose first pair is
    /// `first`.
    fn forward_step(
        &mut self,
        flow: &mut [Scalar],
        me: &mut Private,
        t: u32,
        first: u32,
        lid: u32,
    ) {
        let p = self.params;
        let (place, rho, cell) = self.enter(me, t, first, lid, 1);
        let Some(jj) = cell else {
            return;
        };
        let Place {
            sub, l, pair, i, o, ..
        } = place;
        let (n1, n2, size) = (p.n1, p.n2, p.size);
        let cells = n1 * n2;
        let rows = p.b1 - p.b0 + 1;
        let Private {
            h,
            v,
            pw,
            a,
            b,
            c,
            e,
            ..
        } = me;
        let at = (i * n2 + jj) * size;
        let mut pp: Scalar = 1.0;
        for k in 0..u(size) {
            pw[k] = pp;
            pp = pp * rho;
            if i == 0 {
                v[k] = if k == 0 { 1.0 } else { 0.0 };
            } else if l == 0 || t == p.d_begin {
                v[k] = self.edges[u(o.vb + jj * size) + k];
            } else {
                v[k] = flow[self.flow_at(sub, t - 1, l - 1) + k];
            }
            a[k] = 0.0;
            b[k] = 0.0;
            if p.flags & KEEP != 0 {
                self.kept[u(o.kb + at) + k] = v[k];
                self.kept[u(o.kb + cells * size + at) + k] = h[k];
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
            h[k] = c[k];
            flow[self.flow_at(sub, t, l) + k] = e[k];
            if l + 1 == rows || t + 1 == p.d_end {
                self.edges[u(o.vb + jj * size) + k] = e[k];
            }
            if t + 1 == p.d_end {
                self.edges[u(o.hb + i * size) + k] = c[k];
            }
        }
        let corner = 0.5 * (corner_h + corner_v);
        if p.flags & GRID != 0 {
            self.grid[u(o.gb + (i + 1) * (n2 + 1) + jj + 1)] = corner;
        }
        if i + 1 == n1 && jj + 1 == n2 {
            self.grads[u(pair * p.k_stride + p.k_at)] = corner;
        }
    }

    /// Mode 1's loop body: diagonal `t`, invocation `lid` of the workgroup whose first pair is
    /// `first`.
    fn backward_step(
        &mut self,
        flow: &mut [Scalar],
        me: &mut Private,
        t: u32,
        first: u32,
        lid: u32,
    ) {
        let p = self.params;
        let (place, rho, cell) = self.enter(me, t, first, lid, -1);
        let Some(jj) = cell else {
            return;
        };
        let Place {
            sub, l, pair, i, o, ..
        } = place;
        let (n1, n2, size) = (p.n1, p.n2, p.size);
        let cells = n1 * n2;
        let rows = p.b1 - p.b0 + 1;
        let Private {
            h,
            v,
            pw,
            a,
            b,
            c,
            e,
            ..
        } = me;
        let at = (i * n2 + jj) * size;
        let mut seed: Scalar = 0.0;
        if p.flags & SEEDED != 0 {
            seed = 0.5 * self.seeds[u(o.gb + (i + 1) * (n2 + 1) + jj + 1)];
        } else if i + 1 == n1 && jj + 1 == n2 {
            seed = 0.5 * self.seeds[u(pair)];
        }
        let mut pp: Scalar = 1.0;
        for k in 0..u(size) {
            pw[k] = pp;
            pp = pp * rho;
            h[k] = self.kept[u(o.kb + cells * size + at) + k];
            v[k] = self.kept[u(o.kb + at) + k];
            a[k] = c[k] + seed;
            let mut below: Scalar = 0.0;
            if i + 1 < n1 {
                if l + 1 == rows || t + 1 == p.d_end {
                    below = self.edges[u(o.dvb + jj * size) + k];
                } else {
                    below = flow[self.flow_at(sub, t + 1, l + 1) + k];
                }
            }
            b[k] = below + seed;
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
                d_rho = d_rho + self.slope(n, k) * pw[u(n - k - 1)] * (h[u(k)] * g1 + v[u(k)] * g2);
            }
        }
        self.grads[u(pair * p.k_stride + i * n2 + jj)] = d_rho;
        for k in 0..u(size) {
            flow[self.flow_at(sub, t, l) + k] = e[k];
            if l == 0 || t == p.d_begin {
                self.edges[u(o.dvb + jj * size) + k] = e[k];
            }
            if t == p.d_begin {
                self.edges[u(o.dhb + i * size) + k] = c[k];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::sig_kernel::polynomial::{pack, sweeps};
    use crate::sig_kernel::polynomial::{backprop, solve, Scratch, Tables};

    /// Every workgroup of one chunk through the driver's dispatches (bands of `band` rows, windows
    /// of `step` diagonals, `pack` pairs per workgroup), forward (`mode` 0) or backward (1, in
    /// reverse).
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        params: PolynomialParams,
        (band, step, pack): (u32, u64, u32),
        gram: &[f64],
        tables: &[f64],
        seeds: &[f64],
        bufs: (&mut [f64], &mut [f64], &mut [f64], &mut [f64]),
    ) {
        let (grads, edges, kept, grid) = bufs;
        let mut windows = sweeps(params.n1, params.n2, band, step);
        if params.mode == 1 {
            windows.reverse();
        }
        for (b0, b1, d_begin, d_end) in windows {
            let mut disp = Dispatch {
                params: PolynomialParams {
                    b0,
                    b1,
                    d_begin,
                    d_end,
                    pack,
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
            for wid in 0..params.n_pairs.div_ceil(pack) {
                disp.workgroup(wid);
            }
        }
    }

    /// Three pairs of a 5 × 4 grid at order 6: in one band and one dispatch, one pair or 2 or 8
    /// (the driver's choice) per workgroup, the last workgroup partly empty; and in bands of 1–4
    /// rows (a last band shorter) cut into windows of 1–3 diagonals. The kernels, the corners and
    /// `dF/dG` (seeded at the last corner and at every one) equal the CPU solver's to rounding.
    #[test]
    fn mirror_matches_the_cpu_solver() {
        let (n1, n2, order) = (5u32, 4u32, 6usize);
        let (cells, corners, size) = (
            (n1 * n2) as usize,
            ((n1 + 1) * (n2 + 1)) as usize,
            order + 1,
        );
        let dims = (n1 as usize, n2 as usize);
        let t = Tables::<f64>::new(order);
        let tables = t.flat();
        let n_pairs = 3;
        let gram: Vec<f64> = (0..n_pairs * cells)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.17)
            .collect();
        let d_grid: Vec<f64> = (0..n_pairs * corners)
            .map(|i| (i % 5) as f64 * 0.3 - 0.6)
            .collect();
        let params = PolynomialParams {
            n_pairs: n_pairs as u32,
            n1,
            n2,
            size: size as u32,
            flags: KEEP | GRID,
            k_stride: cells as u32 + 1,
            k_at: cells as u32,
            ..Default::default()
        };
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-13 * (1.0 + b.abs());
        let mut s = Scratch::default();
        let mut row = Vec::new();
        let packed = pack(n1 as usize, size) as u32;
        assert_eq!(packed, 8);
        let one_band = [(64, u64::MAX, 1), (64, u64::MAX, packed), (64, 3, 2)];
        let bands = [(2, 2, 1), (1, 3, 1), (3, 1, 1), (4, 2, 1)];
        for plan in one_band.into_iter().chain(bands) {
            let mut grads = vec![f64::NAN; n_pairs * (cells + 1)];
            let mut edges = vec![f64::NAN; n_pairs * 2 * (n1 + n2) as usize * size];
            let mut kept = vec![f64::NAN; n_pairs * 2 * cells * size];
            let mut grid = vec![f64::NAN; n_pairs * corners];
            let bufs = (&mut grads[..], &mut edges[..], &mut kept[..], &mut grid[..]);
            sweep(params, plan, &gram, &tables, &[], bufs);
            for pair in 0..n_pairs {
                let g = &gram[pair * cells..(pair + 1) * cells];
                let mut want_grid = vec![0.0; corners];
                let w = dims.1;
                let rows = |i: usize, r: &mut [f64]| r.copy_from_slice(&g[i * w..(i + 1) * w]);
                let k = solve(&t, dims, &mut s, &mut row, rows, Some(&mut want_grid));
                let got = grads[pair * (cells + 1) + cells];
                assert!(
                    close(got, k),
                    "{plan:?}, kernel of pair {pair}: {got} vs {k}"
                );
                for (got, want) in grid[pair * corners..(pair + 1) * corners]
                    .iter()
                    .zip(&want_grid)
                {
                    assert!(
                        close(*got, *want),
                        "{plan:?}, corner of pair {pair}: {got} vs {want}"
                    );
                }
            }
            // Backward, from the kept edges, seeded at the last corner (dF/dk = 1.5, −0.5), then
            // at every corner.
            for (flags, seeds) in [(0, vec![1.5, -0.5, 0.25]), (SEEDED, d_grid.clone())] {
                let back = PolynomialParams {
                    mode: 1,
                    flags,
                    ..params
                };
                let bufs = (&mut grads[..], &mut edges[..], &mut kept[..], &mut grid[..]);
                sweep(back, plan, &gram, &tables, &seeds, bufs);
                for pair in 0..n_pairs {
                    let g = &gram[pair * cells..(pair + 1) * cells];
                    let mut want = vec![0.0; cells];
                    match flags {
                        0 => backprop(&t, dims, g, seeds[pair], None, &mut s, &mut want),
                        _ => {
                            let d = &d_grid[pair * corners..(pair + 1) * corners];
                            backprop(&t, dims, g, 0.0, Some(d), &mut s, &mut want)
                        }
                    };
                    for (c, w) in want.iter().enumerate() {
                        let got = grads[pair * (cells + 1) + c];
                        assert!(
                            close(got, *w),
                            "{plan:?}, flags {flags}, pair {pair}, cell {c}: {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}
