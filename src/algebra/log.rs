//! The tensor logarithm of a truncated series `1 + x`, the tensor exponential of `x`, and their
//! reverses: both are power series `Σ_m c_m x^m` in the tensor product (`x` has no level 0).
//!
//! `log(1 + x) = x − x²/2 + x³/3 − … ± x^N/N` (`c_m = (−1)^{m+1}/m`) and `exp(x) − 1 = x + x²/2! + …
//! + x^N/N!` (`c_m = 1/m!`). Horner's nesting `x ⊗ (c_1 + x ⊗ (c_2 + … x ⊗ (c_{N-1} + x ⊗ c_N)))`
//! needs one product per term instead of one power and one product. Because `x` starts at level 1,
//! the partial result `P_m = c_m + x ⊗ P_{m+1}` is multiplied by `x` another `m` times before it
//! reaches the output, so only its levels `0..=N−m` matter: truncating each step there makes the
//! whole logarithm cost about as much as one full product, not `N` of them.
//!
//! The chain `P_{N−1} … P_1` is kept (it is small: `P_m` has `d + … + d^{N−m}` coefficients) so that
//! the reverse pass can replay the products backwards.

use crate::layout::TensorShape;
use crate::Scalar;

/// Buffers for the series ([`tensor_log`], [`tensor_exp`] and their reverses), allocated once per
/// thread and reused.
pub struct SeriesScratch<T> {
    /// `log_coeff[m] = (−1)^{m+1}/m`, `exp_coeff[m] = 1/m!`: the scalar terms of `P_m` (index 0
    /// unused).
    log_coeff: Vec<T>,
    exp_coeff: Vec<T>,
    /// `P_m`'s levels `1..=N−m` at `chain_start[m]`; `P_{N−1}` first so that `P_{m+1}` always lies
    /// below `P_m` and one split separates what a step reads from what it writes.
    chain: Vec<T>,
    chain_start: Vec<usize>,
    /// Gradients with respect to `P_m` and `P_{m+1}`, alternating.
    ping: Vec<T>,
    pong: Vec<T>,
}

impl<T: Scalar> SeriesScratch<T> {
    pub fn new(shape: &TensorShape) -> Self {
        let n = shape.degree;
        let log_coeff = (0..=n)
            .map(|m| {
                let sign = if m % 2 == 1 { 1.0 } else { -1.0 };
                T::from_f64(sign / (m.max(1) as f64))
            })
            .collect();
        let mut factorial = 1.0;
        let exp_coeff = (0..=n)
            .map(|m| {
                factorial *= m.max(1) as f64;
                T::from_f64(1.0 / factorial)
            })
            .collect();
        let mut chain_start = vec![0; n + 1];
        let mut end = 0;
        for m in (1..n).rev() {
            chain_start[m] = end;
            end += shape.offset(n - m + 1);
        }
        let top = if n == 0 { 0 } else { shape.offset(n) };
        SeriesScratch {
            log_coeff,
            exp_coeff,
            chain: vec![T::zero(); end],
            chain_start,
            ping: vec![T::zero(); top],
            pong: vec![T::zero(); top],
        }
    }

    /// `P_m` (levels `1..=N−m`); empty for `m = N`, whose only term is the scalar `c_N`.
    fn partial(&self, shape: &TensorShape, m: usize) -> &[T] {
        if m >= shape.degree {
            return &[];
        }
        let start = self.chain_start[m];
        &self.chain[start..start + shape.offset(shape.degree - m + 1)]
    }
}

/// `out = log(1 + x)`, levels `1..=N` (the logarithm has no level 0).
pub fn tensor_log<T: Scalar>(
    shape: &TensorShape,
    x: &[T],
    out: &mut [T],
    ws: &mut SeriesScratch<T>,
) {
    series(shape, x, out, ws, Series::Log);
}

/// `out = exp(x) − 1`, levels `1..=N`: the exponential of `x` (no level 0) without its level 0.
pub fn tensor_exp<T: Scalar>(
    shape: &TensorShape,
    x: &[T],
    out: &mut [T],
    ws: &mut SeriesScratch<T>,
) {
    series(shape, x, out, ws, Series::Exp);
}

/// Gradient of [`tensor_log`]: given `g = dF/d log(1 + x)`, add `dF/dx` into `dx`.
pub fn tensor_log_backprop<T: Scalar>(
    shape: &TensorShape,
    x: &[T],
    g: &[T],
    dx: &mut [T],
    ws: &mut SeriesScratch<T>,
) {
    series_backprop(shape, x, g, dx, ws, Series::Log);
}

