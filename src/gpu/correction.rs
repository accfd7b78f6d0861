//! `sig_corrected` and its gradient on the GPU: no shader of their own, the row kernels chained.
//!
//! Each segment's element `z = Δx + c` is placed on the device from a row `[Δx, c]` of the
//! segment's increment and correction (`shaders/sig/lyndon_expand.wgsl` with a table that puts
//! each entry at its index in the tensor), exponentiated by `shaders/sig/tensor_series.wgsl`, and a
//! path's segments are multiplied by Chen's identity as a tree of pairwise products
//! (`shaders/sig/sig_combine.wgsl`'s root mode): `log2` of the segments' count rounds, each one
//! invocation per coefficient of every pair of every path. Each path's segments are padded with
//! zero rows (the exponential of 0 is the identity) to a power of two, so that every round's pairs
//! lie within one path.
//!
//! The gradient rebuilds the tree keeping its levels, runs it back with
//! `shaders/sig/sig_combine_backprop.wgsl`, then the exponential's reverse and the placement's
//! transpose: only the rows' gradients come back, and the host turns the increments' gradients into
//! the points'.
//!
//! A path whose tree does not fit the adapter's largest buffer is cut into windows of segments (a
//! power of two that fits): the windows' products are computed as paths of their own, then
//! multiplied by a second tree whose leaves are those products (and run back the same way).

use super::chunks::open;
use super::kernels::Precision;
use super::log_sig::{chain_len, series_backprop_steps, series_steps, SeriesRows};
use super::program::{dst, submit_reading, Dispatch, Pooled};
use super::sig::rows::{per_row, RowCall};
use super::sig::wgsl::{SERIES_EXP, SIG_COMBINE, SIG_COMBINE_BACKPROP, TENSOR_SERIES};
use super::to_sig::{OnDevice, CONTRACT, EXPAND};
use super::{combine, Expansion, GpuDevice};
use crate::gpu::chunks::PerPath;
use crate::layout::TensorShape;
use crate::{Error, Result, Scalar};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The segments of a batch of paths, as the device reads them.
pub(crate) struct Segments<'a, T> {
    pub paths: usize,
    pub segments: usize,
    /// Where each correction entry goes in a segment's tensor (levels `1..=N`); a row is the
    /// segment's `shape.dim` increments, then these entries.
    pub positions: &'a [usize],
    /// Writes path `b`'s segment `k` row.
    pub fill: &'a (dyn Fn(usize, usize, &mut [T]) + Sync),
}

/// What the tree multiplies: segments, exponentiated on the device, or rows of products already
/// made (`per_path` of them per path, rows of the signature's levels), uploaded as they are.
#[derive(Clone, Copy)]
enum Leaves<'a, T> {
    Segments(&'a Segments<'a, T>),
    Products { rows: &'a [T], per_path: usize },
}

impl<T> Leaves<'_, T> {
    /// Leaves per path.
    fn count(&self) -> usize {
        match self {
            Leaves::Segments(segs) => segs.segments,
            Leaves::Products { per_path, .. } => *per_path,
        }
    }

    /// Rows per path of the tree's first level: the leaves padded to a power of two, at least two
    /// (one round of products).
    fn padded(&self) -> usize {
        self.count().next_power_of_two().max(2)
    }

    /// The width of a segment's row (none for products).
    fn width(&self, shape: &TensorShape) -> usize {
        match self {
            Leaves::Segments(segs) => shape.dim + segs.positions.len(),
            Leaves::Products { .. } => 0,
        }
    }
}

/// An upper bound on a path's padded segments per tree, on top of the adapter's limit (tests lower
/// it to run the windows on short paths).
static MAX_TREE_ROWS: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Multiply at most `rows` (a power of two, at least 2) segments per tree. For tests of the windowed
/// trees; the adapter's limits always apply as well.
#[doc(hidden)]
pub fn set_max_tree_rows(rows: usize) {
    MAX_TREE_ROWS.store(rows.max(2), Ordering::Relaxed);
}

