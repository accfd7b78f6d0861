//! `S ← S ⊗ exp(z)` by Horner's scheme, and its reverse.
//!
//! For each level `k` (top first, so lower levels are still the old ones) Horner evaluates
//! `S_k + ((…((z/k + S_1) ⊗ z/(k-1) + S_2) ⊗ z/(k-2) …) + S_{k-1}) ⊗ z` as a chain
//! `B_1 = z/k + S_1`, `B_{m+1} = c_m·B_m ⊗ z + S_{m+1}` with `c_m = 1/(k-m)`, then `S_k += B_{k-1} ⊗ z`.
//! The cost is about one multiply-add per coefficient of the result, the least any method can do.
//! The loops themselves live in [`super::simd`], specialised per instruction set and dimension.

use super::aligned::AlignedVec;
use super::reciprocals;
use super::simd::{multiversion, MulAdd};
use super::step_layout::{StepLayout, FUSED_STEPS};
use super::vector::{self, contract, outer_acc, outer_add};
use crate::layout::TensorShape;
use crate::Scalar;

/// Per-thread buffers for [`mul_exp`] and [`mul_exp_backprop`], allocated once and reused every step.
pub struct HornerScratch<T> {
    /// `inv[k] = 1/k`.
    pub(super) inv: Vec<T>,
    /// The chain `B_1 … B_{k-1}` of one level, one after the other (`B_m` has `d^m` entries and sits where level `m`
    /// of a signature would: `shape.offset(m)`), kept by the reverse pass.
    chain: AlignedVec<T>,
    /// Two buffers of `d^(N-1)` that the forward chain (and the reverse gradient chain) alternate
    /// between, so that every loop reads one buffer and writes the other.
    pub(super) ping: AlignedVec<T>,
    pub(super) pong: AlignedVec<T>,
    /// [`mul_exp_fused`]: the top level's chain `B_{N-1}` for each of the fused steps, as many as
    /// the shape's [`StepLayout`] fuses (grown by a caller that fuses more), and
    /// [`super::reversed::to_rows`]' copy of a level, which it grows to hold where needed), and
    /// the shape of the levels below the top.
    pub(super) tops: AlignedVec<T>,
    pub(super) lower: TensorShape,
    /// [`super::reversed::to_rows`]: where each top-level word sits when words are reversed,
    /// built on first use.
    pub(super) reversed: Vec<u32>,
}

impl<T: Scalar> HornerScratch<T> {
    /// The values [`HornerScratch::new`] allocates for `shape` (the chains, ping, pong and tops).
    pub fn values(shape: &TensorShape) -> u128 {
        let top = shape.top_scratch_len() as u128;
        let fused = StepLayout::for_shape::<T>(shape).fused_steps() as u128;
        shape.offset(shape.degree.max(1)).max(1) as u128 + (2 + fused) * top
    }

    pub fn new(shape: &TensorShape) -> Self {
        HornerScratch {
            inv: reciprocals(shape.degree),
            chain: AlignedVec::zeroed(shape.offset(shape.degree.max(1)).max(1)),
            ping: AlignedVec::zeroed(shape.top_scratch_len()),
            pong: AlignedVec::zeroed(shape.top_scratch_len()),
            tops: AlignedVec::zeroed(
                shape.top_scratch_len() * StepLayout::for_shape::<T>(shape).fused_steps(),
            ),
            lower: shape.lower(),
            reversed: Vec::new(),
        }
    }
}

/// `z` repeated (`zt[p] = z[p mod D]`), the form the block kernels of [`super::vector`] read; only
/// where they will run.
#[inline(always)]
fn tile<T: Scalar, M: MulAdd, const D: usize>(z: &[T]) -> Option<[T; 64]> {
    if !(M::VECTOR && vector::blocked::<T, D>()) {
        return None;
    }
    let z = &z[..D];
    let mut t = [T::zero(); 64];
    for (p, slot) in t.iter_mut().enumerate().take(8 * D) {
        *slot = z[p % D];
    }
    Some(t)
}

