//! The CPU kernel choice as one value: the instruction set, the step layout, the lead-lag step and
//! the batch strategy a `sig` or `sig_backprop` call runs with, chosen by [`Plan::choose`] from the
//! call's shape, dtype, batch and threads and the machine's instruction set.
//!
//! Tests and comparisons [`force`] any of the first three in-process; the forced parts replace the
//! chosen ones wherever they can run (reversed words need a top level that `u32` indexes, the
//! compact lead-lag step a lead-lag path). [`last_plan`] says what the last CPU call on this thread
//! ran with. The batch strategy follows from the batch and threads alone: a test reaches each one
//! by its batch size.

use super::{lanes, split};
use crate::algebra::simd::{self, Isa};
use crate::algebra::{compact_lead_lag, force_compact_lead_lag, force_layout, StepLayout};
use crate::layout::{aug_dim, PathsShape, TensorShape};
use crate::{Scalar, SigOptions};
use std::cell::Cell;

/// How a lead-lag path's steps run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeadLagStep {
    /// Every channel, as any other path's steps.
    Dense,
    /// Only the half of the channels a lead-lag step moves (`mul_exp_lead_lag`).
    Compact,
}

/// How a batch is shared out over the threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Batch {
    /// Whole paths, one per thread at a time.
    Rows,
    /// Groups of this many paths stepped together in SIMD lanes.
    Lanes(usize),
    /// Each path cut in time into this many pieces, joined by Chen's identity.
    Split(usize),
}

/// What a CPU call runs with. `layout` and `lead_lag` govern the paths run one at a time (rows,
/// pieces of a split, a lane group's remainder).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Plan {
    /// The instruction set of the multi-versioned kernels.
    pub isa: Isa,
    /// How one path's steps store the signature.
    pub layout: StepLayout,
    /// How lead-lag steps run (`Dense` for every path without lead-lag).
    pub lead_lag: LeadLagStep,
    /// How the batch is shared out.
    pub batch: Batch,
}

impl Plan {
    /// The plan of a call on `batch` paths of shape `ps` (signatures of `shape`, transforms as in
    /// `opts`) with `threads` threads, forward or (`backward`) the reverse sweep.
    pub(crate) fn choose<T: Scalar>(
        shape: &TensorShape,
        ps: PathsShape,
        opts: &SigOptions,
        batch: usize,
        threads: usize,
        backward: bool,
    ) -> Plan {
        let pieces = split::pieces(batch, ps.increments(opts), threads, shape.len());
        let batch = if pieces > 1 {
            Batch::Split(pieces)
        } else {
            match lanes::lanes_for::<T>(shape, batch, backward) {
                Some(l) => Batch::Lanes(l),
                None => Batch::Rows,
            }
        };
        let d =
            aug_dim(ps.dim, opts.transform.time_aug, opts.transform.lead_lag).unwrap_or(shape.dim);
        let lead_lag = if opts.transform.lead_lag && compact_lead_lag::<T>(d) {
            LeadLagStep::Compact
        } else {
            LeadLagStep::Dense
        };
        Plan {
            isa: simd::isa(),
            layout: StepLayout::for_shape::<T>(shape),
            lead_lag,
            batch,
        }
    }
}

/// The parts of a plan [`force`] fixes; `None` leaves a part to the choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Force {
    /// At most this instruction set (never above what the machine has).
    pub isa: Option<Isa>,
    /// This step layout, wherever it can run.
    pub layout: Option<StepLayout>,
    /// This lead-lag step for lead-lag paths.
    pub lead_lag: Option<LeadLagStep>,
}

/// Fix the parts of every later call's plan that `force` names (`Force::default()` undoes it).
/// Process-wide: a test that forces plans runs in its own process, one plan at a time.
pub fn force(force: Force) {
    simd::cap_isa(force.isa);
    force_layout(force.layout);
    force_compact_lead_lag(force.lead_lag.map(|step| step == LeadLagStep::Compact));
}

/// The instruction sets this machine can run, lowest first.
pub fn available_isas() -> Vec<Isa> {
    [Isa::Baseline, Isa::Avx2Fma, Isa::Avx512]
        .into_iter()
        .filter(|&i| i <= simd::detected_isa())
        .collect()
}

thread_local! {
    static LAST: Cell<Option<Plan>> = const { Cell::new(None) };
}

/// The plan of the most recent CPU `sig` or `sig_backprop` on this thread.
pub fn last_plan() -> Option<Plan> {
    LAST.with(Cell::get)
}

/// Record the plan a call runs with, for [`last_plan`].
pub(super) fn record(plan: Plan) {
    LAST.with(|l| l.set(Some(plan)));
}
