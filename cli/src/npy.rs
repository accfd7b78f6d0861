//! Reading and writing `.npy` files: dtype detection from the header, conversion to the compute dtype.

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};
use roughsig::{Error, Result, Scalar};
use std::io::{BufWriter, Cursor};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// An array as read from disk. Integer and bool arrays are converted to f64 and take no part in choosing
/// the compute dtype.
pub enum Npy {
    F64(ArrayD<f64>),
    F32(ArrayD<f32>),
    Int(ArrayD<f64>),
}

/// One input file, read.
pub struct Input {
    pub path: String,
    pub data: Npy,
}

impl Input {
    pub fn read(path: &str) -> Result<Input> {
        let bytes = std::fs::read(path).map_err(|e| io_error(path, format!("cannot read: {e}")))?;
        Self::from_bytes(path, &bytes)
    }

    /// The array of the `.npy` file `bytes`, read from `path` (named in errors).
    fn from_bytes(path: &str, bytes: &[u8]) -> Result<Input> {
        let header = Header::parse(bytes).map_err(|m| io_error(path, m))?;
        let descr = header.descr.as_str();
        let kind = descr.trim_start_matches(['<', '>', '|', '=']);
        let data = match kind {
            "f8" => Npy::F64(parse(path, bytes, &header)?),
            "f4" => Npy::F32(parse(path, bytes, &header)?),
            "i1" => Npy::Int(parse::<i8>(path, bytes, &header)?.mapv(f64::from)),
            "i2" => Npy::Int(parse::<i16>(path, bytes, &header)?.mapv(f64::from)),
            "i4" => Npy::Int(parse::<i32>(path, bytes, &header)?.mapv(f64::from)),
            "i8" => Npy::Int(parse::<i64>(path, bytes, &header)?.mapv(|x| x as f64)),
            "u1" => Npy::Int(parse::<u8>(path, bytes, &header)?.mapv(f64::from)),
            "u2" => Npy::Int(parse::<u16>(path, bytes, &header)?.mapv(f64::from)),
            "u4" => Npy::Int(parse::<u32>(path, bytes, &header)?.mapv(f64::from)),
            "u8" => Npy::Int(parse::<u64>(path, bytes, &header)?.mapv(|x| x as f64)),
            "b1" => Npy::Int(parse::<bool>(path, bytes, &header)?.mapv(|b| if b { 1.0 } else { 0.0 })),
            _ => {
                return Err(Error::Invalid(format!(
                    "{path}: unsupported dtype '{}' (expected float64 or float32; integers and bool are converted to float64)",
                    printable(descr)
                )))
            }
        };
        Ok(Input {
            path: path.to_string(),
            data,
        })
    }

    /// The float dtype this input asks for, if any.
    pub fn float_dtype(&self) -> Option<&'static str> {
        match self.data {
            Npy::F64(_) => Some("f64"),
            Npy::F32(_) => Some("f32"),
            Npy::Int(_) => None,
        }
    }

    pub fn shape(&self) -> &[usize] {
        match &self.data {
            Npy::F64(a) | Npy::Int(a) => a.shape(),
            Npy::F32(a) => a.shape(),
        }
    }

    /// The array in the compute dtype (a copy).
    pub fn to<T: Scalar>(&self) -> ArrayD<T> {
        match &self.data {
            Npy::F64(a) | Npy::Int(a) => a.mapv(T::from_f64),
            Npy::F32(a) => a.mapv(|x| T::from_f64(f64::from(x))),
        }
    }
}

/// Per-path lengths from the `.npy` file `path`: a one-dimensional integer array of non-negative
/// values.
pub fn read_lengths(path: &str) -> Result<Vec<usize>> {
    let input = Input::read(path)?;
    let Npy::Int(a) = &input.data else {
        return Err(Error::Invalid(format!(
            "{path}: lengths must be an integer array, got {}",
            input.float_dtype().unwrap_or("another dtype")
        )));
    };
    if a.ndim() != 1 {
        return Err(Error::Invalid(format!(
            "{path}: lengths must be one-dimensional, got shape {:?}",
            a.shape()
        )));
    }
    a.iter()
        .enumerate()
        .map(|(i, &v)| {
            if v >= 0.0 && v <= (1u64 << 53) as f64 {
                Ok(v as usize)
            } else {
                Err(Error::Invalid(format!(
                    "{path}: lengths[{i}] = {v} is not a length"
                )))
            }
        })
        .collect()
}

