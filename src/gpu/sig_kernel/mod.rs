//! `sig_kernel` and its gradient on the GPU: the drivers of `sig_kernel_gram.wgsl`,
//! `sig_kernel_forward.wgsl`, `sig_kernel_backward.wgsl` and `sig_kernel_chain.wgsl`.
//!
//! The caller uploads each transformed path once ([`Pairs`]); per chunk of pairs, one submission
//! solves the refined PDE of every pair (one workgroup per pair, or several pairs per workgroup on
//! grids of one band, in bands of rows) and, backward, its adjoint down to `dF/dG`, chained to the
//! paths on the device. The base Gram matrices `G` come from a pass of one invocation per cell,
//! except where the forward sweep forms them itself (grids of one band). Chunks respect the
//! adapter's limits (workgroups per dimension, binding and buffer sizes, `u32` indices); each band's
//! sweep is cut into windows of diagonals, one dispatch each, sized by the adapter's loop budget
//! (see `gpu::sig`).
//!
//! This module holds what the drivers share: the pairs' paths on the device, the Gram and chain
//! passes, the bands and windows. `forward`, `backward` and `polynomial` each drive the shader of
//! their name.

use super::chunks::{bytes_of, chunk_paths, loop_cost, open, to_u32, PerPath, STORAGE};
use super::context::Context;
use super::kernels::{
    GramParams, Precision, SigKernelParams, SIG_KERNEL_BACKWARD, SIG_KERNEL_CHAIN,
    SIG_KERNEL_FORWARD, SIG_KERNEL_GRAM, WORKGROUP_SIZE,
};
use super::program::{take, upload, Dispatch, GpuReport, Pooled};
use super::GpuDevice;
use crate::{Error, Result, Scalar};
use std::sync::Arc;

mod backward;
mod forward;
pub(crate) mod polynomial;

pub use backward::set_max_grid_rows;
pub(crate) use backward::{sig_kernel_backprop, sig_kernel_grids};
pub(crate) use forward::sig_kernel;

/// How a base Gram matrix is formed from two transformed paths (`sig_kernel_gram.wgsl`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum StaticGram<T> {
    /// `κ(p, q) = c·<p, q>`, from increments.
    Bilinear(T),
    /// A point kernel (`shaders/common/point_kernel.wgsl`), from points: its number there and its
    /// constants.
    Points(u32, [T; 4]),
}

impl<T> StaticGram<T> {
    /// The shaders' `kind`: 0 bilinear (rows of increments), 1 a point kernel (rows of points).
    fn kind(&self) -> u32 {
        matches!(self, StaticGram::Points(..)) as u32
    }
}

/// The pairs of one call: the transformed paths of its two sides, one row each (`n·dim`
/// increments for a bilinear kernel, `(n + 1)·dim` points otherwise, `n` the side's increments),
/// and which paths pair `i` joins.
pub(crate) struct Pairs<'a, T> {
    pub gram: StaticGram<T>,
    /// The most pairs per chunk the caller allows (`SigKernelOptions::max_batch`).
    pub max_batch: usize,
    pub a: &'a [T],
    pub b: &'a [T],
    pub dim: usize,
    pub pair: &'a (dyn Fn(usize) -> (usize, usize) + Sync),
    /// The polynomial solver's coefficient tables (`sig_kernel_polynomial.wgsl`'s `tables`), where
    /// the grid has an `order`.
    pub tables: &'a [T],
}

/// The base Gram matrix and refinement shared by every pair of one call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KernelGrid {
    /// Increments of the two transformed paths.
    pub n1: usize,
    pub n2: usize,
    /// Dyadic orders.
    pub lam1: u32,
    pub lam2: u32,
    /// The polynomial solver's order (no refinement), or `None` for the finite-difference scheme.
    pub order: Option<u32>,
}

impl KernelGrid {
    fn rows(&self) -> usize {
        (self.n1 << self.lam1) + 1
    }

    fn cols(&self) -> usize {
        (self.n2 << self.lam2) + 1
    }
}

