//! The integration tests, one module per area, built as one test binary (one link of the library
//! instead of one per file). `cargo test --test suite <module>::` runs one area.

mod common;

mod cli;
mod cli_logsig;
mod cli_sig_kernel;
mod errors;
mod fuzz;
mod golden;
mod gpu_combine;
mod gpu_consistency;
mod gpu_device;
mod gpu_log_sig_backprop;
mod gpu_plan;
mod gpu_shaders;
mod gpu_sig_kernel;
mod logsig;
mod properties;
mod sig_kernel;
