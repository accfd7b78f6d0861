// sig_join: the signature of one straight segment, exp(z) = Σ_k z^{⊗k}/k!, written beside each
// signature so that sig_combine joins them: exp(z)[w1..wk] = z_{w1}···z_{wk}/k!.
// One invocation per (row, coefficient). `pairs` holds the rows of pair p at 2p and 2p + 1 (no scalar
// term); the exponential goes to row 2p + params.offset (0: prepended, 1: appended), the signature
// already sits in the other.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> disp: array<scalar>;
@group(0) @binding(2) var<storage, read_write> pairs: array<scalar>;

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
    let p = id / SIG_LEN;
    let k = level_of(idx);
    let q = idx - OFF[k];
    var e = scalar(1.0);
    for (var i = 1u; i <= k; i++) {
        let letter = (q / POW[k - i]) % D;
        e *= disp[p * D + letter] / scalar(i);
    }
    pairs[(2u * p + params.offset) * SIG_LEN + idx] = e;
}
