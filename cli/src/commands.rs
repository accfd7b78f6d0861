//! One function per subcommand: read the inputs, pick the dtype, compute (timed), write the outputs.

use super::args::{
    Command, Common, Correction, Dtype, Flags, KernelArgs, KernelLengths, Lengths, MaxBatch,
    Method, MetricKernel, Output, Output2, Size, Solver, SolverName, Transform,
};
use super::npy::{self, Input};
use super::progress;
use super::timing::Timing;
use ndarray::{ArrayD, ArrayView, ArrayView3, Dimension, Ix2};
use ndarray_npy::WritableElement;
use roughsig::{Error, KernelSolver, Result, Scalar, SigKernelOptions, SigOptions};

/// Run a generic body with `T` = the job's compute dtype.
macro_rules! dispatch {
    ($job:expr, |$t:ident, $j:ident| $body:expr) => {{
        let $j = $job;
        match $j.dtype {
            Dtype::F32 => {
                type $t = f32;
                $body
            }
            Dtype::F64 => {
                type $t = f64;
                $body
            }
        }
    }};
}

/// f32 or f64, and writable as .npy.
trait Float: Scalar + WritableElement {}
impl<T: Scalar + WritableElement> Float for T {}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Sig {
            path,
            degree,
            transform,
            scalar_term,
            lengths,
            correction: Correction { correction },
            out,
            common,
        } => {
            let opts = options(&transform, &common).scalar_term(scalar_term);
            if let Some(c) = &correction {
                let job = Job::read("sig", &[&path, c], &common)?;
                return dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                    roughsig::sig_corrected(x[0].view(), x[1].view(), degree, &opts)
                }));
            }
            let job = Job::read("sig", &[&path], &common)?;
            match lengths.read()? {
                Some(l) => dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                    roughsig::sig_ragged(ragged_paths(&x[0])?, &l, degree, &opts)
                        .map(|a| a.into_dyn())
                })),
                None => dispatch!(job, |T, job| job.sig::<T>(degree, &opts, &out)),
            }
        }
        Command::SigBackprop {
            path,
            sig,
            sig_derivs,
            degree,
            lengths,
            correction: Correction { correction },
            transform,
            out,
            common,
        } => {
            let opts = options(&transform, &common);
            if let Some(c) = &correction {
                let files = [&path, c, &sig, &sig_derivs];
                let job = Job::read("sig-backprop", &files, &common)?;
                return dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                    let (p, c, s, d) = (x[0].view(), x[1].view(), x[2].view(), x[3].view());
                    roughsig::sig_corrected_backprop(p, c, s, d, degree, &opts)
                }));
            }
            let job = Job::read("sig-backprop", &[&path, &sig, &sig_derivs], &common)?;
            match lengths.read()? {
                Some(l) => dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                    let rows = |a, what| with_axes::<T, Ix2>(a, what, "(batch, sig_length)");
                    let sigs = rows(&x[1], "with --lengths, the signatures")?;
                    let derivs = rows(&x[2], "with --lengths, the derivatives")?;
                    let paths = ragged_paths(&x[0])?;
                    roughsig::sig_backprop_ragged(paths, &l, sigs, derivs, degree, &opts)
                        .map(|a| a.into_dyn())
                })),
                None => dispatch!(job, |T, job| job.sig_backprop::<T>(degree, &opts, &out)),
            }
        }
        Command::TransformPath {
            path,
            transform,
            lengths,
            out,
            common,
        } => {
            let opts = options(&transform, &common);
            let job = Job::read("transform-path", &[&path], &common)?;
            let lengths = lengths.read()?;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| match &lengths {
                Some(l) => roughsig::transform_path_ragged(ragged_paths(&x[0])?, l, &opts)
                    .map(|a| a.into_dyn()),
                None => roughsig::transform_path(x[0].view(), &opts),
            }))
        }
        Command::TransformPathBackprop {
            derivs,
            transform,
            lengths,
            out,
            common,
        } => {
            let opts = options(&transform, &common);
            let job = Job::read("transform-path-backprop", &[&derivs], &common)?;
            let lengths = lengths.read()?;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| match &lengths {
                Some(l) => {
                    let what = "with --lengths, the derivatives";
                    let derivs = with_axes(&x[0], what, "(batch, length, dim)")?;
                    roughsig::transform_path_backprop_ragged(derivs, l, &opts).map(|a| a.into_dyn())
                }
                None => roughsig::transform_path_backprop(x[0].view(), &opts),
            }))
        }
        Command::SigCombine {
            sig1,
            sig2,
            size,
            flags,
            out,
            common,
        } => {
            let opts = flag_options(&flags, &common);
            let job = Job::read("sig-combine", &[&sig1, &sig2], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::sig_combine(x[0].view(), x[1].view(), dimension, degree, &opts)
            }))
        }
        Command::SigCombineBackprop {
            deriv,
            sig1,
            sig2,
            size,
            flags,
            out,
            common,
        } => {
            let opts = flag_options(&flags, &common);
            let job = Job::read("sig-combine-backprop", &[&deriv, &sig1, &sig2], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.pair::<T>(&out, |x| {
                roughsig::sig_combine_backprop(
                    x[0].view(),
                    x[1].view(),
                    x[2].view(),
                    dimension,
                    degree,
                    &opts,
                )
            }))
        }
        Command::SigJoin {
            sig,
            displacement,
            size,
            prepend,
            out,
            common,
        } => {
            let opts = flag_options(&Flags::default(), &common);
            let job = Job::read("sig-join", &[&sig, &displacement], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::sig_join(x[0].view(), x[1].view(), dimension, degree, prepend, &opts)
            }))
        }
        Command::SigJoinBackprop {
            deriv,
            sig,
            displacement,
            size,
            prepend,
            out,
            common,
        } => {
            let opts = flag_options(&Flags::default(), &common);
            let job = Job::read("sig-join-backprop", &[&deriv, &sig, &displacement], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.pair::<T>(&out, |x| {
                roughsig::sig_join_backprop(
                    x[0].view(),
                    x[1].view(),
                    x[2].view(),
                    dimension,
                    degree,
                    prepend,
                    &opts,
                )
            }))
        }
        Command::LinearSig {
            displacement,
            size,
            scalar_term,
            out,
            common,
        } => {
            let opts = flag_options(&Flags::default(), &common).scalar_term(scalar_term);
            let job = Job::read("linear-sig", &[&displacement], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::linear_sig(x[0].view(), dimension, degree, &opts)
            }))
        }
        Command::LinearSigBackprop {
            deriv,
            displacement,
            size,
            scalar_term,
            out,
            common,
        } => {
            let opts = flag_options(&Flags::default(), &common).scalar_term(scalar_term);
            let job = Job::read("linear-sig-backprop", &[&deriv, &displacement], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::linear_sig_backprop(x[0].view(), x[1].view(), dimension, degree, &opts)
            }))
        }
        Command::LinearLogSig {
            displacement,
            size,
            method: Method { method },
            scalar_term,
            out,
            common,
        } => {
            let opts = flag_options(&Flags::default(), &common).scalar_term(scalar_term);
            let job = Job::read("linear-log-sig", &[&displacement], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::linear_log_sig(x[0].view(), dimension, degree, method, &opts)
            }))
        }
        Command::LinearLogSigBackprop {
            deriv,
            displacement,
            size,
            method: Method { method },
            scalar_term,
            out,
            common,
        } => {
            let opts = flag_options(&Flags::default(), &common).scalar_term(scalar_term);
            let job = Job::read("linear-log-sig-backprop", &[&deriv, &displacement], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                let (g, v) = (x[0].view(), x[1].view());
                roughsig::linear_log_sig_backprop(g, v, dimension, degree, method, &opts)
            }))
        }
        Command::LogSigCombine {
            log_sig1,
            log_sig2,
            size,
            flags,
            out,
            common,
        } => {
            let opts = flag_options(&flags, &common);
            let job = Job::read("log-sig-combine", &[&log_sig1, &log_sig2], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::log_sig_combine(x[0].view(), x[1].view(), dimension, degree, &opts)
            }))
        }
        Command::LogSigCombineBackprop {
            deriv,
            log_sig1,
            log_sig2,
            size,
            flags,
            out,
            common,
        } => {
            let opts = flag_options(&flags, &common);
            let inputs = [&deriv, &log_sig1, &log_sig2];
            let job = Job::read("log-sig-combine-backprop", &inputs, &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.pair::<T>(&out, |x| {
                let (g, a, b) = (x[0].view(), x[1].view(), x[2].view());
                roughsig::log_sig_combine_backprop(g, a, b, dimension, degree, &opts)
            }))
        }
        Command::LogSigJoin {
            log_sig,
            displacement,
            size,
            out,
            common,
        } => {
            let opts = flag_options(&Flags::default(), &common);
            let job = Job::read("log-sig-join", &[&log_sig, &displacement], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::log_sig_join(x[0].view(), x[1].view(), dimension, degree, &opts)
            }))
        }
        Command::LogSigJoinBackprop {
            deriv,
            log_sig,
            displacement,
            size,
            out,
            common,
        } => {
            let opts = flag_options(&Flags::default(), &common);
            let inputs = [&deriv, &log_sig, &displacement];
            let job = Job::read("log-sig-join-backprop", &inputs, &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.pair::<T>(&out, |x| {
                let (g, l, v) = (x[0].view(), x[1].view(), x[2].view());
                roughsig::log_sig_join_backprop(g, l, v, dimension, degree, &opts)
            }))
        }
        Command::SigKernel {
            path1,
            path2,
            kernel,
            out,
            common,
        } => {
            let opts = kernel_options(&kernel, &common)?;
            let job = Job::read("sig-kernel", &[&path1, &path2], &common)?;
            let lengths = kernel.lengths.read()?;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| match &lengths {
                Some(l) => {
                    let ((x1, l1), (x2, l2)) = l.sides(&x[0], &x[1])?;
                    roughsig::sig_kernel_ragged(x1, &l1, x2, &l2, &opts)
                }
                None => roughsig::sig_kernel(x[0].view(), x[1].view(), &opts),
            }))
        }
        Command::SigKernelBackprop {
            derivs,
            path1,
            path2,
            kernel,
            out,
            common,
        } => {
            let opts = kernel_options(&kernel, &common)?;
            let job = Job::read("sig-kernel-backprop", &[&derivs, &path1, &path2], &common)?;
            let lengths = kernel.lengths.read()?;
            dispatch!(job, |T, job| job.pair::<T>(&out, |x| match &lengths {
                Some(l) => {
                    let ((x1, l1), (x2, l2)) = l.sides(&x[1], &x[2])?;
                    let (d1, d2) =
                        roughsig::sig_kernel_backprop_ragged(x[0].view(), x1, &l1, x2, &l2, &opts)?;
                    Ok((d1.into_dyn(), d2.into_dyn()))
                }
                None => roughsig::sig_kernel_backprop(x[0].view(), x[1].view(), x[2].view(), &opts),
            }))
        }
        Command::SigKernelGram {
            paths1,
            paths2,
            kernel,
            out,
            common,
        } => {
            let opts = kernel_options(&kernel, &common)?;
            let job = Job::read("sig-kernel-gram", &[&paths1, &paths2], &common)?;
            // The same file twice is the symmetric case: one triangle, exactly symmetric.
            let lengths = kernel.lengths.read()?;
            let symmetric = paths1 == paths2 && kernel.lengths.lengths == kernel.lengths.lengths2;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                if let Some(l) = &lengths {
                    let ((x1, l1), (x2, l2)) = l.sides(&x[0], &x[1])?;
                    // The same view on both sides is what the library reads as symmetric.
                    let x2 = if symmetric { x1 } else { x2 };
                    roughsig::sig_kernel_gram_ragged(x1, &l1, x2, &l2, &opts).map(|a| a.into_dyn())
                } else if symmetric {
                    roughsig::sig_kernel_gram_sym(x[0].view(), &opts)
                } else {
                    roughsig::sig_kernel_gram(x[0].view(), x[1].view(), &opts)
                }
            }))
        }
        Command::SigKernelGramBackprop {
            derivs,
            paths1,
            paths2,
            kernel,
            out,
            common,
        } => {
            let opts = kernel_options(&kernel, &common)?;
            let inputs = [&derivs, &paths1, &paths2];
            let job = Job::read("sig-kernel-gram-backprop", &inputs, &common)?;
            let lengths = kernel.lengths.read()?;
            dispatch!(job, |T, job| job.pair::<T>(&out, |x| match &lengths {
                Some(l) => {
                    let ((x1, l1), (x2, l2)) = l.sides(&x[1], &x[2])?;
                    let derivs = with_axes(&x[0], "with --lengths, derivs", "(batch1, batch2)")?;
                    let (d1, d2) =
                        roughsig::sig_kernel_gram_backprop_ragged(derivs, x1, &l1, x2, &l2, &opts)?;
                    Ok((d1.into_dyn(), d2.into_dyn()))
                }
                None => {
                    let (g, x1, x2) = (x[0].view(), x[1].view(), x[2].view());
                    roughsig::sig_kernel_gram_backprop(g, x1, x2, &opts)
                }
            }))
        }
        Command::SigMmd {
            sample1,
            sample2,
            kernel,
            out,
            common,
        } => {
            let opts = metric_options(&kernel, &common)?;
            let job = Job::read("sig-mmd", &[&sample1, &sample2], &common)?;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                let mmd = roughsig::sig_mmd(x[0].view(), x[1].view(), &opts)?;
                Ok(ndarray::arr0(mmd).into_dyn())
            }))
        }
        Command::SigScore {
            sample,
            y,
            lam,
            kernel,
            out,
            common,
        } => {
            let opts = metric_options(&kernel, &common)?;
            let job = Job::read("sig-score", &[&sample, &y], &common)?;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::sig_score(x[0].view(), x[1].view(), lam, &opts)
            }))
        }
        Command::ExpectedSigScore {
            sample1,
            sample2,
            lam,
            kernel,
            out,
            common,
        } => {
            let opts = metric_options(&kernel, &common)?;
            let job = Job::read("expected-sig-score", &[&sample1, &sample2], &common)?;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                let score = roughsig::expected_sig_score(x[0].view(), x[1].view(), lam, &opts)?;
                Ok(ndarray::arr1(&[score]).into_dyn())
            }))
        }
        Command::SigMmdBackprop {
            deriv,
            sample1,
            sample2,
            kernel,
            out,
            common,
        } => {
            let opts = metric_options(&kernel, &common)?;
            let inputs = [&deriv, &sample1, &sample2];
            let job = Job::read("sig-mmd-backprop", &inputs, &common)?;
            dispatch!(job, |T, job| job.pair::<T>(&out, |x| {
                let deriv = one_value(&x[0], "DERIV")?;
                roughsig::sig_mmd_backprop(deriv, x[1].view(), x[2].view(), &opts)
            }))
        }
        Command::SigScoreBackprop {
            derivs,
            sample,
            y,
            lam,
            kernel,
            out,
            common,
        } => {
            let opts = metric_options(&kernel, &common)?;
            let job = Job::read("sig-score-backprop", &[&derivs, &sample, &y], &common)?;
            dispatch!(job, |T, job| job.pair::<T>(&out, |x| {
                let (g, s, y) = (x[0].view(), x[1].view(), x[2].view());
                roughsig::sig_score_backprop(g, s, y, lam, &opts)
            }))
        }
        Command::ExpectedSigScoreBackprop {
            deriv,
            sample1,
            sample2,
            lam,
            kernel,
            out,
            common,
        } => {
            let opts = metric_options(&kernel, &common)?;
            let inputs = [&deriv, &sample1, &sample2];
            let job = Job::read("expected-sig-score-backprop", &inputs, &common)?;
            dispatch!(job, |T, job| job.pair::<T>(&out, |x| {
                let deriv = one_value(&x[0], "DERIV")?;
                roughsig::expected_sig_score_backprop(deriv, x[1].view(), x[2].view(), lam, &opts)
            }))
        }
        Command::SigCoef {
            path,
            words,
            prefixes,
            transform,
            out,
            common,
        } => {
            let opts = options(&transform, &common);
            let job = Job::read("sig-coef", &[&path], &common)?;
            let words = &words.words.0;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::sig_coef(x[0].view(), words, prefixes, &opts)
            }))
        }
        Command::SigCoefBackprop {
            path,
            derivs,
            words,
            transform,
            out,
            common,
        } => {
            let opts = options(&transform, &common);
            let job = Job::read("sig-coef-backprop", &[&path, &derivs], &common)?;
            let words = &words.words.0;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::sig_coef_backprop(x[0].view(), words, x[1].view(), &opts)
            }))
        }
        Command::SigLength {
            size,
            flags,
            scalar_term,
        } => {
            let opts = SigOptions::default()
                .time_aug(flags.time_aug)
                .lead_lag(flags.lead_lag)
                .scalar_term(scalar_term);
            println!(
                "{}",
                roughsig::sig_length(size.dimension, size.degree, &opts)?
            );
            Ok(())
        }
        Command::Devices => {
            print!("{}", roughsig::gpu::adapters());
            Ok(())
        }
        Command::Calibrate { adapter } => {
            let device = roughsig::gpu::find_adapter(adapter.as_deref())?;
            eprintln!("calibrating '{}' against the CPU…", device.name);
            let c = roughsig::gpu::calibrate::calibrate(&device)?;
            let file = roughsig::gpu::calibrate::save(&c)?;
            let show =
                |w: Option<u128>| w.map_or("never".into(), |w| format!("from {w} multiply-adds"));
            println!(
                "'{}': the GPU is faster than the CPU in f32 {}, in f64 {}; saved to {}",
                c.adapter,
                show(c.f32_min_work),
                show(c.f64_min_work),
                file.display()
            );
            Ok(())
        }
        Command::SigWindows {
            path,
            degree,
            window,
            stride,
            log_sig,
            transform,
            out,
            common,
        } => {
            let opts = options(&transform, &common);
            let job = Job::read("sig-windows", &[&path], &common)?;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                let sigs = roughsig::sig_windows(x[0].view(), degree, window, stride, &opts)?;
                match log_sig {
                    None => Ok(sigs),
                    Some(method) => {
                        let dim = x[0].shape().last().copied().unwrap_or(0);
                        roughsig::sig_to_log_sig(sigs.view(), dim, degree, method, &opts)
                    }
                }
            }))
        }
        Command::LogSig {
            path,
            degree,
            method: Method { method },
            transform,
            scalar_term,
            lengths,
            correction: Correction { correction },
            out,
            common,
        } => {
            let opts = options(&transform, &common).scalar_term(scalar_term);
            if let Some(c) = &correction {
                let job = Job::read("log-sig", &[&path, c], &common)?;
                return dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                    roughsig::log_sig_corrected(x[0].view(), x[1].view(), degree, method, &opts)
                }));
            }
            let job = Job::read("log-sig", &[&path], &common)?;
            let lengths = lengths.read()?;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| match &lengths {
                Some(l) => roughsig::log_sig_ragged(ragged_paths(&x[0])?, l, degree, method, &opts),
                None => roughsig::log_sig(x[0].view(), degree, method, &opts),
            }))
        }
        Command::LogSigBackprop {
            path,
            log_sig_derivs,
            degree,
            method: Method { method },
            transform,
            scalar_term,
            out,
            common,
        } => {
            let opts = options(&transform, &common).scalar_term(scalar_term);
            let job = Job::read("log-sig-backprop", &[&path, &log_sig_derivs], &common)?;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::log_sig_backprop(x[0].view(), x[1].view(), degree, method, &opts)
            }))
        }
        Command::SigToLogSigBackprop {
            sig,
            log_sig_derivs,
            size,
            method: Method { method },
            flags,
            out,
            common,
        } => {
            let opts = flag_options(&flags, &common);
            let job = Job::read("sig-to-log-sig-backprop", &[&sig, &log_sig_derivs], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                let (s, d) = (x[0].view(), x[1].view());
                roughsig::sig_to_log_sig_backprop(s, d, dimension, degree, method, &opts)
            }))
        }
        Command::SigToLogSig {
            sig,
            size,
            method: Method { method },
            flags,
            out,
            common,
        } => {
            let opts = flag_options(&flags, &common);
            let job = Job::read("sig-to-log-sig", &[&sig], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::sig_to_log_sig(x[0].view(), dimension, degree, method, &opts)
            }))
        }
        Command::LogSigToSig {
            log_sig,
            size,
            method: Method { method },
            flags,
            scalar_term,
            out,
            common,
        } => {
            let opts = flag_options(&flags, &common).scalar_term(scalar_term);
            let job = Job::read("log-sig-to-sig", &[&log_sig], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::log_sig_to_sig(x[0].view(), dimension, degree, method, &opts)
            }))
        }
        Command::LogSigToSigBackprop {
            log_sig,
            sig_derivs,
            size,
            method: Method { method },
            flags,
            scalar_term,
            out,
            common,
        } => {
            let opts = flag_options(&flags, &common).scalar_term(scalar_term);
            let job = Job::read("log-sig-to-sig-backprop", &[&log_sig, &sig_derivs], &common)?;
            let Size { dimension, degree } = size;
            dispatch!(job, |T, job| job.single::<T>(&out, |x| {
                roughsig::log_sig_to_sig_backprop(
                    x[0].view(),
                    x[1].view(),
                    dimension,
                    degree,
                    method,
                    &opts,
                )
            }))
        }
        Command::LogSigLength { size, flags } => {
            let opts = SigOptions::default()
                .time_aug(flags.time_aug)
                .lead_lag(flags.lead_lag);
            println!(
                "{}",
                roughsig::log_sig_length(size.dimension, size.degree, &opts)?
            );
            Ok(())
        }
        Command::Demo { device } => {
            let report = crate::demo::run(&device)?;
            print!("{report}");
            Ok(())
        }
    }
}

