// sig_kernel_backward: the gradient dF/dG of each pair of a chunk, given dF/dk, by the exact discrete
// adjoint of the finite-difference scheme of sig_kernel_forward.wgsl (src/sig_kernel/pde.rs,
// `backprop`). src/gpu/mirror/sig_kernel_backward.rs is this file in Rust, line by line.
//
// Precision: `scalar` is f32 as written; the host specialises the source for f64 by replacing the
// `alias scalar = f32;` line (see src/gpu/kernels.rs), and only on adapters with SHADER_F64.
//
// The scheme, on the refined grid of points (r, c), 0 ≤ r < rows, 0 ≤ c < cols:
//
//   K[r, c] = (K[r, c−1] + K[r−1, c])·A(h) − K[r−1, c−1]·B(h),  A = 1 + h/2 + h²/12,  B = 1 − h²/12,
//
// with h the share 2^−(λ1+λ2) of G[(r−1) >> λ1, (c−1) >> λ2] that cell (r−1, c−1) sees. Its adjoint
// K̄ (dF/dK) runs the other way: K[r, c] feeds K[r, c+1] (weight A of cell (r−1, c)), K[r+1, c]
// (weight A of cell (r, c−1)) and K[r+1, c+1] (weight −B of cell (r, c)), so
//
//   K̄[r, c] = seed[r, c] + K̄[r, c+1]·A + (K̄[r+1, c]·A − K̄[r+1, c+1]·B),
//
// and cell (r−1, c−1) contributes dh = K̄[r, c]·((K[r−1, c] + K[r, c−1])·(1/2 + h/6) + K[r−1, c−1]·h/6)
// to its base cell's gradient. Only the points with r, c ≥ 1 need an adjoint (the boundary is fixed).
// Every expression is written in the order the CPU evaluates it, so f64 results agree to rounding.
//
// Layout: one workgroup of 256 invocations per pair, invocations in strips of 256 consecutive rows
// across each anti-diagonal (s = r + c), a barrier between diagonals, as in the forward kernel. The
// work is cut into dispatches by `phase`:
//
//   0. the forward sweep over diagonals [d_begin, d_end), storing the whole grid K of the pair in
//      `grid` (row-major); its last three diagonals live in workgroup memory when the grid has at
//      most SHARED_ROWS rows (the two before d_begin loaded from `grid`), so the sweep waits on
//      workgroup memory only, else the points are read back from `grid`; the dispatch that ends at
//      the last diagonal also writes the kernel;
//   1. the reverse sweep over diagonals [d_begin, d_end), last diagonal first: K̄ of the last three
//      diagonals (diagonal s in slot s % 3) lives in workgroup memory when the grid has at most
//      SHARED_ROWS rows, loaded from `scratch` at the start of a dispatch and stored back at its end,
//      else in `scratch` itself; each point's K̄ is stored in the second half of `grid`, so the
//      sweep reads no global memory where its diagonals are in workgroup memory;
//   2. dh of every point from K̄ and K, reduced over each base cell, for the base cells
//      [d_begin, d_end) (row-major index): rows of sub-cells in decreasing order, columns
//      increasing within a row, times 2^−(λ1+λ2), as the CPU sums them.
//
// Ranges are sized by the host so that no invocation runs more loop iterations per dispatch than the
// adapter allows (lavapipe stops every loop after 65535 in all).

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
    // Phases 0 and 1: the anti-diagonals [d_begin, d_end) of this dispatch; phase 2: the base cells.
    d_begin: u32,
    d_end: u32,
    // Which pass this dispatch runs (see above; sig_kernel_forward.wgsl ignores it).
    phase: u32,
    // The rows [r0, r1] of the grid that `grid` holds (0 and rows − 1 when it holds them all).
    r0: u32,
    r1: u32,
    // Checkpoints: every `step` rows, K's row is kept in `ckpt` (0: none, the grid is held whole).
    step: u32,
    // 1: `seeds` holds dF/dK at every point (rows × cols per pair); 0: dF/dk, one per pair.
    seeded: u32,
    // The static kernel and the pairs per workgroup of sig_kernel_forward.wgsl's row walk; unused
    // here (this kernel reads G from `gram` and runs one pair per workgroup).
    dim: u32,
    kind: u32,
    point_kernel: u32,
    pack: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// n_pairs base Gram matrices, n1 × n2 each, row-major.
