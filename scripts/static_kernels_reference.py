#!/usr/bin/env python3
"""Reference cases for pySigLib 4.0.0's static kernels beyond linear and RBF (`PolynomialKernel`,
`Matern12Kernel`, `Matern32Kernel`, `Matern52Kernel`, `RationalQuadraticKernel`): `sig_kernel` and
`sig_kernel_backprop` of seeded random walks, in the golden cases' layout (each case a folder with
`case.json`, holding the exact pySigLib call and its parameters, and float64 `.npy` arrays).

    python -m venv v && v/bin/pip install pysiglib==4.0.0      # brings torch
    v/bin/python scripts/static_kernels_reference.py tests/data/static_kernels
"""
import sys

import numpy as np
import pysiglib

from reference_cases import write

out_dir = sys.argv[1]
rng = np.random.default_rng(2033)


# (name, constructor source, the kernel as the CLI spells it, keyword arguments, shapes)
CASES = [
    ("matern12", "pysiglib.Matern12Kernel(0.7)", "matern12:0.7", {"dyadic_order": 1}),
    ("matern32", "pysiglib.Matern32Kernel(1.3)", "matern32:1.3", {"dyadic_order": 0,
                                                                   "time_aug": True}),
    ("matern52", "pysiglib.Matern52Kernel(0.9)", "matern52:0.9", {"dyadic_order": 1,
                                                                   "lead_lag": True}),
    ("rational_quadratic", "pysiglib.RationalQuadraticKernel(0.8, 1.7)",
     "rational-quadratic:0.8,1.7", {"dyadic_order": 1}),
    ("polynomial_int", "pysiglib.PolynomialKernel(3.0, 0.5, 1.2)", "polynomial:3.0,0.5,1.2",
     {"dyadic_order": 0}),
    ("polynomial_frac", "pysiglib.PolynomialKernel(2.5, 1.0, 0.7)", "polynomial:2.5,1.0,0.7",
     {"dyadic_order": 1, "time_aug": True, "end_time": 2.0}),
]

for name, ctor, spec, kw in CASES:
    x = rng.standard_normal((3, 7, 2)).cumsum(axis=-2) / np.sqrt(7)
    y = rng.standard_normal((3, 6, 2)).cumsum(axis=-2) / np.sqrt(6)
    derivs = rng.standard_normal(3)
    kw_src = "".join(f", {k}={v!r}" for k, v in kw.items())
    params = {"static_kernel": spec, **kw}
    scope = {"pysiglib": pysiglib, "path1": x.copy(), "path2": y.copy(), "derivs": derivs.copy()}
    for function, call, inputs, outputs in [
        ("sig_kernel", f"pysiglib.sig_kernel(path1, path2, static_kernel={ctor}{kw_src})",
         {"path1": x, "path2": y}, ["kernel"]),
        ("sig_kernel_backprop",
         f"pysiglib.sig_kernel_backprop(derivs, path1, path2, left_deriv=True, right_deriv=True, "
         f"static_kernel={ctor}{kw_src})",
         {"derivs": derivs, "path1": x, "path2": y}, ["path1_derivs", "path2_derivs"]),
    ]:
        got = eval(call, scope)
        got = got if isinstance(got, tuple) else (got,)
        write(out_dir, f"{function}_{name}", function, call, params, inputs,
              {k: np.asarray(v) for k, v in zip(outputs, got)})
