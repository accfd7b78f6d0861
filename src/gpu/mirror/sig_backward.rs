//! `shaders/sig_backward.wgsl` in Rust, line by line (see `mirror/mod.rs`). `scalar` is `f64`. The
//! functions the shader shares verbatim with `sig_forward.wgsl` (`at`, `level_offset`,
//! `fill_increment`, `mul_exp`) are those of [`super::sig_forward::Invocation`].

use super::sig_forward::Invocation;

type Scalar = f64;

/// The bindings only the backward kernel has.
pub(crate) struct Backward<'a> {
    pub sigs: &'a [Scalar],
    pub sig_derivs: &'a [Scalar],
    pub grads: &'a mut [Scalar],
}

fn scatter_increment(inv: &mut Invocation, out: &mut Backward, t: u32, dz: u32) {
    let d = inv.params.dim;
    let mut seg = t;
    let mut start = 0u32;
    if inv.params.lead_lag == 1 {
        seg = t / 2;
        if t % 2 == 0 {
            start = d;
        }
    }
    let a = ((inv.path * inv.params.length + seg) * d) as usize;
    let b = a + d as usize;
    for i in 0..d {
        out.grads[b + i as usize] += inv.scratch[inv.at(dz + start + i)];
        out.grads[a + i as usize] -= inv.scratch[inv.at(dz + start + i)];
    }
}

fn mul_exp_backprop(inv: &mut Invocation, s: u32, z: u32, g: u32, dz: u32, chain: u32, work: u32) {
    let d = inv.params.aug_dim;
    let n = inv.params.degree;
    if n == 0 {
        return;
    }
    for j in 0..d {
        let w = inv.at(dz + j);
        inv.scratch[w] += inv.scratch[inv.at(g + j)];
    }
    for k in 2..=n {
        for i in 0..d {
            let w = inv.at(chain + i);
            inv.scratch[w] =
                inv.scratch[inv.at(z + i)] * inv.consts[k as usize] + inv.scratch[inv.at(s + i)];
        }
        let mut len = d;
        for m in 1..k - 1 {
            let c = inv.consts[(k - m) as usize];
            let bm = chain + inv.level_offset(m);
            let rest = chain + inv.level_offset(m + 1);
            let next = s + inv.level_offset(m + 1);
            for i in 0..len {
                let bi = inv.scratch[inv.at(bm + i)] * c;
                for j in 0..d {
                    let w = i * d + j;
                    let dst = inv.at(rest + w);
                    inv.scratch[dst] =
                        bi * inv.scratch[inv.at(z + j)] + inv.scratch[inv.at(next + w)];
                }
            }
            len *= d;
        }
        let gk = g + inv.level_offset(k);
        let top = chain + inv.level_offset(k - 1);
        for i in 0..len {
            let bi = inv.scratch[inv.at(top + i)];
            let mut acc: Scalar = 0.0;
            for j in 0..d {
                let x = inv.scratch[inv.at(gk + i * d + j)];
                acc = x * inv.scratch[inv.at(z + j)] + acc;
                let w = inv.at(dz + j);
                inv.scratch[w] = x * bi + inv.scratch[w];
            }
            let w = inv.at(work + i);
            inv.scratch[w] = acc;
        }
        let mut m = k - 2;
        while m >= 1 {
            len /= d;
            let gm1 = g + inv.level_offset(m + 1);
            for i in 0..len * d {
                let w = inv.at(gm1 + i);
                inv.scratch[w] += inv.scratch[inv.at(work + i)];
            }
            let c = inv.consts[(k - m) as usize];
            let bm = chain + inv.level_offset(m);
            for i in 0..len {
                let bi = inv.scratch[inv.at(bm + i)] * c;
                let mut acc: Scalar = 0.0;
                for j in 0..d {
                    let x = inv.scratch[inv.at(work + i * d + j)];
                    acc = x * inv.scratch[inv.at(z + j)] + acc;
                    let w = inv.at(dz + j);
                    inv.scratch[w] = x * bi + inv.scratch[w];
                }
                let w = inv.at(work + i);
                inv.scratch[w] = acc * c;
            }
            m -= 1;
        }
        for i in 0..d {
            let w = inv.at(g + i);
            inv.scratch[w] += inv.scratch[inv.at(work + i)];
            let w = inv.at(dz + i);
            inv.scratch[w] += inv.scratch[inv.at(work + i)] * inv.consts[k as usize];
        }
    }
}

