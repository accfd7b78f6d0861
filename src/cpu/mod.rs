//! The CPU drivers: rayon over the batch, one reusable workspace per thread.

mod lanes;
mod sig;
mod split;

pub(crate) use sig::PathsShape;

pub(crate) use sig::{sig, sig_backprop};

use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A rayon pool of exactly `threads` threads, built once per size and reused by every call.
pub(crate) fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    pools
        .entry(threads)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("building a rayon pool"),
            )
        })
        .clone()
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
