//! Horner's step and its reverse for `L` paths at once (see [`lane_count`]), stored
//! lane-interleaved: coefficient `c` of path `l` sits at `c·L + l`, and so does channel `j` of the
//! increments.
//!
//! Every loop's innermost index is then the lane, contiguous and of a compile-time length, so the
//! loops vectorise exactly, with no shuffles, no remainders and no horizontal sums, whatever the
//! dimension. This is the fast layout for many small signatures (short rows waste most of a vector
//! in the one-path layout); for large signatures the one-path layout keeps the working set in cache.
//! The arithmetic per lane is the same as [`super::mul_exp`]'s, in the same order; where several
//! steps are taken at once ([`super::lanes_fused`], degree 3 and up) the same multiply-adds are
//! reordered word by word, and agree to rounding.

use super::aligned::AlignedVec;
use super::lanes_fused::{fuses, mul_exp_lanes_fused, FusedScratch};
use super::reciprocals;
use super::simd::{multiversion, MulAdd};
use super::vector::{lanes_madd, lanes_scale};
use crate::layout::TensorShape;
use crate::Scalar;

/// Paths processed together for scalars of type `T`: one 512-bit vector, a cache line (8 f64,
/// 16 f32) (measured: docs/PERFORMANCE.md, *CPU kernel choices*).
pub const fn lane_count<T>() -> usize {
    64 / std::mem::size_of::<T>()
}

/// Per-thread buffers for [`mul_exp_lanes`] and [`mul_exp_backprop_lanes`], like
/// [`super::HornerScratch`] with every buffer `L` times longer.
pub struct LaneScratch<T, const L: usize> {
    inv: Vec<T>,
    chain: AlignedVec<T>,
    ping: AlignedVec<T>,
    pong: AlignedVec<T>,
    fused: FusedScratch<T, L>,
}

impl<T: Scalar, const L: usize> LaneScratch<T, L> {
    pub fn new(shape: &TensorShape) -> Self {
        LaneScratch {
            inv: reciprocals(shape.degree),
            chain: AlignedVec::zeroed(shape.offset(shape.degree.max(1)).max(1) * L),
            ping: AlignedVec::zeroed(shape.top_scratch_len() * L),
            pong: AlignedVec::zeroed(shape.top_scratch_len() * L),
            fused: FusedScratch::new(shape),
        }
    }
}

/// Slice of level `k` (lane-interleaved).
fn level<const L: usize>(shape: &TensorShape, k: usize) -> std::ops::Range<usize> {
    shape.offset(k) * L..shape.offset(k + 1) * L
}

multiversion! {
    dims(shape.dim) lanes(L)
    /// `s ← s ⊗ exp(z_0) ⊗ exp(z_1) ⊗ …` for each lane, in place, with the increments `z_t`
    /// (lane-interleaved, `dim·L` values each) stored one after the other in `zs`.
    pub fn mul_exp_lanes(shape: &TensorShape, s: &mut [T], zs: &[T], scratch: &mut LaneScratch<T, L>) => mul_exp_lanes_body
}

#[inline(always)]
fn mul_exp_lanes_body<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    shape: &TensorShape,
    s: &mut [T],
    zs: &[T],
    scratch: &mut LaneScratch<T, L>,
) {
    let (d, n) = (dim::<D>(shape.dim), shape.degree);
    if n == 0 {
        return;
    }
    let LaneScratch {
        inv,
        ping,
        pong,
        fused,
        ..
    } = scratch;
    let mut rest = zs;
    if fuses::<D>(shape) {
        rest = mul_exp_lanes_fused::<T, M, D, L>(shape, s, zs, inv, fused);
    }
    for z in rest.chunks_exact(d * L) {
        step::<T, M, D, L>(shape, n, s, z, inv, ping, pong);
    }
}

