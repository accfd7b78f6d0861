// sig_kernel_forward: the signature kernel of each pair of a chunk, by pySigLib's finite-difference
// Goursat scheme on the refined grid (src/sig_kernel/pde.rs, `solve`):
//
//   K[r, c] = (K[r, c−1] + K[r−1, c])·A(h) − K[r−1, c−1]·B(h),  A = 1 + h/2 + h²/12,  B = 1 − h²/12,
//
// K = 1 on the first row and column, h = G[(r−1) >> λ1, (c−1) >> λ2] · 2^−(λ1+λ2). src/gpu/mirror/
// sig_kernel_forward.rs is this file in Rust, line by line.
//
// Precision: `scalar` is f32 as written; the host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.
//
// Inputs: the base Gram matrices G (n1 × n2 per pair, the second mixed differences of the static
// kernel), written by sig_kernel_gram.wgsl earlier in the same submission.
//
// Layout: one workgroup of 256 invocations per pair. The grid is swept along anti-diagonals
// (s = r + c); the points of one diagonal are independent, so the invocations split each diagonal
// into strips of 256 consecutive rows, with a barrier between diagonals. The last three diagonals
// (indexed by row, diagonal s in slot s % 3) live in workgroup memory when the grid has at most
// SHARED_ROWS rows, else in `scratch`. A long sweep can be cut into several dispatches over ranges of
// diagonals ([d_begin, d_end)): the shared path then loads the two diagonals before d_begin from
// `scratch` and stores its last two back, so no invocation runs more loop iterations per dispatch
// than the adapter allows (lavapipe stops every loop after 65535 in all). On a GPU without that
// budget the whole sweep is one dispatch and `scratch` is touched twice per row.

alias scalar = f32;

