//! The public operations: thin generic functions over bodies compiled once per dtype, here.
//!
//! rustc shares generic instances between crates only without optimisation. Were the front-end
//! functions generic all the way down, every optimised dependent (a user's crate, each test binary,
//! each example) would compile its own copy of every kernel it reaches: minutes per crate. So each
//! function here converts its views to dynamic dimension and calls the body through a table of
//! function pointers, [`Ops`], built in this crate for `f32` and for `f64`; dependents link those
//! instances. The bodies (checks, device choice, drivers) live with their operation: `sig` in
//! `crate::sig`, `log_sig` in `crate::logsig`, and so on.

use crate::algebra::HornerScratch;
use crate::layout::TensorShape;
use crate::{LogSigMethod, Result, Scalar, SigKernelOptions, SigOptions};
use ndarray::{ArrayD, ArrayView, ArrayViewD, Dimension};
use std::any::Any;

type In<'a, T> = ArrayViewD<'a, T>;
type Out<T> = Result<ArrayD<T>>;
type Pair<T> = Result<(ArrayD<T>, ArrayD<T>)>;

/// One dtype's instances of the operations' bodies.
// Each field's type is its operation's signature, views made dynamic; naming them would hide that.
#[allow(clippy::type_complexity)]
pub struct Ops<T> {
    sig: fn(In<T>, usize, &SigOptions) -> Out<T>,
    sig_backprop: fn(In<T>, In<T>, In<T>, usize, &SigOptions) -> Out<T>,
    sig_corrected: fn(In<T>, In<T>, usize, &SigOptions) -> Out<T>,
    sig_corrected_backprop: fn(In<T>, In<T>, In<T>, In<T>, usize, &SigOptions) -> Out<T>,
    log_sig_corrected: fn(In<T>, In<T>, usize, LogSigMethod, &SigOptions) -> Out<T>,
    log_sig: fn(In<T>, usize, LogSigMethod, &SigOptions) -> Out<T>,
    sig_to_log_sig: fn(In<T>, usize, usize, LogSigMethod, &SigOptions) -> Out<T>,
    log_sig_backprop: fn(In<T>, In<T>, usize, LogSigMethod, &SigOptions) -> Out<T>,
    sig_to_log_sig_backprop: fn(In<T>, In<T>, usize, usize, LogSigMethod, &SigOptions) -> Out<T>,
    lyndon_to_words: fn(In<T>, usize, usize) -> Out<T>,
    log_sig_to_sig: fn(In<T>, usize, usize, LogSigMethod, &SigOptions) -> Out<T>,
    log_sig_to_sig_backprop: fn(In<T>, In<T>, usize, usize, LogSigMethod, &SigOptions) -> Out<T>,
    log_sig_combine: fn(In<T>, In<T>, usize, usize, &SigOptions) -> Out<T>,
    log_sig_combine_backprop: fn(In<T>, In<T>, In<T>, usize, usize, &SigOptions) -> Pair<T>,
    log_sig_join: fn(In<T>, In<T>, usize, usize, &SigOptions) -> Out<T>,
    log_sig_join_backprop: fn(In<T>, In<T>, In<T>, usize, usize, &SigOptions) -> Pair<T>,
    linear_log_sig: fn(In<T>, usize, usize, LogSigMethod, &SigOptions) -> Out<T>,
    linear_log_sig_backprop: fn(In<T>, In<T>, usize, usize, LogSigMethod, &SigOptions) -> Out<T>,
    sig_combine: fn(In<T>, In<T>, usize, usize, &SigOptions) -> Out<T>,
    sig_combine_backprop: fn(In<T>, In<T>, In<T>, usize, usize, &SigOptions) -> Pair<T>,
    sig_join: fn(In<T>, In<T>, usize, usize, bool, &SigOptions) -> Out<T>,
    sig_join_backprop: fn(In<T>, In<T>, In<T>, usize, usize, bool, &SigOptions) -> Pair<T>,
    linear_sig: fn(In<T>, usize, usize, &SigOptions) -> Out<T>,
    linear_sig_backprop: fn(In<T>, In<T>, usize, usize, &SigOptions) -> Out<T>,
    transform_path: fn(In<T>, &SigOptions) -> Out<T>,
    transform_path_backprop: fn(In<T>, &SigOptions) -> Out<T>,
    sig_kernel: fn(In<T>, In<T>, &SigKernelOptions) -> Out<T>,
    sig_kernel_backprop: fn(In<T>, In<T>, In<T>, &SigKernelOptions) -> Pair<T>,
    sig_kernel_gram: fn(In<T>, In<T>, &SigKernelOptions) -> Out<T>,
    sig_kernel_gram_sym: fn(In<T>, &SigKernelOptions) -> Out<T>,
    sig_kernel_gram_backprop: fn(In<T>, In<T>, In<T>, &SigKernelOptions) -> Pair<T>,
    sig_mmd: fn(In<T>, In<T>, &SigKernelOptions) -> Result<T>,
    sig_score: fn(In<T>, In<T>, f64, &SigKernelOptions) -> Out<T>,
    expected_sig_score: fn(In<T>, In<T>, f64, &SigKernelOptions) -> Result<T>,
    sig_mmd_backprop: fn(T, In<T>, In<T>, &SigKernelOptions) -> Pair<T>,
    sig_score_backprop: fn(In<T>, In<T>, In<T>, f64, &SigKernelOptions) -> Pair<T>,
    expected_sig_score_backprop: fn(T, In<T>, In<T>, f64, &SigKernelOptions) -> Pair<T>,
    sig_windows: fn(In<T>, usize, usize, usize, &SigOptions) -> Out<T>,
    sig_coef: fn(In<T>, &[Vec<usize>], bool, &SigOptions) -> Out<T>,
    sig_coef_backprop: fn(In<T>, &[Vec<usize>], In<T>, &SigOptions) -> Out<T>,
    /// The two kernels of [`crate::SigStream`], a generic type whose methods dependents instantiate.
    pub(crate) mul_exp: fn(&TensorShape, &mut [T], &[T], &mut HornerScratch<T>),
    pub(crate) tensor_mul: fn(&TensorShape, &[T], &[T], &mut [T]),
}

