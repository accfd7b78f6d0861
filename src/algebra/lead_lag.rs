//! Horner's step for a lead-lag increment, which moves only half of the channels.
//!
//! The lead-lag path's channels are (lag `0..w`, lead `w..2w`, time `2w` if on), `D = 2w (+ 1)` of
//! them. Each step moves either the lag or the lead block (and time), so its increment `z` is zero
//! outside a support `P` of `w (+ 1)` channels. In Horner's chain
//! `B_{m+1} = c_m·B_m ⊗ z + S_{m+1}` the columns outside `P` are then plain copies of `S_{m+1}`, and
//! the top update `S_k += B_{k-1} ⊗ z` leaves them alone. So the chain is kept *compact*, only its
//! `P` columns (`ch_m`, `D^(m-1)` rows of `|P|`), and an entry of `B_m` is read from `ch_m` or from
//! `S_m` by its last index: `|P|/D` — about half — of the multiply-adds, loads and stores of the dense
//! step, and the same numbers: an entry the dense step computes as `c·b·0 + s` is `s` exactly.

use super::reciprocals;
use super::simd::{multiversion, MulAdd};
use super::vector;
use crate::layout::TensorShape;
use crate::Scalar;
use std::sync::atomic::{AtomicU8, Ordering};

/// Whether lead-lag paths of transformed dimension `d` take the compact step, which skips the half
/// of the channels a lead-lag step leaves still: only above 8 (and not at 16 in f32), since below
/// it each dense row is a vector or two and the compact loops would run scalar (measured:
/// docs/PERFORMANCE.md, *CPU kernel choices*); or as [`force_compact_lead_lag`] set.
pub fn compact_lead_lag<T: Scalar>(d: usize) -> bool {
    match FORCED.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => d > 8 && !(d == 16 && std::mem::size_of::<T>() == 4),
    }
}

/// The choice [`force_compact_lead_lag`] set: 0 none, 1 dense, 2 compact.
static FORCED: AtomicU8 = AtomicU8::new(0);

