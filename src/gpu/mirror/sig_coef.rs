//! `shaders/sig_coef.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.

use crate::gpu::kernels::SigCoefParams;

type Scalar = f64;

const WG: u32 = 64;
const MAX_K: u32 = 32;
pub(crate) const STATE: u32 = 66;

/// The buffers of one dispatch.
pub(crate) struct Dispatch<'a> {
    pub params: SigCoefParams,
    pub points: &'a [Scalar],
    pub letters: &'a [u32],
    pub starts: &'a [u32],
    pub outs: &'a [u32],
    pub out: &'a mut [Scalar],
    pub state: &'a mut [Scalar],
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
        let segments = params.len - params.len.min(1);
        let lo = params.seg_lo.min(segments);
        let hi = params.seg_hi.min(segments);
        let kept = item * STATE;
        let mut c: [Scalar; 33] = [0.0; 33];
        let mut delta: [Scalar; 32] = [0.0; 32];
        c[0] = 1.0;
        for j in 1..=k {
            if lo == 0 {
                c[j as usize] = 0.0;
            } else {
                c[j as usize] = self.state[(kept + j) as usize];
            }
        }
        for s in lo..hi {
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
        }
        if hi < segments || params.mode == 1 {
            for j in 0..=k {
                self.state[(kept + j) as usize] = c[j as usize];
            }
            return;
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

/// The words as the kernels take them: letters end to end, each word's start, and each word's
/// first output slot (with `prefixes`, one per non-empty prefix), with the row's length.
#[cfg(test)]
pub(crate) fn word_tables(words: &[Vec<usize>], prefixes: bool) -> [Vec<u32>; 4] {
    let (mut letters, mut starts, mut outs, mut at) = (vec![], vec![0u32], vec![], 0u32);
    for w in words {
        letters.extend(w.iter().map(|&l| l as u32));
        starts.push(letters.len() as u32);
        outs.push(at);
        at += if prefixes { w.len().max(1) as u32 } else { 1 };
    }
    [letters, starts, outs, vec![at]]
}

/// Runs `sig_coef.wgsl` over the segments in windows of `window`, as the host does, into `out`
/// (mode 0) or `state` (mode 1).
#[cfg(test)]
pub(crate) fn run_windows(
    base: SigCoefParams,
    tables: &[Vec<u32>; 4],
    points: &[Scalar],
    window: u32,
    out: &mut [Scalar],
    state: &mut [Scalar],
) {
    let segments = base.len.saturating_sub(1);
    let mut lo = 0;
    loop {
        let params = SigCoefParams {
            seg_lo: lo,
            seg_hi: lo + window,
            ..base
        };
        let mut disp = Dispatch {
            params,
            points,
            letters: &tables[0],
            starts: &tables[1],
            outs: &tables[2],
            out: &mut *out,
            state: &mut *state,
        };
        for lid in 0..WG {
            disp.invocation(0, 0, 1, lid);
        }
        lo += window;
        if lo >= segments {
            return;
        }
    }
}

/// The mirrors' tests' input: two paths of 7 points in 3 channels, and words with the empty word and
/// repeated letters.
#[cfg(test)]
#[allow(clippy::type_complexity)]
pub(crate) fn sample() -> ((usize, usize, usize), Vec<f64>, Vec<Vec<usize>>) {
    let (n_paths, len, dim) = (2usize, 7usize, 3usize);
    let points = (0..n_paths * len * dim)
        .map(|i| ((i * 37 % 23) as f64 - 11.0) * 0.07)
        .collect();
    let words = vec![vec![], vec![2], vec![0, 1], vec![1, 1, 2, 0]];
    ((n_paths, len, dim), points, words)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mirror's coefficients equal the CPU's, with and without prefixes, for the empty word,
    /// repeated letters and a transformed path, in one window and in several.
    #[test]
    fn sig_coef_mirror_matches_cpu() {
        let ((n_paths, len, dim), points, words) = sample();
        let path = ndarray::ArrayView3::from_shape((n_paths, len, dim), &points).unwrap();
        let opts = crate::SigOptions::default().device(crate::Device::Cpu);
        for (prefixes, window) in [(false, 6), (true, 6), (false, 2), (true, 4)] {
            let want = crate::sig_coef(path, &words, prefixes, &opts).unwrap();
            let tables = word_tables(&words, prefixes);
            let at = tables[3][0];
            let mut out = vec![f64::NAN; n_paths * at as usize];
            let mut state = vec![f64::NAN; n_paths * words.len() * STATE as usize];
            let params = SigCoefParams {
                n_paths: n_paths as u32,
                len: len as u32,
                dim: dim as u32,
                n_words: words.len() as u32,
                out_row: at,
                prefixes: prefixes as u32,
                ..Default::default()
            };
            run_windows(params, &tables, &points, window, &mut out, &mut state);
            for (g, w) in out.iter().zip(want.iter()) {
                assert!((g - w).abs() <= 1e-14 * w.abs().max(1.0), "{g} vs {w}");
            }
        }
    }
}
