//! The floating-point types the crate computes in: f32 and f64, behind one sealed trait so that every
//! algorithm is written once.

use ndarray::NdFloat;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The element type of paths and signatures: `f32` or `f64`.
pub trait Scalar:
    NdFloat + Default + bytemuck::Pod + sealed::Sealed + crate::algebra::vector::VectorRows
{
    /// The dtype's short name, as the CLI and error messages spell it.
    const NAME: &'static str;
    fn from_f64(x: f64) -> Self;
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
