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

use super::log_sig::{chain_len, series_backprop_steps, series_steps, SeriesRows};
use super::program::{dst, submit_reading, Dispatch, Pooled};
use super::sig::rows::{per_row, RowCall};
use super::sig::wgsl::{SERIES_EXP, SIG_COMBINE, SIG_COMBINE_BACKPROP, TENSOR_SERIES};
use super::to_sig::{OnDevice, CONTRACT, EXPAND};
use super::{combine, Expansion, GpuDevice};
use crate::gpu::chunks::PerPath;
use crate::layout::TensorShape;
use crate::{Error, Result, Scalar};

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

impl<T> Segments<'_, T> {
    fn width(&self, shape: &TensorShape) -> usize {
        shape.dim + self.positions.len()
    }

    /// Rows per path on the device: the segments padded to a power of two, at least two (one round
    /// of products).
    fn padded(&self) -> usize {
        self.segments.next_power_of_two().max(2)
    }
}

/// The buffers of one group of paths: the rows, the elements, the exponential's chain, and the tree
/// of products, `levels[r]` holding `padded >> r` rows per path (level 0: the exponentials).
struct Tree {
    rows: Pooled,
    z: Pooled,
    chain: Pooled,
    levels: Vec<Pooled>,
    unused: [Pooled; 3],
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
    segs: &Segments<'_, T>,
    top: usize,
    gradient: bool,
) -> Vec<PerPath> {
    let (p, len) = (segs.padded(), shape.len());
    let mut all = vec![
        per_row("segment rows", p * segs.width(shape)),
        per_row("segment elements", p * len),
        per_row("exponential chain", p * chain_len(shape)),
        per_row("segment exponentials", p * len),
        per_row("products", p * len),
        per_row("signatures", top),
    ];
    if gradient {
        all.extend([
            per_row("product derivatives", 2 * p * len),
            per_row("chain derivatives", 2 * p * len),
            per_row("element derivatives", p * len),
        ]);
    }
    all
}

impl Tree {
    /// Uploads the rows of paths `first..first + n` and takes the buffers for their tree.
    fn new<T: Scalar>(
        call: &mut RowCall,
        shape: &TensorShape,
        segs: &Segments<'_, T>,
        first: usize,
        n: usize,
    ) -> Tree {
        let (p, len, width) = (segs.padded(), shape.len(), segs.width(shape));
        let mut values = vec![T::zero(); n * p * width];
        for (b, path) in values.chunks_exact_mut(p * width).enumerate() {
            for (k, row) in path.chunks_exact_mut(width).take(segs.segments).enumerate() {
                (segs.fill)(first + b, k, row);
            }
        }
        let rows = call.buffer("segment rows", values.len());
        call.upload(&rows, &values);
        let levels = (0..p.trailing_zeros())
            .map(|r| call.buffer("products", n * (p >> r) * len))
            .collect();
        Tree {
            rows,
            z: call.buffer("segment elements", n * p * len),
            chain: call.buffer("exponential chain", n * p * chain_len(shape)),
            levels,
            unused: [(); 3].map(|_| call.buffer("unused", 4)),
        }
    }

    /// The dispatches up to the tree's last level (two rows per path) for `n` paths.
    fn steps<'a>(
        &'a self,
        call: &RowCall,
        tables: &'a OnDevice,
        shape: &TensorShape,
        segs_width: usize,
        rows: usize,
    ) -> Result<Vec<Dispatch<'a>>> {
        let len = shape.len();
        let placed = tables
            .expansion
            .as_ref()
            .expect("the placement is uploaded");
        let mut steps = vec![tables.expand(
            call,
            EXPAND,
            rows * len,
            segs_width,
            placed,
            &self.rows,
            &self.z,
        )?];
        let series = SeriesRows {
            row: len,
            st: 0,
            words: false,
        };
        let [u0, u1, u2] = &self.unused;
        let bufs = [
            &*self.z,
            &**u0,
            &*self.chain,
            &**u1,
            &*self.levels[0],
            &**u2,
        ];
        steps.extend(series_steps(call, shape, rows, SERIES_EXP, series, bufs)?);
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

