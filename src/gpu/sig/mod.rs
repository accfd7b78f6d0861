//! `sig` and `sig_backprop` on the GPU: the drivers of the signature kernels in `shaders/sig/`.
//!
//! Forward: `sig_chunks` computes the signature of every time chunk of every path (one invocation
//! per top-level word, its prefix chain in registers), then `sig_combine` joins the chunks with
//! Chen's identity in a tree, the last level writing the output rows.
//!
//! Backward: the chunk signatures again, their inclusive suffix products (a scan of `sig_combine`),
//! the gradient at each chunk's end (`sig_contract`: the derivatives contracted with the signature of
//! the rest of the path), the prefix products as checkpoints (a second scan), then `sig_backward`
//! sweeps every chunk back from its checkpoint in parallel, one workgroup per chunk, and `sig_grad`
//! turns the increments' gradients into the points'. The last chunk starts from the signature the
//! caller gave, as the CPU's sweep does.
//!
//! Each group of paths that fits the adapter's buffers is one upload, one submission and one
//! read-back; buffers come from the device's pool. `plan` says how a call is cut.

pub mod plan;
pub(in crate::gpu) mod rows;
pub mod wgsl;

use super::chunks::open;
use super::context::Context;
use super::program::{dst, set_last_report, submit, take, upload, Dispatch, GpuReport, Pooled};
use super::GpuDevice;
use crate::gpu::kernels::Precision;
use crate::layout::{PathsShape, TensorShape};
use crate::{Result, Scalar, SigOptions};
use plan::{Buf, CallShape, DeviceLimits, Pass, Plan};
use std::collections::HashMap;
use std::sync::Arc;

fn limits(ctx: &Context) -> DeviceLimits {
    DeviceLimits {
        max_binding: ctx.max_buffer_bytes(),
        loop_budget: ctx.loop_budget,
        workgroup_memory: ctx.limits.max_compute_workgroup_storage_size as u64,
    }
}

/// The plan of a call on `ctx`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_for(
    ctx: &Context,
    pass: Pass,
    shape: &TensorShape,
    ps: PathsShape,
    batch: usize,
    opts: &SigOptions,
    scalar_term: bool,
    precision: Precision,
) -> Result<Plan> {
    let call = CallShape {
        batch: batch as u64,
        length: ps.length as u64,
        dim: ps.dim as u64,
        degree: u32::try_from(shape.degree)
            .map_err(|_| crate::Error::Device("degree too large for the GPU".into()))?,
        lead_lag: opts.transform.lead_lag,
        time_aug: opts.transform.time_aug,
        scalar_term,
    };
    plan::plan(
        pass,
        call,
        precision,
        limits(ctx),
        super::chunks::max_chunk_paths() as u64,
    )
}

/// The pipeline of `kernel` for the plan's key, compiled on first use and cached by that key.
pub(in crate::gpu) fn pipeline(
    ctx: &Context,
    kernel: &'static wgsl::SigKernel,
    key: &wgsl::SigKey,
) -> Result<Arc<super::context::Pipeline>> {
    let name = format!("{}{key:?}", kernel.name);
    if let Some(p) = ctx
        .generated
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&name)
    {
        return Ok(p.clone());
    }
    let source = wgsl::source(kernel, key)
        .ok_or_else(|| crate::Error::Device("the signature is too large for the GPU".into()))?;
    let p = ctx.compile(kernel.name, source, kernel.bindings)?;
    ctx.generated
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name, p.clone());
    Ok(p)
}

/// The inputs of one submission: on the host (uploaded), or already on the device (`resident`, which
/// takes the place of the host data of the same role).
pub(crate) struct Inputs<'a, T> {
    pub paths: &'a [T],
    pub consts: &'a [T],
    pub sigs: &'a [T],
    pub derivs: &'a [T],
    pub resident: &'a [(Buf, &'a wgpu::Buffer)],
}

/// Upload the inputs of `n` paths, run the plan's dispatches and return the buffers by role (the
/// result in `Out` or `Grads`); if `read` is given, copy that buffer into its slice.
pub(crate) fn run<'a, T: Scalar>(
    ctx: &Arc<Context>,
    plan: &Plan,
    n: u64,
    inputs: Inputs<'a, T>,
    read: Option<(Buf, &mut [T])>,
    report: &mut GpuReport,
) -> Result<HashMap<Buf, Pooled>> {
    let size = plan.key.precision.size();
    let sig_len = plan.tables.sig_len();
    let rows = n * plan.n_chunks * sig_len;
    let st = plan.shape.scalar_term as u64;
    let units = n * plan.n_chunks;
    let elems = |b: Buf| -> u64 {
        match b {
            Buf::Paths | Buf::Grads => n * plan.shape.length * plan.shape.dim,
            Buf::Consts => plan.key.degree as u64 + 1,
            Buf::Chunks | Buf::A | Buf::B | Buf::Ends => rows,
            Buf::Out | Buf::Sigs | Buf::Derivs => n * (sig_len + st),
            Buf::Dz => n * plan.shape.increments() * plan.shape.aug_dim(),
            Buf::Scratch if plan.key.shared_state => 0,
            Buf::Scratch => units.min(plan.units_per_dispatch) * plan.tables.scratch(),
        }
    };
    let steps = plan.steps(n);
    let usage = super::chunks::STORAGE;
    let resident: HashMap<Buf, &wgpu::Buffer> = inputs.resident.iter().copied().collect();
    let mut bufs: HashMap<Buf, Pooled> = HashMap::new();
    let roles = steps
        .iter()
        .flat_map(|s| s.buffers.iter().copied())
        .chain(read.as_ref().map(|r| r.0));
    for b in roles {
        if !resident.contains_key(&b) && !bufs.contains_key(&b) {
            let buf = take(ctx, "signature engine", elems(b) * size, usage, report);
            bufs.insert(b, buf);
        }
    }
    let get = |b: &Buf| -> &wgpu::Buffer { resident.get(b).copied().unwrap_or_else(|| &bufs[b]) };
    for (b, data) in [
        (Buf::Paths, inputs.paths),
        (Buf::Consts, inputs.consts),
        (Buf::Sigs, inputs.sigs),
        (Buf::Derivs, inputs.derivs),
    ] {
        if let Some(buf) = bufs.get(&b) {
            upload(ctx, buf, bytemuck::cast_slice(data), report);
        }
    }
    let pipelines = steps
        .iter()
        .map(|s| pipeline(ctx, s.kernel, &plan.key))
        .collect::<Result<Vec<_>>>()?;
    let dispatches: Vec<Dispatch<'_>> = steps
        .iter()
        .zip(pipelines)
        .map(|(s, p)| Dispatch {
            label: s.kernel.name,
            pipeline: p,
            params: bytemuck::bytes_of(&s.params).to_vec(),
            buffers: s.buffers.iter().map(get).collect(),
            workgroups: s.workgroups,
            workgroup_size: s.workgroup_size,
        })
        .collect();
    let read = read.map(|(b, out)| (get(&b), dst(out)));
    submit(ctx, &dispatches, read, report)?;
    drop(dispatches);
    Ok(bufs)
}

