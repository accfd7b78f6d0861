//! From a pair of paths to the PDE's increments Gram matrix, and back.
//!
//! The finite-difference scheme only sees `G[a, b] = Δ²κ`, the second mixed difference of the static
//! kernel over cell `(a, b)` of the grid of (transformed) points. For a bilinear kernel
//! `κ(p, q) = c<p, q>` that is exactly `c<Δx_a, Δy_b>`, so only increments are needed (cheaper and free
//! of cancellation); any other kernel is evaluated on the points ([`Point`], in `point_kernel.rs`).

use super::options::{SigKernelOptions, StaticKernel};
use super::point_kernel::{Point, PointKernel};
use crate::algebra::simd::{multiversion, MulAdd};
use crate::algebra::Increments;
use crate::Scalar;

/// How the increments Gram matrix is built: from increments (bilinear kernels) or from points.
pub(crate) enum Lift<T> {
    /// `κ(p, q) = c<p, q>`.
    Bilinear(T),
    Points(Point<T>),
}

impl<T: Scalar> Lift<T> {
    pub fn new(kernel: &StaticKernel) -> Self {
        match *kernel {
            StaticKernel::Linear => Lift::Bilinear(T::one()),
            StaticKernel::ScaledLinear { scale: s } => Lift::Bilinear(T::from_f64(s * s)),
            _ => Lift::Points(Point::new(kernel).expect("every other kernel is a point kernel")),
        }
    }

    fn needs_points(&self) -> bool {
        !matches!(self, Lift::Bilinear(_))
    }

    /// Row `a` of `G` into `g` (one entry per increment of `y`). Rows are cheapest in increasing
    /// order: a point kernel's row of `κ(x_{a+1}, y_·)` is kept in `kappa` for row `a + 1`.
    pub fn gram_row(
        &self,
        a: usize,
        x: &Lifted<T>,
        y: &Lifted<T>,
        kappa: &mut KappaRows<T>,
        g: &mut [T],
    ) {
        match self {
            Lift::Bilinear(c) => bilinear_row(*c, x.inc(a), &y.incs_t, g),
            Lift::Points(k) => point_gram_row(k, a, x, y, kappa, g),
        }
    }

    /// The whole of `G` (`x.n × y.n`, row-major).
    pub fn gram(&self, x: &Lifted<T>, y: &Lifted<T>, kappa: &mut KappaRows<T>, g: &mut [T]) {
        kappa.reset();
        if y.n == 0 {
            return;
        }
        for (a, row) in g.chunks_mut(y.n).enumerate() {
            self.gram_row(a, x, y, kappa, row);
        }
    }

    /// Given `dG` (`x.n × y.n`), set `x.grad` and `y.grad` to the gradients with respect to the
    /// increments (bilinear) or the points (other kernels) of the transformed paths.
    pub fn gram_backprop(&self, dg: &[T], x: &mut Lifted<T>, y: &mut Lifted<T>) {
        let (n1, n2, d) = (x.n, y.n, x.dim);
        match self {
            Lift::Bilinear(c) => {
                x.grad.clear();
                x.grad.resize(n1 * d, T::zero());
                y.grad_t.clear();
                y.grad_t.resize(n2 * d, T::zero());
                bilinear_backprop(*c, d, dg, &x.incs, &y.incs_t, &mut x.grad, &mut y.grad_t);
                y.grad.clear();
                y.grad.resize(n2 * d, T::zero());
                for (i, column) in y.grad_t.chunks_exact(n2.max(1)).enumerate() {
                    for (b, &v) in column.iter().enumerate() {
                        y.grad[b * d + i] = v;
                    }
                }
            }
            Lift::Points(k) => point_gram_backprop(k, dg, x, y),
        }
    }

    /// Add the transformed-path gradient held in `lifted.grad` to `out`, the gradient with respect to
    /// the original `path` (time channels have no point to go to and are dropped).
    pub fn route(&self, lifted: &Lifted<T>, path: &[T], opts: &SigKernelOptions, out: &mut [T]) {
        let dim = lifted.orig_dim;
        if !self.needs_points() {
            let inc = Increments::new(path, dim, &opts.transform);
            for (t, dz) in lifted.grad.chunks(lifted.dim).enumerate() {
                inc.scatter(t, dz, out);
            }
            return;
        }
        for (j, dp) in lifted.grad.chunks(lifted.dim).enumerate() {
            let (lag, lead) = lag_lead(j, opts.transform.lead_lag);
            for c in 0..dim {
                out[lag * dim + c] += dp[c];
            }
            if opts.transform.lead_lag {
                for c in 0..dim {
                    out[lead * dim + c] += dp[dim + c];
                }
            }
        }
    }
}

