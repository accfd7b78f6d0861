//! The kernel table: every WGSL shader of `shaders/`, with the bindings and workgroup size the Rust
//! side assumes. Bind-group layouts are built from this table, and `tests/suite/gpu_shaders.rs` checks it
//! against what naga reads from the shaders, so the two cannot drift apart.
//!
//! Each shader is one source specialised per precision by a text substitution: the source is written
//! for f32 and holds exactly one line that is `SCALAR_F32` (every other use of the type says
//! `scalar`); the f64 form replaces that line with `SCALAR_F64`. Nothing else differs, so both forms
//! share every line of index arithmetic.

use wgpu::naga::valid::Capabilities;

pub use crate::scalar::Precision;

impl Precision {
    /// The naga capabilities a kernel of this precision is allowed, and the device must have:
    /// f64 arithmetic only in the f64 form.
    pub fn capabilities(self) -> Capabilities {
        match self {
            Precision::F32 => Capabilities::empty(),
            Precision::F64 => Capabilities::FLOAT64,
        }
    }
}

/// The line every shader declares its scalar type with (the f32 form, as written).
pub const SCALAR_F32: &str = "alias scalar = f32;";
/// What `SCALAR_F32` becomes in the f64 form.
pub const SCALAR_F64: &str = "alias scalar = f64;";

/// How a binding is declared in WGSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    /// `var<uniform>`: the kernel's `Params`.
    Uniform,
    /// `var<storage, read>`.
    StorageRead,
    /// `var<storage, read_write>`.
    StorageReadWrite,
}

/// One binding of group 0.
#[derive(Clone, Copy, Debug)]
pub struct BindingSpec {
    pub binding: u32,
    /// The WGSL variable's name.
    pub name: &'static str,
    pub kind: BindingKind,
}

/// One compute kernel: `shaders/<name>.wgsl`, entry point [`ENTRY_POINT`].
#[derive(Debug)]
pub struct Kernel {
    /// The operation's one name: the shader file, its mirror (`src/gpu/mirror/<name>.rs`) and its tests.
    pub name: &'static str,
    /// The WGSL source as written (the f32 form).
    pub source: &'static str,
    pub workgroup_size: [u32; 3],
    /// Group 0's bindings, in binding order.
    pub bindings: &'static [BindingSpec],
    /// Bytes of the uniform block (`struct Params` in the WGSL; [`Params`] or [`SigKernelParams`]).
    pub params_size: usize,
    /// Shared WGSL functions appended to the source (`shaders/common/`; module-scope declarations
    /// may come in any order).
    pub helpers: &'static [&'static str],
}

/// `exp_neg(x)`, `e^x` for `x ≤ 0` in either precision.
const EXP_NEG: &str = include_str!("../../shaders/common/exp_neg.wgsl");
/// The uniform block of the Gram and chain kernels (`GramParams`).
const PAIR_PARAMS: &str = include_str!("../../shaders/common/pair_params.wgsl");
/// The uniform block, inputs and limits of the two `sig_coef` kernels (`SigCoefParams`).
const WORDS: &str = include_str!("../../shaders/common/words.wgsl");
/// The uniform block of the PDE kernels (`SigKernelParams`).
const SIG_KERNEL_PARAMS: &str = include_str!("../../shaders/common/sig_kernel_params.wgsl");
/// The PDE kernels' band of rows: its size and its diagonals' slots in workgroup memory.
pub(crate) const BANDS: &str = include_str!("../../shaders/common/bands.wgsl");
/// The inputs of the kernels over pairs of transformed paths, and `base_gram`.
const PAIRS: &str = include_str!("../../shaders/common/pairs.wgsl");
/// The point kernels and their slopes (`kernel_at`, `kappa`), with `ln_pos` and `power`.
const POINT_KERNEL: &str = include_str!("../../shaders/common/point_kernel.wgsl");

/// Every kernel's entry point.
pub const ENTRY_POINT: &str = "main";

/// Invocations per workgroup along x; the signature kernels run one invocation per path (the
/// signature-kernel PDE runs one workgroup per pair).
pub const WORKGROUP_SIZE: u32 = 64;

const fn binding(binding: u32, name: &'static str, kind: BindingKind) -> BindingSpec {
    BindingSpec {
        binding,
        name,
        kind,
    }
}

use BindingKind::{StorageRead, StorageReadWrite, Uniform};