/// The most rows per path one tree may hold on `device`: a power of two whose largest buffer per
/// path (the gradient's chain derivatives, `2·len` a row, or the exponential's chain) fits the
/// adapter's largest buffer.
fn window<T: Scalar>(device: &GpuDevice, shape: &TensorShape, gradient: bool) -> Result<usize> {
    let ctx = open(device, Precision::of::<T>())?;
    let max_bytes = ctx.max_buffer_bytes();
    let len = shape.len() as u64;
    let widest = (if gradient { 2 * len } else { len }).max(chain_len(shape) as u64);
    let bytes = widest.max(1) * std::mem::size_of::<T>() as u64;
    let fit = (max_bytes / bytes).min(u32::MAX as u64 / widest.max(1)) as usize;
    let held = fit.min(MAX_TREE_ROWS.load(Ordering::Relaxed));
    if held < 2 {
        return Err(Error::Device(format!(
            "adapter '{}': two segments' tensors ({bytes} bytes each) do not fit its largest \
             buffer ({max_bytes} bytes); use the CPU",
            ctx.name
        )));
    }
    Ok(1 << held.ilog2())
}

/// `segs` cut into windows of `w` segments, each a path of its own (the last padded with zero
/// rows), passed to `f` with the windows per path.
fn windows<T: Scalar, R>(
    segs: &Segments<'_, T>,
    w: usize,
    f: impl FnOnce(&Segments<'_, T>, usize) -> R,
) -> R {
    let m = segs.segments.div_ceil(w);
    let fill = |b: usize, k: usize, row: &mut [T]| {
        let at = b % m * w + k;
        if at < segs.segments {
            (segs.fill)(b / m, at, row);
        } else {
            row.fill(T::zero());
        }
    };
    let windowed = Segments {
        paths: segs.paths * m,
        segments: w,
        positions: segs.positions,
        fill: &fill,
    };
    f(&windowed, m)
}

/// The buffers of one group of paths: the rows, the elements, the exponential's chain, and the tree
/// of products, `levels[r]` holding `padded >> r` rows per path (level 0: the exponentials).
struct Tree {
    rows: Pooled,
    z: Pooled,
    chain: Pooled,
    levels: Vec<Pooled>,
    unused: [Pooled; 3],
    /// The leaves' rows' width (segments; 0 for products).
    width: usize,
}

/// The placement table: increments at levels 1, each correction entry at its position.
fn placement<T: Scalar>(shape: &TensorShape, positions: &[usize]) -> Result<Expansion<T>> {
    let columns: Vec<[(usize, f64); 1]> = (0..shape.dim)
        .chain(positions.iter().copied())
        .map(|at| [(at, 1.0)])
        .collect();
    Expansion::new(columns.iter().map(|c| &c[..]), shape.len())
        .ok_or_else(|| Error::Device("the signature is too large for the GPU".into()))
}

/// The buffers per path of a call (`gradient`: the backward pass's too, for derivative rows of
/// `top`).
fn per_path<T>(
    shape: &TensorShape,
    leaves: Leaves<'_, T>,
    top: usize,
    gradient: bool,
) -> Vec<PerPath> {
    let (p, len) = (leaves.padded(), shape.len());
    let segments = matches!(leaves, Leaves::Segments(_));
    let mut all = vec![per_row("products", p * len), per_row("signatures", top)];
    if segments {
        all.extend([
            per_row("segment rows", p * leaves.width(shape)),
            per_row("segment elements", p * len),
            per_row("exponential chain", p * chain_len(shape)),
        ]);
    }
    if gradient {
        all.push(per_row("product derivatives", 2 * p * len));
        if segments {
            all.extend([
                per_row("chain derivatives", 2 * p * len),
                per_row("element derivatives", p * len),
            ]);
        }
    }
    all
}

impl Tree {
    /// Uploads the leaves of paths `first..first + n` (segment rows, or the first level's products)
    /// and takes the buffers for their tree.
    fn new<T: Scalar>(
        call: &mut RowCall,
        shape: &TensorShape,
        leaves: Leaves<'_, T>,
        first: usize,
        n: usize,
    ) -> Tree {
        let (p, len, width) = (leaves.padded(), shape.len(), leaves.width(shape));
        let levels: Vec<Pooled> = (0..p.trailing_zeros())
            .map(|r| call.buffer("products", n * (p >> r) * len))
            .collect();
        let mut take = |label, elems: usize| call.buffer(label, elems.max(1));
        let (rows, z, chain) = match leaves {
            Leaves::Segments(segs) => {
                let rows = take("segment rows", n * p * width);
                let z = take("segment elements", n * p * len);
                let chain = take("exponential chain", n * p * chain_len(shape));
                let mut values = vec![T::zero(); n * p * width];
                for (b, path) in values.chunks_exact_mut(p * width).enumerate() {
                    for (k, row) in path.chunks_exact_mut(width).take(segs.segments).enumerate() {
                        (segs.fill)(first + b, k, row);
                    }
                }
                call.upload(&rows, &values);
                (rows, z, chain)
            }
            Leaves::Products { rows, per_path } => {
                // Each path's products, then zero rows (the identity) up to `p`.
                let mut values = vec![T::zero(); n * p * len];
                for (b, path) in values.chunks_exact_mut(p * len).enumerate() {
                    let from = (first + b) * per_path * len;
                    path[..per_path * len].copy_from_slice(&rows[from..from + per_path * len]);
                }
                call.upload(&levels[0], &values);
                let mut none = || call.buffer("unused", 4);
                (none(), none(), none())
            }
        };
        let unused = [(); 3].map(|_| call.buffer("unused", 4));
        Tree {
            rows,
            z,
            chain,
            levels,
            unused,
            width,
        }
    }

    /// The dispatches up to the tree's last level (two rows per path), `rows` rows in its first.
    fn steps<'a>(
        &'a self,
        call: &RowCall,
        tables: Option<&'a OnDevice>,
        shape: &TensorShape,
        rows: usize,
    ) -> Result<Vec<Dispatch<'a>>> {
        let len = shape.len();
        let [u0, u1, u2] = &self.unused;
        let mut steps = Vec::new();
        if let Some(tables) = tables {
            let placed = tables
                .expansion
                .as_ref()
                .expect("the placement is uploaded");
            let (width, from, to) = (self.width, &self.rows, &self.z);
            steps.push(tables.expand(call, EXPAND, rows * len, width, placed, from, to)?);
            let series = SeriesRows {
                row: len,
                st: 0,
                words: false,
            };
            let bufs = [
                &*self.z,
                &**u0,
                &*self.chain,
                &**u1,
                &*self.levels[0],
                &**u2,
            ];
            steps.extend(series_steps(call, shape, rows, SERIES_EXP, series, bufs)?);
        }
        for r in 1..self.levels.len() {
            let (pairs, out) = (&self.levels[r - 1], &self.levels[r]);
            steps.push(combine::product(call, rows >> r, 0, pairs, u0, out)?);
        }
        Ok(steps)
    }

    fn last(&self) -> &Pooled {
        self.levels.last().expect("at least one level")
    }
}

