// sig_kernel_chain: dF/dG of each pair of a chunk (from sig_kernel_backward.wgsl) chained back to the
// pair's two transformed paths, on the device, as src/sig_kernel/static_kernel.rs does on the CPU:
//
//   bilinear κ(p, q) = c·<p, q>:  d/dΔx_a = c·Σ_b dG[a, b]·Δy_b,   d/dΔy_b = c·Σ_a dG[a, b]·Δx_a
//   point kernels (shaders/common/point_kernel.wgsl): point x_i gets Σ_j w_ij·∂κ(x_i, y_j)/∂x_i,
//   point y_j the same sum over i with ∂/∂y_j, where w_ij = dG[i−1, j−1] − dG[i−1, j] − dG[i, j−1]
//   + dG[i, j] (the cells that κ(x_i, y_j) enters; those outside the grid are left out).
//
// So only the gradients with respect to the transformed paths come back (O(length · channels) per
// pair, not the n1 × n2 of dF/dG); the host routes them to the original points. One dispatch per side
// (`side` 0: path a, 1: path b), one invocation per (pair, increment or point of that side).
// src/gpu/mirror/sig_kernel_chain.rs is this file in Rust, line by line.
//
// Precision: `scalar` is f32 as written; the host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.

alias scalar = f32;

// Params and params: shaders/common/pair_params.wgsl; bindings 1–4 (the sides, the pairs, the
// static kernel's constants): shaders/common/pairs.wgsl; both appended by the host.

// Per pair n1·n2 + 1 values: dF/dG (row-major), then the kernel.
@group(0) @binding(5) var<storage, read> dgram: array<scalar>;
// Per pair: the gradient of path a's row, then of path b's row, then the kernel.
@group(0) @binding(6) var<storage, read_write> grads: array<scalar>;

const WG: u32 = 64u;

// Values per row of a side of `n` increments.
fn row_len(n: u32) -> u32 {
    return (n + params.kind) * params.dim;
}

// dF/dG[a, b] of pair `pair`, 0 outside the grid (a or b out of range).
fn dg(pair: u32, a: i32, b: i32) -> scalar {
    if a < 0 || b < 0 || a >= i32(params.n1) || b >= i32(params.n2) {
        return scalar(0.0);
    }
    return dgram[pair * (params.n1 * params.n2 + 1u) + u32(a) * params.n2 + u32(b)];
}

// kernel_at(pa, i, pb, j) = (κ, h), the point kernel and its slope: shaders/common/point_kernel.wgsl
// (with exp_neg.wgsl), appended by the host.

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let d = params.dim;
    let ra = row_len(params.n1);
    let rb = row_len(params.n2);
    // Rows (increments or points) of the side this dispatch differentiates, and of the other.
    var mine = params.n1 + params.kind;
    var other = params.n2 + params.kind;
    if params.side == 1u {
        mine = params.n2 + params.kind;
        other = params.n1 + params.kind;
    }
    let item = (wid.y * groups.x + wid.x) * WG + lid;
    if item >= params.n_pairs * mine {
        return;
    }
    let pair = item / mine;
    let t = item % mine;
    let pa = pairs[2u * pair] * ra;
    let pb = pairs[2u * pair + 1u] * rb;
    var out = pair * (ra + rb + 1u) + t * d;
    if params.side == 1u {
        out = out + ra;
    }
    if params.side == 0u && t == 0u {
        grads[pair * (ra + rb + 1u) + ra + rb] = dgram[pair * (params.n1 * params.n2 + 1u) + params.n1 * params.n2];
    }
    let c0 = consts[0];
    for (var ch = 0u; ch < d; ch++) {
        grads[out + ch] = scalar(0.0);
    }
    if params.kind == 0u {
        for (var ch = 0u; ch < d; ch++) {
            var acc = scalar(0.0);
            for (var u = 0u; u < other; u++) {
                if params.side == 0u {
                    acc = acc + dg(pair, i32(t), i32(u)) * side_b[pb + u * d + ch];
                } else {
                    acc = acc + dg(pair, i32(u), i32(t)) * side_a[pa + u * d + ch];
                }
            }
            grads[out + ch] = c0 * acc;
        }
        return;
    }
    for (var u = 0u; u < other; u++) {
        // Point t of this side against point u of the other: (i, j) in path a's and b's indices.
        var i = t;
        var j = u;
        if params.side == 1u {
            i = u;
            j = t;
        }
        let ii = i32(i);
        let jj = i32(j);
        let w = ((dg(pair, ii - 1, jj - 1) - dg(pair, ii - 1, jj)) - dg(pair, ii, jj - 1)) + dg(pair, ii, jj);
        if w != scalar(0.0) {
            let h = w * kernel_at(pa, i, pb, j).y;
            for (var ch = 0u; ch < d; ch++) {
                let p = side_a[pa + i * d + ch];
                let q = side_b[pb + j * d + ch];
                // ∂κ/∂p = h·q and ∂κ/∂q = h·p (polynomial); ∂κ/∂p = −∂κ/∂q = h·(p − q) (radial).
                var g = h * (p - q);
                if params.point_kernel == 5u {
                    g = h * q;
                    if params.side == 1u {
                        g = h * p;
                    }
                } else if params.side == 1u {
                    g = -g;
                }
                grads[out + ch] = grads[out + ch] + g;
            }
        }
    }
}
