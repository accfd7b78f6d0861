// e^x for x ≤ 0 in `scalar` precision (WGSL's exp has no f64 form): x = k·ln2 + r with |r| ≤ ln2/2
// (ln2 in two parts, so r is exact to the last bits), e^r by its Taylor series to r^13 (the
// remainder is below 2^−56 there), then 2^k. Appended to the kernels that evaluate the RBF kernel
// (see `Kernel::helpers` in src/gpu/kernels.rs); src/gpu/mirror/mod.rs mirrors it.
fn exp_neg(x: scalar) -> scalar {
    if x < scalar(-740.0) {
        return scalar(0.0);
    }
    let k = floor(x * scalar(1.4426950408889634) + scalar(0.5));
    let r = (x - k * scalar(0.693145751953125)) - k * scalar(1.4286068203094173e-6);
    var p = scalar(1.0);
    for (var i = 13u; i >= 1u; i--) {
        p = scalar(1.0) + r * p / scalar(i);
    }
    return ldexp(p, i32(k));
}
