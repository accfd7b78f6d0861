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
// Layout: the grid is swept along anti-diagonals (s = r + c); the points of one diagonal are
// independent, so the invocations of a workgroup share each diagonal, with a barrier between
// diagonals. Two shapes:
//
// - The row walk, where the grid has at most WG rows (short paths: the Gram matrices of many small
//   pairs). Each invocation owns one row, and a workgroup holds `pack` pairs of WG / pack
//   invocations each (the host picks the most that the rows allow), so no invocation idles on a
//   pair with fewer rows than the workgroup. Each invocation computes its cells' G itself from the
//   pair's paths (`base_gram`, shaders/common/pairs.wgsl), 8 diagonals before it needs them, so the
//   sweep neither waits on memory nor needs a pass writing n1 × n2 values per pair first: along a
//   diagonal the invocations would read a row-major G one row apart each.
// - The strips, for taller grids: one pair per workgroup, its invocations in strips of WG
//   consecutive rows across each diagonal, h read from the base Gram matrices that
//   sig_kernel_gram.wgsl wrote earlier in the same submission.
//
// The last three diagonals (indexed by row, diagonal s in slot s % 3) live in workgroup memory when
// the grid has at most SHARED_ROWS rows, else in `scratch`. A long sweep can be cut into several
// dispatches over ranges of diagonals ([d_begin, d_end)): the shared path then loads the two
// diagonals before d_begin from `scratch` and stores its last two back, so no invocation runs more
// loop iterations per dispatch than the adapter allows (lavapipe stops every loop after 65535 in
// all). On a GPU without that budget the whole sweep is one dispatch and `scratch` is touched twice
// per row.

alias scalar = f32;

struct Params {
    // Pairs in this chunk.
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
    // The static kernel, as shaders/common/pairs.wgsl reads it: channels of the transformed paths,
    // 0 bilinear or 1 a point kernel, and which point kernel.
    dim: u32,
    kind: u32,
    point_kernel: u32,
    // Pairs per workgroup: 1, or (the row walk, rows ≤ WG / pack) a power of two.
    pack: u32,
    // sig_kernel_backward.wgsl's band of rows; unused here.
    b0: u32,
    b1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1–4 (the two sides' paths, the pairs, the static kernel's constants) and `base_gram`:
// shaders/common/pairs.wgsl, appended by the host with point_kernel.wgsl and exp_neg.wgsl.
// The strips: n_pairs base Gram matrices, n1 × n2 each, row-major (unused by the row walk).
@group(0) @binding(5) var<storage, read> gram: array<scalar>;
// scheme[0] = 2^−(λ1+λ2), scheme[1] = 1/12 (computed on the host exactly as the CPU does).
@group(0) @binding(6) var<storage, read> scheme: array<scalar>;
// One kernel per pair, written by the dispatch that sweeps the last diagonal.
@group(0) @binding(7) var<storage, read_write> kernels: array<scalar>;
// Per pair, three diagonals of `rows` points each.
@group(0) @binding(8) var<storage, read_write> scratch: array<scalar>;

// Invocations per workgroup: the width of a strip.
const WG: u32 = 256u;
// Rows of the diagonals kept in workgroup memory (3 × 512 values: 6 KiB in f32, 12 KiB in f64).
const SHARED_ROWS: u32 = 512u;

var<workgroup> diag: array<scalar, 1536>;

// Where this invocation's pair keeps its diagonals in `diag`: the first slot, and the slots per
// diagonal (WG / pack for the row walk, SHARED_ROWS for the strips). Set once in `main`.
var<private> diag_base: u32;
var<private> diag_stride: u32;

// Where point row r of diagonal s of pair `pair` lives in `scratch`.
fn slot(pair: u32, s: u32, r: u32) -> u32 {
    return (pair * 3u + s % 3u) * params.rows + r;
}

// Where point row r of diagonal s of this invocation's pair lives in `diag`.
fn near(s: u32, r: u32) -> u32 {
    return diag_base + (s % 3u) * diag_stride + r;
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
    let h2 = h * h * scheme[1];
    let a = scalar(1.0) + scalar(0.5) * h + h2;
    let b = scalar(1.0) - h2;
    return (left + up) * a - corner * b;
}

// The strips: the increment of the refined cell whose bottom-right point is (r, c), both at least 1:
// G of its base cell from `gram`, scaled by 2^−(λ1+λ2).
fn increment(pair: u32, r: u32, c: u32) -> scalar {
    let base = pair * params.n1 * params.n2;
    return gram[base + ((r - 1u) >> params.lam1) * params.n2 + ((c - 1u) >> params.lam2)] * scheme[0];
}

// The row walk: the increment of cell (r, c) of the refined grid, G computed from the paths, or 0
// where no cell is (row or column 0, or past the grid): what the walk computes ahead.
fn ahead(pair: u32, r: u32, c: i32) -> scalar {
    if r == 0u || r >= params.rows || c < 1 || c >= i32(params.cols) {
        return scalar(0.0);
    }
    let g = base_gram(pair, (r - 1u) >> params.lam1, (u32(c) - 1u) >> params.lam2);
    return g * scheme[0];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pack = params.pack;
    let span = WG / pack;
    let first = wid.x * pack;
    if first >= params.n_pairs {
        return;
    }
    let rows = params.rows;
    let cols = params.cols;
    let pair = first + lid / span;
    // The invocation's first row; past the grid where the last workgroup has no pair for it, so that
    // it writes nothing but still meets every barrier.
    var lane = lid % span;
    if pair >= params.n_pairs {
        lane = rows;
    }
    let in_diag = rows <= SHARED_ROWS;
    diag_base = 0u;
    diag_stride = SHARED_ROWS;
    if rows <= WG {
        diag_base = lid / span * 3u * span;
        diag_stride = span;
    }
    if in_diag {
        for (var r = lane; r < rows; r += span) {
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
        // One row per invocation: row r meets diagonal s at column s − r, so each invocation walks
        // its row left to right and computes each increment 8 diagonals before it is needed (g0 …
        // g7 shift by one a diagonal): the loads of the paths overlap the diagonals in between.
        let r = lane;
        let c0 = i32(params.d_begin) - i32(r);
        var g0 = ahead(pair, r, c0);
        var g1 = ahead(pair, r, c0 + 1);
        var g2 = ahead(pair, r, c0 + 2);
        var g3 = ahead(pair, r, c0 + 3);
        var g4 = ahead(pair, r, c0 + 4);
        var g5 = ahead(pair, r, c0 + 5);
        var g6 = ahead(pair, r, c0 + 6);
        var g7 = ahead(pair, r, c0 + 7);
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
            g7 = ahead(pair, r, c + 8);
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
                    v = point(increment(pair, r, c), k_get(pair, s - 1u, r),
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
        for (var r = lane; r < rows; r += span) {
            if params.d_end >= 1u {
                scratch[slot(pair, params.d_end - 1u, r)] = diag[near(params.d_end - 1u, r)];
            }
            if params.d_end >= 2u {
                scratch[slot(pair, params.d_end - 2u, r)] = diag[near(params.d_end - 2u, r)];
            }
        }
    }
    let last = rows + cols - 2u;
    if lane == 0u && params.d_end == last + 1u {
        kernels[pair] = k_get(pair, last, rows - 1u);
    }
}
