#!/usr/bin/env python3
"""Reference cases for sig_coef and sig_coef_backprop from pySigLib 4.0.0.

pySigLib's Python layer imports torch; its CPU library does not. This script calls the library's
`sig_coef_d` and `sig_coef_backprop_d` through ctypes on numpy arrays, with the argument order of
pySigLib's own wrappers (pysiglib/sig_coef.py, pysiglib/sig_coef_backprop.py).

    pip download pysiglib==4.0.0 --no-deps -d wheel && unzip -q wheel/*.whl -d wheel/x
    python3 scripts/sig_coef_reference.py wheel/x/pysiglib tests/data/sig_coef
"""
import ctypes as C
import json
import os
import sys

import numpy as np

lib_dir, out_dir = sys.argv[1], sys.argv[2]
for dep in ["libtbb.so.12"]:
    C.CDLL(os.path.join(lib_dir, dep), mode=C.RTLD_GLOBAL)
lib = C.CDLL(os.path.join(lib_dir, "libcpsig.so"))
D, U = C.POINTER(C.c_double), C.POINTER(C.c_uint64)
lib.sig_coef_d.argtypes = (D, D, U, C.c_uint64, U, C.c_uint64, C.c_uint64, C.c_uint64,
                           C.c_bool, C.c_bool, C.c_double, C.c_bool, C.c_int)
lib.sig_coef_backprop_d.argtypes = (D, D, D, D, U, C.c_uint64, U, C.c_uint64, C.c_uint64,
                                    C.c_uint64, C.c_bool, C.c_bool, C.c_double, C.c_int)


def ptr(a, t):
    return a.ctypes.data_as(t)


def coef(path, words, time_aug, lead_lag, end_time, prefixes):
    flat = np.array([i for w in words for i in w] or [0], dtype=np.uint64)
    degrees = np.array([len(w) for w in words], dtype=np.uint64)
    n = sum(max(len(w), 1) for w in words) if prefixes else len(words)
    out = np.zeros((path.shape[0], n))
    err = lib.sig_coef_d(ptr(path, D), ptr(out, D), ptr(flat, U), len(words), ptr(degrees, U),
                         path.shape[0], path.shape[2], path.shape[1], time_aug, lead_lag,
                         end_time, prefixes, 1)
    assert err == 0, err
    return out


def backprop(path, words, coefs, derivs, time_aug, lead_lag, end_time):
    # The library works in its coefs and derivs buffers: hand it copies.
    coefs, derivs = coefs.copy(), derivs.copy()
    flat = np.array([i for w in words for i in w] or [0], dtype=np.uint64)
    degrees = np.array([len(w) for w in words], dtype=np.uint64)
    out = np.zeros_like(path)
    err = lib.sig_coef_backprop_d(ptr(path, D), ptr(out, D), ptr(coefs, D), ptr(derivs, D),
                                  ptr(flat, U), len(words), ptr(degrees, U), path.shape[0],
                                  path.shape[2], path.shape[1], time_aug, lead_lag, end_time, 1)
    assert err == 0, err
    return out


rng = np.random.default_rng(2026)
cases = []
for time_aug, lead_lag in [(False, False), (True, False), (False, True), (True, True)]:
    dim = 3
    aug = dim * (2 if lead_lag else 1) + (1 if time_aug else 0)
    words = [(0,), (1, 0), (2, 1, 0), (aug - 1, 0, 2, 2), (1, 1, 1, 0, 2, aug - 1)]
    if not time_aug and not lead_lag:
        words.append(())
    cases.append((f"sig_coef_ta{int(time_aug)}_ll{int(lead_lag)}", dim, 12, words, time_aug,
                  lead_lag, 2.5))
cases.append(("sig_coef_d2_long", 2, 200, [(0, 1), (1, 0, 1, 1), (0, 0, 0, 1, 1, 1)], False,
              False, 1.0))

os.makedirs(out_dir, exist_ok=True)
for name, dim, length, words, time_aug, lead_lag, end_time in cases:
    path = np.ascontiguousarray(rng.standard_normal((3, length, dim)).cumsum(axis=1) / np.sqrt(length))
    coefs = coef(path, words, time_aug, lead_lag, end_time, False)
    prefixes = coef(path, words, time_aug, lead_lag, end_time, True)
    derivs = np.ascontiguousarray(rng.standard_normal(prefixes.shape))
    grads = backprop(path, words, prefixes, derivs, time_aug, lead_lag, end_time)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    for key, a in [("path", path), ("coefs", coefs), ("prefix_coefs", prefixes),
                   ("derivs", derivs), ("path_derivs", grads)]:
        np.save(os.path.join(d, key + ".npy"), a)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump({"words": [list(w) for w in words], "time_aug": time_aug,
                   "lead_lag": lead_lag, "end_time": end_time,
                   "generator": "pysiglib 4.0.0 libcpsig sig_coef_d / sig_coef_backprop_d"}, f,
                  indent=1)
    print(name, coefs.shape, prefixes.shape, np.abs(grads).max())
