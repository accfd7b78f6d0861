//! Horner's step and its reverse for [`LANES`] paths at once, stored lane-interleaved: coefficient
//! `c` of path `l` sits at `c·LANES + l`, and so does channel `j` of the increments.
//!
//! Every loop's innermost index is then the lane, contiguous and of a compile-time length, so the
//! loops vectorise exactly, with no shuffles, no remainders and no horizontal sums, whatever the
//! dimension. This is the fast layout for many small signatures (short rows waste most of a vector
//! in the one-path layout); for large signatures the one-path layout keeps the working set in cache.
//! The arithmetic per lane is the same as [`super::mul_exp`]'s, in the same order.

use super::reciprocals;
use super::simd::{multiversion, MulAdd};
use crate::layout::TensorShape;
use crate::Scalar;

/// Paths processed together.
pub const LANES: usize = 8;
const L: usize = LANES;

/// Per-thread buffers for [`mul_exp_lanes`] and [`mul_exp_backprop_lanes`], like
/// [`super::HornerScratch`] with every buffer `LANES` times longer.
pub struct LaneScratch<T> {
    inv: Vec<T>,
    chain: Vec<T>,
    ping: Vec<T>,
    pong: Vec<T>,
}

impl<T: Scalar> LaneScratch<T> {
    pub fn new(shape: &TensorShape) -> Self {
        LaneScratch {
            inv: reciprocals(shape.degree),
            chain: vec![T::zero(); shape.offset(shape.degree.max(1)).max(1) * L],
            ping: vec![T::zero(); shape.top_scratch_len() * L],
            pong: vec![T::zero(); shape.top_scratch_len() * L],
        }
    }
}

/// Slice of level `k` (lane-interleaved).
fn level(shape: &TensorShape, k: usize) -> std::ops::Range<usize> {
    shape.offset(k) * L..shape.offset(k + 1) * L
}

multiversion! {
    dims(shape.dim)
    /// `s ← s ⊗ exp(z)` for each lane, in place.
    pub fn mul_exp_lanes(shape: &TensorShape, s: &mut [T], z: &[T], scratch: &mut LaneScratch<T>) => mul_exp_lanes_impl
}

#[inline(always)]
fn mul_exp_lanes_impl<T: Scalar, M: MulAdd, const D: usize>(
    shape: &TensorShape,
    s: &mut [T],
    z: &[T],
    scratch: &mut LaneScratch<T>,
) {
    let (d, n) = (dim::<D>(shape.dim), shape.degree);
    if n == 0 {
        return;
    }
    let inv = &scratch.inv;
    let (mut p, mut q) = (&mut scratch.ping[..], &mut scratch.pong[..]);
    for k in (2..=n).rev() {
        for x in 0..d * L {
            p[x] = M::madd(z[x], inv[k], s[x]);
        }
        let mut len = d;
        for m in 1..k - 1 {
            let next = &s[level(shape, m + 1)];
            outer_add::<T, M, D>(&p[..len * L], inv[k - m], z, next, &mut q[..len * d * L]);
            std::mem::swap(&mut p, &mut q);
            len *= d;
        }
        outer_acc::<T, M, D>(&p[..len * L], z, &mut s[level(shape, k)]);
    }
    for x in 0..d * L {
        s[x] += z[x];
    }
}

multiversion! {
    dims(shape.dim)
    /// The reverse of [`mul_exp_lanes`], lane by lane as [`super::mul_exp_backprop`].
    pub fn mul_exp_backprop_lanes(
        shape: &TensorShape,
        s_prev: &[T],
        z: &[T],
        g: &mut [T],
        dz: &mut [T],
        scratch: &mut LaneScratch<T>,
    ) => mul_exp_backprop_lanes_impl
}

#[inline(always)]
fn mul_exp_backprop_lanes_impl<T: Scalar, M: MulAdd, const D: usize>(
    shape: &TensorShape,
    s_prev: &[T],
    z: &[T],
    g: &mut [T],
    dz: &mut [T],
    scratch: &mut LaneScratch<T>,
) {
    let (d, n) = (dim::<D>(shape.dim), shape.degree);
    if n == 0 {
        return;
    }
    let LaneScratch {
        inv,
        chain,
        ping,
        pong,
    } = scratch;
    for x in 0..d * L {
        dz[x] += g[x];
    }
    for k in 2..=n {
        for x in 0..d * L {
            chain[x] = M::madd(z[x], inv[k], s_prev[x]);
        }
        let mut len = d;
        for m in 1..k - 1 {
            let (done, rest) = chain.split_at_mut(shape.offset(m + 1) * L);
            let next = &s_prev[level(shape, m + 1)];
            let bm = &done[shape.offset(m) * L..(shape.offset(m) + len) * L];
            outer_add::<T, M, D>(bm, inv[k - m], z, next, &mut rest[..len * d * L]);
            len *= d;
        }
        let (low, high) = g.split_at_mut(shape.offset(k) * L);
        let (mut p, mut q) = (&mut ping[..], &mut pong[..]);
        let b = &chain[shape.offset(k - 1) * L..(shape.offset(k - 1) + len) * L];
        contract::<T, M, D>(&high[..len * d * L], b, z, T::one(), dz, &mut p[..len * L]);
        for m in (1..k - 1).rev() {
            len /= d;
            let gm = &mut low[level(shape, m + 1)];
            for (gi, &pi) in gm.iter_mut().zip(p.iter()) {
                *gi += pi;
            }
            let b = &chain[shape.offset(m) * L..(shape.offset(m) + len) * L];
            contract::<T, M, D>(&p[..len * d * L], b, z, inv[k - m], dz, &mut q[..len * L]);
            std::mem::swap(&mut p, &mut q);
        }
        for x in 0..d * L {
            low[x] += p[x];
            dz[x] = M::madd(p[x], inv[k], dz[x]);
        }
    }
}

