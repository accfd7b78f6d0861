//! The signature kernels' WGSL, specialised per key: a generated prelude of constants (dimension,
//! degree, dtype, flags, workgroup size and the index tables they imply), then the shared helpers of
//! `shaders/sig/common.wgsl` (and `increments.wgsl` where the kernel reads the paths), then the
//! kernel. With every size a constant, private arrays have fixed lengths and loops fixed bounds.

use crate::gpu::kernels::{BindingKind, BindingSpec, Precision};
use std::fmt::Write;

/// What a generated pipeline is specialised for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SigKey {
    /// Channels of an increment (after lead-lag and time augmentation).
    pub d: u32,
    pub degree: u32,
    /// Channels of the original path.
    pub dim: u32,
    pub lead_lag: bool,
    pub time_aug: bool,
    pub precision: Precision,
    /// Invocations per workgroup.
    pub wg: u32,
    /// `sig_backward` keeps each unit's state in workgroup memory (it fits the adapter's) instead
    /// of a slice of a storage buffer.
    pub shared_state: bool,
}

/// One signature kernel: `shaders/sig/<name>.wgsl`.
#[derive(Debug)]
pub struct SigKernel {
    pub name: &'static str,
    source: &'static str,
    /// Whether it reads the paths' increments (`increments.wgsl`).
    increments: bool,
    /// Whether its workgroup size is the key's (`sig_backward`, one workgroup per chunk); the others
    /// run [`DEFAULT_WG`] invocations per workgroup, one per work item.
    keyed_wg: bool,
    /// Group 0: the uniform, then storage buffers in binding order.
    pub bindings: &'static [BindingSpec],
}

const COMMON: &str = include_str!("../../../shaders/sig/common.wgsl");
const INCREMENTS: &str = include_str!("../../../shaders/sig/increments.wgsl");

const fn b(binding: u32, name: &'static str, kind: BindingKind) -> BindingSpec {
    BindingSpec {
        binding,
        name,
        kind,
    }
}
use BindingKind::{StorageRead as R, StorageReadWrite as W, Uniform as U};

pub const SIG_CHUNKS: SigKernel = SigKernel {
    name: "sig_chunks",
    source: include_str!("../../../shaders/sig/sig_chunks.wgsl"),
    increments: true,
    keyed_wg: false,
    bindings: &[
        b(0, "params", U),
        b(1, "paths", R),
        b(2, "consts", R),
        b(3, "chunks", W),
    ],
};

pub const SIG_COMBINE: SigKernel = SigKernel {
    name: "sig_combine",
    source: include_str!("../../../shaders/sig/sig_combine.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[
        b(0, "params", U),
        b(1, "src", R),
        b(2, "dst", W),
        b(3, "out", W),
    ],
};

pub const SIG_CONTRACT: SigKernel = SigKernel {
    name: "sig_contract",
    source: include_str!("../../../shaders/sig/sig_contract.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[
        b(0, "params", U),
        b(1, "derivs", R),
        b(2, "suffix", R),
        b(3, "ends", W),
    ],
};

pub const SIG_BACKWARD: SigKernel = SigKernel {
    name: "sig_backward",
    source: include_str!("../../../shaders/sig/sig_backward.wgsl"),
    increments: true,
    keyed_wg: true,
    bindings: &[
        b(0, "params", U),
        b(1, "paths", R),
        b(2, "consts", R),
        b(3, "checkpoints", R),
        b(4, "sigs", R),
        b(5, "ends", R),
        b(6, "dz", W),
        b(7, "scratch", W),
    ],
};

pub const SIG_COMBINE_BACKPROP: SigKernel = SigKernel {
    name: "sig_combine_backprop",
    source: include_str!("../../../shaders/sig/sig_combine_backprop.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[
        b(0, "params", U),
        b(1, "pairs", R),
        b(2, "derivs", R),
        b(3, "grads", W),
    ],
};

