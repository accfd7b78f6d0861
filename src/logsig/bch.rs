//! Log-signatures computed in the Lyndon bracket basis directly, without the signature
//! ([`LogSigMethod::Bch`](super::LogSigMethod::Bch), pySigLib's method 3).
//!
//! Chen's identity in the Lie algebra: the log-signature of a path extended by an increment `y` is
//! `BCH(z, y) = log(exp(z) ⊗ exp(y))`. Written in the Lyndon basis of the free Lie algebra on two
//! letters `X < Y`, the Baker–Campbell–Hausdorff series is `Σ_w b_w P_w(X, Y)` over the Lyndon words
//! `w` of length `≤ N`; each `P_w` is a nested bracket by the standard factorisation. Substituting
//! `X = z` and `Y = y` and bracketing in the `d`-letter Lyndon basis with the structure constants
//! `[P_i, P_j] = Σ_k c_ijk P_k` gives the next log-signature, so memory is a few log-signatures per
//! thread (never the `d^N` tensor).
//!
//! - The coefficients `b_w` are the Lyndon coordinates of `log(exp(X) exp(Y))`: the log-signature of
//!   the two-letter path `(0, 0) → (1, 0) → (1, 1)`, computed by this library's tensor route.
//! - The structure constants come from the Lyndon rewriting rule: `[P_u, P_v] = P_uv` when `u < v`
//!   and `u` is a letter or the right factor of `u` is `≥ v`; otherwise Jacobi's identity
//!   `[[P_a, P_b], P_v] = [P_a, [P_b, P_v]] − [P_b, [P_a, P_v]]` on `u`'s factors `(a, b)`, recursively.
//! - The terms are grouped so that each group costs one bracket: those with right factor `Y` as
//!   `[Σ b_w u_w, Y]`, the others by left operand, `[u, Σ b_w v_w]`.
//! - Every value carries its range of degrees: `z` has `1..=N`, `y` only `1`, a bracket node from
//!   its word's length up to the highest degree its uses read (`N` minus the other operand's lowest);
//!   a bracket reads only the block pairs that reach its output.
//! - The gradient is the adjoint of the same steps, walked backwards: the state before a step is
//!   `BCH(z, −y)` of the state after it (`exp(z) exp(y) exp(−y) = exp(z)`, as `sig_backprop` undoes
//!   segments with `exp(−Δx)`), so memory stays a few log-signatures per thread.

use super::lyndon::{basis, Basis};
use super::LogSigMethod;
use crate::algebra::simd::{multiversion, MulAdd};
use crate::batch::{check_bytes, fit_threads, zeros, Memory, Rows};
use crate::cpu::par_rows;
use crate::{Device, Result, Scalar, SigOptions};
use ndarray::{ArrayD, ArrayViewD};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// `c_ijk` of one ordered pair `(i, j)`: the output position `k` and the coefficient.
#[derive(Clone, Copy)]
struct Term {
    j: u32,
    k: u32,
    c: f64,
}

/// The structure constants of the `d`-letter Lyndon basis up to degree `N`, row `i` holding every
/// `[P_i, P_j]` with `|i| + |j| ≤ N`, grouped by `|j|`.
struct Structure {
    degree: usize,
    /// Position of the first word of each length `1..=N`, then the word count.
    level_start: Vec<usize>,
    /// `segment[i · (N + 2) + q]`: the first term of row `i` whose `j` has length `≥ q`
    /// (`q ∈ 1..=N+1`), for the rows of words shorter than `N`.
    segment: Vec<usize>,
    terms: Vec<Term>,
}

/// A bracket the step needs as an operand: of two earlier nodes (node 0 is `X = z`, node 1 is
/// `Y = y`), its degrees `lo..=hi` (`hi` only as high as its uses read), and where its values live
/// in a thread's buffer.
struct Node {
    left: usize,
    right: usize,
    lo: usize,
    hi: usize,
    offset: usize,
}

/// The series' terms sharing an operand, summed before bracketing (the bracket is bilinear):
/// `[node_fixed, C]` (`fixed_left`) or `[C, node_fixed]` with `C = Σ b_w node_v` over the terms
/// `(v, b_w)`; `C` has degrees `lo..=hi`.
struct Group {
    fixed: usize,
    fixed_left: bool,
    terms: Vec<(usize, f64)>,
    lo: usize,
    hi: usize,
    offset: usize,
}

/// Everything a BCH log-signature of `dim` letters and degree `N` needs; built once and cached.
pub(super) struct Engine {
    dim: usize,
    len: usize,
    structure: Structure,
    nodes: Vec<Node>,
    groups: Vec<Group>,
    /// Values the bracket nodes (all but `X` and `Y`) hold per lane.
    node_values: usize,
    /// Values the groups' right operands hold per lane.
    group_values: usize,
}

/// The coefficients `b_w` of `log(exp(X) exp(Y))` at the two-letter Lyndon words of length `≤ N`
/// (in output order): the log-signature of the path `(0, 0) → (1, 0) → (1, 1)`.
fn series(degree: usize) -> Result<Vec<f64>> {
    let corner = ndarray::arr2(&[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]);
    let cpu = SigOptions::default().device(Device::Cpu).n_jobs(1);
    let coefs =
        super::log_sig::<f64>(corner.into_dyn().view(), degree, LogSigMethod::Lyndon, &cpu)?;
    // The coefficients are rationals computed in f64: anything below 1e-12 is a zero of the series.
    Ok(coefs
        .iter()
        .map(|&c| if c.abs() > 1e-12 { c } else { 0.0 })
        .collect())
}

