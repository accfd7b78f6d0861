//! Explicit AVX2+FMA loops for the row shapes where LLVM's own vectorisation falls short.
//!
//! With the dimension a compile-time constant, LLVM unrolls each row and then vectorises *across*
//! rows with shuffles (or gathers), several times slower than one broadcast multiply-add per row.
//! These loops keep a row in whole vector registers instead: rows of a whole number of 256-bit
//! vectors (up to four) or of exactly one 128-bit vector. Any other short row (d = 3, 5, 6, 7, …)
//! is handled in blocks of `W` rows (`W` lanes per vector), which are exactly `d` vectors: block
//! vector `k` pairs `b[row(k, l)]`, permuted into place, with the constant pattern `z[col(k, l)]`
//! (the caller passes `z` tiled to `64` entries, `zt[p] = z[p mod d]`). Each kernel reports `false`
//! for a shape it does not handle, so the caller runs its generic loop. In code compiled for
//! AVX-512 (`M::WIDE`), rows of a whole number of 512-bit vectors take the same loops at that
//! width, and rows shorter than one (f64 d < 8, f32 d < 16) go in blocks of one 512-bit vector's
//! worth of rows, the `z` pattern permuted from `z` itself. The block kernels are in `blocks`.

use super::simd::{dim, MulAdd};
use crate::Scalar;
use bytemuck::{cast, cast_ref, cast_slice, cast_slice_mut};

/// Row kernels of one element type. Safety of every method: the CPU must have AVX2 and FMA, and
/// AVX-512 where `M::WIDE` holds.
pub trait VectorRows: Sized {
    /// Whether rows of `D` go through the block kernels, which read `z` tiled.
    fn blocked<const D: usize>() -> bool;
    /// `out[i,j] = c·b[i]·z[j] + add[i,j]`.
    unsafe fn outer_add<M: MulAdd, const D: usize>(
        b: &[Self],
        c: Self,
        z: &[Self],
        add: &[Self],
        out: &mut [Self],
    ) -> bool;
    /// `out[i,j] += b[i]·z[j]`.
    unsafe fn outer_acc<M: MulAdd, const D: usize>(
        b: &[Self],
        z: &[Self],
        out: &mut [Self],
    ) -> bool;
    /// Whether rows of `D` are whole vectors, which the strided kernels below need.
    fn whole<const D: usize>() -> bool;
    /// `out[i,j] = c·b[i]·z[j] + add[i·stride + j]`. The caller checks [`VectorRows::whole`].
    unsafe fn outer_add_strided<const D: usize>(
        b: &[Self],
        c: Self,
        z: &[Self],
        add: &[Self],
        stride: usize,
        out: &mut [Self],
    );
    /// `out[i·stride + j] += b[i]·z[j]`. The caller checks [`VectorRows::whole`].
    unsafe fn outer_acc_strided<const D: usize>(
        b: &[Self],
        z: &[Self],
        out: &mut [Self],
        stride: usize,
    );
    /// Whether [`VectorRows::outer_acc_steps`] handles rows of `D`: whole vectors too.
    fn fused<const D: usize>() -> bool {
        Self::whole::<D>()
    }
    /// `out[i,j] += Σ_s b[s][i]·z[s][j]` over `S` steps `s`: `S` multiply-adds per load and store.
    /// The caller checks [`VectorRows::fused`] first.
    unsafe fn outer_acc_steps<M: MulAdd, const S: usize, const D: usize>(
        b: [&[Self]; S],
        z: [&[Self]; S],
        out: &mut [Self],
    );
    /// `out[i, ..D] += Σ_s lo[s][i]·z[s][j]` and `out[i, D..2D] += Σ_s hi[s][i]·z[s][j]` (rows of
    /// `2·D`). The caller checks [`VectorRows::fused`] first.
    unsafe fn outer_acc4_halves<const D: usize>(
        lo: [&[Self]; 4],
        hi: [&[Self]; 4],
        z: [&[Self]; 4],
        out: &mut [Self],
    );
    /// `a·b + c` on a lane group of `N` values (8 or 16, see `super::lanes`), in whole vectors:
    /// 512-bit ones where `M::WIDE`.
    unsafe fn madd_lanes<M: MulAdd, const N: usize>(
        a: &[Self; N],
        b: &[Self; N],
        c: &[Self; N],
    ) -> [Self; N];
    /// `a·c` on a lane group of `N` values.
    unsafe fn scale_lanes<M: MulAdd, const N: usize>(a: &[Self; N], c: Self) -> [Self; N];
    /// `out[i] = c·Σ_j g[i,j]·z[j]` and `dz[j] += c·Σ_i g[i,j]·b[i]`.
    unsafe fn contract<M: MulAdd, const D: usize>(
        g: &[Self],
        b: &[Self],
        z: &[Self],
        c: Self,
        dz: &mut [Self],
        out: &mut [Self],
    ) -> bool;
}

