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
// Layout: the grid's rows are cut into bands of WG rows, the last one shorter ([b0, b1], set by the
// host), swept one after the other, one invocation per row of the band: invocation l owns row b0 + l
// and walks it along the band's own anti-diagonals (t = r − b0 + c), with a barrier between
// diagonals, so each invocation computes one point per diagonal and the band's last three diagonals
// live in workgroup memory (3 × WG values, whatever the grid's height). Each h is formed 8 diagonals
// before it is needed, and the row above the band (the band before's last, carried in `carry`) is
// read 4 ahead, so the chain of dependent steps touches workgroup memory only.
//
// - A grid of one band (at most WG rows: short paths, the Gram matrices of many small pairs) packs
//   `pack` pairs per workgroup, WG / pack invocations each (the host picks the most that the rows
//   allow), so no invocation idles on a pair with fewer rows than the workgroup. Each invocation
//   forms its cells' G itself from the pair's paths as it walks its row (`ahead`, with
//   shaders/common/pairs.wgsl), so no pass writes n1 × n2 values per pair first (along a diagonal
//   the invocations would read a row-major G one row apart each).
// - Taller grids run one pair per workgroup and read h from the base Gram matrices that
//   sig_kernel_gram.wgsl wrote earlier in the same submission: with dyadic refinement each base cell
//   serves 2^(λ1+λ2) refined cells, more than is worth recomputing.
//
// A band's sweep can be cut into dispatches over ranges of its diagonals ([d_begin, d_end)): a
// dispatch loads the two diagonals before d_begin from `carry` and stores its last two back, so no
// invocation runs more loop iterations per dispatch than the adapter allows (lavapipe stops every
// loop after 65535 in all). On a GPU without that budget each band is one dispatch.

alias scalar = f32;

// Params and params: shaders/common/sig_kernel_params.wgsl; WG, the band's diagonals `diag` and
// their slots (`enter_slots`, `near`): shaders/common/bands.wgsl; both appended by the host.
// Bindings 1–4 (the two sides' paths, the pairs, the static kernel's constants) and `base_gram`:
// shaders/common/pairs.wgsl, appended by the host with point_kernel.wgsl and exp_neg.wgsl.
// Grids of several bands: n_pairs base Gram matrices, n1 × n2 each, row-major.
@group(0) @binding(5) var<storage, read> gram: array<scalar>;
// scheme[0] = 2^−(λ1+λ2), scheme[1] = 1/12 (computed on the host exactly as the CPU does).
@group(0) @binding(6) var<storage, read> scheme: array<scalar>;
// One kernel per pair, written by the dispatch that sweeps the grid's last point.
@group(0) @binding(7) var<storage, read_write> kernels: array<scalar>;
// Per pair, what a sweep carries from one dispatch to the next (`carry_len` values): three
// diagonals of WG points (a band's last two, for its next window), then two rows of `cols` points
// (a band's last row, for the band below: band k writes slot k mod 2 and reads slot (k + 1) mod 2).
// Untouched (and a placeholder) where the grid is one band swept in one dispatch.
@group(0) @binding(8) var<storage, read_write> carry: array<scalar>;

// Values per pair in `carry`.
fn carry_len() -> u32 {
    return 3u * WG + 2u * params.cols;
}

// Where diagonal t of the band's row b0 + l of pair `pair` is carried.
fn slot(pair: u32, t: u32, l: u32) -> u32 {
    return pair * carry_len() + (t % 3u) * WG + l;
}

// Where column c of the last row of band `band` of pair `pair` is carried (slot `band` mod 2).
fn edge_at(pair: u32, band: u32, c: u32) -> u32 {
    return pair * carry_len() + 3u * WG + (band % 2u) * params.cols + c;
}

// The band this dispatch sweeps.
fn band() -> u32 {
    return params.b0 / WG;
}

// The point below-right of `up` and right of `left` (`corner` diagonally before), across a refined
// cell of increment h.
fn point(h: scalar, left: scalar, up: scalar, corner: scalar) -> scalar {
    let h2 = h * h * scheme[1];
    let a = scalar(1.0) + scalar(0.5) * h + h2;
    let b = scalar(1.0) - h2;
    return (left + up) * a - corner * b;
}

// Where the grid is one band, each invocation forms its row's G from the paths as it walks along
// the row, one column at a time (`ahead`'s calls): `walk_b` is the base column whose G is `walk_g`,
// and, for a point kernel, `walk_hi` and `walk_lo` are κ at that column's right-hand points
// (x_{a+1}, y_{b+1}) and (x_a, y_{b+1}), which the next column's G reuses as its left-hand ones.
// So a base column costs two κ, not four, and the 2^λ2 refined columns of one base column one G.
var<private> walk_b: i32;
var<private> walk_g: scalar;
var<private> walk_hi: scalar;
var<private> walk_lo: scalar;

// Whether the grid is one band (G formed in the sweep).
fn one_band() -> bool {
    return params.b1 - params.b0 + 1u == params.rows;
}