/// The engine for `dim` letters and degree `degree`, from the cache or built now.
pub(super) fn engine(dim: usize, degree: usize) -> Result<Arc<Engine>> {
    type Cache = Mutex<HashMap<(usize, usize), Arc<Engine>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = lock().get(&(dim, degree)) {
        return Ok(found.clone());
    }
    let built = Arc::new(Engine::new(dim, degree)?);
    Ok(lock().entry((dim, degree)).or_insert(built).clone())
}

/// Compare two Lyndon words lexicographically, each given by its length and index within its level.
fn lex_less(dim: usize, (a, x): (usize, usize), (b, y): (usize, usize)) -> bool {
    let pow = |e: usize| dim.pow(e as u32);
    if a <= b {
        let prefix = y / pow(b - a);
        x < prefix || (x == prefix && a < b)
    } else {
        let prefix = x / pow(a - b);
        prefix < y
    }
}

/// A combination of basis elements: `(position, integer coefficient)`, sorted.
type Combination = Arc<[(u32, i64)]>;

/// The bracket of two Lyndon basis elements in the basis, by the rewriting rule, memoised.
struct Rewriter<'a> {
    basis: &'a Basis,
    factors: Vec<Option<(usize, usize)>>,
    /// Each word's length and index within its level.
    word: Vec<(usize, usize)>,
    memo: HashMap<(u32, u32), Combination>,
}

impl<'a> Rewriter<'a> {
    fn new(basis: &'a Basis) -> Rewriter<'a> {
        let starts = basis.level_starts();
        let word = (0..basis.len())
            .map(|p| {
                let k = starts.partition_point(|&s| s <= p);
                (k, basis.flat[p] - basis.shape.offset(k))
            })
            .collect();
        Rewriter {
            basis,
            factors: basis.factors(),
            word,
            memo: HashMap::new(),
        }
    }

    fn less(&self, u: usize, v: usize) -> bool {
        lex_less(self.basis.shape.dim, self.word[u], self.word[v])
    }

    /// `[P_u, P_v]` for `u < v` lexicographically (and `|u| + |v| ≤ N`).
    fn ordered(&mut self, u: usize, v: usize) -> Combination {
        if let Some(found) = self.memo.get(&(u as u32, v as u32)) {
            return found.clone();
        }
        let result: Combination = match self.factors[u] {
            Some((a, b)) if self.less(b, v) => {
                // Jacobi on u = [a, b]: [[a, b], v] = [a, [b, v]] − [b, [a, v]].
                let mut sum: HashMap<u32, i64> = HashMap::new();
                for (outer, inner, sign) in [(a, b, 1), (b, a, -1)] {
                    let first = self.ordered(inner, v);
                    for &(w, c) in first.iter() {
                        for (x, e) in self.signed(outer, w as usize) {
                            *sum.entry(x).or_default() += sign * c * e;
                        }
                    }
                }
                let mut terms: Vec<(u32, i64)> = sum.into_iter().filter(|t| t.1 != 0).collect();
                terms.sort_unstable();
                terms.into()
            }
            _ => {
                // A letter, or a right factor `≥ v`: (u, v) is the standard factorisation of uv.
                let ((a, x), (b, y)) = (self.word[u], self.word[v]);
                let shape = &self.basis.shape;
                let flat = shape.offset(a + b) + x * shape.level_len(b) + y;
                let uv = self.basis.position(flat).expect("uv is a Lyndon word");
                vec![(uv as u32, 1)].into()
            }
        };
        self.memo.insert((u as u32, v as u32), result.clone());
        result
    }

    /// `[P_u, P_v]` for any two words.
    fn signed(&mut self, u: usize, v: usize) -> Vec<(u32, i64)> {
        if u == v {
            Vec::new()
        } else if self.less(u, v) {
            self.ordered(u, v).to_vec()
        } else {
            self.ordered(v, u).iter().map(|&(w, c)| (w, -c)).collect()
        }
    }
}

impl Structure {
    fn new(basis: &Basis) -> Result<Structure> {
        let n = basis.shape.degree;
        let level_start = basis.level_starts();
        let rows = level_start[n - 1];
        // Bound the table before building it: every pair has at most 2^(N−1) terms.
        let pairs: u128 = (1..n)
            .flat_map(|p| (1..=n - p).map(move |q| (p, q)))
            .map(|(p, q)| {
                let count = |k: usize| (level_start[k] - level_start[k - 1]) as u128;
                count(p) * count(q)
            })
            .sum();
        check_bytes(
            "the Lyndon basis' structure constants",
            pairs.saturating_mul(std::mem::size_of::<Term>() as u128 + 64),
        )?;
        let mut rewriter = Rewriter::new(basis);
        let mut segment = vec![0; rows * (n + 2)];
        let mut terms = Vec::new();
        for i in 0..rows {
            let p = rewriter.word[i].0;
            for q in 1..=n + 1 {
                segment[i * (n + 2) + q] = terms.len();
                if q + p > n {
                    continue;
                }
                for j in level_start[q - 1]..level_start[q] {
                    for (k, c) in rewriter.signed(i, j) {
                        terms.push(Term {
                            j: j as u32,
                            k,
                            c: c as f64,
                        });
                    }
                }
            }
        }
        Ok(Structure {
            degree: n,
            level_start,
            segment,
            terms,
        })
    }

