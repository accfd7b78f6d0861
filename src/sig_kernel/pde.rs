//! The finite-difference Goursat scheme of pySigLib on one pair of paths, and its exact discrete adjoint.
//!
//! Points of the grid are `(r, c)`, `0 ≤ r < rows = (n1 << λ1) + 1`, `0 ≤ c < cols = (n2 << λ2) + 1`;
//! cell `(r, c)` lies between points `(r, c)` and `(r+1, c+1)` and belongs to base cell
//! `(r >> λ1, c >> λ2)` of the increments Gram matrix `G` (`n1 × n2`). With `h = G[base] / 2^(λ1+λ2)`,
//!
//! ```text
//! K[r+1, c+1] = (K[r+1, c] + K[r, c+1])·A(h) − K[r, c]·B(h),   A = 1 + h/2 + h²/12,  B = 1 − h²/12,
//! ```
//!
//! and `K` is 1 on the first row and column. The forward pass keeps two rows of points; the backward
//! pass walks the same recurrence in reverse with adjoint variables, rebuilding the rows of `K` it
//! needs block by block from checkpoint rows so that memory stays bounded on huge grids.

use crate::algebra::simd::{multiversion, MulAdd};
use crate::{Error, Result, Scalar};

/// The refined grid of one pair.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    pub n1: usize,
    pub n2: usize,
    pub lam1: u32,
    pub lam2: u32,
    pub rows: usize,
    pub cols: usize,
}

/// The most points one pair's refined grid may have: 2^40, about 10^12 cell updates, already hours
/// of work on one core; a larger dyadic order is refused rather than left to run for days.
pub(crate) const MAX_GRID_POINTS: usize = 1 << 40;

impl Grid {
    /// `n1`, `n2` increments refined `2^λ1`, `2^λ2` times; fails when the grid has more than
    /// [`MAX_GRID_POINTS`] points (or its size overflows).
    pub fn new(n1: usize, n2: usize, (lam1, lam2): (usize, usize)) -> Result<Grid> {
        let refine = |n: usize, lam: usize| {
            u32::try_from(lam)
                .ok()
                .and_then(|l| 1usize.checked_shl(l).map(|f| (l, f)))
                .and_then(|(l, f)| Some((l, n.checked_mul(f)?.checked_add(1)?)))
        };
        let too_large = || {
            Error::invalid(format!(
                "the refined PDE grid of {n1}×{n2} increments at dyadic order ({lam1}, {lam2}) is too large"
            ))
        };
        let (l1, rows) = refine(n1, lam1).ok_or_else(too_large)?;
        let (l2, cols) = refine(n2, lam2).ok_or_else(too_large)?;
        rows.checked_mul(cols)
            .filter(|&points| points <= MAX_GRID_POINTS)
            .ok_or_else(too_large)?;
        Ok(Grid {
            n1,
            n2,
            lam1: l1,
            lam2: l2,
            rows,
            cols,
        })
    }

    /// `2^-(λ1+λ2)`: a refined cell sees this fraction of its base cell's `G`.
    fn frac<T: Scalar>(&self) -> T {
        T::from_f64(0.5f64.powi((self.lam1 + self.lam2) as i32))
    }

    fn is_trivial(&self) -> bool {
        self.n1 == 0 || self.n2 == 0
    }
}

/// The scheme's coefficients along one refined row of cells (`cols − 1` entries), cached by base row.
#[derive(Default)]
struct Coefficients<T> {
    base: Option<usize>,
    a: Vec<T>,
    b: Vec<T>,
    /// `h`, the refined cell's share of `G`.
    h: Vec<T>,
}

