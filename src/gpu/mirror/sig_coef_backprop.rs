//! `shaders/sig_coef_backprop.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.

use crate::gpu::kernels::SigCoefParams;

type Scalar = f64;

const WG: u32 = 64;
const MAX_K: u32 = 32;
const STATE: u32 = 66;

/// The buffers of one dispatch.
pub(crate) struct Dispatch<'a> {
    pub params: SigCoefParams,
    pub points: &'a [Scalar],
    pub letters: &'a [u32],
    pub starts: &'a [u32],
    pub outs: &'a [u32],
    pub derivs: &'a [Scalar],
    pub dd: &'a mut [Scalar],
    pub grads: &'a mut [Scalar],
    pub state: &'a mut [Scalar],
}

fn cross(c: &mut [Scalar; 33], delta: &[Scalar; 32], k: u32, sign: Scalar) {
    for jj in 0..k {
        let j = k - jj;
        let mut acc: Scalar = 0.0;
        for m in 0..j {
            acc = (acc + c[m as usize]) * (sign * delta[m as usize]) * (1.0 / (j - m) as Scalar);
        }
        c[j as usize] = c[j as usize] + acc;
    }
}

impl Dispatch<'_> {
    fn adjoint(&mut self, p: u32, w: u32) {
        let params = self.params;
        let start = self.starts[w as usize];
        let k = (self.starts[(w + 1) as usize] - start).min(MAX_K);
        let d = params.dim;
        let base = p * params.len * d;
        let segments = params.len - 1;
        let lo = params.seg_lo.min(segments);
        let hi = params.seg_hi.min(segments);
        let kept = (p * params.n_words + w) * STATE;
        let mut c: [Scalar; 33] = [0.0; 33];
        let mut delta: [Scalar; 32] = [0.0; 32];
        let mut a: [Scalar; 33] = [0.0; 33];
        let mut next: [Scalar; 33] = [0.0; 33];
        let mut d_delta: [Scalar; 32] = [0.0; 32];
        let mut excl: [Scalar; 32] = [0.0; 32];
        let mut inv_fact: [Scalar; 33] = [0.0; 33];
        inv_fact[0] = 1.0;
        for j in 1..=k as usize {
            inv_fact[j] = inv_fact[j - 1] * (1.0 / j as Scalar);
        }
        let row = p * params.out_row + self.outs[w as usize];
        for j in 0..=k {
            c[j as usize] = self.state[(kept + j) as usize];
            a[j as usize] = if hi < segments {
                self.state[(kept + 33 + j) as usize]
            } else if params.prefixes == 1 && j > 0 {
                self.derivs[(row + j - 1) as usize]
            } else if j == k && params.prefixes == 0 {
                self.derivs[row as usize]
            } else {
                0.0
            };
        }
        let delta_at = |s: u32, m: u32| {
            let l = self.letters[(start + m) as usize];
            self.points[(base + (s + 1) * d + l) as usize]
                - self.points[(base + s * d + l) as usize]
        };
        for ss in lo..hi {
            let s = hi - 1 - (ss - lo);
            for m in 0..k {
                delta[m as usize] = delta_at(s, m);
                d_delta[m as usize] = 0.0;
            }
            cross(&mut c, &delta, k, -1.0);
            for j in 0..=k as usize {
                next[j] = a[j];
            }
            for m in 0..k {
                let mut prod: Scalar = 1.0;
                for j in m + 1..=k {
                    let v = delta[(j - 1) as usize];
                    let mut e = 0;
                    while e + 1 < j - m {
                        excl[e as usize] = excl[e as usize] * v;
                        e += 1;
                    }
                    excl[(j - 1 - m) as usize] = prod;
                    prod = prod * v;
                    let aj = a[j as usize];
                    if aj != 0.0 {
                        if m > 0 {
                            next[m as usize] =
                                next[m as usize] + aj * prod * inv_fact[(j - m) as usize];
                        }
                        let weight = aj * c[m as usize] * inv_fact[(j - m) as usize];
                        for l in 0..j - m {
                            d_delta[(m + l) as usize] =
                                d_delta[(m + l) as usize] + weight * excl[l as usize];
                        }
                    }
                }
            }
            let out = (p * segments + s) * params.n_letters + start;
            for l in 0..k {
                self.dd[(out + l) as usize] = d_delta[l as usize];
            }
            for j in 0..=k as usize {
                a[j] = next[j];
            }
        }
        for j in 0..=k {
            self.state[(kept + j) as usize] = c[j as usize];
            self.state[(kept + 33 + j) as usize] = a[j as usize];
        }
    }

    fn gather(&mut self, p: u32, t: u32, i: u32) {
        let params = self.params;
        let segments = params.len - 1;
        let mut acc: Scalar = 0.0;
        for w in 0..params.n_words {
            let start = self.starts[w as usize];
            let end = start + (self.starts[(w + 1) as usize] - start).min(MAX_K);
            if t < segments {
                let row = (p * segments + t) * params.n_letters;
                for e in start..end {
                    if self.letters[e as usize] == i {
                        acc = acc - self.dd[(row + e) as usize];
                    }
                }
            }
            if t > 0 {
                let row = (p * segments + t - 1) * params.n_letters;
                for e in start..end {
                    if self.letters[e as usize] == i {
                        acc = acc + self.dd[(row + e) as usize];
                    }
                }
            }
        }
        self.grads[((p * params.len + t) * params.dim + i) as usize] = acc;
    }

    /// The entry point `main` for invocation `lid` of workgroup `(wx, wy)` of a grid `groups_x` wide.
    pub(crate) fn invocation(&mut self, wx: u32, wy: u32, groups_x: u32, lid: u32) {
        let params = self.params;
        let item = (wy * groups_x + wx) * WG + lid;
        if params.mode == 0 {
            if item < params.n_paths * params.n_words && params.len > 1 {
                self.adjoint(item / params.n_words, item % params.n_words);
            }
            return;
        }
        let per_path = params.len * params.dim;
        if item < params.n_paths * per_path {
            let p = item / per_path;
            let at = item % per_path;
            self.gather(p, at / params.dim, at % params.dim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::mirror::sig_coef::{run_windows, sample, word_tables};

    /// The mirror's gradient equals the CPU's, with derivatives per word and per prefix, for the
    /// empty word and repeated letters, in one window and in several.
    #[test]
    fn sig_coef_backprop_mirror_matches_cpu() {
        let ((n_paths, len, dim), points, words) = sample();
        let path = ndarray::ArrayView3::from_shape((n_paths, len, dim), &points).unwrap();
        let opts = crate::SigOptions::default().device(crate::Device::Cpu);
        for (prefixes, window) in [(false, 6), (true, 6), (false, 4), (true, 1)] {
            let tables = word_tables(&words, prefixes);
            let at = tables[3][0];
            let derivs: Vec<f64> = (0..n_paths * at as usize)
                .map(|i| ((i * 13 % 7) as f64 - 3.0) * 0.3)
                .collect();
            let d = ndarray::ArrayView2::from_shape((n_paths, at as usize), &derivs).unwrap();
            let want = crate::sig_coef_backprop(path, &words, d, &opts).unwrap();
            let n_letters = tables[0].len();
            let mut dd = vec![f64::NAN; n_paths * (len - 1) * n_letters];
            let mut grads = vec![f64::NAN; n_paths * len * dim];
            let mut state = vec![f64::NAN; n_paths * words.len() * STATE as usize];
            let params = SigCoefParams {
                n_paths: n_paths as u32,
                len: len as u32,
                dim: dim as u32,
                n_words: words.len() as u32,
                out_row: at,
                prefixes: prefixes as u32,
                mode: 1,
                n_letters: n_letters as u32,
                ..Default::default()
            };
            run_windows(params, &tables, &points, window, &mut [], &mut state);
            let segments = len as u32 - 1;
            let mut hi = segments;
            let mut passes = vec![];
            while hi > 0 {
                let lo = hi.saturating_sub(window);
                passes.push(SigCoefParams {
                    mode: 0,
                    seg_lo: lo,
                    seg_hi: hi,
                    ..params
                });
                hi = lo;
            }
            passes.push(SigCoefParams { mode: 1, ..params });
            for params in passes {
                let mut disp = Dispatch {
                    params,
                    points: &points,
                    letters: &tables[0],
                    starts: &tables[1],
                    outs: &tables[2],
                    derivs: &derivs,
                    dd: &mut dd,
                    grads: &mut grads,
                    state: &mut state,
                };
                for lid in 0..WG {
                    disp.invocation(0, 0, 1, lid);
                }
            }
            for (g, w) in grads.iter().zip(want.iter()) {
                assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
            }
        }
    }
}