/// Gradient of [`tensor_exp`]: given `g = dF/d exp(x)` (levels `1..=N`), add `dF/dx` into `dx`.
pub fn tensor_exp_backprop<T: Scalar>(
    shape: &TensorShape,
    x: &[T],
    g: &[T],
    dx: &mut [T],
    ws: &mut SeriesScratch<T>,
) {
    series_backprop(shape, x, g, dx, ws, Series::Exp);
}

#[derive(Clone, Copy)]
enum Series {
    Log,
    Exp,
}

impl<T: Scalar> SeriesScratch<T> {
    fn coeff(&self, series: Series, m: usize) -> T {
        match series {
            Series::Log => self.log_coeff[m],
            Series::Exp => self.exp_coeff[m],
        }
    }
}

fn series<T: Scalar>(
    shape: &TensorShape,
    x: &[T],
    out: &mut [T],
    ws: &mut SeriesScratch<T>,
    kind: Series,
) {
    let n = shape.degree;
    if n == 0 || shape.dim == 0 {
        return;
    }
    fill_chain(shape, x, ws, kind);
    mul_series(shape, x, ws.coeff(kind, 1), ws.partial(shape, 1), n, out);
}

fn series_backprop<T: Scalar>(
    shape: &TensorShape,
    x: &[T],
    g: &[T],
    dx: &mut [T],
    ws: &mut SeriesScratch<T>,
    kind: Series,
) {
    let n = shape.degree;
    if n == 0 || shape.dim == 0 {
        return;
    }
    fill_chain(shape, x, ws, kind);
    let mut dp = std::mem::take(&mut ws.ping);
    let mut dnext = std::mem::take(&mut ws.pong);
    // out = x ⊗ P_1, then P_m = c_m + x ⊗ P_{m+1} for m = 1 … N−1, each reversed in turn; `dp` holds
    // dF/dP_m (levels 1..=N−m) on entry to step m.
    dp.fill(T::zero());
    mul_series_backprop(
        shape,
        x,
        ws.coeff(kind, 1),
        ws.partial(shape, 1),
        n,
        g,
        dx,
        &mut dp,
    );
    for m in 1..n {
        let levels = n - m;
        let next = &mut dnext[..shape.offset(levels)];
        next.fill(T::zero());
        let (c, p) = (ws.coeff(kind, m + 1), ws.partial(shape, m + 1));
        mul_series_backprop(
            shape,
            x,
            c,
            p,
            levels,
            &dp[..shape.offset(levels + 1)],
            dx,
            next,
        );
        std::mem::swap(&mut dp, &mut dnext);
    }
    ws.ping = dp;
    ws.pong = dnext;
}

/// `P_{N−1}, …, P_1` into the scratch chain.
fn fill_chain<T: Scalar>(shape: &TensorShape, x: &[T], ws: &mut SeriesScratch<T>, kind: Series) {
    let n = shape.degree;
    for m in (1..n).rev() {
        let levels = n - m;
        let c = ws.coeff(kind, m + 1);
        let (below, above) = ws.chain.split_at_mut(ws.chain_start[m]);
        // P_{m+1} sits right below P_m (or is the bare scalar c_N when m + 1 = N).
        let p_next = if m + 1 < n {
            &below[ws.chain_start[m + 1]..]
        } else {
            &[][..]
        };
        let out = &mut above[..shape.offset(levels + 1)];
        mul_series(shape, x, c, p_next, levels, out);
    }
}

/// `out = x ⊗ (p0 + p)` at levels `1..=levels`, where `p` holds levels `1..levels` (`x` has no level 0,
/// so level `k` of the product only needs `p` below `k`).
fn mul_series<T: Scalar>(
    shape: &TensorShape,
    x: &[T],
    p0: T,
    p: &[T],
    levels: usize,
    out: &mut [T],
) {
    for k in 1..=levels {
        let ok = &mut out[shape.offset(k)..shape.offset(k + 1)];
        for (o, &xv) in ok.iter_mut().zip(&x[shape.offset(k)..shape.offset(k + 1)]) {
            *o = p0 * xv;
        }
        for j in 1..k {
            let xj = &x[shape.offset(j)..shape.offset(j + 1)];
            let pl = &p[shape.offset(k - j)..shape.offset(k - j + 1)];
            for (row, &a) in ok.chunks_exact_mut(pl.len()).zip(xj) {
                for (o, &b) in row.iter_mut().zip(pl) {
                    *o += a * b;
                }
            }
        }
    }
}