/// One step on levels `1..=top` only, `s ← s ⊗ exp(z)` truncated at `top`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    shape: &TensorShape,
    top: usize,
    s: &mut [T],
    z: &[T],
    inv: &[T],
    ping: &mut [T],
    pong: &mut [T],
) {
    let d = dim::<D>(shape.dim);
    for k in (2..=top).rev() {
        let (low, high) = s.split_at_mut(shape.offset(k) * L);
        let out = &mut high[..shape.level_len(k) * L];
        level_update::<T, M, D, L>(shape, low, out, z, k, inv, ping, pong);
    }
    for x in 0..d * L {
        s[x] += z[x];
    }
}

/// Horner's chain for level `k` from the levels below it (`low`): `S_k += B_{k-1} ⊗ z` into
/// `out = S_k`.
///
/// The chain starts from `B_0 = 1` (so that `B_1 = z/k + S_1` is one more link). Its last `r`
/// links are kept in registers by [`tail`]; the links before them, if any, are built level by
/// level in `ping`/`pong`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn level_update<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    shape: &TensorShape,
    low: &[T],
    out: &mut [T],
    z: &[T],
    k: usize,
    inv: &[T],
    ping: &mut [T],
    pong: &mut [T],
) {
    let d = dim::<D>(shape.dim);
    let (mut p, mut q) = (ping, pong);
    let r = (k - 1).min(TAIL);
    p[..L].fill(T::one());
    let mut len = 1;
    for m in 0..k - 1 - r {
        let next = &low[level::<L>(shape, m + 1)];
        outer_add::<T, M, D, L>(&p[..len * L], inv[k - m], z, next, &mut q[..len * d * L]);
        std::mem::swap(&mut p, &mut q);
        len *= d;
    }
    // Row `i` of the last stored link `B_{k-r-1}` feeds the `i`-th `len`-th part of each of the
    // levels `k-r … k-1` and of `out`. With `len = d^(k-1-r)`, the part of level `m` has
    // `d^(m-k+1+r)` entries: looked up, not divided, as this runs for every step.
    let part = |m: usize, i: usize| {
        let w = shape.level_len(m + 1 + r - k) * L;
        shape.offset(m) * L + i * w..shape.offset(m) * L + (i + 1) * w
    };
    let w = shape.level_len(r + 1) * L;
    for (i, b) in p[..len * L].chunks_exact(L).enumerate() {
        let mut adds: [&[T]; TAIL] = [&[]; TAIL];
        for (j, add) in adds.iter_mut().enumerate().take(r) {
            *add = &low[part(k - r + j, i)];
        }
        tail::<T, M, D, L>(group_of(b), r, inv, z, adds, &mut out[i * w..(i + 1) * w]);
    }
}

/// Links of Horner's chain that [`tail`] keeps in registers.
const TAIL: usize = 3;

/// The last `r ≤ TAIL` links of a chain and the update of its level, from one row `b` of the
/// link before them: `B_{m+1} = c_m·B_m ⊗ z + S_{m+1}` with `c_m = 1/(r+1) … 1/2`, then
/// `S_k += B_{k-1} ⊗ z`. `adds[j]` is the part of `S_{k-r+j}` below `b`, `out` that of `S_k`.
///
/// Depth first: each link value is consumed by the next `d` multiply-adds as soon as it is
/// made, so it never goes to memory. Built breadth first, every link would be stored and
/// reloaded, and the kernel is bound by loads and stores, not arithmetic.
#[inline(always)]
fn tail<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    b: &[T; L],
    r: usize,
    inv: &[T],
    z: &[T],
    adds: [&[T]; TAIL],
    out: &mut [T],
) {
    match r {
        1 => tail1::<T, M, D, L>(b, inv[2], z, adds[0], out),
        2 => tail2::<T, M, D, L>(b, inv, z, [adds[0], adds[1]], out),
        _ => tail3::<T, M, D, L>(b, inv, z, adds, out),
    }
}

