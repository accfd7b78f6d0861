//! The static kernels evaluated on points (every kernel but the bilinear ones): their values and
//! slopes, as [`super::static_kernel`] differentiates the PDE's increments Gram matrix through them.
//! `shaders/common/point_kernel.wgsl` is the same table on the GPU.

use super::options::{CustomStaticKernel, StaticKernel};
use crate::Scalar;
use std::sync::Arc;

/// A static kernel `κ(p, q)` on points of `R^d`.
pub(crate) trait PointKernel<T: Scalar>: Sync {
    fn eval(&self, p: &[T], q: &[T]) -> T;
    /// Add `w·∂κ/∂p` to `dp` and `w·∂κ/∂q` to `dq`.
    fn grad(&self, p: &[T], q: &[T], w: T, dp: &mut [T], dq: &mut [T]);
}

/// The static kernels evaluated on points: radial ones `κ(p, q) = f(|p − q|²)` and the polynomial
/// kernel `s·(<p, q> + γ)^n`, with the constants each needs precomputed. Distances are taken from
/// `p − q` directly, not from `|p|² − 2<p, q> + |q|²`, which loses digits for nearby points.
#[derive(Clone, Debug)]
pub(crate) enum Point<T> {
    /// `exp(−r²/σ)`: `1/σ`.
    Rbf { inv_sigma: T },
    /// `exp(−r/σ)`: `1/σ`.
    Matern12 { inv_sigma: T },
    /// `(1 + u)·exp(−u)`, `u = a·r`: `a = √3/σ`.
    Matern32 { a: T },
    /// `(1 + u + u²/3)·exp(−u)`, `u = a·r`: `a = √5/σ`.
    Matern52 { a: T },
    /// `(1 + r²·c)^−α`: `c = 1/(2ασ²)` and `α`.
    RationalQuadratic { c: T, alpha: T },
    /// `scale·(<p, q> + γ)^n`; `clamp`: a negative base counts as 0 (pySigLib's rule).
    Polynomial {
        degree: T,
        gamma: T,
        scale: T,
        clamp: bool,
    },
    /// The caller's own, in f64 (CPU only).
    Custom(Arc<dyn CustomStaticKernel>),
}

impl<T: Scalar> Point<T> {
    /// The point kernel of `kernel`, or `None` for a bilinear one.
    pub fn new(kernel: &StaticKernel) -> Option<Self> {
        let f = T::from_f64;
        Some(match *kernel {
            StaticKernel::Linear | StaticKernel::ScaledLinear { .. } => return None,
            StaticKernel::Custom(ref k) => Point::Custom(k.0.clone()),
            StaticKernel::Rbf { sigma } => Point::Rbf {
                inv_sigma: f(1.0 / sigma),
            },
            StaticKernel::Matern12 { sigma } => Point::Matern12 {
                inv_sigma: f(1.0 / sigma),
            },
            StaticKernel::Matern32 { sigma } => Point::Matern32 {
                a: f(3f64.sqrt() / sigma),
            },
            StaticKernel::Matern52 { sigma } => Point::Matern52 {
                a: f(5f64.sqrt() / sigma),
            },
            StaticKernel::RationalQuadratic { sigma, alpha } => Point::RationalQuadratic {
                c: f(1.0 / (2.0 * alpha * sigma * sigma)),
                alpha: f(alpha),
            },
            StaticKernel::Polynomial {
                degree,
                gamma,
                scale,
            } => Point::Polynomial {
                degree: f(degree),
                gamma: f(gamma),
                scale: f(scale),
                clamp: degree != 0.0 && !(degree.fract() == 0.0 && (1.0..=5.0).contains(&degree)),
            },
        })
    }

    /// The kernel's number in `shaders/common/point_kernel.wgsl` and its constants there.
    pub fn gpu_constants(&self) -> (u32, [T; 4]) {
        let z = T::zero();
        match *self {
            Point::Rbf { inv_sigma } => (0, [inv_sigma, z, z, z]),
            Point::Matern12 { inv_sigma } => (1, [inv_sigma, z, z, z]),
            Point::Matern32 { a } => (2, [a, z, z, z]),
            Point::Matern52 { a } => (3, [a, z, z, z]),
            Point::RationalQuadratic { c, alpha } => (4, [c, alpha, z, z]),
            Point::Polynomial {
                degree,
                gamma,
                scale,
                clamp,
            } => (5, [degree, gamma, scale, T::from_f64(clamp as u8 as f64)]),
            Point::Custom(_) => unreachable!("custom kernels run on the CPU only"),
        }
    }