/// The corrected signatures of `segs` into `out` (rows of `out_st + shape.len()`, the scalar term 1).
pub(crate) fn sig_corrected<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    segs: &Segments<'_, T>,
    out_st: usize,
    out: &mut [T],
) -> Result<()> {
    let row = shape.len() + out_st;
    if out.is_empty() {
        return Ok(());
    }
    let buffers = per_path(shape, segs, row, false);
    let kernels = [&TENSOR_SERIES, &SIG_COMBINE];
    let mut call = RowCall::open::<T>(device, "sig_corrected", shape, &buffers, &kernels)?;
    let tables = OnDevice::new(
        &mut call,
        Some(&placement::<T>(shape, segs.positions)?),
        None,
        false,
    )?;
    let (p, width) = (segs.padded(), segs.width(shape));
    for (g, out_group) in out.chunks_mut(call.group * row).enumerate() {
        let (n, first) = (out_group.len() / row, g * call.group);
        let tree = Tree::new(&mut call, shape, segs, first, n);
        let top = call.buffer("signatures", n * row);
        let mut steps = tree.steps(&call, &tables, shape, width, n * p)?;
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
    let (len, dim) = (shape.len(), shape.dim);
    let (g_row, out_row) = (len + g_st, segs.segments * dim);
    if segs.paths == 0 || out_row == 0 {
        return Ok(());
    }
    let buffers = per_path(shape, segs, g_row, true);
    let kernels = [&TENSOR_SERIES, &SIG_COMBINE, &SIG_COMBINE_BACKPROP];
    let mut call = RowCall::open::<T>(device, "sig_corrected_backprop", shape, &buffers, &kernels)?;
    let tables = OnDevice::new(
        &mut call,
        Some(&placement::<T>(shape, segs.positions)?),
        None,
        true,
    )?;
    let (p, width) = (segs.padded(), segs.width(shape));
    for (g, out_group) in out.chunks_mut(call.group * out_row).enumerate() {
        let (n, first) = (out_group.len() / out_row, g * call.group);
        let tree = Tree::new(&mut call, shape, segs, first, n);
        let top = call.buffer("signature derivatives", n * g_row);
        call.upload(&top, &derivs[first * g_row..(first + n) * g_row]);
        let grads: Vec<Pooled> = (0..tree.levels.len())
            .map(|r| call.buffer("product derivatives", n * (p >> r) * len))
            .collect();
        let dp = call.buffer("chain derivatives", 2 * n * p * len);
        let dz = call.buffer("element derivatives", n * p * len);
        let mut steps = tree.steps(&call, &tables, shape, width, n * p)?;
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
            let pairs = n * (p >> (r + 1));
            steps.push(combine::product_backprop(
                &call,
                pairs,
                0,
                &tree.levels[r],
                &grads[r + 1],
                &grads[r],
            )?);
        }
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
        steps.push(tables.expand(
            &call,
            CONTRACT,
            n * p * width,
            width,
            transpose,
            &tree.rows,
            &dz,
        )?);
        let mut rows = vec![T::zero(); n * p * width];
        submit_reading(
            &call.ctx,
            &steps,
            &mut [(&tree.rows, dst(&mut rows))],
            &mut call.report,
        )?;
        // The increments' gradients: each real segment's first `dim` entries.
        for (o, path) in out_group
            .chunks_exact_mut(out_row)
            .zip(rows.chunks_exact(p * width))
        {
            for (o, row) in o.chunks_exact_mut(dim).zip(path.chunks_exact(width)) {
                o.copy_from_slice(&row[..dim]);
            }
        }
    }
    call.finish();
    Ok(())
}