/// The two rows `κ(x_a, y_·)` and `κ(x_{a+1}, y_·)` a point kernel's Gram row is the difference of.
#[derive(Default)]
pub(crate) struct KappaRows<T> {
    cur: Vec<T>,
    next: Vec<T>,
    /// The `a` whose row `cur` holds.
    at: Option<usize>,
}

impl<T> KappaRows<T> {
    /// Forget the cached row (new paths).
    pub fn reset(&mut self) {
        self.at = None;
    }
}

fn kappa_row<T: Scalar, K: PointKernel<T>>(k: &K, p: &[T], y: &Lifted<T>, out: &mut Vec<T>) {
    out.clear();
    out.extend(y.points.chunks(y.dim).map(|q| k.eval(p, q)));
}

fn point_gram_row<T: Scalar, K: PointKernel<T>>(
    k: &K,
    a: usize,
    x: &Lifted<T>,
    y: &Lifted<T>,
    rows: &mut KappaRows<T>,
    g: &mut [T],
) {
    if rows.at != Some(a) {
        kappa_row(k, x.point(a), y, &mut rows.cur);
    }
    kappa_row(k, x.point(a + 1), y, &mut rows.next);
    for (b, gb) in g.iter_mut().enumerate() {
        *gb = (rows.next[b + 1] - rows.next[b]) - (rows.cur[b + 1] - rows.cur[b]);
    }
    std::mem::swap(&mut rows.cur, &mut rows.next);
    rows.at = Some(a + 1);
}

fn point_gram_backprop<T: Scalar, K: PointKernel<T>>(
    k: &K,
    dg: &[T],
    x: &mut Lifted<T>,
    y: &mut Lifted<T>,
) {
    let (n1, n2, d) = (x.n, y.n, x.dim);
    x.grad.clear();
    x.grad.resize((n1 + 1) * d, T::zero());
    y.grad.clear();
    y.grad.resize((n2 + 1) * d, T::zero());
    let at = |a: usize, b: usize| dg[a * n2 + b];
    // κ(x_i, y_j) enters G[i-1, j-1] and G[i, j] with +, G[i-1, j] and G[i, j-1] with −.
    for i in 0..=n1 {
        for j in 0..=n2 {
            let mut w = T::zero();
            if i > 0 && j > 0 {
                w += at(i - 1, j - 1);
            }
            if i > 0 && j < n2 {
                w -= at(i - 1, j);
            }
            if i < n1 && j > 0 {
                w -= at(i, j - 1);
            }
            if i < n1 && j < n2 {
                w += at(i, j);
            }
            if w != T::zero() {
                let (dp, dq) = (
                    &mut x.grad[i * d..(i + 1) * d],
                    &mut y.grad[j * d..(j + 1) * d],
                );
                k.grad(
                    &x.points[i * d..(i + 1) * d],
                    &y.points[j * d..(j + 1) * d],
                    w,
                    dp,
                    dq,
                );
            }
        }
    }
}

/// The original points a lead-lag point `j` reads its (lag, lead) channels from.
fn lag_lead(j: usize, lead_lag: bool) -> (usize, usize) {
    if lead_lag {
        (j / 2, j.div_ceil(2))
    } else {
        (j, j)
    }
}

multiversion! {
    /// Row `a` of a bilinear kernel's `G`: `g[b] = c·Σ_i Δx_a[i]·Δy_b[i]`, channel by channel over
    /// `y`'s transposed increments `y_t` (`dim × n2`): contiguous multiply-adds across `b`, summed
    /// in the order of a dot product.
    fn bilinear_row(c: T, xa: &[T], y_t: &[T], g: &mut [T]) => bilinear_row_body
}

// `M` is part of the `multiversion!` signature; these plain loops are left to LLVM in each version.
#[allow(clippy::extra_unused_type_parameters)]
#[inline(always)]
fn bilinear_row_body<T: Scalar, M: MulAdd>(c: T, xa: &[T], y_t: &[T], g: &mut [T]) {
    if g.is_empty() {
        return;
    }
    g.fill(T::zero());
    for (&xi, yi) in xa.iter().zip(y_t.chunks_exact(g.len())) {
        for (gb, &v) in g.iter_mut().zip(yi) {
            *gb += xi * v;
        }
    }
    for gb in g.iter_mut() {
        *gb *= c;
    }
}

multiversion! {
    /// A bilinear kernel's `dG` (`n1 × n2`) to the increments of `dim` channels: `dx = c·dG·Δy`
    /// (`n1 × dim`) and `dy_t = c·(dGᵀ·Δx)ᵀ` (`dim × n2`, transposed so that both loops run along
    /// contiguous rows of `dG`).
    fn bilinear_backprop(
        c: T,
        dim: usize,
        dg: &[T],
        x: &[T],
        y_t: &[T],
        dx: &mut [T],
        dy_t: &mut [T],
    ) => bilinear_backprop_body
}

