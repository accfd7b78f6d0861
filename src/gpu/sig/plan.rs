//! How a `sig` or `sig_backprop` call is cut for the GPU: time chunks per path, paths per submission,
//! and the dispatch sequence. Pure arithmetic on the adapter's limits, so the parallelism of any shape
//! can be checked without a GPU (the tests do) and the driver runs exactly what is planned here.
//!
//! Parallelism: `sig_chunks` runs one invocation per (path, chunk, top-level word) and
//! `sig_backward` one workgroup per (path, chunk). The chunk count is chosen so that the main dispatch
//! has about [`TARGET_FORWARD`] (or [`TARGET_BACKWARD`]) invocations whatever the batch: a single
//! long path is cut into many chunks, a large batch of short paths into few. A chunk is never shorter
//! than [`MIN_STEPS`] increments ([`MIN_STEPS_BACKWARD`] backward: the joins would cost more than
//! they save) nor longer than the adapter allows in one invocation ([`MAX_STEPS`], and lavapipe's
//! loop budget).

use super::wgsl::{SigKey, Tables};
use crate::gpu::kernels::Precision;
use crate::{Error, Result};

/// Invocations the forward pass aims for: about one per resident thread of a large GPU.
pub const TARGET_FORWARD: u64 = 1 << 18;
/// Invocations the reverse sweep aims for: more, since its steps wait on barriers.
pub const TARGET_BACKWARD: u64 = 1 << 20;
/// The fewest increments a chunk holds (unless the path has fewer).
pub const MIN_STEPS: u64 = 8;
/// The same for the reverse sweep, whose chunks are also joined by two scans: longer chunks keep the
/// scans' `C·log2(C)` Chen products well below the sweep's own work.
pub const MIN_STEPS_BACKWARD: u64 = 32;
/// The most increments a chunk holds: keeps every dispatch short (display watchdogs end long ones).
pub const MAX_STEPS: u64 = 4096;

/// The largest reverse-sweep state kept in workgroup memory, bytes (also wgpu's portable limit).
pub const SHARED_STATE_MAX: u64 = 16 << 10;

/// The adapter limits a plan must respect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceLimits {
    /// The largest buffer a kernel may bind, in bytes.
    pub max_binding: u64,
    /// Loop iterations one invocation may run (lavapipe stops loops silently past its limit).
    pub loop_budget: u64,
    /// Workgroup memory, bytes.
    pub workgroup_memory: u64,
}

impl DeviceLimits {
    /// A large discrete GPU (H200-class limits as its Vulkan driver reports them), for planning
    /// without a device.
    pub const LARGE_GPU: DeviceLimits = DeviceLimits {
        max_binding: (1 << 32) - 4,
        loop_budget: 1 << 24,
        workgroup_memory: 48 << 10,
    };
}

/// The pass a plan is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Forward,
    Backward,
}

/// The shape of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallShape {
    pub batch: u64,
    /// Points per path.
    pub length: u64,
    /// Channels of the original path.
    pub dim: u64,
    pub degree: u32,
    pub lead_lag: bool,
    pub time_aug: bool,
    /// Rows of the given signatures carry the scalar term (backward), or the output does (forward).
    pub scalar_term: bool,
}

impl CallShape {
    pub fn increments(&self) -> u64 {
        self.length.saturating_sub(1) * (1 + self.lead_lag as u64)
    }
    pub fn aug_dim(&self) -> u64 {
        self.dim * (1 + self.lead_lag as u64) + self.time_aug as u64
    }
}

/// What the driver runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub pass: Pass,
    pub key: SigKey,
    pub tables: Tables,
    pub shape: CallShape,
    /// Time chunks per path and increments per chunk.
    pub n_chunks: u64,
    pub chunk_steps: u64,
    /// Paths per submission (every buffer of a submission fits the adapter's largest binding).
    pub group: u64,
    /// `sig_backward` units (path, chunk) per dispatch (its scratch fits one binding).
    pub units_per_dispatch: u64,
}

/// Workgroup size of `sig_backward`: enough invocations for the coefficients of a level, at most 256.
pub fn backward_wg(sig_len: u64) -> u32 {
    match sig_len {
        0..=64 => 32,
        65..=512 => 64,
        513..=4096 => 128,
        _ => 256,
    }
}

/// Workgroup size of every other signature kernel.
pub const WG: u32 = super::wgsl::DEFAULT_WG;

/// A loop of `trips` trips whose body costs `body`, as lavapipe counts iterations (entering a loop
/// costs about six, measured).
fn lp(trips: u64, body: u64) -> u64 {
    6 + trips.saturating_mul(1 + body)
}

