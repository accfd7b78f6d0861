//! Block kernels for rows shorter than a vector: a block of `W` rows (`W` lanes per vector) is
//! exactly `d` vectors, block vector `k` pairing `b[row(k, l)]`, permuted into place, with the
//! pattern `z[col(k, l)]`. Built at 256 bits for AVX2 (`f64b`, `f32b`, reading `z` tiled by the
//! caller) and at 512 bits for AVX-512 (`f64zb`, `f32zb`, permuting `z` in a register).

/// Permutation indices for the block kernels, as 32-bit lane indices (`WORDS` per element: two
/// for f64) into a 256- or 512-bit register of `W` elements. For block vector `k` and lane `l`:
/// in `ROWS` the row `(k·W + l) / D` of the block (which `b` the lane multiplies), in `COLS` the
/// column `(k·W + l) mod D` (which `z`).
pub struct BlockIndex<const D: usize, const W: usize, const WORDS: usize>;

impl<const D: usize, const W: usize, const WORDS: usize> BlockIndex<D, W, WORDS> {
    pub const ROWS: [[i32; 16]; 16] = block_table(D, W, WORDS, false);
    pub const COLS: [[i32; 16]; 16] = block_table(D, W, WORDS, true);
}

const fn block_table(d: usize, w: usize, words: usize, cols: bool) -> [[i32; 16]; 16] {
    let mut t = [[0i32; 16]; 16];
    let mut k = 0;
    while k < 16 && k < d {
        let mut l = 0;
        while l < w && (l + 1) * words <= 16 {
            let at = if cols {
                (k * w + l) % d
            } else {
                (k * w + l) / d
            } as i32;
            let mut word = 0;
            while word < words {
                t[k][words * l + word] = words as i32 * at + word as i32;
                word += 1;
            }
            l += 1;
        }
        k += 1;
    }
    t
}

