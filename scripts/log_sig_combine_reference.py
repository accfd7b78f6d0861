#!/usr/bin/env python3
"""Reference cases for the products and segments of log-signatures from pySigLib 4.0.0:
`log_sig_combine`, `log_sig_join`, `linear_sig`, `linear_log_sig` and their backprops, in the golden
cases' layout: each case a folder with `case.json` (the exact pySigLib call, its parameters, and the
inputs' and outputs' files) and float64 `.npy` arrays.

    python -m venv v && v/bin/pip install pysiglib==4.0.0      # brings torch
    v/bin/python scripts/log_sig_combine_reference.py tests/data/log_sig_combine

Log-signatures are the Lyndon-basis (method 2) log-signatures of seeded random paths; any vector of
coordinates is a Lie element, so seeded noise is added to reach beyond log-signatures of paths.
"""
import json
import os
import sys

import numpy as np
import pysiglib

out_dir = sys.argv[1]
rng = np.random.default_rng(2028)


def save(case_dir, arrays):
    for name, a in arrays.items():
        np.save(os.path.join(case_dir, name + ".npy"), np.ascontiguousarray(a, dtype=np.float64))
    return {name: {"file": name + ".npy", "shape": list(np.shape(a))} for name, a in arrays.items()}


def write(name, function, call, params, inputs, outputs):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    case = {"function": function, "call": call, "params": params,
            "inputs": save(d, inputs), "outputs": save(d, outputs),
            "generator": f"pysiglib {pysiglib.__version__}"}
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    print(name, {k: np.shape(v) for k, v in {**inputs, **outputs}.items()})


def lyndon_log_sigs(batch, dim, deg, ta=False, ll=False):
    path = rng.standard_normal(batch + (6, dim)).cumsum(axis=-2) / 3
    ls = pysiglib.log_sig(path, deg, time_aug=ta, lead_lag=ll, method=2)
    return ls + 0.05 * rng.standard_normal(ls.shape)


# log_sig_combine: (dimension, degree, time_aug, lead_lag, batch shape)
for dim, deg, ta, ll, batch in [(2, 4, False, False, (3,)), (3, 3, True, False, (2,)),
                                (2, 3, True, True, (2,)), (3, 5, False, False, (2,)),
                                (4, 2, False, False, ())]:
    flags = f"time_aug={ta}, lead_lag={ll}"
    pysiglib.prepare_log_sig(dim, deg, 2, time_aug=ta, lead_lag=ll)
    pysiglib.prepare_log_sig(dim, deg, 3, time_aug=ta, lead_lag=ll)
    prepare = (f"pysiglib.prepare_log_sig({dim}, {deg}, 2, {flags}); "
               f"pysiglib.prepare_log_sig({dim}, {deg}, 3, {flags}); ")
    ls1, ls2 = lyndon_log_sigs(batch, dim, deg, ta, ll), lyndon_log_sigs(batch, dim, deg, ta, ll)
    out = pysiglib.log_sig_combine(ls1.copy(), ls2.copy(), dim, deg, time_aug=ta, lead_lag=ll)
    deriv = rng.standard_normal(out.shape)
    g1, g2 = pysiglib.log_sig_combine_backprop(deriv.copy(), ls1.copy(), ls2.copy(), dim, deg,
                                               time_aug=ta, lead_lag=ll)
    params = {"dimension": dim, "degree": deg, "time_aug": ta, "lead_lag": ll}
    name = f"log_sig_combine_d{dim}_deg{deg}_ta{int(ta)}_ll{int(ll)}{'_s' if batch == () else ''}"
    write(name, "log_sig_combine",
          prepare + f"pysiglib.log_sig_combine(log_sig1, log_sig2, {dim}, {deg}, {flags})",
          params, {"log_sig1": ls1, "log_sig2": ls2}, {"log_sig": out})
    write(name + "_bp", "log_sig_combine_backprop",
          prepare + f"pysiglib.log_sig_combine_backprop(deriv, log_sig1, log_sig2, {dim}, {deg}, {flags})",
          params, {"deriv": deriv, "log_sig1": ls1, "log_sig2": ls2},
          {"log_sig1_derivs": g1, "log_sig2_derivs": g2})

