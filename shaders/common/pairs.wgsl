// The inputs of the kernels over pairs of transformed paths, uploaded once per call, and the base
// Gram matrix's cells computed from them. Appended to sig_kernel_gram.wgsl, sig_kernel_chain.wgsl and
// sig_kernel_forward.wgsl (see `Kernel::helpers` in src/gpu/kernels.rs); each declares `params` with
// the fields read here (n1, n2, dim, kind and, through point_kernel.wgsl, point_kernel).

// The paths of each side, one row each: n·dim increments (bilinear) or (n + 1)·dim points.
@group(0) @binding(1) var<storage, read> side_a: array<scalar>;
@group(0) @binding(2) var<storage, read> side_b: array<scalar>;
// Per pair of the chunk: the path of side a, then the path of side b.
@group(0) @binding(3) var<storage, read> pairs: array<u32>;
@group(0) @binding(4) var<storage, read> consts: array<scalar>;

// G[a, b] of pair `pair`, the second mixed difference of the static kernel over cell (a, b):
//
//   bilinear kernel κ(p, q) = c·<p, q>:  G[a, b] = c·<Δx_a, Δy_b>                 (from increments)
//   point kernels (RBF, Matérn, rational quadratic, polynomial: point_kernel.wgsl):
//                                         G[a, b] = κ(x_{a+1}, y_{b+1}) − κ(x_{a+1}, y_b)
//                                                   − κ(x_a, y_{b+1}) + κ(x_a, y_b)      (from points)
//
// in the order src/sig_kernel/static_kernel.rs computes it on the CPU.
fn base_gram(pair: u32, a: u32, b: u32) -> scalar {
    if params.kind == 0u {
        return bilinear_gram(pair, a, b);
    }
    let p = point_rows(pair);
    return (kappa(p.x, a + 1u, p.y, b + 1u) - kappa(p.x, a + 1u, p.y, b))
        - (kappa(p.x, a, p.y, b + 1u) - kappa(p.x, a, p.y, b));
}

// G[a, b] of a bilinear kernel: c·<Δx_a, Δy_b>.
fn bilinear_gram(pair: u32, a: u32, b: u32) -> scalar {
    let d = params.dim;
    let pa = pairs[2u * pair] * params.n1 * d;
    let pb = pairs[2u * pair + 1u] * params.n2 * d;
    var g = scalar(0.0);
    for (var c = 0u; c < d; c++) {
        g = g + side_a[pa + a * d + c] * side_b[pb + b * d + c];
    }
    return g * consts[0];
}

// Where pair `pair`'s two paths start in side_a and side_b, as rows of points (`kappa`'s pa, pb).
fn point_rows(pair: u32) -> vec2<u32> {
    let d = params.dim;
    return vec2<u32>(pairs[2u * pair] * (params.n1 + 1u) * d, pairs[2u * pair + 1u] * (params.n2 + 1u) * d);
}
