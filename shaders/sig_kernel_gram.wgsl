// sig_kernel_gram: the base Gram matrix G of each pair of a chunk, on the device, from the pair's two
// transformed paths (src/sig_kernel/static_kernel.rs computes the same on the CPU):
//
//   bilinear kernel κ(p, q) = c·<p, q>:  G[a, b] = c·<Δx_a, Δy_b>                 (from increments)
//   point kernels (RBF, Matérn, rational quadratic, polynomial: shaders/common/point_kernel.wgsl):
//                                         G[a, b] = κ(x_{a+1}, y_{b+1}) − κ(x_{a+1}, y_b)
//                                                   − κ(x_a, y_{b+1}) + κ(x_a, y_b)      (from points)
//
// The host uploads each path once, already time-augmented and lead-lagged (its increments for a
// bilinear kernel, its points otherwise: O(length · channels) per path), and the pairs as index
// pairs, so a Gram matrix of n × m paths uploads n + m paths, not n·m matrices. One invocation per
// cell (pair, a, b): the largest dispatch of a signature-kernel call.
// src/gpu/mirror/sig_kernel_gram.rs is this file in Rust, line by line.
//
// Precision: `scalar` is f32 as written; the host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.

alias scalar = f32;

// Params, params and bindings 1–4 (the sides, the pairs, the static kernel's constant):
// shaders/common/pairs.wgsl, appended by the host.

// n_pairs Gram matrices, n1 × n2 each, row-major.
@group(0) @binding(5) var<storage, read_write> gram: array<scalar>;

const WG: u32 = 64u;

// kappa(pa, i, pb, j), the point kernel between point i of row pa of side a and point j of row pb of
// side b: shaders/common/point_kernel.wgsl (with exp_neg.wgsl), appended by the host.

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let cells = params.n1 * params.n2;
    let cell = (wid.y * groups.x + wid.x) * WG + lid;
    if cell >= params.n_pairs * cells {
        return;
    }
    let pair = cell / cells;
    let a = (cell % cells) / params.n2;
    let b = cell % params.n2;
    let d = params.dim;
    var g = scalar(0.0);
    if params.kind == 0u {
        let pa = pairs[2u * pair] * params.n1 * d;
        let pb = pairs[2u * pair + 1u] * params.n2 * d;
        for (var c = 0u; c < d; c++) {
            g = g + side_a[pa + a * d + c] * side_b[pb + b * d + c];
        }
        g = g * consts[0];
    } else {
        let pa = pairs[2u * pair] * (params.n1 + 1u) * d;
        let pb = pairs[2u * pair + 1u] * (params.n2 + 1u) * d;
        g = (kappa(pa, a + 1u, pb, b + 1u) - kappa(pa, a + 1u, pb, b))
            - (kappa(pa, a, pb, b + 1u) - kappa(pa, a, pb, b));
    }
    gram[cell] = g;
}
