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
//! - Every value carries its range of degrees: `z` has `1..=N`, `y` only `1`, a bracket
//!   `lo_a + lo_b ..= min(N, hi_a + hi_b)`; a bracket reads only the block pairs that reach the output.
//! - The gradient is the adjoint of the same steps, walked backwards from checkpoints every `√n`
//!   steps (`2√n` log-signatures per thread), so it needs no inverse steps.

use super::lyndon::{basis, Basis};
use super::LogSigMethod;
use crate::batch::{check_bytes, fit_threads, paths as path_rows, zeros, Memory, Rows};
use crate::cpu::par_rows;
use crate::{Device, Error, Result, Scalar, SigOptions};
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

/// One node of the BCH series: the bracket of two earlier nodes (node 0 is `X = z`, node 1 is
/// `Y = y`), its coefficient in the series, and where its values live in a thread's buffer.
struct Node {
    left: usize,
    right: usize,
    coef: f64,
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
    /// Values the bracket nodes (all but `X` and `Y`) hold per thread.
    node_values: usize,
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

/// A value of the series: its coefficients at the positions of lengths `lo..=hi`, `values[0]` being
/// the first word of length `lo`.
#[derive(Clone, Copy)]
struct Value<'a, T> {
    values: &'a [T],
    lo: usize,
    hi: usize,
    base: usize,
}

impl Engine {
    fn new(dim: usize, degree: usize) -> Result<Engine> {
        let words = basis(dim, degree)?;
        let structure = Structure::new(&words)?;
        // The series on two letters: its Lyndon words (the nodes) and coefficients.
        let two = basis(2, degree)?;
        let corner = ndarray::arr2(&[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]);
        let cpu = SigOptions::default().device(Device::Cpu).n_jobs(1);
        let coefs =
            super::log_sig::<f64>(corner.into_dyn().view(), degree, LogSigMethod::Lyndon, &cpu)?;
        let coefs = coefs.as_slice().expect("fresh arrays are contiguous");
        let factors = two.factors();
        // A node is needed if its coefficient is non-zero or a needed node brackets it. The rational
        // coefficients are computed in f64; anything below 1e-12 is a zero of the series.
        let mut needed: Vec<bool> = coefs.iter().map(|c| c.abs() > 1e-12).collect();
        for w in (0..two.len()).rev() {
            if let (true, Some((u, v))) = (needed[w], factors[w]) {
                needed[u] = true;
                needed[v] = true;
            }
        }
        let mut index = vec![usize::MAX; two.len()];
        let mut nodes: Vec<Node> = Vec::new();
        let mut offset = 0;
        for w in 0..two.len() {
            if !needed[w] {
                continue;
            }
            let coef = if coefs[w].abs() > 1e-12 {
                coefs[w]
            } else {
                0.0
            };
            let node = match factors[w] {
                None => {
                    let hi = if w == 0 { degree } else { 1 };
                    Node {
                        left: usize::MAX,
                        right: usize::MAX,
                        coef,
                        lo: 1,
                        hi,
                        offset: 0,
                    }
                }
                Some((u, v)) => {
                    let (l, r) = (&nodes[index[u]], &nodes[index[v]]);
                    let (lo, hi) = (l.lo + r.lo, degree.min(l.hi + r.hi));
                    let node = Node {
                        left: index[u],
                        right: index[v],
                        coef,
                        lo,
                        hi,
                        offset,
                    };
                    offset += structure.span(lo, hi).len();
                    node
                }
            };
            index[w] = nodes.len();
            nodes.push(node);
        }
        Ok(Engine {
            dim,
            len: words.len(),
            structure,
            nodes,
            node_values: offset,
        })
    }

    /// The values one thread's [`Scratch`] holds.
    fn scratch_values(&self) -> u128 {
        2 * (self.node_values as u128 + 2 * self.len as u128)
    }

