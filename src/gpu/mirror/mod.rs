//! Plain-Rust mirrors of the shaders, line by line: the same slots, loops and index arithmetic as the
//! WGSL, one invocation at a time, so that a failing GPU test can be stepped through on the CPU. Tests
//! only; each mirror is checked against the CPU drivers in its own tests.

// The mirrors keep the shaders' spelling (`a = x * b + a`, `t % 2 == 0`, `(n + WG - 1) / WG`) so
// they read line for line.
#![allow(
    clippy::assign_op_pattern,
    clippy::manual_is_multiple_of,
    clippy::manual_div_ceil
)]

pub(crate) mod sig_kernel_backward;
pub(crate) mod sig_kernel_chain;
pub(crate) mod sig_kernel_forward;
pub(crate) mod sig_kernel_gram;
pub(crate) mod tensor_log;