impl<T: Scalar> Coefficients<T> {
    /// Load the coefficients of base row `base`, whose `G` row is `g` (`n2` entries).
    fn load(&mut self, grid: &Grid, base: usize, g: &[T]) {
        if self.base == Some(base) {
            return;
        }
        self.base = Some(base);
        let frac = grid.frac::<T>();
        let (half, twelfth) = (T::from_f64(0.5), T::from_f64(1.0 / 12.0));
        let sub = 1usize << grid.lam2;
        let len = g.len() * sub;
        for v in [&mut self.a, &mut self.b, &mut self.h] {
            v.clear();
            v.resize(len, T::zero());
        }
        let coefficients = |gb: T| {
            let h = gb * frac;
            let h2 = h * h * twelfth;
            (T::one() + half * h + h2, T::one() - h2, h)
        };
        if sub == 1 {
            // The common case, kept free of inner loops so that it vectorises.
            let cells = self
                .a
                .iter_mut()
                .zip(self.b.iter_mut())
                .zip(self.h.iter_mut());
            for (((a, b), h), &gb) in cells.zip(g) {
                (*a, *b, *h) = coefficients(gb);
            }
            return;
        }
        let cells = self
            .a
            .chunks_exact_mut(sub)
            .zip(self.b.chunks_exact_mut(sub));
        for (((a, b), h), &gb) in cells.zip(self.h.chunks_exact_mut(sub)).zip(g) {
            let (av, bv, hv) = coefficients(gb);
            a.fill(av);
            b.fill(bv);
            h.fill(hv);
        }
    }
}

/// Reusable buffers of the scheme for one thread.
#[derive(Default)]
pub(crate) struct Scratch<T> {
    g: Vec<T>,
    coef: Coefficients<T>,
    coef_up: Coefficients<T>,
    prev: Vec<T>,
    next: Vec<T>,
    checkpoints: Vec<T>,
    block: Vec<T>,
    adj: Vec<T>,
    adj_next: Vec<T>,
    dh: Vec<T>,
}

multiversion! {
    /// `next = ` the row of points after `prev`, through one row of cells with coefficients `a`, `b`.
    fn sweep(prev: &[T], next: &mut [T], a: &[T], b: &[T]) => sweep_body
}

#[inline(always)]
fn sweep_body<T: Scalar, M: MulAdd>(prev: &[T], next: &mut [T], a: &[T], b: &[T]) {
    next[0] = T::one();
    let mut left = T::one();
    for (((n, w), &aa), &bb) in next[1..].iter_mut().zip(prev.windows(2)).zip(a).zip(b) {
        // (left + K[r, c+1])·A − K[r, c]·B, arranged so that the chain from one cell to the next
        // (the row's only serial dependency) is a single multiply-add.
        let above = M::madd(w[1], aa, -(w[0] * bb));
        left = M::madd(left, aa, above);
        *n = left;
    }
}

multiversion! {
    /// The adjoint of one row of points `r`, right to left: `K[r, c]` feeds `K[r, c+1]` (weight
    /// `A` of the cell above, `up_a`) and, through the next row's adjoint `below` (when there is a
    /// next row, with its cells' `A`, `B`), `K[r+1, c]` (weight `A`) and `K[r+1, c+1]` (weight −`B`).
    /// `seed` adds `dF/dK[r, ·]` and `corner` adds to the last point's; column 0 (all ones) is left
    /// alone.
    fn adjoint_row(
        adj: &mut [T],
        up_a: &[T],
        below: Option<(&[T], &[T], &[T])>,
        seed: Option<&[T]>,
        corner: T,
    ) => adjoint_row_body
}

#[inline(always)]
fn adjoint_row_body<T: Scalar, M: MulAdd>(
    adj: &mut [T],
    up_a: &[T],
    below: Option<(&[T], &[T], &[T])>,
    seed: Option<&[T]>,
    corner: T,
) {
    let last = adj.len() - 1;
    // Everything but the chain through `adj[c + 1]`, which is then one multiply-add per point.
    match below {
        Some((an, dn_a, dn_b)) => {
            adj[last] = an[last] * dn_a[last - 1];
            for c in 1..last {
                adj[c] = M::madd(an[c], dn_a[c - 1], -(an[c + 1] * dn_b[c]));
            }
        }
        None => adj[1..].fill(T::zero()),
    }
    if let Some(seed) = seed {
        for (v, &s) in adj[1..].iter_mut().zip(&seed[1..]) {
            *v += s;
        }
    }
    adj[last] += corner;
    for c in (1..last).rev() {
        adj[c] = M::madd(adj[c + 1], up_a[c], adj[c]);
    }
}

