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
//! exact adjoint of these maps, swept backwards from the incoming edges kept for each row.

use crate::Scalar;

/// The coefficient tables of one order: `same[n][k]` (`S`), `slope[n][k] = (n − k)·S[n][k]` (its
/// derivative's factor) and `opposite[n][k]` (`O`), each `(order + 1)²`, computed in f64.
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
        // ln k! for the factorials, so that high orders neither overflow nor lose digits.
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
                opposite[n * size + k] = T::from_f64(o.exp());
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

    fn row<'a>(&self, table: &'a [T], n: usize) -> &'a [T] {
        &table[n * self.size..(n + 1) * self.size]
    }
}

/// One thread's buffers: the vertical edges of a row of cells, the horizontal edge along it, the
/// outgoing edges, the powers of `ρ`, and (backward) every row's incoming vertical edges and their
/// adjoints.
#[derive(Default)]
pub(crate) struct Scratch<T> {
    vertical: Vec<T>,
    horizontal: Vec<T>,
    out_h: Vec<T>,
    out_v: Vec<T>,
    powers: Vec<T>,
    rows: Vec<T>,
    row_h: Vec<T>,
    d_vertical: Vec<T>,
    d_horizontal: Vec<T>,
    d_h: Vec<T>,
    d_v: Vec<T>,
}

fn powers<T: Scalar>(rho: T, out: &mut [T]) {
    let mut p = T::one();
    for v in out.iter_mut() {
        *v = p;
        p *= rho;
    }
}

/// The outgoing edges `(out_h, out_v)` of a cell of coefficient `rho` from its incoming `(h, v)`.
fn cell<T: Scalar>(t: &Tables<T>, pw: &[T], h: &[T], v: &[T], out_h: &mut [T], out_v: &mut [T]) {
    out_h[0] = v.iter().fold(T::zero(), |a, &x| a + x);
    out_v[0] = h.iter().fold(T::zero(), |a, &x| a + x);
    for n in 1..t.size {
        let (same, opposite) = (t.row(&t.same, n), t.row(&t.opposite, n));
        let (mut oh, mut ov) = (T::zero(), T::zero());
        for k in 0..t.size {
            oh += opposite[k] * v[k];
            ov += opposite[k] * h[k];
        }
        let (mut sh, mut sv) = (h[n], v[n]);
        for k in 1..n {
            let f = same[k] * pw[n - k];
            sh += f * h[k];
            sv += f * v[k];
        }
        out_h[n] = sh + pw[n] * oh;
        out_v[n] = sv + pw[n] * ov;
    }
}

