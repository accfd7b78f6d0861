#!/usr/bin/env python3
"""Reference cases for the signature-kernel metrics from pySigLib 4.0.0 (`sig_mmd`, `sig_score`,
`expected_sig_score`), in the golden cases' layout: each case a folder with `case.json` (the exact
pySigLib call, its parameters, and the inputs' and outputs' files) and float64 `.npy` arrays.

    python -m venv v && v/bin/pip install pysiglib==4.0.0      # brings torch
    v/bin/python scripts/sig_metrics_reference.py tests/data/sig_metrics

Samples are seeded random walks.
"""
import json
import os
import sys

import numpy as np
import pysiglib

out_dir = sys.argv[1]
rng = np.random.default_rng(2029)


def save(case_dir, arrays):
    for name, a in arrays.items():
        np.save(os.path.join(case_dir, name + ".npy"), np.array(a, dtype=np.float64, order="C"))
    return {name: {"file": name + ".npy", "shape": list(np.shape(a))} for name, a in arrays.items()}


def walk(*shape):
    return rng.standard_normal(shape).cumsum(axis=-2) / np.sqrt(shape[-2])


# (function, sample1 shape, sample2 shape, keyword arguments as source, parameters)
CASES = [
    ("sig_mmd", (6, 10, 2), (5, 12, 2), "dyadic_order=1", {"dyadic_order": 1}),
    ("sig_mmd", (4, 8, 3), (7, 8, 3), "dyadic_order=0, time_aug=True, "
     "static_kernel=pysiglib.RBFKernel(1.5)", {"dyadic_order": 0, "time_aug": True, "rbf": 1.5}),
    ("sig_score", (5, 9, 2), (3, 11, 2), "dyadic_order=1, lam=0.5", {"dyadic_order": 1, "lam": 0.5}),
    ("sig_score", (4, 8, 2), (2, 2, 8, 2), "dyadic_order=0, lead_lag=True",
     {"dyadic_order": 0, "lead_lag": True, "lam": 1.0}),
    ("expected_sig_score", (5, 10, 3), (4, 10, 3), "dyadic_order=1, lam=2.0",
     {"dyadic_order": 1, "lam": 2.0}),
]

for k, (function, s1, s2, kw, params) in enumerate(CASES):
    x, y = walk(*s1), walk(*s2)
    call = f"pysiglib.{function}(sample1, sample2, {kw})"
    scope = {"pysiglib": pysiglib, "sample1": x.copy(), "sample2": y.copy()}
    out = np.asarray(eval(call, scope))
    name = f"{function}_{k}"
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    case = {"function": function, "call": call, "params": params,
            "inputs": save(d, {"sample1": x, "sample2": y}), "outputs": save(d, {"value": out}),
            "generator": f"pysiglib {pysiglib.__version__}"}
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    print(name, out.shape, out)