multiversion! {
    /// `dG[base] += Σ adj[c]·∂K[r, c]/∂h` over the cells `(r−1, c−1)` of one row (`h` theirs, `kp`
    /// and `kc` the rows of points `r−1` and `r`), each refined cell summed into its base cell of
    /// `dg_row` (`dh` is scratch of one entry per cell).
    fn add_dh(adj: &[T], h: &[T], kp: &[T], kc: &[T], dh: &mut [T], dg_row: &mut [T]) => add_dh_body
}

// `M` is part of the `multiversion!` signature; these plain loops are left to LLVM in each version.
#[allow(clippy::extra_unused_type_parameters)]
#[inline(always)]
fn add_dh_body<T: Scalar, M: MulAdd>(
    adj: &[T],
    h: &[T],
    kp: &[T],
    kc: &[T],
    dh: &mut [T],
    dg_row: &mut [T],
) {
    let (half, sixth) = (T::from_f64(0.5), T::from_f64(1.0 / 6.0));
    let last = adj.len() - 1;
    let cells = dh.iter_mut().zip(&adj[1..]).zip(h).zip(kp.windows(2));
    for ((((dh, &a), &h), w), &left) in cells.zip(&kc[..last]) {
        *dh = a * ((w[1] + left) * (half + h * sixth) + w[0] * h * sixth);
    }
    let sub = dh.len() / dg_row.len();
    if sub == 1 {
        for (d, &v) in dg_row.iter_mut().zip(dh.iter()) {
            *d += v;
        }
        return;
    }
    for (d, chunk) in dg_row.iter_mut().zip(dh.chunks_exact(sub)) {
        *d += chunk.iter().fold(T::zero(), |acc, &x| acc + x);
    }
}

/// The kernel `K[rows−1, cols−1]`; `gram_row(a, g)` writes row `a` of `G` and is called for
/// `a = 0, 1, …` in order. Memory: a few rows of `cols` points.
pub(crate) fn solve<T: Scalar>(
    grid: &Grid,
    s: &mut Scratch<T>,
    mut gram_row: impl FnMut(usize, &mut [T]),
) -> T {
    if grid.is_trivial() {
        return T::one();
    }
    s.prev.clear();
    s.prev.resize(grid.cols, T::one());
    s.next.clear();
    s.next.resize(grid.cols, T::one());
    s.g.resize(grid.n2, T::zero());
    s.coef.base = None;
    for a in 0..grid.n1 {
        gram_row(a, &mut s.g);
        s.coef.load(grid, a, &s.g);
        for _ in 0..1usize << grid.lam1 {
            sweep(&s.prev, &mut s.next, &s.coef.a, &s.coef.b);
            std::mem::swap(&mut s.prev, &mut s.next);
        }
    }
    s.prev[grid.cols - 1]
}

/// The whole grid of points into `out` (`rows × cols`, row-major).
pub(crate) fn solve_grid<T: Scalar>(
    grid: &Grid,
    s: &mut Scratch<T>,
    out: &mut [T],
    mut gram_row: impl FnMut(usize, &mut [T]),
) {
    let cols = grid.cols;
    out[..cols].fill(T::one());
    if grid.is_trivial() {
        out.fill(T::one());
        return;
    }
    s.g.resize(grid.n2, T::zero());
    s.coef.base = None;
    for r in 0..grid.rows - 1 {
        let base = r >> grid.lam1;
        if s.coef.base != Some(base) {
            gram_row(base, &mut s.g);
            s.coef.load(grid, base, &s.g);
        }
        let (done, rest) = out.split_at_mut((r + 1) * cols);
        sweep(&done[r * cols..], &mut rest[..cols], &s.coef.a, &s.coef.b);
    }
}