fn options(transform: &Transform, common: &Common) -> SigOptions {
    SigOptions {
        transform: transform.path_transform(),
        exec: common.execution(),
        ..Default::default()
    }
}

fn kernel_options(kernel: &KernelArgs, common: &Common) -> Result<SigKernelOptions> {
    Ok(SigKernelOptions {
        dyadic_order: kernel.dyadic_order.into(),
        static_kernel: kernel.static_kernel.clone(),
        transform: kernel.transform.path_transform(),
        normalize: kernel.normalize,
        solver: kernel.solver.solver()?,
        max_batch: kernel.max_batch.pairs(),
        exec: common.execution(),
        ..Default::default()
    })
}

fn metric_options(kernel: &MetricKernel, common: &Common) -> Result<SigKernelOptions> {
    Ok(SigKernelOptions {
        dyadic_order: kernel.dyadic_order.into(),
        static_kernel: kernel.static_kernel.clone(),
        transform: kernel.transform.path_transform(),
        solver: kernel.solver.solver()?,
        max_batch: kernel.max_batch.pairs(),
        exec: common.execution(),
        ..Default::default()
    })
}

impl Solver {
    fn solver(&self) -> Result<KernelSolver> {
        match (self.method, self.order) {
            (SolverName::Polynomial, Some(order)) => Ok(KernelSolver::Polynomial { order }),
            (SolverName::Polynomial, None) => {
                Err(Error::Invalid("--method polynomial needs --order K".into()))
            }
            (SolverName::FiniteDifference, None) => Ok(KernelSolver::FiniteDifference),
            (SolverName::FiniteDifference, Some(_)) => {
                Err(Error::Invalid("--order is for --method polynomial".into()))
            }
        }
    }
}

