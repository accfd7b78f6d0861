//! Arrays kept on the GPU between calls: upload paths once, compute their signatures, then
//! log-signatures or gradients from the signatures where they are, and download only what is asked
//! for.

use super::combine::{self, Factor};
use super::program::{dst, set_last_report, submit, take, upload, GpuReport, Pooled};
use super::sig::plan::{Buf, Pass};
use super::sig::{consts, plan_for, run, Inputs};
use super::{find_adapter, GpuDevice};
use crate::batch::{paths as path_rows, zeros, Rows};
use crate::combine::split_pair;
use crate::gpu::kernels::Precision;
use crate::layout::{aug_dim, PathsShape, TensorShape};
use crate::options::Device;
use crate::{Error, LogSigMethod, Result, Scalar, SigOptions};
use ndarray::{ArrayD, ArrayView, ArrayViewD, Dimension};
use std::marker::PhantomData;
use std::sync::Arc;

/// A batch of paths (`(batch…, length, dim)`) uploaded to a GPU once, with the options
/// (transforms, adapter) every computation on it uses.
///
/// ```no_run
/// # fn main() -> roughsig::Result<()> {
/// use roughsig::gpu::GpuPaths;
/// use roughsig::{Device, LogSigMethod, SigOptions};
/// let paths = ndarray::Array3::<f32>::zeros((64, 100, 3));
/// let opts = SigOptions::default().device(Device::Gpu(None));
/// let on_gpu = GpuPaths::new(paths.view(), &opts)?;   // one upload
/// let sigs = on_gpu.sig(4)?;                           // stays on the GPU
/// let logs = sigs.log_sig(LogSigMethod::Words)?;       // from the signatures where they are
/// let grads = on_gpu.sig_backprop(&sigs, sigs.to_host()?.view())?;
/// // A training step's gradient: dF/dlog_sig in, path gradients out, nothing else moved.
/// let grads = sigs.log_sig_backprop(LogSigMethod::Words, logs.view())?;
/// # Ok(()) }
/// ```
pub struct GpuPaths<T: Scalar> {
    device: GpuDevice,
    ctx: Arc<super::context::Context>,
    buffer: Pooled,
    batch_shape: Vec<usize>,
    batch: usize,
    ps: PathsShape,
    options: SigOptions,
    _scalar: PhantomData<T>,
}

/// Signatures left on the GPU by [`GpuPaths::sig`], or made from such by [`GpuSigs::combine`] and
/// [`GpuSigs::join`] (rows of the levels; the scalar term, if the options ask for it, is added on
/// download).
pub struct GpuSigs<'a, T: Scalar> {
    paths: &'a GpuPaths<T>,
    buffer: Pooled,
    shape: TensorShape,
    /// Whether these are the signatures of `paths` (not a product made from them), which the
    /// gradients with respect to the paths need.
    of_paths: bool,
}

impl<T: Scalar> GpuPaths<T> {
    /// Upload `paths` to the adapter `options.device` names (`Device::Gpu(name)`; `Auto` takes the
    /// most capable adapter). `Device::Cpu`, no adapter, or f64 without `SHADER_F64` is an error.
    pub fn new<D: Dimension>(paths: ArrayView<'_, T, D>, options: &SigOptions) -> Result<Self> {
        options.validate::<T>()?;
        let name = match &options.exec.device {
            Device::Gpu(name) => name.clone(),
            Device::Cpu => {
                return Err(Error::Device(
                    "GpuPaths keeps paths on a GPU; Device::Cpu has none".into(),
                ))
            }
            _ => None,
        };
        let device = find_adapter(name.as_deref())?;
        let ctx = super::chunks::open(&device, Precision::of::<T>())?;
        let p = path_rows("path", paths.into_dyn())?;
        p.check_finite("path", true)?;
        let shape = p.data.shape();
        let ps = PathsShape {
            length: shape[shape.len() - 2],
            dim: p.last(),
        };
        let mut report = GpuReport::new("upload");
        let data = p.slice();
        let buffer = take(
            &ctx,
            "resident paths",
            std::mem::size_of_val(data) as u64,
            super::chunks::STORAGE,
            &mut report,
        );
        upload(&ctx, &buffer, bytemuck::cast_slice(data), &mut report);
        set_last_report(report);
        Ok(GpuPaths {
            device,
            ctx,
            buffer,
            batch: p.batch(),
            batch_shape: p.batch_shape.clone(),
            ps,
            options: options.clone(),
            _scalar: PhantomData,
        })
    }

