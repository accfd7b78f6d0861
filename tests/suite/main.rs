//! The integration tests, one module per area, built as one test binary (one link of the library
//! instead of one per file). `cargo test --test suite <module>::` runs one area.

mod common;

mod correction;
mod errors;
mod fuzz;
mod golden;
#[cfg(feature = "gpu")]
mod gpu_combine;
#[cfg(feature = "gpu")]
mod gpu_consistency;
#[cfg(feature = "gpu")]
mod gpu_correction;
#[cfg(feature = "gpu")]
mod gpu_device;
#[cfg(feature = "gpu")]
mod gpu_log_sig_backprop;
#[cfg(feature = "gpu")]
mod gpu_log_sig_combine;
#[cfg(feature = "gpu")]
mod gpu_log_sig_to_sig;
#[cfg(feature = "gpu")]
mod gpu_plan;
#[cfg(feature = "gpu")]
mod gpu_shaders;
#[cfg(feature = "gpu")]
mod gpu_sig_coef;
#[cfg(feature = "gpu")]
mod gpu_sig_kernel;
mod log_sig_combine;
mod log_sig_to_sig;
mod logsig;
mod properties;
mod ragged;
mod ragged_kernel;
mod sig_coef;
mod sig_kernel;
mod sig_metrics;
mod stream;
