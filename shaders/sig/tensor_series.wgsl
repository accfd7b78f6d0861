// tensor_series: the tensor logarithm log(1 + x) and exponential exp(x), and their gradients with
// respect to x, one dispatch per step of Horner's nesting, every coefficient of a step in parallel
// (as src/algebra/log.rs: tensor_log, tensor_exp and their reverses). params.series picks the
// series: 0 the logarithm, c_m = (−1)^{m+1}/m; 1 the exponential, c_m = 1/m!.
//
// Forward: P_m = x ⊗ (c_{m+1} + P_{m+1}) on levels 1..N−m (P_N = 0), for m = N−1 … 1, and the
// series' levels 1..N are P_0 = x ⊗ (c_1 + P_1). Reverse, with dP_0 = dF/dP_0: for m = 0 … N−1, on
// levels L = N − m,
//   dx[u]        += c_{m+1}·dP_m[u] + Σ_y dP_m[u y]·P_{m+1}[y]    (a right contraction)
//   dP_{m+1}[v]   = Σ_a x[a]·dP_m[a v]                            (a left contraction, levels < L)
//
// Modes (params.mode), step m = params.count:
//   0: P_m into `chain` (one invocation per (row, coefficient of levels 1..N−m)), m = N−1 … 1;
//   2: the series P_0 into output rows in `dx` (one invocation per (row, entry)), after mode 0
//      (the forward pass: its only use of `dx`, `positions` and none of `derivs` or `dp`); a
//      scalar term (params.g_st = 1) is the series' own, 0 for the logarithm and 1 for the
//      exponential;
//   1: the reverse step m (one invocation per (row, coefficient of dx on levels 1..L) and per (row,
//      coefficient of dP_{m+1} on levels 1..L−1)); step 0 reads `derivs` and writes dx, the others
//      read dP_m from slot m mod 2 of `dp` and add to dx; dP_{m+1} goes to the other slot.
// `chain` holds each row's P_{N−1}, …, P_1 (P_{N−1} first); `dp` two slots of SIG_LEN per row.
// The derivatives of the Lyndon words' form are read in place through `positions`, so no expanded
// copy is made.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> sigs: array<scalar>;
@group(0) @binding(2) var<storage, read> derivs: array<scalar>;
@group(0) @binding(3) var<storage, read_write> chain: array<scalar>;
@group(0) @binding(4) var<storage, read_write> dp: array<scalar>;
@group(0) @binding(5) var<storage, read_write> dx: array<scalar>;
// With params.offset = 1, where each coefficient's derivative sits in a row of `derivs` (NONE: 0).
@group(0) @binding(6) var<storage, read> positions: array<u32>;

const NONE: u32 = 0xffffffffu;

// Start of P_m (1 <= m <= N − 1) in a row of the chain; chain_start(0) is the row's length.
fn chain_start(m: u32) -> u32 {
    var start = 0u;
    for (var u = N - 1u; u > m; u--) {
        start += OFF[N - u + 1u];
    }
    return start;
}

const LOG: u32 = 0u;

// The series' coefficient c_m: (−1)^{m+1}/m, or 1/m! (m <= N).
fn coeff(m: u32) -> scalar {
    if params.series == LOG {
        var sign = scalar(-1.0);
        if m % 2u == 1u {
            sign = scalar(1.0);
        }
        return sign / scalar(m);
    }
    var factorial = scalar(1.0);
    for (var k = 2u; k <= m; k++) {
        factorial *= scalar(k);
    }
    return scalar(1.0) / factorial;
}

// dP_m[i] of row p: at step 0 the given derivatives (rows of params.g_stride after params.g_st
// values, at `positions` for the words forms), else slot m mod 2.
fn grad(p: u32, m: u32, i: u32) -> scalar {
    if m == 0u {
        var at = i;
        if params.offset == 1u {
            at = positions[i];
            if at == NONE {
                return scalar(0.0);
            }
        }
        return derivs[p * params.g_stride + params.g_st + at];
    }
    return dp[(2u * p + m % 2u) * SIG_LEN + i];
}

// Coefficient idx of P_m (levels 1..N−m); P_0 is the series.
fn chain_value(p: u32, m: u32, idx: u32) -> scalar {
    let x = p * SIG_LEN;
    let row = p * chain_start(0u);
    let k = level_of(idx);
    let q = idx - OFF[k];
    var v = coeff(m + 1u) * sigs[x + idx];
    if m + 1u < N {
        // P_{m+1} (levels from 1).
        let next = row + chain_start(m + 1u);
        for (var j = 1u; j < k; j++) {
            let low = POW[k - j];
            v += sigs[x + OFF[j] + q / low] * chain[next + OFF[k - j] + q % low];
        }
    }
    return v;
}

fn chain_step(p: u32, m: u32, idx: u32) {
    chain[p * chain_start(0u) + chain_start(m) + idx] = chain_value(p, m, idx);
}

// dx on levels 1..levels: c_{m+1}·dP_m[u] + Σ_y dP_m[u y]·P_{m+1}[y].
fn dx_step(p: u32, m: u32, levels: u32, idx: u32) {
    let k = level_of(idx);
    let q = idx - OFF[k];
    var v = coeff(m + 1u) * grad(p, m, idx);
    if m + 1u < N {
        let next = p * chain_start(0u) + chain_start(m + 1u);
        for (var l = 1u; l + k <= levels; l++) {
            let ext = OFF[k + l] + q * POW[l];
            for (var y = 0u; y < POW[l]; y++) {
                v += grad(p, m, ext + y) * chain[next + OFF[l] + y];
            }
        }
    }
    let at = p * SIG_LEN + idx;
    if m == 0u {
        dx[at] = v;
    } else {
        dx[at] += v;
    }
}

// dP_{m+1} on levels 1..levels−1: Σ_a x[a]·dP_m[a v].
fn dp_step(p: u32, m: u32, levels: u32, idx: u32) {
    let x = p * SIG_LEN;
    let k = level_of(idx);
    let q = idx - OFF[k];
    var v = scalar(0.0);
    for (var j = 1u; j + k <= levels; j++) {
        let ext = OFF[j + k] + q;
        for (var a = 0u; a < POW[j]; a++) {
            v += sigs[x + OFF[j] + a] * grad(p, m, ext + a * POW[k]);
        }
    }
    dp[(2u * p + (m + 1u) % 2u) * SIG_LEN + idx] = v;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = linear_id(wid, nwg, lid);
    if id >= params.total {
        return;
    }
    let m = params.count;
    let levels = N - m;
    if params.mode == 0u {
        let per_row = OFF[levels + 1u];
        chain_step(id / per_row, m, id % per_row);
        return;
    }
    if params.mode == 2u {
        // Entry i of row p of the output (in `dx`, rows of params.g_stride after params.g_st
        // scalar terms): the series' coefficient i, or with params.offset = 1 the one at positions[i].
        let p = id / params.length;
        let i = id % params.length;
        var idx = i;
        if params.offset == 1u {
            idx = positions[i];
        }
        let row = p * params.g_stride;
        if params.g_st == 1u && i == 0u {
            dx[row] = scalar(params.series);
        }
        dx[row + params.g_st + i] = chain_value(p, 0u, idx);
        return;
    }
    // Per row: the dx coefficients of levels 1..L, then those of dP_{m+1} (levels 1..L−1).
    let per_row = OFF[levels + 1u] + OFF[levels];
    let p = id / per_row;
    let i = id % per_row;
    if i < OFF[levels + 1u] {
        dx_step(p, m, levels, i);
    } else {
        dp_step(p, m, levels, i - OFF[levels + 1u]);
    }
}