    /// The kernel's value and its slope `h`: `∂κ/∂p = h·(p − q)` for a radial kernel, `h·q` for the
    /// polynomial one (whose `∂κ/∂q` is `h·p`).
    fn value_slope(&self, p: &[T], q: &[T]) -> (T, T) {
        let two = T::from_f64(2.0);
        if let Point::Polynomial {
            degree,
            gamma,
            scale,
            clamp,
        } = *self
        {
            let mut base = gamma;
            for (&a, &b) in p.iter().zip(q) {
                base += a * b;
            }
            if degree == T::zero() {
                return (scale, T::zero());
            }
            if clamp && base <= T::zero() {
                return (T::zero(), T::zero());
            }
            let below = base.powf(degree - T::one());
            return (scale * below * base, scale * degree * below);
        }
        let r2 = p.iter().zip(q).fold(T::zero(), |acc, (&a, &b)| {
            let d = a - b;
            acc + d * d
        });
        match *self {
            Point::Rbf { inv_sigma } => {
                let k = (-r2 * inv_sigma).exp();
                (k, -two * inv_sigma * k)
            }
            Point::Matern12 { inv_sigma } => {
                let r = r2.sqrt();
                let k = (-r * inv_sigma).exp();
                // At r = 0 the kernel has a kink; its gradient there is taken as 0.
                let h = if r > T::zero() {
                    -inv_sigma * k / r
                } else {
                    T::zero()
                };
                (k, h)
            }
            Point::Matern32 { a } => {
                let u = a * r2.sqrt();
                let e = (-u).exp();
                ((T::one() + u) * e, -a * a * e)
            }
            Point::Matern52 { a } => {
                let u = a * r2.sqrt();
                let e = (-u).exp();
                let three = T::from_f64(3.0);
                (
                    (T::one() + u + u * u / three) * e,
                    -a * a / three * (T::one() + u) * e,
                )
            }
            Point::RationalQuadratic { c, alpha } => {
                let b = T::one() + r2 * c;
                let k = b.powf(-alpha);
                (k, -two * alpha * c * k / b)
            }
            Point::Polynomial { .. } | Point::Custom(_) => {
                unreachable!("the polynomial kernel is handled above, custom ones by the caller")
            }
        }
    }
}

impl<T: Scalar> PointKernel<T> for Point<T> {
    fn eval(&self, p: &[T], q: &[T]) -> T {
        if let Point::Custom(k) = self {
            return T::from_f64(in_f64(p, q, |p, q| k.value(p, q)));
        }
        self.value_slope(p, q).0
    }

    fn grad(&self, p: &[T], q: &[T], w: T, dp: &mut [T], dq: &mut [T]) {
        if let Point::Custom(k) = self {
            let d = p.len();
            in_f64(p, q, |p64, q64| {
                let mut grads = [0.0; 2 * STACK_DIM];
                let mut heap = Vec::new();
                let g = if d <= STACK_DIM {
                    &mut grads[..2 * d]
                } else {
                    heap.resize(2 * d, 0.0);
                    &mut heap[..]
                };
                let (gp, gq) = g.split_at_mut(d);
                k.gradients(p64, q64, gp, gq);
                for i in 0..d {
                    dp[i] += w * T::from_f64(gp[i]);
                    dq[i] += w * T::from_f64(gq[i]);
                }
            });
            return;
        }
        let h = w * self.value_slope(p, q).1;
        if let Point::Polynomial { .. } = self {
            for i in 0..p.len() {
                dp[i] += h * q[i];
                dq[i] += h * p[i];
            }
            return;
        }
        for i in 0..p.len() {
            let g = h * (p[i] - q[i]);
            dp[i] += g;
            dq[i] -= g;
        }
    }
}

/// Points of up to this many channels reach a custom kernel through stack buffers.
const STACK_DIM: usize = 16;

/// `f(p, q)` with both points as f64.
fn in_f64<T: Scalar, R>(p: &[T], q: &[T], f: impl FnOnce(&[f64], &[f64]) -> R) -> R {
    let d = p.len();
    if d <= STACK_DIM {
        let mut buf = [0.0; 2 * STACK_DIM];
        for (b, v) in buf.iter_mut().zip(p.iter().chain(q)) {
            *b = Scalar::to_f64(*v);
        }
        return f(&buf[..d], &buf[d..2 * d]);
    }
    let p64: Vec<f64> = p.iter().map(|&v| Scalar::to_f64(v)).collect();
    let q64: Vec<f64> = q.iter().map(|&v| Scalar::to_f64(v)).collect();
    f(&p64, &q64)
}