const fn table<T: Scalar>() -> Ops<T> {
    Ops {
        sig: crate::sig::sig,
        sig_backprop: crate::sig::sig_backprop,
        sig_corrected: crate::correction::sig_corrected,
        sig_corrected_backprop: crate::correction::sig_corrected_backprop,
        log_sig_corrected: crate::correction::log_sig_corrected,
        log_sig: crate::logsig::log_sig,
        sig_to_log_sig: crate::logsig::sig_to_log_sig,
        log_sig_backprop: crate::logsig::log_sig_backprop,
        sig_to_log_sig_backprop: crate::logsig::sig_to_log_sig_backprop,
        lyndon_to_words: crate::logsig::lyndon_to_words,
        log_sig_to_sig: crate::logsig::log_sig_to_sig,
        log_sig_to_sig_backprop: crate::logsig::log_sig_to_sig_backprop,
        log_sig_combine: crate::logsig::log_sig_combine,
        log_sig_combine_backprop: crate::logsig::log_sig_combine_backprop,
        log_sig_join: crate::logsig::log_sig_join,
        log_sig_join_backprop: crate::logsig::log_sig_join_backprop,
        linear_log_sig: crate::logsig::linear_log_sig,
        linear_log_sig_backprop: crate::logsig::linear_log_sig_backprop,
        sig_combine: crate::combine::sig_combine,
        sig_combine_backprop: crate::combine::sig_combine_backprop,
        sig_join: crate::combine::sig_join,
        sig_join_backprop: crate::combine::sig_join_backprop,
        linear_sig: crate::combine::linear_sig,
        linear_sig_backprop: crate::combine::linear_sig_backprop,
        transform_path: crate::transform::transform_path,
        transform_path_backprop: crate::transform::transform_path_backprop,
        sig_kernel: crate::sig_kernel::sig_kernel,
        sig_kernel_backprop: crate::sig_kernel::sig_kernel_backprop,
        sig_kernel_gram: crate::sig_kernel::sig_kernel_gram,
        sig_kernel_gram_sym: crate::sig_kernel::sig_kernel_gram_sym,
        sig_kernel_gram_backprop: crate::sig_kernel::sig_kernel_gram_backprop,
        sig_mmd: crate::sig_kernel::sig_mmd,
        sig_score: crate::sig_kernel::sig_score,
        expected_sig_score: crate::sig_kernel::expected_sig_score,
        sig_mmd_backprop: crate::sig_kernel::sig_mmd_backprop,
        sig_score_backprop: crate::sig_kernel::sig_score_backprop,
        expected_sig_score_backprop: crate::sig_kernel::expected_sig_score_backprop,
        sig_windows: crate::stream::sig_windows,
        sig_coef: crate::sig_coef::sig_coef,
        sig_coef_backprop: crate::sig_coef::sig_coef_backprop,
        mul_exp: crate::algebra::mul_exp,
        tensor_mul: crate::algebra::tensor_mul,
    }
}

static F32: Ops<f32> = table();
static F64: Ops<f64> = table();

/// The table of `T`'s instances.
pub(crate) fn ops<T: Scalar>() -> &'static Ops<T> {
    let f32: &dyn Any = &F32;
    let f64: &dyn Any = &F64;
    f32.downcast_ref()
        .or_else(|| f64.downcast_ref())
        .expect("Scalar is sealed: f32 and f64 only")
}

/// The truncated signature of degree `degree` of each path in `paths` (`(batch…, length, dim)`).
///
/// The output has shape `(batch…, sig_length)`. Time augmentation and lead-lag (from `options`) are
/// folded into the computation; the transformed path is never built. Paths of 0 or 1 point and degree 0
/// give the trivial signature.
///
/// ```
/// use roughsig::{ndarray::array, sig, SigOptions};
/// // Two paths of three points in the plane: (batch, length, dim).
/// let paths = array![[[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]], [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]];
/// let s = sig(paths.view(), 3, &SigOptions::default())?;
/// assert_eq!(s.shape(), &[2, 2 + 4 + 8]);
/// // Level 1 is the total increment.
/// assert_eq!(s[[0, 0]], 1.0);
/// assert_eq!(s[[0, 1]], 2.0);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig<T: Scalar, D: Dimension>(
    paths: ArrayView<'_, T, D>,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig)(paths.into_dyn(), degree, options)
}

/// [`sig`] with pySigLib's `correction`: each segment's signature is `exp(Δx + c₂ + … + c_m)`,
/// the segment's increment plus terms of levels `2..=m` (`m ≤ degree`) from a correction row.
///
/// A row holds those levels of the original `dim` channels end to end (`dim² + … + dim^m`
/// entries), level `k`'s index tuple `(i_1, …, i_k)` at `i_1·dim^{k−1} + … + i_k`; with time
/// augmentation the time channel gets no correction. `correction` is one row for every segment
/// (`(C,)`), one row per segment shared by the batch (`(length − 1, C)`), or one per segment and
/// path (`(batch…, length − 1, C)`); an empty array is no correction (the plain [`sig`]). Lead-lag
/// cannot be combined with a correction.
///
/// ```
/// use roughsig::{ndarray::array, sig_corrected, SigOptions};
/// // The Itô correction of a one-dimensional Brownian path sampled at steps of Δt = 0.5:
/// // c₂ = −½·Δt on every segment.
/// let path = array![[0.0f64], [0.3], [-0.1]];
/// let s = sig_corrected(path.view(), array![-0.25].view(), 2, &SigOptions::default())?;
/// // Level 2 is (Δx)²/2 for the whole path plus both segments' corrections: 0.005 − 0.5.
/// assert!((s[1] - (0.5 * 0.01 - 0.5)).abs() < 1e-12);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig_corrected<T: Scalar, D0: Dimension, D1: Dimension>(
    paths: ArrayView<'_, T, D0>,
    correction: ArrayView<'_, T, D1>,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_corrected)(paths.into_dyn(), correction.into_dyn(), degree, options)
}

