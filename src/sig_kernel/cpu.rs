//! Signature kernels on the CPU: one pair at a time in a per-thread workspace, rayon over pairs.

use super::options::SigKernelOptions;
use super::pde::{self, Grid, Seed};
use super::polynomial;
use super::static_kernel::{KappaRows, Lift, Lifted};
use crate::cpu::pool;
use crate::{Result, Scalar};
use rayon::prelude::*;

/// Everything fixed for one call: the static kernel, the transforms, the dyadic orders and the
/// original shapes of the two sides.
pub(crate) struct Plan<'a, T> {
    pub lift: Lift<T>,
    /// The polynomial solver's tables, where the options ask for it (else finite differences).
    pub poly: Option<polynomial::Tables<T>>,
    pub opts: &'a SigKernelOptions,
    /// Channels of the original paths.
    pub dim: usize,
    pub budget_bytes: usize,
    /// One thread's workspace for the largest pair of the call, in bytes.
    pub workspace_bytes: u128,
}

/// Reusable buffers of one thread.
#[derive(Default)]
pub(crate) struct Workspace<T> {
    x: Lifted<T>,
    y: Lifted<T>,
    kappa: KappaRows<T>,
    pde: pde::Scratch<T>,
    poly: polynomial::Scratch<T>,
    g: Vec<T>,
    dg: Vec<T>,
    /// Gradients of the self-kernels `k(x, x)`, `k(y, y)` (normalised backprop).
    self_x: Vec<T>,
    self_y: Vec<T>,
}

