// The point kernels κ(p, q) between point i of path row `pa` of side a and point j of row `pb` of
// side b (src/sig_kernel/static_kernel.rs, `Point`, computes the same on the CPU). params.point_kernel
// picks one and consts[0..4] hold its constants, as `Point::gpu_constants` writes them:
//
//   0  RBF                 exp(−r²·c0)                         c0 = 1/σ
//   1  Matérn 1/2          exp(−r·c0)                          c0 = 1/σ
//   2  Matérn 3/2          (1 + u)·exp(−u),        u = c0·r    c0 = √3/σ
//   3  Matérn 5/2          (1 + u + u²/3)·exp(−u), u = c0·r    c0 = √5/σ
//   4  rational quadratic  (1 + r²·c0)^−c1                     c0 = 1/(2ασ²), c1 = α
//   5  polynomial          c2·(<p, q> + c1)^c0, a negative base counted as 0 where c3 = 1
//
// `kernel_at` returns (κ, h): ∂κ/∂p = h·(p − q) and ∂κ/∂q = −h·(p − q) for the radial kernels (0–4),
// ∂κ/∂p = h·q and ∂κ/∂q = h·p for the polynomial one. Appended, with pairs.wgsl and exp_neg.wgsl,
// to every kernel that appends pairs.wgsl; src/gpu/mirror/mod.rs mirrors it.
//
// WGSL has exp, log and pow for f32 only, so powers are exp(y·ln b) from exp_neg and ln_pos below,
// the same in both precisions.

// ln x for x > 0: x = m·2^e with m in about [0.7, 1.42] (the exponent from f32's log2, repeated so
// that f64 values beyond f32's range are brought into it), then ln m = 2·atanh(s), s = (m − 1)/(m + 1),
// |s| ≤ 0.172, by its series to s^23 (the remainder is below 2^−56), and e·ln2 in two parts.
fn ln_pos(x: scalar) -> scalar {
    var m = x;
    var e = scalar(0.0);
    for (var i = 0u; i < 9u; i++) {
        let k = floor(log2(clamp(f32(m), 1e-30, 1e30)) + 0.5);
        m = ldexp(m, -i32(k));
        e = e + scalar(k);
    }
    let s = (m - scalar(1.0)) / (m + scalar(1.0));
    let s2 = s * s;
    var p = scalar(1.0) / scalar(23.0);
    for (var j = 11u; j >= 1u; j--) {
        p = scalar(1.0) / scalar(2u * j - 1u) + s2 * p;
    }
    return (e * scalar(0.693145751953125) + scalar(2.0) * s * p) + e * scalar(1.4286068203094173e-6);
}

// e^x for any x (exp_neg for x ≤ 0, its reciprocal above).
fn exp_any(x: scalar) -> scalar {
    if x <= scalar(0.0) {
        return exp_neg(x);
    }
    return scalar(1.0) / exp_neg(-x);
}

// b^y for b > 0, or any b where y is an integer (the sign from y's parity); 0^y = 0 for y ≠ 0.
fn power(b: scalar, y: scalar) -> scalar {
    if y == scalar(0.0) {
        return scalar(1.0);
    }
    if b == scalar(0.0) {
        return scalar(0.0);
    }
    let v = exp_any(y * ln_pos(abs(b)));
    if b < scalar(0.0) && y - scalar(2.0) * floor(y * scalar(0.5)) == scalar(1.0) {
        return -v;
    }
    return v;
}

fn kernel_at(pa: u32, i: u32, pb: u32, j: u32) -> vec2<scalar> {
    let d = params.dim;
    let c0 = consts[0];
    if params.point_kernel == 5u {
        var base = consts[1];
        for (var c = 0u; c < d; c++) {
            base = base + side_a[pa + i * d + c] * side_b[pb + j * d + c];
        }
        if c0 == scalar(0.0) {
            return vec2<scalar>(consts[2], scalar(0.0));
        }
        if consts[3] != scalar(0.0) && base <= scalar(0.0) {
            return vec2<scalar>(scalar(0.0), scalar(0.0));
        }
        let below = power(base, c0 - scalar(1.0));
        return vec2<scalar>(consts[2] * below * base, consts[2] * c0 * below);
    }
    var r2 = scalar(0.0);
    for (var c = 0u; c < d; c++) {
        let diff = side_a[pa + i * d + c] - side_b[pb + j * d + c];
        r2 = r2 + diff * diff;
    }
    switch params.point_kernel {
        case 0u: {
            let k = exp_neg(-r2 * c0);
            return vec2<scalar>(k, scalar(-2.0) * c0 * k);
        }
        case 1u: {
            // At r = 0 the kernel has a kink; its gradient there is taken as 0.
            let r = sqrt(r2);
            let k = exp_neg(-r * c0);
            var h = scalar(0.0);
            if r > scalar(0.0) {
                h = -c0 * k / r;
            }
            return vec2<scalar>(k, h);
        }
        case 2u: {
            let u = c0 * sqrt(r2);
            let e = exp_neg(-u);
            return vec2<scalar>((scalar(1.0) + u) * e, -c0 * c0 * e);
        }
        case 3u: {
            let u = c0 * sqrt(r2);
            let e = exp_neg(-u);
            let k = (scalar(1.0) + u + u * u / scalar(3.0)) * e;
            return vec2<scalar>(k, -c0 * c0 / scalar(3.0) * (scalar(1.0) + u) * e);
        }
        default: {
            let b = scalar(1.0) + r2 * c0;
            let k = exp_any(-consts[1] * ln_pos(b));
            return vec2<scalar>(k, scalar(-2.0) * consts[1] * c0 * k / b);
        }
    }
}

// κ alone.
fn kappa(pa: u32, i: u32, pb: u32, j: u32) -> scalar {
    return kernel_at(pa, i, pb, j).x;
}
