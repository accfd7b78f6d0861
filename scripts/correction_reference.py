#!/usr/bin/env python3
"""Reference cases for pySigLib 4.0.0's `correction` argument (`sig`, `sig_backprop`, `log_sig`), in
the golden cases' layout: each case a folder with `case.json` (the exact pySigLib call, its
parameters, and the inputs' and outputs' files) and float64 `.npy` arrays.

    python -m venv v && v/bin/pip install pysiglib==4.0.0      # brings torch
    v/bin/python scripts/correction_reference.py tests/data/correction

Paths are seeded random walks; corrections are seeded noise of every accepted shape: one row for
all segments, one per segment, one per segment and path, and rows holding fewer levels than the
degree.
"""
import sys

import numpy as np
import pysiglib

from reference_cases import write

out_dir = sys.argv[1]
rng = np.random.default_rng(2031)


def width(d, m):
    return sum(d ** k for k in range(2, m + 1))


# (path shape, degree, correction levels m, correction layout, keyword arguments as source and
# parameters; the log-signature method where the case is a log_sig case)
CASES = [
    ((6, 2), 3, 2, "one", {}),
    ((3, 7, 2), 4, 3, "segment", {}),
    ((2, 2, 5, 3), 3, 3, "path", {}),
    ((4, 6, 2), 4, 2, "path", {"time_aug": True, "end_time": 2.0}),
    ((5, 3), 3, 2, "segment", {"scalar_term": True}),
    ((2, 5, 2), 4, 4, "one", {"time_aug": True}),
]
LOG_CASES = [
    ((3, 6, 2), 4, 2, "segment", {"method": 0}),
    ((3, 6, 2), 4, 3, "path", {"method": 1}),
    ((2, 5, 3), 3, 2, "one", {"method": 2, "time_aug": True}),
    ((6, 2), 3, 3, "segment", {"method": 0, "scalar_term": True}),
]


def correction_for(shape, m, layout):
    c = width(shape[-1], m)
    segments = shape[-2] - 1
    if layout == "one":
        return 0.3 * rng.standard_normal(c)
    if layout == "segment":
        return 0.3 * rng.standard_normal((segments, c))
    return 0.3 * rng.standard_normal((*shape[:-2], segments, c))


def kwargs_source(params):
    return "".join(f", {k}={v!r}" for k, v in params.items())


for k, (shape, degree, m, layout, params) in enumerate(CASES):
    path = rng.standard_normal(shape).cumsum(axis=-2) / np.sqrt(shape[-2])
    corr = correction_for(shape, m, layout)
    params = {"degree": degree, **params}
    kw = kwargs_source({k: v for k, v in params.items() if k != "degree"})
    call = f"pysiglib.sig(path, {degree}, correction=correction{kw})"
    scope = {"pysiglib": pysiglib, "path": path.copy(), "correction": corr.copy()}
    s = np.asarray(eval(call, scope))
    write(out_dir, f"sig_{k}", "sig", call, params, {"path": path, "correction": corr}, {"sig": s})
    derivs = rng.standard_normal(s.shape)
    bp_kw = kwargs_source({k: v for k, v in params.items() if k not in ("degree", "scalar_term")})
    bp_call = (f"pysiglib.sig_backprop(path, sig, sig_derivs, {degree}, correction=correction"
               f"{bp_kw})")
    scope.update(sig=s.copy(), sig_derivs=derivs.copy())
    g = np.asarray(eval(bp_call, scope))
    write(out_dir, f"sig_backprop_{k}", "sig_backprop", bp_call, params,
          {"path": path, "correction": corr, "sig": s, "sig_derivs": derivs}, {"grad": g})

for k, (shape, degree, m, layout, params) in enumerate(LOG_CASES):
    path = rng.standard_normal(shape).cumsum(axis=-2) / np.sqrt(shape[-2])
    corr = correction_for(shape, m, layout)
    params = {"degree": degree, **params}
    kw = kwargs_source({k: v for k, v in params.items() if k != "degree"})
    pysiglib.prepare_log_sig(shape[-1], degree, params["method"],
                             time_aug=params.get("time_aug", False))
    call = f"pysiglib.log_sig(path, {degree}, correction=correction{kw})"
    scope = {"pysiglib": pysiglib, "path": path.copy(), "correction": corr.copy()}
    out = np.asarray(eval(call, scope))
    write(out_dir, f"log_sig_{k}", "log_sig", call, params, {"path": path, "correction": corr},
          {"log_sig": out})