/// Make every later lead-lag path take the compact step (`Some(true)`) or the dense one
/// (`Some(false)`); `None` goes back to the choice by dimension. Process-wide, for comparisons and
/// for tests that run every variant.
pub fn force_compact_lead_lag(compact: Option<bool>) {
    let code = match compact {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    FORCED.store(code, Ordering::Relaxed);
}

/// Per-thread buffers for [`mul_exp_lead_lag`].
pub struct LeadLagScratch<T> {
    inv: Vec<T>,
    ping: Vec<T>,
    pong: Vec<T>,
    /// [`mul_exp_lead_lag_fused`]: the eight steps' top-level chains, and the shape of
    /// the levels below the top; made on first use.
    tops: Vec<T>,
    lower: Option<TensorShape>,
    /// [`mul_exp_lead_lag_backprop`]: the compact chain `ch_1 … ch_{k-1}` of one level, `ch_m` where
    /// level `m` of a signature would sit; made on first use.
    chain: Vec<T>,
}

impl<T: Scalar> LeadLagScratch<T> {
    pub fn new(shape: &TensorShape) -> Self {
        LeadLagScratch {
            inv: reciprocals(shape.degree),
            ping: vec![T::zero(); shape.top_scratch_len()],
            pong: vec![T::zero(); shape.top_scratch_len()],
            tops: Vec::new(),
            lower: None,
            chain: Vec::new(),
        }
    }
}

/// Where a lead-lag step's increment is non-zero, within the `D` channels of the transformed path.
#[derive(Clone, Copy, Debug)]
pub struct Support {
    /// The path's own dimension `w`: the lag block is `0..w`, the lead block `w..2w`.
    pub width: usize,
    /// Whether this step moves the lead block (else the lag block).
    pub lead: bool,
    /// Whether the last channel is time, which every step moves.
    pub time: bool,
}

impl Support {
    /// The channel (of the `D` of the transformed path) that entry `i` of the support is.
    pub fn channel(&self, i: usize) -> usize {
        if self.time && i == self.width {
            2 * self.width
        } else {
            block_start(*self, self.width) + i
        }
    }
}

multiversion! {
    dims(support.width)
    /// `s ← s ⊗ exp(z)` for a lead-lag increment that is zero outside `support`; `zp` holds its
    /// non-zero entries: the moving block, then the time increment if time is on.
    pub fn mul_exp_lead_lag(
        shape: &TensorShape,
        s: &mut [T],
        zp: &[T],
        support: Support,
        scratch: &mut LeadLagScratch<T>,
    ) => mul_exp_lead_lag_body
}

#[inline(always)]
fn mul_exp_lead_lag_body<T: Scalar, M: MulAdd, const W: usize>(
    shape: &TensorShape,
    s: &mut [T],
    zp: &[T],
    support: Support,
    scratch: &mut LeadLagScratch<T>,
) {
    if support.time {
        step::<T, M, W, true>(shape, s, zp, support, scratch);
    } else {
        step::<T, M, W, false>(shape, s, zp, support, scratch);
    }
}

/// The columns of a row of `D` that are read from the compact chain, as a range of the row: the
/// moving block (`a..a+w`); time, when on, is handled beside it.
#[inline(always)]
fn block_start(support: Support, w: usize) -> usize {
    if support.lead {
        w
    } else {
        0
    }
}

#[inline(always)]
fn step<T: Scalar, M: MulAdd, const W: usize, const TIME: bool>(
    shape: &TensorShape,
    s: &mut [T],
    zp: &[T],
    support: Support,
    scratch: &mut LeadLagScratch<T>,
) {
    let n = shape.degree;
    let w = if W == 0 { support.width } else { W };
    let (d, wp) = (2 * w + TIME as usize, w + TIME as usize);
    debug_assert_eq!(shape.dim, d);
    let a = block_start(support, w);
    let zp = &zp[..wp];
    for k in (2..=n).rev() {
        let ch = chain::<T, M, W, TIME>(shape, s, zp, support, k, scratch);
        let (low, top) = s.split_at_mut(shape.offset(k));
        let low = &low[shape.offset(k - 1)..];
        if vector_rows::<T, M, W, TIME>() {
            for_each_run::<T, W, TIME>(w, a, low, ch, |e, run| {
                // SAFETY: vector_rows holds only in code compiled for AVX2+FMA, with rows of W whole vectors.
                unsafe { vector::outer_acc_strided::<T, W>(run, zp, &mut top[e * d + a..], d) };
            });
            continue;
        }
        for_each_entry::<T, W, TIME>(w, a, low, ch, |e, x| {
            let trow = &mut top[e * d..e * d + d];
            for (i, &zi) in zp.iter().enumerate() {
                let j = column::<TIME>(a, w, i);
                trow[j] = M::madd(x, zi, trow[j]);
            }
        });
    }
    if n >= 1 {
        for (i, &zi) in zp.iter().enumerate() {
            s[column::<TIME>(a, w, i)] += zi;
        }
    }
}

/// Horner's chain for level `k`, compact: the support's columns of `B_1 … B_{k-1}`, ending with
/// `ch_{k-1}` (returned, in one of the scratch buffers).
#[inline(always)]
fn chain<'a, T: Scalar, M: MulAdd, const W: usize, const TIME: bool>(
    shape: &TensorShape,
    s: &[T],
    zp: &[T],
    support: Support,
    k: usize,
    scratch: &'a mut LeadLagScratch<T>,
) -> &'a [T] {
    let w = if W == 0 { support.width } else { W };
    let (d, wp) = (2 * w + TIME as usize, w + TIME as usize);
    let a = block_start(support, w);
    let LeadLagScratch {
        inv, ping, pong, ..
    } = scratch;
    // ch_1: the support's columns of B_1 = z/k + S_1.
    let (mut p, mut q) = (&mut ping[..], &mut pong[..]);
    for (i, &zi) in zp.iter().enumerate() {
        p[i] = M::madd(zi, inv[k], s[column::<TIME>(a, w, i)]);
    }
    let mut rows = 1;
    for m in 1..k - 1 {
        let (low, next) = (level(shape, s, m), level(shape, s, m + 1));
        let (ch, out) = (&p[..rows * wp], &mut q[..rows * d * wp]);
        link::<T, M, W, TIME>((w, a), low, ch, inv[k - m], zp, next, out);
        std::mem::swap(&mut p, &mut q);
        rows *= d;
    }
    &p[..rows * wp]
}