/// The base Gram matrices of the signature-kernel PDE, on the device from the transformed paths: one
/// invocation per cell of every pair of a chunk.
pub const SIG_KERNEL_GRAM: Kernel = Kernel {
    name: "sig_kernel_gram",
    source: include_str!("../../shaders/sig_kernel_gram.wgsl"),
    workgroup_size: [WORKGROUP_SIZE, 1, 1],
    bindings: &[
        binding(0, "params", Uniform),
        binding(1, "side_a", StorageRead),
        binding(2, "side_b", StorageRead),
        binding(3, "pairs", StorageRead),
        binding(4, "consts", StorageRead),
        binding(5, "gram", StorageReadWrite),
    ],
    params_size: std::mem::size_of::<GramParams>(),
    helpers: &[PAIR_PARAMS, PAIRS, EXP_NEG, POINT_KERNEL],
};

/// `dF/dG` chained to the two transformed paths of each pair of a chunk: one dispatch per side, one
/// invocation per (pair, increment or point).
pub const SIG_KERNEL_CHAIN: Kernel = Kernel {
    name: "sig_kernel_chain",
    source: include_str!("../../shaders/sig_kernel_chain.wgsl"),
    workgroup_size: [WORKGROUP_SIZE, 1, 1],
    bindings: &[
        binding(0, "params", Uniform),
        binding(1, "side_a", StorageRead),
        binding(2, "side_b", StorageRead),
        binding(3, "pairs", StorageRead),
        binding(4, "consts", StorageRead),
        binding(5, "dgram", StorageRead),
        binding(6, "grads", StorageReadWrite),
    ],
    params_size: std::mem::size_of::<GramParams>(),
    helpers: &[PAIR_PARAMS, PAIRS, EXP_NEG, POINT_KERNEL],
};

/// The signature-kernel PDE swept along anti-diagonals in bands of rows: one workgroup per pair of a
/// chunk, or several pairs per workgroup on grids of one band (which compute their base Gram
/// matrices themselves).
pub const SIG_KERNEL_FORWARD: Kernel = Kernel {
    name: "sig_kernel_forward",
    source: include_str!("../../shaders/sig_kernel_forward.wgsl"),
    workgroup_size: [256, 1, 1],
    bindings: &[
        binding(0, "params", Uniform),
        binding(1, "side_a", StorageRead),
        binding(2, "side_b", StorageRead),
        binding(3, "pairs", StorageRead),
        binding(4, "consts", StorageRead),
        binding(5, "gram", StorageRead),
        binding(6, "scheme", StorageRead),
        binding(7, "kernels", StorageReadWrite),
        binding(8, "carry", StorageReadWrite),
    ],
    params_size: std::mem::size_of::<SigKernelParams>(),
    helpers: &[SIG_KERNEL_PARAMS, BANDS, PAIRS, EXP_NEG, POINT_KERNEL],
};

/// The exact adjoint of the signature-kernel PDE: `dF/dG` and the kernel of each pair of a chunk, one
/// workgroup per pair (forward grid and reverse sweep in bands of rows, and the reduction, as three
/// phases of dispatches).
pub const SIG_KERNEL_BACKWARD: Kernel = Kernel {
    name: "sig_kernel_backward",
    source: include_str!("../../shaders/sig_kernel_backward.wgsl"),
    workgroup_size: [256, 1, 1],
    bindings: &[
        binding(0, "params", Uniform),
        binding(1, "gram", StorageRead),
        binding(2, "consts", StorageRead),
        binding(3, "seeds", StorageRead),
        binding(4, "grads", StorageReadWrite),
        binding(5, "grid", StorageReadWrite),
        binding(6, "ckpt", StorageReadWrite),
        binding(7, "edge", StorageReadWrite),
    ],
    params_size: std::mem::size_of::<SigKernelParams>(),
    helpers: &[SIG_KERNEL_PARAMS, BANDS],
};

/// pySigLib's polynomial solver of the signature-kernel PDE and its adjoint: one workgroup per pair
/// of a chunk (several per workgroup where the grid is one short band), over a window of the
/// anti-diagonals of one band of the base grid's rows.
pub const SIG_KERNEL_POLYNOMIAL: Kernel = Kernel {
    name: "sig_kernel_polynomial",
    source: include_str!("../../shaders/sig_kernel_polynomial.wgsl"),
    workgroup_size: [64, 1, 1],
    bindings: &[
        binding(0, "params", Uniform),
        binding(1, "gram", StorageRead),
        binding(2, "tables", StorageRead),
        binding(3, "seeds", StorageRead),
        binding(4, "grads", StorageReadWrite),
        binding(5, "edges", StorageReadWrite),
        binding(6, "kept", StorageReadWrite),
        binding(7, "grid", StorageReadWrite),
    ],
    params_size: std::mem::size_of::<PolynomialParams>(),
    helpers: &[],
};

