//! Several Horner steps at once on lane-interleaved signatures, level by level in one walk
//! over the words, depth first, so that every coefficient is loaded and stored once for all the
//! steps.
//!
//! One step on tiny signatures is bound by loads and stores, not arithmetic: each coefficient is
//! read, gets one multiply-add per level above it, and is written back, and the vectors are short.
//! Fusing the steps of [`super::mul_exp_fused`] (which keeps each step's top-level chain) saves
//! little here, as that chain is a third of the top level at `d = 3`. Instead the walk carries
//! each step's chains down the tree of words: at word `w` of length `m` (last letter `j`), with
//! `P^(k,s)` the chain values of `w`'s parent for level `k` and step `s`, and `x` the
//! coefficient `S_m[w]` before step `s`,
//!
//! ```text
//! B^(k,s)[w] = P^(k,s) · z_s[j] / (k - m + 1) + x      for each level k > m   (Horner's links)
//! x          ← P^(m,s) · z_s[j] + x                                           (step s at level m)
//! ```
//!
//! which is [`super::mul_exp`]'s arithmetic, word by word (the root's chain values are 1). The
//! words of the last two levels are walked in registers; those above, a small fraction of the
//! whole, keep their chain values in a stack in memory.

use super::vector::{lanes_madd, lanes_scale};
use crate::layout::TensorShape;
use crate::Scalar;

use super::simd::MulAdd;

/// Steps taken at once: the most that keep the walk in AVX2's sixteen registers. Two halve the
/// loads and stores of one; four pay at `d ≤ 2` and not at `d = 3`, where there are too few
/// registers for them (measured: docs/PERFORMANCE.md, *CPU kernel choices*).
const fn steps_at_once(d: usize) -> usize {
    if d <= 2 {
        4
    } else {
        2
    }
}
const MAX_STEPS: usize = 4;

/// Per-thread buffers of [`mul_exp_lanes_fused`].
pub struct FusedScratch<T, const L: usize> {
    /// The chain values of the words above the last two levels, one set of `N·F` per depth (`F`
    /// the steps taken at once):
    /// `[m][k - m - 1][s]` for the word of length `m` on the current path of the walk. Depth 0,
    /// the root's, is all 1.
    stack: Vec<[T; L]>,
}

impl<T: Scalar, const L: usize> FusedScratch<T, L> {
    pub fn new(shape: &TensorShape) -> Self {
        let n = shape.degree;
        let mut stack = vec![[T::zero(); L]; n.max(1) * n * MAX_STEPS];
        stack[..n * MAX_STEPS].fill([T::one(); L]);
        FusedScratch { stack }
    }
}

/// Whether [`mul_exp_lanes_fused`] handles this shape with dimension `D` known at compile time:
/// it walks at least one level above the last two, and the last two are unrolled.
pub fn fuses<const D: usize>(shape: &TensorShape) -> bool {
    D > 0 && shape.degree >= 3
}

/// `s ← s ⊗ exp(z_0) ⊗ exp(z_1) ⊗ …` for each lane, for as many of the increments in `zs`
/// (lane-interleaved, `D·L` values each, one after the other) as fill whole groups of steps taken
/// at once; returns the increments left over. Needs [`fuses`].
#[inline(always)]
pub fn mul_exp_lanes_fused<'z, T: Scalar, M: MulAdd, const D: usize, const L: usize>(
    shape: &TensorShape,
    s: &mut [T],
    zs: &'z [T],
    inv: &[T],
    scratch: &mut FusedScratch<T, L>,
) -> &'z [T] {
    // `steps_at_once(D)` is a constant here, and so is the match.
    let f = steps_at_once(D);
    let mut groups = zs.chunks_exact(f * D * L);
    for z in &mut groups {
        match f {
            4 => group::<T, M, D, 4, L>(shape, s, z, inv, scratch),
            _ => group::<T, M, D, 2, L>(shape, s, z, inv, scratch),
        }
    }
    groups.remainder()
}

