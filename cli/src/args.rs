//! The command line, as clap derive structs.

use clap::{Args, Parser, Subcommand, ValueEnum};
use roughsig::{Device, Execution, LogSigMethod, PathTransform, StaticKernel};

#[derive(Parser, Debug)]
#[command(
    name = "roughsig",
    version,
    about = "Path signatures and their gradients (pySigLib semantics) on .npy files"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Truncated signatures of a batch of paths (batch…, length, dim).
    Sig {
        /// Paths, shape (batch…, length, dim).
        path: String,
        #[arg(long, value_name = "N", value_parser = non_negative, allow_negative_numbers = true)]
        degree: usize,
        #[command(flatten)]
        transform: Transform,
        /// Prepend the level-0 term (the constant 1).
        #[arg(long)]
        scalar_term: bool,
        #[command(flatten)]
        lengths: Lengths,
        #[command(flatten)]
        correction: Correction,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradient of F(sig(path)) with respect to the path, given sig and dF/dsig.
    SigBackprop {
        path: String,
        sig: String,
        sig_derivs: String,
        #[arg(long, value_name = "N", value_parser = non_negative, allow_negative_numbers = true)]
        degree: usize,
        #[command(flatten)]
        lengths: Lengths,
        #[command(flatten)]
        correction: Correction,
        #[command(flatten)]
        transform: Transform,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The path after lead-lag and time augmentation.
    TransformPath {
        path: String,
        #[command(flatten)]
        transform: Transform,
        #[command(flatten)]
        lengths: Lengths,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradient with respect to the original path, given derivatives for the transformed path.
    TransformPathBackprop {
        derivs: String,
        #[command(flatten)]
        transform: Transform,
        #[command(flatten)]
        lengths: Lengths,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Chen's product sig1 ⊗ sig2.
    SigCombine {
        sig1: String,
        sig2: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        flags: Flags,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradients of sig-combine with respect to sig1 and sig2.
    SigCombineBackprop {
        deriv: String,
        sig1: String,
        sig2: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        flags: Flags,
        #[command(flatten)]
        out: Output2,
        #[command(flatten)]
        common: Common,
    },
    /// Append (or prepend) one straight segment to signatures.
    SigJoin {
        sig: String,
        displacement: String,
        #[command(flatten)]
        size: Size,
        /// exp(displacement) ⊗ sig instead of sig ⊗ exp(displacement).
        #[arg(long)]
        prepend: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradients of sig-join with respect to sig and displacement.
    SigJoinBackprop {
        deriv: String,
        sig: String,
        displacement: String,
        #[command(flatten)]
        size: Size,
        #[arg(long)]
        prepend: bool,
        #[command(flatten)]
        out: Output2,
        #[command(flatten)]
        common: Common,
    },
    /// The straight segments' signatures (1, v, v⊗v/2!, …) from displacements (batch…, dim).
    LinearSig {
        displacement: String,
        #[command(flatten)]
        size: Size,
        /// Prepend the level-0 term 1.
        #[arg(long)]
        scalar_term: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The gradient of linear-sig with respect to the displacements.
    LinearSigBackprop {
        deriv: String,
        displacement: String,
        #[command(flatten)]
        size: Size,
        #[arg(long)]
        scalar_term: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The straight segments' log-signatures from displacements (batch…, dim), in any form.
    LinearLogSig {
        displacement: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        method: Method,
        /// With --method expanded, a leading 0 for the level-0 term.
        #[arg(long)]
        scalar_term: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The gradient of linear-log-sig with respect to the displacements.
    LinearLogSigBackprop {
        deriv: String,
        displacement: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        method: Method,
        #[arg(long)]
        scalar_term: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The log-signature of concatenated paths from theirs (Lyndon coordinates, --method lyndon's
    /// form): the Baker–Campbell–Hausdorff product.
    LogSigCombine {
        log_sig1: String,
        log_sig2: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        flags: Flags,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradients of log-sig-combine with respect to log_sig1 and log_sig2.
    LogSigCombineBackprop {
        deriv: String,
        log_sig1: String,
        log_sig2: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        flags: Flags,
        #[command(flatten)]
        out: Output2,
        #[command(flatten)]
        common: Common,
    },
    /// Extend log-signatures (Lyndon coordinates) by one straight segment each.
    LogSigJoin {
        log_sig: String,
        displacement: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradients of log-sig-join with respect to log_sig and displacement.
    LogSigJoinBackprop {
        deriv: String,
        log_sig: String,
        displacement: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        out: Output2,
        #[command(flatten)]
        common: Common,
    },
    /// Signature kernels k(path1_i, path2_i) of paired batches (batch…, L1, d) and (batch…, L2, d).
    SigKernel {
        path1: String,
        path2: String,
        #[command(flatten)]
        kernel: KernelArgs,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradients of F(sig-kernel(path1, path2)) with respect to both paths, given dF/dk.
    SigKernelBackprop {
        derivs: String,
        path1: String,
        path2: String,
        #[command(flatten)]
        kernel: KernelArgs,
        #[command(flatten)]
        out: Output2,
        #[command(flatten)]
        common: Common,
    },
    /// The Gram matrix k(paths1_i, paths2_j) of all pairs, shape (batch1…, batch2…).
    SigKernelGram {
        paths1: String,
        paths2: String,
        #[command(flatten)]
        kernel: KernelArgs,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradients of F(sig-kernel-gram(paths1, paths2)) with respect to both batches, given dF/dGram
    /// (the Gram matrix's shape); the same file twice still gives two gradients (add them for
    /// F(gram(x, x))).
    SigKernelGramBackprop {
        derivs: String,
        paths1: String,
        paths2: String,
        #[command(flatten)]
        kernel: KernelArgs,
        #[command(flatten)]
        out: Output2,
        #[command(flatten)]
        common: Common,
    },
    /// The squared MMD between two samples of paths (batch…, length, dim) under the signature
    /// kernel (the unbiased estimator; a 0-d array).
    SigMmd {
        sample1: String,
        sample2: String,
        #[command(flatten)]
        kernel: MetricKernel,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The signature kernel score of a sample at each path of Y (shaped as Y's batch axes).
    SigScore {
        sample: String,
        y: String,
        /// The weight of the sample's own term.
        #[arg(long, default_value = "1.0", allow_negative_numbers = true)]
        lam: f64,
        #[command(flatten)]
        kernel: MetricKernel,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The mean signature kernel score of sample 1 over the paths of sample 2 (shape (1,), as
    /// pySigLib's).
    ExpectedSigScore {
        sample1: String,
        sample2: String,
        /// The weight of sample 1's own term.
        #[arg(long, default_value = "1.0", allow_negative_numbers = true)]
        lam: f64,
        #[command(flatten)]
        kernel: MetricKernel,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradients of F = deriv · sig-mmd(sample1, sample2) with respect to both samples; DERIV holds
    /// one value (a 0-d array or shape (1,)).
    SigMmdBackprop {
        deriv: String,
        sample1: String,
        sample2: String,
        #[command(flatten)]
        kernel: MetricKernel,
        #[command(flatten)]
        out: Output2,
        #[command(flatten)]
        common: Common,
    },
    /// Gradients of F = Σ derivs · sig-score(sample, y) with respect to the sample and Y, given
    /// derivs shaped as sig-score's output.
    SigScoreBackprop {
        derivs: String,
        sample: String,
        y: String,
        /// The weight of the sample's own term.
        #[arg(long, default_value = "1.0", allow_negative_numbers = true)]
        lam: f64,
        #[command(flatten)]
        kernel: MetricKernel,
        #[command(flatten)]
        out: Output2,
        #[command(flatten)]
        common: Common,
    },
    /// Gradients of F = deriv · expected-sig-score(sample1, sample2) with respect to both samples;
    /// DERIV holds one value (a 0-d array or shape (1,)).
    ExpectedSigScoreBackprop {
        deriv: String,
        sample1: String,
        sample2: String,
        /// The weight of sample 1's own term.
        #[arg(long, default_value = "1.0", allow_negative_numbers = true)]
        lam: f64,
        #[command(flatten)]
        kernel: MetricKernel,
        #[command(flatten)]
        out: Output2,
        #[command(flatten)]
        common: Common,
    },
    /// Signature coefficients of paths (batch…, length, dim) at chosen words only; output
    /// (batch…, words), or with --prefixes every word's prefixes in turn.
    SigCoef {
        path: String,
        #[command(flatten)]
        words: WordList,
        /// Every prefix of each word: (i1), (i1, i2), …, the word.
        #[arg(long)]
        prefixes: bool,
        #[command(flatten)]
        transform: Transform,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Gradient of F(sig-coef(path)) with respect to the path, given dF/dcoef (one per word, or
    /// one per prefix as --prefixes lays them out).
    SigCoefBackprop {
        path: String,
        derivs: String,
        #[command(flatten)]
        words: WordList,
        #[command(flatten)]
        transform: Transform,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Print the signature length for a dimension and degree.
    SigLength {
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        flags: Flags,
        #[arg(long)]
        scalar_term: bool,
    },
    /// List the GPU adapters and say which one `--device auto` would use, and why.
    Devices,
    /// Time `sig` on a GPU against the CPU and record, in the user's cache directory, from which
    /// workload `--device auto` uses that GPU.
    Calibrate {
        /// The adapter (a substring of its name; default: the one `--device gpu` takes).
        #[arg(long)]
        adapter: Option<String>,
    },
    /// Signatures of sliding windows over paths (batch…, length, dim): windows of W points ending
    /// at points W−1, W−1+S, …; output (batch…, windows, sig_length).
    SigWindows {
        /// Paths, shape (batch…, length, dim).
        path: String,
        #[arg(long, value_name = "N", value_parser = non_negative, allow_negative_numbers = true)]
        degree: usize,
        /// Points per window.
        #[arg(long, value_name = "W", value_parser = non_negative, allow_negative_numbers = true)]
        window: usize,
        /// Points between the ends of consecutive windows.
        #[arg(long, value_name = "S", default_value_t = 1, value_parser = non_negative, allow_negative_numbers = true)]
        stride: usize,
        /// Log-signatures in this form (expanded, words or lyndon) instead of signatures.
        #[arg(long, value_name = "METHOD", value_parser = parse_method)]
        log_sig: Option<LogSigMethod>,
        #[command(flatten)]
        transform: Transform,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Log-signatures of a batch of paths (batch…, length, dim).
    LogSig {
        /// Paths, shape (batch…, length, dim).
        path: String,
        #[arg(long, value_name = "N", value_parser = non_negative, allow_negative_numbers = true)]
        degree: usize,
        #[command(flatten)]
        method: Method,
        #[command(flatten)]
        transform: Transform,
        /// With --method expanded, prepend the level-0 term (0 for a logarithm).
        #[arg(long)]
        scalar_term: bool,
        #[command(flatten)]
        lengths: Lengths,
        #[command(flatten)]
        correction: Correction,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The gradient of log-sig with respect to the paths, given derivatives with respect to its
    /// output (shaped like log-sig's output for the same method and flags).
    LogSigBackprop {
        /// Paths, shape (batch…, length, dim).
        path: String,
        log_sig_derivs: String,
        #[arg(long, value_name = "N", value_parser = non_negative, allow_negative_numbers = true)]
        degree: usize,
        #[command(flatten)]
        method: Method,
        #[command(flatten)]
        transform: Transform,
        /// As for log-sig: whether the derivatives have the leading scalar entry (--method expanded).
        #[arg(long)]
        scalar_term: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Log-signatures of signatures (batch…, sig_length); the scalar term is inferred from the length.
    SigToLogSig {
        sig: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        method: Method,
        #[command(flatten)]
        flags: Flags,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The gradient of sig-to-log-sig with respect to the signatures (their shape), given
    /// derivatives with respect to its output.
    SigToLogSigBackprop {
        sig: String,
        log_sig_derivs: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        method: Method,
        #[command(flatten)]
        flags: Flags,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Signatures from log-signatures of any form (the truncated tensor exponential); expanded input
    /// keeps its layout (scalar term inferred from the length), words and lyndon input
    /// (batch…, log_sig_length) gives (batch…, sig_length) (with --scalar-term, the leading 1).
    LogSigToSig {
        log_sig: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        method: Method,
        #[command(flatten)]
        flags: Flags,
        /// With --method words or lyndon, prepend the level-0 term 1.
        #[arg(long)]
        scalar_term: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The gradient of log-sig-to-sig with respect to the log-signatures, given derivatives with
    /// respect to its output.
    LogSigToSigBackprop {
        log_sig: String,
        sig_derivs: String,
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        method: Method,
        #[command(flatten)]
        flags: Flags,
        /// As for log-sig-to-sig: whether the derivatives have the leading scalar entry.
        #[arg(long)]
        scalar_term: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Print the log-signature length (number of Lyndon words) for a dimension and degree.
    LogSigLength {
        #[command(flatten)]
        size: Size,
        #[command(flatten)]
        flags: Flags,
    },
    /// Classify the embedded BasicMotions dataset with signature features, and check a gradient.
    Demo {
        #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
        device: Device,
    },
}

/// A per-segment correction of levels 2 and above (pySigLib's `correction`).
#[derive(Args, Debug, Clone)]
pub struct Correction {
    /// Each segment's signature becomes exp(Δx + c₂ + … + c_m): a float array of shape (C,), one
    /// row for all segments, (length − 1, C) or (batch…, length − 1, C), C = d² + … + d^m for the
    /// path's d channels (the time channel gets none). Not with --lead-lag or --lengths.
    #[arg(long, value_name = "C.npy", conflicts_with = "lengths")]
    pub correction: Option<String>,
}

/// A ragged batch's lengths.
#[derive(Args, Debug, Clone)]
pub struct Lengths {
    /// A ragged batch: an integer array, one length per path of (batch, length, dim); path i is its
    /// first lengths[i] points (as if padded by repeating its last point; gradients there are 0).
    #[arg(long, value_name = "LENGTHS.npy")]
    pub lengths: Option<String>,
}

/// Time augmentation and lead-lag, with the end time.
#[derive(Args, Debug, Clone)]
pub struct Transform {
    #[command(flatten)]
    pub flags: Flags,
    /// Final time of the time channel (with --time-aug).
    #[arg(
        long,
        value_name = "T",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    pub end_time: f64,
}

/// The words of `sig-coef`.
#[derive(Args, Debug, Clone)]
pub struct WordList {
    /// Words as letters separated by commas, words by semicolons ("0,1;2;1,1,0"; an empty word is
    /// the constant 1). Letters count the transformed channels: lead-lag doubles them, time is last.
    #[arg(long, value_name = "WORDS", value_parser = parse_words, allow_hyphen_values = true)]
    pub words: Words,
}

/// Parsed `--words`.
#[derive(Debug, Clone)]
pub struct Words(pub Vec<Vec<usize>>);

fn parse_words(s: &str) -> Result<Words, String> {
    let words = s
        .split(';')
        .map(|w| {
            let w = w.trim();
            if w.is_empty() {
                return Ok(Vec::new());
            }
            w.split(',')
                .map(non_negative)
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Words(words))
}

/// Options of the signature-kernel subcommands.
#[derive(Args, Debug, Clone)]
pub struct KernelArgs {
    /// Refine the PDE grid 2^L times along both paths, or 2^L1 and 2^L2 times.
    #[arg(long, value_name = "L | L1,L2", default_value = "0", value_parser = parse_dyadic_order)]
    pub dyadic_order: (usize, usize),
    #[command(flatten)]
    pub transform: Transform,
    /// linear, scaled-linear:S (S^2 <p, q>), rbf:SIGMA (exp(-|p-q|^2/SIGMA)),
    /// polynomial:DEGREE,GAMMA,SCALE (SCALE (<p, q> + GAMMA)^DEGREE), matern12:SIGMA, matern32:SIGMA,
    /// matern52:SIGMA or rational-quadratic:SIGMA,ALPHA.
    #[arg(long, value_name = "KERNEL", default_value = "linear", value_parser = parse_static_kernel)]
    pub static_kernel: StaticKernel,
    /// k(x, y) / sqrt(k(x, x) k(y, y)).
    #[arg(long)]
    pub normalize: bool,
    #[command(flatten)]
    pub lengths: KernelLengths,
    #[command(flatten)]
    pub solver: Solver,
    #[command(flatten)]
    pub max_batch: MaxBatch,
}

/// The signature-kernel PDE solver.
#[derive(Args, Debug, Clone)]
pub struct Solver {
    /// finite-difference (on the grid refined by --dyadic-order) or polynomial (with --order).
    #[arg(
        long = "method",
        value_name = "SOLVER",
        default_value = "finite-difference"
    )]
    pub method: SolverName,
    /// The polynomial solver's order: the highest degree kept along each cell's edges (2 to 64).
    #[arg(long, value_name = "K", required_if_eq("method", "polynomial"))]
    pub order: Option<usize>,
}

/// The solvers' names.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolverName {
    FiniteDifference,
    Polynomial,
}

/// A bound on the pairs of paths in flight.
#[derive(Args, Debug, Clone)]
pub struct MaxBatch {
    /// At most N pairs of paths at once (the GPU's chunks, the CPU's threads), bounding memory.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_batch: Option<u64>,
}

/// The signature kernel of the metrics (no normalisation, no ragged batches).
#[derive(Args, Debug, Clone)]
pub struct MetricKernel {
    /// Refine the PDE grid 2^L times along both paths, or 2^L1 and 2^L2 times.
    #[arg(long, value_name = "L | L1,L2", default_value = "0", value_parser = parse_dyadic_order)]
    pub dyadic_order: (usize, usize),
    #[command(flatten)]
    pub transform: Transform,
    /// linear, scaled-linear:S (S^2 <p, q>), rbf:SIGMA (exp(-|p-q|^2/SIGMA)),
    /// polynomial:DEGREE,GAMMA,SCALE (SCALE (<p, q> + GAMMA)^DEGREE), matern12:SIGMA, matern32:SIGMA,
    /// matern52:SIGMA or rational-quadratic:SIGMA,ALPHA.
    #[arg(long, value_name = "KERNEL", default_value = "linear", value_parser = parse_static_kernel)]
    pub static_kernel: StaticKernel,
    #[command(flatten)]
    pub solver: Solver,
    #[command(flatten)]
    pub max_batch: MaxBatch,
}

/// Ragged batches on either side of a signature kernel.
#[derive(Args, Debug, Clone)]
pub struct KernelLengths {
    /// The first paths (batch, length, dim) are a ragged batch: an integer array, one length per
    /// path; path i is its first lengths[i] points (as if padded by repeating its last point;
    /// gradients there are 0).
    #[arg(long, value_name = "LENGTHS.npy")]
    pub lengths: Option<String>,
    /// The same for the second paths.
    #[arg(long, value_name = "LENGTHS2.npy")]
    pub lengths2: Option<String>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Flags {
    /// Append time as the last channel.
    #[arg(long)]
    pub time_aug: bool,
    /// Apply the lead-lag transform.
    #[arg(long)]
    pub lead_lag: bool,
}

#[derive(Args, Debug, Clone)]
pub struct Size {
    /// The original path dimension.
    #[arg(long, value_name = "D", value_parser = non_negative, allow_negative_numbers = true)]
    pub dimension: usize,
    #[arg(long, value_name = "N", value_parser = non_negative, allow_negative_numbers = true)]
    pub degree: usize,
}

#[derive(Args, Debug, Clone)]
pub struct Method {
    /// expanded (the full tensor logarithm), words (its coefficients at the Lyndon words), lyndon
    /// (coordinates in the Lyndon bracket basis) or bch (lyndon's coordinates by BCH products in the
    /// Lie algebra, without the signature: for large dimension × degree); pySigLib's numbers 0-3
    /// are accepted too.
    #[arg(long, value_name = "METHOD", value_parser = parse_method)]
    pub method: LogSigMethod,
}

#[derive(Args, Debug, Clone)]
pub struct Output {
    /// Output .npy file.
    #[arg(short, long, value_name = "OUT.npy")]
    pub output: String,
}

#[derive(Args, Debug, Clone)]
pub struct Output2 {
    /// First output .npy file.
    #[arg(short, long, value_name = "OUT1.npy")]
    pub output: String,
    /// Second output .npy file.
    #[arg(long, value_name = "OUT2.npy")]
    pub output2: String,
}

/// Options of every computing subcommand.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// cpu, gpu or auto.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// Threads, pySigLib's n_jobs: 1 serial, -1 all cores, -2 all but one, n > 0 n.
    #[arg(long, value_name = "N", default_value_t = -1, value_parser = parse_jobs, allow_negative_numbers = true)]
    pub jobs: i32,
    /// Compute in this dtype (default: the inputs' float dtype).
    #[arg(long, value_enum)]
    pub dtype: Option<Dtype>,
    /// Run the computation R more times and print timings as one JSON line on stderr.
    #[arg(long, value_name = "R", default_value_t = 0)]
    pub repeat: usize,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }
}

fn non_negative(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(n) if n < 0 => Err(format!("must be a non-negative integer, got {n}")),
        Ok(n) => usize::try_from(n).map_err(|_| format!("{n} is too large")),
        Err(_) => Err(format!("expected a non-negative integer, got '{s}'")),
    }
}

fn parse_jobs(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i32>() {
        Ok(0) => Err("0 is not allowed (1 = serial, -1 = all cores, -2 = all but one)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected a non-zero integer, got '{s}'")),
    }
}

fn parse_device(s: &str) -> Result<Device, String> {
    s.parse::<Device>().map_err(|e| match e {
        roughsig::Error::Device(message) => message,
        other => other.to_string(),
    })
}

fn parse_method(s: &str) -> Result<LogSigMethod, String> {
    s.parse::<LogSigMethod>().map_err(|e| e.to_string())
}

fn parse_dyadic_order(s: &str) -> Result<(usize, usize), String> {
    match s.split_once(',') {
        Some((a, b)) => Ok((non_negative(a)?, non_negative(b)?)),
        None => non_negative(s).map(|l| (l, l)),
    }
}

fn parse_static_kernel(s: &str) -> Result<StaticKernel, String> {
    s.parse::<StaticKernel>().map_err(|e| e.to_string())
}

impl Flags {
    /// The library's path transform with these flags and the default end time.
    pub fn path_transform(&self) -> PathTransform {
        PathTransform {
            time_aug: self.time_aug,
            lead_lag: self.lead_lag,
            ..Default::default()
        }
    }
}

impl Transform {
    /// The library's path transform.
    pub fn path_transform(&self) -> PathTransform {
        PathTransform {
            end_time: self.end_time,
            ..self.flags.path_transform()
        }
    }
}

impl Common {
    /// Where the library runs and with how many threads.
    pub fn execution(&self) -> Execution {
        Execution {
            n_jobs: self.jobs,
            device: self.device.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own checks of every subcommand: no two arguments share a name or a short flag, every
    /// `requires`, `conflicts_with` and `required_if_eq` names an argument that exists.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
