// sig_backward: the gradient of a scalar F with respect to each path of a chunk, given the path's
// signature S and dF/dS: the reverse sweep of sig_forward.
//
// Mirrors src/cpu/sig.rs (sig_backprop_path), src/algebra/horner.rs (mul_exp, mul_exp_backprop) and
// src/algebra/increments.rs (fill, scatter); src/gpu/mirror/sig_backward.rs is this file in Rust, line by
// line. Walking the increments backwards, the prefix signature before increment t is recovered as
// S ⊗ exp(-z) (no stored prefixes: O(sig_len) state per path whatever the length), the Horner step is
// reversed to split dF/d(S ⊗ exp(z)) into dF/dS and dF/dz, and dF/dz is scattered to the path's points
// (+ to the segment's end, - to its start; the time channel's share is dropped). The signature is used
// as given, not recomputed, as in pySigLib.
//
// Precision: `scalar` is f32 as written; the host replaces the `alias scalar = f32;` line for f64 (see
// src/gpu/kernels.rs), only on adapters with SHADER_F64.
//
// Layout: as sig_forward, one invocation per path (workgroups of 64), its state interleaved across the
// chunk's paths in `scratch` (slot s of path p at s·n_paths + p). Each invocation owns its gradient row,
// so the scatter needs no atomics.

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
    // 0 or 1: each row of sigs and sig_derivs starts with the level-0 term.
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
// exactly as the CPU does).
@group(0) @binding(2) var<storage, read> consts: array<scalar>;
// n_paths signatures, rows of scalar_term + sig_len (the scalar term, if any, is skipped).
@group(0) @binding(3) var<storage, read> sigs: array<scalar>;
// dF/dsigs, laid out like sigs (the scalar term's derivative is ignored).
@group(0) @binding(4) var<storage, read> sig_derivs: array<scalar>;
// n_paths gradients, laid out like paths.
@group(0) @binding(5) var<storage, read_write> grads: array<scalar>;
// Interleaved per-path state; see main for the slots.
@group(0) @binding(6) var<storage, read_write> scratch: array<scalar>;

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

