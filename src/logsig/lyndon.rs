//! Lyndon words and the Lyndon bracket basis of the free Lie algebra, built once per
//! `(dimension, degree)` and cached for the life of the process.
//!
//! A Lyndon word is strictly smaller (lexicographically) than each of its proper suffixes. The log
//! signature is a Lie element, and the Lie polynomials `P_w` of the Lyndon words `w` form a basis of
//! the free Lie algebra: `P_a = a` for a letter, `P_w = [P_u, P_v]` where `w = uv` and `v` is the
//! longest proper suffix of `w` that is a Lyndon word (the standard factorisation; `u` is then Lyndon
//! too). This is the bracketing iisignature's 'S' method and pySigLib's method 2 report coordinates in.
//!
//! Expanded in words, `P_w = w + Σ_{v > w} a_v v` (Reutenauer, *Free Lie Algebras*, Thm 5.1): the
//! only Lyndon word `≤ w` it touches is `w` itself, with coefficient 1. So on the Lyndon words of one
//! length, the matrix `M[v, w] = coefficient of v in P_w` is unit lower triangular (words ordered
//! lexicographically), and the coordinates `c` of a Lie element `ℓ = Σ c_w P_w` solve `M c = ℓ|_Lyndon`
//! by forward substitution. Only `M`'s off-diagonal entries are stored, sparse.

use crate::batch::check_bytes;
use crate::layout::TensorShape;
use crate::{Error, Result, Scalar};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The Lyndon words of lengths `1..=degree` over `dim` letters, and (on first use) the bracket basis.
pub(crate) struct Basis {
    pub shape: TensorShape,
    /// The flat index (signature layout, no scalar term) of each Lyndon word, in output order: by
    /// length, then lexicographically. Flat indices grow with length and, within a length, with
    /// lexicographic order, so this list is sorted.
    pub flat: Vec<usize>,
    brackets: OnceLock<Triangular>,
    expansions: OnceLock<Expansions>,
}

/// Every `P_w` expanded in words, for going from bracket coordinates to the whole Lie element: row
/// `p` lists `(flat index, coefficient)` of the `p`-th Lyndon word's bracket.
pub(crate) struct Expansions {
    row_start: Vec<usize>,
    entries: Vec<(usize, f64)>,
}

/// The strictly lower triangle of `M`, row by row: row `p` lists `(q, M[p, q])` for `q < p`.
pub(crate) struct Triangular {
    row_start: Vec<usize>,
    entries: Vec<(usize, f64)>,
}

/// The basis for `dim` letters and words up to length `degree`, from the cache or built now.
pub(crate) fn basis(dim: usize, degree: usize) -> Result<Arc<Basis>> {
    type Cache = Mutex<HashMap<(usize, usize), Arc<Basis>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = lock().get(&(dim, degree)) {
        return Ok(found.clone());
    }
    // Built outside the lock, so that one large basis does not hold up callers of other sizes; two
    // threads racing on the same size build it twice and keep the first.
    let built = Arc::new(Basis::new(dim, degree)?);
    Ok(lock().entry((dim, degree)).or_insert(built).clone())
}

/// Number of Lyndon words of each length `1..=degree` over `dim` letters (Witt's formula,
/// `(1/k) Σ_{e | k} μ(e) dim^{k/e}`), index 0 unused. Checked: the words must be indexable.
pub(crate) fn lyndon_counts(dim: usize, degree: usize) -> Result<Vec<usize>> {
    if dim == 0 {
        return Err(Error::NotPositive { what: "dimension" });
    }
    if degree == 0 {
        return Err(Error::NotPositive { what: "degree" });
    }
    // Every Lyndon word has a flat index below the signature length, so a shape that fits bounds
    // every power used below.
    let shape = TensorShape::new(dim, degree)?;
    let mut counts = vec![0; degree + 1];
    if dim == 1 {
        // One letter: the only Lyndon word is the letter itself (and the sum below would take time
        // quadratic in degrees only dimension 1 allows).
        counts[1] = 1;
        return Ok(counts);
    }
    for (k, count) in counts.iter_mut().enumerate().skip(1) {
        let sum: i128 = (1..=k)
            .filter(|e| k % e == 0)
            .map(|e| mobius(e) as i128 * shape.level_len(k / e) as i128)
            .sum();
        *count = (sum / k as i128) as usize;
    }
    Ok(counts)
}