# log_sig_join: (dimension, degree, batch shape)
for dim, deg, batch in [(2, 4, (3,)), (3, 3, (2,)), (3, 5, (2,)), (2, 3, ())]:
    pysiglib.prepare_log_sig(dim, deg, 2)
    pysiglib.prepare_log_sig(dim, deg, 3)
    prepare = (f"pysiglib.prepare_log_sig({dim}, {deg}, 2); "
               f"pysiglib.prepare_log_sig({dim}, {deg}, 3); ")
    ls = lyndon_log_sigs(batch, dim, deg)
    v = rng.standard_normal(batch + (dim,)) / 2
    out = pysiglib.log_sig_join(ls.copy(), v.copy(), dim, deg)
    deriv = rng.standard_normal(out.shape)
    gl, gv = pysiglib.log_sig_join_backprop(deriv.copy(), ls.copy(), v.copy(), dim, deg)
    params = {"dimension": dim, "degree": deg}
    name = f"log_sig_join_d{dim}_deg{deg}{'_s' if batch == () else ''}"
    write(name, "log_sig_join",
          prepare + f"pysiglib.log_sig_join(log_sig, displacement, {dim}, {deg})",
          params, {"log_sig": ls, "displacement": v}, {"log_sig_joined": out})
    write(name + "_bp", "log_sig_join_backprop",
          prepare + f"pysiglib.log_sig_join_backprop(deriv, log_sig, displacement, {dim}, {deg})",
          params, {"deriv": deriv, "log_sig": ls, "displacement": v},
          {"log_sig_derivs": gl, "displacement_derivs": gv})

# linear_sig: (dimension, degree, scalar_term, batch shape)
for dim, deg, st, batch in [(2, 4, False, (3,)), (3, 3, True, (2, 2)), (5, 2, False, ())]:
    v = rng.standard_normal(batch + (dim,)) / 2
    out = pysiglib.linear_sig(v.copy(), dim, deg, scalar_term=st)
    name = f"linear_sig_d{dim}_deg{deg}_st{int(st)}{'_s' if batch == () else ''}"
    write(name, "linear_sig",
          f"pysiglib.linear_sig(displacement, {dim}, {deg}, scalar_term={st})",
          {"dimension": dim, "degree": deg, "scalar_term": st},
          {"displacement": v}, {"sig": out})

# linear_log_sig: (dimension, degree, method, scalar_term, batch shape)
for dim, deg, method, st, batch in [(2, 4, 0, True, (3,)), (3, 3, 1, False, (2,)),
                                    (3, 4, 2, False, (2,)), (2, 3, 0, False, ())]:
    v = rng.standard_normal(batch + (dim,)) / 2
    out = pysiglib.linear_log_sig(v.copy(), dim, deg, method=method, scalar_term=st)
    deriv = rng.standard_normal(out.shape)
    grad = pysiglib.linear_log_sig_backprop(deriv.copy(), v.copy(), dim, deg, method=method,
                                            scalar_term=st)
    params = {"dimension": dim, "degree": deg, "method": method, "scalar_term": st}
    name = f"linear_log_sig_d{dim}_deg{deg}_m{method}_st{int(st)}{'_s' if batch == () else ''}"
    write(name, "linear_log_sig",
          f"pysiglib.linear_log_sig(displacement, {dim}, {deg}, method={method}, scalar_term={st})",
          params, {"displacement": v}, {"log_sig": out})
    write(name + "_bp", "linear_log_sig_backprop",
          f"pysiglib.linear_log_sig_backprop(deriv, displacement, {dim}, {deg}, method={method}, "
          f"scalar_term={st})",
          params, {"deriv": deriv, "displacement": v}, {"displacement_derivs": grad})