    /// `out = [a, b]` over `out`'s degrees.
    fn bracket<T: Scalar>(&self, a: Value<'_, T>, b: Value<'_, T>, out: &mut [T], out_base: usize) {
        let s = &self.structure;
        let n = s.degree;
        out.fill(T::zero());
        for p in a.lo..=a.hi.min(n - b.lo) {
            for i in s.span(p, p) {
                let ai = a.values[i - a.base];
                if ai == T::zero() {
                    continue;
                }
                for t in s.row(i, b.lo, b.hi.min(n - p)) {
                    let bj = b.values[t.j as usize - b.base];
                    out[t.k as usize - out_base] += ai * T::from_f64(t.c) * bj;
                }
            }
        }
    }

    /// The adjoint of [`Engine::bracket`]: `da += ∂/∂a ⟨dout, [a, b]⟩`, likewise `db`.
    #[allow(clippy::too_many_arguments)]
    fn bracket_adjoint<T: Scalar>(
        &self,
        a: Value<'_, T>,
        b: Value<'_, T>,
        dout: &[T],
        out_base: usize,
        da: &mut [T],
        db: &mut [T],
    ) {
        let s = &self.structure;
        let n = s.degree;
        for p in a.lo..=a.hi.min(n - b.lo) {
            for i in s.span(p, p) {
                let ai = a.values[i - a.base];
                let mut acc = T::zero();
                for t in s.row(i, b.lo, b.hi.min(n - p)) {
                    let g = T::from_f64(t.c) * dout[t.k as usize - out_base];
                    acc += g * b.values[t.j as usize - b.base];
                    db[t.j as usize - b.base] += ai * g;
                }
                da[i - a.base] += acc;
            }
        }
    }

    /// Fill every bracket node for the step from `z` by the increment `y`.
    fn nodes<T: Scalar>(&self, z: &[T], y: &[T], values: &mut [T]) {
        for (w, node) in self.nodes.iter().enumerate().skip(2) {
            let (done, rest) = values.split_at_mut(node.offset);
            let a = self.value(node.left, z, y, done);
            let b = self.value(node.right, z, y, done);
            let span = self.structure.span(node.lo, node.hi);
            debug_assert!(w > node.left && w > node.right);
            self.bracket(a, b, &mut rest[..span.len()], span.start);
        }
    }

