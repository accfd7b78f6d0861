// sig_backward: the reverse sweep of each time chunk, one workgroup per (path, chunk) with its
// invocations across the coefficients. It starts from the chunk's checkpoint (the prefix signature at
// the chunk's end, levels below the top only: the top level of a prefix is never needed) and the
// gradient R with respect to that prefix (sig_contract), and walks the chunk's increments backwards.
// At each step, with z the increment and S the prefix after it:
//   A  z into workgroup memory;
//   B  S' = S ⊗ exp(−z), levels 1..N−1 (the prefix before the step);
//   C  the adjoints of Horner's chains, dB(k)_m = dB(k)_{m+1}·z/(k−m) with dB(k)_k = R_k (stages
//      s = k − m = 1..N−1, one barrier each), and the chains B(k)_m themselves from S';
//   D  dz_i = Σ_k Σ_{m<k} Σ_{|u|=m} B(k)_m[u]·dB(k)_{m+1}[u i]/(k−m), reduced across the workgroup;
//   F  R ← Σ_{k≥l} dB(k)_l at every level l (the gradient with respect to S').
// dz of every step goes to `dz`; sig_grad turns it into point gradients.
//
// Per-unit state (SCR values a unit, in workgroup memory or `scratch`): S twice (ping-pong, LOW each), R (SIG_LEN), the
// table of dB(k)_l for 1 <= l < k (DLEN) and of B(k)_m/(k−m) for 0 <= m < k (ELEN). The generated
// prelude adds DLEN, ELEN, SCR, DOFF[l] (start of level l in the dB table, ordered by (l, k, word)),
// EOFF[m] (the same for the B table), GP (invocations summing one letter) and NL = WG / GP.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> paths: array<scalar>;
@group(0) @binding(2) var<storage, read> consts: array<scalar>;
@group(0) @binding(3) var<storage, read> checkpoints: array<scalar>;
@group(0) @binding(4) var<storage, read> sigs: array<scalar>;
@group(0) @binding(5) var<storage, read> ends: array<scalar>;
@group(0) @binding(6) var<storage, read_write> dz: array<scalar>;
@group(0) @binding(7) var<storage, read_write> scratch: array<scalar>;

// The unit's state: in workgroup memory where it fits (SHARED_STATE, set by the host), else in its
// slice of `scratch`. The generated prelude sets SHARED_LEN to SCR or 1.
var<workgroup> shared_state: array<scalar, SHARED_LEN>;

fn load(i: u32) -> scalar {
    if SHARED_STATE {
        return shared_state[i];
    }
    return scratch[i];
}

fn store(i: u32, v: scalar) {
    if SHARED_STATE {
        shared_state[i] = v;
    } else {
        scratch[i] = v;
    }
}

// Makes every invocation's state writes visible to the workgroup.
fn state_barrier() {
    if SHARED_STATE {
        workgroupBarrier();
    } else {
        storageBarrier();
    }
}

var<workgroup> zw: array<scalar, D>;
var<workgroup> red: array<scalar, WG>;
var<private> inv: array<scalar, N + 1u>;