/// The adjoint of [`cell`]: given the outgoing edges' adjoints `(d_out_h, d_out_v)`, set the incoming
/// ones' `(d_h, d_v)` and return `dF/dρ`.
#[allow(clippy::too_many_arguments)]
fn cell_backprop<T: Scalar>(
    t: &Tables<T>,
    pw: &[T],
    (h, v): (&[T], &[T]),
    (d_out_h, d_out_v): (&[T], &[T]),
    d_h: &mut [T],
    d_v: &mut [T],
) -> T {
    d_h.fill(d_out_v[0]);
    d_v.fill(d_out_h[0]);
    let mut d_rho = T::zero();
    for n in 1..t.size {
        let (gh, gv) = (d_out_h[n], d_out_v[n]);
        d_h[n] += gh;
        d_v[n] += gv;
        let (same, slope, opposite) =
            (t.row(&t.same, n), t.row(&t.slope, n), t.row(&t.opposite, n));
        for k in 1..n {
            let f = same[k] * pw[n - k];
            d_h[k] += f * gh;
            d_v[k] += f * gv;
            d_rho += slope[k] * pw[n - k - 1] * (h[k] * gh + v[k] * gv);
        }
        let (mut oh, mut ov) = (T::zero(), T::zero());
        for k in 0..t.size {
            oh += opposite[k] * v[k];
            ov += opposite[k] * h[k];
            let f = pw[n] * opposite[k];
            d_v[k] += f * gh;
            d_h[k] += f * gv;
        }
        d_rho += T::from_f64(n as f64) * pw[n - 1] * (oh * gh + ov * gv);
    }
    d_rho
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

/// The kernel of an `n1 × n2` base grid; `gram_row(i, g)` writes row `i` of `G` and is called for
/// `i = 0, 1, …` in order. With `grid`, also every corner's value into it (`(n1 + 1) × (n2 + 1)`,
/// row-major, the first row and column 1). Memory: one row of edges.
pub(crate) fn solve<T: Scalar>(
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
    s.out_h.resize(size, T::zero());
    s.out_v.resize(size, T::zero());
    s.powers.resize(size, T::zero());
    g.resize(n2, T::zero());
    let mut k = T::one();
    for i in 0..n1 {
        gram_row(i, g);
        unit_edges(&mut s.horizontal, 1, size);
        for j in 0..n2 {
            powers(g[j], &mut s.powers);
            let v = &mut s.vertical[j * size..(j + 1) * size];
            cell(t, &s.powers, &s.horizontal, v, &mut s.out_h, &mut s.out_v);
            v.copy_from_slice(&s.out_v);
            std::mem::swap(&mut s.horizontal, &mut s.out_h);
            k = T::from_f64(0.5) * (edge_end(&s.horizontal) + edge_end(v));
            if let Some(out) = grid.as_deref_mut() {
                out[(i + 1) * (n2 + 1) + j + 1] = k;
            }
        }
    }
    k
}

/// The gradient `dF/dG` (`n1 × n2`, overwritten) given the whole of `G`, for `F` seeded with `dk`
/// at the final corner or, with `d_grid` (`(n1 + 1) × (n2 + 1)`), at every corner. Returns the
/// kernel. Memory: every row's incoming vertical edges, `n1·n2·(order + 1)` values.
pub(crate) fn backprop<T: Scalar>(
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
    // Forward, keeping each row's incoming vertical edges.
    unit_edges(&mut s.vertical, n2, size);
    s.rows.clear();
    s.rows.reserve(n1 * n2 * size);
    s.out_h.resize(size, T::zero());
    s.out_v.resize(size, T::zero());
    s.powers.resize(size, T::zero());
    let mut k = T::one();
    for i in 0..n1 {
        s.rows.extend_from_slice(&s.vertical);
        unit_edges(&mut s.horizontal, 1, size);
        for j in 0..n2 {
            powers(g[i * n2 + j], &mut s.powers);
            let v = &mut s.vertical[j * size..(j + 1) * size];
            cell(t, &s.powers, &s.horizontal, v, &mut s.out_h, &mut s.out_v);
            v.copy_from_slice(&s.out_v);
            std::mem::swap(&mut s.horizontal, &mut s.out_h);
            k = T::from_f64(0.5) * (edge_end(&s.horizontal) + edge_end(v));
        }
    }
    // Backward, row by row from the last; each row's horizontal edges are rebuilt first.
    s.d_vertical.clear();
    s.d_vertical.resize(n2 * size, T::zero());
    s.d_h.resize(size, T::zero());
    s.d_v.resize(size, T::zero());
    s.row_h.resize((n2 + 1) * size, T::zero());
    let half = T::from_f64(0.5);
    for i in (0..n1).rev() {
        let incoming = &s.rows[i * n2 * size..(i + 1) * n2 * size];
        s.row_h[..size].fill(T::zero());
        s.row_h[0] = T::one();
        for j in 0..n2 {
            powers(g[i * n2 + j], &mut s.powers);
            let (done, rest) = s.row_h.split_at_mut((j + 1) * size);
            let h = &done[j * size..];
            let v = &incoming[j * size..(j + 1) * size];
            cell(t, &s.powers, h, v, &mut rest[..size], &mut s.out_v);
        }
        s.d_horizontal.clear();
        s.d_horizontal.resize(size, T::zero());
        for j in (0..n2).rev() {
            // The corner after cell (i, j) is the mean of its outgoing edges' ends.
            let seed = match d_grid {
                Some(d) => half * d[(i + 1) * (n2 + 1) + j + 1],
                None if i + 1 == n1 && j + 1 == n2 => half * dk,
                None => T::zero(),
            };
            let d_out_v = &mut s.d_vertical[j * size..(j + 1) * size];
            if seed != T::zero() {
                s.d_horizontal.iter_mut().for_each(|x| *x += seed);
                d_out_v.iter_mut().for_each(|x| *x += seed);
            }
            powers(g[i * n2 + j], &mut s.powers);
            let h = &s.row_h[j * size..(j + 1) * size];
            let v = &incoming[j * size..(j + 1) * size];
            dg[i * n2 + j] = cell_backprop(
                t,
                &s.powers,
                (h, v),
                (&s.d_horizontal, d_out_v),
                &mut s.d_h,
                &mut s.d_v,
            );
            d_out_v.copy_from_slice(&s.d_v);
            std::mem::swap(&mut s.d_horizontal, &mut s.d_h);
        }
    }
    k
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
