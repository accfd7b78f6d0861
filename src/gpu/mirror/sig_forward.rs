//! `shaders/sig_forward.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`.
//!
//! [`Invocation`] holds what both shaders share (params, paths, consts, scratch and the private `path`)
//! and the functions `sig_backward.wgsl` copies verbatim; `sigs` is passed to [`main`] separately.

use crate::gpu::kernels::Params;

type Scalar = f64;

/// The buffers both shaders bind alike and the invocation's `path` (the WGSL's private variable).
pub(crate) struct Invocation<'a> {
    pub params: Params,
    pub paths: &'a [Scalar],
    pub consts: &'a [Scalar],
    pub scratch: &'a mut [Scalar],
    pub path: u32,
}

impl Invocation<'_> {
    pub(crate) fn at(&self, slot: u32) -> usize {
        (slot * self.params.n_paths + self.path) as usize
    }

    pub(crate) fn level_offset(&self, k: u32) -> u32 {
        let d = self.params.aug_dim;
        let mut offset = 0u32;
        let mut level = 1u32;
        for _j in 1..k {
            level *= d;
            offset += level;
        }
        offset
    }

    /// In `sig_backward.wgsl` only.
    pub(crate) fn increment_count(&self) -> u32 {
        if self.params.length == 0 {
            return 0;
        }
        if self.params.lead_lag == 1 {
            return 2 * (self.params.length - 1);
        }
        self.params.length - 1
    }

    pub(crate) fn fill_increment(&mut self, t: u32, z: u32) {
        let d = self.params.dim;
        let mut seg = t;
        let mut start = 0u32;
        if self.params.lead_lag == 1 {
            seg = t / 2;
            if t % 2 == 0 {
                start = d;
            }
            for i in 0..2 * d {
                let w = self.at(z + i);
                self.scratch[w] = 0.0;
            }
        }
        let a = ((self.path * self.params.length + seg) * d) as usize;
        let b = a + d as usize;
        for i in 0..d {
            let w = self.at(z + start + i);
            self.scratch[w] = self.paths[b + i as usize] - self.paths[a + i as usize];
        }
        if self.params.time_aug == 1 {
            let w = self.at(z + self.params.aug_dim - 1);
            self.scratch[w] = self.consts[0];
        }
    }

    pub(crate) fn mul_exp(&mut self, s: u32, z: u32, b: u32) {
        let d = self.params.aug_dim;
        let n = self.params.degree;
        if n == 0 {
            return;
        }
        let mut k = n;
        while k >= 2 {
            for i in 0..d {
                let w = self.at(b + i);
                self.scratch[w] = self.scratch[self.at(z + i)] * self.consts[k as usize]
                    + self.scratch[self.at(s + i)];
            }
            let mut len = d;
            for m in 1..k - 1 {
                let c = self.consts[(k - m) as usize];
                let next = s + self.level_offset(m + 1);
                let mut i = len;
                while i > 0 {
                    let bi = self.scratch[self.at(b + i - 1)] * c;
                    for j in 0..d {
                        let w = (i - 1) * d + j;
                        let dst = self.at(b + w);
                        self.scratch[dst] =
                            bi * self.scratch[self.at(z + j)] + self.scratch[self.at(next + w)];
                    }
                    i -= 1;
                }
                len *= d;
            }
            let sk = s + self.level_offset(k);
            for i in 0..len {
                let bi = self.scratch[self.at(b + i)];
                for j in 0..d {
                    let w = i * d + j;
                    let dst = self.at(sk + w);
                    self.scratch[dst] = bi * self.scratch[self.at(z + j)] + self.scratch[dst];
                }
            }
            k -= 1;
        }
        for i in 0..d {
            let w = self.at(s + i);
            self.scratch[w] += self.scratch[self.at(z + i)];
        }
    }
}

