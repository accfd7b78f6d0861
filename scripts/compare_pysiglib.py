#!/usr/bin/env python3
"""Time pySigLib and roughsig on the same inputs in the same run, and print tables of ratios:
signatures and their gradients, signature kernels, log-signatures, and one long path's scaling.

Installs nothing: run it with a Python that has pySigLib (`pip install pysiglib==4.0.0` in a venv; it
brings torch), after `cargo build --release`:

    python scripts/compare_pysiglib.py [--repeats 5] [--rounds 3] [--quick]
                                       [--only sig,leadlag,kernel,logsig,long]
                                       [--binary target/release/roughsig]

roughsig is timed through its CLI's `--repeat`, which excludes file I/O; pySigLib in-process. Both
report the best of the repeats (`--stat min`, the default: on a shared virtual machine interference
only ever adds time) or their median (`--stat median`). In the signature table the two sides' repeats
alternate `--rounds` times per row, so that both meet the same drift in the machine's load. Results
of the two are checked to agree before a time is reported.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pysiglib

# (batch, length, dim, degree): pySigLib's published benchmark shapes at this machine's scale.
LONG_PATH = (1, 100_000, 4, 6)  # one long path: the time split's scaling
CONFIGS = [
    (128, 256, 4, 6),
    (32, 1024, 8, 5),
    (1, 4096, 2, 10),
    (1024, 64, 3, 4),
    (64, 128, 16, 3),
]


STAT = "min"  # set from --stat


def summary(times):
    return min(times) if STAT == "min" else statistics.median(times)


def time_pysiglib(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return summary(times), out


def time_roughsig(binary, args, repeats, out_file):
    cmd = [binary, *args, "--device", "cpu", "--repeat", str(repeats), "-o", out_file]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"roughsig failed: {' '.join(cmd)}\n{proc.stderr}")
    line = [l for l in proc.stderr.splitlines() if l.startswith("{")][-1]
    return json.loads(line)[f"{STAT}_ms"], np.load(out_file)


ROUNDS = 1  # set from --rounds


def side_by_side(theirs, ours):
    """Time `theirs()` and `ours()` (each returning (ms, output)) alternately, ROUNDS times, and
    summarise each side over the rounds. Interference on a shared machine drifts over minutes;
    alternating exposes both sides to the same stretches of it."""
    t_times, o_times = [], []
    for _ in range(ROUNDS):
        t_ms, t_out = theirs()
        o_ms, o_out = ours()
        t_times.append(t_ms)
        o_times.append(o_ms)
    return summary(t_times), t_out, summary(o_times), o_out


def cpu_ghz():
    """The nominal clock from /proc/cpuinfo (Linux), for the peak estimate."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(l.split(":")[1]) for l in f if l.lower().startswith("cpu mhz")]
        return max(mhz) / 1e3 if mhz else None
    except OSError:
        return None


def vector_bits():
    """The widest vectors the kernels use on this CPU: 512 with AVX-512 F (Linux), else 256 (AVX2)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":")[1].split() for l in f if l.startswith("flags")), [])
        return 512 if "avx512f" in flags else 256
    except OSError:
        return 256


def fmas(op, batch, length, dim, degree):
    """Multiply-adds of Horner's forward pass: sig_len · d/(d-1) per step (sig_len · degree at d = 1)."""
    sig_len = sum(dim ** k for k in range(1, degree + 1))
    per_step = sig_len * dim / (dim - 1) if dim > 1 else sig_len * degree
    return batch * (length - 1) * per_step


def check(name, ours, theirs, dtype):
    scale = max(1.0, float(np.max(np.abs(theirs))))
    err = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)))) / scale
    limit = 1e-9 if dtype == np.float64 else 1e-3
    if err > limit:
        sys.exit(f"{name}: roughsig and pySigLib disagree (max error {err:.2e} relative to {scale:.2e})")