/// Chosen words' signature coefficients (`sig_coef`): one invocation per (path, word), over a
/// window of segments.
pub const SIG_COEF: Kernel = Kernel {
    name: "sig_coef",
    source: include_str!("../../shaders/sig_coef.wgsl"),
    workgroup_size: [WORKGROUP_SIZE, 1, 1],
    bindings: &[
        binding(0, "params", Uniform),
        binding(1, "points", StorageRead),
        binding(2, "letters", StorageRead),
        binding(3, "starts", StorageRead),
        binding(4, "outs", StorageRead),
        binding(5, "out", StorageReadWrite),
        binding(6, "state", StorageReadWrite),
    ],
    params_size: std::mem::size_of::<SigCoefParams>(),
    helpers: &[WORDS],
};

/// The uniform block of `sig_coef.wgsl` and `sig_coef_backprop.wgsl` (`struct Params` there, field
/// for field).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SigCoefParams {
    /// Paths in this dispatch, their points and channels.
    pub n_paths: u32,
    pub len: u32,
    pub dim: u32,
    /// Words, and the coefficients per output row.
    pub n_words: u32,
    pub out_row: u32,
    /// 1: every prefix's coefficient; 0: the word's only.
    pub prefixes: u32,
    /// The kernel's mode (see each shader), and the letters of all the words.
    pub mode: u32,
    pub n_letters: u32,
    /// The segments one dispatch crosses.
    pub seg_lo: u32,
    pub seg_hi: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// The gradient of chosen words' signature coefficients: one invocation per (path, word) for the
/// adjoint, then one per (path, point, channel) for the points' gradient.
pub const SIG_COEF_BACKPROP: Kernel = Kernel {
    name: "sig_coef_backprop",
    source: include_str!("../../shaders/sig_coef_backprop.wgsl"),
    workgroup_size: [WORKGROUP_SIZE, 1, 1],
    bindings: &[
        binding(0, "params", Uniform),
        binding(1, "points", StorageRead),
        binding(2, "letters", StorageRead),
        binding(3, "starts", StorageRead),
        binding(4, "outs", StorageRead),
        binding(5, "derivs", StorageRead),
        binding(6, "dd", StorageReadWrite),
        binding(7, "grads", StorageReadWrite),
        binding(8, "state", StorageReadWrite),
    ],
    params_size: std::mem::size_of::<SigCoefParams>(),
    helpers: &[WORDS],
};

/// Every kernel, by name.
pub const KERNELS: &[&Kernel] = &[
    &SIG_COEF,
    &SIG_COEF_BACKPROP,
    &SIG_KERNEL_GRAM,
    &SIG_KERNEL_CHAIN,
    &SIG_KERNEL_FORWARD,
    &SIG_KERNEL_BACKWARD,
    &SIG_KERNEL_POLYNOMIAL,
];

impl Kernel {
    /// The WGSL source specialised for `precision` (see the module docs for the substitution).
    pub fn wgsl(&self, precision: Precision) -> String {
        let source: String = std::iter::once(self.source)
            .chain(self.helpers.iter().copied())
            .collect();
        match precision {
            Precision::F32 => source,
            // Whole lines only, so that a comment quoting the alias is left alone.
            Precision::F64 => source
                .split_inclusive('\n')
                .map(|line| {
                    if line.trim() == SCALAR_F32 {
                        line.replacen(SCALAR_F32, SCALAR_F64, 1)
                    } else {
                        line.to_string()
                    }
                })
                .collect(),
        }
    }
}

/// The uniform block every kernel reads (`struct Params` in the WGSL, field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    /// Paths in this dispatch, one invocation each.
    pub n_paths: u32,
    /// Points per path.
    pub length: u32,
    /// Channels of the original path.
    pub dim: u32,
    /// Channels of an increment: `dim·(1 + lead_lag) + time_aug`.
    pub aug_dim: u32,
    pub degree: u32,
    pub lead_lag: u32,
    pub time_aug: u32,
    /// Forward: each output row starts with the constant 1. Backward: the rows of `sigs` and
    /// `sig_derivs` start with the level-0 term.
    pub scalar_term: u32,
    /// The increments `[t_begin, t_end)` this dispatch processes (a sweep may take several dispatches:
    /// forward in increasing order, backward in decreasing order).
    pub t_begin: u32,
    pub t_end: u32,
}