fn mobius(n: usize) -> i32 {
    let (mut n, mut sign, mut p) = (n, 1, 2);
    while p * p <= n {
        if n % p == 0 {
            n /= p;
            if n % p == 0 {
                return 0;
            }
            sign = -sign;
        }
        p += 1;
    }
    if n > 1 {
        -sign
    } else {
        sign
    }
}

impl Basis {
    fn new(dim: usize, degree: usize) -> Result<Basis> {
        let total: usize = lyndon_counts(dim, degree)?.iter().sum();
        check_bytes(
            "the Lyndon words",
            total as u128 * std::mem::size_of::<usize>() as u128,
        )?;
        let shape = TensorShape::new(dim, degree)?;
        let mut flat = Vec::with_capacity(total);
        // Duval's algorithm: every Lyndon word of length <= degree, in lexicographic order.
        let mut word = vec![0usize];
        loop {
            flat.push(
                shape
                    .word_index(&word)
                    .expect("letters and length in range"),
            );
            let period = word.len();
            while word.len() < degree {
                word.push(word[word.len() - period]);
            }
            while word.last() == Some(&(dim - 1)) {
                word.pop();
            }
            match word.last_mut() {
                Some(last) => *last += 1,
                None => break,
            }
        }
        flat.sort_unstable();
        debug_assert_eq!(flat.len(), total);
        Ok(Basis {
            shape,
            flat,
            brackets: OnceLock::new(),
            expansions: OnceLock::new(),
        })
    }

    /// Number of Lyndon words (the log-signature length).
    pub fn len(&self) -> usize {
        self.flat.len()
    }

    /// The first Lyndon word of each length `1..=degree` (by position), then the word count.
    pub fn level_starts(&self) -> Vec<usize> {
        let mut starts: Vec<usize> = (1..=self.shape.degree)
            .map(|k| self.flat.partition_point(|&f| f < self.shape.offset(k)))
            .collect();
        starts.push(self.flat.len());
        starts
    }

    /// The standard factorisation `w = uv` of every Lyndon word, as the positions of `u` and `v`
    /// (`None` for the letters), in output order.
    pub fn factors(&self) -> Vec<Option<(usize, usize)>> {
        let starts = self.level_starts();
        (0..self.len())
            .map(|p| {
                let k = starts.partition_point(|&s| s <= p);
                (k > 1).then(|| {
                    let (u, v, _) =
                        self.standard_factorisation(k, self.flat[p] - self.shape.offset(k));
                    (u, v)
                })
            })
            .collect()
    }

    /// Position of the Lyndon word with this flat index, if it is one.
    pub fn position(&self, flat: usize) -> Option<usize> {
        self.flat.binary_search(&flat).ok()
    }

    /// The bracket basis, built on first use.
    pub fn brackets(&self) -> &Triangular {
        self.brackets.get_or_init(|| self.build_brackets())
    }

    /// The brackets expanded in words, built on first use; an error where they would not fit in
    /// memory (bounded by `min(2^(k−1), d^k)` entries for a word of length `k`).
    pub fn expansions(&self) -> Result<&Expansions> {
        if let Some(e) = self.expansions.get() {
            return Ok(e);
        }
        let counts = lyndon_counts(self.shape.dim, self.shape.degree)?;
        let bound: u128 = (1..=self.shape.degree)
            .map(|k| {
                let per_word = (self.shape.level_len(k) as u128).min(1u128 << (k - 1).min(100));
                counts[k] as u128 * per_word
            })
            .sum();
        let entry = std::mem::size_of::<(usize, f64)>() as u128;
        check_bytes(
            "the Lyndon brackets' expansions",
            bound.saturating_mul(entry),
        )?;
        Ok(self.expansions.get_or_init(|| {
            let mut row_start = vec![0];
            let mut entries = Vec::new();
            self.expand_brackets(|_, k, expansion| {
                let offset = self.shape.offset(k);
                entries.extend(expansion.iter().map(|&(w, c)| (offset + w, c as f64)));
                row_start.push(entries.len());
            });
            Expansions { row_start, entries }
        }))
    }

