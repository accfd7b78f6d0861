//! Signature kernels `k(x, y) = <S(x), S(y)>` (untruncated) by pySigLib's finite-difference Goursat
//! scheme, their Gram matrices, and their exact gradients.
//!
//! The layers: `static_kernel` turns a pair of paths into the PDE's increments Gram matrix (and
//! back), `pde` solves the scheme on one pair and runs its discrete adjoint, `cpu` drives pairs over
//! threads, `gpu` drives the same pairs through the GPU's PDE kernels and its adjoint (with the base
//! Gram matrices from `static_kernel` and `dF/dG` chained back by it), and this module checks inputs
//! and shapes and picks the device.
//!
//! Memory: the forward pass keeps two rows of the refined grid per thread, across the shorter path
//! (O(min(L1, L2))), plus the two paths' increments. A backward pass holds the pair's base Gram
//! matrix and the rows of `K` it needs: the whole refined grid when it fits in 64 MiB, else
//! checkpointed blocks that are recomputed (at most one extra forward pass). Gram matrices are computed pair by pair into the
//! output; their backprop keeps one gradient accumulator per worker.

mod checks;
mod cpu;
#[cfg(feature = "gpu")]
mod gpu;
mod metrics;
mod options;
pub(crate) mod pde;
pub(crate) mod point_kernel;
pub(crate) mod polynomial;
mod static_kernel;

pub(crate) use metrics::{
    expected_sig_score, expected_sig_score_backprop, sig_mmd, sig_mmd_backprop, sig_score,
    sig_score_backprop,
};
pub use options::{
    CustomKernel, CustomStaticKernel, DyadicOrder, KernelSolver, SigKernelOptions, StaticKernel,
};

use crate::batch::{
    check_bytes, elements, fit_threads, paths as path_rows, same_batch, zeros, Memory, Rows,
};
use crate::cpu::par_rows;
use crate::device;
use crate::device::on_gpu;
use crate::layout::aug_dim;
use crate::scalar::Precision;
use crate::{Error, Result, Scalar};
use checks::{check_finite_items, check_output};
use cpu::{par_pairs, par_sum, Plan, Workspace};
#[cfg(feature = "gpu")]
use gpu::Side;
use ndarray::{ArrayD, ArrayViewD};
use pde::{Grid, Seed, BACKPROP_BUDGET_BYTES};
use static_kernel::Lift;

/// The body of [`crate::sig_kernel`] (see [`crate::api`]).
pub(crate) fn sig_kernel<T: Scalar>(
    x: ArrayViewD<'_, T>,
    y: ArrayViewD<'_, T>,
    options: &SigKernelOptions,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    let px = path_rows("path1", x)?;
    let py = path_rows("path2", y)?;
    same_batch("path1", &px, "path2", &py)?;
    let (plan, grid) = plan(&px, &py, options, false)?;
    let (xs, ys) = (px.slice(), py.slice());
    let (lx, ly) = (path_size(&px), path_size(&py));
    let solves = if options.normalize { 3 } else { 1 };
    let work = work(px.batch(), grid.rows, grid.cols, solves);
    let mut shape = px.batch_shape.clone();
    let per_item = if options.return_grid {
        shape.extend([grid.rows, grid.cols]);
        grid.rows * grid.cols
    } else {
        1
    };
    let on_gpu = on_gpu!(|device| {
        let mut out = zeros::<T>("signature kernel", &shape)?;
        let out_slice = out.as_slice_mut().expect("fresh arrays are contiguous");
        let sides = sides(&grid, (xs, lx), (ys, ly));
        let threads = crate::threads(options.exec.n_jobs)?;
        if options.return_grid {
            gpu::grids(device, &plan, threads, sides, out_slice)
        } else {
            gpu::kernels(device, &plan, threads, sides, out_slice)
        }?;
        check_output("sig_kernel", out_slice, &px.batch_shape, per_item)?;
        Ok(out)
    });
    let on_cpu = |threads: usize| -> Result<ArrayD<T>> {
        let threads = fit(&plan, "signature kernel", threads, elements(&shape), 0)?;
        let mut out = zeros::<T>("signature kernel", &shape)?;
        let out_slice = out.as_slice_mut().expect("fresh arrays are contiguous");
        par_rows(
            threads,
            out_slice,
            per_item,
            Workspace::default,
            |ws, i, row| {
                let (xi, yi) = (&xs[i * lx..(i + 1) * lx], &ys[i * ly..(i + 1) * ly]);
                if options.return_grid {
                    plan.grid_of(ws, xi, yi, row);
                } else {
                    row[0] = plan.value(ws, xi, yi);
                }
            },
        );
        check_output("sig_kernel", out_slice, &px.batch_shape, per_item)?;
        Ok(out)
    };
    execute::<T, _>(options, work, on_gpu, on_cpu)
}

