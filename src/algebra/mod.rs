//! Primitives on one sample: slices in, slices out, no threads, no devices, no allocation.
//!
//! Every tensor here holds levels `1..=degree` of a truncated series (see [`crate::layout`]); level 0 is
//! always the constant 1 and is never stored.

mod aligned;
#[cfg(target_arch = "x86_64")]
mod contract512;
mod horner;
mod increments;
mod lanes;
mod lanes_fused;
mod lead_lag;
mod log;
mod reversed;
pub mod simd;
mod step_layout;
mod tensor;
pub(crate) mod vector;

pub use aligned::AlignedVec;
pub use horner::{mul_exp, mul_exp_backprop, mul_exp_fused, HornerScratch};
pub use increments::{fill_lanes, Increments};
pub use lanes::{lane_count, mul_exp_backprop_lanes, mul_exp_lanes, LaneScratch};
pub use lead_lag::{
    compact_lead_lag, force_compact_lead_lag, lead_lag_fused, mul_exp_lead_lag,
    mul_exp_lead_lag_backprop, mul_exp_lead_lag_fused, LeadLagScratch, Support, FUSED_PAIRS,
};
pub use log::{tensor_exp, tensor_exp_backprop, tensor_log, tensor_log_backprop, SeriesScratch};
pub use reversed::{mul_exp_reversed, to_rows as reversed_to_rows};
pub use step_layout::{force_layout, StepLayout, FUSED_STEPS, REVERSED_STEPS};
pub use tensor::{exp, exp_backprop, sig_inverse, tensor_mul, tensor_mul_backprop};

use crate::Scalar;

/// `1/1, 1/2, …, 1/n` (index `k` holds `1/k`; index 0 is unused), so that steps never divide.
pub(crate) fn reciprocals<T: Scalar>(n: usize) -> Vec<T> {
    (0..=n)
        .map(|k| {
            if k == 0 {
                T::one()
            } else {
                T::one() / T::from_f64(k as f64)
            }
        })
        .collect()
}