impl<T: Scalar> Plan<'_, T> {
    /// The grid of a pair of sides: `(n_a, n_b)` increments.
    pub fn grid(&self, na: usize, nb: usize) -> Result<Grid> {
        Grid::new(na, nb, self.opts.dyadic_order.pair())
    }

    fn load(&self, ws: &mut Workspace<T>, x: &[T], y: &[T]) {
        ws.x.load(&self.lift, x, self.dim, self.opts);
        ws.y.load(&self.lift, y, self.dim, self.opts);
        ws.kappa.reset();
    }

    /// `k(x, y)`, unnormalised.
    pub fn kernel(&self, ws: &mut Workspace<T>, x: &[T], y: &[T]) -> T {
        self.load(ws, x, y);
        let Workspace {
            x,
            y,
            kappa,
            pde,
            poly,
            g,
            ..
        } = ws;
        if let Some(t) = &self.poly {
            let gram_row = |a, row: &mut [T]| self.lift.gram_row(a, x, y, kappa, row);
            return polynomial::solve(t, (x.n, y.n), poly, g, gram_row, None);
        }
        // The scheme is symmetric in its two paths (the grid transposes), so the sweep runs along
        // the longer one and keeps rows of the shorter: O(min(L1, L2)) memory.
        let (l1, l2) = self.opts.dyadic_order.pair();
        let (x, y, order) = if (y.n << l2) > (x.n << l1) {
            (&*y, &*x, (l2, l1))
        } else {
            (&*x, &*y, (l1, l2))
        };
        let grid = Grid::new(x.n, y.n, order).expect("grid sizes are checked before computing");
        pde::solve(&grid, pde, |a, g| self.lift.gram_row(a, x, y, kappa, g))
    }

    /// The base Gram matrix `G` of `(x, y)` into `g` (`n1 × n2`, row-major), as the PDE sees it.
    #[cfg(test)]
    pub fn gram_of(&self, ws: &mut Workspace<T>, x: &[T], y: &[T], g: &mut [T]) {
        self.load(ws, x, y);
        self.lift.gram(&ws.x, &ws.y, &mut ws.kappa, g);
    }

    /// The normalised or plain kernel, as the options ask.
    pub fn value(&self, ws: &mut Workspace<T>, x: &[T], y: &[T]) -> T {
        let k = self.kernel(ws, x, y);
        if !self.opts.normalize {
            return k;
        }
        let (kxx, kyy) = (self.kernel(ws, x, x), self.kernel(ws, y, y));
        k / (kxx * kyy).sqrt()
    }

    /// The whole PDE grid of `(x, y)` into `out`.
    pub fn grid_of(&self, ws: &mut Workspace<T>, x: &[T], y: &[T], out: &mut [T]) {
        self.load(ws, x, y);
        let grid = Grid::new(ws.x.n, ws.y.n, self.opts.dyadic_order.pair())
            .expect("grid sizes are checked before computing");
        let Workspace {
            x,
            y,
            kappa,
            pde,
            poly,
            g,
            ..
        } = ws;
        if let Some(t) = &self.poly {
            let gram_row = |a, row: &mut [T]| self.lift.gram_row(a, x, y, kappa, row);
            polynomial::solve(t, (x.n, y.n), poly, g, gram_row, Some(out));
            return;
        }
        pde::solve_grid(&grid, pde, out, |a, g| {
            self.lift.gram_row(a, x, y, kappa, g)
        });
    }

    /// Backprop of `seed` through `k(x, y)`: leaves the transformed-path gradients in `ws.x.grad`,
    /// `ws.y.grad` (route them with [`Plan::route`]) and returns `k(x, y)`.
    fn backprop_core(&self, ws: &mut Workspace<T>, x: &[T], y: &[T], seed: Seed<'_, T>) -> T {
        self.load(ws, x, y);
        let grid = Grid::new(ws.x.n, ws.y.n, self.opts.dyadic_order.pair())
            .expect("grid sizes are checked before computing");
        let cells = ws.x.n * ws.y.n;
        ws.g.resize(cells, T::zero());
        ws.dg.resize(cells, T::zero());
        self.lift.gram(&ws.x, &ws.y, &mut ws.kappa, &mut ws.g);
        let k = match (&self.poly, seed) {
            (Some(t), Seed::Last(dk)) => {
                let n = (ws.x.n, ws.y.n);
                polynomial::backprop(t, n, &ws.g, dk, None, &mut ws.poly, &mut ws.dg)
            }
            (Some(t), Seed::Grid(d)) => {
                let n = (ws.x.n, ws.y.n);
                polynomial::backprop(t, n, &ws.g, T::zero(), Some(d), &mut ws.poly, &mut ws.dg)
            }
            (None, _) => pde::backprop(
                &grid,
                &ws.g,
                seed,
                self.budget_bytes,
                &mut ws.pde,
                &mut ws.dg,
            ),
        };
        self.lift.gram_backprop(&ws.dg, &mut ws.x, &mut ws.y);
        k
    }

    /// Add the gradient of `seed·k(x, y)` (or of `Σ seed·grid`) to `dx` and `dy`; returns `k(x, y)`.
    pub fn backprop(
        &self,
        ws: &mut Workspace<T>,
        x: &[T],
        y: &[T],
        seed: Seed<'_, T>,
        dx: &mut [T],
        dy: &mut [T],
    ) -> T {
        let k = self.backprop_core(ws, x, y, seed);
        self.lift.route(&ws.x, x, self.opts, dx);
        self.lift.route(&ws.y, y, self.opts, dy);
        k
    }

    /// The gradients with respect to the transformed paths of `(x, y)` given `dg = dF/dG`.
    #[cfg(test)]
    pub fn lifted_grads(
        &self,
        ws: &mut Workspace<T>,
        x: &[T],
        y: &[T],
        dg: &[T],
    ) -> (Vec<T>, Vec<T>) {
        self.load(ws, x, y);
        self.lift.gram_backprop(dg, &mut ws.x, &mut ws.y);
        (ws.x.grad.clone(), ws.y.grad.clone())
    }

    /// Add the gradients with respect to the transformed paths of `x` and `y` (`gx`, `gy`: their
    /// increments for a bilinear kernel, their points otherwise, as computed on the GPU) to `dx` and
    /// `dy`, the gradients with respect to the original paths.
    pub fn route_lifted(
        &self,
        ws: &mut Workspace<T>,
        (x, gx): (&[T], &[T]),
        (y, gy): (&[T], &[T]),
        dx: &mut [T],
        dy: &mut [T],
    ) {
        self.load(ws, x, y);
        for (lifted, path, grad, out) in [(&mut ws.x, x, gx, dx), (&mut ws.y, y, gy, dy)] {
            lifted.grad.clear();
            lifted.grad.extend_from_slice(grad);
            self.lift.route(lifted, path, self.opts, out);
        }
    }

    /// Add the gradient of `w·k(x, x)` with respect to `x` (both slots) to `dx`; returns `k(x, x)`.
    pub fn backprop_self(&self, ws: &mut Workspace<T>, x: &[T], w: T, dx: &mut [T]) -> T {
        let k = self.backprop_core(ws, x, x, Seed::Last(w));
        self.lift.route(&ws.x, x, self.opts, dx);
        self.lift.route(&ws.y, x, self.opts, dx);
        k
    }

    /// Add the gradient of `w·k̃(x, y)` for the normalised kernel `k̃ = k(x,y)/sqrt(k(x,x)·k(y,y))`:
    /// `dk̃ = dk(x,y)/s − k̃/2·(dk(x,x)/k(x,x) + dk(y,y)/k(y,y))`, `s = sqrt(k(x,x)·k(y,y))`.
    pub fn backprop_normalized(
        &self,
        ws: &mut Workspace<T>,
        x: &[T],
        y: &[T],
        w: T,
        dx: &mut [T],
        dy: &mut [T],
    ) {
        let mut self_x = std::mem::take(&mut ws.self_x);
        let mut self_y = std::mem::take(&mut ws.self_y);
        self_x.clear();
        self_x.resize(x.len(), T::zero());
        self_y.clear();
        self_y.resize(y.len(), T::zero());
        let kxx = self.backprop_self(ws, x, T::one(), &mut self_x);
        let kyy = self.backprop_self(ws, y, T::one(), &mut self_y);
        let s = (kxx * kyy).sqrt();
        let kxy = self.backprop(ws, x, y, Seed::Last(w / s), dx, dy);
        let kt = kxy / s;
        let half = T::from_f64(0.5);
        let (cx, cy) = (-w * kt * half / kxx, -w * kt * half / kyy);
        for (d, g) in dx.iter_mut().zip(&self_x) {
            *d += cx * *g;
        }
        for (d, g) in dy.iter_mut().zip(&self_y) {
            *d += cy * *g;
        }
        ws.self_x = self_x;
        ws.self_y = self_y;
    }
}