/// `$body` with `$E` the concrete type behind `$T`: `Scalar` is sealed to f32 and f64, so the size
/// tells them apart, the branch is resolved at compile time and the casts are identities.
macro_rules! concrete {
    ($T:ty, $E:ident => $body:expr) => {
        if std::mem::size_of::<$T>() == 4 {
            type $E = f32;
            $body
        } else {
            type $E = f64;
            $body
        }
    };
}

/// [`VectorRows::blocked`] of `T`.
#[inline(always)]
pub(crate) fn blocked<T: Scalar, const D: usize>() -> bool {
    concrete!(T, E => E::blocked::<D>())
}

/// [`VectorRows::whole`] of `T`.
#[inline(always)]
pub(crate) fn whole<T: Scalar, const D: usize>() -> bool {
    concrete!(T, E => E::whole::<D>())
}

/// [`VectorRows::fused`] of `T`.
#[inline(always)]
pub(crate) fn fused<T: Scalar, const D: usize>() -> bool {
    concrete!(T, E => E::fused::<D>())
}

/// [`VectorRows::outer_add_strided`] of `T` (same safety contract).
#[inline(always)]
pub(crate) unsafe fn outer_add_strided<T: Scalar, const D: usize>(
    b: &[T],
    c: T,
    z: &[T],
    add: &[T],
    stride: usize,
    out: &mut [T],
) {
    concrete!(T, E => unsafe {
        E::outer_add_strided::<D>(cast_slice(b), cast(c), cast_slice(z), cast_slice(add), stride, cast_slice_mut(out))
    })
}

/// [`VectorRows::outer_acc_strided`] of `T` (same safety contract).
#[inline(always)]
pub(crate) unsafe fn outer_acc_strided<T: Scalar, const D: usize>(
    b: &[T],
    z: &[T],
    out: &mut [T],
    stride: usize,
) {
    concrete!(T, E => unsafe {
        E::outer_acc_strided::<D>(cast_slice(b), cast_slice(z), cast_slice_mut(out), stride)
    })
}

/// [`VectorRows::outer_acc_steps`] of `T` (same safety contract).
#[inline(always)]
pub(crate) unsafe fn outer_acc_steps<T: Scalar, M: MulAdd, const S: usize, const D: usize>(
    b: [&[T]; S],
    z: [&[T]; S],
    out: &mut [T],
) {
    concrete!(T, E => unsafe {
        E::outer_acc_steps::<M, S, D>(b.map(cast_slice), z.map(cast_slice), cast_slice_mut(out))
    })
}

/// [`VectorRows::outer_acc4_halves`] of `T` (same safety contract).
#[inline(always)]
pub(crate) unsafe fn outer_acc4_halves<T: Scalar, const D: usize>(
    lo: [&[T]; 4],
    hi: [&[T]; 4],
    z: [&[T]; 4],
    out: &mut [T],
) {
    concrete!(T, E => unsafe {
        E::outer_acc4_halves::<D>(lo.map(cast_slice), hi.map(cast_slice), z.map(cast_slice), cast_slice_mut(out))
    })
}