/// The gradient with respect to `paths` of a scalar `F` of [`sig_corrected`]'s signatures, given
/// `sigs` and `sig_derivs = dF/dsigs` as in [`sig_backprop`]. The correction is a constant (no
/// gradient with respect to it, as in pySigLib). The CPU walks back from `sigs`; the GPU recomputes
/// the signatures' products instead, so `sigs` must be the signatures of these paths (it is
/// checked for shape and finiteness only).
pub fn sig_corrected_backprop<
    T: Scalar,
    D0: Dimension,
    D1: Dimension,
    D2: Dimension,
    D3: Dimension,
>(
    paths: ArrayView<'_, T, D0>,
    correction: ArrayView<'_, T, D1>,
    sigs: ArrayView<'_, T, D2>,
    sig_derivs: ArrayView<'_, T, D3>,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_corrected_backprop)(
        paths.into_dyn(),
        correction.into_dyn(),
        sigs.into_dyn(),
        sig_derivs.into_dyn(),
        degree,
        options,
    )
}

/// [`log_sig`] with a correction: the log-signature of [`sig_corrected`]'s signature, in the form
/// `method` asks for.
pub fn log_sig_corrected<T: Scalar, D0: Dimension, D1: Dimension>(
    paths: ArrayView<'_, T, D0>,
    correction: ArrayView<'_, T, D1>,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().log_sig_corrected)(
        paths.into_dyn(),
        correction.into_dyn(),
        degree,
        method,
        options,
    )
}

/// The signature coefficients of each path in `paths` (`(batch…, length, dim)`) at the chosen
/// `words` only, without the full signature: a word `(i_1, …, i_k)` of letters below the transformed
/// dimension (lead-lag doubles it, time augmentation adds the time as the last letter) costs
/// `O(length·k²)`, whatever the dimension. Output `(batch…, words.len())`, or with `prefixes` every
/// word's non-empty prefixes in turn, `(i_1)`, `(i_1, i_2)`, …, the word (`(batch…, Σ max(k, 1))`).
/// The empty word's coefficient is 1. Runs on the CPU or the GPU (one invocation per path and word,
/// small batches cut in time; words of up to 32 letters, longer ones on the CPU).
///
/// ```
/// use roughsig::{ndarray::array, sig, sig_coef, SigOptions};
/// let paths = array![[[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]]];
/// let opts = SigOptions::default();
/// let c = sig_coef(paths.view(), &[vec![1], vec![0, 1], vec![1, 0, 0]], false, &opts)?;
/// let s = sig(paths.view(), 3, &opts)?;
/// // Level 1 at offset 0, level 2 at 2 (word (0, 1): 2 + 1), level 3 at 6 (word (1, 0, 0): 6 + 4).
/// assert_eq!([c[[0, 0]], c[[0, 1]], c[[0, 2]]], [s[[0, 1]], s[[0, 3]], s[[0, 10]]]);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig_coef<T: Scalar, D: Dimension>(
    paths: ArrayView<'_, T, D>,
    words: &[Vec<usize>],
    prefixes: bool,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_coef)(paths.into_dyn(), words, prefixes, options)
}

/// The gradient of `F(sig_coef(paths, words))` with respect to the paths, given `derivs = dF/dcoef`:
/// `(batch…, words.len())` for the words' coefficients, or `(batch…, Σ max(k, 1))` for every
/// prefix's (the layout of [`sig_coef`] with `prefixes`). The exact adjoint of the coefficients'
/// recursion: on the CPU from states recomputed along the path, on the GPU from the inverse
/// segments (words of up to 32 letters). Output `(batch…, length, dim)`.
pub fn sig_coef_backprop<T: Scalar, D0: Dimension, D1: Dimension>(
    paths: ArrayView<'_, T, D0>,
    words: &[Vec<usize>],
    derivs: ArrayView<'_, T, D1>,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_coef_backprop)(paths.into_dyn(), words, derivs.into_dyn(), options)
}

/// The signatures of sliding windows over each path in `paths` (`(batch…, length, dim)`): windows
/// of `window` points ending at points `window − 1`, `window − 1 + stride`, …, each window's
/// signature that of its own points, transformed as `options` asks (so `sig` of the window's slice
/// of the path). Output: `(batch…, windows, sig_length)`.
///
/// Each path runs as a [`crate::SigWindowStream`]: a window costs `O(log window)` tensor products
/// of cached dyadic blocks, not `window` steps.
///
/// ```
/// use roughsig::{ndarray::Array2, sig_windows, SigOptions};
/// let path = Array2::from_shape_fn((100, 2), |(i, j)| ((i * (j + 1)) as f64 / 10.0).sin());
/// let w = sig_windows(path.view(), 3, 20, 5, &SigOptions::default())?;
/// assert_eq!(w.shape(), &[17, 2 + 4 + 8]); // windows ending at points 19, 24, …, 99
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig_windows<T: Scalar, D: Dimension>(
    paths: ArrayView<'_, T, D>,
    degree: usize,
    window: usize,
    stride: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_windows)(paths.into_dyn(), degree, window, stride, options)
}