/// Write `array` to `path` atomically: a temporary file in the same directory, renamed into place. On
/// any error nothing is left behind (and an existing `path` is untouched).
pub fn write<T: Scalar + WritableElement>(path: &str, array: &ArrayD<T>) -> Result<()> {
    Pending::write(path, array)?.commit()
}

/// Write two outputs, both or neither: both temporary files are written before either is renamed
/// into place, and a failure writing the second removes the first. (Only a rename failing after the
/// first has succeeded, in a directory where the temporary file was just created, could leave one.)
pub fn write_pair<T: Scalar + WritableElement>(
    path1: &str,
    a: &ArrayD<T>,
    path2: &str,
    b: &ArrayD<T>,
) -> Result<()> {
    let first = Pending::write(path1, a)?;
    let second = Pending::write(path2, b)?;
    first.commit()?;
    second.commit()
}

/// Whether two output paths name the same file: the same text, the same existing file, or the same
/// name in the same (existing) directory.
pub fn same_file(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if let (Ok(x), Ok(y)) = (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        return x == y;
    }
    let key = |p: &str| -> Option<PathBuf> {
        let path = Path::new(p);
        let name = path.file_name()?;
        Some(dir_of(path).canonicalize().ok()?.join(name))
    };
    matches!((key(a), key(b)), (Some(x), Some(y)) if x == y)
}

/// The directory a file path lives in (`.` for a bare name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// An output written to a temporary file next to its target: [`Pending::commit`] renames it into
/// place; dropped uncommitted (an error anywhere), the temporary file is removed.
struct Pending {
    tmp: PathBuf,
    target: String,
    committed: bool,
}

impl Pending {
    fn write<T: Scalar + WritableElement>(path: &str, array: &ArrayD<T>) -> Result<Pending> {
        let (file, tmp) = temp_file(path)?;
        // From here on, dropping `pending` removes the temporary file.
        let pending = Pending {
            tmp,
            target: path.to_string(),
            committed: false,
        };
        let mut w = BufWriter::new(file);
        array
            .write_npy(&mut w)
            .map_err(|e| io_error(path, format!("cannot write .npy: {e}")))?;
        std::io::Write::flush(&mut w).map_err(|e| io_error(path, format!("cannot write: {e}")))?;
        Ok(pending)
    }

    fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.target)
            .map_err(|e| io_error(&self.target, format!("cannot create: {e}")))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A new, uniquely named file in the directory of `path`, for writing `path` atomically.
fn temp_file(path: &str) -> Result<(std::fs::File, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let target = Path::new(path);
    let name = target
        .file_name()
        .ok_or_else(|| io_error(path, "cannot create: not a file name".into()))?
        .to_string_lossy();
    let dir = dir_of(target);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(e) => return Err(io_error(path, format!("cannot create: {e}"))),
        }
    }
}

fn io_error(path: &str, message: String) -> Error {
    Error::Io {
        path: path.to_string(),
        message,
    }
}

/// The array of an npy file whose elements are `A`s, once the data is known to be all there.
fn parse<A: ReadableElement>(path: &str, bytes: &[u8], header: &Header) -> Result<ArrayD<A>> {
    let bytes = header
        .data(bytes, std::mem::size_of::<A>())
        .map_err(|m| io_error(path, m))?;
    // The parser's message can span lines (a caret under the header); the first says what failed.
    ArrayD::<A>::read_npy(Cursor::new(bytes)).map_err(|e| {
        let e = e.to_string();
        let first = e.lines().next().unwrap_or_default().trim_end();
        io_error(path, format!("not a valid .npy file: {}", printable(first)))
    })
}

/// Header text as it may appear in a one-line message: control characters (a newline in a corrupt
/// header, say) escaped.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_default());
            escaped
                .into_iter()
                .flatten()
                .chain((!c.is_control()).then_some(c))
        })
        .collect()
}

/// What the reader needs from an npy header, read without trusting it.
#[derive(Debug)]
struct Header {
    descr: String,
    shape: Vec<usize>,
    /// Where the data starts: the magic string, version, header length and header.
    data_start: usize,
}