@group(0) @binding(1) var<storage, read> gram: array<scalar>;
// consts[0] = 2^−(λ1+λ2), consts[1] = 1/12, consts[2] = 1/6 (computed on the host as the CPU does).
@group(0) @binding(2) var<storage, read> consts: array<scalar>;
// dF/dk of each pair, or (seeded) dF/dK at each of its points.
@group(0) @binding(3) var<storage, read> seeds: array<scalar>;
// Per pair n1·n2 + 1 values: dF/dG (row-major), then the kernel k.
@group(0) @binding(4) var<storage, read_write> grads: array<scalar>;
// Per pair the points of K on rows [r0, r1] (phase 0); after every pair's, in the same layout,
// K̄ at each point r, c ≥ 1 (phase 1; the backward pass's buffer is twice the forward's).
@group(0) @binding(5) var<storage, read_write> grid: array<scalar>;
// Per pair, three diagonals of K̄ of `rows` points each.
@group(0) @binding(6) var<storage, read_write> scratch: array<scalar>;
// Per pair, K's rows step, 2·step, … (checkpoints; row 0 is all ones).
@group(0) @binding(7) var<storage, read_write> ckpt: array<scalar>;
// Per pair, two slots of `cols` values: K̄ of the first row a block's reverse sweep wrote, for the
// block above (block k writes slot k mod 2 and reads slot (k + 1) mod 2).
@group(0) @binding(8) var<storage, read_write> edge: array<scalar>;

// Invocations per workgroup: the width of a strip.
const WG: u32 = 256u;
// Rows of the adjoint's diagonals kept in workgroup memory (3 × 512 values: 6 KiB in f32, 12 KiB in
// f64), as in sig_kernel_forward.wgsl: K's in phase 0, K̄'s in phase 1.
const SHARED_ROWS: u32 = 512u;

var<workgroup> adj: array<scalar, 1536>;

// Point (r, c) of pair `pair` in `grid` (r0 ≤ r ≤ r1).
fn at(pair: u32, r: u32, c: u32) -> u32 {
    return (pair * (params.r1 - params.r0 + 1u) + r - params.r0) * params.cols + c;
}

// Point (r, c) of pair `pair`'s K̄ in `grid`.
fn bar_at(pair: u32, r: u32, c: u32) -> u32 {
    return at(pair, r, c) + params.n_pairs * (params.r1 - params.r0 + 1u) * params.cols;
}

// Checkpoint row r (a multiple of step, 0 < r < rows − 1) of pair `pair` at column c.
fn ckpt_at(pair: u32, r: u32, c: u32) -> u32 {
    let per_pair = (params.rows - 2u) / params.step;
    return (pair * per_pair + r / params.step - 1u) * params.cols + c;
}

// Slot `block` mod 2 of pair `pair`'s edge at column c.
fn edge_at(pair: u32, block: u32, c: u32) -> u32 {
    return (pair * 2u + block % 2u) * params.cols + c;
}

// The block this dispatch works on.
fn block() -> u32 {
    if params.step == 0u {
        return 0u;
    }
    return params.r0 / params.step;
}

// Where point row r of diagonal s of pair `pair` keeps its adjoint in `scratch`.
fn slot(pair: u32, s: u32, r: u32) -> u32 {
    return (pair * 3u + s % 3u) * params.rows + r;
}

// Where point row r of diagonal s keeps its adjoint in `adj`.
fn near(s: u32, r: u32) -> u32 {
    return (s % 3u) * SHARED_ROWS + r;
}

// K̄ at row r of diagonal s: the row below the block from `edge`; else in `adj` when the grid's
// diagonals fit there, else in `scratch`.
fn kbar(pair: u32, s: u32, r: u32) -> scalar {
    if r > params.r1 {
        return edge[edge_at(pair, block() + 1u, s - r)];
    }
    if params.rows <= SHARED_ROWS {
        return adj[near(s, r)];
    }
    return scratch[slot(pair, s, r)];
}

