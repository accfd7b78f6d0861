//! Signature kernels on the GPU: the base Gram matrices, the PDE and its adjoint run in `crate::gpu`'s
//! kernels from the transformed paths (transformed here, once per path, by the CPU's own code); the
//! chain from `dF/dG` to the paths runs on CPU threads with the CPU's static-kernel code.
//!
//! Everything here works on lists of pairs `(a, b)` of two sides, which covers the paired kernels
//! `(x_i, y_i)`, the self-kernels `(x_i, x_i)` of normalisation and the Gram matrices' `(x_i, y_j)`.

use super::cpu::{par_pairs, Plan};
use super::options::KernelSolver;
use super::static_kernel::{Lift, Lifted};
use crate::cpu::par_rows;
use crate::gpu::{self, GpuDevice, KernelGrid, Pairs, StaticGram};
use crate::layout::aug_dim;
use crate::{Result, Scalar};

/// One side of the pairs: paths laid end to end, `len` values and `n` increments (after the
/// transforms) each.
#[derive(Clone, Copy)]
pub(super) struct Side<'a, T> {
    pub paths: &'a [T],
    pub len: usize,
    pub n: usize,
}

impl<T> Side<'_, T> {
    fn path(&self, i: usize) -> &[T] {
        &self.paths[i * self.len..(i + 1) * self.len]
    }

    fn count(&self) -> usize {
        self.paths.len().checked_div(self.len).unwrap_or(0)
    }
}

/// Which pair of the two sides the `i`-th kernel of a list is.
type PairOf<'a> = &'a (dyn Fn(usize) -> (usize, usize) + Sync);

fn kernel_grid<T>(plan: &Plan<'_, T>, n1: usize, n2: usize) -> KernelGrid {
    let (lam1, lam2) = plan.opts.dyadic_order.pair();
    let order = match plan.opts.solver {
        KernelSolver::Polynomial { order } => Some(order as u32),
        KernelSolver::FiniteDifference => None,
    };
    KernelGrid {
        n1,
        n2,
        lam1: lam1 as u32,
        lam2: lam2 as u32,
        order,
    }
}

/// The transformed paths of side `s`, one row each, as the GPU's Gram kernel reads them: increments
/// for a bilinear kernel, points otherwise. Returns the rows and their channels.
pub(super) fn lifted<T: Scalar>(
    plan: &Plan<'_, T>,
    threads: usize,
    s: Side<'_, T>,
) -> Result<(Vec<T>, usize)> {
    let opts = plan.opts;
    let dim = aug_dim(plan.dim, opts.transform.time_aug, opts.transform.lead_lag)?;
    let points = matches!(plan.lift, Lift::Points(_));
    let row = (s.n + points as usize) * dim;
    let mut rows = vec![T::zero(); s.count() * row];
    par_rows(threads, &mut rows, row, Lifted::default, |l, i, out| {
        l.load(&plan.lift, s.path(i), plan.dim, opts);
        out.copy_from_slice(if points { &l.points } else { &l.incs });
    });
    Ok((rows, dim))
}

