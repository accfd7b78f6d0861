#!/usr/bin/env python3
"""Reference cases for log_sig_to_sig and its backprop from pySigLib 4.0.0 (`logsig_to_sig`,
`logsig_to_sig_backprop`), in the golden cases' layout: each case a folder with `case.json` (the
exact pySigLib call, its parameters, and the inputs' and outputs' files) and float64 `.npy` arrays.

    python -m venv v && v/bin/pip install pysiglib==4.0.0      # brings torch
    v/bin/python scripts/log_sig_to_sig_reference.py tests/data/log_sig_to_sig

Inputs are log-signatures of seeded random paths plus seeded noise (any vector of coefficients is a
Lie element for methods 1 and 2; method 0 exponentiates whatever tensor it is given).
"""
import json
import os
import sys

import numpy as np
import pysiglib

out_dir = sys.argv[1]
rng = np.random.default_rng(2027)

# (dimension, degree, method, time_aug, lead_lag, scalar_term, batch shape)
CASES = [
    (2, 4, 0, False, False, False, (3,)),
    (2, 4, 0, False, False, True, (3,)),
    (3, 3, 0, True, True, False, (2,)),
    (2, 4, 1, False, False, False, (3,)),
    (2, 4, 1, False, False, True, (3,)),
    (3, 4, 1, True, False, False, (2,)),
    (2, 6, 1, False, False, False, (2,)),
    (2, 4, 2, False, False, False, (3,)),
    (3, 3, 2, False, True, True, (2,)),
    (3, 5, 2, False, False, False, (2,)),
    (4, 3, 2, True, True, False, (2,)),
    (2, 3, 2, False, False, False, ()),
]


def save(case_dir, arrays):
    for name, a in arrays.items():
        np.save(os.path.join(case_dir, name + ".npy"), np.ascontiguousarray(a, dtype=np.float64))
    return {name: {"file": name + ".npy", "shape": list(np.shape(a))} for name, a in arrays.items()}


for dim, deg, method, ta, ll, st, batch in CASES:
    flags = f"time_aug={ta}, lead_lag={ll}"
    path = rng.standard_normal(batch + (8, dim)).cumsum(axis=-2) / 3
    if method != 0:
        # logsig_to_sig needs the bracket basis (method 2's preparation) for both Lyndon forms.
        pysiglib.prepare_log_sig(dim, deg, method, time_aug=ta, lead_lag=ll)
        pysiglib.prepare_log_sig(dim, deg, 2, time_aug=ta, lead_lag=ll)
    log_in = pysiglib.log_sig(path, deg, time_aug=ta, lead_lag=ll, method=method,
                              scalar_term=st)
    log_sig = log_in + 0.1 * rng.standard_normal(log_in.shape)
    prepare = (f"pysiglib.prepare_log_sig({dim}, {deg}, 2, {flags}); " if method != 0 else "")
    call = (f"pysiglib.logsig_to_sig(log_sig, {dim}, {deg}, {flags}, method={method}, "
            f"scalar_term={st})")
    sig = pysiglib.logsig_to_sig(log_sig.copy(), dim, deg, time_aug=ta, lead_lag=ll,
                                 method=method, scalar_term=st)
    sig_derivs = rng.standard_normal(sig.shape)
    bp_call = (f"pysiglib.logsig_to_sig_backprop(log_sig, sig_derivs, {dim}, {deg}, {flags}, "
               f"method={method}, scalar_term={st})")
    grad = pysiglib.logsig_to_sig_backprop(log_sig.copy(), sig_derivs.copy(), dim, deg,
                                           time_aug=ta, lead_lag=ll, method=method,
                                           scalar_term=st)
    name = (f"logsig_to_sig_m{method}_d{dim}_deg{deg}_ta{int(ta)}_ll{int(ll)}_st{int(st)}"
            f"{'_s' if batch == () else ''}")
    params = {"dimension": dim, "degree": deg, "method": method, "time_aug": ta,
              "lead_lag": ll, "scalar_term": st}
    for suffix, function, c, inputs, outputs in [
        ("", "logsig_to_sig", call, {"log_sig": log_sig}, {"sig": sig}),
        ("_bp", "logsig_to_sig_backprop", bp_call,
         {"log_sig": log_sig, "sig_derivs": sig_derivs}, {"log_sig_derivs": grad}),
    ]:
        d = os.path.join(out_dir, name + suffix)
        os.makedirs(d, exist_ok=True)
        case = {"function": function, "call": prepare + c, "params": params,
                "inputs": save(d, inputs), "outputs": save(d, outputs),
                "generator": f"pysiglib {pysiglib.__version__}"}
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(case, f, indent=1)
    print(name, log_sig.shape, sig.shape, float(np.abs(grad).max()))
