// sig_grad: path gradients from the gradients of the increments, one invocation per (path, point,
// channel): z_s = x_{s+1} − x_s, so dF/dx_j = dz_{j−1} − dz_j. Lead-lag routes each transformed
// increment back to its original segment (even steps moved the lead channels, odd steps the lag
// channels); the time channel's gradient is dropped.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dz: array<scalar>;
@group(0) @binding(2) var<storage, read_write> grads: array<scalar>;

// The gradient of segment s (x_{s+1} − x_s) of path p, channel c.
fn segment(p: u32, s: u32, c: u32) -> scalar {
    let row = p * params.increments;
    if LEAD_LAG {
        return dz[(row + 2u * s) * D + DIM + c] + dz[(row + 2u * s + 1u) * D + c];
    }
    return dz[(row + s) * D + c];
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
    let c = id % DIM;
    let j = (id / DIM) % params.length;
    let p = id / DIM / params.length;
    var g = scalar(0.0);
    if j >= 1u {
        g += segment(p, j - 1u, c);
    }
    if j + 1u < params.length {
        g -= segment(p, j, c);
    }
    grads[id] = g;
}
