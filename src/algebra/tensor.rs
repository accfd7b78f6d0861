//! The truncated tensor product (Chen's product), the tensor exponential, and their reverses.

use super::reciprocals;
use crate::layout::TensorShape;
use crate::Scalar;

/// `out = a ⊗ b` (level 0 of both is 1): `out_k = a_k + b_k + Σ_{j=1}^{k-1} a_j ⊗ b_{k-j}`.
pub fn tensor_mul<T: Scalar>(shape: &TensorShape, a: &[T], b: &[T], out: &mut [T]) {
    for k in 1..=shape.degree {
        let level = shape.offset(k)..shape.offset(k + 1);
        for ((o, x), y) in out[level.clone()]
            .iter_mut()
            .zip(&a[level.clone()])
            .zip(&b[level])
        {
            *o = *x + *y;
        }
        for j in 1..k {
            let aj = &a[shape.offset(j)..shape.offset(j + 1)];
            let bm = &b[shape.offset(k - j)..shape.offset(k - j + 1)];
            let ok = &mut out[shape.offset(k)..shape.offset(k + 1)];
            for (i, &ai) in aj.iter().enumerate() {
                let row = &mut ok[i * bm.len()..(i + 1) * bm.len()];
                for (o, &bu) in row.iter_mut().zip(bm) {
                    *o += ai * bu;
                }
            }
        }
    }
}

/// Gradients of [`tensor_mul`]: given `g = dF/d(a ⊗ b)`, add `dF/da` into `da` and `dF/db` into `db`.
pub fn tensor_mul_backprop<T: Scalar>(
    shape: &TensorShape,
    g: &[T],
    a: &[T],
    b: &[T],
    da: &mut [T],
    db: &mut [T],
) {
    for k in 1..=shape.degree {
        let level = shape.offset(k)..shape.offset(k + 1);
        for i in level {
            da[i] += g[i];
            db[i] += g[i];
        }
        let gk = &g[shape.offset(k)..shape.offset(k + 1)];
        for j in 1..k {
            let m = k - j;
            let (aj_range, bm_range) = (
                shape.offset(j)..shape.offset(j + 1),
                shape.offset(m)..shape.offset(m + 1),
            );
            let aj = &a[aj_range.clone()];
            let bm = &b[bm_range.clone()];
            let row_len = bm.len();
            for (i, &ai) in aj.iter().enumerate() {
                let row = &gk[i * row_len..(i + 1) * row_len];
                let mut acc = T::zero();
                for (u, (&gu, &bu)) in row.iter().zip(bm).enumerate() {
                    acc += gu * bu;
                    db[bm_range.start + u] += gu * ai;
                }
                da[aj_range.start + i] += acc;
            }
        }
    }
}

/// `out = exp(z) = (z, z⊗z/2!, …, z^{⊗N}/N!)`.
pub fn exp<T: Scalar>(shape: &TensorShape, z: &[T], out: &mut [T]) {
    if shape.degree == 0 {
        return;
    }
    let inv = reciprocals::<T>(shape.degree);
    let d = shape.dim;
    out[..d].copy_from_slice(z);
    for k in 2..=shape.degree {
        let (low, high) = out.split_at_mut(shape.offset(k));
        let prev = &low[shape.offset(k - 1)..];
        for (i, &p) in prev.iter().enumerate() {
            let pi = p * inv[k];
            for j in 0..d {
                high[i * d + j] = pi * z[j];
            }
        }
    }
}

/// Gradient of [`exp`]: given `e = exp(z)` and `de = dF/de` (consumed as workspace), add `dF/dz` to `dz`.
pub fn exp_backprop<T: Scalar>(shape: &TensorShape, z: &[T], e: &[T], de: &mut [T], dz: &mut [T]) {
    if shape.degree == 0 {
        return;
    }
    let inv = reciprocals::<T>(shape.degree);
    let d = shape.dim;
    // e_k = e_{k-1} ⊗ z / k, reversed from the top level down.
    for k in (2..=shape.degree).rev() {
        let (low, high) = de.split_at_mut(shape.offset(k));
        let prev = &e[shape.offset(k - 1)..shape.offset(k)];
        let dprev = &mut low[shape.offset(k - 1)..];
        for (i, &p) in prev.iter().enumerate() {
            let row = &high[i * d..(i + 1) * d];
            let mut acc = T::zero();
            for j in 0..d {
                acc += row[j] * z[j];
                dz[j] += row[j] * p * inv[k];
            }
            dprev[i] += acc * inv[k];
        }
    }
    for j in 0..d {
        dz[j] += de[j];
    }
}

/// `out = s^{-1}` for a group-like `s` (a signature): the antipode,
/// `out_{i1…ik} = (-1)^k s_{ik…i1}` — the signature of the reversed path, without the path.
pub fn sig_inverse<T: Scalar>(shape: &TensorShape, s: &[T], out: &mut [T]) {
    let d = shape.dim;
    for k in 1..=shape.degree {
        let (start, sign) = (
            shape.offset(k),
            if k % 2 == 0 { T::one() } else { -T::one() },
        );
        for idx in 0..shape.level_len(k) {
            let (mut rest, mut rev) = (idx, 0);
            for _ in 0..k {
                rev = rev * d + rest % d;
                rest /= d;
            }
            out[start + rev] = sign * s[start + idx];
        }
    }
}
