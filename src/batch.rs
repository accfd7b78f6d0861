//! Shapes at the API boundary: any number of leading batch axes, checked inputs, checked allocations.

use crate::{Error, Result, Scalar};
use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};

/// An input of shape `(batch…, inner…)` made contiguous, with its batch axes split off.
pub(crate) struct Rows<'a, T> {
    pub batch_shape: Vec<usize>,
    pub data: CowArray<'a, T, IxDyn>,
}

impl<'a, T: Scalar> Rows<'a, T> {
    /// `inner` is the number of trailing non-batch axes.
    pub fn new(what: &'static str, a: ArrayViewD<'a, T>, inner: usize) -> Result<Self> {
        if a.ndim() < inner {
            return Err(Error::Rank {
                what,
                min: inner,
                got: a.ndim(),
            });
        }
        let batch_shape = a.shape()[..a.ndim() - inner].to_vec();
        let data = if a.is_standard_layout() {
            CowArray::from(a)
        } else {
            CowArray::from(a.as_standard_layout().into_owned())
        };
        Ok(Rows { batch_shape, data })
    }

    pub fn batch(&self) -> usize {
        self.batch_shape.iter().product()
    }

    /// Size of the last axis.
    pub fn last(&self) -> usize {
        self.data.shape().last().copied().unwrap_or(1)
    }

    pub fn slice(&self) -> &[T] {
        // as_standard_layout always yields a contiguous, row-major array.
        self.data.as_slice().expect("standard layout is contiguous")
    }

    /// Fail on the first NaN or infinity, naming the batch item, point (second-to-last axis when
    /// `points` is set) and channel.
    pub fn check_finite(&self, what: &'static str, points: bool) -> Result<()> {
        // Chunks checked without an early exit vectorise; only a chunk that fails is searched.
        const CHUNK: usize = 1024;
        let all_finite = |c: &[T]| c.iter().fold(true, |ok, x| ok & x.is_finite());
        let Some(chunk) = self.slice().chunks(CHUNK).position(|c| !all_finite(c)) else {
            return Ok(());
        };
        let rest = &self.slice()[chunk * CHUNK..];
        let flat = chunk * CHUNK + rest.iter().position(|x| !x.is_finite()).unwrap_or(0);
        let shape = self.data.shape();
        let channels = self.last().max(1);
        let per_item = if points {
            shape[shape.len() - 2] * channels
        } else {
            channels
        };
        let mut item_flat = flat / per_item.max(1);
        let mut item = vec![0; self.batch_shape.len()];
        for (slot, &n) in item.iter_mut().zip(&self.batch_shape).rev() {
            *slot = item_flat % n;
            item_flat /= n;
        }
        let value = self.slice()[flat].to_f64();
        if !points {
            // A row of coefficients (a signature, its derivatives), not a path: name the entry.
            let index = flat % per_item;
            return Err(Error::NonFiniteValue {
                what,
                item,
                index,
                value,
            });
        }
        Err(Error::NonFinite {
            what,
            item,
            point: (flat % per_item) / channels,
            channel: flat % channels,
            value,
        })
    }
}

/// Paths `(batch…, length, dim)`: at least two axes and at least one channel.
pub(crate) fn paths<'a, T: Scalar>(
    what: &'static str,
    a: ArrayViewD<'a, T>,
) -> Result<Rows<'a, T>> {
    let rows = Rows::new(what, a, 2)?;
    if rows.last() == 0 {
        return Err(Error::ZeroChannels { what });
    }
    rows.check_finite(what, true)?;
    Ok(rows)
}

pub(crate) fn same_batch<T, U>(
    a: &'static str,
    x: &Rows<T>,
    b: &'static str,
    y: &Rows<U>,
) -> Result<()> {
    if x.batch_shape != y.batch_shape {
        return Err(Error::BatchMismatch {
            a,
            a_shape: x.batch_shape.clone(),
            b,
            b_shape: y.batch_shape.clone(),
        });
    }
    Ok(())
}

/// Require the last axis of `rows` to be `expected`.
pub(crate) fn expect_len<T: Scalar>(
    what: &'static str,
    rows: &Rows<T>,
    expected: usize,
) -> Result<()> {
    if rows.last() != expected {
        return Err(Error::Length {
            what,
            expected: expected.to_string(),
            got: rows.last(),
        });
    }
    Ok(())
}

/// Whether a signature of `len` coefficients carries the scalar term, for levels of `levels`
/// coefficients; any other length is an error.
pub(crate) fn infer_scalar_term(what: &'static str, len: usize, levels: usize) -> Result<bool> {
    if len == levels {
        Ok(false)
    } else if Some(len) == levels.checked_add(1) {
        Ok(true)
    } else {
        Err(Error::Length {
            what,
            expected: format!("{levels} or {} (with the scalar term)", levels + 1),
            got: len,
        })
    }
}

/// A zeroed output array, refusing sizes that could not be allocated.
pub(crate) fn zeros<T: Scalar>(what: &str, shape: &[usize]) -> Result<ArrayD<T>> {
    check_bytes(
        what,
        elements(shape).saturating_mul(std::mem::size_of::<T>() as u128),
    )?;
    Ok(ArrayD::zeros(IxDyn(shape)))
}