def long_path_scaling(binary, repeats, threads):
    """One long path: roughsig with 1 thread and with all, the time split's speed-up."""
    batch, length, dim, degree = LONG_PATH
    rng = np.random.default_rng(1)
    lines = [f"\nOne long path {LONG_PATH}, roughsig, f64:"]
    with tempfile.TemporaryDirectory() as tmp:
        f = lambda name: os.path.join(tmp, name)
        np.save(f("path.npy"), rng.standard_normal((batch, length, dim)) * 0.01)
        fwd = ["sig", f("path.npy"), "--degree", str(degree)]
        t1, sig = time_roughsig(binary, fwd + ["--jobs", "1"], repeats, f("sig.npy"))
        tn, _ = time_roughsig(binary, fwd + ["--jobs", str(threads)], repeats, f("out.npy"))
        np.save(f("sig.npy"), sig)
        np.save(f("derivs.npy"), rng.standard_normal(sig.shape))
        bwd = ["sig-backprop", f("path.npy"), f("sig.npy"), f("derivs.npy"), "--degree", str(degree)]
        b1, _ = time_roughsig(binary, bwd + ["--jobs", "1"], repeats, f("out.npy"))
        bn, _ = time_roughsig(binary, bwd + ["--jobs", str(threads)], repeats, f("out.npy"))
    lines.append(f"sig: {t1:.1f} ms with 1 thread, {tn:.1f} ms with {threads}: {t1 / tn:.2f}x")
    lines.append(f"sig_backprop: {b1:.1f} ms with 1 thread, {bn:.1f} ms with {threads}: {b1 / bn:.2f}x")
    return "\n".join(lines)


# Lead-lag paths (batch, length, dim, degree, time_aug) whose transformed dimension (2·dim + time)
# has no specialised dense kernel, where roughsig skips the still half of each step's channels.
LEAD_LAG = [(64, 256, 4, 4, True), (64, 256, 5, 4, False), (64, 256, 8, 3, True)]


def lead_lag_rows(binary, repeats, rng):
    """Lead-lag signatures and gradients, one thread: pySigLib, roughsig, and roughsig's dense step
    (`ROUGHSIG_LEAD_LAG=dense`), on the same inputs."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        f = lambda name: os.path.join(tmp, name)
        for batch, length, dim, degree, time_aug in LEAD_LAG:
            flags = dict(lead_lag=True, time_aug=time_aug)
            cli_flags = ["--lead-lag"] + (["--time-aug"] if time_aug else [])
            for dtype, op in [(np.float64, "sig"), (np.float32, "sig"), (np.float64, "sig_backprop")]:
                path = (rng.standard_normal((batch, length, dim)) * 0.1).astype(dtype)
                np.save(f("path.npy"), path)
                sig = pysiglib.sig(path, degree, **flags)
                derivs = rng.standard_normal(sig.shape).astype(dtype)
                np.save(f("sig.npy"), sig)
                np.save(f("derivs.npy"), derivs)
                if op == "sig":
                    theirs_ms, theirs = time_pysiglib(lambda: pysiglib.sig(path, degree, **flags), repeats)
                    cli = ["sig", f("path.npy")]
                else:
                    theirs_ms, theirs = time_pysiglib(
                        lambda: pysiglib.sig_backprop(path, sig, derivs, degree, **flags), repeats)
                    cli = ["sig-backprop", f("path.npy"), f("sig.npy"), f("derivs.npy")]
                cli += ["--degree", str(degree), "--jobs", "1", *cli_flags]
                ours_ms, ours = time_roughsig(binary, cli, repeats, f("out.npy"))
                os.environ["ROUGHSIG_LEAD_LAG"] = "dense"
                try:
                    dense_ms, _ = time_roughsig(binary, cli, repeats, f("out.npy"))
                finally:
                    del os.environ["ROUGHSIG_LEAD_LAG"]
                name = f"{op} lead-lag{' + time' if time_aug else ''} {np.dtype(dtype).name} {(batch, length, dim, degree)}"
                check(name, ours, theirs, dtype)
                rows.append((name, theirs_ms, dense_ms, ours_ms))
                print(f"{name}: pySigLib {theirs_ms:.2f} ms, roughsig {ours_ms:.2f} ms (dense step {dense_ms:.2f})",
                      file=sys.stderr, flush=True)
    return rows


def kernel_rows(binary, repeats, threads, rng):
    """Signature kernel forward + backward (both gradients), batch 32, length 128, dim 8, all threads."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        f = lambda name: os.path.join(tmp, name)
        x = rng.standard_normal((32, 128, 8)) * 0.02
        y = rng.standard_normal((32, 128, 8)) * 0.02
        derivs = np.ones(32)
        np.save(f("x.npy"), x)
        np.save(f("y.npy"), y)
        np.save(f("d.npy"), derivs)
        solvers = [
            ("dyadic order 0", {"dyadic_order": 0}, ["--dyadic-order", "0"]),
            ("dyadic order 2", {"dyadic_order": 2}, ["--dyadic-order", "2"]),
            ("polynomial order 8", {"method": "polynomial", "order": 8},
             ["--method", "polynomial", "--order", "8"]),
            ("Matérn-3/2 kernel, dyadic order 1",
             {"dyadic_order": 1, "static_kernel": pysiglib.Matern32Kernel(0.05)},
             ["--dyadic-order", "1", "--static-kernel", "matern32:0.05"]),
            ("rational-quadratic kernel, dyadic order 1",
             {"dyadic_order": 1, "static_kernel": pysiglib.RationalQuadraticKernel(0.05, 2.0)},
             ["--dyadic-order", "1", "--static-kernel", "rational-quadratic:0.05,2.0"]),
        ]
        for label, kw, solver in solvers:
            def theirs():
                k = pysiglib.sig_kernel(x, y, n_jobs=threads, **kw)
                pysiglib.sig_kernel_backprop(derivs, x, y, left_deriv=True, right_deriv=True,
                                             n_jobs=threads, **kw)
                return k
            theirs_ms, k_ref = time_pysiglib(theirs, repeats)
            opts = [*solver, "--jobs", str(threads)]
            fwd_ms, k = time_roughsig(binary, ["sig-kernel", f("x.npy"), f("y.npy"), *opts], repeats, f("k.npy"))
            bwd_ms, _ = time_roughsig(binary, ["sig-kernel-backprop", f("d.npy"), f("x.npy"), f("y.npy"), *opts,
                                               "--output2", f("dy.npy")], repeats, f("dx.npy"))
            check(f"sig_kernel {label}", k, k_ref, np.float64)
            rows.append((f"sig_kernel + backprop, {label}", threads, theirs_ms, fwd_ms + bwd_ms))
    return rows