    /// Expand every `P_w` in words, in output order, and hand `(p, k, expansion)` to `visit`: the
    /// `p`-th Lyndon word, of length `k`, as `(index within its level, coefficient)` sorted. Only
    /// the shorter words' expansions are kept (the top level's are built one at a time), since no
    /// longer word has a top-level word as a factor.
    fn expand_brackets(&self, mut visit: impl FnMut(usize, usize, &[(usize, i64)])) {
        let shape = &self.shape;
        let n = shape.degree;
        // Coefficients are integers with Σ|a_v| <= 2^{k-1} at length k; any length over 63 needs more
        // than 2^63 words, which no shape allows, so i64 is exact.
        let mut expansions: Vec<Vec<(usize, i64)>> = Vec::new();
        let mut k = 1;
        for (p, &f) in self.flat.iter().enumerate() {
            while f >= shape.offset(k + 1) {
                k += 1;
            }
            let within = f - shape.offset(k);
            let expansion = if k == 1 {
                vec![(within, 1)]
            } else {
                let (u, v, v_len) = self.standard_factorisation(k, within);
                commutator(
                    &expansions[u],
                    &expansions[v],
                    shape.level_len(k - v_len),
                    shape.level_len(v_len),
                )
            };
            visit(p, k, &expansion);
            if k < n {
                expansions.push(expansion);
            }
        }
    }

    /// Keep each bracket's coefficients at the other Lyndon words of its length: `M`.
    fn build_brackets(&self) -> Triangular {
        let shape = &self.shape;
        let mut triples: Vec<(usize, usize, f64)> = Vec::new();
        self.expand_brackets(|p, k, expansion| {
            let within = self.flat[p] - shape.offset(k);
            for &(word, coeff) in expansion {
                if word != within {
                    if let Some(q) = self.position(shape.offset(k) + word) {
                        debug_assert!(q > p, "P_w only reaches words after w");
                        triples.push((q, p, coeff as f64));
                    }
                }
            }
        });
        triples.sort_unstable_by_key(|&(row, col, _)| (row, col));
        let mut row_start = vec![0; self.len() + 1];
        for &(row, _, _) in &triples {
            row_start[row + 1] += 1;
        }
        for p in 0..self.len() {
            row_start[p + 1] += row_start[p];
        }
        Triangular {
            row_start,
            entries: triples.into_iter().map(|(_, col, c)| (col, c)).collect(),
        }
    }

    /// `w = uv` with `v` the longest proper Lyndon suffix: the positions of `u` and `v`, and `|v|`.
    fn standard_factorisation(&self, k: usize, within: usize) -> (usize, usize, usize) {
        let shape = &self.shape;
        for v_len in (1..k).rev() {
            let scale = shape.level_len(v_len);
            if let Some(v) = self.position(shape.offset(v_len) + within % scale) {
                let u_len = k - v_len;
                let u = self
                    .position(shape.offset(u_len) + within / scale)
                    .expect("the prefix of a standard factorisation is a Lyndon word");
                return (u, v, v_len);
            }
        }
        unreachable!("the last letter of a Lyndon word is a Lyndon suffix")
    }
}

/// `[a, b] = ab − ba` for `a` of `a_words` and `b` of `b_words` possible words (`d^|a|`, `d^|b|`).
fn commutator(
    a: &[(usize, i64)],
    b: &[(usize, i64)],
    a_words: usize,
    b_words: usize,
) -> Vec<(usize, i64)> {
    let mut terms = Vec::with_capacity(2 * a.len() * b.len());
    for &(x, cx) in a {
        for &(y, cy) in b {
            terms.push((x * b_words + y, cx * cy));
            terms.push((y * a_words + x, -cx * cy));
        }
    }
    terms.sort_unstable_by_key(|&(w, _)| w);
    let mut merged: Vec<(usize, i64)> = Vec::with_capacity(terms.len());
    for (w, c) in terms {
        match merged.last_mut() {
            Some(last) if last.0 == w => last.1 += c,
            _ => merged.push((w, c)),
        }
    }
    merged.retain(|&(_, c)| c != 0);
    merged
}

impl Triangular {
    /// Coefficients at the Lyndon words → coordinates in the bracket basis, in place:
    /// `c_p = ℓ_p − Σ_{q<p} M[p, q] c_q`, in increasing `p`.
    pub fn solve<T: Scalar>(&self, x: &mut [T]) {
        for p in 0..x.len() {
            let mut acc = x[p];
            for &(q, m) in &self.entries[self.row_start[p]..self.row_start[p + 1]] {
                acc -= T::from_f64(m) * x[q];
            }
            x[p] = acc;
        }
    }

    /// The transpose of [`Triangular::solve`] (`M^{-T}`), in place: gradients with respect to the
    /// bracket coordinates → gradients with respect to the coefficients at the Lyndon words. In
    /// decreasing `p`, `y_p` is final and is pushed back to every `q < p` that row `p` reads.
    pub fn solve_transpose<T: Scalar>(&self, y: &mut [T]) {
        for p in (0..y.len()).rev() {
            let yp = y[p];
            for &(q, m) in &self.entries[self.row_start[p]..self.row_start[p + 1]] {
                y[q] -= T::from_f64(m) * yp;
            }
        }
    }

