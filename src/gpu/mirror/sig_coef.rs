//! `shaders/sig_coef.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.

use crate::gpu::kernels::SigCoefParams;

type Scalar = f64;

const WG: u32 = 64;
const MAX_K: u32 = 32;

/// The buffers of one dispatch.
pub(crate) struct Dispatch<'a> {
    pub params: SigCoefParams,
    pub points: &'a [Scalar],
    pub letters: &'a [u32],
    pub starts: &'a [u32],
    pub outs: &'a [u32],
    pub out: &'a mut [Scalar],
}

impl Dispatch<'_> {
    /// The entry point `main` for invocation `lid` of workgroup `(wx, wy)` of a grid `groups_x` wide.
    pub(crate) fn invocation(&mut self, wx: u32, wy: u32, groups_x: u32, lid: u32) {
        let params = self.params;
        let item = (wy * groups_x + wx) * WG + lid;
        if item >= params.n_paths * params.n_words {
            return;
        }
        let p = item / params.n_words;
        let w = item % params.n_words;
        let start = self.starts[w as usize];
        let k = (self.starts[(w + 1) as usize] - start).min(MAX_K);
        let d = params.dim;
        let base = p * params.len * d;
        let mut c: [Scalar; 33] = [0.0; 33];
        let mut delta: [Scalar; 32] = [0.0; 32];
        c[0] = 1.0;
        for j in 1..=k {
            c[j as usize] = 0.0;
        }
        let mut s = 0u32;
        while s + 1 < params.len {
            for m in 0..k {
                let l = self.letters[(start + m) as usize];
                delta[m as usize] = self.points[(base + (s + 1) * d + l) as usize]
                    - self.points[(base + s * d + l) as usize];
            }
            for jj in 0..k {
                let j = k - jj;
                let mut acc: Scalar = 0.0;
                for m in 0..j {
                    acc = (acc + c[m as usize]) * delta[m as usize] * (1.0 / (j - m) as Scalar);
                }
                c[j as usize] = c[j as usize] + acc;
            }
            s += 1;
        }
        let row = p * params.out_row + self.outs[w as usize];
        if params.prefixes == 0 {
            self.out[row as usize] = c[k as usize];
            return;
        }
        if k == 0 {
            self.out[row as usize] = 1.0;
        }
        for j in 1..=k {
            self.out[(row + j - 1) as usize] = c[j as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mirror's coefficients equal the CPU's, with and without prefixes, for the empty word,
    /// repeated letters and a transformed path.
    #[test]
    fn sig_coef_mirror_matches_cpu() {
        let (n_paths, len, dim) = (2usize, 7usize, 3usize);
        let points: Vec<f64> = (0..n_paths * len * dim)
            .map(|i| ((i * 37 % 23) as f64 - 11.0) * 0.07)
            .collect();
        let words = [vec![], vec![2], vec![0, 1], vec![1, 1, 2, 0]];
        let path = ndarray::ArrayView3::from_shape((n_paths, len, dim), &points).unwrap();
        let opts = crate::SigOptions::default().device(crate::Device::Cpu);
        for prefixes in [false, true] {
            let want = crate::sig_coef(path, &words, prefixes, &opts).unwrap();
            let (mut letters, mut starts, mut outs, mut at) = (vec![], vec![0u32], vec![], 0u32);
            for w in &words {
                letters.extend(w.iter().map(|&l| l as u32));
                starts.push(letters.len() as u32);
                outs.push(at);
                at += if prefixes { w.len().max(1) as u32 } else { 1 };
            }
            let mut out = vec![0.0; n_paths * at as usize];
            let params = SigCoefParams {
                n_paths: n_paths as u32,
                len: len as u32,
                dim: dim as u32,
                n_words: words.len() as u32,
                out_row: at,
                prefixes: prefixes as u32,
                _pad: [0; 2],
            };
            let mut disp = Dispatch {
                params,
                points: &points,
                letters: &letters,
                starts: &starts,
                outs: &outs,
                out: &mut out,
            };
            for lid in 0..WG {
                disp.invocation(0, 0, 1, lid);
            }
            for (g, w) in out.iter().zip(want.iter()) {
                assert!((g - w).abs() <= 1e-14 * w.abs().max(1.0), "{g} vs {w}");
            }
        }
    }
}
