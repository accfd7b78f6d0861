//! # roughsig
//!
//! Path signatures — the iterated integrals of a path, truncated at a degree `N` — and their
//! gradients, with pySigLib 4.0's semantics, on the CPU (rayon) and on GPUs of any vendor (wgpu).
//!
//! A path is an array `(length, dim)`; a batch is `(batch…, length, dim)` with any number of leading
//! batch axes, which the outputs keep. Every function is generic over `f32` and `f64`.
//!
//! ```
//! use ndarray::array;
//! use roughsig::{sig, SigOptions};
//! let path = array![[0.0, 0.0], [1.0, 2.0]];
//! let s = sig(path.view(), 2, &SigOptions::default()).unwrap();
//! // A straight line's signature is exp(z): (z, z⊗z/2).
//! assert_eq!(s.as_slice().unwrap(), &[1.0, 2.0, 0.5, 1.0, 1.0, 2.0]);
//! ```
//!
//! The layers: the algebra (one sample, slices, no threads), the drivers (the CPU's batches and
//! threads; the GPU's WGSL kernels through wgpu; the device layer chooses), and the front end (these
//! functions). The `roughsig` command line is its own package, `roughsig-cli`.

// Without the GPU backend, what is computed only for it (sizes, checks, the GPU halves' inputs) goes
// unused.
#![cfg_attr(not(feature = "gpu"), allow(unused))]
#![deny(missing_docs)]

mod algebra;
mod api;
mod batch;
mod combine;
mod correction;
mod cpu;
mod device;
mod error;
#[cfg(feature = "gpu")]
pub mod gpu;
mod layout;
mod logsig;
mod options;
mod ragged;
mod scalar;
mod sig;
mod sig_coef;
mod sig_kernel;
mod stream;
mod transform;
mod words;

/// The CPU kernel choice, for tests and comparisons that run every variant: [`cpu_plan::force`]
/// fixes parts of every later call's plan, [`cpu_plan::last_plan`] says what a call ran with.
#[doc(hidden)]
pub mod cpu_plan {
    pub use crate::algebra::simd::Isa;
    pub use crate::algebra::StepLayout;
    pub use crate::cpu::plan::{available_isas, force, last_plan, Batch, Force, LeadLagStep, Plan};
}

pub use api::{
    expected_sig_score, expected_sig_score_backprop, linear_log_sig, linear_log_sig_backprop,
    linear_sig, linear_sig_backprop, log_sig, log_sig_backprop, log_sig_combine,
    log_sig_combine_backprop, log_sig_corrected, log_sig_join, log_sig_join_backprop,
    log_sig_to_sig, log_sig_to_sig_backprop, lyndon_to_words, sig, sig_backprop, sig_coef,
    sig_coef_backprop, sig_combine, sig_combine_backprop, sig_corrected, sig_corrected_backprop,
    sig_join, sig_join_backprop, sig_kernel, sig_kernel_backprop, sig_kernel_gram,
    sig_kernel_gram_backprop, sig_kernel_gram_sym, sig_mmd, sig_mmd_backprop, sig_score,
    sig_score_backprop, sig_to_log_sig, sig_to_log_sig_backprop, sig_windows, transform_path,
    transform_path_backprop,
};
pub use device::{last_backend, Backend};
pub use error::{Error, Result};
pub use layout::{sig_length, TensorShape, MAX_DEGREE};
pub use logsig::{log_sig_length, lyndon_word_index, lyndon_words, LogSigMethod};
/// The `ndarray` release roughsig's functions take and return: `roughsig::ndarray::Array3` and the
/// rest, so a dependent's arrays always have roughsig's `ndarray` version.
pub use ndarray;
pub use options::{
    max_threads, threads, Device, Execution, PathTransform, SigOptions, MIN_THREAD_CAP,
};
pub use ragged::{
    log_sig_backprop_ragged, log_sig_ragged, sig_backprop_ragged, sig_kernel_backprop_ragged,
    sig_kernel_gram_backprop_ragged, sig_kernel_gram_ragged, sig_kernel_ragged, sig_ragged,
    transform_path_backprop_ragged, transform_path_ragged,
};
pub use scalar::Scalar;
pub use sig_kernel::{
    CustomKernel, CustomStaticKernel, DyadicOrder, KernelSolver, SigKernelOptions, StaticKernel,
};
pub use stream::{LogSigStream, LogSigWindowStream, SigStream, SigWindowStream};
pub use words::{
    idx_to_word, is_lyndon, lyndon_words_of_length, word_to_idx, words, words_of_length,
};