    /// The strict lower triangle by rows for the GPU: row starts, columns and values, `None` where
    /// an index exceeds `u32`.
    pub fn csr(&self) -> Option<(Vec<u32>, Vec<u32>, Vec<f64>)> {
        let to_u32 = |xs: &mut dyn Iterator<Item = usize>| -> Option<Vec<u32>> {
            xs.map(|x| u32::try_from(x).ok()).collect()
        };
        let starts = to_u32(&mut self.row_start.iter().copied())?;
        let cols = to_u32(&mut self.entries.iter().map(|e| e.0))?;
        Some((starts, cols, self.entries.iter().map(|e| e.1).collect()))
    }

    /// The most entries of one word length's triangle, with its row count: the longest substitution.
    pub fn widest_level(&self, level_starts: &[usize]) -> usize {
        level_starts
            .windows(2)
            .map(|w| (w[1] - w[0]) + self.row_start[w[1]] - self.row_start[w[0]])
            .max()
            .unwrap_or(0)
    }

    /// `M` itself on the Lyndon words (unit diagonal): bracket coordinates → Lyndon-word coefficients.
    pub fn multiply<T: Scalar>(&self, c: &[T], out: &mut [T]) {
        for p in 0..c.len() {
            let mut acc = c[p];
            for &(q, m) in &self.entries[self.row_start[p]..self.row_start[p + 1]] {
                acc += T::from_f64(m) * c[q];
            }
            out[p] = acc;
        }
    }
}

impl Expansions {
    /// Each bracket's `(flat index, coefficient)` terms, in bracket order.
    pub fn brackets(&self) -> impl Iterator<Item = &[(usize, f64)]> {
        self.row_start.windows(2).map(|w| &self.entries[w[0]..w[1]])
    }

    /// `out = Σ_p c_p P_p`: bracket coordinates → the Lie element in the expanded layout (levels
    /// `1..=N`, no scalar term).
    pub fn expand<T: Scalar>(&self, c: &[T], out: &mut [T]) {
        out.fill(T::zero());
        for (p, &cp) in c.iter().enumerate() {
            for &(f, m) in &self.entries[self.row_start[p]..self.row_start[p + 1]] {
                out[f] += T::from_f64(m) * cp;
            }
        }
    }

    /// The transpose of [`Expansions::expand`]: `dc_p = Σ_f P_p[f] g[f]`.
    pub fn contract<T: Scalar>(&self, g: &[T], dc: &mut [T]) {
        for (p, d) in dc.iter_mut().enumerate() {
            let mut acc = T::zero();
            for &(f, m) in &self.entries[self.row_start[p]..self.row_start[p + 1]] {
                acc += T::from_f64(m) * g[f];
            }
            *d = acc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobius_values() {
        let want = [1, -1, -1, 0, -1, 1, -1, 0, 0, 1, -1, 0];
        for (n, &m) in (1..=12).zip(&want) {
            assert_eq!(mobius(n), m, "μ({n})");
        }
    }

    #[test]
    fn duval_matches_witt() {
        for d in 1..=5 {
            for n in 1..=6 {
                let counts = lyndon_counts(d, n).unwrap();
                let b = Basis::new(d, n).unwrap();
                assert_eq!(b.len(), counts.iter().sum::<usize>(), "d={d} n={n}");
            }
        }
    }

    /// `P_{012} = [0, [1, 2]] = 012 − 021 − 120 + 210` reaches one other Lyndon word, 021; no `P_w`
    /// reaches 012 (`P_{011} = 011 − 2·101 + 110`, `P_{001}` and `P_{002}` are alike).
    #[test]
    fn bracket_of_a_short_word() {
        let b = Basis::new(3, 3).unwrap();
        let w = |word: &[usize]| b.position(b.shape.word_index(word).unwrap()).unwrap();
        let within = 5; // 012 = 0·9 + 1·3 + 2
        assert_eq!(
            b.standard_factorisation(3, within),
            (w(&[0]), w(&[1, 2]), 2)
        );
        let tri = b.brackets();
        let row = |p: usize| &tri.entries[tri.row_start[p]..tri.row_start[p + 1]];
        assert!(row(w(&[0, 1, 2])).is_empty());
        assert_eq!(row(w(&[0, 2, 1])), &[(w(&[0, 1, 2]), -1.0)]);
    }
}
