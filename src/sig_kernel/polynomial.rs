//! pySigLib's polynomial solver of the signature-kernel PDE (`method="polynomial"`, `order` 2–64).
//!
//! Each cell `(i, j)` of the base grid is a unit square on which `∂²K/∂s∂t = ρ·K`, `ρ = G[i, j]`
//! (no dyadic refinement). `K` along each cell edge is a polynomial of degree `order` in the edge's
//! coordinate, held as its `order + 1` monomial coefficients. A cell maps its two incoming edges
//! (`h`, shared with cell `(i, j−1)`, and `v`, shared with `(i−1, j)`) to its two outgoing ones by
//! the power series of the solution, truncated at `order`:
//!
//! ```text
//! out_h[0] = Σ_k v[k],   out_h[n] = h[n] + Σ_{1≤k<n} S[n][k]·ρ^{n−k}·h[k] + ρ^n·Σ_k O[n][k]·v[k]
//! out_v[0] = Σ_k h[k],   out_v[n] = v[n] + Σ_{1≤k<n} S[n][k]·ρ^{n−k}·v[k] + ρ^n·Σ_k O[n][k]·h[k]
//! S[n][k] = k!/(n!·(n−k)!),   O[n][k] = k!/(n!·(n+k)!)
//! ```
//!
//! (with constant edges 1 this is `Σ (ρst)^n/(n!)²`, the exact solution). An edge's value at its far
//! end is the sum of its coefficients; the kernel at a cell's far corner is the mean of its two
//! outgoing edges' ends. The first row and column of edges are the constant 1. The gradient is the
//! exact adjoint of these maps, swept backwards from the incoming edges kept for every cell.

use crate::Scalar;

/// The coefficient tables of one order: `same[n][k]` (`S`), `slope[n][k] = (n − k)·S[n][k]` (its
/// derivative's factor), each `(order + 1)²` row-major, and `opposite` (`O`) stored transposed,
/// `opposite[k][n]`, so that one incoming coefficient updates every outgoing one in a contiguous
/// (vectorisable) loop. Computed in f64 from log-factorials.
pub(crate) struct Tables<T> {
    pub size: usize,
    same: Vec<T>,
    slope: Vec<T>,
    opposite: Vec<T>,
}

impl<T: Scalar> Tables<T> {
    pub fn new(order: usize) -> Self {
        let size = order + 1;
        let (mut same, mut slope, mut opposite) = (
            vec![T::zero(); size * size],
            vec![T::zero(); size * size],
            vec![T::zero(); size * size],
        );
        let ln_fact: Vec<f64> = (0..2 * size)
            .scan(0.0f64, |acc, k| {
                if k > 0 {
                    *acc += (k as f64).ln();
                }
                Some(*acc)
            })
            .collect();
        for n in 1..size {
            for k in 0..size {
                let o = ln_fact[k] - ln_fact[n] - ln_fact[n + k];
                opposite[k * size + n] = T::from_f64(o.exp());
                if (1..n).contains(&k) {
                    let s = (ln_fact[k] - ln_fact[n] - ln_fact[n - k]).exp();
                    same[n * size + k] = T::from_f64(s);
                    slope[n * size + k] = T::from_f64((n - k) as f64 * s);
                }
            }
        }
        Tables {
            size,
            same,
            slope,
            opposite,
        }
    }
}

impl<T: Copy> Tables<T> {
    /// `same`, `slope` and `opposite` end to end, as `shaders/sig_kernel_polynomial.wgsl` reads them.
    pub fn flat(&self) -> Vec<T> {
        [&self.same[..], &self.slope[..], &self.opposite[..]].concat()
    }
}

/// The most coefficients per edge (order 64).
const MAX_SIZE: usize = 65;

/// One thread's buffers: the vertical edges of a row of cells and (backward) every row's incoming
/// vertical and horizontal edges and the vertical edges' adjoints.
#[derive(Default)]
pub(crate) struct Scratch<T> {
    vertical: Vec<T>,
    rows_v: Vec<T>,
    rows_h: Vec<T>,
    d_vertical: Vec<T>,
}

/// An edge's coefficients: `C` slots of which the first `size` are used (`C` is the size itself
/// for the orders compiled in, [`MAX_SIZE`] otherwise).
type Edge<T, const C: usize> = [T; C];

#[inline(always)]
fn powers<T: Scalar, const C: usize>(rho: T, size: usize) -> Edge<T, C> {
    let mut pw = [T::zero(); C];
    let mut p = T::one();
    for v in pw.iter_mut().take(size) {
        *v = p;
        p *= rho;
    }
    pw
}

