//! Run-time CPU-feature dispatch and small-dimension specialisation for the innermost loops.
//!
//! One portable binary: the generic loop bodies are compiled three times — baseline, AVX2+FMA and
//! AVX-512 — and `multiversion!` picks one per call from features detected once. The AVX-512
//! build runs the explicit row kernels of `algebra::vector` at 512 bits where a row is whole
//! 512-bit vectors and at 256 bits elsewhere, and LLVM vectorises the plain loops (those of the
//! words-reversed steps, `algebra::reversed`) at 512 bits. Inside each, the
//! path dimension is made a compile-time constant for `d ≤ 8` and `d = 16`, so that a row of `d`
//! coefficients becomes a handful of vector instructions; `D = 0` means "not specialised".

use crate::Scalar;
use std::sync::atomic::{AtomicU8, Ordering};

/// How `a·b + c` is computed: fused where the CPU has FMA, separately otherwise (`mul_add` without
/// FMA hardware is a slow libm call).
pub trait MulAdd {
    /// Whether the explicit AVX2 row loops of `algebra::vector` may run (only inside code compiled
    /// for AVX2+FMA, which is where `multiversion!` uses `Fused`).
    const VECTOR: bool;
    /// Whether the AVX-512 row kernels may run too (only inside code compiled for AVX-512, where
    /// `multiversion!` uses `Fused512`).
    const WIDE: bool = false;
    fn madd<T: Scalar>(a: T, b: T, c: T) -> T;
}

pub(crate) struct Separate;
pub(crate) struct Fused;
pub(crate) struct Fused512;

impl MulAdd for Separate {
    const VECTOR: bool = false;
    #[inline(always)]
    fn madd<T: Scalar>(a: T, b: T, c: T) -> T {
        a * b + c
    }
}

impl MulAdd for Fused {
    const VECTOR: bool = cfg!(target_arch = "x86_64");
    #[inline(always)]
    fn madd<T: Scalar>(a: T, b: T, c: T) -> T {
        a.mul_add(b, c)
    }
}

impl MulAdd for Fused512 {
    const VECTOR: bool = cfg!(target_arch = "x86_64");
    const WIDE: bool = cfg!(target_arch = "x86_64");
    #[inline(always)]
    fn madd<T: Scalar>(a: T, b: T, c: T) -> T {
        a.mul_add(b, c)
    }
}

/// The instruction set the kernels run with on this machine, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable code, one multiply and one add per multiply-add.
    Baseline,
    /// AVX2 vectors and fused multiply-adds.
    Avx2Fma,
    /// AVX-512 F and VL, with AVX2 and FMA.
    Avx512,
}

impl Isa {
    /// Whether the explicit AVX2 row kernels run (every level above the baseline has them).
    pub fn vector(self) -> bool {
        self != Isa::Baseline
    }
}

/// The instruction set the kernels run with: the machine's ([`detected_isa`]), or a lower one
/// where [`cap_isa`] asks for it.
pub fn isa() -> Isa {
    let detected = detected_isa();
    match ISA_CAP.load(Ordering::Relaxed) {
        0 => detected,
        1 => Isa::Baseline,
        2 => detected.min(Isa::Avx2Fma),
        _ => detected,
    }
}

/// The highest instruction set this machine has, detected once per process.
pub fn detected_isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
                    return Isa::Avx512;
                }
                return Isa::Avx2Fma;
            }
        }
        Isa::Baseline
    })
}

/// The cap [`cap_isa`] set: 0 none, else 1 + the capped level.
static ISA_CAP: AtomicU8 = AtomicU8::new(0);

/// Run every later call with at most `cap` (never above what the machine has); `None` lifts the
/// cap. Process-wide: for comparisons and for tests that run each level in turn.
pub fn cap_isa(cap: Option<Isa>) {
    let code = match cap {
        None | Some(Isa::Avx512) => 0,
        Some(Isa::Baseline) => 1,
        Some(Isa::Avx2Fma) => 2,
    };
    ISA_CAP.store(code, Ordering::Relaxed);
}

/// The dimension a kernel runs with: the constant `D`, or the run-time `d` when `D = 0`.
#[inline(always)]
pub(crate) fn dim<const D: usize>(d: usize) -> usize {
    if D == 0 {
        d
    } else {
        D
    }
}

