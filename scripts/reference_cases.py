"""What the reference-case scripts share: writing a case in the golden cases' layout, a folder with
`case.json` (the exact pySigLib call, its parameters, the inputs' and outputs' files) and float64
`.npy` arrays. Imported by the `*_reference.py` scripts beside it."""
import json
import os

import numpy as np
import pysiglib


def save(case_dir, arrays):
    """Each array as `name.npy` (float64, C order, 0-d kept), and their entries for `case.json`."""
    for name, a in arrays.items():
        np.save(os.path.join(case_dir, name + ".npy"), np.array(a, dtype=np.float64, order="C"))
    return {name: {"file": name + ".npy", "shape": list(np.shape(a))} for name, a in arrays.items()}


def write(out_dir, name, function, call, params, inputs, outputs):
    """The case `name` under `out_dir`."""
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    case = {"function": function, "call": call, "params": params,
            "inputs": save(d, inputs), "outputs": save(d, outputs),
            "generator": f"pysiglib {pysiglib.__version__}"}
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    print(name, {k: np.shape(v) for k, v in outputs.items()})