impl MaxBatch {
    fn pairs(&self) -> Option<usize> {
        self.max_batch
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }
}

fn flag_options(flags: &Flags, common: &Common) -> SigOptions {
    SigOptions {
        transform: flags.path_transform(),
        exec: common.execution(),
        ..Default::default()
    }
}

/// The inputs of one command, read, with the dtype to compute in.
struct Job<'a> {
    op: &'static str,
    common: &'a Common,
    inputs: Vec<Input>,
    dtype: Dtype,
}

impl<'a> Job<'a> {
    fn read(op: &'static str, paths: &[&String], common: &'a Common) -> Result<Job<'a>> {
        let inputs = paths
            .iter()
            .map(|p| Input::read(p))
            .collect::<Result<Vec<_>>>()?;
        let dtype = match common.dtype {
            Some(d) => d,
            None => common_dtype(&inputs)?,
        };
        Ok(Job {
            op,
            common,
            inputs,
            dtype,
        })
    }

    fn arrays<T: Float>(&self) -> Vec<ArrayD<T>> {
        self.inputs.iter().map(|i| i.to::<T>()).collect()
    }

    fn timing(&self) -> Timing<'_> {
        Timing {
            op: self.op,
            common: self.common,
            dtype: self.dtype.name(),
            shape: self.inputs[0].shape(),
        }
    }

    fn sig<T: Float>(&self, degree: usize, opts: &SigOptions, out: &Output) -> Result<()> {
        let x = self.arrays::<T>();
        let show = progress::enabled();
        let result = self
            .timing()
            .run(|first| progress::sig(&x[0], degree, opts, first && show))?;
        npy::write(&out.output, &result)
    }

    fn sig_backprop<T: Float>(&self, degree: usize, opts: &SigOptions, out: &Output) -> Result<()> {
        let x = self.arrays::<T>();
        let show = progress::enabled();
        let result = self.timing().run(|first| {
            progress::sig_backprop(&x[0], &x[1], &x[2], degree, opts, first && show)
        })?;
        npy::write(&out.output, &result)
    }

    fn single<T: Float>(
        &self,
        out: &Output,
        f: impl Fn(&[ArrayD<T>]) -> Result<ArrayD<T>>,
    ) -> Result<()> {
        let x = self.arrays::<T>();
        let result = self.timing().run(|_| f(&x))?;
        npy::write(&out.output, &result)
    }

    fn pair<T: Float>(
        &self,
        out: &Output2,
        f: impl Fn(&[ArrayD<T>]) -> Result<(ArrayD<T>, ArrayD<T>)>,
    ) -> Result<()> {
        if npy::same_file(&out.output, &out.output2) {
            return Err(Error::Invalid(format!(
                "--output and --output2 name the same file ({}); give two different files",
                out.output2
            )));
        }
        let x = self.arrays::<T>();
        let (a, b) = self.timing().run(|_| f(&x))?;
        npy::write_pair(&out.output, &a, &out.output2, &b)
    }
}