/// The body of [`crate::sig_kernel_backprop`] (see [`crate::api`]).
pub(crate) fn sig_kernel_backprop<T: Scalar>(
    derivs: ArrayViewD<'_, T>,
    x: ArrayViewD<'_, T>,
    y: ArrayViewD<'_, T>,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    options.validate::<T>()?;
    let px = path_rows("path1", x)?;
    let py = path_rows("path2", y)?;
    same_batch("path1", &px, "path2", &py)?;
    let (plan, grid) = plan(&px, &py, options, true)?;
    let inner = if options.return_grid { 2 } else { 0 };
    let pd = Rows::new("derivs", derivs, inner)?;
    same_batch("path1", &px, "derivs", &pd)?;
    let per_item = if options.return_grid {
        let tail = &pd.data.shape()[pd.data.ndim() - 2..];
        if tail != [grid.rows, grid.cols] {
            return Err(Error::invalid(format!(
                "derivs must end in the grid's shape ({}, {}), got {tail:?}",
                grid.rows, grid.cols
            )));
        }
        grid.rows * grid.cols
    } else {
        1
    };
    check_finite_items("derivs", pd.slice(), &pd.batch_shape, per_item)?;
    let (xs, ys, ds) = (px.slice(), py.slice(), pd.slice());
    let (lx, ly) = (path_size(&px), path_size(&py));
    let solves = if options.normalize { 9 } else { 3 };
    let work = work(px.batch(), grid.rows, grid.cols, solves);
    let on_gpu = on_gpu!(|device| {
        let mut dx = zeros::<T>("path1 gradient", px.data.shape())?;
        let mut dy = zeros::<T>("path2 gradient", py.data.shape())?;
        let dx_slice = dx.as_slice_mut().expect("fresh arrays are contiguous");
        let dy_slice = dy.as_slice_mut().expect("fresh arrays are contiguous");
        let sides = sides(&grid, (xs, lx), (ys, ly));
        let threads = crate::threads(options.exec.n_jobs)?;
        gpu::backprop(device, &plan, threads, sides, ds, dx_slice, dy_slice)?;
        check_output("path1 gradient", dx_slice, &px.batch_shape, lx)?;
        check_output("path2 gradient", dy_slice, &py.batch_shape, ly)?;
        Ok((dx, dy))
    });
    let on_cpu = |threads: usize| -> Result<(ArrayD<T>, ArrayD<T>)> {
        let output = (px.data.len() + py.data.len()) as u128;
        let threads = fit(&plan, "signature kernel gradient", threads, output, 0)?;
        let mut dx = zeros::<T>("path1 gradient", px.data.shape())?;
        let mut dy = zeros::<T>("path2 gradient", py.data.shape())?;
        let dx_slice = dx.as_slice_mut().expect("fresh arrays are contiguous");
        let dy_slice = dy.as_slice_mut().expect("fresh arrays are contiguous");
        par_pairs(threads, dx_slice, lx, dy_slice, ly, |ws, i, dxi, dyi| {
            let (xi, yi) = (&xs[i * lx..(i + 1) * lx], &ys[i * ly..(i + 1) * ly]);
            let d = &ds[i * per_item..(i + 1) * per_item];
            if options.normalize {
                plan.backprop_normalized(ws, xi, yi, d[0], dxi, dyi);
            } else {
                let seed = if options.return_grid {
                    Seed::Grid(d)
                } else {
                    Seed::Last(d[0])
                };
                plan.backprop(ws, xi, yi, seed, dxi, dyi);
            }
        });
        check_output("path1 gradient", dx_slice, &px.batch_shape, lx)?;
        check_output("path2 gradient", dy_slice, &py.batch_shape, ly)?;
        Ok((dx, dy))
    };
    execute::<T, _>(options, work, on_gpu, on_cpu)
}