/// `consts` of the shader: `[2^-(λ1+λ2), 1/12]`, as the CPU scheme computes them.
pub(crate) fn consts<T: Scalar>(grid: KernelGrid) -> [T; 2] {
    [
        T::from_f64(0.5f64.powi((grid.lam1 + grid.lam2) as i32)),
        T::from_f64(1.0 / 12.0),
    ]
}

/// `consts` of the backward shader: those of the forward one, then `1/6` (`dA/dh = 1/2 + h/6`).
pub(crate) fn backward_consts<T: Scalar>(grid: KernelGrid) -> [T; 3] {
    let [frac, twelfth] = consts::<T>(grid);
    [frac, twelfth, T::from_f64(1.0 / 6.0)]
}

/// Invocations per workgroup of `sig_kernel_forward.wgsl`.
const FORWARD_WG: u32 = SIG_KERNEL_FORWARD.workgroup_size[0];
/// Invocations per workgroup of `sig_kernel_backward.wgsl`.
const BACKWARD_WG: u32 = SIG_KERNEL_BACKWARD.workgroup_size[0];
/// The most rows of a band of the PDE kernels: one invocation per row, a workgroup per band.
const BAND_ROWS: usize = FORWARD_WG as usize;
const _: () = assert!(BACKWARD_WG as usize == BAND_ROWS);

/// The rows `[lo, hi]` cut into bands of at most `BAND_ROWS` rows, top first: what one dispatch of
/// the PDE kernels' sweeps walks, one invocation per row.
fn bands(lo: usize, hi: usize) -> Vec<(usize, usize)> {
    (lo..=hi)
        .step_by(BAND_ROWS)
        .map(|b0| (b0, (b0 + BAND_ROWS - 1).min(hi)))
        .collect()
}

/// The windows `[d_begin, d_end)` of the diagonals of a band of `band_rows` rows and `cols` columns,
/// one per dispatch of the PDE kernels' sweeps, that keep every dispatch within the adapter's loop
/// budget (`gpu::sig`'s model): `per_diagonal` iterations a diagonal, and per dispatch the two
/// diagonals read back first and stored last, and `fixed` more.
fn band_windows(
    ctx: &Context,
    band_rows: usize,
    cols: usize,
    per_diagonal: u64,
    fixed: u64,
) -> Result<Vec<(u32, u32)>> {
    let diagonals = to_u32("grid diagonals", band_rows - 1 + cols)?;
    let fixed = fixed + 2 * loop_cost::ENTRY + 2 * loop_cost::lp(2, 0);
    let steps = ctx.loop_budget.saturating_sub(fixed) / per_diagonal;
    if steps == 0 {
        return Err(Error::Device(format!(
            "adapter '{}' runs at most {} loop iterations per invocation and dispatch; one diagonal \
             of this signature-kernel grid needs {per_diagonal}; use the CPU",
            ctx.name, ctx.loop_budget
        )));
    }
    Ok(cut(diagonals, steps))
}

/// What lavapipe counts for one `base_gram` call (shaders/common/pairs.wgsl) of a static kernel of
/// `kind` (0 bilinear) over `dim` channels. It runs both branches of a branch it cannot prove uniform,
/// masked, and counts every loop it enters, so the bilinear form pays for the point kernels' loops
/// too. Measured on lavapipe (a sweep of 65535 / calls iterations failing): about 50 + dim for a
/// bilinear kernel, 100 + 4·dim for RBF, 234 for the polynomial kernel at 8 channels; these bounds
/// sit above.
fn base_gram_cost(kind: u32, dim: u32) -> u64 {
    let dim = dim as u64;
    if kind == 0 {
        56 + 2 * dim
    } else {
        240 + 8 * dim
    }
}

/// `[0, total)` cut into windows of at most `step`.
fn cut(total: u32, step: u64) -> Vec<(u32, u32)> {
    let step = step.clamp(1, u32::MAX as u64) as u32;
    let mut out = Vec::new();
    let mut begin = 0u32;
    while begin < total {
        let end = begin.saturating_add(step).min(total);
        out.push((begin, end));
        begin = end;
    }
    out
}

