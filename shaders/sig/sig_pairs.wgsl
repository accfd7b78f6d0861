// sig_pairs: signatures already on the device placed as one side of the pairs that sig_combine and
// sig_combine_backprop read (row 2p + side of pair p). One invocation per (row, coefficient):
// pairs row 2p + params.offset = src row params.unit_begin + p (rows of SIG_LEN, no scalar term).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<scalar>;
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
    pairs[(2u * p + params.offset) * SIG_LEN + idx] = src[(params.unit_begin + p) * SIG_LEN + idx];
}