impl Header {
    fn parse(bytes: &[u8]) -> std::result::Result<Header, String> {
        const MAGIC: &[u8] = b"\x93NUMPY";
        if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
            return Err(if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
                "truncated .npy file (no header)".into()
            } else {
                "not an .npy file (bad magic string)".into()
            });
        }
        let (start, len) = match bytes[6] {
            1 => (10usize, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
            2 | 3 if bytes.len() >= 12 => (
                12,
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            ),
            v => return Err(format!("unsupported .npy format version {v}")),
        };
        let data_start = start.saturating_add(len);
        let header = bytes
            .get(start..data_start)
            .ok_or("truncated .npy file (incomplete header)")?;
        let header = std::str::from_utf8(header).map_err(|_| "corrupt .npy header (not text)")?;
        let descr = value(header, "descr")?;
        let descr = match descr.chars().next() {
            Some(q @ ('\'' | '"')) => {
                let body = &descr[1..];
                let end = body.find(q).ok_or("corrupt .npy header")?;
                body[..end].to_string()
            }
            _ => return Err("unsupported dtype (structured arrays are not supported)".into()),
        };
        let shape = value(header, "shape")?
            .strip_prefix('(')
            .and_then(|rest| rest.split_once(')'))
            .ok_or("corrupt .npy header (bad 'shape')")?
            .0
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| n.parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| "corrupt .npy header (bad 'shape')")?;
        Ok(Header {
            descr,
            shape,
            data_start,
        })
    }

    /// The header and exactly the data its shape asks for, `itemsize` bytes an element: a file too
    /// short for its shape is refused before anything is allocated; bytes after the data are ignored,
    /// as numpy does.
    fn data<'b>(&self, bytes: &'b [u8], itemsize: usize) -> std::result::Result<&'b [u8], String> {
        let shape = format!("{:?}", self.shape);
        let needed = self
            .shape
            .iter()
            .try_fold(itemsize, |acc, &n| acc.checked_mul(n))
            .ok_or_else(|| format!("corrupt .npy header (shape {shape} is too large)"))?;
        let present = bytes.len().saturating_sub(self.data_start);
        if present < needed {
            return Err(format!(
                "truncated .npy file: shape {shape} needs {needed} bytes of data, the file holds {present}"
            ));
        }
        Ok(&bytes[..self.data_start + needed])
    }
}

/// The text after `'key':` in an npy header dict, leading spaces trimmed.
fn value<'h>(header: &'h str, key: &str) -> std::result::Result<&'h str, String> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))
        .ok_or_else(|| format!("corrupt .npy header (no '{key}')"))?;
    header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')
        .map(str::trim_start)
        .ok_or_else(|| "corrupt .npy header".to_string())
}

#[cfg(test)]
mod tests {
    use super::Header;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((header.len() as u16).to_le_bytes());
        b.extend(header.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn header_descr_and_shape() {
        let b = npy(
            "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
            &[],
        );
        let h = Header::parse(&b).unwrap();
        assert_eq!((h.descr.as_str(), h.shape.as_slice()), ("<f2", &[2][..]));
        let b = npy("{\"shape\": (), \"descr\": \"<f8\"}", &[]);
        let h = Header::parse(&b).unwrap();
        assert_eq!((h.descr.as_str(), h.shape.len()), ("<f8", 0));
        assert!(Header::parse(b"hello world").is_err());
        assert!(Header::parse(&b[..20]).is_err());
        let bad = npy("{'descr': '<f8', 'shape': (2, x), }", &[]);
        assert!(Header::parse(&bad).unwrap_err().contains("shape"));
        let none = npy("{'descr': '<f8', }", &[]);
        assert!(Header::parse(&none).unwrap_err().contains("shape"));
    }

    #[test]
    fn data_must_cover_the_shape() {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000, 3), }";
        let b = npy(header, &[0; 64]);
        let h = Header::parse(&b).unwrap();
        let err = h.data(&b, 8).unwrap_err();
        assert!(err.contains("truncated") && err.contains("64"), "{err}");
        // A product that overflows is refused too.
        let huge = format!("{{'descr': '<f8', 'shape': ({}, 4), }}", usize::MAX);
        let b = npy(&huge, &[0; 8]);
        let err = Header::parse(&b).unwrap().data(&b, 8).unwrap_err();
        assert!(err.contains("too large"), "{err}");
        // Exactly enough, or more: the data, without the trailing bytes.
        let b = npy("{'descr': '<f4', 'shape': (2, 1), }", &[1; 12]);
        let h = Header::parse(&b).unwrap();
        assert_eq!(h.data(&b, 4).unwrap().len(), b.len() - 4);
        assert!(h.data(&b[..b.len() - 5], 4).is_err());
    }
}

