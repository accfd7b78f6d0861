//! The reverse sweep's contraction for rows of whole 512-bit vectors of f64, eight rows at a time.
//!
//! [`super::vector::VectorRows::contract`] needs one dot product per row. Summing each row's
//! vector across its lanes on its own takes three shuffles and three adds, all on the port the
//! second multiply-add unit shares, and at d = 16 that cost as much as the multiply-adds. Eight
//! rows' vectors are summed together instead, by a transpose-and-add that ends with the eight
//! sums in one vector: 14 shuffles and 7 adds for the eight rows, not 24 and 24.

use std::arch::x86_64::*;

/// Lanes of one vector, and rows per block.
const W: usize = 8;

/// `out[i] = c·Σ_j g[i,j]·z[j]` and `dz[j] += c·Σ_i g[i,j]·b[i]` for rows of `D` (one to four
/// vectors of eight), as the 512-bit row kernel's `contract`, the dot products summed eight rows
/// at a time.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn contract_f64<const D: usize>(
    g: &[f64],
    b: &[f64],
    z: &[f64],
    c: f64,
    dz: &mut [f64],
    out: &mut [f64],
) {
    let n = b.len();
    assert!(
        D > 0
            && D.is_multiple_of(W)
            && D <= 4 * W
            && z.len() >= D
            && dz.len() >= D
            && g.len() >= n * D
            && out.len() >= n
    );
    let (gp, zp, op) = (g.as_ptr(), z.as_ptr(), out.as_mut_ptr());
    let mut zv = [_mm512_setzero_pd(); 4];
    for (k, v) in zv.iter_mut().enumerate().take(D / W) {
        *v = _mm512_loadu_pd(zp.add(k * W));
    }
    // `dz`'s sums in four sets of accumulators, row `i` adding to set `i mod 4`: one set would
    // make each row wait for the last one's multiply-adds (four cycles each), where the row's
    // own work takes two.
    let mut sets = [[_mm512_setzero_pd(); 4]; 4];
    let cv = _mm512_set1_pd(c);
    let blocks = n / W;
    for blk in 0..blocks {
        let mut dots = [_mm512_setzero_pd(); W];
        for (r, dot) in dots.iter_mut().enumerate() {
            let i = blk * W + r;
            let bv = _mm512_set1_pd(*b.get_unchecked(i));
            let acc = &mut sets[r % 4];
            for k in 0..D / W {
                let row = _mm512_loadu_pd(gp.add(i * D + k * W));
                *dot = _mm512_fmadd_pd(row, zv[k], *dot);
                acc[k] = _mm512_fmadd_pd(row, bv, acc[k]);
            }
        }
        _mm512_storeu_pd(op.add(blk * W), _mm512_mul_pd(sum_lanes(&dots), cv));
    }
    let mut acc = [_mm512_setzero_pd(); 4];
    for (k, a) in acc.iter_mut().enumerate().take(D / W) {
        let [s0, s1, s2, s3] = sets.map(|s| s[k]);
        *a = _mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3));
    }
    for i in blocks * W..n {
        let bv = _mm512_set1_pd(*b.get_unchecked(i));
        let mut dot = _mm512_setzero_pd();
        for k in 0..D / W {
            let row = _mm512_loadu_pd(gp.add(i * D + k * W));
            dot = _mm512_fmadd_pd(row, zv[k], dot);
            acc[k] = _mm512_fmadd_pd(row, bv, acc[k]);
        }
        *op.add(i) = _mm512_reduce_add_pd(dot) * c;
    }
    let dzp = dz.as_mut_ptr();
    for (k, a) in acc.iter().enumerate().take(D / W) {
        let q = dzp.add(k * W);
        _mm512_storeu_pd(q, _mm512_fmadd_pd(*a, cv, _mm512_loadu_pd(q)));
    }
}

/// Lane `r` of the result is the sum of the lanes of `v[r]`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn sum_lanes(v: &[__m512d; W]) -> __m512d {
    let (p01, p23) = (pair(v[0], v[1]), pair(v[2], v[3]));
    let (p45, p67) = (pair(v[4], v[5]), pair(v[6], v[7]));
    // Chunks of q0123: (v0, v1) over lanes 0–3, (v0, v1) over 4–7, (v2, v3) over 0–3, over 4–7.
    let (q0123, q4567) = (halves(p01, p23), halves(p45, p67));
    // Chunks: (v0, v1), (v2, v3), (v4, v5), (v6, v7), each over all eight lanes.
    halves(q0123, q4567)
}

/// Lanes `(2m, 2m + 1)` of the result: the sums of lanes `(2m, 2m + 1)` of `a`, and of `b`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn pair(a: __m512d, b: __m512d) -> __m512d {
    _mm512_add_pd(_mm512_unpacklo_pd(a, b), _mm512_unpackhi_pd(a, b))
}

/// In 128-bit chunks: `[a0, a2, b0, b2] + [a1, a3, b1, b3]`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn halves(a: __m512d, b: __m512d) -> __m512d {
    _mm512_add_pd(
        _mm512_shuffle_f64x2::<0b10_00_10_00>(a, b),
        _mm512_shuffle_f64x2::<0b11_01_11_01>(a, b),
    )
}