/// `consts[0]`: the time channel's step; `consts[k] = 1/k` (as the CPU computes them).
pub(crate) fn consts<T: Scalar>(shape: &TensorShape, ps: PathsShape, opts: &SigOptions) -> Vec<T> {
    super::chunks::consts::<T>(shape, ps, opts)
}

/// Signatures of a batch into `out` (`batch` rows of `shape.len() + scalar_term`), as `cpu::sig`.
pub(crate) fn sig<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    opts: &SigOptions,
    out: &mut [T],
) -> Result<()> {
    let st = opts.scalar_term as usize;
    let out_row = shape.len() + st;
    if shape.is_empty() {
        out.iter_mut().for_each(|x| *x = T::one());
        return Ok(());
    }
    let batch = out.len() / out_row;
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    let plan = plan_for(
        &ctx,
        Pass::Forward,
        shape,
        ps,
        batch,
        opts,
        opts.scalar_term,
        precision,
    )?;
    let mut report = GpuReport::new("sig");
    let consts = consts::<T>(shape, ps, opts);
    let row_in = ps.length * ps.dim;
    let group = plan.group as usize;
    for (g, out_group) in out.chunks_mut(group * out_row).enumerate() {
        let n = out_group.len() / out_row;
        let first = g * group;
        let inputs = Inputs {
            paths: &paths[first * row_in..(first + n) * row_in],
            consts: &consts,
            sigs: &[],
            derivs: &[],
            resident: &[],
        };
        run(
            &ctx,
            &plan,
            n as u64,
            inputs,
            Some((Buf::Out, out_group)),
            &mut report,
        )?;
    }
    set_last_report(report);
    Ok(())
}

/// Signatures of `n` paths (rows of `shape.len()`, no scalar term) left on the GPU, for the kernels
/// that continue from them (the tensor logarithm). `n` must be at most the plan's group.
pub(crate) fn sig_on_device<T: Scalar>(
    ctx: &Arc<Context>,
    plan: &Plan,
    paths: &[T],
    consts: &[T],
    n: usize,
    report: &mut GpuReport,
) -> Result<Pooled> {
    let inputs = Inputs {
        paths,
        consts,
        sigs: &[],
        derivs: &[],
        resident: &[],
    };
    let mut bufs = run(ctx, plan, n as u64, inputs, None, report)?;
    Ok(bufs.remove(&Buf::Out).expect("the forward pass writes Out"))
}

/// Path gradients of a batch into `out` (laid out like `paths`), as `cpu::sig_backprop`: `sigs` and
/// `sig_derivs` have rows of `shape.len() + sig_st`; the scalar term's derivative is ignored.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sig_backprop<T: Scalar>(
    device: &GpuDevice,
    shape: &TensorShape,
    paths: &[T],
    ps: PathsShape,
    sigs: &[T],
    sig_derivs: &[T],
    sig_st: usize,
    opts: &SigOptions,
    out: &mut [T],
) -> Result<()> {
    let row_in = ps.length * ps.dim;
    if shape.is_empty() || row_in == 0 {
        out.iter_mut().for_each(|x| *x = T::zero());
        return Ok(());
    }
    let batch = out.len() / row_in;
    let precision = Precision::of::<T>();
    let ctx = open(device, precision)?;
    let plan = plan_for(
        &ctx,
        Pass::Backward,
        shape,
        ps,
        batch,
        opts,
        sig_st == 1,
        precision,
    )?;
    let mut report = GpuReport::new("sig_backprop");
    let consts = consts::<T>(shape, ps, opts);
    let row = shape.len() + sig_st;
    let group = plan.group as usize;
    for (g, out_group) in out.chunks_mut(group * row_in).enumerate() {
        let n = out_group.len() / row_in;
        let first = g * group;
        let inputs = Inputs {
            paths: &paths[first * row_in..(first + n) * row_in],
            consts: &consts,
            sigs: &sigs[first * row..(first + n) * row],
            derivs: &sig_derivs[first * row..(first + n) * row],
            resident: &[],
        };
        run(
            &ctx,
            &plan,
            n as u64,
            inputs,
            Some((Buf::Grads, out_group)),
            &mut report,
        )?;
    }
    set_last_report(report);
    Ok(())
}