/// The pairs `pair(i)` of sides `a`, `b` for the GPU, their paths transformed.
fn with_pairs<T: Scalar, R>(
    plan: &Plan<'_, T>,
    threads: usize,
    (a, b): (Side<'_, T>, Side<'_, T>),
    pair: PairOf<'_>,
    run: impl FnOnce(&Pairs<'_, T>) -> Result<R>,
) -> Result<R> {
    let same = std::ptr::eq(a.paths, b.paths) && a.len == b.len;
    let (rows_a, dim) = lifted(plan, threads, a)?;
    let rows_b = if same {
        None
    } else {
        Some(lifted(plan, threads, b)?.0)
    };
    let gram = match &plan.lift {
        Lift::Bilinear(c) => StaticGram::Bilinear(*c),
        Lift::Points(k) => {
            let (kernel, values) = k.gpu_constants();
            StaticGram::Points(kernel, values)
        }
    };
    let tables = plan.poly.as_ref().map(|t| t.flat()).unwrap_or_default();
    run(&Pairs {
        gram,
        max_batch: plan.opts.max_batch.unwrap_or(usize::MAX),
        a: &rows_a,
        b: rows_b.as_deref().unwrap_or(&rows_a),
        dim,
        pair,
        tables: &tables,
    })
}

/// The kernels of `out.len()` pairs `pair(i)` of sides `a`, `b` into `out`, unnormalised.
fn pair_kernels<T: Scalar>(
    device: &GpuDevice,
    plan: &Plan<'_, T>,
    threads: usize,
    (a, b): (Side<'_, T>, Side<'_, T>),
    pair: PairOf<'_>,
    out: &mut [T],
) -> Result<()> {
    let grid = kernel_grid(plan, a.n, b.n);
    with_pairs(plan, threads, (a, b), pair, |pairs| {
        gpu::sig_kernel(device, grid, pairs, out)
    })
}

/// Receives each pair's index, kernel and path gradients, in order.
type AddGrads<'a, T> = &'a mut dyn FnMut(usize, T, &[T], &[T]);

/// Pairs chained to the paths per parallel batch on the host: bounds the gradients held at once.
const HOST_BATCH: usize = 256;

/// Backprop through the kernels of the pairs `pair(i)`, `i < seeds.len()`, given `seeds = dF/dk`:
/// `add(i, k, ga, gb)` is called for every pair in order with its kernel `k` and the gradients of
/// `seeds[i]·k` with respect to its two paths.
fn pair_backprop<T: Scalar>(
    device: &GpuDevice,
    plan: &Plan<'_, T>,
    threads: usize,
    (a, b): (Side<'_, T>, Side<'_, T>),
    pair: PairOf<'_>,
    (seeds, seeded): (&[T], bool),
    add: AddGrads<'_, T>,
) -> Result<()> {
    let cells = a.n * b.n;
    let (mut ga, mut gb) = (Vec::new(), Vec::new());
    // Per pair from the GPU: the gradients of the two transformed paths, then the kernel.
    let mut sink = |rows: (usize, usize), first: usize, out: &[T]| {
        let per = rows.0 + rows.1 + 1;
        let n = out.len() / per;
        for start in (0..n).step_by(HOST_BATCH) {
            let m = HOST_BATCH.min(n - start);
            ga.clear();
            ga.resize(m * a.len, T::zero());
            gb.clear();
            gb.resize(m * b.len, T::zero());
            if cells > 0 {
                par_pairs(
                    threads,
                    &mut ga,
                    a.len,
                    &mut gb,
                    b.len,
                    |ws, i, gai, gbi| {
                        let (p, q) = pair(first + start + i);
                        let (lifted_a, rest) = out[(start + i) * per..].split_at(rows.0);
                        let lifted_b = &rest[..rows.1];
                        plan.route_lifted(
                            ws,
                            (a.path(p), lifted_a),
                            (b.path(q), lifted_b),
                            gai,
                            gbi,
                        );
                    },
                );
            }
            for i in 0..m {
                add(
                    first + start + i,
                    out[(start + i) * per + per - 1],
                    &ga[i * a.len..(i + 1) * a.len],
                    &gb[i * b.len..(i + 1) * b.len],
                );
            }
        }
    };
    let grid = kernel_grid(plan, a.n, b.n);
    with_pairs(plan, threads, (a, b), pair, |pairs| {
        let rows = (
            pairs.a.len() / a.count().max(1),
            pairs.b.len() / b.count().max(1),
        );
        gpu::sig_kernel_backprop(device, grid, pairs, seeds, seeded, &mut |first, out| {
            sink(rows, first, out)
        })
    })
}

fn add_to<T: Scalar>(acc: &mut [T], g: &[T]) {
    for (a, &v) in acc.iter_mut().zip(g) {
        *a += v;
    }
}

/// The kernels of the pairs `(x_i, y_i)` into `out`, normalised if the options say so.
pub(super) fn kernels<T: Scalar>(
    device: &GpuDevice,
    plan: &Plan<'_, T>,
    threads: usize,
    (x, y): (Side<'_, T>, Side<'_, T>),
    out: &mut [T],
) -> Result<()> {
    let same = |i: usize| (i, i);
    pair_kernels(device, plan, threads, (x, y), &same, out)?;
    if plan.opts.normalize {
        let mut kxx = vec![T::zero(); out.len()];
        let mut kyy = vec![T::zero(); out.len()];
        pair_kernels(device, plan, threads, (x, x), &same, &mut kxx)?;
        pair_kernels(device, plan, threads, (y, y), &same, &mut kyy)?;
        for ((k, &a), &b) in out.iter_mut().zip(&kxx).zip(&kyy) {
            *k /= (a * b).sqrt();
        }
    }
    Ok(())
}

/// The whole PDE grid of each pair `(x_i, y_i)` into `out` (`rows × cols` per pair, row-major),
/// unnormalised, as the CPU's `return_grid`.
pub(super) fn grids<T: Scalar>(
    device: &GpuDevice,
    plan: &Plan<'_, T>,
    threads: usize,
    (x, y): (Side<'_, T>, Side<'_, T>),
    out: &mut [T],
) -> Result<()> {
    let grid = kernel_grid(plan, x.n, y.n);
    let count = x.count();
    let per = out.len().checked_div(count).unwrap_or(0);
    with_pairs(plan, threads, (x, y), &|i| (i, i), |pairs| {
        gpu::sig_kernel_grids(device, grid, pairs, count, &mut |first, grids| {
            out[first * per..first * per + grids.len()].copy_from_slice(grids);
        })
    })
}

/// The self-kernels `k(s_i, s_i)` of a side.
fn self_kernels<T: Scalar>(
    device: &GpuDevice,
    plan: &Plan<'_, T>,
    threads: usize,
    s: Side<'_, T>,
) -> Result<Vec<T>> {
    let mut k = vec![T::zero(); s.count()];
    pair_kernels(device, plan, threads, (s, s), &|i| (i, i), &mut k)?;
    Ok(k)
}

/// The gradients of `Σ_i ds_i·k(x_i, y_i)` (normalised if the options say so), added to `dx`, `dy`.
/// Normalising follows the CPU: the self-kernels' gradients `dk(x,x)`, `dk(y,y)` with seed 1, then
/// `dk̃ = dk(x,y)/s − k̃/2·(dk(x,x)/k(x,x) + dk(y,y)/k(y,y))`, `s = sqrt(k(x,x)·k(y,y))`.
pub(super) fn backprop<T: Scalar>(
    device: &GpuDevice,
    plan: &Plan<'_, T>,
    threads: usize,
    (x, y): (Side<'_, T>, Side<'_, T>),
    ds: &[T],
    dx: &mut [T],
    dy: &mut [T],
) -> Result<()> {
    let same = |i: usize| (i, i);
    let (lx, ly) = (x.len, y.len);
    // With return_grid (never normalised) each item's derivatives are a whole grid: seeds at every
    // point.
    let grid = plan.opts.return_grid;
    if !plan.opts.normalize {
        return pair_backprop(
            device,
            plan,
            threads,
            (x, y),
            &same,
            (ds, grid),
            &mut |i, _, gx, gy| {
                add_to(&mut dx[i * lx..(i + 1) * lx], gx);
                add_to(&mut dy[i * ly..(i + 1) * ly], gy);
            },
        );
    }
    let batch = ds.len();
    let ones = vec![T::one(); batch];
    let self_grads = |s: Side<'_, T>| -> Result<(Vec<T>, Vec<T>)> {
        let mut grads = vec![T::zero(); batch * s.len];
        let mut k = vec![T::zero(); batch];
        pair_backprop(
            device,
            plan,
            threads,
            (s, s),
            &same,
            (&ones, false),
            &mut |i, ki, ga, gb| {
                k[i] = ki;
                let g = &mut grads[i * s.len..(i + 1) * s.len];
                add_to(g, ga);
                add_to(g, gb);
            },
        )?;
        Ok((grads, k))
    };
    let (self_x, kxx) = self_grads(x)?;
    let (self_y, kyy) = self_grads(y)?;
    let scale: Vec<T> = (0..batch).map(|i| (kxx[i] * kyy[i]).sqrt()).collect();
    let seeds: Vec<T> = (0..batch).map(|i| ds[i] / scale[i]).collect();
    let half = T::from_f64(0.5);
    pair_backprop(
        device,
        plan,
        threads,
        (x, y),
        &same,
        (&seeds, false),
        &mut |i, kxy, gx, gy| {
            let kt = kxy / scale[i];
            let (cx, cy) = (-ds[i] * kt * half / kxx[i], -ds[i] * kt * half / kyy[i]);
            let (dxi, dyi) = (&mut dx[i * lx..(i + 1) * lx], &mut dy[i * ly..(i + 1) * ly]);
            add_to(dxi, gx);
            add_to(dyi, gy);
            for (d, &g) in dxi.iter_mut().zip(&self_x[i * lx..(i + 1) * lx]) {
                *d += cx * g;
            }
            for (d, &g) in dyi.iter_mut().zip(&self_y[i * ly..(i + 1) * ly]) {
                *d += cy * g;
            }
        },
    )
}