/// The body of [`crate::sig_kernel_gram`] (see [`crate::api`]).
pub(crate) fn sig_kernel_gram<T: Scalar>(
    xs: ArrayViewD<'_, T>,
    ys: ArrayViewD<'_, T>,
    options: &SigKernelOptions,
) -> Result<ArrayD<T>> {
    let same =
        xs.as_ptr() == ys.as_ptr() && xs.shape() == ys.shape() && xs.strides() == ys.strides();
    gram(xs, ys, options, same)
}

/// The body of [`crate::sig_kernel_gram_sym`] (see [`crate::api`]).
pub(crate) fn sig_kernel_gram_sym<T: Scalar>(
    xs: ArrayViewD<'_, T>,
    options: &SigKernelOptions,
) -> Result<ArrayD<T>> {
    gram(xs.clone(), xs, options, true)
}

fn gram<T: Scalar>(
    xs: ndarray::ArrayViewD<'_, T>,
    ys: ndarray::ArrayViewD<'_, T>,
    options: &SigKernelOptions,
    symmetric: bool,
) -> Result<ArrayD<T>> {
    options.validate::<T>()?;
    reject_grid(options, "sig_kernel_gram")?;
    let px = path_rows("paths1", xs)?;
    let py = path_rows("paths2", ys)?;
    let (plan, grid) = plan(&px, &py, options, false)?;
    let (xs, ys) = (px.slice(), py.slice());
    let (lx, ly) = (path_size(&px), path_size(&py));
    let (n, m) = (px.batch(), py.batch());
    let symmetric = symmetric && options.dyadic_order.0 == options.dyadic_order.1;
    let mut shape = px.batch_shape.clone();
    shape.extend_from_slice(&py.batch_shape);
    let pairs = if symmetric { n * (n + 1) / 2 } else { n * m };
    let work = work(pairs, grid.rows, grid.cols, 1);
    let on_gpu = on_gpu!(|device| {
        let mut out = zeros::<T>("Gram matrix", &shape)?;
        let out_slice = out.as_slice_mut().expect("fresh arrays are contiguous");
        let sides = sides(&grid, (xs, lx), (ys, ly));
        let threads = crate::threads(options.exec.n_jobs)?;
        gpu::gram(device, &plan, threads, sides, symmetric, out_slice)?;
        check_output("sig_kernel_gram", out_slice, &shape, 1)?;
        Ok(out)
    });
    let on_cpu = |threads: usize| -> Result<ArrayD<T>> {
        let threads = fit(&plan, "Gram matrix", threads, elements(&shape), 0)?;
        let (kx, ky) = self_kernels(&plan, threads, xs, lx, n, ys, ly, m, symmetric);
        let mut out = zeros::<T>("Gram matrix", &shape)?;
        let out_slice = out.as_slice_mut().expect("fresh arrays are contiguous");
        par_rows(threads, out_slice, 1, Workspace::default, |ws, p, o| {
            let (i, j) = (p / m, p % m);
            if symmetric && j < i {
                return;
            }
            let k = plan.kernel(ws, &xs[i * lx..(i + 1) * lx], &ys[j * ly..(j + 1) * ly]);
            o[0] = if options.normalize {
                k / (kx[i] * ky[j]).sqrt()
            } else {
                k
            };
        });
        if symmetric {
            for i in 0..n {
                for j in 0..i {
                    out_slice[i * m + j] = out_slice[j * m + i];
                }
            }
        }
        check_output("sig_kernel_gram", out_slice, &shape, 1)?;
        Ok(out)
    };
    execute::<T, _>(options, work, on_gpu, on_cpu)
}

