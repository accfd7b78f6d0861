// lyndon_solve: coordinates in the Lyndon bracket basis from the logarithm's coefficients at the
// Lyndon words, and the transposed solve for the gradients (as src/logsig/lyndon.rs, Triangular).
//
// The matrix M[v, w] (the coefficient of the Lyndon word v in the bracket P_w) is unit lower
// triangular and block diagonal by word length, so each length is an independent triangle: one
// invocation per (row, length) substitutes down its triangle in place.
//   mode 0: c_r = ℓ_r − Σ_{q<r} M[r, q]·c_q, r ascending;
//   mode 1: the transpose, r descending: y_q −= M[r, q]·y_r for every q that row r reads.
// `row_start`, `cols`, `vals`: M's strict lower triangle by rows (CSR); `levels[k]`: the first word
// of length k + 1 (and the word count at the end). `coords`: rows of params.g_stride values.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> row_start: array<u32>;
@group(0) @binding(2) var<storage, read> cols: array<u32>;
@group(0) @binding(3) var<storage, read> vals: array<scalar>;
@group(0) @binding(4) var<storage, read> levels: array<u32>;
@group(0) @binding(5) var<storage, read_write> coords: array<scalar>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = linear_id(wid, nwg, lid);
    if id >= params.total {
        return;
    }
    let row = (id / N) * params.g_stride;
    let k = id % N;
    let begin = levels[k];
    let end = levels[k + 1u];
    if params.mode == 0u {
        for (var r = begin; r < end; r++) {
            var acc = coords[row + r];
            for (var e = row_start[r]; e < row_start[r + 1u]; e++) {
                acc -= vals[e] * coords[row + cols[e]];
            }
            coords[row + r] = acc;
        }
        return;
    }
    for (var i = end; i > begin; i--) {
        let r = i - 1u;
        let y = coords[row + r];
        for (var e = row_start[r]; e < row_start[r + 1u]; e++) {
            coords[row + cols[e]] -= vals[e] * y;
        }
    }
}
