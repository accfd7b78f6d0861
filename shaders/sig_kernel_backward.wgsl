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
// Layout: workgroups of 256 invocations; the sweeps run one pair per workgroup (several where the
// grid is one band: `pack`), the reduction one invocation per base cell. The grid's rows are cut
// into bands of WG rows, the last one shorter ([b0, b1], set by the host), swept one after the
// other, one invocation per row of the band: invocation l owns row b0 + l and walks it along the band's own anti-diagonals
// (t = r − b0 + c), with a barrier between diagonals, so each invocation computes one point per
// diagonal and the last three diagonals of the band live in workgroup memory (`diag`, 3 × WG values,
// whatever the grid's height). Every h is loaded four diagonals before it is needed, and the row
// that borders the band (above it forward, below it backward) is read the same way, so the chain of
// dependent steps touches workgroup memory only. The work is cut into dispatches by `phase`:
//
//   0. the forward sweep of band [b0, b1] over its diagonals [d_begin, d_end), storing the grid K of
//      the pair in `grid` (row-major, rows [r0, r1]); the band's first row is the block's first
//      (a checkpoint, or row 0 of ones) or follows the row above it in `grid`; the dispatch that
//      ends at the grid's last point also writes the kernel;
//   1. the reverse sweep of band [b0, b1] (rows at least r0 + 1) over its diagonals
//      [d_begin, d_end), the last diagonal first, storing each point's K̄ in the second half of
//      `grid`; the row below the band is read from there, or from `edge` below the block;
//   2. dh of every point from K̄ and K, reduced over each base cell, for the base cells
//      [d_begin, d_end) (row-major index), one invocation per cell of every pair: rows of sub-cells
//      in decreasing order, columns increasing within a row, times 2^−(λ1+λ2), as the CPU sums
//      them.
//
// A dispatch starts from the two diagonals before it (after it, backward), read back from `grid`, so
// windows of diagonals keep every invocation within the loop iterations per dispatch that the
// adapter allows (lavapipe stops every loop after 65535 in all).

alias scalar = f32;

// Params and params: shaders/common/sig_kernel_params.wgsl; WG, the band's diagonals `diag` (K in
// phase 0, K̄ in phase 1) and their slots (`enter_slots`, `near`): shaders/common/bands.wgsl; both
// appended by the host.
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
// Per pair, K's rows step, 2·step, … (checkpoints; row 0 is all ones).
@group(0) @binding(6) var<storage, read_write> ckpt: array<scalar>;
// Per pair, two slots of `cols` values: K̄ of the first row a block's reverse sweep wrote, for the
// block above (block k writes slot k mod 2 and reads slot (k + 1) mod 2).
@group(0) @binding(7) var<storage, read_write> edge: array<scalar>;

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

// h of cell (i, j) of pair `pair` (its base cell's G, scaled).
fn cell_h(pair: u32, i: u32, j: u32) -> scalar {
    return gram[(pair * params.n1 + (i >> params.lam1)) * params.n2 + (j >> params.lam2)] * consts[0];
}

// h of cell (i, j), or 0 where the grid has no such cell: what the sweeps load ahead.
fn h_ahead(pair: u32, i: i32, j: i32) -> scalar {
    if i < 0 || j < 0 || i >= i32(params.rows) - 1 || j >= i32(params.cols) - 1 {
        return scalar(0.0);
    }
    return cell_h(pair, u32(i), u32(j));
}

fn coef_a(h: scalar) -> scalar {
    let h2 = h * h * consts[1];
    return scalar(1.0) + scalar(0.5) * h + h2;
}

fn coef_b(h: scalar) -> scalar {
    let h2 = h * h * consts[1];
    return scalar(1.0) - h2;
}

// K of the row above the band at column c, where the band's first invocation needs it (the band
// starts below the block's first row), else 0.
fn above(pair: u32, l: u32, c: i32) -> scalar {
    if pair >= params.n_pairs || l != 0u || params.b0 <= params.r0 || c < 0
        || c >= i32(params.cols) {
        return scalar(0.0);
    }
    return grid[at(pair, params.b0 - 1u, u32(c))];
}

