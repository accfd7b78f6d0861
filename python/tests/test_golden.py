"""Every pySigLib 4.0.0 reference case (the golden set and `tests/data/log_sig_to_sig`,
`log_sig_combine`, `sig_metrics`, `correction`, `static_kernels` and `polynomial_solver`), run as
pySigLib's own call with `pysiglib = roughsig`.

Each case records the exact Python call that produced it (`case.json`'s `call`); evaluating that
call with roughsig in pySigLib's place is the drop-in promise, tested literally. f64 within the
cases' tolerance (1e-10 relative); f32 inputs give f32 results within 2e-4 of the array's largest
entry.
"""

import json
import pathlib

import numpy as np
import pytest

import roughsig

DATA = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data"
GOLDEN = DATA / "golden"
CASES = sorted(
    str(p.parent.relative_to(DATA))
    for d in (GOLDEN, DATA / "log_sig_to_sig", DATA / "log_sig_combine", DATA / "sig_metrics",
              DATA / "correction", DATA / "static_kernels", DATA / "polynomial_solver")
    for p in d.glob("*/case.json")
    if p.parent.name != "lengths_table"
)


def load(name):
    case = json.loads((DATA / name / "case.json").read_text())
    inputs = {k: np.load(DATA / name / v["file"]) for k, v in case["inputs"].items()}
    outputs = [np.load(DATA / name / v["file"]) for v in case["outputs"].values()]
    return case, inputs, outputs


def run(call, inputs):
    """Run pySigLib's recorded call (statements separated by '; ', the last one's value returned)."""
    scope = {"pysiglib": roughsig, **inputs}
    *setup, last = call.split("; ")
    for statement in setup:
        exec(statement, scope)
    return eval(last, scope)


def close(got, want, rtol, atol_rel, what):
    got = np.asarray(got)
    if got.shape != want.shape and want.shape == (1,) + got.shape:
        got = got[None]  # pySigLib gives unbatched kernel gradients a leading axis of 1
    assert got.shape == want.shape, what
    finite = np.isfinite(want)
    assert not np.isfinite(got[~finite]).any(), what
    scale = np.abs(want[finite]).max(initial=0.0)
    err = np.abs(got[finite] - want[finite])
    tol = rtol * np.abs(want[finite]) + atol_rel * scale
    assert (err <= tol).all(), f"{what}: max error {err.max():.3e}"


@pytest.mark.parametrize("name", CASES)
def test_golden_case_f64(name):
    case, inputs, outputs = load(name)
    if case.get("outputs_contain_nonfinite"):
        with pytest.raises(ValueError, match="overflowed"):
            run(case["call"], inputs)
        return
    got = run(case["call"], inputs)
    got = list(got) if isinstance(got, tuple) else [got]
    hint = case.get("tolerance_hint") or {}
    rtol, atol = hint.get("rtol", 1e-10), hint.get("atol_rel_to_max_abs", 1e-12)
    for g, w in zip(got, outputs[-len(got):]):
        assert g.dtype == np.float64
        close(g, w, rtol, atol, name)


@pytest.mark.parametrize("name", [c for c in CASES if "tiny" not in c and "overflow" not in c])
def test_golden_case_f32(name):
    case, inputs, outputs = load(name)
    got = run(case["call"], {k: v.astype(np.float32) for k, v in inputs.items()})
    got = list(got) if isinstance(got, tuple) else [got]
    for g, w in zip(got, outputs[-len(got):]):
        if isinstance(g, np.ndarray):
            assert g.dtype == np.float32
        close(np.asarray(g, dtype=np.float64), w, 2e-4, 2e-4, f"{name} f32")


def test_lengths_table():
    table = np.load(GOLDEN / "lengths_table" / "table.npy")
    for d, deg, ta, ll, sig_len, sig_len_scalar, log_len in table.astype(np.int64).tolist():
        kw = dict(time_aug=bool(ta), lead_lag=bool(ll))
        assert roughsig.sig_length(d, deg, **kw) == sig_len
        assert roughsig.sig_length(d, deg, scalar_term=True, **kw) == sig_len_scalar
        if log_len < 0:
            with pytest.raises(ValueError):
                roughsig.log_sig_length(d, deg, **kw)
        else:
            assert roughsig.log_sig_length(d, deg, **kw) == log_len


def test_case_count():
    index = json.loads((GOLDEN / "index.json").read_text())
    assert sum(c.startswith("golden/") for c in CASES) + 1 == index["n_cases"]
    assert sum(c.startswith("log_sig_to_sig/") for c in CASES) == 24
    assert sum(c.startswith("log_sig_combine/") for c in CASES) == 29
    assert sum(c.startswith("sig_metrics/") for c in CASES) == 5
    assert sum(c.startswith("correction/") for c in CASES) == 16
    assert sum(c.startswith("static_kernels/") for c in CASES) == 12
    assert sum(c.startswith("polynomial_solver/") for c in CASES) == 12