/// The uniform block of `sig_kernel_forward.wgsl` and `sig_kernel_backward.wgsl` (`struct Params`
/// there, field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SigKernelParams {
    /// Pairs in this dispatch.
    pub n_pairs: u32,
    /// Increments of the two transformed paths: the base Gram matrix is `n1 × n2`.
    pub n1: u32,
    pub n2: u32,
    /// Dyadic orders.
    pub lam1: u32,
    pub lam2: u32,
    /// Points of the refined grid: `(n1 << lam1) + 1` by `(n2 << lam2) + 1`.
    pub rows: u32,
    pub cols: u32,
    /// The anti-diagonals `[d_begin, d_end)` this dispatch sweeps (`sig_kernel_backward`'s reduction:
    /// the base cells).
    pub d_begin: u32,
    pub d_end: u32,
    /// `sig_kernel_backward`: the pass this dispatch runs (0 forward grid, 1 reverse sweep, 2
    /// reduction to `dF/dG`); 0 for `sig_kernel_forward`.
    pub phase: u32,
    /// `sig_kernel_backward`: the rows `[r0, r1]` of the grid its buffer holds (all of them, or one
    /// block between checkpoints).
    pub r0: u32,
    pub r1: u32,
    /// `sig_kernel_backward`: rows between checkpoints (0: the grid is held whole).
    pub step: u32,
    /// `sig_kernel_backward`: 1 when the seeds are `dF/dK` at every point, 0 for `dF/dk` per pair.
    pub seeded: u32,
    /// `sig_kernel_forward`'s row walk, which computes G itself: the static kernel, as
    /// [`GramParams`] has it.
    pub dim: u32,
    pub kind: u32,
    pub point_kernel: u32,
    /// `sig_kernel_forward`: pairs per workgroup (more than one only for the row walk).
    pub pack: u32,
    /// `sig_kernel_backward`: the band of rows `[b0, b1]` (at most one workgroup's worth) that
    /// phases 0 and 1 sweep, one invocation per row.
    pub b0: u32,
    pub b1: u32,
}

/// The uniform block of `sig_kernel_polynomial.wgsl` (`struct Params` there, field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PolynomialParams {
    /// Pairs in this dispatch.
    pub n_pairs: u32,
    /// Increments of the two transformed paths: the base Gram matrix is `n1 × n2`.
    pub n1: u32,
    pub n2: u32,
    /// Coefficients per edge: the order plus one.
    pub size: u32,
    /// The band's anti-diagonals of cells `[d_begin, d_end)` this dispatch sweeps.
    pub d_begin: u32,
    pub d_end: u32,
    /// 0: the forward sweep; 1: the adjoint's, last diagonal first.
    pub mode: u32,
    /// Bit 0: keep every cell's incoming edges; bit 1: write every corner's `K`; bit 2: the seeds
    /// are `dF/dK` at every corner.
    pub flags: u32,
    /// Where the forward sweep writes each pair's kernel: `grads[pair·k_stride + k_at]`.
    pub k_stride: u32,
    pub k_at: u32,
    /// The band's rows `b0 ..= b1` (`d_begin`, `d_end` count the band's own diagonals).
    pub b0: u32,
    pub b1: u32,
    /// Pairs per workgroup: a power of two, more than 1 only where the grid is one band.
    pub pack: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// The uniform block of `sig_kernel_gram.wgsl` and `sig_kernel_chain.wgsl` (`struct Params` there,
/// field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GramParams {
    /// Pairs in this dispatch.
    pub n_pairs: u32,
    /// Increments of the two transformed paths: the base Gram matrix is `n1 × n2`.
    pub n1: u32,
    pub n2: u32,
    /// Channels of the transformed paths.
    pub dim: u32,
    /// 0: a bilinear kernel from increments; 1: a point kernel from points.
    pub kind: u32,
    /// `sig_kernel_chain`: the side differentiated (0 path a, 1 path b).
    pub side: u32,
    /// Which point kernel (`shaders/common/point_kernel.wgsl`), where `kind` is 1.
    pub point_kernel: u32,
    pub _pad: u32,
}