/// `k(x_i, x_i)` and `k(y_j, y_j)` when normalising (empty otherwise).
#[allow(clippy::too_many_arguments)]
fn self_kernels<T: Scalar>(
    plan: &Plan<'_, T>,
    threads: usize,
    xs: &[T],
    lx: usize,
    n: usize,
    ys: &[T],
    ly: usize,
    m: usize,
    symmetric: bool,
) -> (Vec<T>, Vec<T>) {
    if !plan.opts.normalize {
        return (Vec::new(), Vec::new());
    }
    let diag = |paths: &[T], len: usize, count: usize| {
        let mut k = vec![T::zero(); count];
        par_rows(threads, &mut k, 1, Workspace::default, |ws, i, o| {
            let p = &paths[i * len..(i + 1) * len];
            o[0] = plan.kernel(ws, p, p);
        });
        k
    };
    let kx = diag(xs, lx, n);
    let ky = if symmetric {
        kx.clone()
    } else {
        diag(ys, ly, m)
    };
    (kx, ky)
}

/// The body of [`crate::sig_kernel_gram_backprop`] (see [`crate::api`]).
pub(crate) fn sig_kernel_gram_backprop<T: Scalar>(
    derivs: ArrayViewD<'_, T>,
    xs: ArrayViewD<'_, T>,
    ys: ArrayViewD<'_, T>,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    options.validate::<T>()?;
    reject_grid(options, "sig_kernel_gram_backprop")?;
    let px = path_rows("paths1", xs)?;
    let py = path_rows("paths2", ys)?;
    let (plan, grid) = plan(&px, &py, options, true)?;
    let pd = Rows::new("derivs", derivs, 0)?;
    let mut shape = px.batch_shape.clone();
    shape.extend_from_slice(&py.batch_shape);
    if pd.data.shape() != shape.as_slice() {
        return Err(Error::invalid(format!(
            "derivs has shape {:?}, expected the Gram matrix's shape {shape:?}",
            pd.data.shape()
        )));
    }
    check_finite_items("derivs", pd.slice(), &shape, 1)?;
    let (xs, ys, ds) = (px.slice(), py.slice(), pd.slice());
    let (lx, ly) = (path_size(&px), path_size(&py));
    let (n, m) = (px.batch(), py.batch());
    let work = work(n * m, grid.rows, grid.cols, 3);
    let on_gpu = on_gpu!(|device| {
        let mut dx = zeros::<T>("paths1 gradient", px.data.shape())?;
        let mut dy = zeros::<T>("paths2 gradient", py.data.shape())?;
        let dx_slice = dx.as_slice_mut().expect("fresh arrays are contiguous");
        let dy_slice = dy.as_slice_mut().expect("fresh arrays are contiguous");
        let sides = sides(&grid, (xs, lx), (ys, ly));
        let threads = crate::threads(options.exec.n_jobs)?;
        gpu::gram_backprop(device, &plan, threads, sides, ds, dx_slice, dy_slice)?;
        check_output("paths1 gradient", dx_slice, &px.batch_shape, lx)?;
        check_output("paths2 gradient", dy_slice, &py.batch_shape, ly)?;
        Ok((dx, dy))
    });
    let on_cpu = |threads: usize| -> Result<(ArrayD<T>, ArrayD<T>)> {
        let (size_x, size_y) = (n * lx, m * ly);
        let extra = if options.normalize { m } else { 0 };
        // Each worker's accumulator, and the one it is reduced into; the gradients are copied out.
        let acc_len = (size_x + size_y + extra) as u128;
        let what = "Gram matrix gradient";
        let threads = fit(&plan, what, threads, 2 * acc_len, 2 * acc_len)?;
        let (kx, ky) = self_kernels(&plan, threads, xs, lx, n, ys, ly, m, false);
        // One accumulator: dxs, then dys, then (normalising) Σ_i w_ij·k̃_ij for each y_j.
        let mut acc = par_sum(threads, n, size_x + size_y + extra, |ws, i, acc| {
            let (dxs, rest) = acc.split_at_mut(size_x);
            let (dys, y_weights) = rest.split_at_mut(size_y);
            let xi = &xs[i * lx..(i + 1) * lx];
            let dxi = &mut dxs[i * lx..(i + 1) * lx];
            let mut x_weight = T::zero();
            for j in 0..m {
                let w = ds[i * m + j];
                if w == T::zero() {
                    continue;
                }
                let (yj, dyj) = (&ys[j * ly..(j + 1) * ly], &mut dys[j * ly..(j + 1) * ly]);
                if options.normalize {
                    let s = (kx[i] * ky[j]).sqrt();
                    let kt = plan.backprop(ws, xi, yj, Seed::Last(w / s), dxi, dyj) / s;
                    x_weight += w * kt;
                    y_weights[j] += w * kt;
                } else {
                    plan.backprop(ws, xi, yj, Seed::Last(w), dxi, dyj);
                }
            }
            if options.normalize && x_weight != T::zero() {
                let c = -x_weight * T::from_f64(0.5) / kx[i];
                plan.backprop_self(ws, xi, c, dxi);
            }
        });
        let (dxs, rest) = acc.split_at_mut(size_x);
        let (dys, y_weights) = rest.split_at_mut(size_y);
        if options.normalize && size_y > 0 {
            par_rows(threads, dys, ly, Workspace::default, |ws, j, dyj| {
                if y_weights[j] != T::zero() {
                    let c = -y_weights[j] * T::from_f64(0.5) / ky[j];
                    plan.backprop_self(ws, &ys[j * ly..(j + 1) * ly], c, dyj);
                }
            });
        }
        check_output("paths1 gradient", dxs, &px.batch_shape, lx)?;
        check_output("paths2 gradient", dys, &py.batch_shape, ly)?;
        let dx = ArrayD::from_shape_vec(px.data.shape(), dxs.to_vec())
            .expect("the accumulator is laid out like paths1");
        let dy = ArrayD::from_shape_vec(py.data.shape(), dys.to_vec())
            .expect("the accumulator is laid out like paths2");
        Ok((dx, dy))
    };
    execute::<T, _>(options, work, on_gpu, on_cpu)
}