/// The float dtype shared by the inputs (integer inputs adapt); f64 when there is none.
fn common_dtype(inputs: &[Input]) -> Result<Dtype> {
    let mut found: Option<(&str, &str)> = None;
    for input in inputs {
        let Some(d) = input.float_dtype() else {
            continue;
        };
        match found {
            Some((first, path)) if first != d => {
                return Err(Error::Invalid(format!(
                    "inputs have different dtypes ({path} is {first}, {} is {d}); pass --dtype f32 or --dtype f64",
                    input.path
                )))
            }
            None => found = Some((d, &input.path)),
            _ => {}
        }
    }
    Ok(match found {
        Some(("f32", _)) => Dtype::F32,
        _ => Dtype::F64,
    })
}

/// The paths of a ragged batch: `(batch, length, dim)`.
fn ragged_paths<T>(a: &ArrayD<T>) -> Result<ArrayView3<'_, T>> {
    with_axes(a, "with --lengths, the paths", "(batch, length, dim)")
}

/// The one value of `a` (a 0-d array, or any shape with one element), else an error naming `what`.
fn one_value<T: Copy>(a: &ArrayD<T>, what: &str) -> Result<T> {
    match a.first() {
        Some(&v) if a.len() == 1 => Ok(v),
        _ => Err(Error::Invalid(format!(
            "{what} must hold one value (a 0-d array or shape (1,)), got shape {:?} ({} values)",
            a.shape(),
            a.len()
        ))),
    }
}