/// A call of the tree over `leaves`, with the placement's tables when the leaves are segments.
fn open_call<T: Scalar>(
    device: &GpuDevice,
    op: &str,
    shape: &TensorShape,
    leaves: Leaves<'_, T>,
    top: usize,
    gradient: bool,
) -> Result<(RowCall, Option<OnDevice>)> {
    let buffers = per_path(shape, leaves, top, gradient);
    let kernels: &[&_] = if gradient {
        &[&TENSOR_SERIES, &SIG_COMBINE, &SIG_COMBINE_BACKPROP]
    } else {
        &[&TENSOR_SERIES, &SIG_COMBINE]
    };
    let mut call = RowCall::open::<T>(device, op, shape, &buffers, kernels)?;
    let tables = match leaves {
        Leaves::Segments(segs) => {
            let placed = placement::<T>(shape, segs.positions)?;
            Some(OnDevice::new(&mut call, Some(&placed), None, gradient)?)
        }
        Leaves::Products { .. } => None,
    };
    Ok((call, tables))
}

/// The products of each path's leaves into `out` (rows of `out_st + shape.len()`, the scalar term
/// 1).
fn product<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    leaves: Leaves<'_, T>,
    out_st: usize,
    out: &mut [T],
) -> Result<()> {
    let row = shape.len() + out_st;
    let (mut call, tables) = open_call(device, "sig_corrected", shape, leaves, row, false)?;
    let p = leaves.padded();
    for (g, out_group) in out.chunks_mut(call.group * row).enumerate() {
        let (n, first) = (out_group.len() / row, g * call.group);
        let tree = Tree::new(&mut call, shape, leaves, first, n);
        let top = call.buffer("signatures", n * row);
        let mut steps = tree.steps(&call, tables.as_ref(), shape, n * p)?;
        let unused = &tree.unused[0];
        steps.push(combine::product(
            &call,
            n,
            out_st,
            tree.last(),
            unused,
            &top,
        )?);
        submit_reading(
            &call.ctx,
            &steps,
            &mut [(&top, dst(out_group))],
            &mut call.report,
        )?;
    }
    call.finish();
    Ok(())
}