/// One link of the compact chain: `ch_{m+1}[e] = c·B_m[e]·z_P + S_{m+1}[e, P]` for every entry `e`
/// of `B_m` (given as `S_m` and the compact `ch_m`).
#[inline(always)]
fn link<T: Scalar, M: MulAdd, const W: usize, const TIME: bool>(
    (w, a): (usize, usize),
    s_m: &[T],
    ch: &[T],
    c: T,
    zp: &[T],
    next: &[T],
    out: &mut [T],
) {
    let w = if W == 0 { w } else { W };
    let (d, wp) = (2 * w + TIME as usize, w + TIME as usize);
    if vector_rows::<T, M, W, TIME>() {
        for_each_run::<T, W, TIME>(w, a, s_m, ch, |e, run| {
            let out = &mut out[e * wp..(e + run.len()) * wp];
            // SAFETY: as in `step`.
            unsafe { vector::outer_add_strided::<T, W>(run, c, zp, &next[e * d + a..], d, out) };
        });
        return;
    }
    for_each_entry::<T, W, TIME>(w, a, s_m, ch, |e, x| {
        let cx = c * x;
        let (nrow, orow) = (&next[e * d..e * d + d], &mut out[e * wp..e * wp + wp]);
        for i in 0..wp {
            orow[i] = M::madd(cx, zp[i], nrow[column::<TIME>(a, w, i)]);
        }
    });
}

/// Pairs of steps [`mul_exp_lead_lag_fused`] takes at once.
pub const FUSED_PAIRS: usize = 4;

/// Whether [`mul_exp_lead_lag_fused`] has a fused kernel for paths of dimension `width` without
/// time: where half a row (`width` entries) is whole vectors. Elsewhere it takes the steps one at a
/// time.
pub fn lead_lag_fused<T: Scalar>(width: usize, time: bool) -> bool {
    fn rows<T: Scalar, M: MulAdd, const W: usize>(_: usize) -> bool {
        M::VECTOR && vector::fused::<T, W>()
    }
    !time
        && crate::algebra::simd::isa().vector()
        && crate::algebra::simd::by_dim!(width, rows::<T, crate::algebra::simd::Fused>(width))
}

multiversion! {
    dims(width)
    /// `s ← s ⊗ exp(z_0) ⊗ … ⊗ exp(z_7)` for the [`FUSED_PAIRS`] pairs of lead-lag steps, without
    /// time, that segments `x_j … x_{j+3}` of the path give: each pair moves the lead block, then
    /// the lag block, by the same `Δx` (`dx` holds the four, one after the other).
    ///
    /// The same arithmetic as the eight single steps, reordered as in `mul_exp_fused`: each step's
    /// top-level chain `B_{N-1}` is kept, the levels below are stepped, and then the top level is
    /// updated once. Seen as half-rows of `width`, the lag half of row `e` gains
    /// `Σ_p B^(lag p)[e]·Δx_p` and the lead half `Σ_p B^(lead p)[e]·Δx_p`: the four-step kernel
    /// on half-rows of `width`, four multiply-adds per load and store of `S_N`, and half the
    /// multiply-adds of the dense fused step.
    pub fn mul_exp_lead_lag_fused(
        shape: &TensorShape,
        s: &mut [T],
        dx: &[T],
        width: usize,
        scratch: &mut LeadLagScratch<T>,
    ) => mul_exp_lead_lag_fused_body
}