/// Call `$f::<T, M, D, extra…>(args…)` with `D` the compile-time form of the run-time dimension
/// `$d` (and any further generic arguments after it).
macro_rules! by_dim {
    ($d:expr, $f:ident::<$T:ty, $M:ty $(, $g:ident)*>($($arg:expr),* $(,)?)) => {
        match $d {
            1 => $f::<$T, $M, 1 $(, $g)*>($($arg),*),
            2 => $f::<$T, $M, 2 $(, $g)*>($($arg),*),
            3 => $f::<$T, $M, 3 $(, $g)*>($($arg),*),
            4 => $f::<$T, $M, 4 $(, $g)*>($($arg),*),
            5 => $f::<$T, $M, 5 $(, $g)*>($($arg),*),
            6 => $f::<$T, $M, 6 $(, $g)*>($($arg),*),
            7 => $f::<$T, $M, 7 $(, $g)*>($($arg),*),
            8 => $f::<$T, $M, 8 $(, $g)*>($($arg),*),
            16 => $f::<$T, $M, 16 $(, $g)*>($($arg),*),
            _ => $f::<$T, $M, 0 $(, $g)*>($($arg),*),
        }
    };
}

/// Define `pub fn $name<T>(args…)` that runs `$inner::<T, M>(args…)` compiled for the best instruction
/// set this CPU has (`$inner` must be `#[inline(always)]` so that it is compiled into each version).
/// With `dims(expr)` first, `$inner::<T, M, D>` is called with `D` the compile-time form of `expr`
/// (see [`by_dim!`]); with `lanes(L)` (after `dims` or alone), the function and `$inner` take a
/// further `const L: usize` (the lane count of [`super::lanes`]). Naming rule: the body behind `fn name` is
/// `name_body`.
macro_rules! multiversion {
    (dims($d:expr) lanes($l:ident) $(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) => $inner:ident) => {
        $crate::algebra::simd::multiversion!(@define [$(#[$meta])*] $vis $name [const $l: usize] [$l] ($($arg: $ty),*)
            $crate::algebra::simd::by_dim!($d, $inner::<T, M, $l>($($arg),*)));
    };
    (lanes($l:ident) $(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) => $inner:ident) => {
        $crate::algebra::simd::multiversion!(@define [$(#[$meta])*] $vis $name [const $l: usize] [$l] ($($arg: $ty),*)
            $inner::<T, M, $l>($($arg),*));
    };
    (dims($d:expr) $(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) => $inner:ident) => {
        $crate::algebra::simd::multiversion!(@define [$(#[$meta])*] $vis $name [] [] ($($arg: $ty),*)
            $crate::algebra::simd::by_dim!($d, $inner::<T, M>($($arg),*)));
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) => $inner:ident) => {
        $crate::algebra::simd::multiversion!(@define [$(#[$meta])*] $vis $name [] [] ($($arg: $ty),*)
            $inner::<T, M>($($arg),*));
    };
    (@define [$($meta:tt)*] $vis:vis $name:ident [$($gp:tt)*] [$($ga:tt)*] ($($arg:ident : $ty:ty),*) $body:expr) => {
        $($meta)*
        $vis fn $name<T: $crate::Scalar, $($gp)*>($($arg: $ty),*) {
            use $crate::algebra::simd::{isa, Fused, Fused512, Isa, MulAdd, Separate};
            #[inline(always)]
            fn body<T: $crate::Scalar, M: MulAdd, $($gp)*>($($arg: $ty),*) {
                $body
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<T: $crate::Scalar, $($gp)*>($($arg: $ty),*) {
                body::<T, Fused, $($ga)*>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            unsafe fn avx512<T: $crate::Scalar, $($gp)*>($($arg: $ty),*) {
                body::<T, Fused512, $($ga)*>($($arg),*)
            }
            match isa() {
                // SAFETY: isa() reports each level only when the CPU has all its features.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2Fma => unsafe { avx2::<T, $($ga)*>($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { avx512::<T, $($ga)*>($($arg),*) },
                _ => body::<T, Separate, $($ga)*>($($arg),*),
            }
        }
    };
}

pub(crate) use {by_dim, multiversion};
