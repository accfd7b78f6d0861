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

/// `shaders/common/exp_neg.wgsl`: `e^x` for `x ≤ 0` (`scalar` is `f64`).
fn exp_neg(x: f64) -> f64 {
    if x < -740.0 {
        return 0.0;
    }
    let k = (x * std::f64::consts::LOG2_E + 0.5).floor();
    let r = (x - k * 0.693145751953125) - k * 1.4286068203094173e-6;
    let mut p: f64 = 1.0;
    let mut i = 13u32;
    while i >= 1 {
        p = 1.0 + r * p / i as f64;
        i -= 1;
    }
    // ldexp(p, k), in two halves so that neither power leaves f64's range.
    let k = k as i32;
    p * 2f64.powi(k / 2) * 2f64.powi(k - k / 2)
}

#[cfg(test)]
mod tests {
    /// The mirror's `exp_neg` against `f64::exp` down to f64's smallest normal numbers.
    #[test]
    fn exp_neg_matches_exp() {
        for i in 0..=1910 {
            let x = -(i as f64) * 0.37;
            let (got, want) = (super::exp_neg(x), x.exp());
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want,
                "{x}: {got} vs {want}"
            );
        }
    }
}