#[inline(always)]
fn bilinear_backprop_body<T: Scalar, M: MulAdd>(
    c: T,
    dim: usize,
    dg: &[T],
    x: &[T],
    y_t: &[T],
    dx: &mut [T],
    dy_t: &mut [T],
) {
    if dim == 0 {
        return;
    }
    let n2 = dy_t.len() / dim;
    if n2 == 0 {
        return;
    }
    for ((dg_a, xa), dxa) in dg
        .chunks_exact(n2)
        .zip(x.chunks_exact(dim))
        .zip(dx.chunks_exact_mut(dim))
    {
        for ((&xi, yi), (dxi, dyi)) in xa
            .iter()
            .zip(y_t.chunks_exact(n2))
            .zip(dxa.iter_mut().zip(dy_t.chunks_exact_mut(n2)))
        {
            *dxi = c * dot::<T, M>(dg_a, yi);
            let w = c * xi;
            for (dy, &g) in dyi.iter_mut().zip(dg_a) {
                *dy = M::madd(w, g, *dy);
            }
        }
    }
}

/// `Σ a[i]·b[i]` with sixteen partial sums, so that the multiply-adds overlap instead of queueing
/// on one accumulator.
#[inline(always)]
fn dot<T: Scalar, M: MulAdd>(a: &[T], b: &[T]) -> T {
    const W: usize = 16;
    let mut acc = [T::zero(); W];
    let (ca, cb) = (a.chunks_exact(W), b.chunks_exact(W));
    let tail = ca.remainder().iter().zip(cb.remainder());
    for (p, q) in ca.zip(cb) {
        for k in 0..W {
            acc[k] = M::madd(p[k], q[k], acc[k]);
        }
    }
    for (k, (&p, &q)) in tail.enumerate() {
        acc[k] = M::madd(p, q, acc[k]);
    }
    let mut width = W / 2;
    while width > 0 {
        for k in 0..width {
            let v = acc[k + width];
            acc[k] += v;
        }
        width /= 2;
    }
    acc[0]
}

/// One path after time augmentation and lead-lag, in reusable buffers: its increments (from
/// [`Increments`], as `sig` sees them) and, for point kernels, its points.
#[derive(Default)]
pub(crate) struct Lifted<T> {
    /// Channels of the transformed path.
    pub dim: usize,
    /// Channels of the original path.
    pub orig_dim: usize,
    /// Number of increments.
    pub n: usize,
    pub incs: Vec<T>,
    /// `incs` transposed (`dim × n`), for bilinear kernels' Gram rows.
    incs_t: Vec<T>,
    /// `grad` transposed, as bilinear kernels' backprop accumulates it.
    grad_t: Vec<T>,
    pub points: Vec<T>,
    /// The gradient with respect to `incs` (bilinear kernels) or `points`, set by `gram_backprop`.
    pub grad: Vec<T>,
}

impl<T: Scalar> Lifted<T> {
    pub fn load(&mut self, lift: &Lift<T>, path: &[T], dim: usize, opts: &SigKernelOptions) {
        let inc = Increments::new(path, dim, &opts.transform);
        let d = inc.aug_dim();
        self.dim = d;
        self.orig_dim = dim;
        self.n = inc.count();
        self.incs.clear();
        self.incs.resize(self.n * d, T::zero());
        for (t, z) in self.incs.chunks_mut(d).enumerate() {
            inc.fill(t, z);
        }
        self.points.clear();
        if !lift.needs_points() {
            self.incs_t.clear();
            self.incs_t.resize(self.incs.len(), T::zero());
            for (t, z) in self.incs.chunks(d).enumerate() {
                for (i, &v) in z.iter().enumerate() {
                    self.incs_t[i * self.n + t] = v;
                }
            }
            return;
        }
        let len = path.len() / dim;
        let lt = if opts.transform.lead_lag && len > 0 {
            2 * len - 1
        } else {
            len
        };
        self.points.resize(lt * d, T::zero());
        for (j, pt) in self.points.chunks_mut(d).enumerate() {
            let (lag, lead) = lag_lead(j, opts.transform.lead_lag);
            pt[..dim].copy_from_slice(&path[lag * dim..(lag + 1) * dim]);
            if opts.transform.lead_lag {
                pt[dim..2 * dim].copy_from_slice(&path[lead * dim..(lead + 1) * dim]);
            }
            if opts.transform.time_aug {
                pt[d - 1] = if lt > 1 {
                    T::from_f64(j as f64 * opts.transform.end_time / (lt - 1) as f64)
                } else {
                    T::zero()
                };
            }
        }
    }

    fn inc(&self, a: usize) -> &[T] {
        &self.incs[a * self.dim..(a + 1) * self.dim]
    }

    fn point(&self, i: usize) -> &[T] {
        &self.points[i * self.dim..(i + 1) * self.dim]
    }
}
