#!/usr/bin/env python3
"""The Python package against pySigLib's Python API, and against the Rust call it wraps.

Run with a Python that has both packages (`pip install ./python pysiglib==4.0.0`; pySigLib brings
torch), after `cargo build --release -p roughsig-cli`:

    python scripts/compare_python.py [--repeats 10] [--rounds 3] [--binary target/release/roughsig]
                                     [--only side,overhead,bch] [--bch-shapes "32,256,5,5;32,256,10,6"]

Table 1: `roughsig.sig` / `sig_backprop` and `pysiglib.sig` / `sig_backprop` on the same numpy
inputs, both on every core (`n_jobs=-1`), their repeats alternating `--rounds` times per row; each
side's best time. Results are checked to agree before a time is printed.

Table 2: the cost of the Python layer: `roughsig.sig` from Python against the same library call
timed inside the command line (`roughsig sig --repeat`, which excludes file I/O), alternating.

Table 3: log-signatures computed in the Lie algebra by BCH products (pySigLib's method 3, roughsig's
`method=3`), forward and backward (pySigLib's `_log_sig_from_path_backprop`, which its torch layer
calls), f64, every core, after `prepare_log_sig` (timed once, reported beside).
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import pysiglib
from pysiglib.log_sig_backprop import _log_sig_from_path_backprop

import roughsig

SHAPES = [(128, 256, 4, 6), (32, 1024, 8, 5), (1, 4096, 2, 10), (1024, 64, 3, 4), (64, 128, 16, 3)]


def best_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * min(times)


def paths(shape, dtype):
    b, n, d, _ = shape
    return np.random.default_rng(0).standard_normal((b, n, d)).cumsum(axis=1).astype(dtype) / n**0.5


def side_by_side(repeats, rounds):
    print("| op | dtype | (batch, length, dim, degree) | pySigLib ms | roughsig ms | ratio |")
    print("|---|---|---|---|---|---|")
    for shape in SHAPES:
        deg = shape[3]
        for op, dtype in (("sig", np.float32), ("sig", np.float64), ("sig_backprop", np.float64)):
            x = paths(shape, dtype)
            if op == "sig":
                ours = lambda: roughsig.sig(x, deg)  # noqa: E731
                theirs = lambda: pysiglib.sig(x, deg, n_jobs=-1)  # noqa: E731
            else:
                s = roughsig.sig(x, deg)
                ds = np.random.default_rng(1).standard_normal(s.shape)
                ours = lambda: roughsig.sig_backprop(x, s, ds, deg)  # noqa: E731
                theirs = lambda: pysiglib.sig_backprop(x, s, ds, deg, n_jobs=-1)  # noqa: E731
            a, b = np.asarray(ours()), np.asarray(theirs())
            tol = 1e-3 if dtype == np.float32 else 1e-8
            assert np.allclose(a, b, rtol=tol, atol=tol * np.abs(b).max()), (op, shape)
            t_ours, t_theirs = [], []
            for _ in range(rounds):
                t_theirs.append(best_ms(theirs, repeats))
                t_ours.append(best_ms(ours, repeats))
            o, t = min(t_ours), min(t_theirs)
            print(f"| {op} | {np.dtype(dtype).name} | {shape} | {t:.2f} | {o:.2f} | {t / o:.2f}x |")


def cli_ms(binary, x, degree, repeats):
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "x.npy"), os.path.join(tmp, "s.npy")
        np.save(src, x)
        run = subprocess.run([binary, "sig", src, "--degree", str(degree), "--device", "cpu",
                              "--repeat", str(repeats), "-o", out],
                             capture_output=True, text=True, check=True)
    timing = json.loads(run.stderr.strip().splitlines()[-1])
    return timing["min_ms"]


def overhead(binary, repeats, rounds):
    shape = (128, 256, 4, 6)
    print(f"\n| `sig` {shape} | dtype | Rust call ms (CLI --repeat) | Python call ms | overhead |")
    print("|---|---|---|---|---|")
    for dtype in (np.float32, np.float64):
        x = paths(shape, dtype)
        rust, py = [], []
        for _ in range(rounds):
            rust.append(cli_ms(binary, x, shape[3], repeats))
            py.append(best_ms(lambda: roughsig.sig(x, shape[3], device="cpu"), repeats))
        r, p = min(rust), min(py)
        print(f"| | {np.dtype(dtype).name} | {r:.3f} | {p:.3f} | {100 * (p - r) / r:+.1f} % |")


def bch(repeats, rounds, shapes):
    print("\n| log_sig, method 3 (BCH), f64 | pySigLib prepare s | pySigLib fwd ms | roughsig fwd ms "
          "| ratio | pySigLib bwd ms | roughsig bwd ms | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    threads = os.cpu_count() or 1
    for shape in shapes:
        b, n, d, deg = shape
        x = paths(shape, np.float64)
        t = time.perf_counter()
        pysiglib.prepare_log_sig(d, deg, method=3)
        prepare_s = time.perf_counter() - t
        ours = lambda: roughsig.log_sig(x, deg, method=3)  # noqa: E731
        theirs = lambda: pysiglib.log_sig(x, deg, method=3, n_jobs=threads)  # noqa: E731
        a, r = ours(), theirs()
        assert np.allclose(a, r, rtol=1e-9, atol=1e-9 * np.abs(r).max()), shape
        g = np.random.default_rng(1).standard_normal(r.shape)
        ours_b = lambda: roughsig.log_sig_backprop(x, g, deg, method=3)  # noqa: E731
        theirs_b = lambda: _log_sig_from_path_backprop(g, x, deg, n_jobs=threads)  # noqa: E731
        a, r = ours_b(), theirs_b()
        assert np.allclose(a, r, rtol=1e-8, atol=1e-8 * np.abs(r).max()), shape
        times = {k: [] for k in ("tf", "of", "tb", "ob")}
        for _ in range(rounds):
            times["tf"].append(best_ms(theirs, repeats))
            times["of"].append(best_ms(ours, repeats))
            times["tb"].append(best_ms(theirs_b, repeats))
            times["ob"].append(best_ms(ours_b, repeats))
        tf, of, tb, ob = (min(times[k]) for k in ("tf", "of", "tb", "ob"))
        print(f"| {shape} | {prepare_s:.2f} | {tf:.1f} | {of:.1f} | {tf / of:.2f}x | {tb:.1f} | {ob:.1f} "
              f"| {tb / ob:.2f}x |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", default="target/release/roughsig")
    ap.add_argument("--only", default="side,overhead", help="tables: side, overhead, bch")
    ap.add_argument("--bch-shapes", default="32,256,4,5;32,256,5,5",
                    help="(batch, length, dim, degree) of the BCH table, ';'-separated")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if "side" in only:
        side_by_side(args.repeats, args.rounds)
    if "overhead" in only:
        overhead(args.binary, args.repeats, args.rounds)
    if "bch" in only:
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.bch_shapes.split(";")]
        bch(args.repeats, args.rounds, shapes)


if __name__ == "__main__":
    main()