// h of cell (i, j) of pair `pair` (its base cell's G, scaled).
fn cell_h(pair: u32, i: u32, j: u32) -> scalar {
    return gram[(pair * params.n1 + (i >> params.lam1)) * params.n2 + (j >> params.lam2)] * consts[0];
}

fn coef_a(h: scalar) -> scalar {
    let h2 = h * h * consts[1];
    return scalar(1.0) + scalar(0.5) * h + h2;
}

fn coef_b(h: scalar) -> scalar {
    let h2 = h * h * consts[1];
    return scalar(1.0) - h2;
}

// Phase 0: K on diagonals [d_begin, d_end).
fn forward(pair: u32, lid: u32) {
    let rows = params.rows;
    let cols = params.cols;
    let in_adj = rows <= SHARED_ROWS;
    if in_adj {
        // Diagonals d_begin − 1 and d_begin − 2 of the block, which the dispatch before wrote.
        for (var r = params.r0 + lid; r <= params.r1; r += WG) {
            if params.d_begin > r && params.d_begin - 1u - r < cols {
                adj[near(params.d_begin - 1u, r)] = grid[at(pair, r, params.d_begin - 1u - r)];
            }
            if params.d_begin >= r + 2u && params.d_begin - 2u - r < cols {
                adj[near(params.d_begin - 2u, r)] = grid[at(pair, r, params.d_begin - 2u - r)];
            }
        }
        workgroupBarrier();
    }
    for (var s = params.d_begin; s < params.d_end; s++) {
        // The block's points on diagonal s: rows max(r0, s − (cols − 1)) ..= min(s, r1).
        var r_lo = params.r0;
        if s >= cols && s - (cols - 1u) > r_lo {
            r_lo = s - (cols - 1u);
        }
        let r_hi = min(s, params.r1);
        // The same trip count in every invocation, so the barrier below is in uniform control flow.
        var strips = 0u;
        if r_hi >= r_lo {
            strips = (r_hi - r_lo) / WG + 1u;
        }
        for (var k = 0u; k < strips; k++) {
            let r = r_lo + k * WG + lid;
            if r <= r_hi {
                let c = s - r;
                var v = scalar(1.0);
                if r == params.r0 && r > 0u {
                    // The block's first row: its checkpoint.
                    v = ckpt[ckpt_at(pair, r, c)];
                } else if r > 0u && c > 0u {
                    let h = cell_h(pair, r - 1u, c - 1u);
                    if in_adj {
                        v = (adj[near(s - 1u, r)] + adj[near(s - 1u, r - 1u)]) * coef_a(h)
                            - adj[near(s - 2u, r - 1u)] * coef_b(h);
                    } else {
                        v = (grid[at(pair, r, c - 1u)] + grid[at(pair, r - 1u, c)]) * coef_a(h)
                            - grid[at(pair, r - 1u, c - 1u)] * coef_b(h);
                    }
                }
                if in_adj {
                    adj[near(s, r)] = v;
                }
                grid[at(pair, r, c)] = v;
                if params.step > 0u && r > params.r0 && r < rows - 1u && r % params.step == 0u {
                    ckpt[ckpt_at(pair, r, c)] = v;
                }
            }
        }
        // Within a dispatch the sweep reads `grid` only where the diagonals are not in `adj`.
        if in_adj {
            workgroupBarrier();
        } else {
            storageBarrier();
        }
    }
    let cells = params.n1 * params.n2;
    if lid == 0u && params.d_end == rows + cols - 1u {
        // The last point, from where the barrier above made it visible.
        var k: scalar;
        if in_adj {
            k = adj[near(rows + cols - 2u, rows - 1u)];
        } else {
            k = grid[at(pair, rows - 1u, cols - 1u)];
        }
        grads[pair * (cells + 1u) + cells] = k;
    }
}