// dB(k)_l[v] for a word v of level l <= k, at `vq` within its level (R itself when l = k).
fn db(r: u32, dt: u32, l: u32, k: u32, vq: u32) -> scalar {
    if l == k {
        return load(r + OFF[l] + vq);
    }
    return load(dt + DOFF[l] + (k - l - 1u) * POW[l] + vq);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let slot = wid.y * nwg.x + wid.x;
    if slot >= params.total {
        return;
    }
    let unit = params.unit_begin + slot;
    let chunk = unit % params.n_chunks;
    let p = unit / params.n_chunks;
    let base = select(slot * SCR, 0u, SHARED_STATE);
    let r = base + 2u * LOW;
    let dt = r + SIG_LEN;
    let bt = dt + DLEN;
    for (var m = 1u; m <= N; m++) {
        inv[m] = consts[m];
    }

    // The checkpoint: the given signature for the last chunk (as the CPU's sweep starts from it),
    // the prefix products for the others.
    let last = chunk + 1u == params.n_chunks;
    for (var i = lid; i < LOW; i += WG) {
        if last {
            store(base + i, sigs[p * params.g_stride + params.g_st + i]);
        } else {
            store(base + i, checkpoints[unit * SIG_LEN + i]);
        }
    }
    for (var i = lid; i < SIG_LEN; i += WG) {
        store(r + i, ends[unit * SIG_LEN + i]);
    }
    state_barrier();

    let t0 = chunk * params.chunk_steps;
    let t1 = min(t0 + params.chunk_steps, params.increments);
    for (var t = t1; t > t0; t--) {
        let step = t - 1u;
        let cur = base + ((t1 - t) % 2u) * LOW;
        let prev = base + (1u - (t1 - t) % 2u) * LOW;

        // A
        for (var c = lid; c < D; c += WG) {
            zw[c] = incr(p, step, c);
        }
        workgroupBarrier();

        // B
        for (var i = lid; i < LOW; i += WG) {
            let k = level_of(i);
            let q = i - OFF[k];
            var acc = scalar(1.0);
            for (var j = 1u; j <= k; j++) {
                let head = q / POW[k - j];
                acc = acc * (-zw[head % D]) * inv[k - j + 1u] + load(cur + OFF[j] + head);
            }
            store(prev + i, acc);
        }
        state_barrier();

        // C: stage s computes dB(m+s)_m for every level m >= 1 with m + s <= N; stage 1 also the B
        // table (its inputs, S' and z, are complete).
        for (var s = 1u; s < N; s++) {
            for (var e = lid; e < OFF[N - s + 1u]; e += WG) {
                let m = level_of(e);
                let uq = e - OFF[m];
                let k = m + s;
                var acc = scalar(0.0);
                for (var i = 0u; i < D; i++) {
                    acc += db(r, dt, m + 1u, k, uq * D + i) * zw[i];
                }
                store(dt + DOFF[m] + (s - 1u) * POW[m] + uq, acc * inv[s]);
            }
            if s == 1u {
                for (var e = lid; e < ELEN; e += WG) {
                    var m = 0u;
                    for (; m + 1u < N && e >= EOFF[m + 1u]; m++) {}
                    let rest = e - EOFF[m];
                    let k = m + 1u + rest / POW[m];
                    let uq = rest % POW[m];
                    var acc = scalar(1.0);
                    for (var j = 1u; j <= m; j++) {
                        let head = uq / POW[m - j];
                        acc = acc * zw[head % D] * inv[k - j + 1u] + load(prev + OFF[j] + head);
                    }
                    store(bt + e, acc * inv[k - m]);
                }
            }
            state_barrier();
        }
        if N == 1u {
            // No stage ran: the B table is B(1)_0 = 1.
            if lid == 0u {
                store(bt, scalar(1.0));
            }
            state_barrier();
        }

        // D
        let part = lid % GP;
        for (var i = lid / GP; i < D; i += NL) {
            var acc = scalar(0.0);
            for (var e = part; e < ELEN; e += GP) {
                var m = 0u;
                for (; m + 1u < N && e >= EOFF[m + 1u]; m++) {}
                let rest = e - EOFF[m];
                let k = m + 1u + rest / POW[m];
                let uq = rest % POW[m];
                acc += load(bt + e) * db(r, dt, m + 1u, k, uq * D + i);
            }
            if GP == 1u {
                dz[(p * params.increments + step) * D + i] = acc;
            } else {
                red[lid] = acc;
            }
        }
        workgroupBarrier();
        state_barrier();
        if GP > 1u && lid < D {
            var sum = scalar(0.0);
            for (var j = 0u; j < GP; j++) {
                sum += red[lid * GP + j];
            }
            dz[(p * params.increments + step) * D + lid] = sum;
        }

        // F
        for (var i = lid; i < LOW; i += WG) {
            let l = level_of(i);
            let vq = i - OFF[l];
            var acc = load(r + i);
            for (var k = l + 1u; k <= N; k++) {
                acc += load(dt + DOFF[l] + (k - l - 1u) * POW[l] + vq);
            }
            store(r + i, acc);
        }
        state_barrier();
    }
}