multiversion! {
    dims(shape.dim)
    /// `s ← s ⊗ exp(z)`, in place.
    pub fn mul_exp(shape: &TensorShape, s: &mut [T], z: &[T], scratch: &mut HornerScratch<T>) => mul_exp_body
}

#[inline(always)]
fn mul_exp_body<T: Scalar, M: MulAdd, const D: usize>(
    shape: &TensorShape,
    s: &mut [T],
    z: &[T],
    scratch: &mut HornerScratch<T>,
) {
    let HornerScratch {
        inv, ping, pong, ..
    } = scratch;
    step::<T, M, D>(shape, s, z, inv, ping, pong);
}

/// [`mul_exp_body`] on the scratch's parts.
#[inline(always)]
fn step<T: Scalar, M: MulAdd, const D: usize>(
    shape: &TensorShape,
    s: &mut [T],
    z: &[T],
    inv: &[T],
    ping: &mut [T],
    pong: &mut [T],
) {
    let (d, n) = (shape.dim, shape.degree);
    if n == 0 {
        return;
    }
    let tiled = tile::<T, M, D>(z);
    let z = tiled.as_ref().map_or(z, |t| &t[..]);
    for k in (2..=n).rev() {
        let b = chain::<T, M, D, Rows>(shape, s, z, k, inv, ping, pong);
        outer_acc::<T, M, D>(b, z, &mut s[shape.offset(k)..shape.offset(k + 1)]);
    }
    // `S_1 += z`, as a row kernel: a loop of `d` scalars, unrolled per dimension, costs more than
    // the vectors at d = 16.
    outer_acc::<T, M, D>(&[T::one()], z, &mut s[..d]);
}

/// How a chain link `c·x ⊗ z + add` is laid out: words in order (rows of `d`, [`Rows`]) or
/// reversed ([`super::reversed::Reversed`]).
pub(super) trait Link {
    fn link<T: Scalar, M: MulAdd, const D: usize>(x: &[T], c: T, z: &[T], add: &[T], out: &mut [T]);
}

/// Words in order: [`outer_add`].
pub(super) struct Rows;

impl Link for Rows {
    #[inline(always)]
    fn link<T: Scalar, M: MulAdd, const D: usize>(
        x: &[T],
        c: T,
        z: &[T],
        add: &[T],
        out: &mut [T],
    ) {
        outer_add::<T, M, D>(x, c, z, add, out);
    }
}

/// Horner's chain for level `k`: `B_1 = z/k + S_1`, `B_{m+1} = c_m·B_m ⊗ z + S_{m+1}`, ending with
/// `B_{k-1}` (returned, in `ping` or `pong`), so that level `k` becomes `S_k + B_{k-1} ⊗ z`;
/// the links laid out as `O` says.
#[inline(always)]
pub(super) fn chain<'a, T: Scalar, M: MulAdd, const D: usize, O: Link>(
    shape: &TensorShape,
    s: &[T],
    z: &[T],
    k: usize,
    inv: &[T],
    ping: &'a mut [T],
    pong: &'a mut [T],
) -> &'a [T] {
    let d = shape.dim;
    let (mut p, mut q) = (ping, pong);
    outer_add::<T, M, D>(&[T::one()], inv[k], z, &s[..d], &mut p[..d]);
    let mut len = d;
    for m in 1..k - 1 {
        let next = &s[shape.offset(m + 1)..shape.offset(m + 2)];
        O::link::<T, M, D>(&p[..len], inv[k - m], z, next, &mut q[..len * d]);
        std::mem::swap(&mut p, &mut q);
        len *= d;
    }
    &p[..len]
}

multiversion! {
    dims(shape.dim)
    /// `s ← s ⊗ exp(z_0) ⊗ … ⊗ exp(z_7)` for the [`FUSED_STEPS`] increments stored one after the
    /// other in `zs`.
    ///
    /// The same arithmetic as eight [`mul_exp`] steps, reordered so that the top level, most of
    /// the coefficients, is read and written once for all eight: each step's top-level chain
    /// `B_{N-1}` is computed (from the levels below as they are before that step) and kept, the
    /// levels below are stepped, and then `S_N += Σ_s B^(s)_{N-1} ⊗ z_s` in one pass. A single
    /// step's top-level update does one multiply-add per load and store of `S_N`; this one does
    /// eight. It runs where the vector kernels take rows of `d` whole (`Scalar::fused`), and as
    /// single steps elsewhere. Any number of increments may be given: they go in groups of eight,
    /// then four, two and one.
    pub fn mul_exp_fused(shape: &TensorShape, s: &mut [T], zs: &[T], scratch: &mut HornerScratch<T>) => mul_exp_fused_body
}

