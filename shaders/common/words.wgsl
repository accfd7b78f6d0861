// What sig_coef.wgsl and sig_coef_backprop.wgsl share, appended to both: the uniform block
// (`SigCoefParams` in src/gpu/kernels.rs is this struct), the paths and words they read, and the
// limits of a word on the GPU.

struct Params {
    // Paths in this dispatch, and their points and channels.
    n_paths: u32,
    len: u32,
    dim: u32,
    // Words, and the values per path: one per word, or one per prefix (`prefixes`).
    n_words: u32,
    out_row: u32,
    prefixes: u32,
    // Each kernel's mode (see there); the letters of all the words (sig_coef_backprop.wgsl: the
    // slots of a row of `dd`).
    mode: u32,
    n_letters: u32,
    // The segments this dispatch crosses.
    seg_lo: u32,
    seg_hi: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// n_paths rows of len·dim points.
@group(0) @binding(1) var<storage, read> points: array<scalar>;
// The words' letters end to end; word w is letters[starts[w] .. starts[w + 1]].
@group(0) @binding(2) var<storage, read> letters: array<u32>;
@group(0) @binding(3) var<storage, read> starts: array<u32>;
// Where word w's values (coefficients, or their derivatives) start in a path's row.
@group(0) @binding(4) var<storage, read> outs: array<u32>;

const WG: u32 = 64u;
// The longest word on the GPU (the host runs longer ones on the CPU).
const MAX_K: u32 = 32u;
// Scalars of `state` per (path, word) item.
const STATE: u32 = 66u;