/// The outgoing edges `(out_h, out_v)` of a cell of coefficient powers `pw` from its incoming `(h, v)`.
#[inline(always)]
fn cell<T: Scalar, const C: usize>(
    t: &Tables<T>,
    size: usize,
    pw: &Edge<T, C>,
    h: &[T],
    v: &[T],
) -> (Edge<T, C>, Edge<T, C>) {
    let (h, v) = (&h[..size], &v[..size]);
    let (mut oh, mut ov) = ([T::zero(); C], [T::zero(); C]);
    for k in 0..size {
        let row = &t.opposite[k * size..(k + 1) * size];
        let (hk, vk) = (h[k], v[k]);
        for n in 1..size {
            oh[n] += row[n] * vk;
            ov[n] += row[n] * hk;
        }
    }
    let (mut out_h, mut out_v) = ([T::zero(); C], [T::zero(); C]);
    out_h[0] = v.iter().fold(T::zero(), |a, &x| a + x);
    out_v[0] = h.iter().fold(T::zero(), |a, &x| a + x);
    for n in 1..size {
        let same = &t.same[n * size..n * size + n];
        let (mut sh, mut sv) = (h[n], v[n]);
        for k in 1..n {
            let f = same[k] * pw[n - k];
            sh += f * h[k];
            sv += f * v[k];
        }
        out_h[n] = sh + pw[n] * oh[n];
        out_v[n] = sv + pw[n] * ov[n];
    }
    (out_h, out_v)
}

/// The adjoint of [`cell`]: given the outgoing edges' adjoints `(gh, gv)`, the incoming ones'
/// `(d_h, d_v)` and `dF/dρ`.
#[inline(always)]
fn cell_backprop<T: Scalar, const C: usize>(
    t: &Tables<T>,
    size: usize,
    pw: &Edge<T, C>,
    (h, v): (&[T], &[T]),
    (gh, gv): (&[T], &[T]),
) -> (Edge<T, C>, Edge<T, C>, T) {
    let (h, v, gh, gv) = (&h[..size], &v[..size], &gh[..size], &gv[..size]);
    let (mut d_h, mut d_v) = ([T::zero(); C], [T::zero(); C]);
    // The opposite terms, out_h[n] += ρ^n·Σ_k O[n][k]·v[k] (and h for out_v), weigh O[n][k] by
    // ρ^n·g[n] for the edges' adjoints and by n·ρ^{n−1}·g[n] for ρ's.
    let (mut wh, mut wv, mut rh, mut rv) = (
        [T::zero(); C],
        [T::zero(); C],
        [T::zero(); C],
        [T::zero(); C],
    );
    for n in 1..size {
        wh[n] = pw[n] * gh[n];
        wv[n] = pw[n] * gv[n];
        let slope = T::from_f64(n as f64) * pw[n - 1];
        rh[n] = slope * gh[n];
        rv[n] = slope * gv[n];
    }
    let mut d_rho = T::zero();
    for k in 0..size {
        let row = &t.opposite[k * size..(k + 1) * size];
        let (mut ah, mut av, mut oh_k, mut ov_k) = (T::zero(), T::zero(), T::zero(), T::zero());
        for n in 1..size {
            av += row[n] * wh[n];
            ah += row[n] * wv[n];
            oh_k += row[n] * rh[n];
            ov_k += row[n] * rv[n];
        }
        d_v[k] = gh[0] + av;
        d_h[k] = gv[0] + ah;
        d_rho += oh_k * v[k] + ov_k * h[k];
    }
    for n in 1..size {
        let (same, slope) = (
            &t.same[n * size..n * size + n],
            &t.slope[n * size..n * size + n],
        );
        let (g1, g2) = (gh[n], gv[n]);
        d_h[n] += g1;
        d_v[n] += g2;
        for k in 1..n {
            let f = same[k] * pw[n - k];
            d_h[k] += f * g1;
            d_v[k] += f * g2;
            d_rho += slope[k] * pw[n - k - 1] * (h[k] * g1 + v[k] * g2);
        }
    }
    (d_h, d_v, d_rho)
}

fn edge_end<T: Scalar>(e: &[T]) -> T {
    e.iter().fold(T::zero(), |a, &x| a + x)
}

fn unit_edges<T: Scalar>(edges: &mut Vec<T>, count: usize, size: usize) {
    edges.clear();
    edges.resize(count * size, T::zero());
    for e in edges.chunks_mut(size) {
        e[0] = T::one();
    }
}

