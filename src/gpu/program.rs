//! Running a sequence of dispatches as one submission, with pooled buffers and a report of what the
//! call did on the GPU.
//!
//! A call records every dispatch of its work into one command encoder (each dispatch reads its own
//! slot of one uniform buffer), submits once, and reads back only what the caller asks for. Buffers
//! come from a per-device pool keyed by size and usage, so a repeated call of the same shape creates
//! none. Where the adapter has `TIMESTAMP_QUERY`, the kernel time of the whole sequence is measured.

use super::context::{Context, Pipeline};
use crate::Result;
use std::cell::RefCell;
use std::sync::Arc;

/// What the most recent GPU call on this thread did on the device (see [`last_gpu_report`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuReport {
    /// The operation, e.g. `"sig"` or `"sig_backprop"`.
    pub op: String,
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Queue submissions (one per group of paths that fits the adapter's buffers; usually one).
    pub submissions: u64,
    /// Invocations of the largest dispatch.
    pub max_invocations: u64,
    /// Invocations of the smallest dispatch.
    pub min_invocations: u64,
    /// Workgroups launched, over all dispatches.
    pub workgroups: u64,
    /// Bytes written to the device.
    pub bytes_uploaded: u64,
    /// Bytes read back from the device.
    pub bytes_downloaded: u64,
    /// Buffers created by this call (0 when the pool held every buffer it needed).
    pub buffers_created: u64,
    /// Time the GPU spent between the first dispatch's start and the last one's end, summed over
    /// submissions; `None` where the adapter has no timestamp queries.
    pub kernel_ms: Option<f64>,
    /// Where that time went: per kernel (shader) in the order first dispatched, its dispatches and
    /// the time between each one's start and end, summed. Empty where the adapter has no timestamp
    /// queries; a submission of more dispatches than one query set times (2 048) adds nothing.
    pub kernels: Vec<KernelTime>,
    /// Host time spent handing the inputs to the driver (which copies them towards the device).
    pub upload_ms: f64,
    /// Host time from each submission until the GPU had finished it, read-back copy included.
    pub wait_ms: f64,
    /// Host time spent copying the read-back data into the caller's memory.
    pub download_ms: f64,
}

/// One kernel's share of a call's GPU time ([`GpuReport::kernels`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KernelTime {
    /// The kernel's name (its shader's, e.g. `"sig_kernel_forward"`).
    pub name: String,
    /// Its dispatches in the call.
    pub dispatches: u64,
    /// Their time on the GPU, start to end of each, summed.
    pub ms: f64,
}

impl GpuReport {
    /// Add `ms` of one dispatch of kernel `name` to [`GpuReport::kernels`].
    fn add_kernel_time(&mut self, name: &str, ms: f64) {
        match self.kernels.iter_mut().find(|k| k.name == name) {
            Some(k) => {
                k.dispatches += 1;
                k.ms += ms;
            }
            None => self.kernels.push(KernelTime {
                name: name.to_string(),
                dispatches: 1,
                ms,
            }),
        }
    }

    pub(crate) fn new(op: &str) -> GpuReport {
        GpuReport {
            op: op.to_string(),
            ..Default::default()
        }
    }
}

thread_local! {
    static LAST: RefCell<Option<GpuReport>> = const { RefCell::new(None) };
}

/// The report of the most recent GPU submission sequence on this thread (`sig`, `sig_backprop`,
/// `log_sig`, and each kernel solve of `sig_kernel`, its backprop and the Gram matrices), or `None`
/// before the first.
pub fn last_gpu_report() -> Option<GpuReport> {
    LAST.with(|l| l.borrow().clone())
}

pub(crate) fn set_last_report(report: GpuReport) {
    LAST.with(|l| *l.borrow_mut() = Some(report));
}

/// A buffer taken from the device's pool; returned to it when dropped.
pub(crate) struct Pooled {
    buffer: Option<wgpu::Buffer>,
    ctx: Arc<Context>,
}

impl std::ops::Deref for Pooled {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        self.buffer
            .as_ref()
            .expect("a pooled buffer is present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            let key = (b.size(), b.usage().bits());
            let mut pool = self.ctx.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.entry(key).or_default().push(b);
        }
    }
}

/// A buffer of at least `bytes` bytes from the pool of `ctx`, created (and counted in `report`) only
/// when the pool has none of that size and usage.
pub(crate) fn take(
    ctx: &Arc<Context>,
    label: &str,
    bytes: u64,
    usage: wgpu::BufferUsages,
    report: &mut GpuReport,
) -> Pooled {
    let size = bytes.max(16).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
    let reused = ctx
        .pool
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(&(size, usage.bits()))
        .and_then(Vec::pop);
    let buffer = reused.unwrap_or_else(|| {
        report.buffers_created += 1;
        ctx.buffer(label, size, usage)
    });
    Pooled {
        buffer: Some(buffer),
        ctx: ctx.clone(),
    }
}