#[inline(always)]
fn mul_exp_lead_lag_fused_body<T: Scalar, M: MulAdd, const W: usize>(
    shape: &TensorShape,
    s: &mut [T],
    dx: &[T],
    width: usize,
    scratch: &mut LeadLagScratch<T>,
) {
    let n = shape.degree;
    let support = |lead| Support {
        width,
        lead,
        time: false,
    };
    if !(M::VECTOR && vector::fused::<T, W>() && n >= 2) {
        for z in dx.chunks_exact(width) {
            step::<T, M, W, false>(shape, s, z, support(true), scratch);
            step::<T, M, W, false>(shape, s, z, support(false), scratch);
        }
        return;
    }
    let w = W;
    let d = 2 * w;
    let top = shape.level_len(n - 1);
    let lower = scratch
        .lower
        .take()
        .unwrap_or_else(|| TensorShape::new(d, n - 1).expect("a lower degree is valid"));
    let mut tops = std::mem::take(&mut scratch.tops);
    tops.resize(2 * FUSED_PAIRS * top, T::zero());
    // Step 2p (lead) keeps its B_{N-1} in tops[2p], step 2p + 1 (lag) in tops[2p + 1].
    for (z, pair) in dx.chunks_exact(w).zip(tops.chunks_exact_mut(2 * top)) {
        for (lead, b) in [true, false].into_iter().zip(pair.chunks_exact_mut(top)) {
            let sup = support(lead);
            let a = block_start(sup, w);
            let ch = chain::<T, M, W, false>(shape, s, z, sup, n, scratch);
            // B_{N-1} whole: the moving block from the chain, the other from S_{N-1}.
            let low = level(shape, s, n - 1);
            for ((brow, srow), crow) in b
                .chunks_exact_mut(d)
                .zip(low.chunks_exact(d))
                .zip(ch.chunks_exact(w))
            {
                let other = w - a;
                brow[other..other + w].copy_from_slice(&srow[other..other + w]);
                brow[a..a + w].copy_from_slice(crow);
            }
            step::<T, M, W, false>(&lower, &mut s[..lower.len()], z, sup, scratch);
        }
    }
    {
        let b = |p: usize, lag: usize| &tops[(2 * p + lag) * top..(2 * p + lag + 1) * top];
        let lag: [&[T]; FUSED_PAIRS] = std::array::from_fn(|p| b(p, 1));
        let lead: [&[T]; FUSED_PAIRS] = std::array::from_fn(|p| b(p, 0));
        let z: [&[T]; FUSED_PAIRS] = std::array::from_fn(|p| &dx[p * w..(p + 1) * w]);
        // SAFETY: M::VECTOR holds only in code compiled for AVX2+FMA, and vector::fused::<T, W>() says
        // the kernel handles rows of W.
        let out = &mut s[shape.offset(n)..shape.offset(n + 1)];
        unsafe { vector::outer_acc4_halves::<T, W>(lag, lead, z, out) };
    }
    scratch.tops = tops;
    scratch.lower = Some(lower);
}

multiversion! {
    dims(support.width)
    /// The reverse of [`mul_exp_lead_lag`]: with `s_prev` the tensor before the step and `g` the
    /// gradient with respect to `s_prev ⊗ exp(z)`, turn `g` into the gradient with respect to
    /// `s_prev` (in place) and add the gradient with respect to `zp` into `dzp`.
    ///
    /// As the dense reverse step, level by level from the bottom, with the compact chain: an entry
    /// of `B_m` outside the support is `S_m`'s own, so its gradient goes to `S_m` alone, and each
    /// contraction runs over the support's columns only.
    pub fn mul_exp_lead_lag_backprop(
        shape: &TensorShape,
        s_prev: &[T],
        zp: &[T],
        support: Support,
        g: &mut [T],
        dzp: &mut [T],
        scratch: &mut LeadLagScratch<T>,
    ) => mul_exp_lead_lag_backprop_body
}

#[inline(always)]
fn mul_exp_lead_lag_backprop_body<T: Scalar, M: MulAdd, const W: usize>(
    shape: &TensorShape,
    s_prev: &[T],
    zp: &[T],
    support: Support,
    g: &mut [T],
    dzp: &mut [T],
    scratch: &mut LeadLagScratch<T>,
) {
    if support.time {
        backprop::<T, M, W, true>(shape, s_prev, zp, support, g, dzp, scratch);
    } else {
        backprop::<T, M, W, false>(shape, s_prev, zp, support, g, dzp, scratch);
    }
}

