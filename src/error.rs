//! The one error type of the crate: every failure on user input is a variant with the data that explains it.

/// Shorthand for `std::result::Result<T, roughsig::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in roughsig. The library never panics on user input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An array has fewer axes than the operation needs.
    #[error("{what} must have at least {min} axes, got {got}")]
    Rank {
        /// The argument.
        what: &'static str,
        /// The fewest axes it may have.
        min: usize,
        /// The axes it has.
        got: usize,
    },
    /// A path with no channels.
    #[error("{what} has 0 channels; the path dimension must be at least 1")]
    ZeroChannels {
        /// The argument.
        what: &'static str,
    },
    /// NaN or infinity inside an input.
    #[error("{what} contains {value} at batch item {item:?}, point {point}, channel {channel}")]
    NonFinite {
        /// The argument.
        what: &'static str,
        /// The batch index of the path (empty for an unbatched path).
        item: Vec<usize>,
        /// The point within the path.
        point: usize,
        /// The channel within the point.
        channel: usize,
        /// The value found there.
        value: f64,
    },
    /// NaN or infinity inside an input that is not a path (signatures, derivatives): the batch item
    /// and the entry's index within it.
    #[error("{what} contains {value} at batch item {item:?}, entry {index}")]
    NonFiniteValue {
        /// The argument.
        what: &'static str,
        /// The batch index of the row (empty for a single row).
        item: Vec<usize>,
        /// The entry within the row.
        index: usize,
        /// The value found there.
        value: f64,
    },
    /// A size that must be at least 1 (the degree or dimension of a log-signature) is 0.
    #[error("{what} must be a positive integer, got {what} = 0")]
    NotPositive {
        /// The argument.
        what: &'static str,
    },
    /// `d + d^2 + … + d^N` does not fit in a machine word.
    #[error("signature length overflows for dimension {dim}, degree {degree}")]
    Overflow {
        /// The (transformed) path dimension.
        dim: usize,
        /// The truncation degree.
        degree: usize,
    },
    /// The memory a call would allocate (its output, buffers and per-thread workspaces, all sized
    /// before any is made) is more than is available: the system's available memory, the
    /// process's address-space limit and its cgroup's limit, whichever is least.
    #[error("{what} needs {bytes} bytes, more than the {limit} bytes of memory available")]
    TooLarge {
        /// What would be allocated.
        what: String,
        /// The bytes it needs.
        bytes: u128,
        /// The bytes available.
        limit: u128,
    },
    /// A signature, derivative or displacement whose last axis has the wrong length.
    #[error("{what} has length {got}, expected {expected}")]
    Length {
        /// The argument.
        what: &'static str,
        /// The lengths it may have.
        expected: String,
        /// The length it has.
        got: usize,
    },
    /// Arguments whose batch shapes differ.
    #[error("batch shapes differ: {a} has {a_shape:?}, {b} has {b_shape:?}")]
    BatchMismatch {
        /// The first argument.
        a: &'static str,
        /// Its batch shape.
        a_shape: Vec<usize>,
        /// The second argument.
        b: &'static str,
        /// Its batch shape.
        b_shape: Vec<usize>,
    },
    /// A signature kernel or its gradient overflowed to infinity or NaN (finite inputs, huge values).
    #[error(
        "{what} is not finite at batch item {item:?}: the kernel PDE overflowed, typically from paths \
         with large increments; normalise the paths or use a bounded static kernel (e.g. rbf)"
    )]
    KernelOverflow {
        /// The result.
        what: &'static str,
        /// The batch index of the first non-finite value.
        item: Vec<usize>,
    },
    /// A result holding infinity or NaN although every input was finite: the computation overflowed
    /// the dtype (huge path values, a high degree or long paths in f32). Returned by every operation
    /// on the CPU and the GPU alike, instead of the non-finite values.
    #[error(
        "{what} overflowed to infinity or NaN at batch item {item:?} (finite inputs whose values \
         exceed the dtype's range); rescale the paths or compute in f64"
    )]
    ResultOverflow {
        /// The result.
        what: &'static str,
        /// The batch index of the first non-finite value.
        item: Vec<usize>,
    },
    /// Any other invalid argument (a bad option value, an unsupported dtype, …).
    #[error("{0}")]
    Invalid(String),
    /// The requested device cannot run the operation.
    #[error("device: {0}")]
    Device(String),
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}