/// The gradient of a scalar function `F` of the signatures with respect to the paths, given
/// `sigs = sig(paths)` and `sig_derivs = dF/dsigs`.
///
/// The reverse sweep recovers each prefix signature from `sigs` with `exp(-z)`: memory is one
/// signature per thread, whatever the length. `sigs` is used as given (not recomputed), as in
/// pySigLib, so a wrong `sigs` gives a wrong gradient. Whether `sigs` carries the scalar term is
/// inferred from its length; `sig_derivs` must have the same length, and the scalar term's
/// derivative is ignored. `options.scalar_term` is not used.
///
/// ```
/// use roughsig::{ndarray::array, sig, sig_backprop, SigOptions};
/// let path = array![[0.0], [2.0], [3.0]];
/// let opts = SigOptions::default();
/// // Degree 1: the signature is the increment x_last − x_first, so dF/dpath for F = S is
/// // −1 at the first point, +1 at the last and 0 between.
/// let s = sig(path.view(), 1, &opts)?;
/// let grad = sig_backprop(path.view(), s.view(), array![1.0].view(), 1, &opts)?;
/// assert_eq!(grad.as_slice().unwrap(), &[-1.0, 0.0, 1.0]);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig_backprop<T: Scalar, D1: Dimension, D2: Dimension, D3: Dimension>(
    paths: ArrayView<'_, T, D1>,
    sigs: ArrayView<'_, T, D2>,
    sig_derivs: ArrayView<'_, T, D3>,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_backprop)(
        paths.into_dyn(),
        sigs.into_dyn(),
        sig_derivs.into_dyn(),
        degree,
        options,
    )
}

/// The log-signatures of degree `degree` of `paths` (`(batch…, length, dim)`), in the form `method`.
///
/// The signature is computed with the options' time augmentation and lead-lag, then its logarithm is
/// taken. Output: `(batch…, sig_length)` for `Expanded` (with `options.scalar_term`, a leading 0: the
/// log of a signature has no level 0), `(batch…, log_sig_length)` for `Words` and `Lyndon`, which
/// have no scalar term and ignore `options.scalar_term` (as pySigLib does). Degree 0 is an error.
///
/// On a GPU (`Device::Gpu`, or `Device::Auto` for large work on a hardware GPU) the signature, its
/// logarithm and (`Lyndon`) the bracket basis' triangular solve run in one submission, and only the
/// log-signatures are read back.
///
/// ```
/// use roughsig::{ndarray::array, log_sig, LogSigMethod, SigOptions};
/// // A straight line's log-signature is its increment: the level-2 word (1, 2) is 0.
/// let path = array![[0.0, 0.0], [1.0, 2.0]];
/// let l = log_sig(path.view(), 2, LogSigMethod::Words, &SigOptions::default())?;
/// assert_eq!(l.as_slice().unwrap(), &[1.0, 2.0, 0.0]);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn log_sig<T: Scalar, D: Dimension>(
    paths: ArrayView<'_, T, D>,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().log_sig)(paths.into_dyn(), degree, method, options)
}

/// The log-signatures of signatures `sigs` (`(batch…, sig_length)`) of `dimension`-channel paths
/// (before the transforms in `options`, which widen the alphabet as in [`crate::sig_combine`]).
///
/// Whether `sigs` carries the scalar term is inferred from its length; the term is taken to be 1. The
/// `Expanded` output keeps the input's layout (a leading 0 where the input has its scalar term);
/// `Words` and `Lyndon` give `(batch…, log_sig_length)`. `options.scalar_term` is not used.
///
/// On a GPU (as for [`log_sig`]) the signatures are uploaded and their logarithm runs there.
pub fn sig_to_log_sig<T: Scalar, D: Dimension>(
    sigs: ArrayView<'_, T, D>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_to_log_sig)(sigs.into_dyn(), dimension, degree, method, options)
}

/// The gradient of a scalar `F(log_sig(paths))` with respect to `paths`, given
/// `log_sig_derivs = dF/dlog_sig` (shaped like [`log_sig`]'s output for the same method and options;
/// with `Expanded` and `scalar_term`, the leading entry's derivative is ignored).
///
/// The signature is recomputed here (one forward pass), then the gradient goes back through the
/// logarithm ([`sig_to_log_sig_backprop`]) and the signature ([`crate::sig_backprop`]).
pub fn log_sig_backprop<T: Scalar, D1: Dimension, D2: Dimension>(
    paths: ArrayView<'_, T, D1>,
    log_sig_derivs: ArrayView<'_, T, D2>,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().log_sig_backprop)(
        paths.into_dyn(),
        log_sig_derivs.into_dyn(),
        degree,
        method,
        options,
    )
}

/// The gradient of a scalar `F(sig_to_log_sig(sigs))` with respect to `sigs`, given
/// `log_sig_derivs = dF/dlog_sig` (shaped like [`sig_to_log_sig`]'s output). The output has `sigs`'
/// shape; the scalar term's derivative (if `sigs` has one) is 0, since the term is taken to be 1.
pub fn sig_to_log_sig_backprop<T: Scalar, D1: Dimension, D2: Dimension>(
    sigs: ArrayView<'_, T, D1>,
    log_sig_derivs: ArrayView<'_, T, D2>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_to_log_sig_backprop)(
        sigs.into_dyn(),
        log_sig_derivs.into_dyn(),
        dimension,
        degree,
        method,
        options,
    )
}

/// The linear map from `Lyndon` coordinates to `Words` coefficients (the bracket expansions read at
/// the Lyndon words), for tests and for callers that want to move between the two forms.
///
/// `coords` has shape `(batch…, log_sig_length)` over `dimension` letters (after any transforms).
pub fn lyndon_to_words<T: Scalar, D: Dimension>(
    coords: ArrayView<'_, T, D>,
    dimension: usize,
    degree: usize,
) -> Result<ArrayD<T>> {
    (ops::<T>().lyndon_to_words)(coords.into_dyn(), dimension, degree)
}