    /// Positions of the words of lengths `lo..=hi`.
    fn span(&self, lo: usize, hi: usize) -> std::ops::Range<usize> {
        self.level_start[lo - 1]..self.level_start[hi]
    }

    /// The terms of row `i` whose `j` has length in `lo..=hi`.
    fn row(&self, i: usize, lo: usize, hi: usize) -> &[Term] {
        let base = i * (self.degree + 2);
        &self.terms[self.segment[base + lo]..self.segment[base + hi + 1]]
    }
}

/// A value of the series for `W` paths at once: its coefficients at the positions of lengths
/// `lo..=hi`, interleaved by path (`values[(pos − base)·W + lane]`).
#[derive(Clone, Copy)]
struct Value<'a, T> {
    values: &'a [T],
    lo: usize,
    hi: usize,
    base: usize,
}

/// The `W` lanes of position `pos` of an interleaved buffer starting at position `base`.
fn lanes<T, const W: usize>(values: &[T], pos: usize, base: usize) -> &[T; W] {
    let at = (pos - base) * W;
    values[at..at + W].try_into().expect("W lanes")
}

fn lanes_mut<T, const W: usize>(values: &mut [T], pos: usize, base: usize) -> &mut [T; W] {
    let at = (pos - base) * W;
    (&mut values[at..at + W]).try_into().expect("W lanes")
}

impl Engine {
    fn new(dim: usize, degree: usize) -> Result<Engine> {
        let words = basis(dim, degree)?;
        let structure = Structure::new(&words)?;
        // The series on two letters: its Lyndon words and coefficients. The letters' coefficients
        // are 1 (`z + y`); every other term is `b_w [u, v]` for `w = uv`: those with `v = Y` make
        // one bracket `[Σ b_w u, Y]` (cheap: `Y` has degree 1), the others are grouped by `u`.
        // One letter has no brackets: the series' letters are all it needs (and 2^N could overflow).
        let series_degree = if dim == 1 { 1 } else { degree };
        let two = basis(2, series_degree)?;
        let coefs = series(series_degree)?;
        let factors = two.factors();
        // (fixed operand, whether it is on the left, the other operands with their coefficients).
        let mut raw: Vec<_> = (0..two.len()).map(|u| (u, true, Vec::new())).collect();
        let mut with_y = Vec::new();
        for (w, &b) in coefs.iter().enumerate() {
            match (factors[w], b != 0.0) {
                (Some((u, 1)), true) => with_y.push((u, b)),
                (Some((u, v)), true) => raw[u].2.push((v, b)),
                _ => {}
            }
        }
        raw.push((1, false, with_y));
        raw.retain(|g| !g.2.is_empty());
        // Needed: the groups' operands, and recursively the brackets' factors.
        let mut needed = vec![false; two.len()];
        for (fixed, _, terms) in &raw {
            needed[*fixed] = true;
            terms.iter().for_each(|&(v, _)| needed[v] = true);
        }
        for w in (0..two.len()).rev() {
            if let (true, Some((u, v))) = (needed[w], factors[w]) {
                needed[u] = true;
                needed[v] = true;
            }
        }
        // A node's lowest degree is its word's length; its highest is what its uses read: a group
        // reads its fixed node `u` up to `N − lo(C)` and `C`'s terms up to `N − lo(u)`; a bracket `[u, v]`
        // read up to `h` reads `u` up to `h − lo(v)` and `v` up to `h − lo(u)`.
        let lo = |w: usize| {
            two.shape
                .index_word(two.flat[w])
                .map_or(0, |word| word.len())
        };
        let mut hi = vec![0usize; two.len()];
        hi[0] = degree;
        if two.len() > 1 {
            hi[1] = 1;
        }
        for (u, _, terms) in &raw {
            let c_lo = terms.iter().map(|&(v, _)| lo(v)).min().unwrap_or(degree);
            hi[*u] = hi[*u].max(degree - c_lo);
            for &(v, _) in terms {
                hi[v] = hi[v].max(degree - lo(*u));
            }
        }
        for w in (2..two.len()).rev() {
            if let (true, Some((u, v))) = (needed[w], factors[w]) {
                hi[u] = hi[u].max(hi[w] - lo(v));
                hi[v] = hi[v].max(hi[w] - lo(u));
            }
        }
        hi[0] = degree;
        if two.len() > 1 {
            hi[1] = 1;
        }
        let mut index = vec![usize::MAX; two.len()];
        let mut nodes: Vec<Node> = Vec::new();
        let mut offset = 0;
        for w in (0..two.len()).filter(|&w| needed[w] || w < 2) {
            let (left, right) =
                factors[w].map_or((usize::MAX, usize::MAX), |(u, v)| (index[u], index[v]));
            let node = Node {
                left,
                right,
                lo: lo(w),
                hi: hi[w],
                offset,
            };
            if w >= 2 {
                offset += structure.span(node.lo, node.hi).len();
            }
            index[w] = nodes.len();
            nodes.push(node);
        }
        let mut groups = Vec::new();
        let mut group_values = 0;
        for (u, fixed_left, terms) in raw {
            let c_lo = terms.iter().map(|&(v, _)| lo(v)).min().unwrap_or(degree);
            let c_hi = degree - lo(u);
            groups.push(Group {
                fixed: index[u],
                fixed_left,
                terms: terms.iter().map(|&(v, b)| (index[v], b)).collect(),
                lo: c_lo,
                hi: c_hi,
                offset: group_values,
            });
            group_values += structure.span(c_lo, c_hi).len();
        }
        Ok(Engine {
            dim,
            len: words.len(),
            structure,
            nodes,
            groups,
            node_values: offset,
            group_values,
        })
    }