/// What every pair of a call shares: the grid's sizes (the per-dispatch fields are filled later).
pub(crate) fn base_params(grid: KernelGrid) -> Result<SigKernelParams> {
    Ok(SigKernelParams {
        n1: to_u32("increments", grid.n1)?,
        n2: to_u32("increments", grid.n2)?,
        lam1: grid.lam1,
        lam2: grid.lam2,
        rows: to_u32("grid rows", grid.rows())?,
        cols: to_u32("grid columns", grid.cols())?,
        ..Default::default()
    })
}

/// Pairs per chunk: what the buffers (`per_pair`) allow, at most `pairs`. (The PDE kernels lay
/// their workgroups out as an (x, y) grid, so the workgroups per dimension do not bound a chunk.)
fn chunk_pairs(
    ctx: &Context,
    precision: Precision,
    per_pair: &[PerPath],
    pairs: usize,
) -> Result<usize> {
    Ok(chunk_paths(ctx, precision, per_pair)?.min(pairs))
}

/// Pairs per workgroup of the PDE kernels' sweeps: where the grid is one band, as many as fit (a
/// power of two, each pair on at least as many invocations as the grid has rows); else 1.
pub(crate) fn sweep_pack(grid: KernelGrid) -> usize {
    let rows = grid.rows();
    if rows > BAND_ROWS {
        return 1;
    }
    BAND_ROWS / rows.next_power_of_two()
}

/// The base Gram matrix of each pair of a chunk, as a buffer entry.
fn base_gram(grid: KernelGrid) -> PerPath {
    PerPath {
        what: "base Gram matrix",
        elems: (grid.n1 * grid.n2) as u64,
    }
}

/// What every chunk of a call shares on the device: the two sides' paths, the static kernel's
/// constant and the pipelines.
struct Sides {
    a: Pooled,
    b: Option<Pooled>,
    consts: Pooled,
    gram: Arc<super::context::Pipeline>,
    chain: Arc<super::context::Pipeline>,
    params: GramParams,
}

impl Sides {
    fn upload<T: Scalar>(
        ctx: &Arc<Context>,
        grid: KernelGrid,
        pairs: &Pairs<'_, T>,
        report: &mut GpuReport,
    ) -> Result<Sides> {
        let precision = Precision::of::<T>();
        let max = ctx.limits.max_storage_buffer_binding_size;
        let side = |data: &[T], report: &mut GpuReport| -> Result<Pooled> {
            let bytes = std::mem::size_of_val(data) as u64;
            if bytes > max {
                return Err(Error::Device(format!(
                    "adapter '{}': the paths of one side take {bytes} bytes, more than its largest \
                     binding ({max} bytes)",
                    ctx.name
                )));
            }
            let buf = take(ctx, "paths", bytes, STORAGE, report);
            upload(ctx, &buf, bytemuck::cast_slice(data), report);
            Ok(buf)
        };
        let a = side(pairs.a, report)?;
        let same = std::ptr::eq(pairs.a, pairs.b);
        let b = if same {
            None
        } else {
            Some(side(pairs.b, report)?)
        };
        let (point_kernel, values) = match pairs.gram {
            StaticGram::Bilinear(c) => (0, [c, T::zero(), T::zero(), T::zero()]),
            StaticGram::Points(kernel, values) => (kernel, values),
        };
        let consts = take(ctx, "consts", 4 * precision.size(), STORAGE, report);
        upload(ctx, &consts, &bytes_of(precision, &values), report);
        Ok(Sides {
            a,
            b,
            consts,
            gram: ctx.pipeline(&SIG_KERNEL_GRAM, precision)?,
            chain: ctx.pipeline(&SIG_KERNEL_CHAIN, precision)?,
            params: GramParams {
                n1: to_u32("increments", grid.n1)?,
                n2: to_u32("increments", grid.n2)?,
                dim: to_u32("channels", pairs.dim)?,
                kind: pairs.gram.kind(),
                point_kernel,
                ..Default::default()
            },
        })
    }