/// `b' = c·b ⊗ z + add`, the next link, one `[T; L]` per column `j`.
#[inline(always)]
fn link<T: Scalar, M: MulAdd, const L: usize>(b: &[T; L], c: T, zj: &[T], add: &[T]) -> [T; L] {
    lanes_madd::<T, M, L>(
        &lanes_scale::<T, M, L>(b, c),
        group_of(&zj[..L]),
        group_of(&add[..L]),
    )
}

#[inline(always)]
fn tail1<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    b: &[T; L],
    c: T,
    z: &[T],
    add: &[T],
    out: &mut [T],
) {
    let d = dim::<D>(z.len() / L);
    let (z, add, out) = (&z[..d * L], &add[..d * L], &mut out[..d * d * L]);
    for j in 0..d {
        let b1 = link::<T, M, L>(b, c, &z[j * L..], &add[j * L..]);
        for i in 0..d {
            let zi = group_of(&z[i * L..(i + 1) * L]);
            let o = group_of_mut(&mut out[(j * d + i) * L..(j * d + i + 1) * L]);
            *o = lanes_madd::<T, M, L>(&b1, zi, o);
        }
    }
}

#[inline(always)]
fn tail2<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    b: &[T; L],
    inv: &[T],
    z: &[T],
    adds: [&[T]; 2],
    out: &mut [T],
) {
    let d = dim::<D>(z.len() / L);
    let w = d * d * L;
    for j in 0..d {
        let b1 = link::<T, M, L>(
            b,
            inv[3],
            &z[j * L..(j + 1) * L],
            &adds[0][j * L..(j + 1) * L],
        );
        let add = &adds[1][j * d * L..(j + 1) * d * L];
        tail1::<T, M, D, L>(&b1, inv[2], z, add, &mut out[j * w..(j + 1) * w]);
    }
}

#[inline(always)]
fn tail3<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    b: &[T; L],
    inv: &[T],
    z: &[T],
    adds: [&[T]; 3],
    out: &mut [T],
) {
    let d = dim::<D>(z.len() / L);
    let (v, w) = (d * d * L, d * d * d * L);
    for j in 0..d {
        let b1 = link::<T, M, L>(
            b,
            inv[4],
            &z[j * L..(j + 1) * L],
            &adds[0][j * L..(j + 1) * L],
        );
        let a = [
            &adds[1][j * d * L..(j + 1) * d * L],
            &adds[2][j * v..(j + 1) * v],
        ];
        tail2::<T, M, D, L>(&b1, inv, z, a, &mut out[j * w..(j + 1) * w]);
    }
}

multiversion! {
    dims(shape.dim) lanes(L)
    /// The reverse of [`mul_exp_lanes`], lane by lane as [`super::mul_exp_backprop`].
    pub fn mul_exp_backprop_lanes(
        shape: &TensorShape,
        s_prev: &[T],
        z: &[T],
        g: &mut [T],
        dz: &mut [T],
        scratch: &mut LaneScratch<T, L>,
    ) => mul_exp_backprop_lanes_body
}