    /// The values one thread's [`Scratch`] holds for `W` lanes.
    fn scratch_values(&self, lanes: usize) -> u128 {
        let per_lane = 2 * (self.node_values + self.group_values) + 3 * self.len + self.dim;
        lanes as u128 * per_lane as u128
    }

    /// The positions a node's values cover.
    fn span(&self, w: usize) -> std::ops::Range<usize> {
        self.structure.span(self.nodes[w].lo, self.nodes[w].hi)
    }

    /// Node `w`'s values: `z`, `y` or its slice of `values`.
    fn value<'v, T: Scalar, const W: usize>(
        &self,
        w: usize,
        z: &'v [T],
        y: &'v [T],
        values: &'v [T],
    ) -> Value<'v, T> {
        let node = &self.nodes[w];
        let values = match w {
            0 => z,
            1 => y,
            _ => &values[self.slot::<W>(w)],
        };
        Value {
            values,
            lo: node.lo,
            hi: node.hi,
            base: self.structure.level_start[node.lo - 1],
        }
    }

    /// Fill every bracket node for the step from `z` by the increment `y`.
    fn nodes<T: Scalar, const W: usize>(&self, z: &[T], y: &[T], values: &mut [T]) {
        for (w, node) in self.nodes.iter().enumerate().skip(2) {
            debug_assert!(w > node.left && w > node.right);
            let (done, rest) = values.split_at_mut(node.offset * W);
            let a = self.value::<T, W>(node.left, z, y, done);
            let b = self.value::<T, W>(node.right, z, y, done);
            let span = self.span(w);
            let out = &mut rest[..span.len() * W];
            out.fill(T::zero());
            bracket::<T, W>(&self.structure, a, b, out, (span.start, node.hi));
        }
    }

    /// Group `g`'s summed operand `C = Σ b_w node_v` into `r` (`W` lanes).
    fn group_operand<T: Scalar, const W: usize>(
        &self,
        g: &Group,
        (z, y): (&[T], &[T]),
        values: &[T],
        r: &mut [T],
    ) {
        r.fill(T::zero());
        let r_span = self.structure.span(g.lo, g.hi);
        for &(v, b) in &g.terms {
            let b = T::from_f64(b);
            let node = &self.nodes[v];
            let from = self.structure.span(node.lo, node.hi.min(g.hi));
            let src = match v {
                0 => &z[..from.len() * W],
                1 => &y[..from.len() * W],
                _ => &values[node.offset * W..(node.offset + from.len()) * W],
            };
            let dst = &mut r[(from.start - r_span.start) * W..(from.end - r_span.start) * W];
            for (d, &x) in dst.iter_mut().zip(src) {
                *d += b * x;
            }
        }
    }

    /// Group `g`'s summed operand as a [`Value`].
    fn group_value<'v, T>(&self, g: &Group, r: &'v [T]) -> Value<'v, T> {
        Value {
            values: r,
            lo: g.lo,
            hi: g.hi,
            base: self.structure.level_start[g.lo - 1],
        }
    }

    /// Group `g`'s slice of a groups buffer.
    fn group_slot<const W: usize>(&self, g: &Group) -> std::ops::Range<usize> {
        g.offset * W..(g.offset + self.structure.span(g.lo, g.hi).len()) * W
    }

    /// `next = BCH(z, y) = z + y + Σ_groups [node_u, R]`.
    #[allow(clippy::too_many_arguments)]
    fn step<T: Scalar, const W: usize>(
        &self,
        z: &[T],
        y: &[T],
        values: &mut [T],
        rs: &mut [T],
        next: &mut [T],
    ) {
        self.nodes::<T, W>(z, y, values);
        next.copy_from_slice(z);
        for (n, &yi) in next.iter_mut().zip(y) {
            *n += yi;
        }
        for g in &self.groups {
            let r = &mut rs[self.group_slot::<W>(g)];
            self.group_operand::<T, W>(g, (z, y), values, r);
            let fixed = self.value::<T, W>(g.fixed, z, y, values);
            let sum = self.group_value(g, r);
            let (a, b) = if g.fixed_left {
                (fixed, sum)
            } else {
                (sum, fixed)
            };
            let n = self.structure.degree;
            bracket::<T, W>(&self.structure, a, b, next, (0, n));
        }
    }

    /// The adjoint of [`Engine::step`] at `(z, y)`: `dz` (the next value's gradient) becomes `z`'s;
    /// `dy` is set to `y`'s.
    fn step_adjoint<T: Scalar, const W: usize>(
        &self,
        z: &[T],
        y: &[T],
        dz: &mut [T],
        dy: &mut [T],
        s: &mut Scratch<T>,
    ) {
        self.nodes::<T, W>(z, y, &mut s.values);
        // The identity terms `z + y` first; then each group, its right operand's gradient handed
        // to the terms' nodes; then the nodes, parents before children.
        let dnext = &mut s.next;
        dnext.copy_from_slice(dz);
        dy.copy_from_slice(&dz[..dy.len()]);
        s.dvalues.fill(T::zero());
        for g in &self.groups {
            let slot = self.group_slot::<W>(g);
            let r = &mut s.rs[slot.clone()];
            self.group_operand::<T, W>(g, (z, y), &s.values, r);
            let dr = &mut s.drs[slot];
            dr.fill(T::zero());
            let fixed = self.value::<T, W>(g.fixed, z, y, &s.values);
            let dfixed = match g.fixed {
                0 => &mut *dz,
                1 => &mut *dy,
                w => &mut s.dvalues[self.slot::<W>(w)],
            };
            let n = self.structure.degree;
            let sum = self.group_value(g, r);
            if g.fixed_left {
                bracket_adjoint::<T, W>(&self.structure, fixed, sum, dnext, (0, n), (dfixed, dr));
            } else {
                bracket_adjoint::<T, W>(&self.structure, sum, fixed, dnext, (0, n), (dr, dfixed));
            }
            let r_start = self.structure.span(g.lo, g.hi).start;
            for &(v, b) in &g.terms {
                let b = T::from_f64(b);
                let node = &self.nodes[v];
                let to = self.structure.span(node.lo, node.hi.min(g.hi));
                let src = &dr[(to.start - r_start) * W..(to.end - r_start) * W];
                let dst = match v {
                    0 => &mut dz[..to.len() * W],
                    1 => &mut dy[..to.len() * W],
                    _ => &mut s.dvalues[node.offset * W..(node.offset + to.len()) * W],
                };
                for (d, &x) in dst.iter_mut().zip(src) {
                    *d += b * x;
                }
            }
        }
        for w in (2..self.nodes.len()).rev() {
            let node = &self.nodes[w];
            let span = self.span(w);
            let (done, rest) = s.dvalues.split_at_mut(node.offset * W);
            let dout = &rest[..span.len() * W];
            let a = self.value::<T, W>(node.left, z, y, &s.values);
            let b = self.value::<T, W>(node.right, z, y, &s.values);
            let slot = |v: usize| self.slot::<W>(v);
            let (da, db) = operand_grads((node.left, node.right), dz, dy, done, slot);
            bracket_adjoint::<T, W>(&self.structure, a, b, dout, (span.start, node.hi), (da, db));
        }
    }

    /// Bracket node `w`'s slice of a nodes buffer.
    fn slot<const W: usize>(&self, w: usize) -> std::ops::Range<usize> {
        let n = &self.nodes[w];
        n.offset * W..(n.offset + self.span(w).len()) * W
    }
}

