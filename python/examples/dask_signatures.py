"""Signature features of a dataset larger than one machine, on Dask distributed.

The paths are a Dask array `(n, length, dimension)` chunked along the paths only; every chunk is
one `roughsig` call on a worker, so each worker process keeps its own GPU context (wgpu's device
and compiled kernels) from one chunk to the next, and the work is spread and retried by Dask's
scheduler. Give each worker one thread and let roughsig use its cores (`n_jobs`), or its GPU
(`device="gpu"`): the library parallelises within a chunk, Dask across chunks and machines.

    python examples/dask_signatures.py            # a local cluster of two workers
    python examples/dask_signatures.py tcp://scheduler:8786

On a real cluster, point `Client` at the scheduler and read the paths with `dask.array.from_zarr`,
`from_npy_stack` or `from_array` over a memory-mapped `.npy` file.
"""

import sys

import dask.array as da
import numpy as np
from dask.distributed import Client, LocalCluster

import roughsig


def sig_features(paths, degree, *, log_sig_method=None, **options):
    """Signatures (or, with `log_sig_method`, log-signatures) of every path of a Dask array
    `(n, length, dimension)`, as a Dask array `(n, features)` with the same chunks along `n`.
    `options` are roughsig's: `time_aug`, `lead_lag`, `end_time`, `n_jobs`, `device`."""
    paths = paths.rechunk({1: -1, 2: -1})
    dim = paths.shape[2]
    shape = {k: options[k] for k in ("time_aug", "lead_lag") if k in options}
    if log_sig_method is None:
        width = roughsig.sig_length(dim, degree, **shape)
        chunk = lambda block: roughsig.sig(block, degree, **options)  # noqa: E731
    else:
        width = (roughsig.sig_length(dim, degree, **shape) if log_sig_method == 0
                 else roughsig.log_sig_length(dim, degree, **shape))
        chunk = lambda block: roughsig.log_sig(block, degree, method=log_sig_method,  # noqa: E731
                                               **options)
    return paths.map_blocks(chunk, drop_axis=2, chunks=(paths.chunks[0], (width,)),
                            dtype=paths.dtype)


def main(address=None):
    rng = np.random.default_rng(0)
    paths = rng.standard_normal((2000, 200, 4)).cumsum(axis=1)
    with (Client(address) if address else
          Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True))) as client:
        print(client)
        x = da.from_array(paths, chunks=(250, -1, -1))
        features = sig_features(x, 4, time_aug=True, n_jobs=1).compute()
        log_features = sig_features(x, 4, log_sig_method=2, n_jobs=1).compute()
    direct = roughsig.sig(paths, 4, time_aug=True)
    print(f"signatures {features.shape}, log-signatures {log_features.shape}, "
          f"largest difference from one local call {np.abs(features - direct).max():.1e}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