/// Calls `$f::<T, C>(args)` with the edge capacity `C` equal to the tables' size for the orders
/// compiled in (2 to 16: loops of known length unroll and vectorise), else [`MAX_SIZE`].
macro_rules! by_size {
    ($size:expr, $f:ident, $($arg:expr),*) => {
        match $size {
            3 => $f::<T, 3>($($arg),*),
            4 => $f::<T, 4>($($arg),*),
            5 => $f::<T, 5>($($arg),*),
            6 => $f::<T, 6>($($arg),*),
            7 => $f::<T, 7>($($arg),*),
            8 => $f::<T, 8>($($arg),*),
            9 => $f::<T, 9>($($arg),*),
            10 => $f::<T, 10>($($arg),*),
            11 => $f::<T, 11>($($arg),*),
            12 => $f::<T, 12>($($arg),*),
            13 => $f::<T, 13>($($arg),*),
            14 => $f::<T, 14>($($arg),*),
            15 => $f::<T, 15>($($arg),*),
            16 => $f::<T, 16>($($arg),*),
            17 => $f::<T, 17>($($arg),*),
            _ => $f::<T, MAX_SIZE>($($arg),*),
        }
    };
}

/// The kernel of an `n1 × n2` base grid; `gram_row(i, g)` writes row `i` of `G` and is called for
/// `i = 0, 1, …` in order. With `grid`, also every corner's value into it (`(n1 + 1) × (n2 + 1)`,
/// row-major, the first row and column 1). Memory: one row of edges.
pub(crate) fn solve<T: Scalar>(
    t: &Tables<T>,
    n: (usize, usize),
    s: &mut Scratch<T>,
    g: &mut Vec<T>,
    gram_row: impl FnMut(usize, &mut [T]),
    grid: Option<&mut [T]>,
) -> T {
    by_size!(t.size, solve_sized, t, n, s, g, gram_row, grid)
}

fn solve_sized<T: Scalar, const C: usize>(
    t: &Tables<T>,
    (n1, n2): (usize, usize),
    s: &mut Scratch<T>,
    g: &mut Vec<T>,
    mut gram_row: impl FnMut(usize, &mut [T]),
    mut grid: Option<&mut [T]>,
) -> T {
    if let Some(out) = grid.as_deref_mut() {
        out.fill(T::one());
    }
    if n1 == 0 || n2 == 0 {
        return T::one();
    }
    let size = t.size;
    unit_edges(&mut s.vertical, n2, size);
    g.resize(n2, T::zero());
    let mut last = (T::one(), T::one());
    for i in 0..n1 {
        gram_row(i, g);
        let mut h = [T::zero(); C];
        h[0] = T::one();
        for (j, v) in s.vertical.chunks_exact_mut(size).enumerate() {
            let pw = powers::<T, C>(g[j], size);
            let (out_h, out_v) = cell(t, size, &pw, &h, v);
            v.copy_from_slice(&out_v[..size]);
            h = out_h;
            if let Some(out) = grid.as_deref_mut() {
                let corner = T::from_f64(0.5) * (edge_end(&h[..size]) + edge_end(v));
                out[(i + 1) * (n2 + 1) + j + 1] = corner;
            }
        }
        last = (
            edge_end(&h[..size]),
            edge_end(&s.vertical[(n2 - 1) * size..]),
        );
    }
    T::from_f64(0.5) * (last.0 + last.1)
}

/// The gradient `dF/dG` (`n1 × n2`, overwritten) given the whole of `G`, for `F` seeded with `dk`
/// at the final corner or, with `d_grid` (`(n1 + 1) × (n2 + 1)`), at every corner. Returns the
/// kernel. Memory: every cell's two incoming edges, `2·n1·n2·(order + 1)` values.
pub(crate) fn backprop<T: Scalar>(
    t: &Tables<T>,
    n: (usize, usize),
    g: &[T],
    dk: T,
    d_grid: Option<&[T]>,
    s: &mut Scratch<T>,
    dg: &mut [T],
) -> T {
    by_size!(t.size, backprop_sized, t, n, g, dk, d_grid, s, dg)
}