pub const SIG_JOIN: SigKernel = SigKernel {
    name: "sig_join",
    source: include_str!("../../../shaders/sig/sig_join.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[b(0, "params", U), b(1, "disp", R), b(2, "pairs", W)],
};

pub const SIG_PAIRS: SigKernel = SigKernel {
    name: "sig_pairs",
    source: include_str!("../../../shaders/sig/sig_pairs.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[b(0, "params", U), b(1, "src", R), b(2, "pairs", W)],
};

pub const SIG_JOIN_BACKPROP: SigKernel = SigKernel {
    name: "sig_join_backprop",
    source: include_str!("../../../shaders/sig/sig_join_backprop.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[
        b(0, "params", U),
        b(1, "disp", R),
        b(2, "grads", R),
        b(3, "dz", W),
    ],
};

pub const TENSOR_SERIES: SigKernel = SigKernel {
    name: "tensor_series",
    source: include_str!("../../../shaders/sig/tensor_series.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[
        b(0, "params", U),
        b(1, "sigs", R),
        b(2, "derivs", R),
        b(3, "chain", W),
        b(4, "dp", W),
        b(5, "dx", W),
        b(6, "positions", R),
    ],
};

pub const LYNDON_SOLVE: SigKernel = SigKernel {
    name: "lyndon_solve",
    source: include_str!("../../../shaders/sig/lyndon_solve.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[
        b(0, "params", U),
        b(1, "row_start", R),
        b(2, "cols", R),
        b(3, "vals", R),
        b(4, "levels", R),
        b(5, "coords", W),
    ],
};

/// `tensor_series`' series (`SigParams::series`): the logarithm and the exponential.
pub const SERIES_LOG: u32 = 0;
pub const SERIES_EXP: u32 = 1;

pub const LYNDON_EXPAND: SigKernel = SigKernel {
    name: "lyndon_expand",
    source: include_str!("../../../shaders/sig/lyndon_expand.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[
        b(0, "params", U),
        b(1, "starts", R),
        b(2, "cols", R),
        b(3, "vals", R),
        b(4, "coords", W),
        b(5, "lie", W),
    ],
};

pub const SIG_GRAD: SigKernel = SigKernel {
    name: "sig_grad",
    source: include_str!("../../../shaders/sig/sig_grad.wgsl"),
    increments: false,
    keyed_wg: false,
    bindings: &[b(0, "params", U), b(1, "dz", R), b(2, "grads", W)],
};

/// Every signature kernel.
pub const SIG_KERNELS: &[&SigKernel] = &[
    &SIG_CHUNKS,
    &SIG_COMBINE,
    &SIG_CONTRACT,
    &SIG_BACKWARD,
    &SIG_GRAD,
    &SIG_COMBINE_BACKPROP,
    &SIG_JOIN,
    &SIG_JOIN_BACKPROP,
    &SIG_PAIRS,
    &TENSOR_SERIES,
    &LYNDON_SOLVE,
    &LYNDON_EXPAND,
];

/// Invocations per workgroup of the kernels with one invocation per work item.
pub const DEFAULT_WG: u32 = 64;

impl SigKernel {
    /// Its invocations per workgroup under `key`.
    pub fn workgroup_size(&self, key: &SigKey) -> u32 {
        if self.keyed_wg {
            key.wg
        } else {
            DEFAULT_WG
        }
    }
}

/// The index tables of a key, shared by the prelude and the host's sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    /// `off[k]`: start of level `k` (`k = 0 ..= N + 1`; `off[0] = off[1] = 0`).
    pub off: Vec<u64>,
    /// `pow[k] = D^k`, `k = 0 ..= N`.
    pub pow: Vec<u64>,
    /// Start of level `l` in `sig_backward`'s table of chain adjoints (`l = 0 ..= N`).
    pub doff: Vec<u64>,
    /// Start of level `m` in `sig_backward`'s table of chains (`m = 0 ..= N`).
    pub eoff: Vec<u64>,
}

impl Tables {
    /// `None` when a size overflows `u32` (the kernels index in `u32`).
    pub fn new(d: u32, degree: u32) -> Option<Tables> {
        let (d, n) = (d as u64, degree as usize);
        let mut pow = vec![1u64];
        for k in 1..=n {
            pow.push(pow[k - 1].checked_mul(d)?);
        }
        let mut off = vec![0u64, 0];
        for k in 1..=n {
            off.push(off[k].checked_add(pow[k])?);
        }
        let mut doff = vec![0u64, 0];
        for l in 1..n {
            doff.push(doff[l] + pow[l] * (n - l) as u64);
        }
        while doff.len() < n + 1 {
            let last = *doff.last().expect("non-empty");
            doff.push(last);
        }
        let mut eoff = vec![0u64];
        for m in 0..n {
            eoff.push(eoff[m].checked_add(pow[m].checked_mul((n - m) as u64)?)?);
        }
        let t = Tables {
            off,
            pow,
            doff,
            eoff,
        };
        (t.scratch() <= u32::MAX as u64).then_some(t)
    }

    pub fn sig_len(&self) -> u64 {
        *self.off.last().expect("non-empty")
    }
    /// Coefficients below the top level.
    pub fn low(&self) -> u64 {
        self.off[self.off.len() - 2]
    }
    pub fn top(&self) -> u64 {
        *self.pow.last().expect("non-empty")
    }
    pub fn dlen(&self) -> u64 {
        *self.doff.last().expect("non-empty")
    }
    pub fn elen(&self) -> u64 {
        *self.eoff.last().expect("non-empty")
    }
    /// Scratch values of one `sig_backward` unit: S twice, R, the two tables.
    pub fn scratch(&self) -> u64 {
        2 * self.low() + self.sig_len() + self.dlen() + self.elen()
    }
}

fn array(out: &mut String, name: &str, ty: &str, values: &[u64]) {
    let list: Vec<String> = values.iter().map(|v| format!("{v}u")).collect();
    let _ = writeln!(
        out,
        "var<private> {name}: array<{ty}, {n}> = array<{ty}, {n}>({});",
        list.join(", "),
        n = values.len()
    );
}

/// The WGSL of `kernel` for `key` (degree at least 1; `None` when the sizes overflow `u32`).
pub fn source(kernel: &SigKernel, key: &SigKey) -> Option<String> {
    let t = Tables::new(key.d, key.degree)?;
    let scalar = match key.precision {
        Precision::F32 => "f32",
        Precision::F64 => "f64",
    };
    let wg = kernel.workgroup_size(key);
    let gp = (wg / key.d.max(1)).max(1);
    let mut s = String::new();
    let _ = writeln!(s, "// Generated for {key:?}.");
    let _ = writeln!(s, "alias scalar = {scalar};");
    for (name, v) in [
        ("D", key.d as u64),
        ("N", key.degree as u64),
        ("DIM", key.dim as u64),
        ("WG", wg as u64),
        ("SIG_LEN", t.sig_len()),
        ("LOW", t.low()),
        ("TOP", t.top()),
        ("DLEN", t.dlen()),
        ("ELEN", t.elen()),
        ("SCR", t.scratch()),
        ("GP", gp as u64),
        ("NL", (wg / gp) as u64),
        ("SHARED_LEN", if key.shared_state { t.scratch() } else { 1 }),
    ] {
        let _ = writeln!(s, "const {name}: u32 = {v}u;");
    }
    let _ = writeln!(s, "const LEAD_LAG: bool = {};", key.lead_lag);
    let _ = writeln!(s, "const TIME_AUG: bool = {};", key.time_aug);
    let _ = writeln!(s, "const SHARED_STATE: bool = {};", key.shared_state);
    array(&mut s, "OFF", "u32", &t.off);
    array(&mut s, "POW", "u32", &t.pow);
    array(&mut s, "DOFF", "u32", &t.doff);
    array(&mut s, "EOFF", "u32", &t.eoff);
    s.push_str(COMMON);
    if kernel.increments {
        s.push_str(INCREMENTS);
    }
    s.push_str(kernel.source);
    Some(s)
}