/// `s ← s ⊗ exp(z_0) ⊗ … ⊗ exp(z_{F-1})`.
#[inline(always)]
fn group<T: Scalar, M: MulAdd, const D: usize, const F: usize, const L: usize>(
    shape: &TensorShape,
    s: &mut [T],
    zs: &[T],
    inv: &[T],
    scratch: &mut FusedScratch<T, L>,
) {
    let n = shape.degree;
    debug_assert!(fuses::<D>(shape));
    let s: &mut [[T; L]] = bytemuck::cast_slice_mut(s);
    let z: &[[[T; L]; D]; F] = bytemuck::cast_slice(&zs[..F * D * L])
        .try_into()
        .expect("F increments of D channels");
    // Loops rather than `array::map`, whose closures LLVM left out of line, outside the
    // instruction set's specialisation, with copies of the arrays between them.
    let scaled = |c: T| {
        let mut out = [[[T::zero(); L]; D]; F];
        for (o, z) in out.iter_mut().zip(z) {
            for (o, z) in o.iter_mut().zip(z) {
                *o = lanes_scale::<T, M, L>(z, c);
            }
        }
        out
    };
    let walk = Walk::<T, D, F, L> {
        offsets: [shape.offset(n - 2), shape.offset(n - 1), shape.offset(n)],
        z,
        z2: scaled(inv[2]),
        z3: scaled(inv[3]),
    };
    let stack = &mut scratch.stack;
    // Depth first over the words of length N-2, each preceded by those of its ancestors (lengths
    // 1 … N-3) that it is the first descendant of. A loop, not a recursion, so that it all
    // inlines into the instruction set's specialisation.
    let set = n * F;
    for w in 0..shape.level_len(n - 2) {
        for m in 1..n - 2 {
            let below = shape.level_len(n - 2 - m);
            if w % below == 0 {
                let (parent, chains) = stack[(m - 1) * set..(m + 1) * set].split_at_mut(set);
                let at = shape.offset(m) + w / below;
                let j = (w / below) % D;
                let mut zj = [[T::zero(); L]; F];
                for (o, z) in zj.iter_mut().zip(z) {
                    *o = z[j];
                }
                word::<T, M, F, L>(m, n, &mut s[at], &zj, inv, parent, chains);
            }
        }
        walk.last_two::<M>(w, &stack[(n - 3) * set..(n - 2) * set], s);
    }
}

/// Word of length `m` (`1 ≤ m < N-2`) with coefficient `x` and last letter `j` (`zj[s] = z_s[j]`):
/// `x` takes the steps, and `chains` gets the word's chain values for levels `m+1 … N`,
/// `[k - m - 1][s]`, from its parent's in `parent` (levels `m … N`, `[k - m][s]`).
#[inline(always)]
fn word<T: Scalar, M: MulAdd, const F: usize, const L: usize>(
    m: usize,
    n: usize,
    x: &mut [T; L],
    zj: &[[T; L]; F],
    inv: &[T],
    parent: &[[T; L]],
    chains: &mut [[T; L]],
) {
    let (parent, chains) = (&parent[..(n - m + 1) * F], &mut chains[..(n - m) * F]);
    let mut v = *x;
    for t in 0..F {
        for ((p, c), &inv) in parent[F..]
            .chunks_exact(F)
            .zip(chains.chunks_exact_mut(F))
            .zip(&inv[2..])
        {
            c[t] = lanes_madd::<T, M, L>(&lanes_scale::<T, M, L>(&p[t], inv), &zj[t], &v);
        }
        v = lanes_madd::<T, M, L>(&parent[t], &zj[t], &v);
    }
    *x = v;
}

/// What the last two levels of the walk read: the increments, and them divided by 2 and by 3.
struct Walk<'a, T, const D: usize, const F: usize, const L: usize> {
    /// Where levels `N-2`, `N-1` and `N` start.
    offsets: [usize; 3],
    z: &'a [[[T; L]; D]; F],
    z2: [[[T; L]; D]; F],
    z3: [[[T; L]; D]; F],
}