/// The gradients of each path's leaves (per path, `leaves.count()` rows of the segment rows' width,
/// or of `shape.len()` for products) into `out`, from `derivs`, rows of `g_st + shape.len()`.
fn product_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    leaves: Leaves<'_, T>,
    derivs: &[T],
    g_st: usize,
    out: &mut [T],
) -> Result<()> {
    let len = shape.len();
    let g_row = len + g_st;
    let (mut call, tables) =
        open_call(device, "sig_corrected_backprop", shape, leaves, g_row, true)?;
    let p = leaves.padded();
    // What comes back per leaf: a segment row's gradient, or a product's.
    let leaf = if tables.is_some() {
        leaves.width(shape)
    } else {
        len
    };
    let out_row = leaves.count() * leaf;
    for (g, out_group) in out.chunks_mut(call.group * out_row).enumerate() {
        let (n, first) = (out_group.len() / out_row, g * call.group);
        let tree = Tree::new(&mut call, shape, leaves, first, n);
        let top = call.buffer("signature derivatives", n * g_row);
        call.upload(&top, &derivs[first * g_row..(first + n) * g_row]);
        let grads: Vec<Pooled> = (0..tree.levels.len())
            .map(|r| call.buffer("product derivatives", n * (p >> r) * len))
            .collect();
        let mut steps = tree.steps(&call, tables.as_ref(), shape, n * p)?;
        // Back down the tree: each level's derivatives from the level above's.
        let last = tree.levels.len() - 1;
        steps.push(combine::product_backprop(
            &call,
            n,
            g_st,
            tree.last(),
            &top,
            &grads[last],
        )?);
        for r in (0..last).rev() {
            let (pairs, above) = (n * (p >> (r + 1)), &grads[r + 1]);
            steps.push(combine::product_backprop(
                &call,
                pairs,
                0,
                &tree.levels[r],
                above,
                &grads[r],
            )?);
        }
        let (dp, dz);
        let result = match &tables {
            Some(tables) => {
                dp = call.buffer("chain derivatives", 2 * n * p * len);
                dz = call.buffer("element derivatives", n * p * len);
                let series = SeriesRows {
                    row: len,
                    st: 0,
                    words: false,
                };
                let unused = &tree.unused[0];
                let bufs = [&*tree.z, &*grads[0], &*tree.chain, &*dp, &*dz, &**unused];
                steps.extend(series_backprop_steps(
                    &call,
                    shape,
                    n * p,
                    SERIES_EXP,
                    series,
                    bufs,
                )?);
                let transpose = tables
                    .transpose
                    .as_ref()
                    .expect("the transpose is uploaded");
                let width = tree.width;
                steps.push(tables.expand(
                    &call,
                    CONTRACT,
                    n * p * width,
                    width,
                    transpose,
                    &tree.rows,
                    &dz,
                )?);
                &tree.rows
            }
            None => &grads[0],
        };
        let mut rows = vec![T::zero(); n * p * leaf];
        submit_reading(
            &call.ctx,
            &steps,
            &mut [(result, dst(&mut rows))],
            &mut call.report,
        )?;
        // Each path's real leaves, without the padding.
        for (o, path) in out_group
            .chunks_exact_mut(out_row)
            .zip(rows.chunks_exact(p * leaf))
        {
            o.copy_from_slice(&path[..out_row]);
        }
    }
    call.finish();
    Ok(())
}