/// Run an operation on the device its options choose ([`device::execute`]). A custom static kernel
/// (Rust code) runs on the CPU: `Device::Auto` picks it, `Device::Gpu` is an error.
fn execute<T: Scalar, R>(
    options: &SigKernelOptions,
    work: u128,
    on_gpu: impl FnOnce(&device::GpuDevice) -> Result<R>,
    on_cpu: impl FnOnce(usize) -> Result<R>,
) -> Result<R> {
    let precision = Precision::of::<T>();
    let (exec, n_jobs) = (&options.exec.device, options.exec.n_jobs);
    // Each CPU thread holds one pair's grid: `max_batch` caps them.
    let cap = options.max_batch.unwrap_or(usize::MAX);
    let on_cpu = move |threads: usize| on_cpu(threads.min(cap));
    if let StaticKernel::Custom(k) = &options.static_kernel {
        let what = format!("the custom static kernel {k:?}");
        let refuse = |_: &device::GpuDevice| {
            Err(Error::Device(format!(
                "{what} runs on the CPU only: use Device::Cpu or Device::Auto"
            )))
        };
        // No work keeps `Device::Auto` on the CPU.
        return device::execute(exec, n_jobs, precision, 0, refuse, on_cpu);
    }
    device::execute(exec, n_jobs, precision, work, on_gpu, on_cpu)
}

/// The CPU threads for a call that runs on the CPU: `threads`, lowered until `output` elements and
/// each thread's workspace (the plan's, plus `per_thread` elements) fit in memory.
fn fit<T: Scalar>(
    plan: &Plan<'_, T>,
    what: &str,
    threads: usize,
    output: u128,
    per_thread: u128,
) -> Result<usize> {
    let size = std::mem::size_of::<T>() as u128;
    fit_threads(what, threads, |_| Memory {
        output: output.saturating_mul(size),
        shared: 0,
        per_thread: plan
            .workspace_bytes
            .saturating_add(per_thread.saturating_mul(size)),
    })
}