#[inline(always)]
fn mul_exp_fused_body<T: Scalar, M: MulAdd, const D: usize>(
    shape: &TensorShape,
    s: &mut [T],
    zs: &[T],
    scratch: &mut HornerScratch<T>,
) {
    let (d, n) = (shape.dim, shape.degree);
    if !(M::VECTOR && vector::fused::<T, D>() && n >= 2) {
        for z in zs.chunks_exact(d) {
            mul_exp_body::<T, M, D>(shape, s, z, scratch);
        }
        return;
    }
    // Groups of eight, then one of four and one of two for what is left: a path of 127 steps
    // would otherwise end with seven single steps, each a whole pass over the top level.
    let mut rest = zs;
    while rest.len() >= d {
        let steps = match rest.len() / d {
            m if m >= FUSED_STEPS => FUSED_STEPS,
            m if m >= 4 => 4,
            m => m.min(2),
        };
        let (group, tail) = rest.split_at(steps * d);
        match steps {
            FUSED_STEPS => fused_group::<T, M, D, FUSED_STEPS>(shape, s, group, scratch),
            4 => fused_group::<T, M, D, 4>(shape, s, group, scratch),
            2 => fused_group::<T, M, D, 2>(shape, s, group, scratch),
            _ => mul_exp_body::<T, M, D>(shape, s, group, scratch),
        }
        rest = tail;
    }
}

/// `S` steps with one pass over the top level (see [`mul_exp_fused`]).
#[inline(always)]
fn fused_group<T: Scalar, M: MulAdd, const D: usize, const S: usize>(
    shape: &TensorShape,
    s: &mut [T],
    zs: &[T],
    scratch: &mut HornerScratch<T>,
) {
    let (d, n) = (shape.dim, shape.degree);
    let top = shape.level_len(n - 1);
    let HornerScratch {
        inv,
        ping,
        pong,
        tops,
        lower,
        ..
    } = scratch;
    // Sized for the shape's own layout when made: grow it if that fuses fewer steps.
    if tops.len() < S * top {
        tops.resize_zeroed(S * top);
    }
    for (z, b) in zs.chunks_exact(d).zip(tops.chunks_exact_mut(top)) {
        let tiled = tile::<T, M, D>(z);
        let zt = tiled.as_ref().map_or(z, |t| &t[..]);
        // The chain alternates between its two buffers and ends in the first when it takes an
        // even number of steps (n − 2): hand it `b` in that place so that `B_{N-1}` lands there.
        if (n - 2) % 2 == 0 {
            chain::<T, M, D, Rows>(shape, s, zt, n, inv, b, pong);
        } else {
            chain::<T, M, D, Rows>(shape, s, zt, n, inv, ping, b);
        }
        step::<T, M, D>(lower, &mut s[..lower.len()], z, inv, ping, pong);
    }
    let b: [&[T]; S] = std::array::from_fn(|i| &tops[i * top..(i + 1) * top]);
    let z: [&[T]; S] = std::array::from_fn(|i| &zs[i * d..(i + 1) * d]);
    // SAFETY: M::VECTOR holds only in code compiled for AVX2+FMA, and vector::fused::<T, D>() says the
    // kernel handles rows of D.
    unsafe {
        vector::outer_acc_steps::<T, M, S, D>(b, z, &mut s[shape.offset(n)..shape.offset(n + 1)])
    };
}