/// `out[i,j] = c·b[i]·z[j] + add[i,j]` for every row `i` of `b` (rows of `d` in `out` and `add`).
#[inline(always)]
pub(crate) fn outer_add<T: Scalar, M: MulAdd, const D: usize>(
    b: &[T],
    c: T,
    z: &[T],
    add: &[T],
    out: &mut [T],
) {
    // SAFETY: M::VECTOR holds only in code compiled for AVX2+FMA (see `MulAdd::VECTOR`), and
    // M::WIDE only in code compiled for AVX-512.
    if M::VECTOR
        && concrete!(T, E => unsafe {
            E::outer_add::<M, D>(cast_slice(b), cast(c), cast_slice(z), cast_slice(add), cast_slice_mut(out))
        })
    {
        return;
    }
    let d = dim::<D>(z.len());
    let z = &z[..d];
    for ((&bi, arow), orow) in b
        .iter()
        .zip(add.chunks_exact(d))
        .zip(out.chunks_exact_mut(d))
    {
        let bi = bi * c;
        for j in 0..d {
            orow[j] = M::madd(bi, z[j], arow[j]);
        }
    }
}

/// `out[i,j] += b[i]·z[j]`.
#[inline(always)]
pub(crate) fn outer_acc<T: Scalar, M: MulAdd, const D: usize>(b: &[T], z: &[T], out: &mut [T]) {
    // SAFETY: as in `outer_add`.
    if M::VECTOR
        && concrete!(T, E => unsafe { E::outer_acc::<M, D>(cast_slice(b), cast_slice(z), cast_slice_mut(out)) })
    {
        return;
    }
    let d = dim::<D>(z.len());
    let z = &z[..d];
    for (&bi, orow) in b.iter().zip(out.chunks_exact_mut(d)) {
        for j in 0..d {
            orow[j] = M::madd(bi, z[j], orow[j]);
        }
    }
}

/// The reverse of `outer_add`: for `g` read as rows of `d`, `out[i] = c·Σ_j g[i,j]·z[j]` and
/// `dz[j] += c·Σ_i g[i,j]·b[i]`.
#[inline(always)]
pub(crate) fn contract<T: Scalar, M: MulAdd, const D: usize>(
    g: &[T],
    b: &[T],
    z: &[T],
    c: T,
    dz: &mut [T],
    out: &mut [T],
) {
    // SAFETY: as in `outer_add`.
    if M::VECTOR
        && concrete!(T, E => unsafe {
            E::contract::<M, D>(cast_slice(g), cast_slice(b), cast_slice(z), cast(c), cast_slice_mut(dz), cast_slice_mut(out))
        })
    {
        return;
    }
    let d = dim::<D>(z.len());
    let z = &z[..d];
    if D > 0 {
        // Accumulate dz in registers.
        let mut acc = [T::zero(); D];
        for ((row, &bi), o) in g.chunks_exact(D).zip(b).zip(out.iter_mut()) {
            let mut dot = T::zero();
            for j in 0..D {
                dot = M::madd(row[j], z[j], dot);
                acc[j] = M::madd(row[j], bi, acc[j]);
            }
            *o = dot * c;
        }
        for j in 0..D {
            dz[j] = M::madd(acc[j], c, dz[j]);
        }
    } else {
        for ((row, &bi), o) in g.chunks_exact(d).zip(b).zip(out.iter_mut()) {
            let bi = bi * c;
            let mut dot = T::zero();
            for j in 0..d {
                dot = M::madd(row[j], z[j], dot);
                dz[j] = M::madd(row[j], bi, dz[j]);
            }
            *o = dot * c;
        }
    }
}

/// `a·b + c` lane by lane, in whole vectors where `M` allows AVX2+FMA. LLVM's own vectorisation
/// of such short loops is fragile: in the large, fully inlined kernels it left some of them
/// scalar, or called `mul_add` out of line (a libm call).
#[inline(always)]
pub(crate) fn lanes_madd<T: Scalar, M: MulAdd, const L: usize>(
    a: &[T; L],
    b: &[T; L],
    c: &[T; L],
) -> [T; L] {
    if M::VECTOR {
        // SAFETY: M::VECTOR holds only in code compiled for AVX2+FMA (M::WIDE for AVX-512).
        return concrete!(T, E => cast(unsafe { E::madd_lanes::<M, L>(cast_ref(a), cast_ref(b), cast_ref(c)) }));
    }
    let mut out = [T::zero(); L];
    for l in 0..L {
        out[l] = M::madd(a[l], b[l], c[l]);
    }
    out
}