    fn shape(&self, degree: usize) -> Result<TensorShape> {
        let d = aug_dim(
            self.ps.dim,
            self.options.transform.time_aug,
            self.options.transform.lead_lag,
        )?;
        TensorShape::new(d, degree)
    }

    fn plan(&self, pass: Pass, shape: &TensorShape) -> Result<super::sig::plan::Plan> {
        let plan = plan_for(
            &self.ctx,
            pass,
            shape,
            self.ps,
            self.batch,
            &self.options,
            false,
            Precision::of::<T>(),
        )?;
        if (plan.group as usize) < self.batch {
            return Err(Error::Device(format!(
                "adapter '{}': {} paths do not fit its buffers at once; use the host API, which \
                 groups them",
                self.ctx.name, self.batch
            )));
        }
        Ok(plan)
    }

    /// The signatures of degree `degree` (at least 1), left on the GPU.
    pub fn sig(&self, degree: usize) -> Result<GpuSigs<'_, T>> {
        let shape = self.shape(degree)?;
        if shape.is_empty() {
            return Err(Error::NotPositive { what: "degree" });
        }
        let plan = self.plan(Pass::Forward, &shape)?;
        let mut report = GpuReport::new("sig");
        let consts = consts::<T>(&shape, self.ps, &self.options);
        let inputs = Inputs {
            paths: &[],
            consts: &consts,
            sigs: &[],
            derivs: &[],
            resident: &[(Buf::Paths, &self.buffer)],
        };
        let mut bufs = run(
            &self.ctx,
            &plan,
            self.batch as u64,
            inputs,
            None,
            &mut report,
        )?;
        set_last_report(report);
        Ok(GpuSigs {
            paths: self,
            buffer: bufs.remove(&Buf::Out).expect("the forward pass writes Out"),
            shape,
            of_paths: true,
        })
    }

    /// The gradient with respect to the paths of a function `F` of the signatures `sigs` (computed
    /// from these paths), given `sig_derivs = dF/dsigs` on the host (shaped as `sigs.to_host()`).
    pub fn sig_backprop<D: Dimension>(
        &self,
        sigs: &GpuSigs<'_, T>,
        sig_derivs: ArrayView<'_, T, D>,
    ) -> Result<ArrayD<T>> {
        if !std::ptr::eq(sigs.paths, self) || !sigs.of_paths {
            return Err(Error::invalid(
                "sig_backprop: the signatures are not those of these paths",
            ));
        }
        let shape = &sigs.shape;
        let g = Rows::new("sig_derivs", sig_derivs.into_dyn(), 1)?;
        let st = self.options.scalar_term as usize;
        if g.batch() != self.batch || g.last() != shape.len() + st {
            return Err(Error::invalid(format!(
                "sig_derivs: expected {} rows of {}, got shape {:?}",
                self.batch,
                shape.len() + st,
                g.data.shape()
            )));
        }
        g.check_finite("sig_derivs", false)?;
        let derivs: Vec<T> = g
            .slice()
            .chunks_exact(shape.len() + st)
            .flat_map(|r| r[st..].iter().copied())
            .collect();
        let plan = self.plan(Pass::Backward, shape)?;
        let mut report = GpuReport::new("sig_backprop");
        let consts = consts::<T>(shape, self.ps, &self.options);
        let inputs = Inputs {
            paths: &[],
            consts: &consts,
            sigs: &[],
            derivs: &derivs,
            resident: &[(Buf::Paths, &self.buffer), (Buf::Sigs, &sigs.buffer)],
        };
        let mut out_shape = self.batch_shape.clone();
        out_shape.extend([self.ps.length, self.ps.dim]);
        let mut out = zeros::<T>("path gradient", &out_shape)?;
        let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
        if !slice.is_empty() {
            let n = self.batch as u64;
            run(
                &self.ctx,
                &plan,
                n,
                inputs,
                Some((Buf::Grads, slice)),
                &mut report,
            )?;
        }
        set_last_report(report);
        Ok(out)
    }
}

