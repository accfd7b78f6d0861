// sig_forward: the truncated signature of each path of a chunk, S ← S ⊗ exp(z) over its increments.
//
// Mirrors src/algebra/horner.rs (mul_exp) and src/algebra/increments.rs (the increments, time
// augmentation and lead-lag generated on the fly); src/gpu/mirror/sig_forward.rs is this file in Rust,
// line by line, for stepping through on the CPU.
//
// Precision: `scalar` is f32 as written. The host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.
//
// Layout: one invocation per path, workgroups of 64 paths. Every invocation runs its path's whole
// Horner recursion serially, so no barriers and no atomics are needed and each output row has exactly
// one writer. The per-path working state (S, z, the Horner scratch) lives in `scratch`, interleaved
// across the paths of the chunk (slot s of path p at s·n_paths + p) so that neighbouring invocations
// touch neighbouring words. This is the simple, robust layout; a workgroup-per-path layout (threads
// across coefficients) would suit few long paths with large signatures better.

alias scalar = f32;

struct Params {
    // Paths in this chunk, one invocation each.
    n_paths: u32,
    // Points per path.
    length: u32,
    // Channels of the original path.
    dim: u32,
    // Channels of an increment: dim·(1 + lead_lag) + time_aug.
    aug_dim: u32,
    degree: u32,
    // 0 or 1.
    lead_lag: u32,
    // 0 or 1.
    time_aug: u32,
    // 0 or 1: each output row starts with the level-0 term 1.
    scalar_term: u32,
    // The increments [t_begin, t_end) this dispatch processes: a long path is swept in several
    // dispatches, its state kept in scratch between them, so that no invocation runs more loop
    // iterations than the adapter allows (lavapipe stops every loop after 65535 in all).
    t_begin: u32,
    t_end: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// n_paths paths of length·dim values, row-major.
@group(0) @binding(1) var<storage, read> paths: array<scalar>;
// consts[0] is the time channel's step, consts[k] = 1/k for k = 1..degree (computed on the host
// exactly as the CPU does, so that both divide the same way).
@group(0) @binding(2) var<storage, read> consts: array<scalar>;
// n_paths rows of scalar_term + sig_len.
@group(0) @binding(3) var<storage, read_write> sigs: array<scalar>;
// Interleaved per-path state: S at slots [0, sig_len), z next (aug_dim), then the Horner scratch.
@group(0) @binding(4) var<storage, read_write> scratch: array<scalar>;

// The path this invocation works on.
var<private> path: u32;

// Where slot `slot` of this invocation's state lives in `scratch`.
fn at(slot: u32) -> u32 {
    return slot * params.n_paths + path;
}

// Start of level k (1 <= k <= degree + 1) in a signature: d + d^2 + … + d^(k-1).
fn level_offset(k: u32) -> u32 {
    let d = params.aug_dim;
    var offset = 0u;
    var level = 1u;
    for (var j = 1u; j < k; j++) {
        level *= d;
        offset += level;
    }
    return offset;
}

// Write increment t into the slots [z, z + aug_dim). Lead-lag: an even step moves the lead channels
// (dim..2·dim) by Δx_{t/2}, an odd step the lag channels (0..dim) by Δx_{⌊t/2⌋}.
fn fill_increment(t: u32, z: u32) {
    let d = params.dim;
    var seg = t;
    var start = 0u;
    if params.lead_lag == 1u {
        seg = t / 2u;
        if t % 2u == 0u {
            start = d;
        }
        for (var i = 0u; i < 2u * d; i++) {
            scratch[at(z + i)] = scalar(0.0);
        }
    }
    let a = (path * params.length + seg) * d;
    let b = a + d;
    for (var i = 0u; i < d; i++) {
        scratch[at(z + start + i)] = paths[b + i] - paths[a + i];
    }
    if params.time_aug == 1u {
        scratch[at(z + params.aug_dim - 1u)] = consts[0];
    }
}

// S ← S ⊗ exp(z), S at slot s, z at slot z, one scratch level of d^(N-1) at slot b.
// For each level k (top first, so lower levels are still the old ones) the chain
// B_1 = z/k + S_1, B_{m+1} = B_m/(k-m) ⊗ z + S_{m+1} grows in place back to front, then
// S_k += B_{k-1} ⊗ z. Keep this function identical to the copy in sig_backward.wgsl (a test checks).
fn mul_exp(s: u32, z: u32, b: u32) {
    let d = params.aug_dim;
    let n = params.degree;
    if n == 0u {
        return;
    }
    for (var k = n; k >= 2u; k--) {
        for (var i = 0u; i < d; i++) {
            scratch[at(b + i)] = scratch[at(z + i)] * consts[k] + scratch[at(s + i)];
        }
        var len = d;
        for (var m = 1u; m < k - 1u; m++) {
            let c = consts[k - m];
            let next = s + level_offset(m + 1u);
            // Back to front: B_m[i] is read before slots i·d..i·d+d of B_{m+1} overwrite it.
            for (var i = len; i > 0u; i--) {
                let bi = scratch[at(b + i - 1u)] * c;
                for (var j = 0u; j < d; j++) {
                    let w = (i - 1u) * d + j;
                    scratch[at(b + w)] = bi * scratch[at(z + j)] + scratch[at(next + w)];
                }
            }
            len *= d;
        }
        let sk = s + level_offset(k);
        for (var i = 0u; i < len; i++) {
            let bi = scratch[at(b + i)];
            for (var j = 0u; j < d; j++) {
                let w = i * d + j;
                scratch[at(sk + w)] = bi * scratch[at(z + j)] + scratch[at(sk + w)];
            }
        }
    }
    for (var i = 0u; i < d; i++) {
        scratch[at(s + i)] += scratch[at(z + i)];
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    path = gid.x;
    if path >= params.n_paths {
        return;
    }
    let sig_len = level_offset(params.degree + 1u);
    let s = 0u;
    let z = sig_len;
    let b = z + params.aug_dim;
    if params.t_begin == 0u {
        for (var i = 0u; i < sig_len; i++) {
            scratch[at(s + i)] = scalar(0.0);
        }
    }
    for (var t = params.t_begin; t < params.t_end; t++) {
        fill_increment(t, z);
        mul_exp(s, z, b);
    }
    // Written after every dispatch; the last one's is the signature.
    let row = path * (params.scalar_term + sig_len);
    if params.scalar_term == 1u {
        sigs[row] = scalar(1.0);
    }
    for (var i = 0u; i < sig_len; i++) {
        sigs[row + params.scalar_term + i] = scratch[at(s + i)];
    }
}