// Start row r's walk just before the refined cell whose bottom-right point is (r, c): κ at the
// left-hand points of that cell's base column (the first column where c is left of the grid).
fn walk_start(pair: u32, r: u32, c: i32) {
    var b = 0;
    if c >= 1 {
        b = (c - 1) >> params.lam2;
    }
    walk_b = b - 1;
    walk_g = scalar(0.0);
    walk_hi = scalar(0.0);
    walk_lo = scalar(0.0);
    if !one_band() || params.kind == 0u || r == 0u || r >= params.rows || c >= i32(params.cols) {
        return;
    }
    let a = (r - 1u) >> params.lam1;
    let p = point_rows(pair);
    walk_hi = kappa(p.x, a + 1u, p.y, u32(b));
    walk_lo = kappa(p.x, a, p.y, u32(b));
}

// The increment of the refined cell whose bottom-right point is (r, c), or 0 where no cell is (row or
// column 0, or past the grid): G of its base cell, scaled by 2^−(λ1+λ2); formed by the row's walk
// where the grid is one band (c one more than at the call before, from walk_start's), else read from
// `gram`. The walk's G equals base_gram's to the bit.
fn ahead(pair: u32, r: u32, c: i32) -> scalar {
    if r == 0u || r >= params.rows || c < 1 || c >= i32(params.cols) {
        return scalar(0.0);
    }
    let a = (r - 1u) >> params.lam1;
    let b = (u32(c) - 1u) >> params.lam2;
    if one_band() {
        if i32(b) != walk_b {
            // The next base column.
            if params.kind == 0u {
                walk_g = bilinear_gram(pair, a, b);
            } else {
                let p = point_rows(pair);
                let hi = kappa(p.x, a + 1u, p.y, b + 1u);
                let lo = kappa(p.x, a, p.y, b + 1u);
                walk_g = (hi - walk_hi) - (lo - walk_lo);
                walk_hi = hi;
                walk_lo = lo;
            }
            walk_b = i32(b);
        }
        return walk_g * scheme[0];
    }
    return gram[(pair * params.n1 + a) * params.n2 + b] * scheme[0];
}

// K of the row above the band at column c, where the band's first invocation needs it (every band
// but the first), else 0.
fn above(pair: u32, l: u32, c: i32) -> scalar {
    if pair >= params.n_pairs || l != 0u || params.b0 == 0u || c < 0 || c >= i32(params.cols) {
        return scalar(0.0);
    }
    return carry[edge_at(pair, band() + 1u, u32(c))];
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Workgroups in an (x, y) grid where a chunk has more than one dimension allows.
    let group = wid.y * groups.x + wid.x;
    let pack = params.pack;
    enter_slots(lid);
    let first = group * pack;
    if first >= params.n_pairs {
        return;
    }
    let rows = params.rows;
    let cols = params.cols;
    let pair = first + lid / span;
    let l = lid % span;
    let r = params.b0 + l;
    // Invocations past the band, or without a pair in the last workgroup, write nothing but meet
    // every barrier.
    let live = pair < params.n_pairs && r <= params.b1;
    // The two diagonals before d_begin, which the dispatch before stored.
    for (var k = 1u; k <= 2u; k++) {
        if live && params.d_begin >= l + k && params.d_begin - k - l < cols {
            diag[near(params.d_begin - k, l)] = carry[slot(pair, params.d_begin - k, l)];
        }
    }
    workgroupBarrier();
    // Row r meets diagonal t at column t − l: each invocation walks its row left to right with the
    // increments 8 columns ahead (g0 … g7) and, for the first, the row above 4 ahead (u0 … u3,
    // `corner` one column behind); the loads overlap the diagonals in between.
    var c = i32(params.d_begin) - i32(l);
    if !live {
        c = i32(cols);
    }
    walk_start(pair, r, c);
    var g0 = ahead(pair, r, c);
    var g1 = ahead(pair, r, c + 1);
    var g2 = ahead(pair, r, c + 2);
    var g3 = ahead(pair, r, c + 3);
    var g4 = ahead(pair, r, c + 4);
    var g5 = ahead(pair, r, c + 5);
    var g6 = ahead(pair, r, c + 6);
    var g7 = ahead(pair, r, c + 7);
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
        g3 = g4;
        g4 = g5;
        g5 = g6;
        g6 = g7;
        g7 = ahead(pair, r, c + 8);
        corner = u0;
        u0 = u1;
        u1 = u2;
        u2 = u3;
        u3 = above(pair, l, c + 4);
        if c >= 0 && c < i32(cols) {
            let cc = u32(c);
            var v = scalar(1.0);
            if r > 0u && cc > 0u {
                var k_up = up;
                var k_corner = up_left;
                if l > 0u {
                    k_up = diag[near(t - 1u, l - 1u)];
                    k_corner = diag[near(t - 2u, l - 1u)];
                }
                v = point(h, diag[near(t - 1u, l)], k_up, k_corner);
            }
            diag[near(t, l)] = v;
            if r == params.b1 && r < rows - 1u {
                // The band below reads this row as the one above it.
                carry[edge_at(pair, band(), cc)] = v;
            }
            if r == rows - 1u && cc == cols - 1u {
                kernels[pair] = v;
            }
        }
        c = c + 1;
        workgroupBarrier();
    }
    // The last two diagonals, for the band's next window if it has one.
    let band_end = params.b1 - params.b0 + cols;
    for (var k = 1u; k <= 2u; k++) {
        if live && params.d_end < band_end && params.d_end >= l + k && params.d_end - k - l < cols {
            carry[slot(pair, params.d_end - k, l)] = diag[near(params.d_end - k, l)];
        }
    }
}
