// sig_join_backprop: the displacement's gradient from the gradient dE of the segment's signature
// E = exp(z) (which sig_combine_backprop left in `grads`):
//   dz_i = Σ_k (1/k!) Σ_{|w|=k} dE[w] · ∂(z_{w1}···z_{wk})/∂z_i,
// the derivative of each word's product taken letter by letter ((p, dp) ← (p·z_c, dp·z_c + p·[c = i])),
// so no division by z. One workgroup per (row, channel i): its invocations split the words and the
// partial sums are reduced in workgroup memory.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> disp: array<scalar>;
@group(0) @binding(2) var<storage, read> grads: array<scalar>;
@group(0) @binding(3) var<storage, read_write> dz: array<scalar>;

var<workgroup> partial: array<scalar, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // The dispatch grid may hold a few workgroups past the last (row, channel): they sum nothing.
    let unit = wid.y * nwg.x + wid.x;
    let valid = unit < params.total;
    let p = unit / D;
    let i = unit % D;
    let de = (2u * p + params.offset) * SIG_LEN;
    var sum = scalar(0.0);
    if valid {
        var inv_fact = scalar(1.0);
        for (var k = 1u; k <= N; k++) {
            inv_fact /= scalar(k);
            for (var x = lid; x < POW[k]; x += WG) {
                var prod = scalar(1.0);
                var dprod = scalar(0.0);
                for (var j = 1u; j <= k; j++) {
                    let c = (x / POW[k - j]) % D;
                    let zc = disp[p * D + c];
                    dprod = dprod * zc;
                    if c == i {
                        dprod += prod;
                    }
                    prod *= zc;
                }
                sum += grads[de + OFF[k] + x] * dprod * inv_fact;
            }
        }
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if lid < half {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    if valid && lid == 0u {
        dz[p * D + i] = partial[0];
    }
}
