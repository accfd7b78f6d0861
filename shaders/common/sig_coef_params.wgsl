// The uniform block of sig_coef.wgsl and sig_coef_backprop.wgsl (`SigCoefParams` in
// src/gpu/kernels.rs is this struct), appended to both.

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
