//! `sig_kernel` on the GPU: the forward sweep (`sig_kernel_forward.wgsl`) of every pair of a chunk,
//! after the base Gram pass where the grid is taller than one band.

use super::{
    band_windows, bands, base_gram, base_gram_cost, base_params, consts, polynomial, sweep_pack,
    upload_pairs, Call, KernelGrid, Pairs, BAND_ROWS, FORWARD_WG,
};
use crate::gpu::chunks::{open, to_u32, PerPath};
use crate::gpu::kernels::{Precision, SigKernelParams, SIG_KERNEL_FORWARD};
use crate::gpu::program::{dst, set_last_report, submit, Dispatch};
use crate::gpu::GpuDevice;
use crate::{Result, Scalar};

/// The kernels of the first `out.len()` pairs of `pairs` into `out`. A grid without cells (a path
/// of one point) has the kernel 1.
pub(crate) fn sig_kernel<T: Scalar>(
    device: &GpuDevice,
    grid: KernelGrid,
    pairs: &Pairs<'_, T>,
    out: &mut [T],
) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    if grid.n1 == 0 || grid.n2 == 0 {
        out.fill(T::one());
        return Ok(());
    }
    if let Some(order) = grid.order {
        let size = order as usize + 1;
        let job = polynomial::Job::Kernels;
        let count = out.len();
        let mut sink = |first: usize, k: &[T]| out[first..first + k.len()].copy_from_slice(k);
        return polynomial::run(device, grid, size, pairs, count, job, &mut sink);
    }
    let (rows, cols) = (grid.rows(), grid.cols());
    // A grid of one band computes G itself; taller grids read it from a Gram pass.
    let pack = sweep_pack(grid);
    let one_band = rows <= BAND_ROWS;
    // The dispatches: each band's windows of diagonals. Each diagonal, each dispatch's first 8
    // increments and the start of its rows' walks cost at most one `base_gram` each.
    let ctx = open(device, Precision::of::<T>())?;
    let h_cost = base_gram_cost(pairs.gram.kind(), to_u32("channels", pairs.dim)?);
    let mut sweep = Vec::new();
    for band in bands(0, rows - 1) {
        let windows = band_windows(&ctx, band.1 - band.0 + 1, cols, 2 + h_cost, 9 * h_cost)?;
        sweep.extend(windows.into_iter().map(|w| (band, w)));
    }
    // What a sweep carries between its dispatches, per pair (a band's diagonals and last row):
    // nothing where it is one dispatch.
    let carry_len = if sweep.len() > 1 {
        3 * BAND_ROWS + 2 * cols
    } else {
        0
    };
    let mut extra = vec![PerPath {
        what: "sweep carry",
        elems: carry_len as u64,
    }];
    if !one_band {
        extra.push(base_gram(grid));
    }
    let mut call = Call::open(
        device,
        grid,
        pairs,
        "sig_kernel",
        out.len(),
        &extra,
        &consts::<T>(grid),
    )?;
    let p = SigKernelParams {
        dim: call.sides.params.dim,
        kind: call.sides.params.kind,
        point_kernel: call.sides.params.point_kernel,
        pack: pack as u32,
        ..base_params(grid)?
    };
    let (precision, chunk) = (call.precision, call.chunk);
    let kernels = call.take("kernels", chunk as u64);
    let carry = call.take("sweep carry", (chunk * carry_len).max(1) as u64);
    // Where the grid is one band, `gram` is bound but unused: one value.
    let gram_elems = if one_band {
        1
    } else {
        chunk * grid.n1 * grid.n2
    };
    let gram = call.take("gram", gram_elems as u64);
    let Call {
        ctx,
        mut report,
        sides,
        consts,
        ..
    } = call;
    let forward = ctx.pipeline(&SIG_KERNEL_FORWARD, precision)?;
    for (c, out_chunk) in out.chunks_mut(chunk).enumerate() {
        let n = out_chunk.len();
        let index = upload_pairs(&ctx, pairs, c * chunk, n, &mut report)?;
        let n_pairs = to_u32("chunk", n)?;
        let mut dispatches = Vec::new();
        if !one_band {
            dispatches.push(sides.dispatch(n, &index, &gram)?);
        }
        let side_b = sides.b.as_deref().unwrap_or(&sides.a);
        for &((b0, b1), (d_begin, d_end)) in &sweep {
            dispatches.push(Dispatch {
                label: SIG_KERNEL_FORWARD.name,
                pipeline: forward.clone(),
                params: bytemuck::bytes_of(&SigKernelParams {
                    n_pairs,
                    d_begin,
                    d_end,
                    b0: to_u32("grid row", b0)?,
                    b1: to_u32("grid row", b1)?,
                    ..p
                })
                .to_vec(),
                buffers: vec![
                    &sides.a,
                    side_b,
                    &index,
                    &sides.consts,
                    &gram,
                    &consts,
                    &kernels,
                    &carry,
                ],
                workgroups: n.div_ceil(pack) as u64,
                workgroup_size: FORWARD_WG,
            });
        }
        submit(
            &ctx,
            &dispatches,
            Some((&kernels, dst(out_chunk))),
            &mut report,
        )?;
    }
    set_last_report(report);
    Ok(())
}