    /// Node `w`'s values: `z`, `y` or a slice of `values`.
    fn value<'v, T: Scalar>(
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
            _ => &values[node.offset..node.offset + self.structure.span(node.lo, node.hi).len()],
        };
        Value {
            values,
            lo: node.lo,
            hi: node.hi,
            base: self.structure.level_start[node.lo - 1],
        }
    }

    /// `next = BCH(z, y)`.
    fn step<T: Scalar>(&self, z: &[T], y: &[T], values: &mut [T], next: &mut [T]) {
        self.nodes(z, y, values);
        next.copy_from_slice(z);
        for (n, &yi) in next.iter_mut().zip(y) {
            *n += yi;
        }
        for node in self.nodes.iter().skip(2).filter(|n| n.coef != 0.0) {
            let span = self.structure.span(node.lo, node.hi);
            let c = T::from_f64(node.coef);
            let v = &values[node.offset..node.offset + span.len()];
            for (n, &x) in next[span].iter_mut().zip(v) {
                *n += c * x;
            }
        }
    }

    /// The adjoint of [`Engine::step`] at `(z, y)`: `dz` (the next value's gradient) becomes `z`'s;
    /// `dy` receives `y`'s.
    fn step_adjoint<T: Scalar>(
        &self,
        z: &[T],
        y: &[T],
        dz: &mut [T],
        dy: &mut [T],
        s: &mut Scratch<T>,
    ) {
        self.nodes(z, y, &mut s.values);
        let dnext = &mut s.next;
        dnext.copy_from_slice(dz);
        for (g, &d) in dy.iter_mut().zip(dnext.iter()) {
            *g = d;
        }
        for node in self.nodes.iter().skip(2) {
            let span = self.structure.span(node.lo, node.hi);
            let c = T::from_f64(node.coef);
            for (g, &d) in s.dvalues[node.offset..node.offset + span.len()]
                .iter_mut()
                .zip(&dnext[span])
            {
                *g = c * d;
            }
        }
        // Parents come after their children, so each node's gradient is complete when reached.
        for w in (2..self.nodes.len()).rev() {
            let node = &self.nodes[w];
            let span = self.structure.span(node.lo, node.hi);
            let (left, right) = (node.left, node.right);
            let (done, rest) = s.dvalues.split_at_mut(node.offset);
            let dout = &rest[..span.len()];
            let a = self.value(left, z, y, &s.values);
            let b = self.value(right, z, y, &s.values);
            let slot = |w: usize| {
                let n = &self.nodes[w];
                n.offset..n.offset + self.structure.span(n.lo, n.hi).len()
            };
            let (da, db) = operand_grads((left, right), dz, dy, done, slot);
            self.bracket_adjoint(a, b, dout, span.start, da, db);
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

/// One thread's buffers: the bracket nodes' values and gradients, and two log-signatures.
struct Scratch<T> {
    values: Vec<T>,
    dvalues: Vec<T>,
    z: Vec<T>,
    next: Vec<T>,
    y: Vec<T>,
}

impl<T: Scalar> Scratch<T> {
    fn new(engine: &Engine) -> Scratch<T> {
        Scratch {
            values: vec![T::zero(); engine.node_values],
            dvalues: vec![T::zero(); engine.node_values],
            z: vec![T::zero(); engine.len],
            next: vec![T::zero(); engine.len],
            y: vec![T::zero(); engine.dim],
        }
    }
}

/// The `t`-th increment of a path of `y.len()` channels, into `y`.
fn increment<T: Scalar>(path: &[T], t: usize, y: &mut [T]) {
    let dim = y.len();
    for (c, yc) in y.iter_mut().enumerate() {
        *yc = path[(t + 1) * dim + c] - path[t * dim + c];
    }
}

/// The log-signature of one path into `out` (length `engine.len`).
fn forward_row<T: Scalar>(engine: &Engine, path: &[T], s: &mut Scratch<T>, out: &mut [T]) {
    let steps = (path.len() / engine.dim).saturating_sub(1);
    out.fill(T::zero());
    for t in 0..steps {
        increment(path, t, &mut s.y);
        engine.step(out, &s.y, &mut s.values, &mut s.next);
        out.copy_from_slice(&s.next);
    }
}

/// The gradient of `⟨g, log_sig(path)⟩` with respect to the path's points, into `dpath`.
fn backward_row<T: Scalar>(
    engine: &Engine,
    path: &[T],
    g: &[T],
    s: &mut Scratch<T>,
    checkpoints: &mut Vec<T>,
    dpath: &mut [T],
) {
    let (dim, len) = (engine.dim, engine.len);
    let steps = (path.len() / dim).saturating_sub(1);
    dpath.fill(T::zero());
    if steps == 0 {
        return;
    }
    // Checkpoints every `block` steps going forward, then each block's states again, walked back.
    let block = (steps as f64).sqrt().ceil() as usize;
    let blocks = steps.div_ceil(block);
    checkpoints.clear();
    checkpoints.resize((blocks + block) * len, T::zero());
    let (saved, states) = checkpoints.split_at_mut(blocks * len);
    s.z.fill(T::zero());
    for t in 0..steps {
        if t % block == 0 {
            saved[(t / block) * len..][..len].copy_from_slice(&s.z);
        }
        increment(path, t, &mut s.y);
        engine.step(&s.z, &s.y, &mut s.values, &mut s.next);
        std::mem::swap(&mut s.z, &mut s.next);
    }
    let mut dz = g.to_vec();
    let mut dy = vec![T::zero(); dim];
    for b in (0..blocks).rev() {
        let start = b * block;
        let end = (start + block).min(steps);
        states[..len].copy_from_slice(&saved[b * len..][..len]);
        for t in start + 1..end {
            let (before, after) = states.split_at_mut((t - start) * len);
            increment(path, t - 1, &mut s.y);
            engine.step(
                &before[(t - start - 1) * len..],
                &s.y,
                &mut s.values,
                &mut after[..len],
            );
        }
        for t in (start..end).rev() {
            let z = &states[(t - start) * len..][..len];
            let mut y = std::mem::take(&mut s.y);
            increment(path, t, &mut y);
            engine.step_adjoint(z, &y, &mut dz, &mut dy, s);
            s.y = y;
            for c in 0..dim {
                dpath[(t + 1) * dim + c] += dy[c];
                dpath[t * dim + c] -= dy[c];
            }
        }
    }
}

/// The body of [`crate::log_sig`] for [`LogSigMethod::Bch`] on the CPU, on `threads` threads.
pub(super) fn log_sig<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    degree: usize,
    options: &SigOptions,
    threads: usize,
) -> Result<ArrayD<T>> {
    let cpu = options.clone().device(Device::Cpu);
    let transformed = crate::transform_path(paths, &cpu)?;
    let p = path_rows("path", transformed.view())?;
    let engine = engine(p.last(), degree)?;
    let mut out_shape = p.batch_shape.clone();
    out_shape.push(engine.len);
    let size = std::mem::size_of::<T>() as u128;
    let output = p.batch() as u128 * engine.len as u128 * size;
    let threads = fit_threads("log-signature", threads, |_| Memory {
        output,
        shared: 0,
        per_thread: engine.scratch_values() * size,
    })?;
    let mut out = zeros::<T>("log-signature", &out_shape)?;
    let src = p.slice();
    let row = src.len() / p.batch().max(1);
    par_rows(
        threads,
        out.as_slice_mut().expect("fresh arrays are contiguous"),
        engine.len,
        || Scratch::new(&engine),
        |s, i, o| forward_row(&engine, &src[i * row..(i + 1) * row], s, o),
    );
    Ok(out)
}

/// The body of [`crate::log_sig_backprop`] for [`LogSigMethod::Bch`] on the CPU: `derivs` are the
/// log-signatures' gradients, already checked against the paths.
pub(super) fn log_sig_backprop<T: Scalar>(
    paths: ArrayViewD<'_, T>,
    derivs: &Rows<'_, T>,
    degree: usize,
    options: &SigOptions,
    threads: usize,
) -> Result<ArrayD<T>> {
    let cpu = options.clone().device(Device::Cpu);
    let transformed = crate::transform_path(paths, &cpu)?;
    let p = path_rows("path", transformed.view())?;
    let engine = engine(p.last(), degree)?;
    if derivs.last() != engine.len {
        return Err(Error::invalid(format!(
            "log_sig_derivs: expected {} values per row, got {}",
            engine.len,
            derivs.last()
        )));
    }
    let src = p.slice();
    let row = src.len() / p.batch().max(1);
    let steps = (row / engine.dim).saturating_sub(1);
    let block = (steps as f64).sqrt().ceil() as u128;
    let size = std::mem::size_of::<T>() as u128;
    let per_thread = engine.scratch_values()
        + (steps as u128).div_ceil(block.max(1)) * engine.len as u128
        + block * engine.len as u128;
    let threads = fit_threads("log-signature gradient", threads, |_| Memory {
        output: 2 * src.len() as u128 * size,
        shared: 0,
        per_thread: per_thread * size,
    })?;
    let mut dtransformed = zeros::<T>("path gradient", transformed.shape())?;
    let g = derivs.slice();
    par_rows(
        threads,
        dtransformed
            .as_slice_mut()
            .expect("fresh arrays are contiguous"),
        row,
        || (Scratch::new(&engine), Vec::new()),
        |(s, checkpoints), i, o| {
            let gi = &g[i * engine.len..(i + 1) * engine.len];
            backward_row(&engine, &src[i * row..(i + 1) * row], gi, s, checkpoints, o)
        },
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

    /// The series starts `X + Y + ½[X, Y] + (1/12)[X, [X, Y]] + (1/12)[[X, Y], Y]`.
    #[test]
    fn series_coefficients() {
        let e = engine(2, 3).unwrap();
        let coefs: Vec<f64> = e.nodes.iter().map(|n| n.coef).collect();
        let want = [1.0, 1.0, 0.5, 1.0 / 12.0, 1.0 / 12.0];
        assert_eq!(coefs.len(), want.len());
        for (c, w) in coefs.iter().zip(want) {
            assert!((c - w).abs() < 1e-15, "{coefs:?}");
        }
    }
}