/// `a·c` lane by lane, as [`lanes_madd`].
#[inline(always)]
pub(crate) fn lanes_scale<T: Scalar, M: MulAdd, const L: usize>(a: &[T; L], c: T) -> [T; L] {
    if M::VECTOR {
        // SAFETY: as in `lanes_madd`.
        return concrete!(T, E => cast(unsafe { E::scale_lanes::<M, L>(cast_ref(a), cast(c)) }));
    }
    let mut out = [T::zero(); L];
    for l in 0..L {
        out[l] = a[l] * c;
    }
    out
}

#[cfg(target_arch = "x86_64")]
macro_rules! row_kernels {
    ($module:ident, $feature:literal, $t:ty, $v:ty, $lanes:expr, $set1:ident, $load:ident,
     $store:ident, $fmadd:ident, $zero:ident, $hsum:expr) => {
        // The AVX-512 instances serve only the kernels `M::WIDE` dispatches to.
        #[allow(dead_code)]
        pub mod $module {
            use std::arch::x86_64::*;

            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn outer_add<const D: usize>(
                b: &[$t],
                c: $t,
                z: &[$t],
                add: &[$t],
                out: &mut [$t],
            ) {
                outer_add_strided::<D>(b, c, z, add, D, out)
            }

            /// `outer_add` with the rows of `add` `stride` apart.
            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn outer_add_strided<const D: usize>(
                b: &[$t],
                c: $t,
                z: &[$t],
                add: &[$t],
                stride: usize,
                out: &mut [$t],
            ) {
                let n = b.len();
                assert!(
                    z.len() >= D
                        && stride >= D
                        && (n == 0 || add.len() >= (n - 1) * stride + D)
                        && out.len() >= n * D
                );
                let (zp, ap, op) = (z.as_ptr(), add.as_ptr(), out.as_mut_ptr());
                for (i, &bi) in b.iter().enumerate() {
                    let bv = $set1(bi * c);
                    let mut q = 0;
                    while q < D {
                        let r = $fmadd(bv, $load(zp.add(q)), $load(ap.add(i * stride + q)));
                        $store(op.add(i * D + q), r);
                        q += $lanes;
                    }
                }
            }

            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn outer_acc<const D: usize>(b: &[$t], z: &[$t], out: &mut [$t]) {
                outer_acc_strided::<D>(b, z, out, D)
            }

            /// `outer_acc` with the rows of `out` `stride` apart.
            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn outer_acc_strided<const D: usize>(
                b: &[$t],
                z: &[$t],
                out: &mut [$t],
                stride: usize,
            ) {
                let n = b.len();
                assert!(
                    z.len() >= D && stride >= D && (n == 0 || out.len() >= (n - 1) * stride + D)
                );
                let (zp, op) = (z.as_ptr(), out.as_mut_ptr());
                for (i, &bi) in b.iter().enumerate() {
                    let bv = $set1(bi);
                    let mut q = 0;
                    while q < D {
                        let r = $fmadd(bv, $load(zp.add(q)), $load(op.add(i * stride + q)));
                        $store(op.add(i * stride + q), r);
                        q += $lanes;
                    }
                }
            }

            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn outer_acc_steps<const S: usize, const D: usize>(
                b: [&[$t]; S],
                z: [&[$t]; S],
                out: &mut [$t],
            ) {
                let n = b[0].len();
                assert!(
                    b.iter().all(|x| x.len() >= n)
                        && z.iter().all(|x| x.len() >= D)
                        && out.len() >= n * D
                );
                let op = out.as_mut_ptr();
                for i in 0..n {
                    acc_row::<S, D>(&b, i, &z, op.add(i * D));
                }
            }

            /// `row[j] += Σ_s b[s][i]·z[s][j]` for the `D` entries from `row`.
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn acc_row<const S: usize, const D: usize>(
                b: &[&[$t]; S],
                i: usize,
                z: &[&[$t]; S],
                row: *mut $t,
            ) {
                let bv: [$v; S] = std::array::from_fn(|s| $set1(*b[s].get_unchecked(i)));
                let mut q = 0;
                while q < D {
                    let mut acc = $load(row.add(q));
                    for s in 0..S {
                        acc = $fmadd(bv[s], $load(z[s].as_ptr().add(q)), acc);
                    }
                    $store(row.add(q), acc);
                    q += $lanes;
                }
            }

            /// `outer_acc4` on rows of `2·D` whose halves take their own `b`: `lo` for
            /// `out[i, ..D]`, `hi` for `out[i, D..]`.
            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn outer_acc4_halves<const D: usize>(
                lo: [&[$t]; 4],
                hi: [&[$t]; 4],
                z: [&[$t]; 4],
                out: &mut [$t],
            ) {
                let n = lo[0].len();
                assert!(
                    lo.iter().chain(&hi).all(|x| x.len() >= n)
                        && z.iter().all(|x| x.len() >= D)
                        && out.len() >= n * 2 * D
                );
                let op = out.as_mut_ptr();
                for i in 0..n {
                    acc_row::<4, D>(&lo, i, &z, op.add(i * 2 * D));
                    acc_row::<4, D>(&hi, i, &z, op.add(i * 2 * D + D));
                }
            }

            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn contract<const D: usize>(
                g: &[$t],
                b: &[$t],
                z: &[$t],
                c: $t,
                dz: &mut [$t],
                out: &mut [$t],
            ) {
                let n = b.len();
                assert!(
                    D <= 4 * $lanes
                        && z.len() >= D
                        && dz.len() >= D
                        && g.len() >= n * D
                        && out.len() >= n
                );
                let (gp, zp) = (g.as_ptr(), z.as_ptr());
                let mut acc: [$v; 4] = [$zero(); 4];
                for (i, &bi) in b.iter().enumerate() {
                    let bv = $set1(bi);
                    let mut dot = $zero();
                    let mut q = 0;
                    while q < D {
                        let row = $load(gp.add(i * D + q));
                        dot = $fmadd(row, $load(zp.add(q)), dot);
                        acc[q / $lanes] = $fmadd(row, bv, acc[q / $lanes]);
                        q += $lanes;
                    }
                    *out.get_unchecked_mut(i) = $hsum(dot) * c;
                }
                let (cv, dzp) = ($set1(c), dz.as_mut_ptr());
                let mut q = 0;
                while q < D {
                    $store(dzp.add(q), $fmadd(acc[q / $lanes], cv, $load(dzp.add(q))));
                    q += $lanes;
                }
            }
        }
    };
}