#[cfg(target_arch = "x86_64")]
macro_rules! block_kernels {
    ($module:ident, $feature:literal, $t:ty, $v:ty, $lanes:expr, $words:expr, $iv:ty, $iload:ident,
     $set1:ident, $load:ident, $store:ident, $fmadd:ident, $mul:ident, $zero:ident, $perm:expr,
     $zvec:ident) => {
        // The AVX-512 instances serve only the kernels `M::WIDE` dispatches to.
        #[allow(dead_code)]
        pub mod $module {
            use std::arch::x86_64::*;
            const W: usize = $lanes;

            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn pattern<const D: usize>(k: usize) -> $iv {
                $iload(super::super::BlockIndex::<D, W, $words>::ROWS[k].as_ptr() as *const $iv)
            }

            /// Block vector `k`'s columns of `z`: lane `l` holds `z[(k·W + l) mod D]`.
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn z_vectors<const D: usize>(z: &[$t]) -> [$v; 16] {
                let mut zv = [$zero(); 16];
                super::$zvec::<D>(z, &mut zv);
                zv
            }

            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn outer_add<const D: usize>(b: &[$t], c: $t, zt: &[$t], add: &[$t], out: &mut [$t]) {
                let n = b.len();
                assert!(D <= 16 && add.len() >= n * D && out.len() >= n * D);
                let (ap, op) = (add.as_ptr(), out.as_mut_ptr());
                let zv = z_vectors::<D>(zt);
                let cv = $set1(c);
                let blocks = n / W;
                for blk in 0..blocks {
                    let bv = $mul($load(b.as_ptr().add(blk * W)), cv);
                    let base = blk * W * D;
                    for k in 0..D {
                        let bk = $perm(bv, pattern::<D>(k));
                        let o = base + k * W;
                        $store(op.add(o), $fmadd(bk, zv[k], $load(ap.add(o))));
                    }
                }
                for i in blocks * W..n {
                    let bi = b[i] * c;
                    for j in 0..D {
                        out[i * D + j] = bi.mul_add(zt[j], add[i * D + j]);
                    }
                }
            }

            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn outer_acc<const D: usize>(b: &[$t], zt: &[$t], out: &mut [$t]) {
                let n = b.len();
                assert!(D <= 16 && out.len() >= n * D);
                let op = out.as_mut_ptr();
                let zv = z_vectors::<D>(zt);
                let blocks = n / W;
                for blk in 0..blocks {
                    let bv = $load(b.as_ptr().add(blk * W));
                    let base = blk * W * D;
                    for k in 0..D {
                        let bk = $perm(bv, pattern::<D>(k));
                        let o = base + k * W;
                        $store(op.add(o), $fmadd(bk, zv[k], $load(op.add(o))));
                    }
                }
                for i in blocks * W..n {
                    for j in 0..D {
                        out[i * D + j] = b[i].mul_add(zt[j], out[i * D + j]);
                    }
                }
            }

            #[target_feature(enable = $feature)]
            #[inline]
            pub unsafe fn contract<const D: usize>(
                g: &[$t],
                b: &[$t],
                zt: &[$t],
                c: $t,
                dz: &mut [$t],
                out: &mut [$t],
            ) {
                let n = b.len();
                assert!(D <= 16 && D * W <= 64 && dz.len() >= D);
                assert!(g.len() >= n * D && out.len() >= n);
                let gp = g.as_ptr();
                let zv = z_vectors::<D>(zt);
                let mut acc: [$v; 16] = [$zero(); 16];
                let mut prod = [0 as $t; 64];
                let blocks = n / W;
                for blk in 0..blocks {
                    let bv = $load(b.as_ptr().add(blk * W));
                    let base = blk * W * D;
                    for k in 0..D {
                        let gv = $load(gp.add(base + k * W));
                        acc[k] = $fmadd(gv, $perm(bv, pattern::<D>(k)), acc[k]);
                        $store(prod.as_mut_ptr().add(k * W), $mul(gv, zv[k]));
                    }
                    // Row r's dot product is the sum of the D consecutive products from r·D.
                    for r in 0..W {
                        let mut dot = 0 as $t;
                        for j in 0..D {
                            dot += prod[r * D + j];
                        }
                        out[blk * W + r] = dot * c;
                    }
                }
                // Lane p of the accumulators belongs to column p mod D.
                let mut lanes = [0 as $t; 64];
                for k in 0..D {
                    $store(lanes.as_mut_ptr().add(k * W), acc[k]);
                }
                let mut sums = [0 as $t; 16];
                for p in 0..D * W {
                    sums[p % D] += lanes[p];
                }
                for i in blocks * W..n {
                    let mut dot = 0 as $t;
                    for j in 0..D {
                        dot = g[i * D + j].mul_add(zt[j], dot);
                        sums[j] = g[i * D + j].mul_add(b[i], sums[j]);
                    }
                    out[i] = dot * c;
                }
                for j in 0..D {
                    dz[j] = sums[j].mul_add(c, dz[j]);
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub mod kernels {
    use std::arch::x86_64::*;

    /// The block kernels' `z` vectors (see `block_kernels!`): under AVX2 read from `z` tiled by
    /// the caller; under AVX-512 permuted from `z` itself in a register, so that the tile, written
    /// just before, is never read back through a store-forwarding stall.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn tiled_f64<const D: usize>(zt: &[f64], zv: &mut [__m256d; 16]) {
        assert!(D <= 16 && zt.len() >= D * 4);
        for (k, v) in zv.iter_mut().enumerate().take(D) {
            *v = _mm256_loadu_pd(zt.as_ptr().add(k * 4));
        }
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn tiled_f32<const D: usize>(zt: &[f32], zv: &mut [__m256; 16]) {
        assert!(D <= 8 && zt.len() >= D * 8);
        for (k, v) in zv.iter_mut().enumerate().take(D) {
            *v = _mm256_loadu_ps(zt.as_ptr().add(k * 8));
        }
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    unsafe fn cols(k: usize, table: &[[i32; 16]; 16], z: __m512) -> __m512 {
        _mm512_permutexvar_ps(_mm512_loadu_si512(table[k].as_ptr() as *const __m512i), z)
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    pub unsafe fn cols_f64<const D: usize>(z: &[f64], zv: &mut [__m512d; 16]) {
        assert!(D <= 8 && z.len() >= D);
        let v = _mm512_maskz_loadu_pd(((1u32 << D) - 1) as u8, z.as_ptr());
        let table = &super::BlockIndex::<D, 8, 2>::COLS;
        for (k, zk) in zv.iter_mut().enumerate().take(D) {
            *zk = _mm512_castps_pd(cols(k, table, _mm512_castpd_ps(v)));
        }
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    pub unsafe fn cols_f32<const D: usize>(z: &[f32], zv: &mut [__m512; 16]) {
        assert!(D <= 16 && z.len() >= D);
        let v = _mm512_maskz_loadu_ps(((1u32 << D) - 1) as u16, z.as_ptr());
        let table = &super::BlockIndex::<D, 16, 1>::COLS;
        for (k, zk) in zv.iter_mut().enumerate().take(D) {
            *zk = cols(k, table, v);
        }
    }

    block_kernels!(
        f64b,
        "avx2,fma",
        f64,
        __m256d,
        4,
        2,
        __m256i,
        _mm256_loadu_si256,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_fmadd_pd,
        _mm256_mul_pd,
        _mm256_setzero_pd,
        |v, i| _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(v), i)),
        tiled_f64
    );
    block_kernels!(
        f32b,
        "avx2,fma",
        f32,
        __m256,
        8,
        1,
        __m256i,
        _mm256_loadu_si256,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_mul_ps,
        _mm256_setzero_ps,
        _mm256_permutevar8x32_ps,
        tiled_f32
    );
    block_kernels!(
        f64zb,
        "avx512f,avx2,fma",
        f64,
        __m512d,
        8,
        2,
        __m512i,
        _mm512_loadu_si512,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_fmadd_pd,
        _mm512_mul_pd,
        _mm512_setzero_pd,
        |v, i| _mm512_castps_pd(_mm512_permutexvar_ps(i, _mm512_castpd_ps(v))),
        cols_f64
    );
    block_kernels!(
        f32zb,
        "avx512f,avx2,fma",
        f32,
        __m512,
        16,
        1,
        __m512i,
        _mm512_loadu_si512,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_mul_ps,
        _mm512_setzero_ps,
        |v, i| _mm512_permutexvar_ps(i, v),
        cols_f32
    );
}
