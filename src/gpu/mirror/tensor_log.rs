//! `shaders/tensor_log.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.

use crate::gpu::kernels::Params;

type Scalar = f64;

/// The shader's bindings and private variables, for one invocation.
pub(crate) struct Invocation<'a> {
    pub params: Params,
    pub sigs: &'a [Scalar],
    pub consts: &'a [Scalar],
    pub words: &'a [u32],
    pub logs: &'a mut [Scalar],
    pub scratch: &'a mut [Scalar],
    pub path: u32,
    pub sig_len: u32,
}

impl Invocation<'_> {
    fn at(&self, slot: u32) -> usize {
        (slot * self.params.n_paths + self.path) as usize
    }

    fn level_offset(&self, k: u32) -> u32 {
        let d = self.params.aug_dim;
        let mut offset = 0u32;
        let mut level = 1u32;
        for _j in 1..k {
            level *= d;
            offset += level;
        }
        offset
    }

    fn x(&self, i: u32) -> Scalar {
        self.sigs[(self.path * self.sig_len + i) as usize]
    }

    fn chain_start(&self, t: u32) -> u32 {
        let n = self.params.degree;
        let mut start = 0u32;
        let mut u = n - 1;
        while u > t {
            start += self.level_offset(n - u + 1);
            u -= 1;
        }
        start
    }

    fn unit(&mut self, t: u32, k: u32, j: u32) {
        let o = self.chain_start(t) + self.level_offset(k);
        if j == 0 {
            let c = self.consts[(t + 1) as usize];
            let xk = self.level_offset(k);
            let len = self.level_offset(k + 1) - xk;
            for i in 0..len {
                let w = self.at(o + i);
                self.scratch[w] = c * self.x(xk + i);
            }
            return;
        }
        let xj = self.level_offset(j);
        let rows = self.level_offset(j + 1) - xj;
        let pl = self.level_offset(k - j);
        let p = self.chain_start(t + 1) + pl;
        let cols = self.level_offset(k - j + 1) - pl;
        for a in 0..rows {
            let xa = self.x(xj + a);
            for b in 0..cols {
                let w = self.at(o + a * cols + b);
                self.scratch[w] = xa * self.scratch[self.at(p + b)] + self.scratch[w];
            }
        }
    }

    fn write_out(&mut self) {
        let e = self.chain_start(0);
        if self.params.length == 0 {
            let row = (self.path * (self.params.scalar_term + self.sig_len)) as usize;
            if self.params.scalar_term == 1 {
                self.logs[row] = 0.0;
            }
            for i in 0..self.sig_len {
                self.logs[row + (self.params.scalar_term + i) as usize] =
                    self.scratch[self.at(e + i)];
            }
            return;
        }
        let row = (self.path * self.params.length) as usize;
        for w in 0..self.params.length {
            self.logs[row + w as usize] = self.scratch[self.at(e + self.words[w as usize])];
        }
    }

    /// The entry point, for invocation `gid` (the caller skips nothing: `main` returns early itself).
    pub(crate) fn main(&mut self, gid: u32) {
        self.path = gid;
        if self.path >= self.params.n_paths {
            return;
        }
        let n = self.params.degree;
        self.sig_len = self.level_offset(n + 1);
        let mut u = 0u32;
        for s in 0..n {
            let t = n - 1 - s;
            for k in 1..=n - t {
                for j in 0..k {
                    if u >= self.params.t_begin && u < self.params.t_end {
                        self.unit(t, k, j);
                    }
                    u += 1;
                }
            }
        }
        if u >= self.params.t_begin && u < self.params.t_end {
            self.write_out();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algebra::{tensor_log, LogScratch};
    use crate::gpu::log_sig::{chain_len, log_consts, unit_costs, unit_windows};
    use crate::layout::TensorShape;

    /// Every dispatch of a chunk, invocation by invocation.
    fn run(params: Params, windows: &[(u32, u32)], sigs: &[f64], words: &[u32], out: &mut [f64]) {
        let shape = TensorShape::new(params.aug_dim as usize, params.degree as usize).unwrap();
        let consts = log_consts::<f64>(shape.degree);
        let mut scratch = vec![f64::NAN; chain_len(&shape) * params.n_paths as usize];
        for &(t_begin, t_end) in windows {
            for gid in 0..params.n_paths + 3 {
                Invocation {
                    params: Params {
                        t_begin,
                        t_end,
                        ..params
                    },
                    sigs,
                    consts: &consts,
                    words,
                    logs: out,
                    scratch: &mut scratch,
                    path: 0,
                    sig_len: 0,
                }
                .main(gid);
            }
        }
    }

    #[test]
    fn mirror_matches_the_cpu_logarithm() {
        for (d, n) in [(1, 1), (1, 4), (2, 1), (2, 5), (3, 4), (4, 3)] {
            let shape = TensorShape::new(d, n).unwrap();
            let len = shape.len();
            let batch = 5usize;
            let sigs: Vec<f64> = (0..batch * len)
                .map(|i| ((i * 37 % 101) as f64 / 101.0 - 0.5) * 0.8)
                .collect();
            let words: Vec<u32> = (0..len as u32).step_by(3).collect();
            let units = unit_costs(&shape, len + 1).1.len() as u32;
            let one_by_one: Vec<(u32, u32)> = (0..units).map(|u| (u, u + 1)).collect();
            let packed = unit_windows("mirror", 2_000, unit_costs(&shape, len + 1)).unwrap();
            for windows in [vec![(0, units)], one_by_one, packed] {
                let params = Params {
                    n_paths: batch as u32,
                    aug_dim: d as u32,
                    degree: n as u32,
                    scalar_term: 1,
                    ..Params::default()
                };
                let mut expanded = vec![f64::NAN; batch * (len + 1)];
                run(params, &windows, &sigs, &[], &mut expanded);
                let mut at_words = vec![f64::NAN; batch * words.len()];
                let params = Params {
                    length: words.len() as u32,
                    scalar_term: 0,
                    ..params
                };
                run(params, &windows, &sigs, &words, &mut at_words);
                let mut ws = LogScratch::new(&shape);
                for p in 0..batch {
                    let mut want = vec![0.0; len];
                    tensor_log(&shape, &sigs[p * len..(p + 1) * len], &mut want, &mut ws);
                    let got = &expanded[p * (len + 1)..(p + 1) * (len + 1)];
                    assert_eq!(got[0], 0.0);
                    for (i, w) in want.iter().enumerate() {
                        assert!((got[i + 1] - w).abs() < 1e-13, "d={d} n={n} p={p} [{i}]");
                    }
                    for (k, &w) in words.iter().enumerate() {
                        let got = at_words[p * words.len() + k];
                        assert!(
                            (got - want[w as usize]).abs() < 1e-13,
                            "d={d} n={n} word {k}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn windows_respect_the_budget_or_refuse() {
        let shape = TensorShape::new(5, 6).unwrap();
        let (fixed, units) = unit_costs(&shape, shape.len());
        let windows = unit_windows("test", 48_000, (fixed, units.clone())).unwrap();
        assert_eq!(windows.first().unwrap().0, 0);
        assert_eq!(windows.last().unwrap().1 as usize, units.len());
        for w in windows.windows(2) {
            assert_eq!(w[0].1, w[1].0);
        }
        for &(b, e) in &windows {
            let cost: u64 = units[b as usize..e as usize].iter().sum();
            assert!(fixed + cost <= 48_000);
        }
        let err = unit_windows("test", 1_000, (fixed, units)).unwrap_err();
        assert!(err.to_string().contains("loop iterations"), "{err}");
    }
}