/// The corrected signatures of `segs` into `out` (rows of `out_st + shape.len()`, the scalar term 1).
pub(crate) fn sig_corrected<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    segs: &Segments<'_, T>,
    out_st: usize,
    out: &mut [T],
) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let w = window::<T>(device, shape, false)?;
    if Leaves::Segments(segs).padded() <= w {
        return product(device, shape, Leaves::Segments(segs), out_st, out);
    }
    // The windows' products, then their product.
    windows(segs, w, |windowed, m| {
        let mut rows = vec![T::zero(); windowed.paths * shape.len()];
        product(device, shape, Leaves::Segments(windowed), 0, &mut rows)?;
        let leaves = Leaves::Products {
            rows: &rows,
            per_path: m,
        };
        check_window(leaves, w)?;
        product(device, shape, leaves, out_st, out)
    })
}

/// `dF/dΔx` of `F(sig_corrected)` into `out` (per path and segment, `shape.dim` values), from
/// `derivs`, rows of `g_st + shape.len()` (after a scalar term's derivative when `g_st`).
pub(crate) fn sig_corrected_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    segs: &Segments<'_, T>,
    derivs: &[T],
    g_st: usize,
    out: &mut [T],
) -> Result<()> {
    let (dim, width) = (shape.dim, Leaves::Segments(segs).width(shape));
    if segs.paths == 0 || segs.segments == 0 {
        return Ok(());
    }
    let w = window::<T>(device, shape, true)?;
    let rows = |segs: &Segments<'_, T>, derivs: &[T], g_st: usize| -> Result<Vec<T>> {
        let mut rows = vec![T::zero(); segs.paths * segs.segments * width];
        product_backprop(
            device,
            shape,
            Leaves::Segments(segs),
            derivs,
            g_st,
            &mut rows,
        )?;
        Ok(rows)
    };
    let grads = if Leaves::Segments(segs).padded() <= w {
        rows(segs, derivs, g_st)?
    } else {
        // The windows' products, the gradients of the tree over them, then each window's.
        windows(segs, w, |windowed, m| -> Result<Vec<T>> {
            let len = shape.len();
            let mut products = vec![T::zero(); windowed.paths * len];
            product(device, shape, Leaves::Segments(windowed), 0, &mut products)?;
            let leaves = Leaves::Products {
                rows: &products,
                per_path: m,
            };
            check_window(leaves, w)?;
            let mut d_products = vec![T::zero(); windowed.paths * len];
            product_backprop(device, shape, leaves, derivs, g_st, &mut d_products)?;
            let grads = rows(windowed, &d_products, 0)?;
            // Back to the paths' segments: each path's windows end to end, less the padding.
            let per_path = segs.segments * width;
            Ok(grads
                .chunks_exact(m * w * width)
                .flat_map(|path| &path[..per_path])
                .copied()
                .collect())
        })?
    };
    // The increments' gradients: each segment row's first `dim` entries.
    for (o, row) in out.chunks_exact_mut(dim).zip(grads.chunks_exact(width)) {
        o.copy_from_slice(&row[..dim]);
    }
    Ok(())
}

/// The windows of a path must fit one tree themselves.
fn check_window<T>(leaves: Leaves<'_, T>, w: usize) -> Result<()> {
    if leaves.padded() > w {
        return Err(Error::Device(format!(
            "a path of {} windows of {w} segments is too long for one GPU tree; use the CPU",
            leaves.count()
        )));
    }
    Ok(())
}
