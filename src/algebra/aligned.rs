//! A growable buffer of floats that starts on a cache line.
//!
//! The heap hands out 16-byte alignment, so a 512-bit load from a `Vec` straddles two cache lines
//! every time, and a 256-bit one every other time: each such access costs two. Buffers the steps
//! stream through with vectors are kept here instead.

use bytemuck::{Pod, Zeroable};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// One cache line, the unit of allocation.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

// SAFETY: a plain array of bytes with no padding (size 64, alignment 64), any bit pattern valid.
unsafe impl Zeroable for Line {}
unsafe impl Pod for Line {}

/// `len` values of `T` from the start of 64-byte-aligned storage, zero when made or grown.
#[derive(Clone)]
pub struct AlignedVec<T> {
    lines: Vec<Line>,
    len: usize,
    _values: PhantomData<T>,
}

impl<T: Pod> AlignedVec<T> {
    /// `len` zeros (all bits zero: `0.0` for the floats).
    pub fn zeroed(len: usize) -> Self {
        let mut v = AlignedVec {
            lines: Vec::new(),
            len: 0,
            _values: PhantomData,
        };
        v.resize_zeroed(len);
        v
    }

    /// Grow or shrink to `len`; values that come into view are zero.
    pub fn resize_zeroed(&mut self, len: usize) {
        let per_line = size_of::<Line>() / size_of::<T>();
        if len > self.len {
            // Clear what lies between the old end and the end of its line, which an earlier,
            // longer length may have left written.
            let tail = self.lines.len() * per_line;
            let clear = tail.min(len);
            bytemuck::cast_slice_mut::<Line, T>(&mut self.lines)[self.len..clear].fill(T::zeroed());
            self.lines.resize(len.div_ceil(per_line), Line::zeroed());
        }
        self.len = len;
    }
}

impl<T: Pod> Deref for AlignedVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &bytemuck::cast_slice(&self.lines)[..self.len]
    }
}

impl<T: Pod> DerefMut for AlignedVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut bytemuck::cast_slice_mut(&mut self.lines)[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_cache_line_and_grows_with_zeros() {
        let mut v = AlignedVec::<f64>::zeroed(5);
        assert_eq!(v.as_ptr() as usize % 64, 0);
        assert_eq!(&v[..], &[0.0; 5]);
        v.fill(1.0);
        v.resize_zeroed(3);
        v.resize_zeroed(20);
        assert_eq!(v.as_ptr() as usize % 64, 0);
        assert_eq!(&v[..3], &[1.0; 3]);
        assert!(v[3..].iter().all(|&x| x == 0.0), "{:?}", &v[..]);
        let w = AlignedVec::<f32>::zeroed(0);
        assert!(w.is_empty());
    }
}