/// The reader under mutated files: the seeds in `tests/data/fuzz/npy/` (valid files of every
/// supported kind) truncated, with bytes overwritten, with header fields replaced, or spliced with
/// each other. Every outcome is an array no larger than the file's data, or an error naming the
/// file on one line. Cases: `PROPTEST_CASES` (256 by default).
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn seeds() -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/npy");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("the fuzz corpus")
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Truncate(usize),
        Overwrite(usize, Vec<u8>),
        /// Replace the text of a header field's value with this.
        Field(&'static str, String),
        Splice(usize, usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let number = prop_oneof![
            (0usize..6).prop_map(|n| n.to_string()),
            Just("18446744073709551615".to_string()),
            Just("100000".to_string()),
            Just("-1".to_string()),
            Just("".to_string()),
        ];
        let shape = proptest::collection::vec(number, 0..4)
            .prop_map(|dims| format!("({},)", dims.join(", ")));
        let descr = prop_oneof![
            Just("'<f8'"),
            Just("'>f4'"),
            Just("'<i8'"),
            Just("'|b1'"),
            Just("'<c16'"),
            Just("'<U3'"),
            Just("[('a', '<f8')]"),
            Just("'"),
        ]
        .prop_map(str::to_string);
        prop_oneof![
            any::<usize>().prop_map(Mutation::Truncate),
            (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
                .prop_map(|(at, b)| Mutation::Overwrite(at, b)),
            shape.prop_map(|v| Mutation::Field("shape", v)),
            descr.prop_map(|v| Mutation::Field("descr", v)),
            prop_oneof![Just("True"), Just("False"), Just("1"), Just("")]
                .prop_map(|v| Mutation::Field("fortran_order", v.to_string())),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Splice(a, b)),
        ]
    }

    fn apply(seeds: &[Vec<u8>], seed: usize, mutations: &[Mutation]) -> Vec<u8> {
        let mut bytes = seeds[seed % seeds.len()].clone();
        for m in mutations {
            match m {
                Mutation::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
                Mutation::Overwrite(at, with) => {
                    let len = bytes.len().max(1);
                    for (i, &b) in with.iter().enumerate() {
                        if let Some(slot) = bytes.get_mut((at % len + i) % len) {
                            *slot = b;
                        }
                    }
                }
                Mutation::Field(key, value) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    let pattern = format!("'{key}': ");
                    if let Some(start) = text.find(&pattern).map(|i| i + pattern.len()) {
                        if text.is_char_boundary(start) {
                            let end = text[start..]
                                .find(", '")
                                .or_else(|| text[start..].find('}'))
                                .map_or(text.len(), |e| start + e);
                            let mut out = text.as_bytes()[..start].to_vec();
                            out.extend_from_slice(value.as_bytes());
                            out.extend_from_slice(&text.as_bytes()[end..]);
                            bytes = out;
                        }
                    }
                }
                Mutation::Splice(other, at) => {
                    let other = &seeds[other % seeds.len()];
                    let at = at % (bytes.len() + 1);
                    bytes.truncate(at);
                    bytes.extend_from_slice(&other[at.min(other.len())..]);
                }
            }
        }
        bytes
    }

    #[test]
    fn every_seed_reads() {
        for (i, bytes) in seeds().iter().enumerate() {
            let input = Input::from_bytes("seed.npy", bytes);
            assert!(input.is_ok(), "seed {i}: {:?}", input.err());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
            ..ProptestConfig::default()
        })]

        #[test]
        fn mutated_files_read_or_fail_cleanly(
            seed in any::<usize>(),
            mutations in proptest::collection::vec(mutation(), 1..4),
        ) {
            let seeds = seeds();
            let bytes = apply(&seeds, seed, &mutations);
            match Input::from_bytes("fuzzed.npy", &bytes) {
                Ok(input) => {
                    let elements: usize = input.shape().iter().product();
                    // No element is smaller than a byte: the array never outgrows the file.
                    prop_assert!(elements <= bytes.len(), "{} elements from {} bytes", elements, bytes.len());
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(msg.starts_with("fuzzed.npy") && !msg.contains('\n'), "{}", msg);
                }
            }
        }
    }
}