#[inline(always)]
fn backprop<T: Scalar, M: MulAdd, const W: usize, const TIME: bool>(
    shape: &TensorShape,
    s_prev: &[T],
    zp: &[T],
    support: Support,
    g: &mut [T],
    dzp: &mut [T],
    scratch: &mut LeadLagScratch<T>,
) {
    let n = shape.degree;
    let w = if W == 0 { support.width } else { W };
    let (d, wp) = (2 * w + TIME as usize, w + TIME as usize);
    let a = block_start(support, w);
    let zp = &zp[..wp];
    if n == 0 {
        return;
    }
    let LeadLagScratch {
        inv,
        ping,
        pong,
        chain,
        ..
    } = scratch;
    chain.resize(shape.len(), T::zero());
    // Level 1: S_1 += z on the support.
    for (i, dz) in dzp[..wp].iter_mut().enumerate() {
        *dz += g[column::<TIME>(a, w, i)];
    }
    for k in 2..=n {
        // Forward: the compact chain of this level, ch_m at shape.offset(m).
        let ch1 = &mut chain[shape.offset(1)..shape.offset(1) + wp];
        for (i, (c, &zi)) in ch1.iter_mut().zip(zp).enumerate() {
            *c = M::madd(zi, inv[k], s_prev[column::<TIME>(a, w, i)]);
        }
        let mut rows = 1;
        for m in 1..k - 1 {
            let (done, rest) = chain.split_at_mut(shape.offset(m + 1));
            let ch = &done[shape.offset(m)..shape.offset(m) + rows * wp];
            let (low, next) = (level(shape, s_prev, m), level(shape, s_prev, m + 1));
            let out = &mut rest[..rows * d * wp];
            link::<T, M, W, TIME>((w, a), low, ch, inv[k - m], zp, next, out);
            rows *= d;
        }
        // Reverse of S_k += B_{k-1} ⊗ z, then of each link.
        let (low, high) = g.split_at_mut(shape.offset(k));
        let (mut p, mut q) = (&mut ping[..], &mut pong[..]);
        let mut len = shape.level_len(k - 1);
        let ch = |m: usize, rows: usize| &chain[shape.offset(m)..shape.offset(m) + rows * wp];
        contract::<T, M, W, TIME>(
            (w, a),
            &high[..len * d],
            (level(shape, s_prev, k - 1), ch(k - 1, len / d)),
            zp,
            T::one(),
            dzp,
            &mut p[..len],
        );
        for m in (1..k - 1).rev() {
            for (gi, &pi) in low[shape.offset(m + 1)..shape.offset(m + 2)]
                .iter_mut()
                .zip(p.iter())
            {
                *gi += pi;
            }
            len /= d;
            let b = (level(shape, s_prev, m), ch(m, len / d));
            contract::<T, M, W, TIME>((w, a), &p[..len * d], b, zp, inv[k - m], dzp, &mut q[..len]);
            std::mem::swap(&mut p, &mut q);
        }
        for (gi, &pi) in low[..d].iter_mut().zip(p.iter()) {
            *gi += pi;
        }
        for (i, dz) in dzp[..wp].iter_mut().enumerate() {
            *dz = M::madd(p[column::<TIME>(a, w, i)], inv[k], *dz);
        }
    }
}

/// The reverse of a link over the support's columns: for `gb` read as rows of `D`, one per entry
/// of `B_m` (given as `S_m` and the compact `ch_m`), `out[e] = c·Σ_i gb[e, P_i]·z_i` and
/// `dzp[i] += c·Σ_e gb[e, P_i]·B_m[e]`.
#[inline(always)]
fn contract<T: Scalar, M: MulAdd, const W: usize, const TIME: bool>(
    (w, a): (usize, usize),
    gb: &[T],
    (s_m, ch): (&[T], &[T]),
    zp: &[T],
    c: T,
    dzp: &mut [T],
    out: &mut [T],
) {
    let w = if W == 0 { w } else { W };
    let (d, wp) = (2 * w + TIME as usize, w + TIME as usize);
    // dz accumulates in registers where the width is a constant (at most 16 + time), rather than
    // through memory once per entry.
    let mut acc = [T::zero(); 17];
    let local = W > 0;
    // The entries in a plain loop rather than through `for_each_entry`: LLVM outlines a closure
    // this size, and the outlined copy is compiled without FMA.
    for (r, (srow, crow)) in s_m.chunks_exact(d).zip(ch.chunks_exact(wp)).enumerate() {
        for j in 0..d {
            let x = if j >= a && j < a + w {
                crow[j - a]
            } else if TIME && j == 2 * w {
                crow[w]
            } else {
                srow[j]
            };
            let e = r * d + j;
            let row = &gb[e * d..e * d + d];
            let mut dot = T::zero();
            for i in 0..wp {
                let gi = row[column::<TIME>(a, w, i)];
                dot = M::madd(gi, zp[i], dot);
                if local {
                    acc[i] = M::madd(gi, x, acc[i]);
                } else {
                    dzp[i] = M::madd(gi, c * x, dzp[i]);
                }
            }
            out[e] = dot * c;
        }
    }
    if local {
        for (dz, &s) in dzp[..wp].iter_mut().zip(&acc) {
            *dz = M::madd(s, c, *dz);
        }
    }
}