mod blocks;

#[cfg(target_arch = "x86_64")]
mod kernels {
    use std::arch::x86_64::*;

    pub use super::blocks::kernels::*;

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn hsum_pd2(v: __m128d) -> f64 {
        _mm_cvtsd_f64(_mm_add_sd(v, _mm_unpackhi_pd(v, v)))
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn hsum_pd4(v: __m256d) -> f64 {
        hsum_pd2(_mm_add_pd(
            _mm256_castpd256_pd128(v),
            _mm256_extractf128_pd::<1>(v),
        ))
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn hsum_ps4(v: __m128) -> f32 {
        let pairs = _mm_add_ps(v, _mm_movehl_ps(v, v));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs)))
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn hsum_ps8(v: __m256) -> f32 {
        hsum_ps4(_mm_add_ps(
            _mm256_castps256_ps128(v),
            _mm256_extractf128_ps::<1>(v),
        ))
    }

    /// Element-wise operations on a lane group of `$n` values (see `super::super::lanes`),
    /// `$n / $lanes` vectors of type `$v`. The group is reinterpreted as vectors by value (no
    /// loads or stores through pointers), so that LLVM keeps it in registers.
    macro_rules! group_ops {
        ($module:ident, $feature:literal, $t:ty, $n:literal, $v:ty, $lanes:expr, $set1:ident,
         $fmadd:ident, $mul:ident) => {
            // Index loops: one index into three arrays reads best here.
            #[allow(clippy::needless_range_loop)]
            pub mod $module {
                use std::arch::x86_64::*;
                use std::mem::transmute;

                type Group = [$v; $n / $lanes];

                #[target_feature(enable = $feature)]
                #[inline]
                pub unsafe fn madd(a: &[$t; $n], b: &[$t; $n], c: &[$t; $n]) -> [$t; $n] {
                    let group = |x: &[$t; $n]| transmute::<[$t; $n], Group>(*x);
                    let (a, b, c) = (group(a), group(b), group(c));
                    let mut r = c;
                    for q in 0..$n / $lanes {
                        r[q] = $fmadd(a[q], b[q], c[q]);
                    }
                    transmute::<Group, [$t; $n]>(r)
                }

                #[target_feature(enable = $feature)]
                #[inline]
                pub unsafe fn scale(a: &[$t; $n], c: $t) -> [$t; $n] {
                    let (mut a, c) = (transmute::<[$t; $n], Group>(*a), $set1(c));
                    for q in 0..$n / $lanes {
                        a[q] = $mul(a[q], c);
                    }
                    transmute::<Group, [$t; $n]>(a)
                }
            }
        };
    }
    #[rustfmt::skip]
    mod groups {
        group_ops!(f64y8, "avx2,fma", f64, 8, __m256d, 4, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_mul_pd);
        group_ops!(f64y16, "avx2,fma", f64, 16, __m256d, 4, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_mul_pd);
        group_ops!(f32y8, "avx2,fma", f32, 8, __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_mul_ps);
        group_ops!(f32y16, "avx2,fma", f32, 16, __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_mul_ps);
        group_ops!(f64z8, "avx512f,avx2,fma", f64, 8, __m512d, 8, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_mul_pd);
        group_ops!(f64z16, "avx512f,avx2,fma", f64, 16, __m512d, 8, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_mul_pd);
        group_ops!(f32z16, "avx512f,avx2,fma", f32, 16, __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_mul_ps);
    }
    pub use groups::*;

