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
// Layout: workgroups of WG invocations, one pair each, or `pack` pairs of WG / pack invocations
// each where the grid is one band of at most WG / pack rows (the host picks the most that the rows
// and `flow` allow). The grid's rows are cut into bands of at most 2048 / (2·size) rows (what
// `flow` holds) ([b0, b1], set by the host), swept one after the other, one dispatch each:
// invocation l owns row b0 + l and walks it along the band's anti-diagonals (cell (b0 + l, t − l)
// on diagonal t), with a barrier between diagonals. A row's horizontal edge (its adjoint, backward)
// stays in the invocation from cell to cell; the vertical edge a cell passes to the cell below (the
// adjoint it passes to the cell above) goes through workgroup memory (`flow`, two diagonals' worth),
// and the band's last row (first row, backward) leaves it in `edges` for the band below (above).
// Diagonals are separated by a workgroup barrier only; global memory is read on the way by the
// band's bordering row (the band above's edges) and, backward, by each cell (its kept edges). A sweep can be cut into several
// dispatches over ranges of a band's diagonals [d_begin, d_end) (lavapipe bounds one invocation's
// loop iterations); at a window's end each row leaves its horizontal edge and the vertical one in
// flight in `edges`, where the next window picks them up.
//
// mode 0 (forward): the kernel of each pair into `grads[pair·k_stride + k_at]`; flags bit 0 keeps
// every cell's incoming edges in `kept` (for mode 1), bit 1 writes K at every corner into `grid`.
// mode 1 (backward): the bands last first, each band's diagonals [d_begin, d_end) last first, each
// cell's outgoing adjoints plus its corner's seed (half of dF/dK there, flags bit 2, from `seeds`;
// else half of dF/dk at the last corner), to the incoming ones and dF/dρ into `grads`.
//
// Precision: `scalar` is f32 as written; the host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.

alias scalar = f32;