impl<T: Scalar, const D: usize, const F: usize, const L: usize> Walk<'_, T, D, F, L> {
    /// Word `w` of length `N-2` and everything below it, in registers: its `D` children at level
    /// `N-1` and their `D²` at level `N`. `parent` holds the chain values for levels `N-2 … N`.
    #[inline(always)]
    fn last_two<M: MulAdd>(&self, w: usize, parent: &[[T; L]], s: &mut [[T; L]]) {
        let j = w % D;
        let p = &parent[..3 * F];
        let (low, top) = s.split_at_mut(self.offsets[2]);
        let (low, kids) = low.split_at_mut(self.offsets[1]);
        let x = &mut low[self.offsets[0] + w];
        let kids: &mut [[T; L]; D] = (&mut kids[w * D..(w + 1) * D]).try_into().expect("D words");
        let grandkids: &mut [[[T; L]; D]] =
            bytemuck::cast_slice_mut(&mut top[w * D * D..(w + 1) * D * D]);
        // The word itself (level N-2; the root's children when N = 3).
        let mut b1 = [[T::zero(); L]; F];
        let mut b2 = [[T::zero(); L]; F];
        for t in 0..F {
            b1[t] = lanes_madd::<T, M, L>(&p[F + t], &self.z2[t][j], x);
            b2[t] = lanes_madd::<T, M, L>(&p[2 * F + t], &self.z3[t][j], x);
            *x = lanes_madd::<T, M, L>(&p[t], &self.z[t][j], x);
        }
        for (c, (y, us)) in kids.iter_mut().zip(grandkids).enumerate() {
            let mut e = [[T::zero(); L]; F];
            for t in 0..F {
                e[t] = lanes_madd::<T, M, L>(&b2[t], &self.z2[t][c], y);
                *y = lanes_madd::<T, M, L>(&b1[t], &self.z[t][c], y);
            }
            for (l, u) in us.iter_mut().enumerate() {
                // Indexed: the zipped form measured 1.1× slower (LLVM kept less in registers).
                #[allow(clippy::needless_range_loop)]
                for t in 0..F {
                    *u = lanes_madd::<T, M, L>(&e[t], &self.z[t][l], u);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lanes::{mul_exp_lanes, LaneScratch};
    use super::*;

    /// Groups of steps taken at once against the same steps one call (and so one step) at a time,
    /// across the dimensions and degrees the walk handles, with step counts that leave remainders,
    /// at each lane count a scalar type runs with.
    #[test]
    fn steps_at_once_match_single_steps() {
        steps_at_once_match::<f64, 8>(1e-14);
        steps_at_once_match::<f32, 16>(1e-5);
        steps_at_once_match::<f32, 8>(1e-5);
    }

    fn steps_at_once_match<T: Scalar, const L: usize>(tol: f64) {
        for d in 1..=5 {
            for n in 3..=6 {
                let shape = TensorShape::new(d, n).unwrap();
                let mut seed = (10 * d + n) as u64;
                let mut rand = || {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    T::from_f64((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
                };
                let s0: Vec<T> = (0..shape.len() * L).map(|_| rand()).collect();
                let steps = 2 * MAX_STEPS + 1;
                let zs: Vec<T> = (0..steps * d * L).map(|_| rand()).collect();
                let mut scratch = LaneScratch::<T, L>::new(&shape);
                let mut grouped = s0.clone();
                mul_exp_lanes(&shape, &mut grouped, &zs, &mut scratch);
                let mut single = s0.clone();
                for z in zs.chunks_exact(d * L) {
                    mul_exp_lanes(&shape, &mut single, z, &mut scratch);
                }
                assert!(grouped != s0, "d={d} n={n}: nothing moved");
                for (i, (a, b)) in grouped.iter().zip(&single).enumerate() {
                    let (a, b) = (Scalar::to_f64(*a), Scalar::to_f64(*b));
                    assert!(
                        (a - b).abs() <= tol * (1.0 + b.abs()),
                        "{} L={L} d={d} n={n} entry {i}: {a} vs {b}",
                        T::NAME
                    );
                }
            }
        }
    }
}