    row_kernels!(
        f64x4,
        "avx2,fma",
        f64,
        __m256d,
        4,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_fmadd_pd,
        _mm256_setzero_pd,
        super::hsum_pd4
    );
    row_kernels!(
        f64x2,
        "avx2,fma",
        f64,
        __m128d,
        2,
        _mm_set1_pd,
        _mm_loadu_pd,
        _mm_storeu_pd,
        _mm_fmadd_pd,
        _mm_setzero_pd,
        super::hsum_pd2
    );
    row_kernels!(
        f32x8,
        "avx2,fma",
        f32,
        __m256,
        8,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_setzero_ps,
        super::hsum_ps8
    );
    row_kernels!(
        f64x8,
        "avx512f,avx2,fma",
        f64,
        __m512d,
        8,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_fmadd_pd,
        _mm512_setzero_pd,
        _mm512_reduce_add_pd
    );
    row_kernels!(
        f32x16,
        "avx512f,avx2,fma",
        f32,
        __m512,
        16,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_setzero_ps,
        _mm512_reduce_add_ps
    );
    row_kernels!(
        f32x4,
        "avx2,fma",
        f32,
        __m128,
        4,
        _mm_set1_ps,
        _mm_loadu_ps,
        _mm_storeu_ps,
        _mm_fmadd_ps,
        _mm_setzero_ps,
        super::hsum_ps4
    );
}

/// Whether rows of `D` are one to four whole 512-bit vectors (`2·lanes` values each, `lanes` the
/// 256-bit width), and the code runs compiled for AVX-512 (`M::WIDE`).
#[inline(always)]
fn whole_zmm<M: MulAdd, const D: usize>(lanes: usize) -> bool {
    M::WIDE && D > 0 && D.is_multiple_of(2 * lanes) && D <= 8 * lanes
}

/// Whether rows of `D` go through the 512-bit block kernels: the code runs compiled for AVX-512,
/// a row is shorter than a 512-bit vector (`2·lanes` values: f64 d < 8, f32 d < 16), and it is
/// not one 256-bit vector (f64 d = 4: there a broadcast and a multiply-add per row beat the
/// permutes) (measured: docs/PERFORMANCE.md, *CPU kernel choices*).
#[inline(always)]
fn block_zmm<M: MulAdd, const D: usize>(lanes: usize) -> bool {
    M::WIDE && D >= 2 && D < 2 * lanes && D != lanes
}