/// Level `m` of `s`.
#[inline(always)]
fn level<'a, T>(shape: &TensorShape, s: &'a [T], m: usize) -> &'a [T] {
    &s[shape.offset(m)..shape.offset(m + 1)]
}

/// The column of a row of `D` that entry `i` of the support sits in.
#[inline(always)]
fn column<const TIME: bool>(a: usize, w: usize, i: usize) -> usize {
    if TIME && i == w {
        2 * w
    } else {
        a + i
    }
}

/// Call `f(e, B_m[e])` for every entry `e` of the chain's `B_m`, reading the support's columns
/// from the compact `ch` (rows of `|P|`) and the rest from `s_m` (rows of `D`).
#[inline(always)]
fn for_each_entry<T: Scalar, const W: usize, const TIME: bool>(
    w: usize,
    a: usize,
    s_m: &[T],
    ch: &[T],
    mut f: impl FnMut(usize, T),
) {
    let w = if W == 0 { w } else { W };
    let (d, wp) = (2 * w + TIME as usize, w + TIME as usize);
    let other = w - a; // the block that stands still
    for (r, (srow, crow)) in s_m.chunks_exact(d).zip(ch.chunks_exact(wp)).enumerate() {
        let e = r * d;
        for i in 0..w {
            let (moving, still) = (crow[i], srow[other + i]);
            if a == 0 {
                f(e + i, moving);
                f(e + w + i, still);
            } else {
                f(e + i, still);
                f(e + w + i, moving);
            }
        }
        if TIME {
            f(e + 2 * w, crow[w]);
        }
    }
}

/// Call `f(e, run)` for runs of consecutive entries `e, e+1, …` of the chain's `B_m`, all of them
/// in order: per row of `D`, the lag block, the lead block (each `w` long) and time (one entry).
#[inline(always)]
fn for_each_run<T: Scalar, const W: usize, const TIME: bool>(
    w: usize,
    a: usize,
    s_m: &[T],
    ch: &[T],
    mut f: impl FnMut(usize, &[T]),
) {
    let w = if W == 0 { w } else { W };
    let (d, wp) = (2 * w + TIME as usize, w + TIME as usize);
    let other = w - a; // the block that stands still
    for (r, (srow, crow)) in s_m.chunks_exact(d).zip(ch.chunks_exact(wp)).enumerate() {
        let e = r * d;
        let (moving, still) = (&crow[..w], &srow[other..other + w]);
        if a == 0 {
            f(e, moving);
            f(e + w, still);
        } else {
            f(e, still);
            f(e + w, moving);
        }
        if TIME {
            f(e + 2 * w, &crow[w..]);
        }
    }
}

