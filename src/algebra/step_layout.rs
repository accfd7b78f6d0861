//! How one path's steps store the signature while they run ([`StepLayout`]), and how many steps
//! each layout fuses into one pass over the top level: the choice the horner (rows) and reversed
//! (words reversed) steps both depend on, kept below both.

use super::simd::{isa, Isa};
use crate::layout::TensorShape;
use crate::Scalar;
use std::sync::atomic::{AtomicU8, Ordering};

/// Steps [`super::mul_exp_fused`] takes at once: eight, so that each row of the top level is loaded
/// and stored once per eight multiply-adds; the top level lives in L2 at the shapes where this
/// pays, and its traffic is what the fusing saves (measured: docs/PERFORMANCE.md, *CPU kernel choices*).
pub const FUSED_STEPS: usize = 8;

/// How many steps share one pass over the top level in reversed words: four, not the
/// [`FUSED_STEPS`] of the row layout (eight were slower) (measured: docs/PERFORMANCE.md, *CPU kernel choices*).
pub const REVERSED_STEPS: usize = 4;

/// How one path's steps store the signature while they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepLayout {
    /// Words in order, rows of `d` (`mul_exp_fused` and `mul_exp`).
    Rows,
    /// Words reversed (`mul_exp_reversed`, then `reversed_to_rows`).
    Reversed,
}

impl StepLayout {
    /// The faster layout for the shape's dimension `d` (measured: docs/PERFORMANCE.md, *CPU kernel choices*). Reversed words where no row
    /// kernel is specialised (d = 9, 12), in f64 at d = 2, 5, 6, 7, where rows are part-vectors, and
    /// in f32 at d = 2 for degrees 8 and up. Rows where they are whole vectors (d = 8, 16, f64
    /// d = 4), at d = 3, and in f32 at d = 5–7, where a block of `d^m` often ends part-way through a
    /// vector of eight. f32 d = 4 goes by rows where the 512-bit block kernels run and the top level
    /// fits the L1 cache (16 KiB or less), reversed otherwise.
    /// ([`super::reversed_to_rows`] indexes the top level with `u32`, so a larger one stays by rows.)
    pub fn for_shape<T: Scalar>(shape: &TensorShape) -> Self {
        let d = shape.dim;
        let indexable = shape.level_len(shape.degree) <= u32::MAX as usize;
        let reversed = indexable
            && match d {
                1 => false,
                2..=8 | 16 if isa().vector() => match std::mem::size_of::<T>() {
                    8 => matches!(d, 2 | 5 | 6 | 7),
                    size => {
                        let top_bytes = shape.level_len(shape.degree).saturating_mul(size);
                        let rows_in_l1 = isa() == Isa::Avx512 && top_bytes <= 16 * 1024;
                        d == 2 || (d == 4 && !rows_in_l1)
                    }
                },
                2..=8 | 16 => false,
                _ => true,
            };
        match FORCED.load(Ordering::Relaxed) {
            1 => StepLayout::Rows,
            2 if indexable => StepLayout::Reversed,
            _ if reversed => StepLayout::Reversed,
            _ => StepLayout::Rows,
        }
    }
}

/// The layout [`force_layout`] set: 0 none, 1 rows, 2 reversed.
static FORCED: AtomicU8 = AtomicU8::new(0);

/// Make every later path take `layout` wherever it can (reversed words need a top level that
/// `u32` indexes); `None` goes back to the choice by shape. Process-wide: for comparisons and for
/// tests that run each layout in turn.
pub fn force_layout(layout: Option<StepLayout>) {
    let code = match layout {
        None => 0,
        Some(StepLayout::Rows) => 1,
        Some(StepLayout::Reversed) => 2,
    };
    FORCED.store(code, Ordering::Relaxed);
}

impl StepLayout {
    /// How many steps share one pass over the top level: [`FUSED_STEPS`] by rows,
    /// [`REVERSED_STEPS`] in reversed words.
    pub fn fused_steps(self) -> usize {
        match self {
            StepLayout::Rows => FUSED_STEPS,
            StepLayout::Reversed => REVERSED_STEPS,
        }
    }
}