/// Loop iterations of one `sig_chunks` invocation: (fixed, per increment).
fn chunks_cost(n: u64) -> (u64, u64) {
    (4 * lp(n, 1), lp(n, 2) + lp(n, lp(n, 1)))
}

/// Loop iterations of one `sig_backward` invocation: (fixed, per increment).
fn backward_cost(t: &Tables, d: u64, n: u64, wg: u64) -> (u64, u64) {
    let per = |items: u64| items.div_ceil(wg);
    let level = lp(n, 0);
    let gp = (wg / d.max(1)).max(1);
    let nl = wg / gp;
    let mut step = lp(per(d), 0) + lp(per(t.low()), level + lp(n, 1));
    for s in 1..n {
        step += lp(per(t.off[(n - s + 1) as usize]), level + lp(d, 1));
    }
    step += lp(per(t.elen()), 2 * level + lp(n, 1));
    step += lp(d.div_ceil(nl), lp(t.elen().div_ceil(gp), level + 2)) + lp(gp, 1);
    step += lp(per(t.low()), level + lp(n, 1));
    let fixed = lp(n, 1) + lp(per(t.low()), 1) + lp(per(t.sig_len()), 1);
    (fixed, step)
}

/// Loop iterations of one `sig_combine` invocation.
fn combine_cost(n: u64) -> u64 {
    2 * lp(n, 1)
}

/// Loop iterations of one `sig_contract` invocation (a level-1 coefficient sums over every longer
/// word).
fn contract_cost(t: &Tables, n: u64) -> u64 {
    let widest = (1..=n).map(|m| t.pow[m as usize]).sum::<u64>();
    2 * lp(n, 0) + lp(n, 6) + 2 * widest
}

fn refuse(what: &str, needed: u64, budget: u64) -> Error {
    Error::Device(format!(
        "this adapter runs at most {budget} loop iterations per invocation; {what} needs {needed}; \
         use the CPU"
    ))
}

