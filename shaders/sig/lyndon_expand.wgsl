// lyndon_expand: bracket coordinates c ↔ the expanded Lie element ℓ = Σ_p c_p P_p (as
// src/logsig/lyndon.rs, Expansions), for rows of params.g_stride coordinates and SIG_LEN levels.
//   mode 0 (expand): one invocation per (row, flat index f of levels 1..N):
//     lie[f] = Σ m·coords[p] over the brackets P_p whose expansion has f (m its coefficient there),
//     the table filed by f (`starts`; `cols` the brackets p ascending, `vals` the m);
//   mode 1 (contract, the transpose): one invocation per (row, bracket p):
//     coords[p] = Σ m·lie[f] over P_p's words f, the table filed by p (`cols` the f).
// Each sum runs in the order the CPU's runs, so f64 results agree to rounding.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> starts: array<u32>;
@group(0) @binding(2) var<storage, read> cols: array<u32>;
@group(0) @binding(3) var<storage, read> vals: array<scalar>;
@group(0) @binding(4) var<storage, read_write> coords: array<scalar>;
@group(0) @binding(5) var<storage, read_write> lie: array<scalar>;

const EXPAND: u32 = 0u;

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
    if params.mode == EXPAND {
        let p = id / SIG_LEN;
        let f = id % SIG_LEN;
        let row = p * params.g_stride;
        var acc = scalar(0.0);
        for (var e = starts[f]; e < starts[f + 1u]; e++) {
            acc += vals[e] * coords[row + cols[e]];
        }
        lie[p * SIG_LEN + f] = acc;
        return;
    }
    let p = id / params.g_stride;
    let w = id % params.g_stride;
    let row = p * SIG_LEN;
    var acc = scalar(0.0);
    for (var e = starts[w]; e < starts[w + 1u]; e++) {
        acc += vals[e] * lie[row + cols[e]];
    }
    coords[p * params.g_stride + w] = acc;
}