    /// The dispatch writing the Gram matrices of `n` pairs (listed in `pairs`) into `gram`.
    fn dispatch<'a>(
        &'a self,
        n: usize,
        pairs: &'a wgpu::Buffer,
        gram: &'a wgpu::Buffer,
    ) -> Result<Dispatch<'a>> {
        let cells = self.params.n1 as u64 * self.params.n2 as u64;
        let params = GramParams {
            n_pairs: to_u32("chunk", n)?,
            ..self.params
        };
        Ok(Dispatch {
            label: SIG_KERNEL_GRAM.name,
            pipeline: self.gram.clone(),
            params: bytemuck::bytes_of(&params).to_vec(),
            buffers: vec![
                &self.a,
                self.b.as_deref().unwrap_or(&self.a),
                pairs,
                &self.consts,
                gram,
            ],
            workgroups: (n as u64 * cells).div_ceil(WORKGROUP_SIZE as u64),
            workgroup_size: WORKGROUP_SIZE,
        })
    }
}

/// Values per pair of `sig_kernel_chain.wgsl`'s output: the gradient of path a's row, of path b's
/// row, and the kernel.
fn chained_len<T>(grid: KernelGrid, pairs: &Pairs<'_, T>) -> usize {
    let points = pairs.gram.kind() as usize;
    (grid.n1 + points) * pairs.dim + (grid.n2 + points) * pairs.dim + 1
}

impl Sides {
    /// The two dispatches chaining `dgram` (`dF/dG` and the kernel of `n` pairs) to the pairs'
    /// transformed paths, into `out`.
    fn chain_dispatches<'a>(
        &'a self,
        n: usize,
        pairs: &'a wgpu::Buffer,
        dgram: &'a wgpu::Buffer,
        out: &'a wgpu::Buffer,
    ) -> Result<[Dispatch<'a>; 2]> {
        let n_pairs = to_u32("chunk", n)?;
        let side = |side: u32, rows: u32| Dispatch {
            label: SIG_KERNEL_CHAIN.name,
            pipeline: self.chain.clone(),
            params: bytemuck::bytes_of(&GramParams {
                n_pairs,
                side,
                ..self.params
            })
            .to_vec(),
            buffers: vec![
                &self.a,
                self.b.as_deref().unwrap_or(&self.a),
                pairs,
                &self.consts,
                dgram,
                out,
            ],
            workgroups: (n as u64 * (rows + self.params.kind) as u64)
                .div_ceil(WORKGROUP_SIZE as u64),
            workgroup_size: WORKGROUP_SIZE,
        };
        Ok([side(0, self.params.n1), side(1, self.params.n2)])
    }
}

/// What the PDE drivers set up for a call: the context and its report, the pairs per chunk, the
/// sides on the device and the scheme's constants.
struct Call {
    ctx: Arc<Context>,
    precision: Precision,
    report: GpuReport,
    chunk: usize,
    sides: Sides,
    consts: Pooled,
}

impl Call {
    /// Open the call `op` over `count` pairs, whose kernels also bind `extra` buffers per pair.
    fn open<T: Scalar>(
        device: &GpuDevice,
        grid: KernelGrid,
        pairs: &Pairs<'_, T>,
        op: &str,
        count: usize,
        extra: &[PerPath],
        consts: &[T],
    ) -> Result<Call> {
        let precision = Precision::of::<T>();
        let ctx = open(device, precision)?;
        let chunk = chunk_pairs(&ctx, precision, extra, count)?.min(pairs.max_batch);
        let mut report = GpuReport::new(op);
        let sides = Sides::upload(&ctx, grid, pairs, &mut report)?;
        let size = precision.size();
        let consts_buf = take(
            &ctx,
            "consts",
            consts.len() as u64 * size,
            STORAGE,
            &mut report,
        );
        upload(&ctx, &consts_buf, &bytes_of(precision, consts), &mut report);
        Ok(Call {
            ctx,
            precision,
            report,
            chunk,
            sides,
            consts: consts_buf,
        })
    }

    /// A storage buffer of `elems` values from the pool.
    fn take(&mut self, label: &str, elems: u64) -> Pooled {
        let bytes = elems * self.precision.size();
        take(&self.ctx, label, bytes, STORAGE, &mut self.report)
    }
}

