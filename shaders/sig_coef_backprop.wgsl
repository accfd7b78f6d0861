// sig_coef_backprop: the gradient of chosen words' signature coefficients with respect to the
// points, the exact adjoint of sig_coef.wgsl's recursion (src/sig_coef.rs, `sig_coef_backprop`),
// in two modes (params.mode), after sig_coef.wgsl (mode 1) has left each (path, word)'s
// coefficients at the path's end in `state`:
//
//   0. one invocation per (path, word): the segments [seg_lo, seg_hi), last first. Each segment's
//      coefficients before it are recovered by the inverse segment (the same recursion with −Δ,
//      Chen's identity with exp(−Δ)), so nothing is stored per segment, and the adjoint
//      a_j = dF/dc_j crosses it backwards:
//        a_m gains a_j·Δ_{m+1}⋯Δ_j/(j − m)!  (m ≥ 1), and
//        dF/dΔ_l gains a_j·c_m/(j − m)!·Π_{m<t≤j, t≠l} Δ_t  (m < l ≤ j),
//      the products without each factor built as the span grows (no division: increments may be
//      0), O(k³) a segment as on the CPU. The window that ends the path starts the adjoints from
//      `derivs`; each window leaves c and a in `state` for the next (windows keep one invocation's
//      running time bounded). dF/dΔ of the word's letters goes to `dd`: per path and segment a row
//      with one slot per letter of the word list (word w's at starts[w]).
//   1. one invocation per (path, point t, channel i): the point's gradient, over the words in
//      order, minus dd of segment t then plus dd of segment t − 1 at the letters equal to i (the
//      CPU's order of accumulation).
//
// Precision: `scalar` is f32 as written; the host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.

alias scalar = f32;

// Params, params, bindings 1–4 (the points, the words' letters, where each word's derivatives
// start in a row of `derivs`) and WG, MAX_K, STATE: shaders/common/words.wgsl, appended by the host.
@group(0) @binding(5) var<storage, read> derivs: array<scalar>;
// Per path, (len − 1) rows of n_letters: dF/dΔ at each letter of each segment.
@group(0) @binding(6) var<storage, read_write> dd: array<scalar>;
// n_paths rows of len·dim: dF/d(point).
@group(0) @binding(7) var<storage, read_write> grads: array<scalar>;
// Per (path, word) item, STATE scalars: c_0 … c_k, then from slot 33 a_0 … a_k.
@group(0) @binding(8) var<storage, read_write> state: array<scalar>;

// Across segment s of the path at `base`: c_j += Σ_{m<j} c_m·(sign·Δ_{m+1})⋯(sign·Δ_j)/(j − m)!
// for j = k … 1 (Horner's rule, as sig_coef.wgsl), with the segment's increments in `delta`.
fn cross(c: ptr<function, array<scalar, 33>>, delta: ptr<function, array<scalar, 32>>, k: u32,
    sign: scalar) {
    for (var jj = 0u; jj < k; jj++) {
        let j = k - jj;
        var acc = scalar(0.0);
        for (var m = 0u; m < j; m++) {
            acc = (acc + (*c)[m]) * (sign * (*delta)[m]) * (scalar(1.0) / scalar(j - m));
        }
        (*c)[j] = (*c)[j] + acc;
    }
}

// Mode 0 for word w of path p.
fn adjoint(p: u32, w: u32) {
    let start = starts[w];
    let k = min(starts[w + 1u] - start, MAX_K);
    let d = params.dim;
    let base = p * params.len * d;
    let segments = params.len - 1u;
    let lo = min(params.seg_lo, segments);
    let hi = min(params.seg_hi, segments);
    let kept = (p * params.n_words + w) * STATE;
    var c: array<scalar, 33>;
    var delta: array<scalar, 32>;
    var a: array<scalar, 33>;
    var next: array<scalar, 33>;
    var d_delta: array<scalar, 32>;
    var excl: array<scalar, 32>;
    // 1/j!, as the CPU forms it.
    var inv_fact: array<scalar, 33>;
    inv_fact[0] = scalar(1.0);
    for (var j = 1u; j <= k; j++) {
        inv_fact[j] = inv_fact[j - 1u] * (scalar(1.0) / scalar(j));
    }
    let row = p * params.out_row + outs[w];
    for (var j = 0u; j <= k; j++) {
        c[j] = state[kept + j];
        if hi < segments {
            a[j] = state[kept + 33u + j];
        } else if params.prefixes == 1u && j > 0u {
            a[j] = derivs[row + j - 1u];
        } else if j == k && params.prefixes == 0u {
            a[j] = derivs[row];
        } else {
            a[j] = scalar(0.0);
        }
    }
    for (var ss = lo; ss < hi; ss++) {
        let s = hi - 1u - (ss - lo);
        for (var m = 0u; m < k; m++) {
            let l = letters[start + m];
            delta[m] = points[base + (s + 1u) * d + l] - points[base + s * d + l];
            d_delta[m] = scalar(0.0);
        }
        // The coefficients before the segment.
        cross(&c, &delta, k, scalar(-1.0));
        for (var j = 0u; j <= k; j++) {
            next[j] = a[j];
        }
        for (var m = 0u; m < k; m++) {
            var prod = scalar(1.0);
            for (var j = m + 1u; j <= k; j++) {
                let v = delta[j - 1u];
                for (var e = 0u; e + 1u < j - m; e++) {
                    excl[e] = excl[e] * v;
                }
                excl[j - 1u - m] = prod;
                prod = prod * v;
                let aj = a[j];
                if aj != scalar(0.0) {
                    if m > 0u {
                        next[m] = next[m] + aj * prod * inv_fact[j - m];
                    }
                    let weight = aj * c[m] * inv_fact[j - m];
                    for (var l = 0u; l < j - m; l++) {
                        d_delta[m + l] = d_delta[m + l] + weight * excl[l];
                    }
                }
            }
        }
        let out = (p * segments + s) * params.n_letters + start;
        for (var l = 0u; l < k; l++) {
            dd[out + l] = d_delta[l];
        }
        for (var j = 0u; j <= k; j++) {
            a[j] = next[j];
        }
    }
    for (var j = 0u; j <= k; j++) {
        state[kept + j] = c[j];
        state[kept + 33u + j] = a[j];
    }
}

// Mode 1 for channel i of point t of path p.
fn gather(p: u32, t: u32, i: u32) {
    let segments = params.len - 1u;
    var acc = scalar(0.0);
    for (var w = 0u; w < params.n_words; w++) {
        let start = starts[w];
        let end = start + min(starts[w + 1u] - start, MAX_K);
        if t < segments {
            let row = (p * segments + t) * params.n_letters;
            for (var e = start; e < end; e++) {
                if letters[e] == i {
                    acc = acc - dd[row + e];
                }
            }
        }
        if t > 0u {
            let row = (p * segments + t - 1u) * params.n_letters;
            for (var e = start; e < end; e++) {
                if letters[e] == i {
                    acc = acc + dd[row + e];
                }
            }
        }
    }
    grads[(p * params.len + t) * params.dim + i] = acc;
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let item = (wid.y * groups.x + wid.x) * WG + lid;
    if params.mode == 0u {
        if item < params.n_paths * params.n_words && params.len > 1u {
            adjoint(item / params.n_words, item % params.n_words);
        }
        return;
    }
    let per_path = params.len * params.dim;
    if item < params.n_paths * per_path {
        let p = item / per_path;
        let at = item % per_path;
        gather(p, at / params.dim, at % params.dim);
    }
}
