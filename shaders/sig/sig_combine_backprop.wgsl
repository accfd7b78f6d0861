// sig_combine_backprop: the gradients of C = A ⊗ B (Chen's product, one row per pair) with respect
// to both factors, from the derivatives G of C:
//   dA[u] = Σ_x G[u x]·B[x]   (x over the empty word, B[∅] = 1, and every x with |u| + |x| ≤ N),
//   dB[v] = Σ_u A[u]·G[u v]   (u over the empty word, A[∅] = 1, and every u with |u| + |v| ≤ N).
// One invocation per (pair, side, coefficient); the products' levels are independent, so no
// invocation waits on another. `pairs` holds A and B of pair p as rows 2p and 2p + 1 (no scalar
// term); `grads` gets dA and dB side by side, rows of 2·SIG_LEN.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pairs: array<scalar>;
@group(0) @binding(2) var<storage, read> derivs: array<scalar>;
@group(0) @binding(3) var<storage, read_write> grads: array<scalar>;

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
    let idx = id % SIG_LEN;
    let side = (id / SIG_LEN) % 2u;
    let p = id / SIG_LEN / 2u;
    let g = p * params.g_stride + params.g_st;
    let a = 2u * p * SIG_LEN;
    let b = a + SIG_LEN;
    let k = level_of(idx);
    let q = idx - OFF[k];
    var v = derivs[g + idx];
    if side == 0u {
        // u = idx: contract the words that extend u on the right with B.
        for (var m = 1u; m + k <= N; m++) {
            let ext = g + OFF[k + m] + q * POW[m];
            for (var x = 0u; x < POW[m]; x++) {
                v += derivs[ext + x] * pairs[b + OFF[m] + x];
            }
        }
    } else {
        // v = idx: contract A with the words that extend v on the left.
        for (var j = 1u; j + k <= N; j++) {
            let ext = g + OFF[j + k] + q;
            for (var u = 0u; u < POW[j]; u++) {
                v += pairs[a + OFF[j] + u] * derivs[ext + u * POW[k]];
            }
        }
    }
    grads[(2u * p + side) * SIG_LEN + idx] = v;
}
