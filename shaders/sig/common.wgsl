// Shared by every signature kernel (prepended after the generated constants, see src/gpu/sig/wgsl.rs).
//
// The generated prelude defines, for one (dimension, degree, dtype, flags) key:
//   scalar          f32 or f64
//   D               channels of an increment (after lead-lag and time augmentation)
//   N               the degree (at least 1)
//   DIM             channels of the original path
//   LEAD_LAG        bool; TIME_AUG bool
//   WG              invocations per workgroup
//   SIG_LEN = OFF[N + 1], LOW = OFF[N] (the levels below the top), TOP = D^N
//   OFF[k]          start of level k (k = 1 ..= N + 1), OFF[0] = 0
//   POW[k]          D^k (k = 0 ..= N)
// Word (i1..ik) of level k sits at OFF[k] + i1·D^(k-1) + … + ik.

// The uniform block of every signature kernel (src/gpu/sig/plan.rs: `SigParams`).
struct Params {
    // Paths in this dispatch group.
    n_paths: u32,
    // Points per path.
    length: u32,
    // Increments per path, after lead-lag.
    increments: u32,
    // Time chunks per path: the row stride of every per-chunk buffer.
    n_chunks: u32,
    // Increments per time chunk (the last chunk may hold fewer).
    chunk_steps: u32,
    // sig_combine: rows currently held per path.
    count: u32,
    // sig_combine: the scan's offset.
    offset: u32,
    // sig_combine: 0 tree (pairs), 1 inclusive prefix scan, 2 inclusive suffix scan, 3 tree, last level.
    mode: u32,
    // Rows of the given signatures and their derivatives: stride and leading scalar term (0 or 1).
    g_stride: u32,
    g_st: u32,
    // sig_backward: the units (path, chunk) of this dispatch begin here.
    unit_begin: u32,
    // sig_combine's last level: output rows start with the scalar term 1.
    out_st: u32,
    // Invocations (or, for sig_backward, workgroups) that have work in this dispatch.
    total: u32,
    // tensor_series: 0 the logarithm, 1 the exponential.
    series: u32,
    pad1: u32,
    pad2: u32,
}

// The linear index of this invocation in a dispatch of (x, y) workgroups.
fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// The level of flat index i (levels only: 0 <= i < SIG_LEN).
fn level_of(i: u32) -> u32 {
    // Bounded by N, so an index past the end cannot spin (shaders are compiled without loop guards).
    var k = 1u;
    for (; k < N && i >= OFF[k + 1u]; k++) {}
    return k;
}