/// What the function being differentiated asks of the grid.
#[derive(Clone, Copy)]
pub(crate) enum Seed<'a, T> {
    /// `dF/dK` at the final point only (the kernel).
    Last(T),
    /// `dF/dK` at every point (`rows × cols`), for `return_grid`.
    Grid(&'a [T]),
}

/// Default memory for the rows of `K` one backward pass holds: 64 MiB.
pub(crate) const BACKPROP_BUDGET_BYTES: usize = 64 << 20;

/// The gradient `dF/dG` (`n1 × n2`, overwritten) of a pair, given the whole of `G` (`n1 × n2`).
/// Returns the kernel `K[rows−1, cols−1]`.
///
/// The grid of `K` is held whole when it fits in `budget_bytes`; otherwise rows are checkpointed every
/// `s` rows on a first forward pass and each block of `s` rows is rebuilt from its checkpoint just
/// before the reverse sweep crosses it (one extra forward pass, memory ~`(rows/s + s)·cols`).
pub(crate) fn backprop<T: Scalar>(
    grid: &Grid,
    g: &[T],
    seed: Seed<'_, T>,
    budget_bytes: usize,
    s: &mut Scratch<T>,
    dg: &mut [T],
) -> T {
    dg.fill(T::zero());
    if grid.is_trivial() {
        return T::one();
    }
    let (rows, cols, n2) = (grid.rows, grid.cols, grid.n2);
    let g_row = |base: usize| &g[base * n2..(base + 1) * n2];
    let step = block_rows(rows, cols, std::mem::size_of::<T>(), budget_bytes);
    let blocks = (rows - 1).div_ceil(step);

    // Checkpoint rows 0, step, 2·step, … (the first block's start, row 0, is all ones).
    s.checkpoints.clear();
    s.checkpoints.resize(blocks * cols, T::one());
    s.prev.clear();
    s.prev.resize(cols, T::one());
    s.next.clear();
    s.next.resize(cols, T::one());
    s.coef.base = None;
    for r in 0..(blocks - 1) * step {
        s.coef.load(grid, r >> grid.lam1, g_row(r >> grid.lam1));
        sweep(&s.prev, &mut s.next, &s.coef.a, &s.coef.b);
        std::mem::swap(&mut s.prev, &mut s.next);
        if (r + 1) % step == 0 {
            let k = (r + 1) / step;
            s.checkpoints[k * cols..(k + 1) * cols].copy_from_slice(&s.prev);
        }
    }

    // Every row of a block is written (copied or swept) before it is read.
    s.block
        .resize(s.block.len().max((step + 1) * cols), T::zero());
    s.adj.clear();
    s.adj.resize(cols, T::zero());
    s.adj_next.clear();
    s.adj_next.resize(cols, T::zero());
    s.dh.clear();
    s.dh.resize(cols - 1, T::zero());
    let last = cols - 1;
    let mut kernel = T::one();
    // `coef` holds the cells below point row r (cell row r), `coef_up` those above (cell row r − 1).
    s.coef.base = None;
    s.coef_up.base = None;
    for k in (0..blocks).rev() {
        let r0 = k * step;
        let r1 = (r0 + step).min(rows - 1);
        s.block[..cols].copy_from_slice(&s.checkpoints[k * cols..(k + 1) * cols]);
        for r in r0..r1 {
            s.coef_up.load(grid, r >> grid.lam1, g_row(r >> grid.lam1));
            let (done, rest) = s.block.split_at_mut((r - r0 + 1) * cols);
            sweep(
                &done[(r - r0) * cols..],
                &mut rest[..cols],
                &s.coef_up.a,
                &s.coef_up.b,
            );
        }
        if k == blocks - 1 {
            kernel = s.block[(r1 - r0) * cols + last];
        }
        for r in (r0 + 1..=r1).rev() {
            let has_next = r + 1 < rows;
            if has_next {
                s.coef.load(grid, r >> grid.lam1, g_row(r >> grid.lam1));
            }
            s.coef_up
                .load(grid, (r - 1) >> grid.lam1, g_row((r - 1) >> grid.lam1));
            let below = has_next.then(|| (&s.adj_next[..], &s.coef.a[..], &s.coef.b[..]));
            let seed_row = match seed {
                Seed::Grid(d) => Some(&d[r * cols..(r + 1) * cols]),
                Seed::Last(_) => None,
            };
            let corner = match seed {
                Seed::Last(w) if !has_next => w,
                _ => T::zero(),
            };
            adjoint_row(&mut s.adj, &s.coef_up.a, below, seed_row, corner);
            // dK[r, c]/dh of cell (r−1, c−1), times the adjoint, summed into the cell's base.
            let (kp, kc) = (
                &s.block[(r - 1 - r0) * cols..(r - r0) * cols],
                &s.block[(r - r0) * cols..(r - r0 + 1) * cols],
            );
            let dg_row = &mut dg[((r - 1) >> grid.lam1) * n2..][..n2];
            add_dh(&s.adj, &s.coef_up.h, kp, kc, &mut s.dh, dg_row);
            std::mem::swap(&mut s.adj, &mut s.adj_next);
            std::mem::swap(&mut s.coef, &mut s.coef_up);
        }
    }
    let frac = grid.frac::<T>();
    for d in dg.iter_mut() {
        *d *= frac;
    }
    kernel
}

