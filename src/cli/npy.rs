//! Reading and writing `.npy` files: dtype detection from the header, conversion to the compute dtype.

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};
use roughsig::{Error, Result, Scalar};
use std::io::{BufWriter, Cursor};

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
        let descr = descr(&bytes).map_err(|m| io_error(path, m))?;
        let kind = descr.trim_start_matches(['<', '>', '|', '=']);
        let data = match kind {
            "f8" => Npy::F64(parse(path, &bytes)?),
            "f4" => Npy::F32(parse(path, &bytes)?),
            "i1" => Npy::Int(parse::<i8>(path, &bytes)?.mapv(f64::from)),
            "i2" => Npy::Int(parse::<i16>(path, &bytes)?.mapv(f64::from)),
            "i4" => Npy::Int(parse::<i32>(path, &bytes)?.mapv(f64::from)),
            "i8" => Npy::Int(parse::<i64>(path, &bytes)?.mapv(|x| x as f64)),
            "u1" => Npy::Int(parse::<u8>(path, &bytes)?.mapv(f64::from)),
            "u2" => Npy::Int(parse::<u16>(path, &bytes)?.mapv(f64::from)),
            "u4" => Npy::Int(parse::<u32>(path, &bytes)?.mapv(f64::from)),
            "u8" => Npy::Int(parse::<u64>(path, &bytes)?.mapv(|x| x as f64)),
            "b1" => Npy::Int(parse::<bool>(path, &bytes)?.mapv(|b| if b { 1.0 } else { 0.0 })),
            _ => {
                return Err(Error::Invalid(format!(
                    "{path}: unsupported dtype '{descr}' (expected float64 or float32; integers and bool are converted to float64)"
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

pub fn write<T: Scalar + WritableElement>(path: &str, array: &ArrayD<T>) -> Result<()> {
    let file =
        std::fs::File::create(path).map_err(|e| io_error(path, format!("cannot create: {e}")))?;
    let mut w = BufWriter::new(file);
    array
        .write_npy(&mut w)
        .map_err(|e| io_error(path, format!("cannot write .npy: {e}")))?;
    std::io::Write::flush(&mut w).map_err(|e| io_error(path, format!("cannot write: {e}")))
}

fn io_error(path: &str, message: String) -> Error {
    Error::Io {
        path: path.to_string(),
        message,
    }
}

fn parse<A: ReadableElement>(path: &str, bytes: &[u8]) -> Result<ArrayD<A>> {
    ArrayD::<A>::read_npy(Cursor::new(bytes))
        .map_err(|e| io_error(path, format!("not a valid .npy file: {e}")))
}

/// The `descr` entry of an npy header.
fn descr(bytes: &[u8]) -> std::result::Result<String, String> {
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
    let header = bytes
        .get(start..start.saturating_add(len))
        .ok_or("truncated .npy file (incomplete header)")?;
    let header = std::str::from_utf8(header).map_err(|_| "corrupt .npy header (not text)")?;
    let key = header
        .find("'descr'")
        .or_else(|| header.find("\"descr\""))
        .ok_or("corrupt .npy header (no 'descr')")?;
    let rest = header[key + 7..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or("corrupt .npy header")?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"');
    match quote {
        Some(q) => {
            let body = &rest[1..];
            let end = body.find(q).ok_or("corrupt .npy header")?;
            Ok(body[..end].to_string())
        }
        None => Err("unsupported dtype (structured arrays are not supported)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::descr;

    #[test]
    fn header_descr() {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let h = b"{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }";
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h);
        assert_eq!(descr(&b).unwrap(), "<f2");
        assert!(descr(b"hello world").is_err());
        assert!(descr(&b[..20]).is_err());
    }
}