/// The Gram matrix `k(x_i, y_j)` into `out` (`n × m`), normalised if the options say so. With
/// `symmetric` (`x` and `y` the same paths, equal dyadic orders) one triangle is computed and mirrored.
pub(super) fn gram<T: Scalar>(
    device: &GpuDevice,
    plan: &Plan<'_, T>,
    threads: usize,
    (x, y): (Side<'_, T>, Side<'_, T>),
    symmetric: bool,
    out: &mut [T],
) -> Result<()> {
    let (n, m) = (x.count(), y.count());
    if n == 0 || m == 0 {
        return Ok(());
    }
    let triangle: Vec<(usize, usize)> = if symmetric {
        (0..n).flat_map(|i| (i..m).map(move |j| (i, j))).collect()
    } else {
        Vec::new()
    };
    let all = |p: usize| (p / m, p % m);
    let listed = |p: usize| triangle[p];
    let (pair, count): (PairOf<'_>, usize) = if symmetric {
        (&listed, triangle.len())
    } else {
        (&all, n * m)
    };
    let mut k = vec![T::zero(); count];
    pair_kernels(device, plan, threads, (x, y), pair, &mut k)?;
    let (kx, ky) = if plan.opts.normalize {
        let kx = self_kernels(device, plan, threads, x)?;
        let ky = if symmetric {
            kx.clone()
        } else {
            self_kernels(device, plan, threads, y)?
        };
        (kx, ky)
    } else {
        (Vec::new(), Vec::new())
    };
    for (p, &v) in k.iter().enumerate() {
        let (i, j) = pair(p);
        out[i * m + j] = if plan.opts.normalize {
            v / (kx[i] * ky[j]).sqrt()
        } else {
            v
        };
    }
    if symmetric {
        for i in 0..n {
            for j in 0..i {
                out[i * m + j] = out[j * m + i];
            }
        }
    }
    Ok(())
}