/// Rows per block: all of them when the grid fits the budget, else about `sqrt(rows)` or as many
/// as half the budget holds, whichever is more.
fn block_rows(rows: usize, cols: usize, size: usize, budget: usize) -> usize {
    let all = rows - 1;
    let row_bytes = cols.saturating_mul(size).max(1);
    if rows.saturating_mul(row_bytes) <= budget {
        return all.max(1);
    }
    let by_budget = budget / 2 / row_bytes;
    by_budget.max(rows.isqrt()).clamp(1, all.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram(n1: usize, n2: usize) -> Vec<f64> {
        (0..n1 * n2)
            .map(|i| ((i * 7919 % 23) as f64 / 23.0 - 0.5) * 1.7)
            .collect()
    }

    #[test]
    fn checkpointed_blocks_match_the_whole_grid() {
        for (n1, n2, lam) in [
            (5, 7, (0, 0)),
            (4, 3, (1, 2)),
            (9, 2, (2, 0)),
            (1, 1, (1, 1)),
        ] {
            let grid = Grid::new(n1, n2, lam).unwrap();
            let g = gram(n1, n2);
            let mut s = Scratch::default();
            let mut whole = vec![0.0; n1 * n2];
            let k = backprop(&grid, &g, Seed::Last(1.0), usize::MAX, &mut s, &mut whole);
            let forward = solve(&grid, &mut s, |a, row| {
                row.copy_from_slice(&g[a * n2..(a + 1) * n2])
            });
            assert!((k - forward).abs() < 1e-14);
            for budget in [0, 64, 200] {
                let mut blocked = vec![0.0; n1 * n2];
                let kb = backprop(&grid, &g, Seed::Last(1.0), budget, &mut s, &mut blocked);
                assert_eq!(kb.to_bits(), k.to_bits());
                for (a, b) in whole.iter().zip(&blocked) {
                    assert!((a - b).abs() <= 1e-13 * a.abs().max(1.0), "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn grid_ends_at_the_kernel() {
        let grid = Grid::new(3, 4, (1, 0)).unwrap();
        let g = gram(3, 4);
        let mut s = Scratch::default();
        let mut out = vec![0.0; grid.rows * grid.cols];
        solve_grid(&grid, &mut s, &mut out, |a, row| {
            row.copy_from_slice(&g[a * 4..(a + 1) * 4])
        });
        let k = solve(&grid, &mut s, |a, row| {
            row.copy_from_slice(&g[a * 4..(a + 1) * 4])
        });
        assert_eq!(out[out.len() - 1], k);
        assert!(out[..grid.cols].iter().all(|&v| v == 1.0));
    }
}