multiversion! {
    dims(shape.dim)
    /// The reverse of [`mul_exp`]: with `s_prev` the tensor before the step and `g` the gradient with
    /// respect to `s_prev ⊗ exp(z)`, turn `g` into the gradient with respect to `s_prev` (in place) and
    /// add the gradient with respect to `z` into `dz`.
    ///
    /// Level `k`'s gradient only flows to levels below `k`, so processing levels bottom-up reads each
    /// `g_k` before anything is added to it and needs no second gradient buffer.
    pub fn mul_exp_backprop(
        shape: &TensorShape,
        s_prev: &[T],
        z: &[T],
        g: &mut [T],
        dz: &mut [T],
        scratch: &mut HornerScratch<T>,
    ) => mul_exp_backprop_body
}

#[inline(always)]
fn mul_exp_backprop_body<T: Scalar, M: MulAdd, const D: usize>(
    shape: &TensorShape,
    s_prev: &[T],
    z: &[T],
    g: &mut [T],
    dz: &mut [T],
    scratch: &mut HornerScratch<T>,
) {
    let (d, n) = (shape.dim, shape.degree);
    if n == 0 {
        return;
    }
    let tiled = tile::<T, M, D>(z);
    let z = tiled.as_ref().map_or(z, |t| &t[..]);
    let HornerScratch {
        inv,
        chain,
        ping,
        pong,
        ..
    } = scratch;
    // Level 1: S_1 += z.
    for j in 0..d {
        dz[j] += g[j];
    }
    for k in 2..=n {
        // Forward: the chain B_1 … B_{k-1} of this level, kept for the reverse pass.
        outer_add::<T, M, D>(&[T::one()], inv[k], z, &s_prev[..d], &mut chain[..d]);
        let mut len = d;
        for m in 1..k - 1 {
            let (done, rest) = chain.split_at_mut(shape.offset(m + 1));
            let next = &s_prev[shape.offset(m + 1)..shape.offset(m + 2)];
            outer_add::<T, M, D>(
                &done[shape.offset(m)..shape.offset(m) + len],
                inv[k - m],
                z,
                next,
                &mut rest[..len * d],
            );
            len *= d;
        }
        // Reverse of S_k += B_{k-1} ⊗ z, then of each B_{m+1} = c_m·B_m ⊗ z + S_{m+1}.
        let (low, high) = g.split_at_mut(shape.offset(k));
        let (mut p, mut q) = (&mut ping[..], &mut pong[..]);
        let b = &chain[shape.offset(k - 1)..shape.offset(k - 1) + len];
        contract::<T, M, D>(&high[..len * d], b, z, T::one(), dz, &mut p[..len]);
        for m in (1..k - 1).rev() {
            len /= d;
            for (gi, &pi) in low[shape.offset(m + 1)..shape.offset(m + 2)]
                .iter_mut()
                .zip(p.iter())
            {
                *gi += pi;
            }
            let b = &chain[shape.offset(m)..shape.offset(m) + len];
            contract::<T, M, D>(&p[..len * d], b, z, inv[k - m], dz, &mut q[..len]);
            std::mem::swap(&mut p, &mut q);
        }
        for i in 0..d {
            low[i] += p[i];
            dz[i] = M::madd(p[i], inv[k], dz[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algebra::simd::{by_dim, Fused, Fused512, Isa, Separate};

    /// Every dimension's specialised loop, in the portable and (where the CPU has AVX2+FMA, and
    /// AVX-512) the fused, explicitly vectorised forms, against the generic (`D = 0`) loop; forward
    /// and reverse, f64 and f32 (whose row and block kernels differ: a 512-bit block is 16 f32
    /// rows of d < 16 or 8 f64 rows of d < 8).
    #[test]
    fn specialised_loops_agree_with_the_generic_loop() {
        agree_with_the_generic_loop::<f64>(1e-14);
        agree_with_the_generic_loop::<f32>(1e-5);
    }

    fn agree_with_the_generic_loop<T: Scalar>(tol: f64) {
        for d in [1, 2, 3, 4, 5, 6, 7, 8, 9, 16] {
            let shape = TensorShape::new(d, 4).unwrap();
            let mut seed = d as u64;
            let mut uniform = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            };
            let mut rand = || T::from_f64(uniform());
            let s0: Vec<T> = (0..shape.len()).map(|_| rand()).collect();
            let g0: Vec<T> = (0..shape.len()).map(|_| rand()).collect();
            let z: Vec<T> = (0..d).map(|_| rand()).collect();
            let run = |which: usize| {
                let mut scratch = HornerScratch::new(&shape);
                let (mut s, mut g, mut dz) = (s0.clone(), g0.clone(), vec![T::zero(); d]);
                match which {
                    0 => {
                        mul_exp_body::<T, Separate, 0>(&shape, &mut s, &z, &mut scratch);
                        mul_exp_backprop_body::<T, Separate, 0>(
                            &shape,
                            &s0,
                            &z,
                            &mut g,
                            &mut dz,
                            &mut scratch,
                        );
                    }
                    1 => {
                        by_dim!(
                            d,
                            mul_exp_body::<T, Separate>(&shape, &mut s, &z, &mut scratch)
                        );
                        let (s0, z, g, dz) = (&s0, &z, &mut g, &mut dz);
                        by_dim!(
                            d,
                            mul_exp_backprop_body::<T, Separate>(
                                &shape,
                                s0,
                                z,
                                g,
                                dz,
                                &mut scratch
                            )
                        );
                    }
                    2 => {
                        by_dim!(
                            d,
                            mul_exp_body::<T, Fused>(&shape, &mut s, &z, &mut scratch)
                        );
                        let (s0, z, g, dz) = (&s0, &z, &mut g, &mut dz);
                        by_dim!(
                            d,
                            mul_exp_backprop_body::<T, Fused>(&shape, s0, z, g, dz, &mut scratch)
                        );
                    }
                    _ => {
                        by_dim!(
                            d,
                            mul_exp_body::<T, Fused512>(&shape, &mut s, &z, &mut scratch)
                        );
                        let (s0, z, g, dz) = (&s0, &z, &mut g, &mut dz);
                        by_dim!(
                            d,
                            mul_exp_backprop_body::<T, Fused512>(
                                &shape,
                                s0,
                                z,
                                g,
                                dz,
                                &mut scratch
                            )
                        );
                    }
                }
                [s, g, dz].concat()
            };
            let reference = run(0);
            // The AVX2 (2) and AVX-512 (3) kernels run only where this CPU has them.
            let variants = match crate::algebra::simd::isa() {
                Isa::Baseline => vec![1],
                Isa::Avx2Fma => vec![1, 2],
                Isa::Avx512 => vec![1, 2, 3],
            };
            for which in variants {
                for (a, b) in run(which).iter().zip(&reference) {
                    let (a, b) = (Scalar::to_f64(*a), Scalar::to_f64(*b));
                    assert!(
                        (a - b).abs() <= tol * (1.0 + b.abs()),
                        "d={d} variant {which}: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// The fused steps equal single steps, for every specialised dimension, with step counts that
    /// make groups of eight, four, two and one.
    #[test]
    fn fused_steps_agree_with_single_steps() {
        for d in [1, 2, 3, 4, 5, 8, 9, 16] {
            for n in [1, 2, 3, 4] {
                for steps in [FUSED_STEPS, 2 * FUSED_STEPS + 7, 6, 1] {
                    let shape = TensorShape::new(d, n).unwrap();
                    let s0: Vec<f64> = (0..shape.len())
                        .map(|i| ((i * 7 % 13) as f64 - 6.0) / 10.0)
                        .collect();
                    let zs: Vec<f64> = (0..steps * d)
                        .map(|i| ((i * 5 % 11) as f64 - 5.0) / 20.0)
                        .collect();
                    let mut scratch = HornerScratch::new(&shape);
                    let mut single = s0.clone();
                    for z in zs.chunks_exact(d) {
                        mul_exp(&shape, &mut single, z, &mut scratch);
                    }
                    let mut fused = s0.clone();
                    mul_exp_fused(&shape, &mut fused, &zs, &mut scratch);
                    assert!(fused != s0, "d={d} n={n} steps={steps}: nothing moved");
                    for (a, b) in fused.iter().zip(&single) {
                        assert!(
                            (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                            "d={d} n={n} steps={steps}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