/// Run `f(workspace, i, a_i, b_i)` over matching chunks of two outputs, in parallel.
pub(crate) fn par_pairs<T, F>(
    threads: usize,
    a: &mut [T],
    a_len: usize,
    b: &mut [T],
    b_len: usize,
    f: F,
) where
    T: Scalar,
    F: Fn(&mut Workspace<T>, usize, &mut [T], &mut [T]) + Sync + Send,
{
    if a_len == 0 || b_len == 0 {
        return;
    }
    // No more threads than rows.
    let threads = threads.min(a.len().div_ceil(a_len));
    if threads <= 1 {
        let mut ws = Workspace::default();
        for (i, (ai, bi)) in a.chunks_mut(a_len).zip(b.chunks_mut(b_len)).enumerate() {
            f(&mut ws, i, ai, bi);
        }
        return;
    }
    pool(threads).install(|| {
        a.par_chunks_mut(a_len)
            .zip(b.par_chunks_mut(b_len))
            .enumerate()
            .for_each_init(Workspace::default, |ws, (i, (ai, bi))| f(ws, i, ai, bi));
    });
}

/// Sum `f(workspace, i, acc)` over `i in 0..n` into one vector of `len` entries, each thread
/// accumulating into its own vector (a handful per thread), then adding them up.
pub(crate) fn par_sum<T, F>(threads: usize, n: usize, len: usize, f: F) -> Vec<T>
where
    T: Scalar,
    F: Fn(&mut Workspace<T>, usize, &mut [T]) + Sync + Send,
{
    let fresh = || (Workspace::default(), vec![T::zero(); len]);
    let threads = threads.min(n);
    if threads <= 1 {
        let (mut ws, mut acc) = fresh();
        for i in 0..n {
            f(&mut ws, i, &mut acc);
        }
        return acc;
    }
    pool(threads).install(|| {
        (0..n)
            .into_par_iter()
            .with_min_len(n.div_ceil(4 * threads).max(1))
            .fold(fresh, |(mut ws, mut acc), i| {
                f(&mut ws, i, &mut acc);
                (ws, acc)
            })
            .map(|(_, acc)| acc)
            .reduce(
                || vec![T::zero(); len],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(&b) {
                        *x += *y;
                    }
                    a
                },
            )
    })
}