/// Signatures from log-signatures `log_sigs` of `dimension`-channel paths (before the transforms
/// in `options`, which widen the alphabet as in [`sig_to_log_sig`]): the truncated tensor
/// exponential, the inverse of [`sig_to_log_sig`] for each `method`.
///
/// `Expanded` input has the signature's layout, its scalar term inferred from the length (its value
/// is ignored), and the output keeps that layout (the scalar term 1). `Words` and `Lyndon` input is
/// `(batch…, log_sig_length)`; the output has the scalar term where `options.scalar_term` asks.
///
/// ```
/// use roughsig::{log_sig, log_sig_to_sig, ndarray::array, sig, LogSigMethod, SigOptions};
/// let paths = array![[[0.0f64, 0.0], [0.4, 0.1], [0.5, 0.7]]];
/// let opts = SigOptions::default();
/// let l = log_sig(paths.view(), 4, LogSigMethod::Lyndon, &opts)?;
/// let s = log_sig_to_sig(l.view(), 2, 4, LogSigMethod::Lyndon, &opts)?;
/// let direct = sig(paths.view(), 4, &opts)?;
/// assert!(s.iter().zip(&direct).all(|(a, b)| (a - b).abs() < 1e-14));
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn log_sig_to_sig<T: Scalar, D: Dimension>(
    log_sigs: ArrayView<'_, T, D>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().log_sig_to_sig)(log_sigs.into_dyn(), dimension, degree, method, options)
}

/// The gradient of a scalar `F(log_sig_to_sig(log_sigs))` with respect to `log_sigs`, given
/// `sig_derivs = dF/dsig` (shaped like [`log_sig_to_sig`]'s output; a scalar term's derivative is
/// ignored). The output has `log_sigs`' shape (an `Expanded` input's scalar slot gets 0).
pub fn log_sig_to_sig_backprop<T: Scalar, D1: Dimension, D2: Dimension>(
    log_sigs: ArrayView<'_, T, D1>,
    sig_derivs: ArrayView<'_, T, D2>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().log_sig_to_sig_backprop)(
        log_sigs.into_dyn(),
        sig_derivs.into_dyn(),
        dimension,
        degree,
        method,
        options,
    )
}

/// `sig1 ⊗ sig2` in the truncated tensor algebra: the signature of the concatenation of the two paths.
///
/// `dimension` is the original path dimension; `options.time_aug` / `options.lead_lag` widen it as
/// they widened the signatures. The scalar term is inferred from the length (both inputs must agree)
/// and kept in the output.
///
/// ```
/// use roughsig::{ndarray::{array, s}, sig, sig_combine, SigOptions};
/// let opts = SigOptions::default();
/// let path = array![[0.0f64, 0.0], [1.0, 0.5], [0.0, 2.0]];
/// // Chen's identity: the signature of the whole path is the product of its two pieces'.
/// let first = sig(path.slice(s![..2, ..]), 3, &opts)?;
/// let second = sig(path.slice(s![1.., ..]), 3, &opts)?;
/// let whole = sig_combine(first.view(), second.view(), 2, 3, &opts)?;
/// let direct = sig(path.view(), 3, &opts)?;
/// assert!(whole.iter().zip(&direct).all(|(a, b)| (a - b).abs() < 1e-12));
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig_combine<T: Scalar, D1: Dimension, D2: Dimension>(
    sig1: ArrayView<'_, T, D1>,
    sig2: ArrayView<'_, T, D2>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_combine)(sig1.into_dyn(), sig2.into_dyn(), dimension, degree, options)
}

/// Gradients of [`sig_combine`] with respect to `sig1` and `sig2`, given `deriv = dF/d(sig1 ⊗ sig2)`.
/// The scalar terms are constants: their derivatives are 0.
pub fn sig_combine_backprop<T: Scalar, D1: Dimension, D2: Dimension, D3: Dimension>(
    deriv: ArrayView<'_, T, D1>,
    sig1: ArrayView<'_, T, D2>,
    sig2: ArrayView<'_, T, D3>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    (ops::<T>().sig_combine_backprop)(
        deriv.into_dyn(),
        sig1.into_dyn(),
        sig2.into_dyn(),
        dimension,
        degree,
        options,
    )
}

/// `sig ⊗ exp(v)` (append the straight segment `v`) or, with `prepend`, `exp(v) ⊗ sig`.
///
/// `displacement` has shape `(batch…, dimension)`; the scalar term is inferred from `sig`'s length.
pub fn sig_join<T: Scalar, D1: Dimension, D2: Dimension>(
    sigs: ArrayView<'_, T, D1>,
    displacement: ArrayView<'_, T, D2>,
    dimension: usize,
    degree: usize,
    prepend: bool,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_join)(
        sigs.into_dyn(),
        displacement.into_dyn(),
        dimension,
        degree,
        prepend,
        options,
    )
}

/// Gradients of [`sig_join`] with respect to `sig` and `displacement`, given `deriv = dF/d(joined)`.
pub fn sig_join_backprop<T: Scalar, D1: Dimension, D2: Dimension, D3: Dimension>(
    deriv: ArrayView<'_, T, D1>,
    sigs: ArrayView<'_, T, D2>,
    displacement: ArrayView<'_, T, D3>,
    dimension: usize,
    degree: usize,
    prepend: bool,
    options: &SigOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    (ops::<T>().sig_join_backprop)(
        deriv.into_dyn(),
        sigs.into_dyn(),
        displacement.into_dyn(),
        dimension,
        degree,
        prepend,
        options,
    )
}