/// Plan a call. `precision` sizes the buffers; `max_group` caps the paths per submission (tests).
pub fn plan(
    pass: Pass,
    shape: CallShape,
    precision: Precision,
    limits: DeviceLimits,
    max_group: u64,
) -> Result<Plan> {
    let d = shape.aug_dim();
    let n = shape.degree as u64;
    let too_large = || Error::Device("the signature is too large for the GPU's u32 indices".into());
    let d32 = u32::try_from(d).map_err(|_| too_large())?;
    let tables = Tables::new(d32, shape.degree).ok_or_else(too_large)?;
    let sig_len = tables.sig_len();
    let wg = match pass {
        Pass::Forward => WG,
        Pass::Backward => backward_wg(sig_len),
    };
    let size = precision.size();
    // The reverse sweep's state in workgroup memory where it is small and fits beside `zw` and
    // `red`: each of its stages then waits on a workgroup barrier, not on global memory. A larger
    // state leaves too few workgroups resident per multiprocessor (measured slower on an H200).
    let state = tables.scratch().saturating_mul(size);
    let shared_state = pass == Pass::Backward
        && state <= SHARED_STATE_MAX
        && state.saturating_add((d + wg as u64) * size) <= limits.workgroup_memory;
    let key = SigKey {
        d: d32,
        degree: shape.degree,
        dim: u32::try_from(shape.dim).map_err(|_| too_large())?,
        lead_lag: shape.lead_lag,
        time_aug: shape.time_aug,
        precision,
        wg,
        shared_state,
    };
    if pass == Pass::Backward && (d + wg as u64) * size > limits.workgroup_memory {
        return Err(Error::Device(format!(
            "dimension {d} needs more workgroup memory than the adapter has; use the CPU"
        )));
    }

    // The longest chunk the loop budget allows.
    let budget = limits.loop_budget;
    let mut max_steps = MAX_STEPS;
    let mut limit_by = |what: &str, (fixed, step): (u64, u64)| -> Result<()> {
        if fixed + step > budget {
            return Err(refuse(what, fixed + step, budget));
        }
        max_steps = max_steps.min((budget - fixed) / step.max(1));
        Ok(())
    };
    limit_by("one step of the signature", chunks_cost(n))?;
    if pass == Pass::Backward {
        limit_by(
            "one step of the reverse sweep",
            backward_cost(&tables, d, n, wg as u64),
        )?;
    }
    let joins = combine_cost(n);
    if joins > budget {
        return Err(refuse("joining two chunks", joins, budget));
    }
    // Where the contraction at the chunks' ends exceeds the budget (huge signatures on lavapipe),
    // the path is swept as one chunk, whose end gradient is the derivatives themselves.
    let one_chunk = pass == Pass::Backward && contract_cost(&tables, n) > budget;

    // Chunks: enough invocations for the target, within [MIN_STEPS, max_steps] increments each.
    let inc = shape.increments();
    let (per_unit, target, min_steps) = match pass {
        Pass::Forward => (tables.top(), TARGET_FORWARD, MIN_STEPS),
        Pass::Backward => (wg as u64, TARGET_BACKWARD, MIN_STEPS_BACKWARD),
    };
    // At least two chunks wherever both can be full: no invocation walks a whole path.
    let want_chunks = target
        .div_ceil(shape.batch.max(1).saturating_mul(per_unit).max(1))
        .max(2);
    let mut steps = inc
        .div_ceil(want_chunks.max(1))
        .max(min_steps.min(inc))
        .clamp(1, max_steps.max(1));
    if one_chunk {
        if inc > max_steps {
            return Err(refuse(
                "the reverse sweep of this signature",
                contract_cost(&tables, n),
                budget,
            ));
        }
        steps = inc.max(1);
    }

    // Paths per submission: every buffer within the largest binding (and u32 indices).
    let max_bytes = limits.max_binding.min(u32::MAX as u64);
    loop {
        let n_chunks = inc.div_ceil(steps).max(1);
        let rows = n_chunks * sig_len;
        let path = shape.length * shape.dim;
        let mut per_path = vec![path, rows, rows];
        match pass {
            Pass::Forward => per_path.push(sig_len + shape.scalar_term as u64),
            Pass::Backward => {
                let given = sig_len + shape.scalar_term as u64;
                per_path.extend([given, rows, inc * d]);
            }
        }
        let biggest = per_path
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .saturating_mul(size);
        let unit_scratch = if shared_state {
            0
        } else {
            tables.scratch().saturating_mul(size)
        };
        let fits = biggest > 0 && biggest <= max_bytes && unit_scratch <= max_bytes;
        if fits {
            let group = (max_bytes / biggest)
                .min(max_group.max(1))
                .min(shape.batch.max(1));
            let units_per_dispatch = if shared_state {
                u64::from(u32::MAX)
            } else {
                (max_bytes / unit_scratch).max(1)
            };
            return Ok(Plan {
                pass,
                key,
                tables,
                shape,
                n_chunks,
                chunk_steps: steps,
                group,
                units_per_dispatch,
            });
        }
        if biggest > 0 && steps < max_steps && n_chunks > 1 {
            // Fewer, longer chunks need less memory per path.
            steps = (steps * 2).min(max_steps);
            continue;
        }
        return Err(Error::Device(format!(
            "one path needs {biggest} bytes in one GPU buffer, more than the adapter's largest \
             ({max_bytes} bytes); use the CPU"
        )));
    }
}

/// A buffer of a call, by its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buf {
    Paths,
    Consts,
    /// The chunk signatures.
    Chunks,
    /// Ping-pong rows of the tree and the scans.
    A,
    B,
    Out,
    Sigs,
    Derivs,
    Ends,
    Dz,
    Grads,
    Scratch,
}

/// The uniform block of every signature kernel (`struct Params` of `shaders/sig/common.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SigParams {
    pub n_paths: u32,
    pub length: u32,
    pub increments: u32,
    pub n_chunks: u32,
    pub chunk_steps: u32,
    pub count: u32,
    pub offset: u32,
    pub mode: u32,
    pub g_stride: u32,
    pub g_st: u32,
    pub unit_begin: u32,
    pub out_st: u32,
    pub total: u32,
    /// `tensor_series`: which series (`SERIES_LOG`, `SERIES_EXP`).
    pub series: u32,
    pub pad: [u32; 2],
}

/// One planned dispatch.
#[derive(Clone, Debug)]
pub struct Step {
    pub kernel: &'static super::wgsl::SigKernel,
    pub params: SigParams,
    pub buffers: Vec<Buf>,
    pub workgroups: u64,
    pub workgroup_size: u32,
}

impl Step {
    pub fn invocations(&self) -> u64 {
        self.workgroups * self.workgroup_size as u64
    }
}

const COMBINE_TREE: u32 = 0;
const COMBINE_PREFIX: u32 = 1;
const COMBINE_SUFFIX: u32 = 2;
/// `sig_combine`'s last level: one output row per path.
pub(crate) const COMBINE_ROOT: u32 = 3;

impl Plan {
    fn base(&self, n_paths: u64) -> SigParams {
        SigParams {
            n_paths: n_paths as u32,
            length: self.shape.length as u32,
            increments: self.shape.increments() as u32,
            n_chunks: self.n_chunks as u32,
            chunk_steps: self.chunk_steps as u32,
            g_stride: (self.tables.sig_len() + self.shape.scalar_term as u64) as u32,
            g_st: self.shape.scalar_term as u32,
            out_st: self.shape.scalar_term as u32,
            ..Default::default()
        }
    }

