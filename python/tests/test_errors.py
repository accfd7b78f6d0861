"""Bad input raises ValueError (shapes, values, sizes), TypeError (argument types) or RuntimeError
(the device), with the library's message: never a crash of the interpreter, never silent garbage.
The cases follow the hostile inputs recorded against pySigLib (golden `bad_inputs.json`)."""

import numpy as np
import pytest

import roughsig

X = np.random.default_rng(3).standard_normal((2, 10, 3)).cumsum(axis=1)


def with_value(value, at=(0, 4, 1)):
    x = X.copy()
    x[at] = value
    return x


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: roughsig.sig(X, -1), ValueError, "degree"),
        (lambda: roughsig.sig(X, 2.0), TypeError, "degree"),
        (lambda: roughsig.sig(X[0, 0], 2), ValueError, "at least 2 axes"),
        (lambda: roughsig.sig(np.zeros((5, 0)), 2), ValueError, "0 channels"),
        (lambda: roughsig.sig(with_value(np.nan), 2), ValueError, "NaN"),
        (lambda: roughsig.sig(with_value(np.inf), 2), ValueError, "inf"),
        (lambda: roughsig.sig(X, 2, end_time=np.inf, time_aug=True), ValueError, "end_time"),
        (lambda: roughsig.sig(X, 2, time_aug=1), TypeError, "time_aug"),
        (lambda: roughsig.sig(X, 2, n_jobs=0), ValueError, "n_jobs"),
        (lambda: roughsig.sig(X.astype(np.complex128), 2), TypeError, "real"),
        (lambda: roughsig.sig(np.zeros((2, 3, 8)), 30), ValueError, "overflow|bytes"),
        (lambda: roughsig.sig(X, 2, correction=np.zeros(3)), ValueError, "correction"),
        (lambda: roughsig.sig(X, 2, correction=np.zeros(4), lead_lag=True), ValueError, "lead_lag"),
        (lambda: roughsig.sig(X, 2, correction=np.zeros((7, 4))), ValueError, "shape"),
        (lambda: roughsig.log_sig(X, 2, method=3, correction=np.zeros(4)), ValueError, "method=3"),
        (lambda: roughsig.sig(X, 2, device="tpu"), ValueError, "device"),
        (lambda: roughsig.sig(X, 2, device="gpu:no-such-adapter"), RuntimeError, "device"),
        (lambda: roughsig.sig_backprop(X, roughsig.sig(X, 3), np.ones((2, 2)), 3), ValueError,
         "length"),
        (lambda: roughsig.sig_backprop(X, roughsig.sig(X, 3), np.ones((1, 39)), 3), ValueError,
         "batch"),
        (lambda: roughsig.sig_backprop(X, roughsig.sig(X, 3), np.ones((2, 39)), 4), ValueError,
         "length"),
        (lambda: roughsig.transform_path(X[0, 0], time_aug=True), ValueError, "axes"),
        (lambda: roughsig.sig_combine(np.ones((2, 12)), np.ones((2, 6)), 2, 3), ValueError,
         "length"),
        (lambda: roughsig.sig_combine(np.ones((2, 14)), np.ones((3, 14)), 2, 3), ValueError,
         "batch"),
        (lambda: roughsig.sig_join(np.ones((2, 14)), np.ones((2, 3)), 2, 3), ValueError,
         "displacement"),
        (lambda: roughsig.log_sig(X, 2, method=4), ValueError, "method"),
        (lambda: roughsig.log_sig(X, 0, method=1), ValueError, "degree"),
        (lambda: roughsig.log_sig_length(3, 0), ValueError, "degree"),
        (lambda: roughsig.sig_length(10, 100), ValueError, "overflow"),
        (lambda: roughsig.sig_kernel(X, X), ValueError, "dyadic_order"),
        (lambda: roughsig.sig_kernel(X, X, dyadic_order=-1), ValueError, "dyadic_order"),
        (lambda: roughsig.sig_kernel(X, X, dyadic_order=1.0), TypeError, "dyadic_order"),
        (lambda: roughsig.sig_kernel(X, X[..., :2], dyadic_order=0), ValueError, "dimension|3"),
        (lambda: roughsig.sig_kernel(X, X[:1], dyadic_order=0), ValueError, "batch"),
        (lambda: roughsig.sig_kernel(X, X[:, :0], dyadic_order=0), ValueError, "point"),
        (lambda: roughsig.sig_kernel(X, with_value(np.nan), dyadic_order=0), ValueError, "NaN"),
        (lambda: roughsig.sig_kernel(X, X, dyadic_order=0, method="polynomial"), ValueError,
         "polynomial"),
        (lambda: roughsig.sig_kernel(X, X, method="polynomial", order=1), ValueError, "order"),
        (lambda: roughsig.sig_kernel(X, X, dyadic_order=0, static_kernel="rbf"), ValueError,
         "StaticKernel"),
        (lambda: roughsig.sig_kernel(X, X, dyadic_order=0, static_kernel=roughsig.RBFKernel(-1.0)),
         ValueError, "sigma"),
        (lambda: roughsig.sig_kernel(X, X, dyadic_order=0, normalize=True, return_grid=True),
         ValueError, "normalize"),
        (lambda: roughsig.sig_kernel_backprop(np.ones(3), X, X, dyadic_order=0), ValueError,
         "batch"),
        (lambda: roughsig.sig_kernel(X, X, dyadic_order=40), ValueError, "too large"),
        (lambda: roughsig.sig_coef(X, [(0, 7)]), ValueError, "letter"),
        (lambda: roughsig.sig_coef(X, "01"), TypeError, "words"),
        (lambda: roughsig.word_to_idx((0, 3), 3), ValueError, "alphabet"),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert str(info.value)


def test_empty_batches_and_short_paths_are_not_errors():
    assert roughsig.sig(np.zeros((0, 5, 3)), 2).shape == (0, 12)
    assert roughsig.sig(np.zeros((2, 0, 3)), 2).shape == (2, 12)
    assert float(roughsig.sig_kernel(X[0, :1], X[1], dyadic_order=0)) == 1.0