/// The two sides of the pairs, as the GPU drivers take them.
#[cfg(feature = "gpu")]
fn sides<'a, T>(
    grid: &Grid,
    (xs, lx): (&'a [T], usize),
    (ys, ly): (&'a [T], usize),
) -> (Side<'a, T>, Side<'a, T>) {
    (
        Side {
            paths: xs,
            len: lx,
            n: grid.n1,
        },
        Side {
            paths: ys,
            len: ly,
            n: grid.n2,
        },
    )
}

/// About eight flops per refined cell and solve; a backward pass costs about three solves.
fn work(pairs: usize, rows: usize, cols: usize, solves: usize) -> u128 {
    8 * solves as u128 * pairs as u128 * rows as u128 * cols as u128
}

fn reject_grid(options: &SigKernelOptions, op: &str) -> Result<()> {
    if options.return_grid {
        return Err(Error::invalid(format!(
            "{op} does not support return_grid (use sig_kernel)"
        )));
    }
    Ok(())
}

/// Points × channels of one path.
fn path_size<T: Scalar>(p: &Rows<T>) -> usize {
    let s = p.data.shape();
    s[s.len() - 2] * s[s.len() - 1]
}

/// Increments of a path of `len ≥ 1` points after lead-lag.
fn increments(len: usize, lead_lag: bool) -> usize {
    if lead_lag {
        2 * (len - 1)
    } else {
        len - 1
    }
}

/// Check that two sides can be paired, and size the grids every call will solve.
fn plan<'a, T: Scalar>(
    px: &Rows<T>,
    py: &Rows<T>,
    opts: &'a SigKernelOptions,
    backward: bool,
) -> Result<(Plan<'a, T>, Grid)> {
    let dim = px.last();
    if py.last() != dim {
        return Err(Error::Length {
            what: "path2 (dimension)",
            expected: format!("{dim}, the dimension of path1"),
            got: py.last(),
        });
    }
    let len = |p: &Rows<T>, what: &'static str| {
        let s = p.data.shape();
        match s[s.len() - 2] {
            0 => Err(Error::Length {
                what,
                expected: "at least 1 point".into(),
                got: 0,
            }),
            l => Ok(l),
        }
    };
    let n1 = increments(len(px, "path1 (points)")?, opts.transform.lead_lag);
    let n2 = increments(len(py, "path2 (points)")?, opts.transform.lead_lag);
    let channels = aug_dim(dim, opts.transform.time_aug, opts.transform.lead_lag)?;
    let mut plan = Plan {
        lift: Lift::new(&opts.static_kernel),
        poly: match opts.solver {
            KernelSolver::Polynomial { order } => Some(polynomial::Tables::new(order)),
            _ => None,
        },
        opts,
        dim,
        budget_bytes: BACKPROP_BUDGET_BYTES,
        workspace_bytes: 0,
    };
    let grid = plan.grid(n1, n2)?;
    let mut grids = vec![grid];
    if opts.normalize {
        grids.extend([plan.grid(n1, n1)?, plan.grid(n2, n2)?]);
    }
    let poly = plan.poly.as_ref().map_or(0, |t| t.size);
    plan.workspace_bytes = grids
        .iter()
        .map(|g| workspace_bytes::<T>(g, channels, backward, poly))
        .fold(0, u128::max);
    check_bytes("signature kernel workspace", plan.workspace_bytes)?;
    Ok((plan, grid))
}