multiversion! {
    lanes(W)
    /// `out += [a, b]` over `out`'s degrees (up to `at.1`; `at.0` is its first position), `W` paths
    /// at once. Only the degree blocks `(p, q)` with `p + q ≤ at.1` inside both operands' ranges
    /// are read.
    fn bracket(s: &Structure, a: Value<'_, T>, b: Value<'_, T>, out: &mut [T], at: (usize, usize)) => bracket_body
}

#[inline(always)]
fn bracket_body<T: Scalar, M: MulAdd, const W: usize>(
    s: &Structure,
    a: Value<'_, T>,
    b: Value<'_, T>,
    out: &mut [T],
    (out_base, n): (usize, usize),
) {
    for p in a.lo..=a.hi.min(n - b.lo) {
        for i in s.span(p, p) {
            let ai = *lanes::<T, W>(a.values, i, a.base);
            if ai.iter().all(|&x| x == T::zero()) {
                continue;
            }
            for t in s.row(i, b.lo, b.hi.min(n - p)) {
                let c = T::from_f64(t.c);
                let bj = lanes::<T, W>(b.values, t.j as usize, b.base);
                let o = lanes_mut::<T, W>(out, t.k as usize, out_base);
                for l in 0..W {
                    o[l] = M::madd(c * ai[l], bj[l], o[l]);
                }
            }
        }
    }
}

multiversion! {
    lanes(W)
    /// The adjoint of [`bracket`]: `grads.0 += ∂/∂a ⟨dout, [a, b]⟩`, likewise `grads.1` for `b`.
    fn bracket_adjoint(
        s: &Structure,
        a: Value<'_, T>,
        b: Value<'_, T>,
        dout: &[T],
        at: (usize, usize),
        grads: (&mut [T], &mut [T]),
    ) => bracket_adjoint_body
}