/// Reverse of [`mul_series`]: given `g = dF/dout` (levels `1..=levels`), add `dF/dx` into `dx` and
/// `dF/dp` into `dp` (levels `1..levels`).
#[allow(clippy::too_many_arguments)]
fn mul_series_backprop<T: Scalar>(
    shape: &TensorShape,
    x: &[T],
    p0: T,
    p: &[T],
    levels: usize,
    g: &[T],
    dx: &mut [T],
    dp: &mut [T],
) {
    for k in 1..=levels {
        let gk = &g[shape.offset(k)..shape.offset(k + 1)];
        for (d, &gv) in dx[shape.offset(k)..shape.offset(k + 1)].iter_mut().zip(gk) {
            *d += p0 * gv;
        }
        for j in 1..k {
            let l = k - j;
            let xj = &x[shape.offset(j)..shape.offset(j + 1)];
            let pl = &p[shape.offset(l)..shape.offset(l + 1)];
            let dpl = &mut dp[shape.offset(l)..shape.offset(l + 1)];
            let dxj = &mut dx[shape.offset(j)..shape.offset(j + 1)];
            for ((row, &a), da) in gk.chunks_exact(pl.len()).zip(xj).zip(dxj) {
                let mut acc = T::zero();
                for ((&gv, &b), db) in row.iter().zip(pl).zip(dpl.iter_mut()) {
                    acc += gv * b;
                    *db += a * gv;
                }
                *da += acc;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algebra::exp;

    /// `tensor_exp` of a level-1 `z` is the segment's signature `exp(z)`; of a general `x`, the
    /// logarithm takes it back; and its gradient matches central differences.
    #[test]
    fn tensor_exp_matches_exp_and_inverts_log() {
        for (d, n) in [(1, 4), (2, 1), (2, 5), (3, 4)] {
            let shape = TensorShape::new(d, n).unwrap();
            let mut ws = SeriesScratch::new(&shape);
            let mut z = vec![0.0; shape.len()];
            for (i, v) in z.iter_mut().take(d).enumerate() {
                *v = 0.3 * i as f64 - 0.4;
            }
            let (mut want, mut got) = (vec![0.0; shape.len()], vec![0.0; shape.len()]);
            exp(&shape, &z[..d], &mut want);
            tensor_exp(&shape, &z, &mut got, &mut ws);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-14, "d={d} n={n}: {g} vs {w}");
            }
            let x: Vec<f64> = (0..shape.len())
                .map(|i| ((i * 7 % 11) as f64 - 5.0) / 9.0)
                .collect();
            let (mut e, mut back) = (vec![0.0; shape.len()], vec![0.0; shape.len()]);
            tensor_exp(&shape, &x, &mut e, &mut ws);
            tensor_log(&shape, &e, &mut back, &mut ws);
            for (b, v) in back.iter().zip(&x) {
                assert!((b - v).abs() < 1e-13, "d={d} n={n}: log(exp(x)) {b} vs {v}");
            }
            let g: Vec<f64> = (0..shape.len())
                .map(|i| ((i * 5 % 7) as f64 - 3.0) / 4.0)
                .collect();
            let mut dx = vec![0.0; shape.len()];
            tensor_exp_backprop(&shape, &x, &g, &mut dx, &mut ws);
            let f = |x: &[f64], ws: &mut SeriesScratch<f64>| {
                let mut e = vec![0.0; shape.len()];
                tensor_exp(&shape, x, &mut e, ws);
                e.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
            };
            for i in 0..shape.len() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += 1e-6;
                down[i] -= 1e-6;
                let fd = (f(&up, &mut ws) - f(&down, &mut ws)) / 2e-6;
                assert!(
                    (fd - dx[i]).abs() < 1e-7,
                    "d={d} n={n} [{i}]: {fd} vs {}",
                    dx[i]
                );
            }
        }
    }

    /// The logarithm of a segment's signature `exp(z)` is `z` alone.
    #[test]
    fn tensor_log_inverts_exp() {
        for (d, n) in [(1, 4), (2, 1), (2, 5), (3, 4)] {
            let shape = TensorShape::new(d, n).unwrap();
            let z: Vec<f64> = (0..d).map(|i| 0.3 * i as f64 - 0.4).collect();
            let mut e = vec![0.0; shape.len()];
            exp(&shape, &z, &mut e);
            let mut out = vec![1.0; shape.len()];
            tensor_log(&shape, &e, &mut out, &mut SeriesScratch::new(&shape));
            for (i, v) in out.iter().enumerate() {
                let want = if i < d { z[i] } else { 0.0 };
                assert!((v - want).abs() < 1e-14, "d={d} n={n} [{i}]: {v}");
            }
        }
    }
}