impl<'a, T: Scalar> GpuSigs<'a, T> {
    /// Download the signatures: `(batch…, sig_length)`, with the scalar term if the options ask.
    pub fn to_host(&self) -> Result<ArrayD<T>> {
        let p = self.paths;
        let st = p.options.scalar_term as usize;
        let len = self.shape.len();
        let mut out_shape = p.batch_shape.clone();
        out_shape.push(len + st);
        let mut out = zeros::<T>("signature", &out_shape)?;
        let mut report = GpuReport::new("download");
        let mut levels = vec![T::zero(); p.batch * len];
        submit(
            &p.ctx,
            &[],
            Some((&self.buffer, dst(&mut levels))),
            &mut report,
        )?;
        let slice = out.as_slice_mut().expect("fresh arrays are contiguous");
        for (o, r) in slice
            .chunks_exact_mut(len + st)
            .zip(levels.chunks_exact(len))
        {
            if st == 1 {
                o[0] = T::one();
            }
            o[st..].copy_from_slice(r);
        }
        set_last_report(report);
        Ok(out)
    }

    /// The gradient with respect to the paths of a function `F` of the log-signatures in the form
    /// `method`, given `log_sig_derivs = dF/dlog_sig` on the host (shaped as [`GpuSigs::log_sig`]'s
    /// result): the reverse logarithm and the reverse sweep run from the paths and signatures where
    /// they are, and only the path gradients come back (as [`crate::log_sig_backprop`]).
    pub fn log_sig_backprop<D: Dimension>(
        &self,
        method: LogSigMethod,
        log_sig_derivs: ArrayView<'_, T, D>,
    ) -> Result<ArrayD<T>> {
        let p = self.paths;
        if !self.of_paths {
            return Err(Error::invalid(
                "log_sig_backprop: the signatures are a product, not those of the paths",
            ));
        }
        crate::logsig::log_sig_backprop_of_device(
            &p.device,
            (&p.buffer, &self.buffer),
            &p.batch_shape,
            p.ps,
            self.shape.degree,
            method,
            log_sig_derivs.into_dyn(),
            &p.options,
        )
    }

    /// The log-signatures in the form `method`, from the signatures where they are: only the
    /// log-signatures come back (as [`crate::log_sig`] on the same paths and options).
    pub fn log_sig(&self, method: LogSigMethod) -> Result<ArrayD<T>> {
        let p = self.paths;
        crate::logsig::log_sig_of_device(
            &p.device,
            &self.buffer,
            &p.batch_shape,
            self.shape.dim,
            self.shape.degree,
            method,
            &p.options,
        )
    }

    /// Chen's product `self ⊗ other` row by row (as [`crate::sig_combine`]), left on the GPU.
    /// Both must be signatures of paths on the same adapter, with the same batch, dimension and
    /// degree.
    pub fn combine(&self, other: &GpuSigs<'_, T>) -> Result<GpuSigs<'a, T>> {
        self.check_partner(other)?;
        let p = self.paths;
        let buffer = combine::sig_combine_resident::<T>(
            &p.device,
            &self.shape,
            &self.buffer,
            &other.buffer,
            p.batch,
        )?;
        Ok(self.product(buffer))
    }

    /// `self ⊗ exp(v)`, or `exp(v) ⊗ self` with `prepend`, row by row (as [`crate::sig_join`]),
    /// left on the GPU: `displacements` `(batch…, dim)` holds one segment per row, in the
    /// signatures' dimension (after the transforms).
    pub fn join<D: Dimension>(
        &self,
        displacements: ArrayView<'_, T, D>,
        prepend: bool,
    ) -> Result<GpuSigs<'a, T>> {
        let v = self.rows_of("displacements", displacements.into_dyn(), self.shape.dim)?;
        let p = self.paths;
        let buffer = combine::sig_join_resident(
            &p.device,
            &self.shape,
            &self.buffer,
            v.slice(),
            prepend,
            p.batch,
        )?;
        Ok(self.product(buffer))
    }