// Phase 0: K of band [b0, b1] on its diagonals [d_begin, d_end), row b0 + l of pair `pair`.
fn forward(pair: u32, l: u32) {
    let rows = params.rows;
    let cols = params.cols;
    let r = params.b0 + l;
    let live = pair < params.n_pairs && r <= params.b1;
    // The two diagonals before d_begin, which the dispatch before wrote.
    for (var k = 1u; k <= 2u; k++) {
        if live && params.d_begin >= l + k && params.d_begin - k - l < cols {
            diag[near(params.d_begin - k, l)] = grid[at(pair, r, params.d_begin - k - l)];
        }
    }
    workgroupBarrier();
    // Ahead of the walk: h of the cell above-left of each point (g0 … g3), and for the first
    // invocation the row above the band (u0 … u3, `corner` one column behind). Row r meets diagonal t
    // at column t − l.
    let i = i32(r) - 1;
    var c = i32(params.d_begin) - i32(l);
    if !live {
        c = i32(cols);
    }
    var g0 = h_ahead(pair, i, c - 1);
    var g1 = h_ahead(pair, i, c);
    var g2 = h_ahead(pair, i, c + 1);
    var g3 = h_ahead(pair, i, c + 2);
    var corner = above(pair, l, c - 1);
    var u0 = above(pair, l, c);
    var u1 = above(pair, l, c + 1);
    var u2 = above(pair, l, c + 2);
    var u3 = above(pair, l, c + 3);
    for (var t = params.d_begin; t < params.d_end; t++) {
        let h = g0;
        let up = u0;
        let up_left = corner;
        g0 = g1;
        g1 = g2;
        g2 = g3;
        g3 = h_ahead(pair, i, c + 3);
        corner = u0;
        u0 = u1;
        u1 = u2;
        u2 = u3;
        u3 = above(pair, l, c + 4);
        if c >= 0 && c < i32(cols) {
            let cc = u32(c);
            var v = scalar(1.0);
            if r == params.r0 && r > 0u {
                // The block's first row: its checkpoint.
                v = ckpt[ckpt_at(pair, r, cc)];
            } else if r > 0u && cc > 0u {
                var k_up = up;
                var k_corner = up_left;
                if l > 0u {
                    k_up = diag[near(t - 1u, l - 1u)];
                    k_corner = diag[near(t - 2u, l - 1u)];
                }
                v = (diag[near(t - 1u, l)] + k_up) * coef_a(h) - k_corner * coef_b(h);
            }
            diag[near(t, l)] = v;
            grid[at(pair, r, cc)] = v;
            if params.step > 0u && r > params.r0 && r < rows - 1u && r % params.step == 0u {
                ckpt[ckpt_at(pair, r, cc)] = v;
            }
            if r == rows - 1u && cc == cols - 1u {
                let cells = params.n1 * params.n2;
                grads[pair * (cells + 1u) + cells] = v;
            }
        }
        c = c + 1;
        workgroupBarrier();
    }
}

// K̄ of the row below the band at column c, where the band's last row needs it (not the grid's
// last row), else 0: from `grid`, or from `edge` below the block.
fn below(pair: u32, r: u32, c: i32) -> scalar {
    if pair >= params.n_pairs || r != params.b1 || r + 1u >= params.rows || c < 1
        || c >= i32(params.cols) {
        return scalar(0.0);
    }
    if r + 1u > params.r1 {
        return edge[edge_at(pair, block() + 1u, u32(c))];
    }
    return grid[bar_at(pair, r + 1u, u32(c))];
}