/// Upload the path indices of pairs `first..first + n` (two `u32` per pair).
fn upload_pairs<T>(
    ctx: &Arc<Context>,
    pairs: &Pairs<'_, T>,
    first: usize,
    n: usize,
    report: &mut GpuReport,
) -> Result<Pooled> {
    let mut index = Vec::with_capacity(2 * n);
    for i in first..first + n {
        let (p, q) = (pairs.pair)(i);
        index.extend([to_u32("path index", p)?, to_u32("path index", q)?]);
    }
    let buf = take(ctx, "pairs", 8 * n as u64, STORAGE, report);
    upload(ctx, &buf, bytemuck::cast_slice(&index), report);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::kernels::BANDS;

    /// Both kernels keep a band's last three diagonals in workgroup memory, one slot per row
    /// (`shaders/common/bands.wgsl`, appended to both).
    #[test]
    fn band_rows_match_the_shaders() {
        let wg = format!("const WG: u32 = {BAND_ROWS}u;");
        assert!(BANDS.contains(&wg), "{wg}");
        let diag = format!("var<workgroup> diag: array<scalar, {}>;", 3 * BAND_ROWS);
        assert!(BANDS.contains(&diag), "{diag}");
        for kernel in [&SIG_KERNEL_FORWARD, &SIG_KERNEL_BACKWARD] {
            assert!(kernel.helpers.contains(&BANDS), "{}", kernel.name);
            let size = format!("@workgroup_size({BAND_ROWS})");
            assert!(kernel.source.contains(&size), "{}: {size}", kernel.name);
        }
    }

    /// More pairs than one dimension of workgroups holds (65 535) in one chunk: the PDE kernels lay
    /// their workgroups out as an (x, y) grid (the gradient's reduction and the polynomial solver
    /// run one pair per workgroup) and agree with the CPU. Here, not in the GPU suite, because the
    /// suite lowers the pairs per chunk for the whole process.
    #[test]
    fn more_pairs_than_one_workgroup_dimension() {
        use crate::{sig_kernel_backprop, Device, KernelSolver, SigKernelOptions};
        use ndarray::{Array1, Array3};
        if crate::gpu::adapters().adapters.is_empty() {
            assert!(
                std::env::var("ROUGHSIG_REQUIRE_GPU").as_deref() != Ok("1"),
                "ROUGHSIG_REQUIRE_GPU=1 but no GPU adapter was found"
            );
            return;
        }
        let n = 70_000;
        let mut uniform = crate::gpu::mirror::uniform(3);
        let mut rand = || (uniform() * 0.5) as f32;
        let x = Array3::from_shape_simple_fn((n, 2, 1), &mut rand);
        let y = Array3::from_shape_simple_fn((n, 3, 1), &mut rand);
        let ds = Array1::<f32>::ones(n).into_dyn();
        let polynomial = SigKernelOptions::default().solver(KernelSolver::Polynomial { order: 4 });
        for opts in [SigKernelOptions::default(), polynomial] {
            let on_gpu = opts.clone().device(Device::Gpu(None));
            let (gx, gy) = sig_kernel_backprop(ds.view(), x.view(), y.view(), &on_gpu).unwrap();
            let report = crate::gpu::last_gpu_report().expect("a GPU call reports");
            assert_eq!(report.submissions, 1, "{report:?}");
            let on_cpu = opts.device(Device::Cpu);
            let (wx, wy) = sig_kernel_backprop(ds.view(), x.view(), y.view(), &on_cpu).unwrap();
            for (got, want) in [(&gx, &wx), (&gy, &wy)] {
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn bands_cover_the_rows_once() {
        let wg = BAND_ROWS;
        assert_eq!(bands(0, 5), vec![(0, 5)]);
        assert_eq!(bands(3, 3), vec![(3, 3)]);
        assert_eq!(
            bands(1, 2 * wg + 1),
            vec![(1, wg), (wg + 1, 2 * wg), (2 * wg + 1, 2 * wg + 1)]
        );
    }
}
