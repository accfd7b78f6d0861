// sig_combine: Chen's identity on rows of per-chunk signatures, one invocation per output coefficient:
// (A ⊗ B)[w] = A[w] + B[w] + Σ_{0<j<k} A[w1..wj]·B[w(j+1)..wk] for w of length k.
//
// Modes (params.mode), on rows p·n_chunks + c of `src`:
//   0 tree:         dst row c = src 2c ⊗ src 2c+1 (or src 2c when it has no partner), c < ⌈count/2⌉;
//   3 tree's root:  as 0 with one output row per path, written to `out` (rows of out_st + SIG_LEN);
//   1 prefix scan:  dst row c = src c−offset ⊗ src c (src c when c < offset);
//   2 suffix scan:  dst row c = src c ⊗ src c+offset (src c when c + offset ≥ count).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<scalar>;
@group(0) @binding(2) var<storage, read_write> dst: array<scalar>;
@group(0) @binding(3) var<storage, read_write> out: array<scalar>;

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
    let tree = params.mode == 0u || params.mode == 3u;
    var rows = params.count;
    if tree {
        rows = (params.count + 1u) / 2u;
    }
    let c = (id / SIG_LEN) % rows;
    let p = id / SIG_LEN / rows;
    let base = p * params.n_chunks;
    var a = c;
    var b = c;
    var pair = false;
    if tree {
        a = 2u * c;
        b = a + 1u;
        pair = b < params.count;
    } else if params.mode == 1u {
        pair = c >= params.offset;
        if pair {
            a = c - params.offset;
        }
    } else {
        b = c + params.offset;
        pair = b < params.count;
    }
    let ra = (base + a) * SIG_LEN;
    let rb = (base + b) * SIG_LEN;
    var v = src[ra + idx];
    if pair {
        v += src[rb + idx];
        let k = level_of(idx);
        let q = idx - OFF[k];
        for (var j = 1u; j < k; j++) {
            let low = POW[k - j];
            v += src[ra + OFF[j] + q / low] * src[rb + OFF[k - j] + q % low];
        }
    }
    if params.mode == 3u {
        let row = p * (params.out_st + SIG_LEN);
        if params.out_st == 1u && idx == 0u {
            out[row] = scalar(1.0);
        }
        out[row + params.out_st + idx] = v;
    } else {
        dst[(base + c) * SIG_LEN + idx] = v;
    }
}
