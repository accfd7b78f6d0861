//! The CPU drivers: rayon over the batch, one reusable workspace per thread.

mod lanes;
mod path;
pub mod plan;
mod sig;
mod split;

use crate::layout::PathsShape;

pub(crate) use sig::{sig, sig_backprop};

use crate::layout::TensorShape;
use crate::{Scalar, SigOptions};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// What a CPU `sig` (with `backward`, `sig_backprop`) of `batch` paths allocates besides its output
/// when run on `threads` threads: `(buffers shared by the threads, bytes per thread)`.
pub(crate) fn sig_memory<T: Scalar>(
    shape: &TensorShape,
    ps: PathsShape,
    opts: &SigOptions,
    batch: usize,
    threads: usize,
    backward: bool,
) -> (u128, u128) {
    let (n, b) = (shape.len() as u128, batch as u128);
    let pieces = split::pieces(batch, ps.increments(opts), threads, shape.len()) as u128;
    let values = match (pieces > 1, backward) {
        (false, _) => 0,
        // The pieces' signatures and the join's row.
        (true, false) => b * pieces * n + n,
        // The pieces' gradient windows (one path's gradient per item, plus the boundary points
        // the pieces share), the pieces' signatures and their gradients, the prefix products and
        // three rows.
        (true, true) => {
            let path = (ps.length * ps.dim) as u128;
            let boundaries = pieces * 2 * ps.dim as u128;
            b * (path + boundaries) + 2 * b * pieces * n + pieces * n + 3 * n
        }
    };
    let shared = values * std::mem::size_of::<T>() as u128;
    let mut per_thread = path::Workspace::<T>::bytes(shape, opts.transform.lead_lag, backward);
    if lanes::lanes_for::<T>(shape, batch, backward).is_some() {
        per_thread += lanes::LANE_WORKSPACE_BOUND as u128;
    }
    (shared, per_thread)
}

/// A rayon pool of exactly `threads` threads, reused by every call asking for the same size.
///
/// One pool is kept: a call asking for another size replaces it, and the old pool's threads exit once
/// the calls still running on it finish. Thread counts are bounded by [`crate::max_threads`].
pub(crate) fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
    static POOL: Mutex<Option<Arc<rayon::ThreadPool>>> = Mutex::new(None);
    let mut cached = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = cached
        .as_ref()
        .filter(|p| p.current_num_threads() == threads)
    {
        return pool.clone();
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("building a rayon pool"),
    );
    let old = cached.replace(pool.clone());
    drop(cached);
    drop(old);
    pool
}

/// Run `f(workspace, row index, output row)` for every `row_len`-sized row of `out`, on `threads`
/// threads, with one workspace per thread made by `init`.
pub(crate) fn par_rows<T, S, I, F>(threads: usize, out: &mut [T], row_len: usize, init: I, f: F)
where
    T: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, &mut [T]) + Sync + Send,
{
    if row_len == 0 || out.is_empty() {
        return;
    }
    // No more threads than rows.
    let threads = threads.min(out.len().div_ceil(row_len));
    if threads <= 1 {
        let mut ws = init();
        for (i, row) in out.chunks_mut(row_len).enumerate() {
            f(&mut ws, i, row);
        }
        return;
    }
    pool(threads).install(|| {
        out.par_chunks_mut(row_len)
            .enumerate()
            .for_each_init(&init, |ws, (i, row)| f(ws, i, row));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pool_is_kept() {
        // Sizes no other test asks for; another test may still replace the pool in between, so only
        // what holds whatever the interleaving is checked.
        let a = pool(13);
        assert_eq!(a.current_num_threads(), 13);
        let b = pool(17);
        assert_eq!(b.current_num_threads(), 17);
        // The cache no longer holds the first pool: only this test does.
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn no_more_threads_than_rows() {
        let mut out = vec![0usize; 3];
        par_rows(
            1000,
            &mut out,
            1,
            || (),
            |_, i, row| row[0] = rayon::current_num_threads() * 10 + i,
        );
        assert_eq!(out, [30, 31, 32]);
    }
}