/// Uploads from this size on go through a staging buffer of the pool: the driver's own staging
/// memory is allocated afresh for every write, which costs more than the copy for large inputs.
const POOLED_UPLOAD: u64 = 1 << 20;

/// Write `bytes` into `buffer` (counted as uploaded).
pub(crate) fn upload(
    ctx: &Arc<Context>,
    buffer: &wgpu::Buffer,
    bytes: &[u8],
    report: &mut GpuReport,
) {
    upload_with(
        ctx,
        buffer,
        bytes.len() as u64,
        |mut dst| dst.copy_from_slice(bytes),
        report,
    );
}

/// Write the first `bytes` bytes of `buffer` (counted as uploaded), letting `fill` write them in
/// place in the staging memory (no copy of the input on the host first).
pub(crate) fn upload_with(
    ctx: &Arc<Context>,
    buffer: &wgpu::Buffer,
    bytes: u64,
    fill: impl FnOnce(wgpu::WriteOnly<'_, [u8]>),
    report: &mut GpuReport,
) {
    if bytes == 0 {
        return;
    }
    let start = std::time::Instant::now();
    let unwritten = if bytes >= POOLED_UPLOAD {
        let usage = wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC;
        let staging = take(ctx, "upload staging", bytes, usage, report);
        ctx.write_staged(&staging, buffer, bytes, fill)
    } else {
        Some(fill)
    };
    if let Some(fill) = unwritten {
        ctx.write_with(buffer, bytes, fill);
    }
    report.bytes_uploaded += bytes;
    report.upload_ms += start.elapsed().as_secs_f64() * 1e3;
}

/// `out` as the bytes a read-back copies into.
pub(crate) fn dst<T: bytemuck::Pod>(out: &mut [T]) -> &mut [u8] {
    bytemuck::cast_slice_mut(out)
}

/// One dispatch of a sequence.
pub(crate) struct Dispatch<'a> {
    pub label: &'static str,
    pub pipeline: Arc<Pipeline>,
    /// The uniform block's bytes.
    pub params: Vec<u8>,
    /// Buffers for bindings 1.. in order (binding 0 is the uniform).
    pub buffers: Vec<&'a wgpu::Buffer>,
    pub workgroups: u64,
    pub workgroup_size: u32,
}

/// `n` workgroups as an (x, y) grid within the adapter's per-dimension limit.
fn grid(ctx: &Context, label: &str, n: u64) -> Result<(u32, u32)> {
    let max = ctx.limits.max_compute_workgroups_per_dimension.max(1) as u64;
    let x = n.clamp(1, max);
    let y = n.div_ceil(x).max(1);
    if y > max {
        return Err(ctx.device_error(label, format!("{n} workgroups exceed the adapter's grid")));
    }
    Ok((x as u32, y as u32))
}