#[inline(always)]
fn bracket_adjoint_body<T: Scalar, M: MulAdd, const W: usize>(
    s: &Structure,
    a: Value<'_, T>,
    b: Value<'_, T>,
    dout: &[T],
    (out_base, n): (usize, usize),
    (da, db): (&mut [T], &mut [T]),
) {
    for p in a.lo..=a.hi.min(n - b.lo) {
        for i in s.span(p, p) {
            let ai = *lanes::<T, W>(a.values, i, a.base);
            let mut acc = [T::zero(); W];
            for t in s.row(i, b.lo, b.hi.min(n - p)) {
                let c = T::from_f64(t.c);
                let g = lanes::<T, W>(dout, t.k as usize, out_base);
                let bj = lanes::<T, W>(b.values, t.j as usize, b.base);
                let dbj = lanes_mut::<T, W>(db, t.j as usize, b.base);
                for l in 0..W {
                    let gl = c * g[l];
                    acc[l] = M::madd(gl, bj[l], acc[l]);
                    dbj[l] = M::madd(ai[l], gl, dbj[l]);
                }
            }
            let dai = lanes_mut::<T, W>(da, i, a.base);
            for l in 0..W {
                dai[l] += acc[l];
            }
        }
    }
}

/// The gradients of a bracket's two operands `left != right`: `z`'s and `y`'s for nodes 0 and 1,
/// else the nodes' (disjoint) slices of `done`.
fn operand_grads<'g, T>(
    (left, right): (usize, usize),
    dz: &'g mut [T],
    dy: &'g mut [T],
    done: &'g mut [T],
    slot: impl Fn(usize) -> std::ops::Range<usize>,
) -> (&'g mut [T], &'g mut [T]) {
    match (left, right) {
        (0, 1) => (dz, dy),
        (1, 0) => (dy, dz),
        (0, r) => (dz, &mut done[slot(r)]),
        (1, r) => (dy, &mut done[slot(r)]),
        (l, 0) => (&mut done[slot(l)], dz),
        (l, 1) => (&mut done[slot(l)], dy),
        (l, r) => {
            let (sl, sr) = (slot(l), slot(r));
            if sl.start < sr.start {
                let (first, second) = done.split_at_mut(sr.start);
                (&mut first[sl], &mut second[..sr.len()])
            } else {
                let (first, second) = done.split_at_mut(sl.start);
                (&mut second[..sl.len()], &mut first[sr])
            }
        }
    }
}

/// One thread's buffers for `W` lanes: the bracket nodes' values and gradients, the state, the
/// next state and the increment.
struct Scratch<T> {
    values: Vec<T>,
    dvalues: Vec<T>,
    rs: Vec<T>,
    drs: Vec<T>,
    z: Vec<T>,
    next: Vec<T>,
    y: Vec<T>,
}

impl<T: Scalar> Scratch<T> {
    fn new(engine: &Engine, lanes: usize) -> Scratch<T> {
        let zeros = |n: usize| vec![T::zero(); n * lanes];
        Scratch {
            values: zeros(engine.node_values),
            dvalues: zeros(engine.node_values),
            rs: zeros(engine.group_values),
            drs: zeros(engine.group_values),
            z: zeros(engine.len),
            next: zeros(engine.len),
            y: zeros(engine.dim),
        }
    }
}

/// Paths evaluated together, interleaved: one table walk serves all of them, in vector registers.
const LANES: usize = 8;

/// `W` paths (rows of `row` values, `dim` channels), read interleaved: increment `t` into `y`.
fn increment<T: Scalar, const W: usize>(paths: &[&[T]; W], dim: usize, t: usize, y: &mut [T]) {
    for c in 0..dim {
        for (l, path) in paths.iter().enumerate() {
            y[c * W + l] = path[(t + 1) * dim + c] - path[t * dim + c];
        }
    }
}

/// The log-signatures of `W` paths into `out` (`W` rows of `engine.len`).
fn forward<T: Scalar, const W: usize>(
    engine: &Engine,
    paths: &[&[T]; W],
    s: &mut Scratch<T>,
    out: &mut [T],
) {
    let steps = (paths[0].len() / engine.dim).saturating_sub(1);
    s.z.fill(T::zero());
    for t in 0..steps {
        increment(paths, engine.dim, t, &mut s.y);
        engine.step::<T, W>(&s.z, &s.y, &mut s.values, &mut s.rs, &mut s.next);
        std::mem::swap(&mut s.z, &mut s.next);
    }
    for (l, row) in out.chunks_exact_mut(engine.len).enumerate() {
        for (k, o) in row.iter_mut().enumerate() {
            *o = s.z[k * W + l];
        }
    }
}