/// Whether the rows of the support (without time) are whole vectors for the strided kernels.
#[inline(always)]
fn vector_rows<T: Scalar, M: MulAdd, const W: usize, const TIME: bool>() -> bool {
    M::VECTOR && !TIME && vector::whole::<T, W>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algebra::{mul_exp, HornerScratch};

    /// The lead-lag step equals the dense step on the zero-padded increment, for both blocks, with
    /// and without time, for specialised and generic widths.
    #[test]
    fn lead_lag_step_equals_the_dense_step() {
        for w in [1, 2, 3, 4, 5, 8, 9] {
            for time in [false, true] {
                for lead in [false, true] {
                    let d = 2 * w + time as usize;
                    let n = if d > 8 { 3 } else { 4 };
                    let shape = TensorShape::new(d, n).unwrap();
                    let s0: Vec<f64> = (0..shape.len())
                        .map(|i| ((i * 7 % 13) as f64 - 6.0) / 10.0)
                        .collect();
                    let zp: Vec<f64> = (0..w + time as usize)
                        .map(|i| ((i * 5 % 11) as f64 - 5.0) / 20.0 + 0.01)
                        .collect();
                    let mut z = vec![0.0; d];
                    let a = if lead { w } else { 0 };
                    z[a..a + w].copy_from_slice(&zp[..w]);
                    if time {
                        z[2 * w] = zp[w];
                    }
                    let mut dense = s0.clone();
                    mul_exp(&shape, &mut dense, &z, &mut HornerScratch::new(&shape));
                    let mut sparse = s0.clone();
                    let support = Support {
                        width: w,
                        lead,
                        time,
                    };
                    let mut scratch = LeadLagScratch::new(&shape);
                    mul_exp_lead_lag(&shape, &mut sparse, &zp, support, &mut scratch);
                    for (i, (a, b)) in sparse.iter().zip(&dense).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-15 * (1.0 + b.abs()),
                            "w={w} time={time} lead={lead} at {i}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    /// Four fused pairs equal the eight single steps, for widths with and without a fused kernel.
    #[test]
    fn fused_pairs_equal_single_steps() {
        for w in [1, 2, 4, 8] {
            for n in [1, 2, 3, 4] {
                let shape = TensorShape::new(2 * w, n).unwrap();
                let s0: Vec<f64> = (0..shape.len())
                    .map(|i| ((i * 7 % 13) as f64 - 6.0) / 10.0)
                    .collect();
                let dx: Vec<f64> = (0..FUSED_PAIRS * w)
                    .map(|i| ((i * 5 % 11) as f64 - 5.0) / 20.0 + 0.01)
                    .collect();
                let mut scratch = LeadLagScratch::new(&shape);
                let mut single = s0.clone();
                for z in dx.chunks_exact(w) {
                    for lead in [true, false] {
                        let support = Support {
                            width: w,
                            lead,
                            time: false,
                        };
                        mul_exp_lead_lag(&shape, &mut single, z, support, &mut scratch);
                    }
                }
                let mut fused = s0.clone();
                mul_exp_lead_lag_fused(&shape, &mut fused, &dx, w, &mut scratch);
                for (a, b) in fused.iter().zip(&single) {
                    assert!(
                        (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                        "w={w} n={n}: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// The lead-lag reverse step equals the dense reverse step on the zero-padded increment: the
    /// same gradient with respect to the tensor, and the support's entries of the increment's.
    #[test]
    fn lead_lag_backprop_equals_the_dense_backprop() {
        for w in [1, 2, 3, 4, 5, 9] {
            for time in [false, true] {
                for lead in [false, true] {
                    let d = 2 * w + time as usize;
                    let n = if d > 8 { 3 } else { 4 };
                    let shape = TensorShape::new(d, n).unwrap();
                    let s0: Vec<f64> = (0..shape.len())
                        .map(|i| ((i * 7 % 13) as f64 - 6.0) / 10.0)
                        .collect();
                    let g0: Vec<f64> = (0..shape.len())
                        .map(|i| ((i * 3 % 17) as f64 - 8.0) / 10.0)
                        .collect();
                    let zp: Vec<f64> = (0..w + time as usize)
                        .map(|i| ((i * 5 % 11) as f64 - 5.0) / 20.0 + 0.01)
                        .collect();
                    let support = Support {
                        width: w,
                        lead,
                        time,
                    };
                    let mut z = vec![0.0; d];
                    for (i, &v) in zp.iter().enumerate() {
                        z[support.channel(i)] = v;
                    }
                    let (mut g_dense, mut dz) = (g0.clone(), vec![0.0; d]);
                    let mut horner = HornerScratch::new(&shape);
                    crate::algebra::mul_exp_backprop(
                        &shape,
                        &s0,
                        &z,
                        &mut g_dense,
                        &mut dz,
                        &mut horner,
                    );
                    let (mut g, mut dzp) = (g0.clone(), vec![0.0; zp.len()]);
                    let mut scratch = LeadLagScratch::new(&shape);
                    mul_exp_lead_lag_backprop(
                        &shape,
                        &s0,
                        &zp,
                        support,
                        &mut g,
                        &mut dzp,
                        &mut scratch,
                    );
                    let close = |a: f64, b: f64| (a - b).abs() <= 1e-13 * (1.0 + b.abs());
                    for (i, (a, b)) in g.iter().zip(&g_dense).enumerate() {
                        assert!(
                            close(*a, *b),
                            "w={w} time={time} lead={lead} g[{i}]: {a} vs {b}"
                        );
                    }
                    for (i, a) in dzp.iter().enumerate() {
                        let b = dz[support.channel(i)];
                        assert!(
                            close(*a, b),
                            "w={w} time={time} lead={lead} dz[{i}]: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
