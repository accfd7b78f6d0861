"""How arrays cross into the native module, and how argument errors read.

Every array of one call is read as one float dtype: float32 when every array is float32, float64
otherwise (integer and boolean arrays read as float64). An array already of that dtype is passed
as it is, whatever its strides: the native module reads it in place. Torch tensors are accepted
too: they are read through numpy (CPU tensors without a copy) and the results are handed back as
tensors on the first tensor's device.
"""

import operator

import numpy as np


def _is_tensor(x):
    return type(x).__module__.startswith("torch")


def _as_numpy(x):
    if _is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def floats(*arrays):
    """The arrays as numpy arrays of one float dtype, and a function that turns a result back into
    the callers' kind of array (a tensor on the first tensor's device, if any input was one)."""
    arrs = [_as_numpy(a) for a in arrays]
    for a in arrs:
        if a.dtype.kind not in "biuf":
            raise TypeError(f"arrays must hold real numbers, got dtype {a.dtype}")
    dtype = np.float32 if all(a.dtype == np.float32 for a in arrs) else np.float64
    arrs = [np.asarray(a, dtype=dtype) for a in arrs]
    tensor = next((a for a in arrays if _is_tensor(a)), None)
    if tensor is None:
        return arrs, lambda r: r

    def back(r):
        import torch

        return torch.from_numpy(r).to(tensor.device)

    return arrs, back


def count(value, name, minimum=0):
    """A non-negative (or at least `minimum`) integer argument; `bool` is not an integer here."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def real(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    return float(value)


def jobs(n_jobs):
    if isinstance(n_jobs, bool):
        raise TypeError("n_jobs must be an int, got bool")
    try:
        n_jobs = operator.index(n_jobs)
    except TypeError:
        raise TypeError(f"n_jobs must be an int, got {type(n_jobs).__name__}") from None
    if n_jobs == 0:
        raise ValueError("n_jobs must not be 0 (-1: all cores, -2: all but one, k > 0: k cores)")
    return max(min(n_jobs, 2**31 - 1), -(2**31))


def device_name(device):
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu', 'gpu' or 'gpu:NAME', got {device!r}")
    return device


def word(w, name="word"):
    """A word as a tuple of letters."""
    if not isinstance(w, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of ints, got {type(w).__name__}")
    return tuple(count(i, f"{name} letter") for i in w)


def word_list(words):
    """pySigLib's `words` argument: one tuple, or a list of tuples."""
    if isinstance(words, tuple):
        return [word(words)]
    if isinstance(words, list):
        return [word(w) for w in words]
    raise TypeError("words must be a tuple of ints or a list of tuples of ints")