/// The gradients of `⟨g_l, log_sig(path_l)⟩` with respect to the points of `W` paths, into `dpaths`
/// (`W` rows of the paths' size).
fn backward<T: Scalar, const W: usize>(
    engine: &Engine,
    paths: &[&[T]; W],
    g: &[T],
    s: &mut Scratch<T>,
    dz: &mut Vec<T>,
    dpaths: &mut [T],
) {
    let dim = engine.dim;
    let row = paths[0].len();
    let steps = (row / dim).saturating_sub(1);
    dpaths.fill(T::zero());
    if steps == 0 {
        return;
    }
    s.z.fill(T::zero());
    for t in 0..steps {
        increment(paths, dim, t, &mut s.y);
        engine.step::<T, W>(&s.z, &s.y, &mut s.values, &mut s.rs, &mut s.next);
        std::mem::swap(&mut s.z, &mut s.next);
    }
    dz.clear();
    dz.extend((0..engine.len * W).map(|k| g[(k % W) * engine.len + k / W]));
    let mut dy = vec![T::zero(); dim * W];
    let mut y = std::mem::take(&mut s.y);
    let mut z = std::mem::take(&mut s.z);
    let mut before = vec![T::zero(); engine.len * W];
    for t in (0..steps).rev() {
        // The state before step t: exp(z_t) = exp(z_{t+1}) exp(−y_t), so z_t = BCH(z_{t+1}, −y_t).
        increment(paths, dim, t, &mut y);
        y.iter_mut().for_each(|v| *v = -*v);
        engine.step::<T, W>(&z, &y, &mut s.values, &mut s.rs, &mut before);
        y.iter_mut().for_each(|v| *v = -*v);
        engine.step_adjoint::<T, W>(&before, &y, dz, &mut dy, s);
        std::mem::swap(&mut z, &mut before);
        for (l, dpath) in dpaths.chunks_exact_mut(row).enumerate() {
            for c in 0..dim {
                dpath[(t + 1) * dim + c] += dy[c * W + l];
                dpath[t * dim + c] -= dy[c * W + l];
            }
        }
    }
    s.z = z;
    s.y = y;
}

/// Both lane widths' scratch, made on first use.
#[derive(Default)]
struct Scratches<T> {
    wide: Option<Scratch<T>>,
    single: Option<Scratch<T>>,
    /// The state's gradient (backward only).
    gradient: Vec<T>,
}

/// Run `wide` over the rows of `out` (`row_len` values per path) in full groups of [`LANES`] paths
/// interleaved, and `single` over any remainder one path at a time.
fn in_lanes<T: Scalar>(
    engine: &Engine,
    threads: usize,
    out: &mut [T],
    row_len: usize,
    wide: impl Fn(&mut Scratch<T>, &mut Vec<T>, usize, &mut [T]) + Sync + Send,
    single: impl Fn(&mut Scratch<T>, &mut Vec<T>, usize, &mut [T]) + Sync + Send,
) {
    par_rows(
        threads,
        out,
        LANES * row_len,
        Scratches::<T>::default,
        |s, group, chunk| {
            let first = group * LANES;
            if chunk.len() == LANES * row_len {
                let scratch = s.wide.get_or_insert_with(|| Scratch::new(engine, LANES));
                wide(scratch, &mut s.gradient, first, chunk);
            } else {
                let scratch = s.single.get_or_insert_with(|| Scratch::new(engine, 1));
                for (i, o) in chunk.chunks_exact_mut(row_len).enumerate() {
                    single(scratch, &mut s.gradient, first + i, o);
                }
            }
        },
    );
}

/// The rows `first..first + W` of `src`, `row` values each.
fn rows<T, const W: usize>(src: &[T], row: usize, first: usize) -> [&[T]; W] {
    std::array::from_fn(|l| &src[(first + l) * row..(first + l + 1) * row])
}

/// The transformed paths (the caller has checked the paths), the engine for their width, and
/// `options` on the CPU.
fn prepare<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    degree: usize,
    options: &SigOptions,
) -> Result<(SigOptions, ArrayD<T>, Arc<Engine>)> {
    let cpu = options.clone().device(Device::Cpu);
    let transformed = crate::transform_path(paths, &cpu)?;
    let dim = transformed.shape().last().copied().unwrap_or(1);
    Ok((cpu, transformed, engine(dim, degree)?))
}

/// The body of [`crate::log_sig`] for [`LogSigMethod::Bch`] on the CPU, on `threads` threads.
pub(super) fn log_sig<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    degree: usize,
    options: &SigOptions,
    threads: usize,
) -> Result<ArrayD<T>> {
    let (_, transformed, engine) = prepare(paths, degree, options)?;
    let p = Rows::new("path", transformed.view(), 2)?;
    let mut out_shape = p.batch_shape.clone();
    out_shape.push(engine.len);
    let size = std::mem::size_of::<T>() as u128;
    let output = p.batch() as u128 * engine.len as u128 * size;
    let per_thread = engine.scratch_values(LANES + 1) * size;
    let threads = fit_threads("log-signature", threads, |_| Memory {
        output,
        shared: 0,
        per_thread,
    })?;
    let mut out = zeros::<T>("log-signature", &out_shape)?;
    let src = p.slice();
    let row = src.len() / p.batch().max(1);
    let e = &engine;
    in_lanes(
        e,
        threads,
        out.as_slice_mut().expect("fresh arrays are contiguous"),
        e.len,
        |s, _, first, o| forward::<T, LANES>(e, &rows(src, row, first), s, o),
        |s, _, i, o| forward::<T, 1>(e, &rows(src, row, i), s, o),
    );
    Ok(out)
}