/// The gradients of `Σ_ij ds_ij·Gram_ij` into `dxs`, `dys` (zeroed by the caller), as the CPU's
/// `sig_kernel_gram_backprop` computes them: the pairs with a nonzero weight, then (normalising) one
/// self-kernel backprop per path with its summed weight.
pub(super) fn gram_backprop<T: Scalar>(
    device: &GpuDevice,
    plan: &Plan<'_, T>,
    threads: usize,
    (x, y): (Side<'_, T>, Side<'_, T>),
    ds: &[T],
    dxs: &mut [T],
    dys: &mut [T],
) -> Result<()> {
    let (n, m) = (x.count(), y.count());
    let (lx, ly) = (x.len, y.len);
    let pairs: Vec<usize> = (0..n * m).filter(|&p| ds[p] != T::zero()).collect();
    if pairs.is_empty() {
        return Ok(());
    }
    let normalize = plan.opts.normalize;
    let (kx, ky) = if normalize {
        (
            self_kernels(device, plan, threads, x)?,
            self_kernels(device, plan, threads, y)?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let scale = |p: usize| (kx[p / m] * ky[p % m]).sqrt();
    let seeds: Vec<T> = pairs
        .iter()
        .map(|&p| if normalize { ds[p] / scale(p) } else { ds[p] })
        .collect();
    let (mut x_weights, mut y_weights) = (vec![T::zero(); n], vec![T::zero(); m]);
    let of_pair = |q: usize| (pairs[q] / m, pairs[q] % m);
    pair_backprop(
        device,
        plan,
        threads,
        (x, y),
        &of_pair,
        (&seeds, false),
        &mut |q, k, gx, gy| {
            let p = pairs[q];
            let (i, j) = (p / m, p % m);
            add_to(&mut dxs[i * lx..(i + 1) * lx], gx);
            add_to(&mut dys[j * ly..(j + 1) * ly], gy);
            if normalize {
                let kt = k / scale(p);
                x_weights[i] += ds[p] * kt;
                y_weights[j] += ds[p] * kt;
            }
        },
    )?;
    if !normalize {
        return Ok(());
    }
    let half = T::from_f64(0.5);
    for (s, weights, k, grads) in [(x, &x_weights, &kx, dxs), (y, &y_weights, &ky, dys)] {
        let items: Vec<usize> = (0..weights.len())
            .filter(|&i| weights[i] != T::zero())
            .collect();
        let seeds: Vec<T> = items.iter().map(|&i| -weights[i] * half / k[i]).collect();
        let of_item = |q: usize| (items[q], items[q]);
        pair_backprop(
            device,
            plan,
            threads,
            (s, s),
            &of_item,
            (&seeds, false),
            &mut |q, _, ga, gb| {
                let i = items[q];
                let g = &mut grads[i * s.len..(i + 1) * s.len];
                add_to(g, ga);
                add_to(g, gb);
            },
        )?;
    }
    Ok(())
}
