// sig_kernel_gram: the base Gram matrix G of each pair of a chunk, on the device, from the pair's two
// transformed paths: one invocation per cell (pair, a, b), `base_gram` of shaders/common/pairs.wgsl
// (the largest dispatch of a signature-kernel call whose sweep reads G from memory).
//
// The host uploads each path once, already time-augmented and lead-lagged (its increments for a
// bilinear kernel, its points otherwise: O(length · channels) per path), and the pairs as index
// pairs, so a Gram matrix of n × m paths uploads n + m paths, not n·m matrices.
// src/gpu/mirror/sig_kernel_gram.rs is this file in Rust, line by line.
//
// Precision: `scalar` is f32 as written; the host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.

alias scalar = f32;

// Params and params: shaders/common/pair_params.wgsl; bindings 1–4 (the sides, the pairs, the
// static kernel's constants) and `base_gram`: shaders/common/pairs.wgsl; both appended by the host.

// n_pairs Gram matrices, n1 × n2 each, row-major.
@group(0) @binding(5) var<storage, read_write> gram: array<scalar>;

const WG: u32 = 64u;

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
    gram[cell] = base_gram(pair, a, b);
}