struct Params {
    // Pairs in this chunk, one workgroup each.
    n_pairs: u32,
    // Increments of the two (transformed) paths: G is n1 × n2.
    n1: u32,
    n2: u32,
    // Dyadic orders λ1, λ2.
    lam1: u32,
    lam2: u32,
    // Points of the refined grid: rows = (n1 << λ1) + 1, cols = (n2 << λ2) + 1.
    rows: u32,
    cols: u32,
    // The anti-diagonals [d_begin, d_end) this dispatch sweeps; the last one is rows + cols − 2.
    d_begin: u32,
    d_end: u32,
    // Which pass of sig_kernel_backward.wgsl a dispatch runs; unused here (the two kernels share
    // their uniform block), as are the block rows, the checkpoint step and the seeding below.
    phase: u32,
    r0: u32,
    r1: u32,
    step: u32,
    seeded: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// n_pairs base Gram matrices, n1 × n2 each, row-major.
@group(0) @binding(1) var<storage, read> gram: array<scalar>;
// consts[0] = 2^−(λ1+λ2), consts[1] = 1/12 (computed on the host exactly as the CPU does).
@group(0) @binding(2) var<storage, read> consts: array<scalar>;
// One kernel per pair, written by the dispatch that sweeps the last diagonal.
@group(0) @binding(3) var<storage, read_write> kernels: array<scalar>;
// Per pair, three diagonals of `rows` points each.
@group(0) @binding(4) var<storage, read_write> scratch: array<scalar>;

// Invocations per workgroup: the width of a strip.
const WG: u32 = 256u;
// Rows of the diagonals kept in workgroup memory (3 × 512 values: 6 KiB in f32, 12 KiB in f64).
const SHARED_ROWS: u32 = 512u;

var<workgroup> diag: array<scalar, 1536>;

// Where point row r of diagonal s of pair `pair` lives in `scratch`.
fn slot(pair: u32, s: u32, r: u32) -> u32 {
    return (pair * 3u + s % 3u) * params.rows + r;
}

// Where point row r of diagonal s lives in `diag`.
fn near(s: u32, r: u32) -> u32 {
    return (s % 3u) * SHARED_ROWS + r;
}

// K at row r of diagonal s: in `diag` when the grid's diagonals fit there, else in `scratch`.
fn k_get(pair: u32, s: u32, r: u32) -> scalar {
    if params.rows <= SHARED_ROWS {
        return diag[near(s, r)];
    }
    return scratch[slot(pair, s, r)];
}

fn k_set(pair: u32, s: u32, r: u32, v: scalar) {
    if params.rows <= SHARED_ROWS {
        diag[near(s, r)] = v;
    } else {
        scratch[slot(pair, s, r)] = v;
    }
}

// The point below-right of `up` and right of `left` (`corner` diagonally before), across a refined
// cell of increment h.
fn point(h: scalar, left: scalar, up: scalar, corner: scalar) -> scalar {
    let h2 = h * h * consts[1];
    let a = scalar(1.0) + scalar(0.5) * h + h2;
    let b = scalar(1.0) - h2;
    return (left + up) * a - corner * b;
}

// The increment of the refined cell whose bottom-right point is (r, c), both at least 1: G of its
// base cell, scaled by 2^−(λ1+λ2).
fn increment(base: u32, r: u32, c: u32) -> scalar {
    return gram[base + ((r - 1u) >> params.lam1) * params.n2 + ((c - 1u) >> params.lam2)] * consts[0];
}

// The increment of cell (r, c) of the refined grid, or 0 where no cell is (row or column 0, or past
// the grid): what the prefetching sweep loads ahead.
fn ahead(base: u32, r: u32, c: i32) -> scalar {
    if r == 0u || r >= params.rows || c < 1 || c >= i32(params.cols) {
        return scalar(0.0);
    }
    return increment(base, r, u32(c));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pair = wid.x;
    if pair >= params.n_pairs {
        return;
    }
    let rows = params.rows;
    let cols = params.cols;
    let base = pair * params.n1 * params.n2;
    let in_diag = rows <= SHARED_ROWS;
    if in_diag {
        for (var r = lid; r < rows; r += WG) {
            if params.d_begin >= 1u {
                diag[near(params.d_begin - 1u, r)] = scratch[slot(pair, params.d_begin - 1u, r)];
            }
            if params.d_begin >= 2u {
                diag[near(params.d_begin - 2u, r)] = scratch[slot(pair, params.d_begin - 2u, r)];
            }
        }
        workgroupBarrier();
    }
    if rows <= WG {
        // One row per invocation: row `lid` meets diagonal s at column s − lid, so each invocation
        // walks its row left to right, and loads each increment 8 diagonals before it is needed
        // (g0 … g7 shift by one a diagonal), overlapping the loads' memory latency with the
        // diagonals in between. The diagonals are in workgroup memory (rows <= WG <= SHARED_ROWS).
        let r = lid;
        let c0 = i32(params.d_begin) - i32(r);
        var g0 = ahead(base, r, c0);
        var g1 = ahead(base, r, c0 + 1);
        var g2 = ahead(base, r, c0 + 2);
        var g3 = ahead(base, r, c0 + 3);
        var g4 = ahead(base, r, c0 + 4);
        var g5 = ahead(base, r, c0 + 5);
        var g6 = ahead(base, r, c0 + 6);
        var g7 = ahead(base, r, c0 + 7);
        for (var s = params.d_begin; s < params.d_end; s++) {
            let c = i32(s) - i32(r);
            let h = g0;
            g0 = g1;
            g1 = g2;
            g2 = g3;
            g3 = g4;
            g4 = g5;
            g5 = g6;
            g6 = g7;
            g7 = ahead(base, r, c + 8);
            if r < rows && c >= 0 && c < i32(cols) {
                var v = scalar(1.0);
                if r > 0u && c > 0 {
                    v = point(h, diag[near(s - 1u, r)], diag[near(s - 1u, r - 1u)],
                        diag[near(s - 2u, r - 1u)]);
                }
                diag[near(s, r)] = v;
            }
            workgroupBarrier();
        }
    }
    for (var s = params.d_begin; s < params.d_end && rows > WG; s++) {
        // Diagonal s holds the rows max(0, s − (cols − 1)) ..= min(s, rows − 1).
        var r_lo = 0u;
        if s >= cols {
            r_lo = s - (cols - 1u);
        }
        let r_hi = min(s, rows - 1u);
        // The same trip count in every invocation, so the barriers are in uniform control flow.
        let strips = (r_hi - r_lo) / WG + 1u;
        for (var k = 0u; k < strips; k++) {
            let r = r_lo + k * WG + lid;
            if r <= r_hi {
                let c = s - r;
                var v = scalar(1.0);
                if r > 0u && c > 0u {
                    v = point(increment(base, r, c), k_get(pair, s - 1u, r),
                        k_get(pair, s - 1u, r - 1u), k_get(pair, s - 2u, r - 1u));
                }
                k_set(pair, s, r, v);
            }
        }
        if in_diag {
            workgroupBarrier();
        } else {
            storageBarrier();
            workgroupBarrier();
        }
    }
    if in_diag {
        for (var r = lid; r < rows; r += WG) {
            if params.d_end >= 1u {
                scratch[slot(pair, params.d_end - 1u, r)] = diag[near(params.d_end - 1u, r)];
            }
            if params.d_end >= 2u {
                scratch[slot(pair, params.d_end - 2u, r)] = diag[near(params.d_end - 2u, r)];
            }
        }
    }
    let last = rows + cols - 2u;
    if lid == 0u && params.d_end == last + 1u {
        kernels[pair] = k_get(pair, last, rows - 1u);
    }
}
