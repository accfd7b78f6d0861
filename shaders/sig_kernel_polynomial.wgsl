// sig_kernel_polynomial: pySigLib's polynomial solver of the signature-kernel PDE and its exact
// adjoint, as src/sig_kernel/polynomial.rs computes them on the CPU (`cell`, `cell_backprop`).
//
// Each cell (i, j) of the base grid maps its incoming edges h (shared with cell (i, j − 1)) and
// v (shared with (i − 1, j)), polynomials of `size` = order + 1 monomial coefficients, to its
// outgoing ones by the truncated power series of ∂²K/∂s∂t = ρK, ρ = G[i, j]:
//
//   out_h[0] = Σ_k v[k],   out_h[n] = h[n] + Σ_{1≤k<n} S[n][k]·ρ^{n−k}·h[k] + ρ^n·Σ_k O[n][k]·v[k]
//   (out_v the same with h and v swapped); K at the cell's far corner = (Σ out_h + Σ out_v) / 2.
//
// Layout: one workgroup of 64 invocations per pair. Cells (i, s − i) of one anti-diagonal s touch
// distinct rows' h and columns' v, so the invocations split each diagonal into strips of 64 rows
// with a barrier between diagonals; each row's current h and each column's current v live in
// `edges`. A sweep can be cut into several dispatches over ranges of diagonals [d_begin, d_end)
// (lavapipe bounds one invocation's loop iterations); everything it carries is in `edges`.
//
// mode 0 (forward): the kernel of each pair into `grads[pair·k_stride + k_at]`; flags bit 0 keeps
// every cell's incoming edges in `kept` (for mode 1), bit 1 writes K at every corner into `grid`.
// mode 1 (backward): the diagonals [d_begin, d_end) last first, each cell's outgoing adjoints from
// `edges` (rows' dh, columns' dv) plus its corner's seed (half of dF/dK there, flags bit 2, from
// `seeds`; else half of dF/dk at the last corner), to the incoming ones and dF/dρ into `grads`.
//
// Precision: `scalar` is f32 as written; the host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.

alias scalar = f32;