/// Implement [`VectorRows`] for `$t` with its wide (`$wide`, `$lanes` per vector) and narrow kernels.
macro_rules! impl_vector_rows {
    ($t:ty, $wide512:ident, $wide:ident, $narrow:ident, $blocks512:ident, $blocks:ident, $lanes:expr,
     groups($y8:ident, $y16:ident, $z8:ident, $z16:ident), contract512($($contract512:ident)::+)) => {
        impl VectorRows for $t {
            #[inline(always)]
            unsafe fn madd_lanes<M: MulAdd, const N: usize>(
                a: &[$t; N],
                b: &[$t; N],
                c: &[$t; N],
            ) -> [$t; N] {
                #[cfg(target_arch = "x86_64")]
                {
                    // SAFETY (of the casts): each arm runs only where `N` is the length it casts to.
                    match (N, M::WIDE) {
                        (8, false) => return resize(kernels::$y8::madd(view(a), view(b), view(c))),
                        (8, true) => return resize(kernels::$z8::madd(view(a), view(b), view(c))),
                        (16, false) => {
                            return resize(kernels::$y16::madd(view(a), view(b), view(c)))
                        }
                        (16, true) => {
                            return resize(kernels::$z16::madd(view(a), view(b), view(c)))
                        }
                        _ => {}
                    }
                }
                std::array::from_fn(|l| a[l].mul_add(b[l], c[l]))
            }
            #[inline(always)]
            unsafe fn scale_lanes<M: MulAdd, const N: usize>(a: &[$t; N], c: $t) -> [$t; N] {
                #[cfg(target_arch = "x86_64")]
                {
                    // SAFETY: as in `madd_lanes`.
                    match (N, M::WIDE) {
                        (8, false) => return resize(kernels::$y8::scale(view(a), c)),
                        (8, true) => return resize(kernels::$z8::scale(view(a), c)),
                        (16, false) => return resize(kernels::$y16::scale(view(a), c)),
                        (16, true) => return resize(kernels::$z16::scale(view(a), c)),
                        _ => {}
                    }
                }
                std::array::from_fn(|l| a[l] * c)
            }
            #[inline(always)]
            fn blocked<const D: usize>() -> bool {
                cfg!(target_arch = "x86_64")
                    && D > 0
                    && D <= 16
                    && D * $lanes <= 64
                    && D % $lanes != 0
            }
            #[inline(always)]
            unsafe fn outer_add<M: MulAdd, const D: usize>(
                b: &[$t],
                c: $t,
                z: &[$t],
                add: &[$t],
                out: &mut [$t],
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    if whole_zmm::<M, D>($lanes) {
                        kernels::$wide512::outer_add::<D>(b, c, z, add, out);
                        return true;
                    }
                    if block_zmm::<M, D>($lanes) {
                        kernels::$blocks512::outer_add::<D>(b, c, z, add, out);
                        return true;
                    }
                    if D > 0 && D % $lanes == 0 && D <= 4 * $lanes {
                        kernels::$wide::outer_add::<D>(b, c, z, add, out);
                        return true;
                    }
                    if D > 0 && D <= 16 && D * $lanes <= 64 && z.len() >= D * $lanes {
                        kernels::$blocks::outer_add::<D>(b, c, z, add, out);
                        return true;
                    }
                    if D == $lanes / 2 {
                        kernels::$narrow::outer_add::<D>(b, c, z, add, out);
                        return true;
                    }
                }
                false
            }
            #[inline(always)]
            unsafe fn outer_acc<M: MulAdd, const D: usize>(
                b: &[$t],
                z: &[$t],
                out: &mut [$t],
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    if whole_zmm::<M, D>($lanes) {
                        kernels::$wide512::outer_acc::<D>(b, z, out);
                        return true;
                    }
                    if block_zmm::<M, D>($lanes) {
                        kernels::$blocks512::outer_acc::<D>(b, z, out);
                        return true;
                    }
                    if D > 0 && D % $lanes == 0 && D <= 4 * $lanes {
                        kernels::$wide::outer_acc::<D>(b, z, out);
                        return true;
                    }
                    if D > 0 && D <= 16 && D * $lanes <= 64 && z.len() >= D * $lanes {
                        kernels::$blocks::outer_acc::<D>(b, z, out);
                        return true;
                    }
                    if D == $lanes / 2 {
                        kernels::$narrow::outer_acc::<D>(b, z, out);
                        return true;
                    }
                }
                false
            }
            #[inline(always)]
            unsafe fn outer_acc4_halves<const D: usize>(
                lo: [&[$t]; 4],
                hi: [&[$t]; 4],
                z: [&[$t]; 4],
                out: &mut [$t],
            ) {
                #[cfg(target_arch = "x86_64")]
                {
                    if D % $lanes == 0 {
                        kernels::$wide::outer_acc4_halves::<D>(lo, hi, z, out);
                    } else {
                        kernels::$narrow::outer_acc4_halves::<D>(lo, hi, z, out);
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (lo, hi, z, out);
            }
            #[inline(always)]
            fn whole<const D: usize>() -> bool {
                cfg!(target_arch = "x86_64") && D > 0 && D % $lanes == 0 && D <= 4 * $lanes
            }
            #[inline(always)]
            unsafe fn outer_add_strided<const D: usize>(
                b: &[$t],
                c: $t,
                z: &[$t],
                add: &[$t],
                stride: usize,
                out: &mut [$t],
            ) {
                #[cfg(target_arch = "x86_64")]
                kernels::$wide::outer_add_strided::<D>(b, c, z, add, stride, out);
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (b, c, z, add, stride, out);
            }
            #[inline(always)]
            unsafe fn outer_acc_strided<const D: usize>(
                b: &[$t],
                z: &[$t],
                out: &mut [$t],
                stride: usize,
            ) {
                #[cfg(target_arch = "x86_64")]
                kernels::$wide::outer_acc_strided::<D>(b, z, out, stride);
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (b, z, out, stride);
            }
            #[inline(always)]
            unsafe fn outer_acc_steps<M: MulAdd, const S: usize, const D: usize>(
                b: [&[$t]; S],
                z: [&[$t]; S],
                out: &mut [$t],
            ) {
                #[cfg(target_arch = "x86_64")]
                {
                    if whole_zmm::<M, D>($lanes) {
                        kernels::$wide512::outer_acc_steps::<S, D>(b, z, out);
                    } else if D % $lanes == 0 {
                        kernels::$wide::outer_acc_steps::<S, D>(b, z, out);
                    } else {
                        kernels::$narrow::outer_acc_steps::<S, D>(b, z, out);
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (b, z, out);
            }
            #[inline(always)]
            unsafe fn contract<M: MulAdd, const D: usize>(
                g: &[$t],
                b: &[$t],
                z: &[$t],
                c: $t,
                dz: &mut [$t],
                out: &mut [$t],
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    if whole_zmm::<M, D>($lanes) {
                        $($contract512)::+::<D>(g, b, z, c, dz, out);
                        return true;
                    }
                    if D > 0 && D % $lanes == 0 && D <= 4 * $lanes {
                        kernels::$wide::contract::<D>(g, b, z, c, dz, out);
                        return true;
                    }
                    if D == $lanes / 2 {
                        kernels::$narrow::contract::<D>(g, b, z, c, dz, out);
                        return true;
                    }
                    if D > 0 && D <= 16 && D * $lanes <= 64 && z.len() >= D * $lanes {
                        kernels::$blocks::contract::<D>(g, b, z, c, dz, out);
                        return true;
                    }
                }
                false
            }
        }
    };
}

impl_vector_rows!(
    f64,
    f64x8,
    f64x4,
    f64x2,
    f64zb,
    f64b,
    4,
    groups(f64y8, f64y16, f64z8, f64z16),
    contract512(super::contract512::contract_f64)
);
// Eight f32 lanes are one 256-bit vector at either width.
impl_vector_rows!(
    f32,
    f32x16,
    f32x8,
    f32x4,
    f32zb,
    f32b,
    8,
    groups(f32y8, f32y16, f32y8, f32z16),
    contract512(kernels::f32x16::contract)
);

/// An array of length `N` seen as one of length `K`; the caller knows that `N == K`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn view<T, const N: usize, const K: usize>(x: &[T; N]) -> &[T; K] {
    debug_assert_eq!(K, N);
    // SAFETY: the caller's: the two lengths are equal.
    unsafe { &*(x as *const [T; N]).cast::<[T; K]>() }
}

/// An array of length `K` as one of length `N`; the caller knows that `N == K`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn resize<T, const K: usize, const N: usize>(x: [T; K]) -> [T; N] {
    debug_assert_eq!(K, N);
    // SAFETY: the caller's: the two lengths are equal.
    unsafe { std::mem::transmute_copy(&std::mem::ManuallyDrop::new(x)) }
}