/// The number of elements of an array of `shape`, saturating instead of overflowing.
pub(crate) fn elements(shape: &[usize]) -> u128 {
    shape
        .iter()
        .fold(1u128, |n, &k| n.saturating_mul(k as u128))
}

/// Requests of at most this many bytes are granted without reading the system's memory figures:
/// they fit wherever the library runs at all, and the reading (five files under `/proc` and `/sys`)
/// costs more than a small call's work.
const ALWAYS_FITS: u128 = 16 << 20;

/// Refuse a buffer larger than the memory available.
pub(crate) fn check_bytes(what: &str, bytes: u128) -> Result<()> {
    if bytes <= ALWAYS_FITS {
        return Ok(());
    }
    let limit = available_memory();
    if bytes > limit {
        return Err(Error::TooLarge {
            what: what.to_string(),
            bytes,
            limit,
        });
    }
    Ok(())
}

/// Refuse a GPU call whose host memory does not fit: the output, the mapped staging buffer and the
/// host copy the result comes back through, and the driver's upload copies of the inputs.
pub(crate) fn fit_gpu<T: Scalar>(what: &str, output: u128, inputs: usize) -> Result<()> {
    let values = output.saturating_mul(3).saturating_add(inputs as u128);
    check_bytes(
        &format!("{what} on the GPU (output, staging and read-back, uploads)"),
        values.saturating_mul(std::mem::size_of::<T>() as u128),
    )
}

/// The memory one call allocates with a given number of threads, in bytes.
pub(crate) struct Memory {
    pub output: u128,
    /// Buffers the threads share.
    pub shared: u128,
    /// Each thread's workspace.
    pub per_thread: u128,
}

/// The most threads, at most `threads`, whose call fits in the memory available, `memory(t)` being
/// what the call allocates on `t` threads. Not even one thread fitting is [`Error::TooLarge`],
/// naming the sizes.
pub(crate) fn fit_threads(
    what: &str,
    threads: usize,
    memory: impl Fn(usize) -> Memory,
) -> Result<usize> {
    let total = |m: &Memory, t: usize| {
        m.output
            .saturating_add(m.shared)
            .saturating_add(m.per_thread.saturating_mul(t as u128))
    };
    let threads = threads.max(1);
    if total(&memory(threads), threads) <= ALWAYS_FITS {
        return Ok(threads);
    }
    let limit = available_memory();
    if let Some(t) = (1..=threads).rev().find(|&t| total(&memory(t), t) <= limit) {
        return Ok(t);
    }
    let m = memory(1);
    Err(Error::TooLarge {
        what: format!(
            "{what} (output {} bytes, buffers {} bytes, one thread's workspace {} bytes)",
            m.output, m.shared, m.per_thread
        ),
        bytes: total(&m, 1),
        limit,
    })
}

/// The memory a call may use: the least of what the system reports available, the address space
/// the process may still map (`ulimit -v`) and its cgroup's remaining limit, where the system tells
/// them (Linux); elsewhere the largest allocation Rust allows.
pub(crate) fn available_memory() -> u128 {
    [mem_available(), address_space_left(), cgroup_left()]
        .into_iter()
        .flatten()
        .fold(isize::MAX as u128, u128::min)
}

/// A `Key: <n> kB` line of a `/proc` file, in bytes.
fn proc_kib(file: &str, key: &str) -> Option<u128> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u128 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

fn mem_available() -> Option<u128> {
    proc_kib("/proc/meminfo", "MemAvailable:")
}

fn address_space_left() -> Option<u128> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    // "Max address space   <soft> <hard> bytes"; "unlimited" parses as no limit.
    let soft: u128 = line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(soft.saturating_sub(proc_kib("/proc/self/status", "VmSize:")?))
}

fn cgroup_left() -> Option<u128> {
    let read = |f: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{f}")).ok();
    let max: u128 = read("memory.max")?.trim().parse().ok()?;
    let current: u128 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// Refuse a result holding NaN or infinity from finite inputs, naming the first such batch item; the
/// last `item_axes` axes of `out` belong to one item. One rule for every operation and device.
pub(crate) fn check_result<T: Scalar>(
    what: &'static str,
    out: &ArrayD<T>,
    item_axes: usize,
) -> Result<()> {
    let data = out.as_slice().expect("results are contiguous");
    let batch_shape = &out.shape()[..out.ndim().saturating_sub(item_axes)];
    let per_item = out.shape()[batch_shape.len()..].iter().product();
    match first_non_finite(data, batch_shape, per_item) {
        None => Ok(()),
        Some((item, _, _)) => Err(Error::ResultOverflow { what, item }),
    }
}

/// The first NaN or infinity: its batch item, its index within the item, and the value.
pub(crate) fn first_non_finite<T: Scalar>(
    data: &[T],
    batch_shape: &[usize],
    per_item: usize,
) -> Option<(Vec<usize>, usize, f64)> {
    let flat = data.iter().position(|v| !v.is_finite())?;
    let per_item = per_item.max(1);
    Some((
        unravel(flat / per_item, batch_shape),
        flat % per_item,
        data[flat].to_f64(),
    ))
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &n) in index.iter_mut().zip(shape).rev() {
        *slot = flat % n.max(1);
        flat /= n.max(1);
    }
    index
}
