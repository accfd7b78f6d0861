// The workgroup slots of the band walk that sig_kernel_forward.wgsl and sig_kernel_backward.wgsl
// share (appended to both): a band of at most WG rows of the refined grid, `params.pack` pairs per
// workgroup with WG / pack invocations each, one per row, and the band's last three diagonals of
// each pair in `diag` (K forward; K, then K̄, backward). src/gpu/mirror/mod.rs (`Slots`) mirrors it.

// Invocations per workgroup: the most rows of a band.
const WG: u32 = 256u;

// Diagonal t of row b0 + l of the workgroup's pair `sub` at (sub·3 + t % 3)·(WG / pack) + l (3 KiB
// in f32, 6 KiB in f64).
var<workgroup> diag: array<scalar, 768>;

// Where this invocation's pair keeps its diagonals in `diag`: its first slot, and the band's rows
// there (WG / pack). Set by `enter_slots`.
var<private> diag_base: u32;
var<private> span: u32;

// Take the slots of invocation `lid`: its pair is the workgroup's lid / span-th, its row the
// (lid % span)-th of the band.
fn enter_slots(lid: u32) {
    span = WG / params.pack;
    diag_base = lid / span * 3u * span;
}

// Where row b0 + l of this invocation's pair keeps its point of diagonal t in `diag`.
fn near(t: u32, l: u32) -> u32 {
    return diag_base + (t % 3u) * span + l;
}