/// The signature of the straight segment from 0 to each displacement in `displacement`
/// (`(batch…, dimension)`): `(1, v, v⊗v/2!, …, v^⊗N/N!)`, the 1 only where `options.scalar_term`
/// asks. The same as [`sig_join`] of a constant path's signature; `options`' path transforms do not
/// apply (there is no path).
///
/// ```
/// use roughsig::{linear_sig, ndarray::array, sig, SigOptions};
/// let opts = SigOptions::default();
/// let v = array![[0.5, -1.0]];
/// let segment = array![[[0.0, 0.0], [0.5, -1.0]]];
/// assert_eq!(linear_sig(v.view(), 2, 3, &opts)?, sig(segment.view(), 3, &opts)?);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn linear_sig<T: Scalar, D: Dimension>(
    displacement: ArrayView<'_, T, D>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().linear_sig)(displacement.into_dyn(), dimension, degree, options)
}

/// The gradient of [`linear_sig`] with respect to `displacement`, given `deriv = dF/dsig`.
pub fn linear_sig_backprop<T: Scalar, D1: Dimension, D2: Dimension>(
    deriv: ArrayView<'_, T, D1>,
    displacement: ArrayView<'_, T, D2>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let (deriv, displacement) = (deriv.into_dyn(), displacement.into_dyn());
    (ops::<T>().linear_sig_backprop)(deriv, displacement, dimension, degree, options)
}

/// The log-signature of the straight segment from 0 to each displacement in `displacement`
/// (`(batch…, dimension)`) in the form `method`: the displacement at the letters, 0 above (a leading
/// 0 for `Expanded` where `options.scalar_term` asks). `options`' path transforms do not apply.
pub fn linear_log_sig<T: Scalar, D: Dimension>(
    displacement: ArrayView<'_, T, D>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let displacement = displacement.into_dyn();
    (ops::<T>().linear_log_sig)(displacement, dimension, degree, method, options)
}

/// The gradient of [`linear_log_sig`] with respect to `displacement`, given `deriv = dF/dlog_sig`.
pub fn linear_log_sig_backprop<T: Scalar, D1: Dimension, D2: Dimension>(
    deriv: ArrayView<'_, T, D1>,
    displacement: ArrayView<'_, T, D2>,
    dimension: usize,
    degree: usize,
    method: LogSigMethod,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let (deriv, displacement) = (deriv.into_dyn(), displacement.into_dyn());
    (ops::<T>().linear_log_sig_backprop)(deriv, displacement, dimension, degree, method, options)
}

/// The log-signature of the concatenation of two paths from theirs, `log_sig1` and `log_sig2`
/// (`(batch…, log_sig_length)`, [`LogSigMethod::Lyndon`] coordinates of `dimension`-channel paths
/// before the transforms in `options`): the Baker–Campbell–Hausdorff product
/// `log(exp(ℓ₁) ⊗ exp(ℓ₂))`, exact to the degree.
///
/// ```
/// use roughsig::{log_sig, log_sig_combine, ndarray::array, LogSigMethod, SigOptions};
/// let opts = SigOptions::default();
/// let first = array![[[0.0, 0.0], [0.4, 0.1], [0.5, 0.7]]];
/// let second = array![[[0.5, 0.7], [0.9, 0.2]]];
/// let whole = array![[[0.0, 0.0], [0.4, 0.1], [0.5, 0.7], [0.9, 0.2]]];
/// let l = |p: &ndarray::Array3<f64>| log_sig(p.view(), 4, LogSigMethod::Lyndon, &opts);
/// let combined = log_sig_combine(l(&first)?.view(), l(&second)?.view(), 2, 4, &opts)?;
/// let direct = l(&whole)?;
/// assert!(combined.iter().zip(&direct).all(|(a, b)| (a - b).abs() < 1e-14));
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn log_sig_combine<T: Scalar, D1: Dimension, D2: Dimension>(
    log_sig1: ArrayView<'_, T, D1>,
    log_sig2: ArrayView<'_, T, D2>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let (a, b) = (log_sig1.into_dyn(), log_sig2.into_dyn());
    (ops::<T>().log_sig_combine)(a, b, dimension, degree, options)
}

/// Gradients of [`log_sig_combine`] with respect to `log_sig1` and `log_sig2`, given
/// `deriv = dF/d(combined)`.
pub fn log_sig_combine_backprop<T: Scalar, D1: Dimension, D2: Dimension, D3: Dimension>(
    deriv: ArrayView<'_, T, D1>,
    log_sig1: ArrayView<'_, T, D2>,
    log_sig2: ArrayView<'_, T, D3>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let (g, a, b) = (deriv.into_dyn(), log_sig1.into_dyn(), log_sig2.into_dyn());
    (ops::<T>().log_sig_combine_backprop)(g, a, b, dimension, degree, options)
}

/// Each log-signature in `log_sigs` ([`LogSigMethod::Lyndon`] coordinates over `dimension` letters)
/// extended by the straight segment `displacement` (`(batch…, dimension)`): [`log_sig_combine`]
/// with [`linear_log_sig`]. `options`' path transforms do not apply.
pub fn log_sig_join<T: Scalar, D1: Dimension, D2: Dimension>(
    log_sigs: ArrayView<'_, T, D1>,
    displacement: ArrayView<'_, T, D2>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    let (l, v) = (log_sigs.into_dyn(), displacement.into_dyn());
    (ops::<T>().log_sig_join)(l, v, dimension, degree, options)
}

/// Gradients of [`log_sig_join`] with respect to `log_sigs` and `displacement`, given
/// `deriv = dF/d(joined)`.
pub fn log_sig_join_backprop<T: Scalar, D1: Dimension, D2: Dimension, D3: Dimension>(
    deriv: ArrayView<'_, T, D1>,
    log_sigs: ArrayView<'_, T, D2>,
    displacement: ArrayView<'_, T, D3>,
    dimension: usize,
    degree: usize,
    options: &SigOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let (g, l, v) = (
        deriv.into_dyn(),
        log_sigs.into_dyn(),
        displacement.into_dyn(),
    );
    (ops::<T>().log_sig_join_backprop)(g, l, v, dimension, degree, options)
}