    /// The gradients of a function `F` of `self ⊗ other` with respect to both factors, given
    /// `derivs = dF/d(self ⊗ other)` on the host (shaped as [`GpuSigs::to_host`]'s result), as
    /// [`crate::sig_combine_backprop`]: the factors are read where they are.
    pub fn combine_backprop<D: Dimension>(
        &self,
        other: &GpuSigs<'_, T>,
        derivs: ArrayView<'_, T, D>,
    ) -> Result<(ArrayD<T>, ArrayD<T>)> {
        self.check_partner(other)?;
        let p = self.paths;
        let row = self.shape.len() + p.options.scalar_term as usize;
        let g = self.rows_of("derivs", derivs.into_dyn(), row)?;
        let mut both = zeros::<T>("gradient", &[p.batch, 2 * row])?;
        let factors = [Factor::Device(&self.buffer), Factor::Device(&other.buffer)];
        let slice = both.as_slice_mut().expect("fresh arrays are contiguous");
        let st = p.options.scalar_term as usize;
        combine::sig_combine_backprop(&p.device, &self.shape, g.slice(), factors, st, slice)?;
        split_pair(both, &p.batch_shape, row, row)
    }

    /// The gradients of a function `F` of [`GpuSigs::join`]'s result with respect to the
    /// signatures and the displacements, given `derivs` on the host, as
    /// [`crate::sig_join_backprop`]: the signatures are read where they are.
    pub fn join_backprop<D1: Dimension, D2: Dimension>(
        &self,
        displacements: ArrayView<'_, T, D1>,
        derivs: ArrayView<'_, T, D2>,
        prepend: bool,
    ) -> Result<(ArrayD<T>, ArrayD<T>)> {
        let p = self.paths;
        let (d, st) = (self.shape.dim, p.options.scalar_term as usize);
        let row = self.shape.len() + st;
        let v = self.rows_of("displacements", displacements.into_dyn(), d)?;
        let g = self.rows_of("derivs", derivs.into_dyn(), row)?;
        let mut both = zeros::<T>("gradient", &[p.batch, row + d])?;
        let slice = both.as_slice_mut().expect("fresh arrays are contiguous");
        let sigs = Factor::Device(&self.buffer);
        let shape = &self.shape;
        combine::sig_join_backprop(
            &p.device,
            shape,
            g.slice(),
            sigs,
            v.slice(),
            st,
            prepend,
            slice,
        )?;
        split_pair(both, &p.batch_shape, row, d)
    }

    /// A product made from these signatures, on the same paths' adapter.
    fn product(&self, buffer: Pooled) -> GpuSigs<'a, T> {
        GpuSigs {
            paths: self.paths,
            buffer,
            shape: self.shape.clone(),
            of_paths: false,
        }
    }

    /// `other` can be multiplied with these signatures on the device.
    fn check_partner(&self, other: &GpuSigs<'_, T>) -> Result<()> {
        let (p, q) = (self.paths, other.paths);
        if !Arc::ptr_eq(&p.ctx, &q.ctx) {
            return Err(Error::invalid("the signatures are on different adapters"));
        }
        if p.batch_shape != q.batch_shape || self.shape != other.shape {
            return Err(Error::invalid(format!(
                "the signatures differ in shape: batch {:?} against {:?}, (dimension, degree) \
                 ({}, {}) against ({}, {})",
                p.batch_shape,
                q.batch_shape,
                self.shape.dim,
                self.shape.degree,
                other.shape.dim,
                other.shape.degree
            )));
        }
        Ok(())
    }

    /// `data` read as one finite row of `len` per signature.
    fn rows_of<'v>(
        &self,
        what: &'static str,
        data: ArrayViewD<'v, T>,
        len: usize,
    ) -> Result<Rows<'v, T>> {
        let p = self.paths;
        let rows = Rows::new(what, data, 1)?;
        if rows.batch_shape != p.batch_shape || rows.last() != len {
            return Err(Error::invalid(format!(
                "{what}: expected shape {:?} + [{len}], got {:?}",
                p.batch_shape,
                rows.data.shape()
            )));
        }
        rows.check_finite(what, false)?;
        Ok(rows)
    }
}