/// The entry point `main` for the invocation `inv.path`.
pub(crate) fn main(inv: &mut Invocation, out: &mut Backward) {
    if inv.path >= inv.params.n_paths {
        return;
    }
    let d = inv.params.aug_dim;
    let sig_len = inv.level_offset(inv.params.degree + 1);
    let s = 0u32;
    let g = s + sig_len;
    let z = g + sig_len;
    let neg_z = z + d;
    let dz = neg_z + d;
    let chain = dz + d;
    let work = chain + inv.level_offset(inv.params.degree).max(1);
    if inv.params.t_end == inv.increment_count() {
        let row = (inv.path * (inv.params.scalar_term + sig_len) + inv.params.scalar_term) as usize;
        for i in 0..sig_len {
            let w = inv.at(s + i);
            inv.scratch[w] = out.sigs[row + i as usize];
            let w = inv.at(g + i);
            inv.scratch[w] = out.sig_derivs[row + i as usize];
        }
    }
    let mut t = inv.params.t_end;
    while t > inv.params.t_begin {
        inv.fill_increment(t - 1, z);
        for i in 0..d {
            let w = inv.at(neg_z + i);
            inv.scratch[w] = -inv.scratch[inv.at(z + i)];
            let w = inv.at(dz + i);
            inv.scratch[w] = 0.0;
        }
        inv.mul_exp(s, neg_z, work);
        mul_exp_backprop(inv, s, z, g, dz, chain, work);
        scatter_increment(inv, out, t - 1, dz);
        t -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::PathsShape;
    use crate::gpu::kernels::{Params, WORKGROUP_SIZE};
    use crate::layout::TensorShape;
    use crate::SigOptions;

    #[test]
    fn sig_backward_mirror_matches_cpu() {
        let mut seed = 11u64;
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
            for (time_aug, lead_lag, st) in [
                (false, false, 0),
                (true, false, 1),
                (false, true, 0),
                (true, true, 1),
            ] {
                let opts = SigOptions {
                    time_aug,
                    lead_lag,
                    end_time: 2.5,
                    n_jobs: 1,
                    ..Default::default()
                };
                let ps = PathsShape { length, dim };
                let d = crate::layout::aug_dim(dim, time_aug, lead_lag).unwrap();
                let shape = TensorShape::new(d, degree).unwrap();
                let row = shape.len() + st;
                let paths: Vec<f64> = (0..batch * length * dim).map(|_| rand()).collect();
                let sigs: Vec<f64> = (0..batch * row).map(|_| rand()).collect();
                let derivs: Vec<f64> = (0..batch * row).map(|_| rand()).collect();
                let mut params = Params {
                    n_paths: batch as u32,
                    length: length as u32,
                    dim: dim as u32,
                    aug_dim: d as u32,
                    degree: degree as u32,
                    lead_lag: lead_lag as u32,
                    time_aug: time_aug as u32,
                    scalar_term: st as u32,
                    t_begin: 0,
                    t_end: 0,
                };
                let consts = crate::gpu::sig::consts::<f64>(&shape, ps, &opts);
                let slots = 2 * shape.len()
                    + 3 * d
                    + crate::gpu::sig::chain_len(&shape)
                    + shape.top_scratch_len();
                let mut scratch = vec![f64::NAN; batch * slots];
                // The driver zeroes grads, then sweeps in windows (here of 3 increments) from the end.
                let mut got = vec![0.0; batch * length * dim];
                let count = (length.saturating_sub(1) * (1 + lead_lag as usize)) as u32;
                let groups = batch.div_ceil(WORKGROUP_SIZE as usize);
                let mut t = count;
                loop {
                    params.t_end = t;
                    params.t_begin = t.saturating_sub(3);
                    for path in 0..groups * WORKGROUP_SIZE as usize {
                        let mut inv = Invocation {
                            params,
                            paths: &paths,
                            consts: &consts,
                            scratch: &mut scratch,
                            path: path as u32,
                        };
                        let mut out = Backward {
                            sigs: &sigs,
                            sig_derivs: &derivs,
                            grads: &mut got,
                        };
                        main(&mut inv, &mut out);
                    }
                    t = params.t_begin;
                    if t == 0 {
                        break;
                    }
                }
                let mut want = vec![0.0; got.len()];
                crate::cpu::sig_backprop(
                    1, &shape, &paths, ps, &sigs, &derivs, st, &opts, &mut want,
                );
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= 1e-12, "[{i}] {g} vs {w}");
                }
            }
        }
    }
}