/// The body of [`crate::log_sig_backprop`] for [`LogSigMethod::Bch`] on the CPU: `derivs` are the
/// log-signatures' gradients, already checked against the paths (batch and length) by the caller.
pub(super) fn log_sig_backprop<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    derivs: &Rows<'_, T>,
    degree: usize,
    options: &SigOptions,
    threads: usize,
) -> Result<ArrayD<T>> {
    let (cpu, transformed, engine) = prepare(paths, degree, options)?;
    let p = Rows::new("path", transformed.view(), 2)?;
    let src = p.slice();
    let row = src.len() / p.batch().max(1);
    let size = std::mem::size_of::<T>() as u128;
    // The scratch, the state's gradient and the state before each step.
    let per_thread =
        engine.scratch_values(LANES + 1) + 2 * (LANES + 1) as u128 * engine.len as u128;
    let threads = fit_threads("log-signature gradient", threads, |_| Memory {
        output: 2 * src.len() as u128 * size,
        shared: 0,
        per_thread: per_thread * size,
    })?;
    let mut dtransformed = zeros::<T>("path gradient", transformed.shape())?;
    let g = derivs.slice();
    let e = &engine;
    let gs = |first: usize, count: usize| &g[first * e.len..(first + count) * e.len];
    in_lanes(
        e,
        threads,
        dtransformed
            .as_slice_mut()
            .expect("fresh arrays are contiguous"),
        row,
        |s, ck, first, o| {
            backward::<T, LANES>(e, &rows(src, row, first), gs(first, LANES), s, ck, o)
        },
        |s, ck, i, o| backward::<T, 1>(e, &rows(src, row, i), gs(i, 1), s, ck, o),
    );
    crate::transform_path_backprop(dtransformed.view(), &cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a ⊗ b − b ⊗ a` of two expanded tensors (levels only).
    fn commutator(shape: &crate::layout::TensorShape, a: &[f64], b: &[f64]) -> Vec<f64> {
        let n = shape.degree;
        let mut out = vec![0.0; shape.len()];
        for (x, y, sign) in [(a, b, 1.0), (b, a, -1.0)] {
            for p in 1..n {
                for q in 1..=n - p {
                    let (xs, ys) = (shape.offset(p), shape.offset(q));
                    for u in 0..shape.level_len(p) {
                        for v in 0..shape.level_len(q) {
                            let w = shape.offset(p + q) + u * shape.level_len(q) + v;
                            out[w] += sign * x[xs + u] * y[ys + v];
                        }
                    }
                }
            }
        }
        out
    }

    /// Every structure constant, expanded in words, is the commutator of the two brackets' expansions.
    #[test]
    fn structure_constants_are_the_commutators() {
        for (d, n) in [(2, 7), (3, 5), (4, 4)] {
            let words = basis(d, n).unwrap();
            let expansions = words.expansions().unwrap();
            let s = Structure::new(&words).unwrap();
            let expand = |coords: &[f64]| {
                let mut out = vec![0.0; words.shape.len()];
                expansions.expand(coords, &mut out);
                out
            };
            let unit = |i: usize| {
                let mut c = vec![0.0; words.len()];
                c[i] = 1.0;
                c
            };
            let mut checked = 0;
            for i in 0..s.level_start[n - 1] {
                let mut coords = vec![vec![0.0; words.len()]; words.len()];
                for t in s.row(i, 1, n) {
                    coords[t.j as usize][t.k as usize] += t.c;
                }
                let p = s.level_start.partition_point(|&x| x <= i);
                for (j, c) in coords.iter().enumerate().take(s.level_start[n - p]) {
                    let want = commutator(&words.shape, &expand(&unit(i)), &expand(&unit(j)));
                    assert_eq!(expand(c), want, "d={d} n={n} [{i}, {j}]");
                    checked += 1;
                }
            }
            assert!(checked > 50, "d={d} n={n}: {checked} pairs");
        }
    }

    /// The series starts `X + Y + ½[X, Y] + (1/12)[X, [X, Y]] + (1/12)[[X, Y], Y]`, and is grouped
    /// as `[X, (1/12)[X, Y]]` and `[½X + (1/12)[X, Y], Y]`.
    #[test]
    fn series_coefficients() {
        let want = [1.0, 1.0, 0.5, 1.0 / 12.0, 1.0 / 12.0];
        let got = series(3).unwrap();
        assert_eq!(got.len(), want.len());
        for (c, w) in got.iter().zip(want) {
            assert!((c - w).abs() < 1e-15, "{got:?}");
        }
        let e = engine(2, 3).unwrap();
        let close = |terms: &[(usize, f64)], want: &[(usize, f64)]| {
            terms.len() == want.len()
                && terms
                    .iter()
                    .zip(want)
                    .all(|(t, w)| t.0 == w.0 && (t.1 - w.1).abs() < 1e-15)
        };
        assert_eq!(e.groups.len(), 2);
        let (x, y) = (&e.groups[0], &e.groups[1]);
        assert!((x.fixed, x.fixed_left, y.fixed, y.fixed_left) == (0, true, 1, false));
        assert!(close(&x.terms, &[(2, 1.0 / 12.0)]));
        assert!(close(&y.terms, &[(0, 0.5), (2, 1.0 / 12.0)]));
        // [X, Y] is read up to degree 2 only.
        assert_eq!((e.nodes[2].lo, e.nodes[2].hi), (2, 2));
    }
}
