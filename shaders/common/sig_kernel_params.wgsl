// The uniform block of sig_kernel_forward.wgsl and sig_kernel_backward.wgsl (`SigKernelParams` in
// src/gpu/kernels.rs is this struct), appended to both. Fields a kernel does not read are noted.

struct Params {
    // Pairs in this chunk.
    n_pairs: u32,
    // Increments of the two (transformed) paths: G is n1 × n2.
    n1: u32,
    n2: u32,
    // Dyadic orders λ1, λ2.
    lam1: u32,
    lam2: u32,
    // Points of the refined grid: rows = (n1 << λ1) + 1, cols = (n2 << λ2) + 1.
    rows: u32,
    cols: u32,
    // The sweeps: the band's anti-diagonals [d_begin, d_end) (t = r − b0 + c) of this dispatch;
    // the backward kernel's reduction: its base cells.
    d_begin: u32,
    d_end: u32,
    // The backward kernel only: which of its passes this dispatch runs; the rows [r0, r1] of the
    // grid that `grid` holds (0 and rows − 1 when it holds them all); every `step` rows, K's row is
    // kept as a checkpoint (0: none, the grid is held whole); 1 where `seeds` holds dF/dK at every
    // point, 0 for dF/dk per pair.
    phase: u32,
    r0: u32,
    r1: u32,
    step: u32,
    seeded: u32,
    // The forward kernel only, as shaders/common/pairs.wgsl reads them: channels of the transformed
    // paths, 0 bilinear or 1 a point kernel, and which point kernel.
    dim: u32,
    kind: u32,
    point_kernel: u32,
    // The sweeps: pairs per workgroup, 1 or (a grid of one band, rows ≤ WG / pack) a power of two.
    pack: u32,
    // The sweeps: the band of rows [b0, b1] this dispatch sweeps (b1 − b0 < WG / pack).
    b0: u32,
    b1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