// Number of increments of a path: segments of the transformed path.
fn increment_count() -> u32 {
    if params.length == 0u {
        return 0u;
    }
    if params.lead_lag == 1u {
        return 2u * (params.length - 1u);
    }
    return params.length - 1u;
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

// Add the gradient dz (slots [dz, dz + aug_dim)) of increment t to this path's row of grads.
fn scatter_increment(t: u32, dz: u32) {
    let d = params.dim;
    var seg = t;
    var start = 0u;
    if params.lead_lag == 1u {
        seg = t / 2u;
        if t % 2u == 0u {
            start = d;
        }
    }
    let a = (path * params.length + seg) * d;
    let b = a + d;
    for (var i = 0u; i < d; i++) {
        grads[b + i] += scratch[at(dz + start + i)];
        grads[a + i] -= scratch[at(dz + start + i)];
    }
}

// The reverse of mul_exp: with S_prev at slot s, z at slot z and the gradient g (slot g) with respect to
// S_prev ⊗ exp(z), turn g into the gradient with respect to S_prev and add the gradient with respect to
// z into slots [dz, dz + aug_dim). chain holds B_1 … B_{N-1} of one level (B_m at chain + level_offset(m)),
// work one level of d^(N-1). Levels bottom-up: level k's gradient flows only to levels below k.
fn mul_exp_backprop(s: u32, z: u32, g: u32, dz: u32, chain: u32, work: u32) {
    let d = params.aug_dim;
    let n = params.degree;
    if n == 0u {
        return;
    }
    // Level 1: S_1 += z.
    for (var j = 0u; j < d; j++) {
        scratch[at(dz + j)] += scratch[at(g + j)];
    }
    for (var k = 2u; k <= n; k++) {
        // Forward: the chain B_1 … B_{k-1} of this level, kept for the reverse pass.
        for (var i = 0u; i < d; i++) {
            scratch[at(chain + i)] = scratch[at(z + i)] * consts[k] + scratch[at(s + i)];
        }
        var len = d;
        for (var m = 1u; m < k - 1u; m++) {
            let c = consts[k - m];
            let bm = chain + level_offset(m);
            let rest = chain + level_offset(m + 1u);
            let next = s + level_offset(m + 1u);
            for (var i = 0u; i < len; i++) {
                let bi = scratch[at(bm + i)] * c;
                for (var j = 0u; j < d; j++) {
                    let w = i * d + j;
                    scratch[at(rest + w)] = bi * scratch[at(z + j)] + scratch[at(next + w)];
                }
            }
            len *= d;
        }
        // Reverse of S_k += B_{k-1} ⊗ z: work[i] = Σ_j g_k[i,j] z[j], dz[j] += Σ_i g_k[i,j] B_{k-1}[i].
        let gk = g + level_offset(k);
        let top = chain + level_offset(k - 1u);
        for (var i = 0u; i < len; i++) {
            let bi = scratch[at(top + i)];
            var acc = scalar(0.0);
            for (var j = 0u; j < d; j++) {
                let x = scratch[at(gk + i * d + j)];
                acc = x * scratch[at(z + j)] + acc;
                scratch[at(dz + j)] = x * bi + scratch[at(dz + j)];
            }
            scratch[at(work + i)] = acc;
        }
        // Reverse of each B_{m+1} = c_m·B_m ⊗ z + S_{m+1}, m = k-2 … 1. In place: row i of work is read
        // before slot i is written, and slot i precedes every row still to be read.
        for (var m = k - 2u; m >= 1u; m--) {
            len /= d;
            let gm1 = g + level_offset(m + 1u);
            for (var i = 0u; i < len * d; i++) {
                scratch[at(gm1 + i)] += scratch[at(work + i)];
            }
            let c = consts[k - m];
            let bm = chain + level_offset(m);
            for (var i = 0u; i < len; i++) {
                let bi = scratch[at(bm + i)] * c;
                var acc = scalar(0.0);
                for (var j = 0u; j < d; j++) {
                    let x = scratch[at(work + i * d + j)];
                    acc = x * scratch[at(z + j)] + acc;
                    scratch[at(dz + j)] = x * bi + scratch[at(dz + j)];
                }
                scratch[at(work + i)] = acc * c;
            }
        }
        for (var i = 0u; i < d; i++) {
            scratch[at(g + i)] += scratch[at(work + i)];
            scratch[at(dz + i)] += scratch[at(work + i)] * consts[k];
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    path = gid.x;
    if path >= params.n_paths {
        return;
    }
    let d = params.aug_dim;
    let sig_len = level_offset(params.degree + 1u);
    // Slots: S, its gradient G, z, -z, dz, the Horner chain (d + … + d^(N-1), at least 1) and one
    // scratch level of d^(N-1) (at least 1), shared by mul_exp (as B) and mul_exp_backprop (as work).
    let s = 0u;
    let g = s + sig_len;
    let z = g + sig_len;
    let neg_z = z + d;
    let dz = neg_z + d;
    let chain = dz + d;
    let work = chain + max(level_offset(params.degree), 1u);
    // The sweep's first dispatch (the last increments) starts from the signature and dF/dS. The
    // host zeroes grads before it.
    if params.t_end == increment_count() {
        let row = path * (params.scalar_term + sig_len) + params.scalar_term;
        for (var i = 0u; i < sig_len; i++) {
            scratch[at(s + i)] = sigs[row + i];
            scratch[at(g + i)] = sig_derivs[row + i];
        }
    }
    for (var t = params.t_end; t > params.t_begin; t--) {
        fill_increment(t - 1u, z);
        for (var i = 0u; i < d; i++) {
            scratch[at(neg_z + i)] = -scratch[at(z + i)];
            scratch[at(dz + i)] = scalar(0.0);
        }
        mul_exp(s, neg_z, work);
        mul_exp_backprop(s, z, g, dz, chain, work);
        scatter_increment(t - 1u, dz);
    }
}