/// The path after lead-lag (length `2L-1`, channels lag then lead) and time augmentation (time last,
/// from 0 to `end_time`). Shape `(batch…, L', d')`.
///
/// ```
/// use roughsig::{ndarray::array, transform_path, SigOptions};
/// let path = array![[1.0], [3.0]];
/// let opts = SigOptions::default().time_aug(true).lead_lag(true);
/// let t = transform_path(path.view(), &opts)?;
/// // Points (lag, lead, time): the lead moves first, then the lag catches up.
/// assert_eq!(t.as_slice().unwrap(), &[1.0, 1.0, 0.0, 1.0, 3.0, 0.5, 3.0, 3.0, 1.0]);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn transform_path<T: Scalar, D: Dimension>(
    paths: ArrayView<'_, T, D>,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().transform_path)(paths.into_dyn(), options)
}

/// The gradient with respect to the original path, given `derivs` of the transformed path's shape
/// `(batch…, L', d')`. The time channel's gradient is dropped.
pub fn transform_path_backprop<T: Scalar, D: Dimension>(
    derivs: ArrayView<'_, T, D>,
    options: &SigOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().transform_path_backprop)(derivs.into_dyn(), options)
}

/// The signature kernels of paired paths `x` `(batch…, L1, d)` and `y` `(batch…, L2, d)`.
///
/// Output: the batch shape (a 0-d array for single paths), or with `return_grid` the whole PDE grid
/// `(batch…, (n1 << λ1) + 1, (n2 << λ2) + 1)`, `n` being the number of increments after the transforms
/// (`L − 1`, or `2(L − 1)` with lead-lag). A path of one point has the trivial signature: kernel 1
/// (also with time augmentation, where pySigLib raises).
///
/// Device: `Device::Gpu` (and `Device::Auto` for large work on a hardware GPU) computes the base
/// Gram matrices and solves the PDE on the GPU, normalised or not, or with `return_grid` returns the
/// whole grid from there.
///
/// Errors: mismatched batch shapes or dimensions, a path of no points, NaN or infinity in the paths,
/// and [`Error::KernelOverflow`](crate::Error::KernelOverflow) when the result overflows (pySigLib only warns).
///
/// ```
/// use roughsig::{ndarray::array, sig_kernel, SigKernelOptions};
/// let opts = SigKernelOptions::default().dyadic_order(2);
/// // A batch of two pairs; a constant path has the trivial signature, so its kernel is 1.
/// let x = array![[[0.0f64, 0.0], [0.3, 0.1], [0.5, 0.4]], [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]];
/// let y = array![[[0.0, 0.2], [0.4, 0.1], [0.2, 0.6]], [[0.0, 0.0], [0.2, 0.3], [0.1, 0.9]]];
/// let k = sig_kernel(x.view(), y.view(), &opts)?;
/// assert_eq!(k.shape(), &[2]);
/// assert!((k[1] - 1.0).abs() < 1e-12);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig_kernel<T: Scalar, D1: Dimension, D2: Dimension>(
    x: ArrayView<'_, T, D1>,
    y: ArrayView<'_, T, D2>,
    options: &SigKernelOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_kernel)(x.into_dyn(), y.into_dyn(), options)
}

/// The gradients `(dF/dx, dF/dy)` of a scalar `F` of `sig_kernel(x, y)`, given `derivs = dF/dk` of
/// the batch shape (or, with `return_grid`, of the grid's shape). The exact adjoint of the discrete
/// scheme, so it matches finite differences of [`sig_kernel`] to rounding.
///
/// Shapes follow the inputs: an unbatched `(L, d)` path gets an `(L, d)` gradient (pySigLib returns
/// `(1, L, d)` there). Time channels have no path point and get no gradient.
///
/// Device: as [`sig_kernel`]. On the GPU each pair's refined grid is held in one buffer where it
/// fits the adapter's largest, else in blocks of rows rebuilt from checkpoint rows, as on the CPU;
/// `derivs` of the grid's shape (`return_grid`) seed the reverse sweep on the device too.
pub fn sig_kernel_backprop<T: Scalar, D0: Dimension, D1: Dimension, D2: Dimension>(
    derivs: ArrayView<'_, T, D0>,
    x: ArrayView<'_, T, D1>,
    y: ArrayView<'_, T, D2>,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    (ops::<T>().sig_kernel_backprop)(derivs.into_dyn(), x.into_dyn(), y.into_dyn(), options)
}

/// The Gram matrix `k(x_i, y_j)` of all pairs of `xs` `(batch1…, L1, d)` and `ys` `(batch2…, L2, d)`,
/// of shape `(batch1…, batch2…)`.
///
/// When `xs` and `ys` are the same array (the same view of the same memory), only one triangle is
/// computed and mirrored, which makes the result exactly symmetric; see [`sig_kernel_gram_sym`].
/// Memory: the output plus one workspace per thread. `return_grid` is not supported here. Device: as
/// [`sig_kernel`] (on the GPU, pairs are solved in chunks).
///
/// ```
/// use roughsig::{ndarray::{array, s}, sig_kernel, sig_kernel_gram, SigKernelOptions, StaticKernel};
/// let opts = SigKernelOptions::default().static_kernel(StaticKernel::Rbf { sigma: 0.5 });
/// let xs = array![[[0.0f64, 0.0], [0.3, 0.1]], [[0.1, 0.0], [0.2, 0.5]], [[0.0, 0.4], [0.3, 0.3]]];
/// let ys = array![[[0.2, 0.0], [0.1, 0.1]], [[0.0, 0.3], [0.4, 0.2]]];
/// let gram = sig_kernel_gram(xs.view(), ys.view(), &opts)?;
/// assert_eq!(gram.shape(), &[3, 2]);
/// // Entry (i, j) is the kernel of the pair (xs[i], ys[j]).
/// let k = sig_kernel(xs.slice(s![2, .., ..]), ys.slice(s![1, .., ..]), &opts)?;
/// assert!((gram[[2, 1]] - k[[]]).abs() < 1e-12);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn sig_kernel_gram<T: Scalar, D1: Dimension, D2: Dimension>(
    xs: ArrayView<'_, T, D1>,
    ys: ArrayView<'_, T, D2>,
    options: &SigKernelOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_kernel_gram)(xs.into_dyn(), ys.into_dyn(), options)
}

