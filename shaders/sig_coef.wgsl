// sig_coef: the signature coefficients of chosen words, one invocation per (path, word), as
// src/sig_coef.rs computes them on the CPU. A word (i_1, …, i_k) keeps its prefixes' coefficients
// c_0 = 1, c_1, …, c_k in registers and crosses each straight segment of increment Δ by Chen's
// identity restricted to them,
//
//   c_j ← c_j + Σ_{m<j} c_m · Δ_{i_{m+1}} ⋯ Δ_{i_j} / (j − m)!     (Horner's rule, j from k down),
//
// O(length · k²) per word, whatever the dimension. The paths come already time-augmented and
// lead-lagged from the host (points, `dim` channels).
//
// A dispatch crosses the segments [seg_lo, seg_hi) only, so that a long path becomes several short
// dispatches (adapters bound one invocation's running time): a window after the first starts from
// the coefficients its predecessor left in `state`, and every window but the last leaves them
// there. With mode 1 the last window leaves them there too, for sig_coef_backprop.wgsl, instead of
// writing the output.
//
// Precision: `scalar` is f32 as written; the host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.

alias scalar = f32;

// Params, params, bindings 1–4 (the points, the words' letters, where each word's values go) and
// WG, MAX_K, STATE: shaders/common/words.wgsl, appended by the host.
@group(0) @binding(5) var<storage, read_write> out: array<scalar>;
// Per (path, word) item, STATE scalars: the coefficients c_0 … c_k between windows (and, for
// sig_coef_backprop.wgsl, the adjoints after them).
@group(0) @binding(6) var<storage, read_write> state: array<scalar>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let item = (wid.y * groups.x + wid.x) * WG + lid;
    if item >= params.n_paths * params.n_words {
        return;
    }
    let p = item / params.n_words;
    let w = item % params.n_words;
    let start = starts[w];
    let k = min(starts[w + 1u] - start, MAX_K);
    let d = params.dim;
    let base = p * params.len * d;
    let segments = params.len - min(params.len, 1u);
    let lo = min(params.seg_lo, segments);
    let hi = min(params.seg_hi, segments);
    let kept = item * STATE;
    var c: array<scalar, 33>;
    var delta: array<scalar, 32>;
    c[0] = scalar(1.0);
    for (var j = 1u; j <= k; j++) {
        if lo == 0u {
            c[j] = scalar(0.0);
        } else {
            c[j] = state[kept + j];
        }
    }
    for (var s = lo; s < hi; s++) {
        for (var m = 0u; m < k; m++) {
            let l = letters[start + m];
            delta[m] = points[base + (s + 1u) * d + l] - points[base + s * d + l];
        }
        for (var jj = 0u; jj < k; jj++) {
            let j = k - jj;
            var acc = scalar(0.0);
            for (var m = 0u; m < j; m++) {
                acc = (acc + c[m]) * delta[m] * (scalar(1.0) / scalar(j - m));
            }
            c[j] = c[j] + acc;
        }
    }
    if hi < segments || params.mode == 1u {
        for (var j = 0u; j <= k; j++) {
            state[kept + j] = c[j];
        }
        return;
    }
    let row = p * params.out_row + outs[w];
    if params.prefixes == 0u {
        out[row] = c[k];
        return;
    }
    if k == 0u {
        out[row] = scalar(1.0);
    }
    for (var j = 1u; j <= k; j++) {
        out[row + j - 1u] = c[j];
    }
}
