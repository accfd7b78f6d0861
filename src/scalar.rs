//! The floating-point types the crate computes in: f32 and f64, behind one sealed trait so that every
//! algorithm is written once.

use ndarray::NdFloat;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The element type of paths and signatures: `f32` or `f64`.
pub trait Scalar: NdFloat + Default + bytemuck::Pod + sealed::Sealed {
    /// The dtype's short name, as the CLI and error messages spell it.
    const NAME: &'static str;
    /// `x` rounded to this type.
    fn from_f64(x: f64) -> Self;
    /// The value as an `f64` (exact).
    fn to_f64(self) -> f64;
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// The floating-point type a call computes in, as the device choice and the GPU kernels see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Single precision.
    F32,
    /// Double precision.
    F64,
}

impl Precision {
    /// The precision of the crate's scalar type `T`.
    pub fn of<T: Scalar>() -> Precision {
        if T::NAME == "f64" {
            Precision::F64
        } else {
            Precision::F32
        }
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::F64 => 8,
        }
    }
}