// Phase 1: K̄ of band [b0, b1] on its diagonals [d_begin, d_end), the last first, row b0 + l of
// pair `pair`.
fn backward(pair: u32, l: u32) {
    let last_r = params.rows - 1u;
    let last_c = params.cols - 1u;
    let r = params.b0 + l;
    let live = pair < params.n_pairs && r <= params.b1;
    // The two diagonals after d_end − 1, which the dispatch before wrote.
    for (var k = 0u; k < 2u; k++) {
        let t = params.d_end + k;
        if live && t > l && t - l <= last_c {
            diag[near(t, l)] = grid[bar_at(pair, r, t - l)];
        }
    }
    workgroupBarrier();
    // Ahead of the walk (leftwards): h of the cells (r, c) and (r, c − 1) (x0, x1 … x4), of the cell
    // above-right (r − 1, c) (y0 … y3), and for the last invocation the row below the band (z0 … z3,
    // `right` one column behind).
    let ri = i32(r);
    var c = i32(params.d_end) - 1 - i32(l);
    if !live {
        c = -1;
    }
    var x0 = h_ahead(pair, ri, c);
    var x1 = h_ahead(pair, ri, c - 1);
    var x2 = h_ahead(pair, ri, c - 2);
    var x3 = h_ahead(pair, ri, c - 3);
    var x4 = h_ahead(pair, ri, c - 4);
    var y0 = h_ahead(pair, ri - 1, c);
    var y1 = h_ahead(pair, ri - 1, c - 1);
    var y2 = h_ahead(pair, ri - 1, c - 2);
    var y3 = h_ahead(pair, ri - 1, c - 3);
    var right = below(pair, r, c + 1);
    var z0 = below(pair, r, c);
    var z1 = below(pair, r, c - 1);
    var z2 = below(pair, r, c - 2);
    var z3 = below(pair, r, c - 3);
    for (var t = params.d_end; t > params.d_begin; t--) {
        let s = t - 1u;
        let h_here = x0;
        let h_left = x1;
        let h_up = y0;
        let k_below = z0;
        let k_below_right = right;
        x0 = x1;
        x1 = x2;
        x2 = x3;
        x3 = x4;
        x4 = h_ahead(pair, ri, c - 5);
        y0 = y1;
        y1 = y2;
        y2 = y3;
        y3 = h_ahead(pair, ri - 1, c - 4);
        right = z0;
        z0 = z1;
        z1 = z2;
        z2 = z3;
        z3 = below(pair, r, c - 4);
        if c >= 1 && c <= i32(last_c) {
            let cc = u32(c);
            var v = scalar(0.0);
            if params.seeded == 1u {
                v = seeds[(pair * params.rows + r) * params.cols + cc];
            } else if r == last_r && cc == last_c {
                v = seeds[pair];
            }
            if cc < last_c {
                v = v + diag[near(s + 1u, l)] * coef_a(h_up);
            }
            if r < last_r {
                var kb = k_below;
                var kbr = k_below_right;
                if r < params.b1 {
                    kb = diag[near(s + 1u, l + 1u)];
                    kbr = diag[near(s + 2u, l + 1u)];
                }
                let a = coef_a(h_left);
                if cc < last_c {
                    v = v + (kb * a - kbr * coef_b(h_here));
                } else {
                    v = v + kb * a;
                }
            }
            diag[near(s, l)] = v;
            if r == params.r0 + 1u && params.r0 > 0u {
                // The block above reads this row as the one below it.
                edge[edge_at(pair, block(), cc)] = v;
            }
            grid[bar_at(pair, r, cc)] = v;
        }
        c = c - 1;
        workgroupBarrier();
    }
}

// Phase 2: dF/dG of base cell `cell` of pair `pair`.
fn reduce(pair: u32, cell: u32) {
    let cells = params.n1 * params.n2;
    let sixth = consts[2];
    let sub1 = 1u << params.lam1;
    let sub2 = 1u << params.lam2;
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

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Workgroups in an (x, y) grid where a chunk has more than one dimension allows.
    let group = wid.y * groups.x + wid.x;
    if params.phase == 2u {
        // One invocation per base cell [d_begin, d_end) of every pair: `per_pair` workgroups each.
        let per_pair = (params.d_end - params.d_begin + WG - 1u) / WG;
        let pair = group / per_pair;
        let cell = params.d_begin + (group % per_pair) * WG + lid;
        if pair < params.n_pairs && cell < params.d_end {
            reduce(pair, cell);
        }
        return;
    }
    // The sweeps: `pack` pairs per workgroup, WG / pack invocations each.
    enter_slots(lid);
    let first = group * params.pack;
    if first >= params.n_pairs {
        return;
    }
    if params.phase == 0u {
        forward(first + lid / span, lid % span);
    } else {
        backward(first + lid / span, lid % span);
    }
}