fn backprop_sized<T: Scalar, const C: usize>(
    t: &Tables<T>,
    (n1, n2): (usize, usize),
    g: &[T],
    dk: T,
    d_grid: Option<&[T]>,
    s: &mut Scratch<T>,
    dg: &mut [T],
) -> T {
    dg.fill(T::zero());
    if n1 == 0 || n2 == 0 {
        return T::one();
    }
    let size = t.size;
    // Forward, keeping every cell's incoming edges.
    unit_edges(&mut s.vertical, n2, size);
    // Every kept edge is written below before it is read: only grow the buffers.
    for kept in [&mut s.rows_v, &mut s.rows_h] {
        if kept.len() < n1 * n2 * size {
            kept.resize(n1 * n2 * size, T::zero());
        }
    }
    let mut last = (T::one(), T::one());
    for i in 0..n1 {
        let mut h = [T::zero(); C];
        h[0] = T::one();
        let row = i * n2 * size..(i + 1) * n2 * size;
        let (kept_v, kept_h) = (&mut s.rows_v[row.clone()], &mut s.rows_h[row]);
        for (j, v) in s.vertical.chunks_exact_mut(size).enumerate() {
            kept_v[j * size..(j + 1) * size].copy_from_slice(v);
            kept_h[j * size..(j + 1) * size].copy_from_slice(&h[..size]);
            let pw = powers::<T, C>(g[i * n2 + j], size);
            let (out_h, out_v) = cell(t, size, &pw, &h, v);
            v.copy_from_slice(&out_v[..size]);
            h = out_h;
        }
        last = (
            edge_end(&h[..size]),
            edge_end(&s.vertical[(n2 - 1) * size..]),
        );
    }
    // Backward, from the last cell: each cell's outgoing edges' adjoints are the incoming edges'
    // adjoints of the cells after it, plus the seed at its far corner (the mean of the edges' ends).
    s.d_vertical.clear();
    s.d_vertical.resize(n2 * size, T::zero());
    let half = T::from_f64(0.5);
    for i in (0..n1).rev() {
        let mut d_h = [T::zero(); C];
        for j in (0..n2).rev() {
            let seed = match d_grid {
                Some(d) => half * d[(i + 1) * (n2 + 1) + j + 1],
                None if i + 1 == n1 && j + 1 == n2 => half * dk,
                None => T::zero(),
            };
            let d_v = &mut s.d_vertical[j * size..(j + 1) * size];
            if seed != T::zero() {
                d_h[..size].iter_mut().for_each(|x| *x += seed);
                d_v.iter_mut().for_each(|x| *x += seed);
            }
            let at = (i * n2 + j) * size..(i * n2 + j + 1) * size;
            let (h, v) = (&s.rows_h[at.clone()], &s.rows_v[at]);
            let pw = powers::<T, C>(g[i * n2 + j], size);
            let (in_h, in_v, d_rho) = cell_backprop(t, size, &pw, (h, v), (&d_h, d_v));
            dg[i * n2 + j] = d_rho;
            d_v.copy_from_slice(&in_v[..size]);
            d_h = in_h;
        }
    }
    T::from_f64(0.5) * (last.0 + last.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With constant unit edges one cell gives `Σ (ρ s t)^n / (n!)²` at `s = t = 1`, the exact
    /// solution, to the order kept.
    #[test]
    fn one_cell_is_the_bessel_series() {
        let t = Tables::<f64>::new(20);
        let mut s = Scratch::default();
        let mut g = Vec::new();
        for rho in [0.3, -1.2, 2.5] {
            let k = solve(&t, (1, 1), &mut s, &mut g, |_, row| row[0] = rho, None);
            let mut want = 0.0;
            let mut term = 1.0;
            for n in 0..=20 {
                if n > 0 {
                    term *= rho / (n * n) as f64;
                }
                want += term;
            }
            assert!(
                (k - want).abs() <= 1e-14 * want.abs(),
                "{rho}: {k} vs {want}"
            );
        }
    }

    /// The adjoint against central differences of `G`, seeded at the last corner and at every one.
    #[test]
    fn backprop_matches_finite_differences() {
        let t = Tables::<f64>::new(6);
        let (n1, n2) = (3, 4);
        let g: Vec<f64> = (0..n1 * n2)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.13)
            .collect();
        let d_grid: Vec<f64> = (0..(n1 + 1) * (n2 + 1))
            .map(|i| (i % 5) as f64 * 0.3 - 0.6)
            .collect();
        let mut s = Scratch::default();
        let mut row = Vec::new();
        let f = |g: &[f64], s: &mut Scratch<f64>, row: &mut Vec<f64>| {
            let mut grid = vec![0.0; (n1 + 1) * (n2 + 1)];
            let k = solve(
                &t,
                (n1, n2),
                s,
                row,
                |i, r| r.copy_from_slice(&g[i * n2..(i + 1) * n2]),
                Some(&mut grid),
            );
            (k, grid.iter().zip(&d_grid).map(|(a, b)| a * b).sum::<f64>())
        };
        let mut dg = vec![0.0; n1 * n2];
        let mut dg_grid = vec![0.0; n1 * n2];
        let k = backprop(&t, (n1, n2), &g, 1.0, None, &mut s, &mut dg);
        backprop(&t, (n1, n2), &g, 0.0, Some(&d_grid), &mut s, &mut dg_grid);
        assert!((k - f(&g, &mut s, &mut row).0).abs() < 1e-15);
        for c in 0..n1 * n2 {
            let (mut up, mut down) = (g.clone(), g.clone());
            up[c] += 1e-6;
            down[c] -= 1e-6;
            let (ku, gu) = f(&up, &mut s, &mut row);
            let (kd, gd) = f(&down, &mut s, &mut row);
            assert!((dg[c] - (ku - kd) / 2e-6).abs() < 1e-8, "cell {c}");
            assert!(
                (dg_grid[c] - (gu - gd) / 2e-6).abs() < 1e-8,
                "grid cell {c}"
            );
        }
    }
}