// Phase 1: K̄ on diagonals [d_begin, d_end), the last first.
fn backward(pair: u32, lid: u32) {
    let last_r = params.rows - 1u;
    let last_c = params.cols - 1u;
    let in_adj = params.rows <= SHARED_ROWS;
    if in_adj {
        for (var r = lid; r < params.rows; r += WG) {
            adj[near(params.d_end, r)] = scratch[slot(pair, params.d_end, r)];
            adj[near(params.d_end + 1u, r)] = scratch[slot(pair, params.d_end + 1u, r)];
        }
        workgroupBarrier();
    }
    for (var t = params.d_end; t > params.d_begin; t--) {
        let s = t - 1u;
        // Diagonal s holds the block's points with r, c ≥ 1 at rows
        // max(r0 + 1, s − last_c) ..= min(s − 1, r1).
        var r_lo = params.r0 + 1u;
        if s > last_c + r_lo {
            r_lo = s - last_c;
        }
        var r_hi = 0u;
        if s >= 1u {
            r_hi = min(s - 1u, params.r1);
        }
        var strips = 0u;
        if r_hi >= r_lo {
            strips = (r_hi - r_lo) / WG + 1u;
        }
        for (var k = 0u; k < strips; k++) {
            let r = r_lo + k * WG + lid;
            if r <= r_hi {
                let c = s - r;
                var v = scalar(0.0);
                if params.seeded == 1u {
                    v = seeds[(pair * params.rows + r) * params.cols + c];
                } else if r == last_r && c == last_c {
                    v = seeds[pair];
                }
                if c < last_c {
                    v = v + kbar(pair, s + 1u, r) * coef_a(cell_h(pair, r - 1u, c));
                }
                if r < last_r {
                    let a = coef_a(cell_h(pair, r, c - 1u));
                    if c < last_c {
                        v = v + (kbar(pair, s + 1u, r + 1u) * a
                            - kbar(pair, s + 2u, r + 1u) * coef_b(cell_h(pair, r, c)));
                    } else {
                        v = v + kbar(pair, s + 1u, r + 1u) * a;
                    }
                }
                if in_adj {
                    adj[near(s, r)] = v;
                } else {
                    scratch[slot(pair, s, r)] = v;
                }
                if r == params.r0 + 1u && params.r0 > 0u {
                    // The block above reads this row as the one below it.
                    edge[edge_at(pair, block(), c)] = v;
                }
                grid[bar_at(pair, r, c)] = v;
            }
        }
        // Invocations share only K̄'s diagonals within a dispatch (the stored K̄ and the edge rows
        // are read by later dispatches), so with them in workgroup memory a workgroup barrier is
        // enough.
        if in_adj {
            workgroupBarrier();
        } else {
            storageBarrier();
            workgroupBarrier();
        }
    }
    if in_adj {
        for (var r = lid; r < params.rows; r += WG) {
            scratch[slot(pair, params.d_begin, r)] = adj[near(params.d_begin, r)];
            scratch[slot(pair, params.d_begin + 1u, r)] = adj[near(params.d_begin + 1u, r)];
        }
    }
}

// Phase 2: dF/dG of the base cells [d_begin, d_end).
fn reduce(pair: u32, lid: u32) {
    let cells = params.n1 * params.n2;
    let sixth = consts[2];
    let sub1 = 1u << params.lam1;
    let sub2 = 1u << params.lam2;
    let strips = (params.d_end - params.d_begin + WG - 1u) / WG;
    for (var k = 0u; k < strips; k++) {
        let cell = params.d_begin + k * WG + lid;
        if cell < params.d_end {
            let a = cell / params.n2;
            let b = cell % params.n2;
            var acc = scalar(0.0);
            for (var i = sub1; i > 0u; i--) {
                let r = (a << params.lam1) + i;
                var row = scalar(0.0);
                for (var j = 0u; j < sub2; j++) {
                    let c = (b << params.lam2) + j + 1u;
                    let h = cell_h(pair, r - 1u, c - 1u);
                    let dh = grid[bar_at(pair, r, c)] * ((grid[at(pair, r - 1u, c)]
                        + grid[at(pair, r, c - 1u)]) * (scalar(0.5) + h * sixth)
                        + grid[at(pair, r - 1u, c - 1u)] * h * sixth);
                    row = row + dh;
                }
                acc = acc + row;
            }
            grads[pair * (cells + 1u) + cell] = acc * consts[0];
        }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let pair = wid.x;
    if pair >= params.n_pairs {
        return;
    }
    if params.phase == 0u {
        forward(pair, lid);
    } else if params.phase == 1u {
        backward(pair, lid);
    } else {
        reduce(pair, lid);
    }
}