/// One thread's buffers for the largest pair of a call, in bytes: the two lifted paths (increments,
/// points, their transposes and gradients: about five copies each) and a few rows of the refined
/// grid; backward also the base Gram matrix, its gradient and up to the block budget of the grid.
/// The polynomial solver (`poly` coefficients per edge) holds a row of edges, and backward every
/// row's.
fn workspace_bytes<T: Scalar>(grid: &Grid, channels: usize, backward: bool, poly: usize) -> u128 {
    let size = std::mem::size_of::<T>() as u128;
    let (n1, n2) = (grid.n1 as u128, grid.n2 as u128);
    let paths = 5 * (n1 + n2 + 2) * channels as u128;
    let rows = 6 * grid.cols as u128 + n2;
    let mut bytes = (paths + rows) * size;
    if poly > 0 {
        let poly = poly as u128;
        bytes += (2 * n2 + 8) * poly * size;
        if backward {
            bytes += n1 * n2 * poly * size;
        }
    }
    if backward {
        bytes += 2 * n1 * n2 * size + BACKPROP_BUDGET_BYTES as u128;
    }
    bytes
}

/// The CPU's Gram matrices and transformed paths, for the GPU mirrors' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    fn plan_of(opts: &SigKernelOptions, dim: usize) -> Plan<'_, f64> {
        Plan {
            lift: Lift::new(&opts.static_kernel),
            poly: None,
            opts,
            dim,
            budget_bytes: BACKPROP_BUDGET_BYTES,
            workspace_bytes: 0,
        }
    }

    /// The base Gram matrix of paths `x`, `y` of `dim` channels, as the CPU's PDE sees it.
    pub(crate) fn gram_of(opts: &SigKernelOptions, x: &[f64], y: &[f64], dim: usize) -> Vec<f64> {
        let n = |p: &[f64]| increments(p.len() / dim, opts.transform.lead_lag);
        let mut g = vec![0.0; n(x) * n(y)];
        plan_of(opts, dim).gram_of(&mut Workspace::default(), x, y, &mut g);
        g
    }

    /// The CPU's gradients with respect to the transformed paths of `x` and `y` given `dg = dF/dG`
    /// (their increments for a bilinear kernel, their points otherwise).
    pub(crate) fn lifted_grads(
        opts: &SigKernelOptions,
        x: &[f64],
        y: &[f64],
        dim: usize,
        dg: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        plan_of(opts, dim).lifted_grads(&mut Workspace::default(), x, y, dg)
    }

    /// Paths of `len` points laid end to end, transformed as the GPU's Gram kernel reads them:
    /// the rows, the increments per path and the transformed channels.
    #[cfg(feature = "gpu")]
    pub(crate) fn lifted_rows(
        opts: &SigKernelOptions,
        paths: &[f64],
        len: usize,
        dim: usize,
    ) -> (Vec<f64>, usize, usize) {
        let n = increments(len, opts.transform.lead_lag);
        let side = Side {
            paths,
            len: len * dim,
            n,
        };
        let (rows, channels) = gpu::lifted(&plan_of(opts, dim), 1, side).unwrap();
        (rows, n, channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::available_memory;
    use crate::Device;

    fn plan_with(workspace_bytes: u128, options: &SigKernelOptions) -> Plan<'_, f64> {
        Plan {
            lift: Lift::new(&options.static_kernel),
            poly: None,
            opts: options,
            dim: 1,
            budget_bytes: BACKPROP_BUDGET_BYTES,
            workspace_bytes,
        }
    }

    /// Threads are lowered until their workspaces fit, and a call that does not fit on one thread
    /// is refused naming the workspace (nothing is allocated here: only the sizing is exercised).
    #[test]
    fn threads_are_fitted_to_the_workspaces() {
        let options = SigKernelOptions::default().n_jobs(8).device(Device::Cpu);
        let available = available_memory();
        let fitted = fit(&plan_with(available * 45 / 100, &options), "k", 8, 0, 0).unwrap();
        assert!((1..=2).contains(&fitted), "{fitted} threads");
        let small = fit(&plan_with(1 << 20, &options), "k", 8, 0, 0).unwrap();
        assert_eq!(small, 8);
        match fit(&plan_with(available * 3 / 2, &options), "k", 8, 0, 0) {
            Err(Error::TooLarge { what, .. }) => assert!(what.contains("workspace"), "{what}"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // The output and each thread's own elements count too.
        let elems = available / 8 * 6 / 10;
        assert!(fit(&plan_with(0, &options), "k", 8, elems, elems).is_err());
    }
}