    fn per_item(
        &self,
        kernel: &'static super::wgsl::SigKernel,
        p: SigParams,
        items: u64,
        bufs: Vec<Buf>,
    ) -> Step {
        Step {
            kernel,
            params: SigParams {
                total: items as u32,
                ..p
            },
            buffers: bufs,
            workgroups: items.div_ceil(WG as u64).max(1),
            workgroup_size: WG,
        }
    }

    /// Chen products of the chunk rows: a tree (forward, ending in `Out`) or an inclusive scan
    /// (prefix or suffix, ending in the returned buffer).
    fn combine(&self, n_paths: u64, mode: u32, steps: &mut Vec<Step>) -> Buf {
        let sig_len = self.tables.sig_len();
        let base = self.base(n_paths);
        let (mut src, mut dst) = (Buf::Chunks, Buf::A);
        let swap = |src: &mut Buf, dst: &mut Buf| {
            *src = *dst;
            *dst = if *dst == Buf::A { Buf::B } else { Buf::A };
        };
        match mode {
            COMBINE_TREE => {
                let mut count = self.n_chunks;
                while count > 2 {
                    let rows = count.div_ceil(2);
                    let p = SigParams {
                        count: count as u32,
                        mode: COMBINE_TREE,
                        ..base
                    };
                    let items = n_paths * rows * sig_len;
                    steps.push(self.per_item(
                        &super::wgsl::SIG_COMBINE,
                        p,
                        items,
                        vec![src, dst, Buf::Out],
                    ));
                    swap(&mut src, &mut dst);
                    count = rows;
                }
                let p = SigParams {
                    count: count as u32,
                    mode: COMBINE_ROOT,
                    ..base
                };
                steps.push(self.per_item(
                    &super::wgsl::SIG_COMBINE,
                    p,
                    n_paths * sig_len,
                    vec![src, dst, Buf::Out],
                ));
                Buf::Out
            }
            _ => {
                let mut offset = 1;
                while offset < self.n_chunks {
                    let p = SigParams {
                        count: self.n_chunks as u32,
                        offset: offset as u32,
                        mode,
                        ..base
                    };
                    let items = n_paths * self.n_chunks * sig_len;
                    // `out` is unused by the scans; any third buffer will do.
                    steps.push(self.per_item(
                        &super::wgsl::SIG_COMBINE,
                        p,
                        items,
                        vec![src, dst, Buf::Ends],
                    ));
                    swap(&mut src, &mut dst);
                    offset *= 2;
                }
                src
            }
        }
    }

    /// The dispatches of one submission of `n_paths` paths, in order.
    pub fn steps(&self, n_paths: u64) -> Vec<Step> {
        let mut steps = Vec::new();
        let base = self.base(n_paths);
        let sig_len = self.tables.sig_len();
        let units = n_paths * self.n_chunks;
        steps.push(self.per_item(
            &super::wgsl::SIG_CHUNKS,
            base,
            units * self.tables.top(),
            vec![Buf::Paths, Buf::Consts, Buf::Chunks],
        ));
        if self.pass == Pass::Forward {
            self.combine(n_paths, COMBINE_TREE, &mut steps);
            return steps;
        }
        let suffix = self.combine(n_paths, COMBINE_SUFFIX, &mut steps);
        steps.push(self.per_item(
            &super::wgsl::SIG_CONTRACT,
            base,
            units * sig_len,
            vec![Buf::Derivs, suffix, Buf::Ends],
        ));
        let prefix = self.combine(n_paths, COMBINE_PREFIX, &mut steps);
        let mut begin = 0;
        while begin < units {
            let count = self.units_per_dispatch.min(units - begin);
            steps.push(Step {
                kernel: &super::wgsl::SIG_BACKWARD,
                params: SigParams {
                    unit_begin: begin as u32,
                    total: count as u32,
                    ..base
                },
                buffers: vec![
                    Buf::Paths,
                    Buf::Consts,
                    prefix,
                    Buf::Sigs,
                    Buf::Ends,
                    Buf::Dz,
                    Buf::Scratch,
                ],
                workgroups: count,
                workgroup_size: self.key.wg,
            });
            begin += count;
        }
        steps.push(self.per_item(
            &super::wgsl::SIG_GRAD,
            base,
            n_paths * self.shape.length * self.shape.dim,
            vec![Buf::Dz, Buf::Grads],
        ));
        steps
    }
}