struct Params {
    // Pairs in this dispatch, one workgroup each.
    n_pairs: u32,
    // Increments of the two transformed paths: G is n1 × n2.
    n1: u32,
    n2: u32,
    // Coefficients per edge (order + 1, at most 65).
    size: u32,
    // The anti-diagonals of cells this dispatch sweeps; the last one is n1 + n2 − 2.
    d_begin: u32,
    d_end: u32,
    mode: u32,
    flags: u32,
    // Where mode 0 writes each pair's kernel.
    k_stride: u32,
    k_at: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// n_pairs base Gram matrices, n1 × n2 each, row-major.
@group(0) @binding(1) var<storage, read> gram: array<scalar>;
// S (size²), its slope (n − k)·S, then O transposed (O[n][k] at k·size + n).
@group(0) @binding(2) var<storage, read> tables: array<scalar>;
// Per pair dF/dk, or (flags bit 2) dF/dK at each of the (n1 + 1)(n2 + 1) corners.
@group(0) @binding(3) var<storage, read> seeds: array<scalar>;
// Per pair k_stride values: mode 1's dF/dG (n1·n2), and the kernel where mode 0 puts it.
@group(0) @binding(4) var<storage, read_write> grads: array<scalar>;
// Per pair: the rows' h (n1·size), the columns' v (n2·size), then their adjoints likewise.
@group(0) @binding(5) var<storage, read_write> edges: array<scalar>;
// Per pair every cell's incoming v, then every cell's incoming h (n1·n2·size each).
@group(0) @binding(6) var<storage, read_write> kept: array<scalar>;
// Per pair K at the (n1 + 1)(n2 + 1) corners, row-major.
@group(0) @binding(7) var<storage, read_write> grid: array<scalar>;

const WG: u32 = 64u;
const KEEP: u32 = 1u;
const GRID: u32 = 2u;
const SEEDED: u32 = 4u;

fn same(n: u32, k: u32) -> scalar {
    return tables[n * params.size + k];
}

fn slope(n: u32, k: u32) -> scalar {
    return tables[params.size * params.size + n * params.size + k];
}

fn opposite(n: u32, k: u32) -> scalar {
    return tables[2u * params.size * params.size + k * params.size + n];
}

// The cells of diagonal s: rows lo ..= hi.
fn rows_of(s: u32) -> vec2<u32> {
    var lo = 0u;
    if s >= params.n2 {
        lo = s - (params.n2 - 1u);
    }
    return vec2<u32>(lo, min(s, params.n1 - 1u));
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Workgroups in an (x, y) grid where a chunk has more than one dimension allows.
    let group = wid.y * groups.x + wid.x;
    let pair = group;
    if pair >= params.n_pairs {
        return;
    }
    let n1 = params.n1;
    let n2 = params.n2;
    let size = params.size;
    let cells = n1 * n2;
    let last = n1 + n2 - 2u;
    let hb = pair * 2u * (n1 + n2) * size;
    let vb = hb + n1 * size;
    let dhb = vb + n2 * size;
    let dvb = dhb + n1 * size;
    let kb = pair * 2u * cells * size;
    let gb = pair * (n1 + 1u) * (n2 + 1u);
    let base = pair * cells;
    var h: array<scalar, 65>;
    var v: array<scalar, 65>;
    var pw: array<scalar, 65>;
    var a: array<scalar, 65>;
    var b: array<scalar, 65>;
    var c: array<scalar, 65>;
    var e: array<scalar, 65>;
    if params.mode == 0u {
        if params.d_begin == 0u {
            // The first row and column of edges are the constant 1.
            for (var i = lid; i < n1; i += WG) {
                for (var k = 0u; k < size; k++) {
                    edges[hb + i * size + k] = select(scalar(0.0), scalar(1.0), k == 0u);
                }
            }
            for (var j = lid; j < n2; j += WG) {
                for (var k = 0u; k < size; k++) {
                    edges[vb + j * size + k] = select(scalar(0.0), scalar(1.0), k == 0u);
                }
            }
            if (params.flags & GRID) != 0u {
                for (var j = lid; j <= n2; j += WG) {
                    grid[gb + j] = scalar(1.0);
                }
                for (var i = lid; i <= n1; i += WG) {
                    grid[gb + i * (n2 + 1u)] = scalar(1.0);
                }
            }
            storageBarrier();
            workgroupBarrier();
        }
        for (var s = params.d_begin; s < params.d_end; s++) {
            let span = rows_of(s);
            // The same trip count in every invocation, so the barriers are in uniform control flow.
            let strips = (span.y - span.x) / WG + 1u;
            for (var t = 0u; t < strips; t++) {
                let i = span.x + t * WG + lid;
                if i <= span.y {
                    let j = s - i;
                    let rho = gram[base + i * n2 + j];
                    let at = (i * n2 + j) * size;
                    var p = scalar(1.0);
                    for (var k = 0u; k < size; k++) {
                        pw[k] = p;
                        p = p * rho;
                        h[k] = edges[hb + i * size + k];
                        v[k] = edges[vb + j * size + k];
                        a[k] = scalar(0.0);
                        b[k] = scalar(0.0);
                        if (params.flags & KEEP) != 0u {
                            kept[kb + at + k] = v[k];
                            kept[kb + cells * size + at + k] = h[k];
                        }
                    }
                    // a: Σ_k O[n][k]·v[k] (for out_h), b: Σ_k O[n][k]·h[k] (for out_v).
                    for (var k = 0u; k < size; k++) {
                        for (var n = 1u; n < size; n++) {
                            a[n] = a[n] + opposite(n, k) * v[k];
                            b[n] = b[n] + opposite(n, k) * h[k];
                        }
                    }
                    var end_h = scalar(0.0);
                    var end_v = scalar(0.0);
                    for (var k = 0u; k < size; k++) {
                        end_h = end_h + v[k];
                        end_v = end_v + h[k];
                    }
                    c[0] = end_h;
                    e[0] = end_v;
                    var corner_h = end_h;
                    var corner_v = end_v;
                    for (var n = 1u; n < size; n++) {
                        var sh = h[n];
                        var sv = v[n];
                        for (var k = 1u; k < n; k++) {
                            let f = same(n, k) * pw[n - k];
                            sh = sh + f * h[k];
                            sv = sv + f * v[k];
                        }
                        c[n] = sh + pw[n] * a[n];
                        e[n] = sv + pw[n] * b[n];
                        corner_h = corner_h + c[n];
                        corner_v = corner_v + e[n];
                    }
                    for (var k = 0u; k < size; k++) {
                        edges[hb + i * size + k] = c[k];
                        edges[vb + j * size + k] = e[k];
                    }
                    if (params.flags & GRID) != 0u {
                        grid[gb + (i + 1u) * (n2 + 1u) + j + 1u] = scalar(0.5) * (corner_h + corner_v);
                    }
                }
            }
            storageBarrier();
            workgroupBarrier();
        }
        if lid == 0u && params.d_end == last + 1u {
            var end_h = scalar(0.0);
            var end_v = scalar(0.0);
            for (var k = 0u; k < size; k++) {
                end_h = end_h + edges[hb + (n1 - 1u) * size + k];
                end_v = end_v + edges[vb + (n2 - 1u) * size + k];
            }
            grads[pair * params.k_stride + params.k_at] = scalar(0.5) * (end_h + end_v);
        }
        return;
    }
    if params.d_end == last + 1u {
        // The last cell's outgoing edges have no adjoint but their seeds.
        for (var i = lid; i < n1; i += WG) {
            for (var k = 0u; k < size; k++) {
                edges[dhb + i * size + k] = scalar(0.0);
            }
        }
        for (var j = lid; j < n2; j += WG) {
            for (var k = 0u; k < size; k++) {
                edges[dvb + j * size + k] = scalar(0.0);
            }
        }
        storageBarrier();
        workgroupBarrier();
    }
    for (var ss = params.d_begin; ss < params.d_end; ss++) {
        let s = params.d_end - 1u - (ss - params.d_begin);
        let span = rows_of(s);
        let strips = (span.y - span.x) / WG + 1u;
        for (var t = 0u; t < strips; t++) {
            let i = span.x + t * WG + lid;
            if i <= span.y {
                let j = s - i;
                let rho = gram[base + i * n2 + j];
                let at = (i * n2 + j) * size;
                var seed = scalar(0.0);
                if (params.flags & SEEDED) != 0u {
                    seed = scalar(0.5) * seeds[gb + (i + 1u) * (n2 + 1u) + j + 1u];
                } else if i + 1u == n1 && j + 1u == n2 {
                    seed = scalar(0.5) * seeds[pair];
                }
                // a, b: the outgoing h's and v's adjoints; c, e: the incoming ones.
                var p = scalar(1.0);
                for (var k = 0u; k < size; k++) {
                    pw[k] = p;
                    p = p * rho;
                    h[k] = kept[kb + cells * size + at + k];
                    v[k] = kept[kb + at + k];
                    a[k] = edges[dhb + i * size + k] + seed;
                    b[k] = edges[dvb + j * size + k] + seed;
                }
                var d_rho = scalar(0.0);
                for (var k = 0u; k < size; k++) {
                    var ah = scalar(0.0);
                    var av = scalar(0.0);
                    var oh = scalar(0.0);
                    var ov = scalar(0.0);
                    for (var n = 1u; n < size; n++) {
                        let o = opposite(n, k);
                        let sl = scalar(n) * pw[n - 1u];
                        av = av + o * (pw[n] * a[n]);
                        ah = ah + o * (pw[n] * b[n]);
                        oh = oh + o * (sl * a[n]);
                        ov = ov + o * (sl * b[n]);
                    }
                    e[k] = a[0] + av;
                    c[k] = b[0] + ah;
                    d_rho = d_rho + (oh * v[k] + ov * h[k]);
                }
                for (var n = 1u; n < size; n++) {
                    let g1 = a[n];
                    let g2 = b[n];
                    c[n] = c[n] + g1;
                    e[n] = e[n] + g2;
                    for (var k = 1u; k < n; k++) {
                        let f = same(n, k) * pw[n - k];
                        c[k] = c[k] + f * g1;
                        e[k] = e[k] + f * g2;
                        d_rho = d_rho + slope(n, k) * pw[n - k - 1u] * (h[k] * g1 + v[k] * g2);
                    }
                }
                grads[pair * params.k_stride + i * n2 + j] = d_rho;
                for (var k = 0u; k < size; k++) {
                    edges[dhb + i * size + k] = c[k];
                    edges[dvb + j * size + k] = e[k];
                }
            }
        }
        storageBarrier();
        workgroupBarrier();
    }
}