/// The squared maximum mean discrepancy between the samples `sample1` `(batch1…, L1, d)` and
/// `sample2` `(batch2…, L2, d)` under the signature kernel, by the unbiased estimator
/// `Σ_{i≠j} k(x_i, x_j)/(m(m−1)) − 2 Σ k(x_i, y_j)/(mn) + Σ_{i≠j} k(y_i, y_j)/(n(n−1))` (pySigLib's;
/// each sample needs at least two paths). The Gram matrices are reduced in tiles, never held whole.
pub fn sig_mmd<T: Scalar, D1: Dimension, D2: Dimension>(
    sample1: ArrayView<'_, T, D1>,
    sample2: ArrayView<'_, T, D2>,
    options: &SigKernelOptions,
) -> Result<T> {
    (ops::<T>().sig_mmd)(sample1.into_dyn(), sample2.into_dyn(), options)
}

/// The signature kernel score of the sample `sample` `(batch…, L1, d)` at each path of `ys`
/// `(batch2…, L2, d)`: `λ Σ_{i≠j} k(x_i, x_j)/(m(m−1)) − 2 Σ_i k(x_i, y)/m` (pySigLib's unbiased
/// estimator, `lam` = λ), shaped as `ys`' batch axes.
pub fn sig_score<T: Scalar, D1: Dimension, D2: Dimension>(
    sample: ArrayView<'_, T, D1>,
    ys: ArrayView<'_, T, D2>,
    lam: f64,
    options: &SigKernelOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_score)(sample.into_dyn(), ys.into_dyn(), lam, options)
}

/// The mean of [`sig_score`] of `sample1` over the paths of `sample2`.
pub fn expected_sig_score<T: Scalar, D1: Dimension, D2: Dimension>(
    sample1: ArrayView<'_, T, D1>,
    sample2: ArrayView<'_, T, D2>,
    lam: f64,
    options: &SigKernelOptions,
) -> Result<T> {
    (ops::<T>().expected_sig_score)(sample1.into_dyn(), sample2.into_dyn(), lam, options)
}

/// The gradients `(dF/dsample1, dF/dsample2)` of `F = deriv · sig_mmd(sample1, sample2)`, each
/// shaped as its sample: the Gram matrices' backward pass over the same tiles as [`sig_mmd`].
pub fn sig_mmd_backprop<T: Scalar, D1: Dimension, D2: Dimension>(
    deriv: T,
    sample1: ArrayView<'_, T, D1>,
    sample2: ArrayView<'_, T, D2>,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    (ops::<T>().sig_mmd_backprop)(deriv, sample1.into_dyn(), sample2.into_dyn(), options)
}

/// The gradients `(dF/dsample, dF/dys)` of `F = Σ_j derivs_j · sig_score(sample, ys)_j`, `derivs`
/// shaped as [`sig_score`]'s output.
pub fn sig_score_backprop<T: Scalar, D0: Dimension, D1: Dimension, D2: Dimension>(
    derivs: ArrayView<'_, T, D0>,
    sample: ArrayView<'_, T, D1>,
    ys: ArrayView<'_, T, D2>,
    lam: f64,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    (ops::<T>().sig_score_backprop)(
        derivs.into_dyn(),
        sample.into_dyn(),
        ys.into_dyn(),
        lam,
        options,
    )
}

/// The gradients `(dF/dsample1, dF/dsample2)` of `F = deriv · expected_sig_score(sample1, sample2)`.
pub fn expected_sig_score_backprop<T: Scalar, D1: Dimension, D2: Dimension>(
    deriv: T,
    sample1: ArrayView<'_, T, D1>,
    sample2: ArrayView<'_, T, D2>,
    lam: f64,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let (x, y) = (sample1.into_dyn(), sample2.into_dyn());
    (ops::<T>().expected_sig_score_backprop)(deriv, x, y, lam, options)
}

/// The symmetric Gram matrix `k(x_i, x_j)` of `xs` `(batch…, L, d)`: one triangle is computed (when
/// both dyadic orders are equal; otherwise `k(x_i, x_j) ≠ k(x_j, x_i)` in general and all pairs are).
pub fn sig_kernel_gram_sym<T: Scalar, D: Dimension>(
    xs: ArrayView<'_, T, D>,
    options: &SigKernelOptions,
) -> Result<ArrayD<T>> {
    (ops::<T>().sig_kernel_gram_sym)(xs.into_dyn(), options)
}

/// The gradients `(dF/dxs, dF/dys)` of a scalar `F` of `sig_kernel_gram(xs, ys)`, given
/// `derivs = dF/dGram` of the Gram matrix's shape. `xs` and `ys` are treated as separate inputs even
/// when they are the same array (add the two gradients for `F(gram(xs, xs))`).
///
/// Each worker accumulates into its own copy of the gradients (a few per thread), so summation order,
/// and hence the last bits, may vary between runs with more than one thread.
pub fn sig_kernel_gram_backprop<T: Scalar, D0: Dimension, D1: Dimension, D2: Dimension>(
    derivs: ArrayView<'_, T, D0>,
    xs: ArrayView<'_, T, D1>,
    ys: ArrayView<'_, T, D2>,
    options: &SigKernelOptions,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    (ops::<T>().sig_kernel_gram_backprop)(derivs.into_dyn(), xs.into_dyn(), ys.into_dyn(), options)
}
