// sig_chunks: the signature of every time chunk of every path, S ← S ⊗ exp(z) over the chunk's
// increments, one invocation per (path, chunk, top-level word).
//
// Each invocation keeps its word's prefix chain S[w1], S[w1 w2], …, S[w1..wN] in registers and
// advances it with Horner's rule, top level first (so the lower prefixes are still the old ones):
//   S[w1..wk] ← ((…(z_w1/k + S[w1])·z_w2/(k−1) + S[w1 w2])…)·z_wk/1 + S[w1..wk].
// The chains of different words never meet, so no invocation waits on another: the lower levels are
// recomputed by every word that extends them (about N²/2 multiply-adds per word and step), and each
// lower coefficient is written by the one word that extends it with zeros.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> paths: array<scalar>;
@group(0) @binding(2) var<storage, read> consts: array<scalar>;
@group(0) @binding(3) var<storage, read_write> chunks: array<scalar>;

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
    let word = id % TOP;
    let unit = id / TOP;
    let chunk = unit % params.n_chunks;
    let p = unit / params.n_chunks;

    var letters: array<u32, N>;
    var rest = word;
    for (var j = N; j > 0u; j--) {
        letters[j - 1u] = rest % D;
        rest /= D;
    }
    var inv: array<scalar, N + 1u>;
    for (var m = 1u; m <= N; m++) {
        inv[m] = consts[m];
    }
    // s[k] = S[w1..wk]; s[0] is unused.
    var s: array<scalar, N + 1u>;
    var z: array<scalar, N>;
    let t0 = chunk * params.chunk_steps;
    let t1 = min(t0 + params.chunk_steps, params.increments);
    for (var t = t0; t < t1; t++) {
        for (var j = 0u; j < N; j++) {
            z[j] = incr(p, t, letters[j]);
        }
        for (var k = N; k > 0u; k--) {
            var acc = scalar(1.0);
            for (var j = 1u; j <= k; j++) {
                acc = acc * z[j - 1u] * inv[k - j + 1u] + s[j];
            }
            s[k] = acc;
        }
    }
    let row = unit * SIG_LEN;
    for (var k = 1u; k <= N; k++) {
        let below = POW[N - k];
        if word % below == 0u {
            chunks[row + OFF[k] + word / below] = s[k];
        }
    }
}
