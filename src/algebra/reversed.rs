//! Horner's step with every level's words stored last letter first.
//!
//! Word `a_1 … a_k` sits at `a_k·d^(k-1) + … + a_2·d + a_1` instead of `a_1·d^(k-1) + … + a_k`.
//! Then `x ⊗ z` for `x` at level `m` is `d` contiguous blocks, block `j` being `z_j·x`, so every
//! link of Horner's chain and every level's update is a plain multiply-add over whole vectors
//! with `z_j` broadcast, whatever `d` is. By rows, a row of `d` coefficients fills part of a
//! vector unless `d` is a multiple of its width, and the kernels permute `x` and `z` to fill it.
//! The signature is turned back to rows once, at the end of the path ([`to_rows`]).

use super::horner::{chain, HornerScratch, Link};
use super::simd::{dim, multiversion, MulAdd};
use super::step_layout::REVERSED_STEPS;
use crate::layout::TensorShape;
use crate::Scalar;

/// `out[j·len + i] += x[i]·z[j]`: a level's update `S_k += B_{k-1} ⊗ z`.
#[inline(always)]
fn update<T: Scalar, M: MulAdd, const D: usize>(x: &[T], z: &[T], out: &mut [T]) {
    let len = x.len();
    for (j, &zj) in z[..dim::<D>(z.len())].iter().enumerate() {
        let o = &mut out[j * len..(j + 1) * len];
        for i in 0..len {
            o[i] = M::madd(x[i], zj, o[i]);
        }
    }
}

/// Words reversed: the chain link `c·x ⊗ z + add` is
/// `out[j·len + i] = madd(x[i], c·z[j], add[j·len + i])`.
pub(super) struct Reversed;

impl Link for Reversed {
    #[inline(always)]
    fn link<T: Scalar, M: MulAdd, const D: usize>(
        x: &[T],
        c: T,
        z: &[T],
        add: &[T],
        out: &mut [T],
    ) {
        let len = x.len();
        for (j, &zj) in z[..dim::<D>(z.len())].iter().enumerate() {
            let cz = c * zj;
            let (o, a) = (
                &mut out[j * len..(j + 1) * len],
                &add[j * len..(j + 1) * len],
            );
            for i in 0..len {
                o[i] = M::madd(x[i], cz, a[i]);
            }
        }
    }
}

/// One step `s ← s ⊗ exp(z)`, all levels reversed.
#[inline(always)]
fn step<T: Scalar, M: MulAdd, const D: usize>(
    shape: &TensorShape,
    s: &mut [T],
    z: &[T],
    inv: &[T],
    ping: &mut [T],
    pong: &mut [T],
) {
    for k in (2..=shape.degree).rev() {
        let b = chain::<T, M, D, Reversed>(shape, s, z, k, inv, ping, pong);
        update::<T, M, D>(b, z, &mut s[shape.offset(k)..shape.offset(k + 1)]);
    }
    for (s, &z) in s.iter_mut().zip(&z[..shape.dim]) {
        *s += z;
    }
}

multiversion! {
    dims(shape.dim)
    /// `s ← s ⊗ exp(z_0) ⊗ … ⊗ exp(z_3)` for the [`REVERSED_STEPS`] increments one after the
    /// other in `zs`, with `s` reversed ([`to_rows`] turns it back): the top level is read and
    /// written once for all four steps, as in [`super::mul_exp_fused`]. A shorter `zs` takes its
    /// steps one at a time.
    pub fn mul_exp_reversed(shape: &TensorShape, s: &mut [T], zs: &[T], scratch: &mut HornerScratch<T>) => mul_exp_reversed_body
}

#[inline(always)]
fn mul_exp_reversed_body<T: Scalar, M: MulAdd, const D: usize>(
    shape: &TensorShape,
    s: &mut [T],
    zs: &[T],
    scratch: &mut HornerScratch<T>,
) {
    let (d, n) = (shape.dim, shape.degree);
    let HornerScratch {
        inv,
        ping,
        pong,
        tops,
        lower,
        ..
    } = scratch;
    if n < 2 || zs.len() != REVERSED_STEPS * d {
        for z in zs.chunks_exact(d) {
            step::<T, M, D>(shape, s, z, inv, ping, pong);
        }
        return;
    }
    let top = shape.level_len(n - 1);
    if tops.len() < REVERSED_STEPS * top {
        tops.resize_zeroed(REVERSED_STEPS * top);
    }
    for (z, b) in zs.chunks_exact(d).zip(tops.chunks_exact_mut(top)) {
        // As in the row layout's fused steps: `B_{N-1}` must land in `b`.
        if (n - 2) % 2 == 0 {
            chain::<T, M, D, Reversed>(shape, s, z, n, inv, b, pong);
        } else {
            chain::<T, M, D, Reversed>(shape, s, z, n, inv, ping, b);
        }
        step::<T, M, D>(lower, &mut s[..lower.len()], z, inv, ping, pong);
    }
    let b: [&[T]; REVERSED_STEPS] = std::array::from_fn(|i| &tops[i * top..(i + 1) * top]);
    let z: [&[T]; REVERSED_STEPS] = std::array::from_fn(|i| &zs[i * d..(i + 1) * d]);
    update4::<T, M>(b, z, &mut s[shape.offset(n)..shape.offset(n + 1)]);
}