#[inline(always)]
fn mul_exp_backprop_lanes_body<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    shape: &TensorShape,
    s_prev: &[T],
    z: &[T],
    g: &mut [T],
    dz: &mut [T],
    scratch: &mut LaneScratch<T, L>,
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
        ..
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
            let next = &s_prev[level::<L>(shape, m + 1)];
            let bm = &done[shape.offset(m) * L..(shape.offset(m) + len) * L];
            outer_add::<T, M, D, L>(bm, inv[k - m], z, next, &mut rest[..len * d * L]);
            len *= d;
        }
        let (low, high) = g.split_at_mut(shape.offset(k) * L);
        let (mut p, mut q) = (&mut ping[..], &mut pong[..]);
        let b = &chain[shape.offset(k - 1) * L..(shape.offset(k - 1) + len) * L];
        contract::<T, M, D, L>(&high[..len * d * L], b, z, T::one(), dz, &mut p[..len * L]);
        for m in (1..k - 1).rev() {
            len /= d;
            let gm = &mut low[level::<L>(shape, m + 1)];
            for (gi, &pi) in gm.iter_mut().zip(p.iter()) {
                *gi += pi;
            }
            let b = &chain[shape.offset(m) * L..(shape.offset(m) + len) * L];
            contract::<T, M, D, L>(&p[..len * d * L], b, z, inv[k - m], dz, &mut q[..len * L]);
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
pub(super) fn dim<const D: usize>(d: usize) -> usize {
    if D == 0 {
        d
    } else {
        D
    }
}

pub(super) fn group_of<T, const L: usize>(x: &[T]) -> &[T; L] {
    x.try_into().expect("a group of L values")
}

pub(super) fn group_of_mut<T, const L: usize>(x: &mut [T]) -> &mut [T; L] {
    x.try_into().expect("a group of L values")
}

/// `out[i,j] = c·b[i]·z[j] + add[i,j]`, lane by lane.
#[inline(always)]
fn outer_add<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    b: &[T],
    c: T,
    z: &[T],
    add: &[T],
    out: &mut [T],
) {
    let d = dim::<D>(z.len() / L);
    let rows = b.len() / L;
    let (add, out) = (&add[..rows * d * L], &mut out[..rows * d * L]);
    for i in 0..rows {
        let bc = lanes_scale::<T, M, L>(group_of(&b[i * L..(i + 1) * L]), c);
        for j in 0..d {
            let (zj, a) = (
                group_of(&z[j * L..(j + 1) * L]),
                group_of(&add[(i * d + j) * L..][..L]),
            );
            *group_of_mut(&mut out[(i * d + j) * L..][..L]) = lanes_madd::<T, M, L>(&bc, zj, a);
        }
    }
}

/// `out[i] = c·Σ_j g[i,j]·z[j]` and `dz[j] += c·Σ_i g[i,j]·b[i]`, lane by lane.
///
/// With a compile-time dimension the sums into `dz` are kept in registers over all rows (as the
/// one-path loops do) instead of a load and store of `dz` per multiply-add.
#[inline(always)]
fn contract<T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    g: &[T],
    b: &[T],
    z: &[T],
    c: T,
    dz: &mut [T],
    out: &mut [T],
) {
    let d = dim::<D>(z.len() / L);
    let rows = out.len() / L;
    let (g, b, z, dz) = (
        &g[..rows * d * L],
        &b[..rows * L],
        &z[..d * L],
        &mut dz[..d * L],
    );
    let group = |x: &[T], i: usize| *group_of(&x[i * L..(i + 1) * L]);
    if D > 0 {
        let mut acc = [[T::zero(); L]; D];
        for i in 0..rows {
            let bi = group(b, i);
            let mut dot = [T::zero(); L];
            for (j, acc) in acc.iter_mut().enumerate() {
                let gj = group(g, i * D + j);
                dot = lanes_madd::<T, M, L>(&gj, &group(z, j), &dot);
                *acc = lanes_madd::<T, M, L>(&gj, &bi, acc);
            }
            *group_of_mut(&mut out[i * L..(i + 1) * L]) = lanes_scale::<T, M, L>(&dot, c);
        }
        for (j, acc) in acc.iter().enumerate() {
            let dzj = group_of_mut(&mut dz[j * L..(j + 1) * L]);
            *dzj = lanes_madd::<T, M, L>(acc, &[c; L], dzj);
        }
        return;
    }
    for i in 0..rows {
        let bc = lanes_scale::<T, M, L>(&group(b, i), c);
        let mut dot = [T::zero(); L];
        for j in 0..d {
            let gj = group(g, i * d + j);
            dot = lanes_madd::<T, M, L>(&gj, &group(z, j), &dot);
            let dzj = group_of_mut(&mut dz[j * L..(j + 1) * L]);
            *dzj = lanes_madd::<T, M, L>(&gj, &bc, dzj);
        }
        *group_of_mut(&mut out[i * L..(i + 1) * L]) = lanes_scale::<T, M, L>(&dot, c);
    }
}