def logsig_rows(binary, repeats, rng):
    """Log-signatures at (32, 256, 4, 5), one thread, each method."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        f = lambda name: os.path.join(tmp, name)
        path = rng.standard_normal((32, 256, 4)) * 0.1
        np.save(f("path.npy"), path)
        for name, method in (("expanded", 0), ("words", 1), ("lyndon", 2)):
            pysiglib.prepare_log_sig(4, 5, method)
            theirs_ms, ref = time_pysiglib(lambda: pysiglib.log_sig(path, 5, method=method, n_jobs=1), repeats)
            cli = ["log-sig", f("path.npy"), "--degree", "5", "--method", name, "--jobs", "1"]
            ours_ms, ours = time_roughsig(binary, cli, repeats, f("out.npy"))
            check(f"log_sig {name}", ours, ref, np.float64)
            rows.append((f"log_sig {name}, (32, 256, 4, 5)", 1, theirs_ms, ours_ms))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "roughsig"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="first two shapes, one thread count")
    ap.add_argument("--only", default="sig,leadlag,kernel,logsig,long",
                    help="comma-separated tables to run: sig, leadlag, kernel, logsig, long (default: all)")
    ap.add_argument("--stat", choices=["min", "median"], default="min", help="how the repeats are summarised")
    ap.add_argument("--rounds", type=int, default=3,
                    help="signature table: alternate pySigLib's and roughsig's repeats this many times per row")
    args = ap.parse_args()
    global STAT, ROUNDS
    STAT, ROUNDS = args.stat, max(1, args.rounds)
    only = set(args.only.split(","))
    unknown = only - {"sig", "leadlag", "kernel", "logsig", "long"}
    if unknown:
        ap.error(f"unknown tables in --only: {', '.join(sorted(unknown))}")
    threads = os.cpu_count() or 1
    configs = [] if "sig" not in only else CONFIGS[:2] if args.quick else CONFIGS
    jobs_list = [1] if args.quick else sorted({1, threads})
    rng = np.random.default_rng(0)
    rows = []
    ghz, bits = cpu_ghz(), vector_bits()
    with tempfile.TemporaryDirectory() as tmp:
        f = lambda name: os.path.join(tmp, name)
        for batch, length, dim, degree in configs:
            for dtype, op in [(np.float64, "sig"), (np.float32, "sig"), (np.float64, "sig_backprop")]:
                path = (rng.standard_normal((batch, length, dim)) * 0.1).astype(dtype)
                np.save(f("path.npy"), path)
                sig = pysiglib.sig(path, degree)
                derivs = rng.standard_normal(sig.shape).astype(dtype)
                np.save(f("sig.npy"), sig)
                np.save(f("derivs.npy"), derivs)
                for jobs in jobs_list:
                    if op == "sig":
                        run_theirs = lambda: time_pysiglib(lambda: pysiglib.sig(path, degree, n_jobs=jobs), args.repeats)
                        cli = ["sig", f("path.npy"), "--degree", str(degree), "--jobs", str(jobs)]
                    else:
                        run_theirs = lambda: time_pysiglib(
                            lambda: pysiglib.sig_backprop(path, sig, derivs, degree, n_jobs=jobs), args.repeats)
                        cli = ["sig-backprop", f("path.npy"), f("sig.npy"), f("derivs.npy"), "--degree", str(degree),
                               "--jobs", str(jobs)]
                    run_ours = lambda: time_roughsig(args.binary, cli, args.repeats, f("out.npy"))
                    theirs_ms, theirs, ours_ms, ours = side_by_side(run_theirs, run_ours)
                    name = f"{op} {np.dtype(dtype).name} {(batch, length, dim, degree)} jobs={jobs}"
                    check(name, ours, theirs, dtype)
                    # Peak: two FMA units per core, as wide as the vectors the kernels use.
                    lanes = bits // (64 if dtype == np.float64 else 32)
                    peak = ghz * 1e9 * 2 * lanes * jobs if ghz else None
                    rate = fmas(op, batch, length, dim, degree) / (ours_ms / 1e3)
                    frac = f"{100 * rate / peak:.0f}%" if (peak and op == "sig") else "–"
                    rows.append((op, np.dtype(dtype).name, (batch, length, dim, degree), jobs, theirs_ms, ours_ms, frac))
                    print(f"{name}: pySigLib {theirs_ms:.2f} ms, roughsig {ours_ms:.2f} ms, "
                          f"ratio {theirs_ms / ours_ms:.2f}x", file=sys.stderr, flush=True)
    print(f"\npySigLib {pysiglib.__version__} vs roughsig, {STAT} of {args.repeats} repeats × {ROUNDS} alternating rounds, "
          f"{time.strftime('%Y-%m-%d')}, "
          f"{threads} threads available\n")
    if rows:
        print("| op | dtype | (batch, length, dim, degree) | threads | pySigLib ms | roughsig ms | speed-up | FMA peak |")
        print("|---|---|---|---|---|---|---|---|")
    for op, dt, cfg, jobs, theirs_ms, ours_ms, frac in rows:
        print(f"| {op} | {dt} | {cfg} | {jobs} | {theirs_ms:.2f} | {ours_ms:.2f} | {theirs_ms / ours_ms:.2f}x | {frac} |")
    if not args.quick and "leadlag" in only:
        print("\n| op, one thread | pySigLib ms | roughsig ms, dense step | roughsig ms | speed-up | from skipping |")
        print("|---|---|---|---|---|---|")
        for name, theirs_ms, dense_ms, ours_ms in lead_lag_rows(args.binary, args.repeats, rng):
            print(f"| {name} | {theirs_ms:.2f} | {dense_ms:.2f} | {ours_ms:.2f} | {theirs_ms / ours_ms:.2f}x "
                  f"| {dense_ms / ours_ms:.2f}x |")
    extra = []
    if not args.quick and "kernel" in only:
        extra += kernel_rows(args.binary, args.repeats, threads, rng)
    if not args.quick and "logsig" in only:
        extra += logsig_rows(args.binary, args.repeats, rng)
    if extra:
        print("\n| op (f64) | threads | pySigLib ms | roughsig ms | speed-up |")
        print("|---|---|---|---|---|")
        for op, jobs, theirs_ms, ours_ms in extra:
            print(f"| {op} | {jobs} | {theirs_ms:.2f} | {ours_ms:.2f} | {theirs_ms / ours_ms:.2f}x |")
    if not args.quick and threads > 1 and "long" in only:
        print(long_path_scaling(args.binary, args.repeats, threads))
    if ghz and rows:
        print(f"\nFMA peak: Horner's sig_len·d/(d-1) multiply-adds per step against {ghz:.2f} GHz × 2 FMA units "
              f"× {bits // 64} (f64) or {bits // 32} (f32) lanes ({bits}-bit vectors) × threads.")


if __name__ == "__main__":
    main()