/// The entry point `main` for the invocation `inv.path`.
pub(crate) fn main(inv: &mut Invocation, sigs: &mut [Scalar]) {
    if inv.path >= inv.params.n_paths {
        return;
    }
    let sig_len = inv.level_offset(inv.params.degree + 1);
    let s = 0u32;
    let z = sig_len;
    let b = z + inv.params.aug_dim;
    if inv.params.t_begin == 0 {
        for i in 0..sig_len {
            let w = inv.at(s + i);
            inv.scratch[w] = 0.0;
        }
    }
    for t in inv.params.t_begin..inv.params.t_end {
        inv.fill_increment(t, z);
        inv.mul_exp(s, z, b);
    }
    let row = (inv.path * (inv.params.scalar_term + sig_len)) as usize;
    if inv.params.scalar_term == 1 {
        sigs[row] = 1.0;
    }
    for i in 0..sig_len {
        sigs[row + (inv.params.scalar_term + i) as usize] = inv.scratch[inv.at(s + i)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::PathsShape;
    use crate::layout::TensorShape;
    use crate::SigOptions;

    /// Run the mirror over every invocation of one dispatch, with the driver's buffer sizes.
    pub(crate) fn dispatch(
        n_paths: usize,
        paths: &[f64],
        ps: PathsShape,
        shape: &TensorShape,
        opts: &SigOptions,
    ) -> Vec<f64> {
        let mut params = Params {
            n_paths: n_paths as u32,
            length: ps.length as u32,
            dim: ps.dim as u32,
            aug_dim: shape.dim as u32,
            degree: shape.degree as u32,
            lead_lag: opts.lead_lag as u32,
            time_aug: opts.time_aug as u32,
            scalar_term: opts.scalar_term as u32,
            t_begin: 0,
            t_end: 0,
        };
        let consts = crate::gpu::sig::consts::<f64>(shape, ps, opts);
        let row = shape.len() + opts.scalar_term as usize;
        let mut sigs = vec![f64::NAN; n_paths * row];
        let slots = shape.len() + shape.dim + shape.top_scratch_len();
        let mut scratch = vec![f64::NAN; n_paths * slots];
        // Windows of 3 increments, as the driver splits long paths; every invocation of the
        // (rounded-up) workgroups runs, as on the GPU.
        let count = (ps.length.saturating_sub(1) * (1 + opts.lead_lag as usize)) as u32;
        let groups = n_paths.div_ceil(crate::gpu::kernels::WORKGROUP_SIZE as usize);
        let mut t = 0;
        loop {
            params.t_begin = t;
            params.t_end = (t + 3).min(count);
            for path in 0..groups * crate::gpu::kernels::WORKGROUP_SIZE as usize {
                let mut inv = Invocation {
                    params,
                    paths,
                    consts: &consts,
                    scratch: &mut scratch,
                    path: path as u32,
                };
                main(&mut inv, &mut sigs);
            }
            t = params.t_end;
            if t >= count {
                break;
            }
        }
        sigs
    }

    #[test]
    fn sig_forward_mirror_matches_cpu() {
        let mut seed = 7u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        };
        for (batch, length, dim, degree) in [
            (3, 5, 2, 4),
            (1, 0, 3, 2),
            (2, 1, 1, 3),
            (4, 6, 3, 3),
            (2, 3, 2, 0),
            (65, 3, 1, 2),
        ] {
            for (time_aug, lead_lag, scalar_term) in [
                (false, false, false),
                (true, false, true),
                (false, true, false),
                (true, true, true),
            ] {
                let opts = SigOptions {
                    time_aug,
                    lead_lag,
                    scalar_term,
                    end_time: 2.5,
                    n_jobs: 1,
                    ..Default::default()
                };
                let ps = PathsShape { length, dim };
                let d = crate::layout::aug_dim(dim, time_aug, lead_lag).unwrap();
                let shape = TensorShape::new(d, degree).unwrap();
                let paths: Vec<f64> = (0..batch * length * dim).map(|_| rand()).collect();
                let got = dispatch(batch, &paths, ps, &shape, &opts);
                let mut want = vec![0.0; got.len()];
                crate::cpu::sig(1, &shape, &paths, ps, &opts, &mut want);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= 1e-13, "[{i}] {g} vs {w}");
                }
            }
        }
    }
}