/// `out[j·n + i] += Σ_s b[s][i]·z[s][j]` (`n` the length of each `b[s]`): the top level's update
/// for the fused steps, two blocks at a time so that each load of `b` can serve both. Plain
/// loops down contiguous blocks, which LLVM vectorises whole; the sum is taken in the order of
/// [`super::vector::VectorRows::outer_acc_steps`].
#[inline(always)]
fn update4<T: Scalar, M: MulAdd>(
    b: [&[T]; REVERSED_STEPS],
    z: [&[T]; REVERSED_STEPS],
    out: &mut [T],
) {
    let n = b[0].len();
    let [b0, b1, b2, b3] = b.map(|b| &b[..n]);
    let acc = |o: T, i: usize, z: [T; REVERSED_STEPS]| {
        let o = M::madd(b0[i], z[0], o);
        let o = M::madd(b1[i], z[1], o);
        let o = M::madd(b2[i], z[2], o);
        M::madd(b3[i], z[3], o)
    };
    let block = |j: usize| z.map(|z| z[j]);
    let mut pairs = out.chunks_exact_mut(2 * n);
    let mut j = 0;
    for pair in &mut pairs {
        let (c0, c1) = pair.split_at_mut(n);
        let (z0, z1) = (block(j), block(j + 1));
        for (i, (o0, o1)) in c0.iter_mut().zip(c1.iter_mut()).enumerate() {
            *o0 = acc(*o0, i, z0);
            *o1 = acc(*o1, i, z1);
        }
        j += 2;
    }
    let last = pairs.into_remainder();
    if !last.is_empty() {
        let z0 = block(j);
        for (i, o) in last.iter_mut().enumerate() {
            *o = acc(*o, i, z0);
        }
    }
}

/// Write `s`, every level in reversed words, to `out` by rows.
pub fn to_rows<T: Scalar>(
    shape: &TensorShape,
    s: &[T],
    out: &mut [T],
    scratch: &mut HornerScratch<T>,
) {
    let (d, n) = (shape.dim, shape.degree);
    if d == 1 || n < 2 {
        out.copy_from_slice(s);
        return;
    }
    out[..d].copy_from_slice(&s[..d]);
    let reversed = &mut scratch.reversed;
    let top = shape.level_len(n);
    if reversed.len() != top {
        // `reversed[w]` for word `w` of the top level, built level by level in place:
        // a word `w·d + j` one level up sits at `j·d^k + reversed[w]`.
        reversed.clear();
        reversed.resize(top, 0);
        let mut len = 1;
        for _ in 0..n {
            for w in (0..len).rev() {
                let r = reversed[w];
                for j in 0..d {
                    reversed[w * d + j] = (j * len) as u32 + r;
                }
            }
            len *= d;
        }
    }
    for k in 2..=n {
        let level = &s[shape.offset(k)..shape.offset(k + 1)];
        let rows = &mut out[shape.offset(k)..shape.offset(k + 1)];
        // Row `w` of level k (its first k − 1 letters) is column `r` of the reversed level:
        // entry `j` sits at `j·d^(k-1) + r`, with `r` the reversed index of `w`, which is that of
        // the top-level word `w` followed by zeros.
        let (blocks, stride) = (shape.level_len(k - 1), d.pow((n - k + 1) as u32));
        for (row, &r) in rows
            .chunks_exact_mut(d)
            .zip(reversed.iter().step_by(stride))
        {
            for (j, x) in row.iter_mut().enumerate() {
                *x = level[j * blocks + r as usize];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algebra::mul_exp;

    /// Steps in reversed words, four at a time and the rest singly, then turned back to rows,
    /// equal single steps by rows: specialised and generic dimensions, and degrees 1–5.
    #[test]
    fn reversed_steps_match_row_steps() {
        for d in [1, 2, 3, 4, 5, 7, 9, 12, 16] {
            for n in 1..=5 {
                if d >= 9 && n > 3 {
                    continue;
                }
                let shape = TensorShape::new(d, n).unwrap();
                let zs: Vec<f64> = (0..7 * d)
                    .map(|i| ((i * 5 % 11) as f64 - 5.0) / 20.0)
                    .collect();
                let mut scratch = HornerScratch::new(&shape);
                let mut rows = vec![0.0; shape.len()];
                for z in zs.chunks_exact(d) {
                    mul_exp(&shape, &mut rows, z, &mut scratch);
                }
                let mut reversed = vec![0.0; shape.len()];
                mul_exp_reversed(&shape, &mut reversed, &zs[..4 * d], &mut scratch);
                mul_exp_reversed(&shape, &mut reversed, &zs[4 * d..], &mut scratch);
                let mut back = vec![0.0; shape.len()];
                to_rows(&shape, &reversed, &mut back, &mut scratch);
                for (i, (a, b)) in back.iter().zip(&rows).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                        "d={d} n={n} at {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// [`to_rows`] moves each word from its reversed place: word `(1, 0)` of level 2 at d = 3,
    /// index 3 by rows, sits at 1 reversed; `(0, 2, 1)` of level 3, index 7, sits at 15.
    #[test]
    fn to_rows_reverses_each_words_letters() {
        let shape = TensorShape::new(3, 3).unwrap();
        let reversed: Vec<f64> = (0..shape.len()).map(|i| i as f64).collect();
        let mut scratch = HornerScratch::new(&shape);
        let mut s = vec![0.0; shape.len()];
        to_rows(&shape, &reversed, &mut s, &mut scratch);
        assert_eq!(&s[..3], &[0.0, 1.0, 2.0]);
        let (l2, l3) = (shape.offset(2), shape.offset(3));
        assert_eq!(s[l2 + 3], (l2 + 1) as f64);
        assert_eq!(s[l3 + 7], (l3 + 15) as f64);
    }
}