/// `a` with `D`'s number of axes, else an error naming `what` and the expected `shape`.
fn with_axes<'a, T, D: Dimension>(
    a: &'a ArrayD<T>,
    what: &str,
    shape: &str,
) -> Result<ArrayView<'a, T, D>> {
    a.view().into_dimensionality::<D>().map_err(|_| {
        Error::Invalid(format!(
            "{what} must have shape {shape}, got {:?}",
            a.shape()
        ))
    })
}

/// The lengths of a ragged signature-kernel call: a side without its own is whole.
struct SideLengths(Option<Vec<usize>>, Option<Vec<usize>>);

/// A side of a ragged signature-kernel call: its paths and lengths.
type RaggedSide<'a, T> = (ArrayView3<'a, T>, Vec<usize>);

impl SideLengths {
    fn sides<'a, T>(
        &self,
        x1: &'a ArrayD<T>,
        x2: &'a ArrayD<T>,
    ) -> Result<(RaggedSide<'a, T>, RaggedSide<'a, T>)> {
        let side = |x: &'a ArrayD<T>, l: &Option<Vec<usize>>| -> Result<RaggedSide<'a, T>> {
            let x = ragged_paths(x)?;
            let l = l.clone().unwrap_or_else(|| vec![x.dim().1; x.dim().0]);
            Ok((x, l))
        };
        Ok((side(x1, &self.0)?, side(x2, &self.1)?))
    }
}

impl KernelLengths {
    /// Both sides' lengths, read from their files; `None` when neither side is ragged.
    fn read(&self) -> Result<Option<SideLengths>> {
        let read = |f: &Option<String>| f.as_deref().map(npy::read_lengths).transpose();
        let (l1, l2) = (read(&self.lengths)?, read(&self.lengths2)?);
        Ok((l1.is_some() || l2.is_some()).then_some(SideLengths(l1, l2)))
    }
}

impl Lengths {
    /// The lengths, read from their file if one was named.
    fn read(&self) -> Result<Option<Vec<usize>>> {
        self.lengths.as_deref().map(npy::read_lengths).transpose()
    }
}
