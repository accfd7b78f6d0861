// tensor_log: the tensor logarithm of each signature of a chunk, log(1 + x) by Horner's nesting.
//
// Mirrors src/algebra/log.rs (fill_chain and mul_series); src/gpu/mirror/tensor_log.rs is this file
// in Rust, line by line. It runs right after sig_forward in the same submission and reads the
// signature rows that dispatch wrote (without their scalar term), so signatures never leave the GPU.
//
// Precision: `scalar` is f32 as written; the host substitutes the `alias scalar = f32;` line for f64.
//
// The partial results P_t = c_{t+1} + x ⊗ P_{t+1} (levels 1..N-t, t = N-1 … 1) and the logarithm
// P_0 = x ⊗ (c_1 + P_1) form a chain in `scratch`, P_{N-1} first and P_0 last, interleaved across the
// paths of the chunk like sig_forward's state. The work is cut into units, in this order: for each t
// from N-1 down to 0, each level k of P_t (1..=N-t) and each term j of that level (j = 0: c·x_k,
// j >= 1: x_j ⊗ level k-j of P_{t+1}); one last unit writes the output row (the whole logarithm,
// or its entries at the Lyndon words of `words`). A dispatch runs the units [t_begin, t_end), so that
// no invocation exceeds the adapter's loop budget (lavapipe stops every loop after 65535 in all).
//
// Layout: one invocation per path, workgroups of 64 paths; each output row has exactly one writer.

alias scalar = f32;

struct Params {
    // Paths in this chunk, one invocation each.
    n_paths: u32,
    // Entries per output row when reading at Lyndon words (the length of `words`); 0: the expanded
    // logarithm.
    length: u32,
    // Unused here (sig_forward's path channels).
    dim: u32,
    // The alphabet: channels of the transformed path.
    aug_dim: u32,
    degree: u32,
    // Unused here.
    lead_lag: u32,
    // Unused here.
    time_aug: u32,
    // 0 or 1: each expanded output row starts with the level-0 term 0.
    scalar_term: u32,
    // The units [t_begin, t_end) this dispatch runs.
    t_begin: u32,
    t_end: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// n_paths signature rows of sig_len (no scalar term), as sig_forward wrote them.
@group(0) @binding(1) var<storage, read> sigs: array<scalar>;
// consts[m] = (-1)^(m+1)/m for m = 1..degree (computed on the host exactly as the CPU does).
@group(0) @binding(2) var<storage, read> consts: array<scalar>;
// Flat signature indices of the Lyndon words, in log-signature order (unused when length is 0).
@group(0) @binding(3) var<storage, read> words: array<u32>;
// n_paths rows of scalar_term + sig_len (expanded) or of length (words).
@group(0) @binding(4) var<storage, read_write> logs: array<scalar>;
// Interleaved per-path chain P_{N-1}, …, P_1, P_0.
@group(0) @binding(5) var<storage, read_write> scratch: array<scalar>;

// The path this invocation works on, and its signature's length.
var<private> path: u32;
var<private> sig_len: u32;

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

// Coefficient i of this invocation's signature (level 1 at i = 0).
fn x(i: u32) -> scalar {
    return sigs[path * sig_len + i];
}

// Start of P_t in the chain: P_u holds level_offset(N - u + 1) slots, P_{N-1} first.
fn chain_start(t: u32) -> u32 {
    let n = params.degree;
    var start = 0u;
    for (var u = n - 1u; u > t; u--) {
        start += level_offset(n - u + 1u);
    }
    return start;
}

// Unit (t, k, j): level k of P_t gets c_{t+1}·x_k (j = 0) or x_j ⊗ level k-j of P_{t+1} added.
fn unit(t: u32, k: u32, j: u32) {
    let o = chain_start(t) + level_offset(k);
    if j == 0u {
        let c = consts[t + 1u];
        let xk = level_offset(k);
        let len = level_offset(k + 1u) - xk;
        for (var i = 0u; i < len; i++) {
            scratch[at(o + i)] = c * x(xk + i);
        }
        return;
    }
    let xj = level_offset(j);
    let rows = level_offset(j + 1u) - xj;
    let pl = level_offset(k - j);
    let p = chain_start(t + 1u) + pl;
    let cols = level_offset(k - j + 1u) - pl;
    for (var a = 0u; a < rows; a++) {
        let xa = x(xj + a);
        for (var b = 0u; b < cols; b++) {
            let w = o + a * cols + b;
            scratch[at(w)] = xa * scratch[at(p + b)] + scratch[at(w)];
        }
    }
}

// The last unit: the output row from P_0.
fn write_out() {
    let e = chain_start(0u);
    if params.length == 0u {
        let row = path * (params.scalar_term + sig_len);
        if params.scalar_term == 1u {
            logs[row] = scalar(0.0);
        }
        for (var i = 0u; i < sig_len; i++) {
            logs[row + params.scalar_term + i] = scratch[at(e + i)];
        }
        return;
    }
    let row = path * params.length;
    for (var w = 0u; w < params.length; w++) {
        logs[row + w] = scratch[at(e + words[w])];
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    path = gid.x;
    if path >= params.n_paths {
        return;
    }
    let n = params.degree;
    sig_len = level_offset(n + 1u);
    var u = 0u;
    for (var s = 0u; s < n; s++) {
        let t = n - 1u - s;
        for (var k = 1u; k <= n - t; k++) {
            for (var j = 0u; j < k; j++) {
                if u >= params.t_begin && u < params.t_end {
                    unit(t, k, j);
                }
                u++;
            }
        }
    }
    if u >= params.t_begin && u < params.t_end {
        write_out();
    }
}