/// Record `dispatches` in order into one submission, then, if `read` is given, copy the first
/// `read.1.len()` bytes of its buffer into `read.1`. The report counts every dispatch, the submission,
/// the bytes read back and, where measured, the kernel time.
pub(crate) fn submit(
    ctx: &Arc<Context>,
    dispatches: &[Dispatch<'_>],
    read: Option<(&wgpu::Buffer, &mut [u8])>,
    report: &mut GpuReport,
) -> Result<()> {
    let mut reads: Vec<_> = read.into_iter().collect();
    submit_reading(ctx, dispatches, &mut reads, report)
}

/// [`submit`], copying the first `dst.len()` bytes of each `(buffer, dst)` of `reads` into `dst`
/// (through one staging buffer, after the last dispatch, straight from the mapped memory).
pub(crate) fn submit_reading(
    ctx: &Arc<Context>,
    dispatches: &[Dispatch<'_>],
    reads: &mut [(&wgpu::Buffer, &mut [u8])],
    report: &mut GpuReport,
) -> Result<()> {
    let stride = 256u64.max(ctx.limits.min_uniform_buffer_offset_alignment as u64);
    let param_size = dispatches
        .iter()
        .map(|d| d.params.len())
        .max()
        .unwrap_or(16) as u64;
    ctx.scoped("running the signature kernels", || {
        let uniform = take(
            ctx,
            "params",
            stride * dispatches.len().max(1) as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            report,
        );
        let mut slots = Vec::with_capacity((stride as usize) * dispatches.len());
        for d in dispatches {
            slots.extend_from_slice(&d.params);
            slots.resize(slots.len().next_multiple_of(stride as usize), 0);
        }
        ctx.write(&uniform, &slots);
        // Timestamps at the start and end of every dispatch (its own compute pass) where one query
        // set holds them all, else at the first's start and the last's end only.
        let per_pass = 2 * dispatches.len() <= wgpu::QUERY_SET_MAX_QUERIES as usize;
        let stamp_count = if per_pass { 2 * dispatches.len() } else { 2 };
        let queries = (ctx.timestamps && !dispatches.is_empty()).then(|| {
            let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("roughsig kernel time"),
                ty: wgpu::QueryType::Timestamp,
                count: stamp_count as u32,
            });
            let resolve = take(
                ctx,
                "timestamps",
                8 * stamp_count as u64,
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                report,
            );
            (set, resolve)
        });
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("roughsig"),
            });
        let last = dispatches.len().saturating_sub(1);
        for (i, d) in dispatches.iter().enumerate() {
            let (x, y) = grid(ctx, d.label, d.workgroups)?;
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &uniform,
                    offset: i as u64 * stride,
                    size: wgpu::BufferSize::new(param_size),
                }),
            }];
            entries.extend(
                d.buffers
                    .iter()
                    .enumerate()
                    .map(|(j, b)| wgpu::BindGroupEntry {
                        binding: j as u32 + 1,
                        resource: b.as_entire_binding(),
                    }),
            );
            let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(d.label),
                layout: &d.pipeline.layout,
                entries: &entries,
            });
            let timestamp_writes = queries.as_ref().and_then(|(set, _)| {
                if per_pass {
                    return Some(wgpu::ComputePassTimestampWrites {
                        query_set: set,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    });
                }
                (i == 0 || i == last).then_some(wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: (i == 0).then_some(0),
                    end_of_pass_write_index: (i == last).then_some(1),
                })
            });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(d.label),
                timestamp_writes,
            });
            pass.set_pipeline(&d.pipeline.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(x, y, 1);
            drop(pass);
            let invocations = d.workgroups * d.workgroup_size as u64;
            report.dispatches += 1;
            report.workgroups += d.workgroups;
            report.max_invocations = report.max_invocations.max(invocations);
            report.min_invocations = if report.min_invocations == 0 {
                invocations
            } else {
                report.min_invocations.min(invocations)
            };
        }
        // Each read at an aligned offset of one staging buffer, the timestamps after them.
        let mut offsets = Vec::with_capacity(reads.len());
        let mut bytes = 0u64;
        for (_, dst) in reads.iter() {
            offsets.push(bytes);
            bytes += (dst.len() as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        }
        let stamps_at = bytes;
        if queries.is_some() {
            bytes += 8 * stamp_count as u64;
        }
        report.submissions += 1;
        if bytes == 0 {
            ctx.queue.submit([encoder.finish()]);
            return Ok(());
        }
        let staging = take(
            ctx,
            "staging",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            report,
        );
        for ((buf, dst), &at) in reads.iter().zip(&offsets) {
            let n = (dst.len() as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
            if n > 0 {
                encoder.copy_buffer_to_buffer(buf, 0, &staging, at, n);
            }
        }
        if let Some((set, resolve)) = &queries {
            encoder.resolve_query_set(set, 0..stamp_count as u32, resolve, 0);
            encoder.copy_buffer_to_buffer(resolve, 0, &staging, stamps_at, 8 * stamp_count as u64);
        }
        let mut stamps = vec![0u64; stamp_count];
        let (waited, read) = ctx.finish(encoder, &staging, bytes, |mapped| {
            for ((_, dst), &at) in reads.iter_mut().zip(&offsets) {
                let at = at as usize;
                dst.copy_from_slice(&mapped[at..at + dst.len()]);
            }
            if queries.is_some() {
                let at = stamps_at as usize;
                bytemuck::cast_slice_mut::<u64, u8>(&mut stamps)
                    .copy_from_slice(&mapped[at..at + 8 * stamp_count]);
            }
        })?;
        report.bytes_downloaded += stamps_at;
        report.wait_ms += waited * 1e3;
        report.download_ms += read * 1e3;
        if queries.is_some() {
            let ms = |begin: u64, end: u64| {
                end.saturating_sub(begin) as f64 * ctx.queue.get_timestamp_period() as f64 / 1e6
            };
            *report.kernel_ms.get_or_insert(0.0) += ms(stamps[0], stamps[stamp_count - 1]);
            if per_pass {
                for (d, pair) in dispatches.iter().zip(stamps.chunks_exact(2)) {
                    report.add_kernel_time(d.label, ms(pair[0], pair[1]));
                }
            }
        }
        Ok(())
    })
}
