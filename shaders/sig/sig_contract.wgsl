// sig_contract: the gradient with respect to the signature at the end of each time chunk, from the
// derivatives G of the whole signature and the signature Q of the rest of the path after the chunk:
//   R[u] = Σ_x G[u x]·Q[x]   (x over the empty word, Q[∅] = 1, and every x with |u| + |x| ≤ N).
// One invocation per (path, chunk, coefficient). `suffix` holds the inclusive suffix products
// X_c ⊗ … ⊗ X_last of the chunk signatures, so Q of chunk c is row c + 1 (none after the last).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> derivs: array<scalar>;
@group(0) @binding(2) var<storage, read> suffix: array<scalar>;
@group(0) @binding(3) var<storage, read_write> ends: array<scalar>;

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
    let unit = id / SIG_LEN;
    let c = unit % params.n_chunks;
    let p = unit / params.n_chunks;
    let g = p * params.g_stride + params.g_st;
    var v = derivs[g + idx];
    if c + 1u < params.n_chunks {
        let k = level_of(idx);
        let q = idx - OFF[k];
        let row = (unit + 1u) * SIG_LEN;
        for (var m = 1u; m + k <= N; m++) {
            let ext = g + OFF[k + m] + q * POW[m];
            let tail = row + OFF[m];
            for (var x = 0u; x < POW[m]; x++) {
                v += derivs[ext + x] * suffix[tail + x];
            }
        }
    }
    ends[unit * SIG_LEN + idx] = v;
}