struct Params {
    // Pairs in this dispatch.
    n_pairs: u32,
    // Increments of the two transformed paths: G is n1 × n2.
    n1: u32,
    n2: u32,
    // Coefficients per edge (order + 1, at most 65).
    size: u32,
    // The band's anti-diagonals of cells this dispatch sweeps; the last one is b1 − b0 + n2 − 1.
    d_begin: u32,
    d_end: u32,
    mode: u32,
    flags: u32,
    // Where mode 0 writes each pair's kernel.
    k_stride: u32,
    k_at: u32,
    // The band's rows, b0 ..= b1; the diagonals d_begin, d_end are the band's own.
    b0: u32,
    b1: u32,
    // Pairs per workgroup (a power of two; more than 1 only where the grid is one band).
    pack: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
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
// Per pair: the rows' h (n1·size), the columns' v (n2·size), then their adjoints likewise: where a
// band leaves its last row's v (first row's adjoint) and a window each row's h and v in flight.
@group(0) @binding(5) var<storage, read_write> edges: array<scalar>;
// Per pair every cell's incoming v, then every cell's incoming h (n1·n2·size each).
@group(0) @binding(6) var<storage, read_write> kept: array<scalar>;
// Per pair K at the (n1 + 1)(n2 + 1) corners, row-major.
@group(0) @binding(7) var<storage, read_write> grid: array<scalar>;

const WG: u32 = 64u;
const KEEP: u32 = 1u;
const GRID: u32 = 2u;
const SEEDED: u32 = 4u;

// The vertical edges (adjoints, backward) that a band's rows pass down (up) in workgroup memory: per
// pair of the workgroup two diagonals of b1 − b0 + 1 edges of `size` coefficients (16 KiB in f64).
var<workgroup> flow: array<scalar, 2048>;

fn same(n: u32, k: u32) -> scalar {
    return tables[n * params.size + k];
}

fn slope(n: u32, k: u32) -> scalar {
    return tables[params.size * params.size + n * params.size + k];
}

fn opposite(n: u32, k: u32) -> scalar {
    return tables[2u * params.size * params.size + k * params.size + n];
}

// Where row b0 + l of the band of the workgroup's pair `sub` keeps the edge its cell on diagonal t
// passes on.
fn flow_at(sub: u32, t: u32, l: u32) -> u32 {
    return ((sub * 2u + t % 2u) * (params.b1 - params.b0 + 1u) + l) * params.size;
}

// ρ of cell (i, j) of the pair whose Gram matrix starts at `base`, or 0 where the row has no such
// cell (what the sweeps load one cell ahead).
fn rho_at(live: bool, base: u32, i: u32, j: i32) -> scalar {
    if !live || j < 0 || j >= i32(params.n2) {
        return scalar(0.0);
    }
    return gram[base + i * params.n2 + u32(j)];
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Workgroups in an (x, y) grid where a chunk has more than one dimension allows.
    let group = wid.y * groups.x + wid.x;
    let span = WG / params.pack;
    let first = group * params.pack;
    if first >= params.n_pairs {
        return;
    }
    // This invocation's pair (the workgroup's sub-th) and its row l of the band.
    let sub = lid / span;
    let pair = first + sub;
    let l = lid % span;
    let n1 = params.n1;
    let n2 = params.n2;
    let size = params.size;
    let cells = n1 * n2;
    let hb = pair * 2u * (n1 + n2) * size;
    let vb = hb + n1 * size;
    let dhb = vb + n2 * size;
    let dvb = dhb + n1 * size;
    let kb = pair * 2u * cells * size;
    let gb = pair * (n1 + 1u) * (n2 + 1u);
    let base = pair * cells;
    // Row i of the grid; invocations past the band, or without a pair in the last workgroup, meet
    // every barrier only.
    let rows = params.b1 - params.b0 + 1u;
    let i = params.b0 + l;
    let live = l < rows && pair < params.n_pairs;
    var h: array<scalar, 65>;
    var v: array<scalar, 65>;
    var pw: array<scalar, 65>;
    var a: array<scalar, 65>;
    var b: array<scalar, 65>;
    var c: array<scalar, 65>;
    var e: array<scalar, 65>;
    if params.mode == 0u {
        if params.b0 == 0u && params.d_begin == 0u && (params.flags & GRID) != 0u
            && pair < params.n_pairs {
            // The grid's first row and column are 1.
            for (var j = l; j <= n2; j += span) {
                grid[gb + j] = scalar(1.0);
            }
            for (var r = l; r <= n1; r += span) {
                grid[gb + r * (n2 + 1u)] = scalar(1.0);
            }
        }
        // The row's edge entering the window: the grid's left side (1), or where the window before
        // left it.
        for (var k = 0u; k < size; k++) {
            h[k] = select(scalar(0.0), scalar(1.0), k == 0u);
            if live && params.d_begin > l && params.d_begin - l < n2 {
                h[k] = edges[hb + i * size + k];
            }
        }
        var rho_next = rho_at(live, base, i, i32(params.d_begin) - i32(l));
        for (var t = params.d_begin; t < params.d_end; t++) {
            let j = i32(t) - i32(l);
            let rho = rho_next;
            rho_next = rho_at(live, base, i, j + 1);
            if live && j >= 0 && j < i32(n2) {
                let jj = u32(j);
                let at = (i * n2 + jj) * size;
                var p = scalar(1.0);
                for (var k = 0u; k < size; k++) {
                    pw[k] = p;
                    p = p * rho;
                    // The edge entering from above: the grid's top side (1); from `edges` in a
                    // band's first row (the band above's last) and on a window's first diagonal (the
                    // window before's); else from the row above, on the diagonal before.
                    if i == 0u {
                        v[k] = select(scalar(0.0), scalar(1.0), k == 0u);
                    } else if l == 0u || t == params.d_begin {
                        v[k] = edges[vb + jj * size + k];
                    } else {
                        v[k] = flow[flow_at(sub, t - 1u, l - 1u) + k];
                    }
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
                    h[k] = c[k];
                    flow[flow_at(sub, t, l) + k] = e[k];
                    if l + 1u == rows || t + 1u == params.d_end {
                        edges[vb + jj * size + k] = e[k];
                    }
                    if t + 1u == params.d_end {
                        edges[hb + i * size + k] = c[k];
                    }
                }
                let corner = scalar(0.5) * (corner_h + corner_v);
                if (params.flags & GRID) != 0u {
                    grid[gb + (i + 1u) * (n2 + 1u) + jj + 1u] = corner;
                }
                if i + 1u == n1 && jj + 1u == n2 {
                    grads[pair * params.k_stride + params.k_at] = corner;
                }
            }
            workgroupBarrier();
        }
        return;
    }
    // The row's adjoint entering the window from the right (`c`, as the cell before left it): the
    // grid's right side (0), or where the window after left it.
    for (var k = 0u; k < size; k++) {
        c[k] = scalar(0.0);
        if live && params.d_end >= l && params.d_end - l < n2 {
            c[k] = edges[dhb + i * size + k];
        }
    }
    var rho_next = rho_at(live, base, i, i32(params.d_end) - 1 - i32(l));
    for (var tt = params.d_begin; tt < params.d_end; tt++) {
        let t = params.d_end - 1u - (tt - params.d_begin);
        let j = i32(t) - i32(l);
        let rho = rho_next;
        rho_next = rho_at(live, base, i, j - 1);
        if live && j >= 0 && j < i32(n2) {
            let jj = u32(j);
            let at = (i * n2 + jj) * size;
            var seed = scalar(0.0);
            if (params.flags & SEEDED) != 0u {
                seed = scalar(0.5) * seeds[gb + (i + 1u) * (n2 + 1u) + jj + 1u];
            } else if i + 1u == n1 && jj + 1u == n2 {
                seed = scalar(0.5) * seeds[pair];
            }
            // a, b: the outgoing h's and v's adjoints; c, e: the incoming ones.
            var p = scalar(1.0);
            for (var k = 0u; k < size; k++) {
                pw[k] = p;
                p = p * rho;
                h[k] = kept[kb + cells * size + at + k];
                v[k] = kept[kb + at + k];
                a[k] = c[k] + seed;
                // The adjoint entering from below: none on the grid's bottom side; from `edges` in
                // a band's last row (the band below's first) and on a window's first diagonal (the
                // window after's); else from the row below, on the diagonal after.
                var below = scalar(0.0);
                if i + 1u < n1 {
                    if l + 1u == rows || t + 1u == params.d_end {
                        below = edges[dvb + jj * size + k];
                    } else {
                        below = flow[flow_at(sub, t + 1u, l + 1u) + k];
                    }
                }
                b[k] = below + seed;
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
            grads[pair * params.k_stride + i * n2 + jj] = d_rho;
            for (var k = 0u; k < size; k++) {
                flow[flow_at(sub, t, l) + k] = e[k];
                if l == 0u || t == params.d_begin {
                    edges[dvb + jj * size + k] = e[k];
                }
                if t == params.d_begin {
                    edges[dhb + i * size + k] = c[k];
                }
            }
        }
        workgroupBarrier();
    }
}
