#!/usr/bin/env python3
"""Reference cases for pySigLib 4.0.0's polynomial solver of the signature kernel
(`method="polynomial"`, `order`): `sig_kernel` (also `return_grid` and `normalize`) and
`sig_kernel_backprop` of seeded random walks, in the golden cases' layout (each case a folder with
`case.json`, holding the exact pySigLib call and its parameters, and float64 `.npy` arrays).

    python -m venv v && v/bin/pip install pysiglib==4.0.0      # brings torch
    v/bin/python scripts/polynomial_solver_reference.py tests/data/polynomial_solver
"""
import sys

import numpy as np
import pysiglib

from reference_cases import write

out_dir = sys.argv[1]
rng = np.random.default_rng(2035)


# (name, order, static kernel: constructor source and CLI spelling, other keyword arguments, and
# whether a backprop case goes with it)
CASES = [
    ("order8", 8, None, {}, True),
    ("order2_scaled", 2, ("pysiglib.ScaledLinearKernel(1.5)", "scaled-linear:1.5"), {}, True),
    ("order4_rbf_time", 4, ("pysiglib.RBFKernel(0.8)", "rbf:0.8"), {"time_aug": True}, True),
    ("order16_lead_lag", 16, None, {"lead_lag": True}, True),
    ("order6_matern52", 6, ("pysiglib.Matern52Kernel(0.9)", "matern52:0.9"), {}, True),
    ("order5_normalize", 5, None, {"normalize": True}, False),
    ("order6_grid", 6, None, {"return_grid": True}, False),
]

for name, order, kernel, kw, with_backprop in CASES:
    x = rng.standard_normal((3, 7, 2)).cumsum(axis=-2) / np.sqrt(7)
    y = rng.standard_normal((3, 6, 2)).cumsum(axis=-2) / np.sqrt(6)
    derivs = rng.standard_normal(3)
    kw_src = "".join(f", {k}={v!r}" for k, v in kw.items())
    if kernel is not None:
        kw_src += f", static_kernel={kernel[0]}"
    params = {"order": order, "static_kernel": "linear" if kernel is None else kernel[1], **kw}
    scope = {"pysiglib": pysiglib, "path1": x.copy(), "path2": y.copy(), "derivs": derivs.copy()}
    runs = [("sig_kernel",
             f"pysiglib.sig_kernel(path1, path2, method='polynomial', order={order}{kw_src})",
             {"path1": x, "path2": y}, ["kernel"])]
    if with_backprop:
        runs.append(("sig_kernel_backprop",
                     f"pysiglib.sig_kernel_backprop(derivs, path1, path2, left_deriv=True, "
                     f"right_deriv=True, method='polynomial', order={order}{kw_src})",
                     {"derivs": derivs, "path1": x, "path2": y}, ["path1_derivs", "path2_derivs"]))
    for function, call, inputs, outputs in runs:
        got = eval(call, scope)
        got = got if isinstance(got, tuple) else (got,)
        write(out_dir, f"{function}_{name}", function, call, params, inputs,
              {k: np.asarray(v) for k, v in zip(outputs, got)})
