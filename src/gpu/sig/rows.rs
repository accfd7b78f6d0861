//! Kernels over rows of signatures (no paths): Chen's product and its adjoint, the segment's
//! exponential, the tensor logarithm's reverse. What their drivers share: opening the device for a
//! key of (alphabet, degree, precision), the rows per submission that fit the adapter's buffers,
//! the lavapipe loop budget, and one dispatch with an invocation per item.

use super::plan::{SigParams, WG};
use super::wgsl::{SigKernel, SigKey, Tables};
use crate::gpu::chunks::{chunk_paths, open, to_u32, PerPath, STORAGE};
use crate::gpu::context::Context;
use crate::gpu::kernels::Precision;
use crate::gpu::program::{set_last_report, take, upload, Dispatch, GpuReport, Pooled};
use crate::gpu::GpuDevice;
use crate::layout::TensorShape;
use crate::{Error, Result, Scalar};
use std::sync::Arc;

/// What a call of the row kernels shares: the device, the kernels' key (the alphabet and degree of
/// the signatures; no path transforms) and how many rows go in one submission.
pub(in crate::gpu) struct RowCall {
    pub ctx: Arc<Context>,
    pub key: SigKey,
    pub sig_len: usize,
    /// Rows per submission.
    pub group: usize,
    pub report: GpuReport,
}

impl RowCall {
    /// `per_row`: the elements per row of each buffer; `kernels`: those the call runs, checked
    /// against the adapter's loop budget.
    pub(in crate::gpu) fn open<T: Scalar>(
        device: &GpuDevice,
        op: &str,
        shape: &TensorShape,
        per_row: &[PerPath],
        kernels: &[&SigKernel],
    ) -> Result<RowCall> {
        let precision = Precision::of::<T>();
        let ctx = open(device, precision)?;
        let too_large = || Error::Device(format!("the signature is too large for {op} on the GPU"));
        let d = to_u32("dimension", shape.dim)?;
        let degree = to_u32("degree", shape.degree)?;
        let tables = Tables::new(d, degree).ok_or_else(too_large)?;
        for k in kernels {
            let cost = loop_cost(k, &tables);
            if cost > ctx.loop_budget {
                return Err(Error::Device(format!(
                    "adapter '{}' runs at most {} loop iterations per invocation; {} needs {cost} \
                     for this signature; use the CPU",
                    ctx.name, ctx.loop_budget, k.name
                )));
            }
        }
        let group = chunk_paths(&ctx, precision, per_row)?;
        Ok(RowCall {
            key: SigKey {
                d,
                degree,
                dim: d,
                lead_lag: false,
                time_aug: false,
                precision,
                wg: WG,
                shared_state: false,
            },
            sig_len: shape.len(),
            group,
            report: GpuReport::new(op),
            ctx,
        })
    }

    pub(in crate::gpu) fn buffer(&mut self, label: &str, elems: usize) -> Pooled {
        let bytes = elems as u64 * self.key.precision.size();
        take(&self.ctx, label, bytes, STORAGE, &mut self.report)
    }

    pub(in crate::gpu) fn upload<T: Scalar>(&mut self, buffer: &wgpu::Buffer, data: &[T]) {
        upload(
            &self.ctx,
            buffer,
            bytemuck::cast_slice(data),
            &mut self.report,
        );
    }

    /// One dispatch of `kernel` over `workgroups` workgroups.
    pub(in crate::gpu) fn dispatch<'a>(
        &self,
        kernel: &'static SigKernel,
        params: SigParams,
        buffers: Vec<&'a wgpu::Buffer>,
        workgroups: u64,
    ) -> Result<Dispatch<'a>> {
        Ok(Dispatch {
            label: kernel.name,
            pipeline: super::pipeline(&self.ctx, kernel, &self.key)?,
            params: bytemuck::bytes_of(&params).to_vec(),
            buffers,
            workgroups: workgroups.max(1),
            workgroup_size: WG,
        })
    }

    /// One dispatch with an invocation per item (`params.total` items).
    pub(in crate::gpu) fn per_item<'a>(
        &self,
        kernel: &'static SigKernel,
        params: SigParams,
        buffers: Vec<&'a wgpu::Buffer>,
    ) -> Result<Dispatch<'a>> {
        let items = params.total as u64;
        self.dispatch(kernel, params, buffers, items.div_ceil(WG as u64))
    }

    pub(in crate::gpu) fn finish(self) {
        set_last_report(self.report);
    }
}

/// Loop iterations of one invocation of `kernel` (lavapipe's budget): the widest contraction or
/// word loop it runs.
fn loop_cost(kernel: &SigKernel, t: &Tables) -> u64 {
    let n = (t.pow.len() - 1) as u64;
    let level_of = 6 + n;
    let widest: u64 = t.pow[1..].iter().sum();
    match kernel.name {
        "sig_combine" | "sig_join" => level_of + 6 + 2 * n,
        "sig_pairs" => 0,
        // Per level `m` a loop over `D^m` words (a level-1 coefficient sums over every longer word).
        "sig_combine_backprop" => level_of + 6 * n + 2 * widest,
        // Each invocation takes every WG-th word of each level, `k` letters each; then the reduction.
        // The reverse step's right contraction, like sig_combine_backprop's, with the chain's start
        // and the exponential's factorial.
        "tensor_series" => level_of + 13 * n + 2 * widest,
        "sig_join_backprop" => {
            let words: u64 = (1..=n)
                .map(|k| t.pow[k as usize].div_ceil(WG as u64) * (7 + 2 * k))
                .sum();
            6 * n + words + 2 * 8
        }
        other => unreachable!("no loop model for {other}"),
    }
}

/// Element counts of a call's buffers per row.
pub(in crate::gpu) fn per_row(what: &'static str, elems: usize) -> PerPath {
    PerPath {
        what,
        elems: elems as u64,
    }
}
