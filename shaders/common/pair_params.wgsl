// The uniform block of sig_kernel_gram.wgsl and sig_kernel_chain.wgsl (`GramParams` in
// src/gpu/kernels.rs is this struct), appended to both with pairs.wgsl.

struct Params {
    // Pairs in this chunk.
    n_pairs: u32,
    // Increments of the two transformed paths: G (and dF/dG) is n1 × n2 per pair.
    n1: u32,
    n2: u32,
    // Channels of the transformed paths.
    dim: u32,
    // 0: bilinear (rows of increments, consts[0] = c); 1: a point kernel (rows of points).
    kind: u32,
    // sig_kernel_chain.wgsl: the side a dispatch differentiates (0 path a, 1 path b).
    side: u32,
    // Where kind is 1: which point kernel (shaders/common/point_kernel.wgsl), consts[0..4] its
    // constants.
    point_kernel: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
