//! `S ← S ⊗ exp(z)` by Horner's scheme, and its reverse.
//!
//! For each level `k` (top first, so lower levels are still the old ones) Horner evaluates
//! `S_k + ((…((z/k + S_1) ⊗ z/(k-1) + S_2) ⊗ z/(k-2) …) + S_{k-1}) ⊗ z` as a chain
//! `B_1 = z/k + S_1`, `B_{m+1} = c_m·B_m ⊗ z + S_{m+1}` with `c_m = 1/(k-m)`, then `S_k += B_{k-1} ⊗ z`.
//! The cost is about one multiply-add per coefficient of the result, the least any method can do.
//! Products are written `a * b + c`, not `mul_add`: on baseline x86-64 `mul_add` is a libm call.

use super::reciprocals;
use crate::layout::TensorShape;
use crate::Scalar;

/// Per-thread buffers for [`mul_exp`] and [`mul_exp_backprop`], allocated once and reused every step.
pub struct HornerScratch<T> {
    /// Level-1 constants `1/k`.
    inv: Vec<T>,
    /// The chain `B_1 … B_{k-1}` of one level, one after the other (`B_m` at `chain_offset[m]`).
    chain: Vec<T>,
    chain_offset: Vec<usize>,
    /// The running gradient `dB_m` of the reverse chain.
    work: Vec<T>,
}

impl<T: Scalar> HornerScratch<T> {
    pub fn new(shape: &TensorShape) -> Self {
        let d = shape.dim;
        let mut chain_offset = vec![0; shape.degree.max(1) + 1];
        let mut level = 1usize;
        for m in 1..shape.degree.max(1) {
            level *= d;
            chain_offset[m + 1] = chain_offset[m] + level;
        }
        let chain_len = chain_offset[shape.degree.max(1)].max(1);
        HornerScratch {
            inv: reciprocals(shape.degree),
            chain: vec![T::zero(); chain_len],
            chain_offset,
            work: vec![T::zero(); shape.top_scratch_len()],
        }
    }
}

/// `s ← s ⊗ exp(z)`, in place.
pub fn mul_exp<T: Scalar>(
    shape: &TensorShape,
    s: &mut [T],
    z: &[T],
    scratch: &mut HornerScratch<T>,
) {
    let d = shape.dim;
    let n = shape.degree;
    if n == 0 {
        return;
    }
    let inv = &scratch.inv;
    // One scratch level of d^(N-1) suffices: the chain grows in place, back to front, so that
    // B_m[i] is read before the slots i·d..i·d+d of B_{m+1} overwrite it.
    let b = &mut scratch.work;
    for k in (2..=n).rev() {
        for i in 0..d {
            b[i] = z[i] * inv[k] + s[i];
        }
        let mut len = d;
        for m in 1..k - 1 {
            let c = inv[k - m];
            let next = &s[shape.offset(m + 1)..shape.offset(m + 2)];
            for i in (0..len).rev() {
                let bi = b[i] * c;
                let row = &next[i * d..(i + 1) * d];
                for j in 0..d {
                    b[i * d + j] = bi * z[j] + row[j];
                }
            }
            len *= d;
        }
        let sk = &mut s[shape.offset(k)..shape.offset(k + 1)];
        for i in 0..len {
            let bi = b[i];
            for j in 0..d {
                sk[i * d + j] = bi * z[j] + sk[i * d + j];
            }
        }
    }
    for i in 0..d {
        s[i] += z[i];
    }
}

/// The reverse of [`mul_exp`]: with `s_prev` the tensor before the step and `g` the gradient with
/// respect to `s_prev ⊗ exp(z)`, turn `g` into the gradient with respect to `s_prev` (in place) and add
/// the gradient with respect to `z` into `dz`.
///
/// Level `k`'s gradient only flows to levels below `k`, so processing levels bottom-up reads each `g_k`
/// before anything is added to it and needs no second gradient buffer.
pub fn mul_exp_backprop<T: Scalar>(
    shape: &TensorShape,
    s_prev: &[T],
    z: &[T],
    g: &mut [T],
    dz: &mut [T],
    scratch: &mut HornerScratch<T>,
) {
    let d = shape.dim;
    let n = shape.degree;
    if n == 0 {
        return;
    }
    let HornerScratch {
        inv,
        chain,
        chain_offset,
        work,
    } = scratch;
    // Level 1: S_1 += z.
    for j in 0..d {
        dz[j] += g[j];
    }
    for k in 2..=n {
        // Forward: the chain B_1 … B_{k-1} of this level, kept for the reverse pass.
        for i in 0..d {
            chain[i] = z[i] * inv[k] + s_prev[i];
        }
        let mut len = d;
        for m in 1..k - 1 {
            let c = inv[k - m];
            let (done, rest) = chain.split_at_mut(chain_offset[m + 1]);
            let bm = &done[chain_offset[m]..];
            let next = &s_prev[shape.offset(m + 1)..shape.offset(m + 2)];
            for i in 0..len {
                let bi = bm[i] * c;
                for j in 0..d {
                    rest[i * d + j] = bi * z[j] + next[i * d + j];
                }
            }
            len *= d;
        }
        // Reverse of S_k += B_{k-1} ⊗ z, then of each B_{m+1} = c_m·B_m ⊗ z + S_{m+1}.
        let (low, high) = g.split_at_mut(shape.offset(k));
        contract_last(
            &high[..len * d],
            &chain[chain_offset[k - 1]..],
            z,
            T::one(),
            dz,
            work,
        );
        for m in (1..k - 1).rev() {
            len /= d;
            let gm1 = &mut low[shape.offset(m + 1)..shape.offset(m + 2)];
            for (gi, wi) in gm1.iter_mut().zip(work.iter()) {
                *gi += *wi;
            }
            contract_last_in_place(work, len, &chain[chain_offset[m]..], z, inv[k - m], dz);
        }
        for i in 0..d {
            low[i] += work[i];
            dz[i] += work[i] * inv[k];
        }
    }
}

/// For `D` of length `len·d` (read as `len` rows of `d`): `out[i] = c·Σ_j D[i,j] z[j]` and
/// `dz[j] += c·Σ_i D[i,j] b[i]`.
fn contract_last<T: Scalar>(dmat: &[T], b: &[T], z: &[T], c: T, dz: &mut [T], out: &mut [T]) {
    let d = z.len();
    for (i, row) in dmat.chunks_exact(d).enumerate() {
        let bi = b[i] * c;
        let mut acc = T::zero();
        for j in 0..d {
            acc = row[j] * z[j] + acc;
            dz[j] = row[j] * bi + dz[j];
        }
        out[i] = acc * c;
    }
}

/// [`contract_last`] with `out` overlapping `D` (row `i` is read before slot `i` is written, and
/// slot `i` precedes every row still to be read).
fn contract_last_in_place<T: Scalar>(
    w: &mut [T],
    len: usize,
    b: &[T],
    z: &[T],
    c: T,
    dz: &mut [T],
) {
    let d = z.len();
    for i in 0..len {
        let bi = b[i] * c;
        let mut acc = T::zero();
        for j in 0..d {
            let x = w[i * d + j];
            acc = x * z[j] + acc;
            dz[j] = x * bi + dz[j];
        }
        w[i] = acc * c;
    }
}