// The loops below work on `[T; L]` arrays rather than slices: with the lane count in the type,
// LLVM turns each lane loop into whole vector instructions (with slices it left them scalar).

/// The dimension: the compile-time `D` where the caller specialised one (see `by_dim!`), else `d`.
#[inline(always)]
fn dim<const D: usize>(d: usize) -> usize {
    if D == 0 {
        d
    } else {
        D
    }
}

fn lanes<T>(x: &[T]) -> &[T; L] {
    x.try_into().expect("a group of LANES values")
}

fn lanes_mut<T>(x: &mut [T]) -> &mut [T; L] {
    x.try_into().expect("a group of LANES values")
}

/// `out[i,j] = c·b[i]·z[j] + add[i,j]`, lane by lane.
#[inline(always)]
fn outer_add<T: Scalar, M: MulAdd, const D: usize>(
    b: &[T],
    c: T,
    z: &[T],
    add: &[T],
    out: &mut [T],
) {
    let d = dim::<D>(z.len() / L);
    let rows = add.chunks_exact(d * L).zip(out.chunks_exact_mut(d * L));
    for (bi, (arow, orow)) in b.chunks_exact(L).zip(rows) {
        let bi = lanes(bi);
        let bc: [T; L] = std::array::from_fn(|l| bi[l] * c);
        let cells = z[..d * L]
            .chunks_exact(L)
            .zip(arow.chunks_exact(L))
            .zip(orow.chunks_exact_mut(L));
        for ((zj, a), o) in cells {
            let (zj, a) = (lanes(zj), lanes(a));
            *lanes_mut(o) = std::array::from_fn(|l| M::madd(bc[l], zj[l], a[l]));
        }
    }
}

/// `out[i,j] += b[i]·z[j]`, lane by lane.
#[inline(always)]
fn outer_acc<T: Scalar, M: MulAdd, const D: usize>(b: &[T], z: &[T], out: &mut [T]) {
    let d = dim::<D>(z.len() / L);
    for (bi, orow) in b.chunks_exact(L).zip(out.chunks_exact_mut(d * L)) {
        let bi = lanes(bi);
        for (zj, o) in z[..d * L].chunks_exact(L).zip(orow.chunks_exact_mut(L)) {
            let (zj, o) = (lanes(zj), lanes_mut(o));
            *o = std::array::from_fn(|l| M::madd(bi[l], zj[l], o[l]));
        }
    }
}

/// `out[i] = c·Σ_j g[i,j]·z[j]` and `dz[j] += c·Σ_i g[i,j]·b[i]`, lane by lane.
#[inline(always)]
fn contract<T: Scalar, M: MulAdd, const D: usize>(
    g: &[T],
    b: &[T],
    z: &[T],
    c: T,
    dz: &mut [T],
    out: &mut [T],
) {
    let d = dim::<D>(z.len() / L);
    for ((bi, grow), o) in b
        .chunks_exact(L)
        .zip(g.chunks_exact(d * L))
        .zip(out.chunks_exact_mut(L))
    {
        let bi = lanes(bi);
        let bc: [T; L] = std::array::from_fn(|l| bi[l] * c);
        let mut dot = [T::zero(); L];
        for ((zj, gj), dzj) in z[..d * L]
            .chunks_exact(L)
            .zip(grow.chunks_exact(L))
            .zip(dz.chunks_exact_mut(L))
        {
            let (zj, gj, dzj) = (lanes(zj), lanes(gj), lanes_mut(dzj));
            dot = std::array::from_fn(|l| M::madd(gj[l], zj[l], dot[l]));
            *dzj = std::array::from_fn(|l| M::madd(gj[l], bc[l], dzj[l]));
        }
        *lanes_mut(o) = std::array::from_fn(|l| dot[l] * c);
    }
}
