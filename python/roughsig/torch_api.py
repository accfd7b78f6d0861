"""roughsig's functions on torch tensors, with gradients (as pySigLib's `pysiglib.torch_api`).

Each differentiable function is a `torch.autograd.Function` whose backward pass calls roughsig's
backprop. CPU tensors are read in place (through numpy, no copy) and results come back as tensors
on the input's device; tensors on other devices are copied to the host and back. Gradients flow
to every tensor argument that requires them.
"""

import numpy as np
import torch

from . import _api, _native
from ._arrays import floats, real
from ._api import (  # noqa: F401  (re-exported: they take no gradient)
    idx_to_word,
    is_lyndon,
    log_sig_length,
    lyndon_words,
    lyndon_words_of_length,
    prepare_log_sig,
    sig_length,
    word_to_idx,
    words,
    words_of_length,
)
from .static_kernels import (  # noqa: F401
    LinearKernel,
    Matern12Kernel,
    Matern32Kernel,
    Matern52Kernel,
    PolynomialKernel,
    RationalQuadraticKernel,
    RBFKernel,
    ScaledLinearKernel,
    StaticKernel,
)


class _Op(torch.autograd.Function):
    """One roughsig operation: `forward(*tensors)` gives a tensor, `backward(grad, inputs, out)`
    the gradients with respect to the tensors (None where there is none)."""

    @staticmethod
    def forward(ctx, op, *tensors):
        out = op.forward(*tensors)
        ctx.op = op
        ctx.save_for_backward(*tensors, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        *inputs, out = ctx.saved_tensors
        grads = ctx.op.backward(grad.contiguous(), inputs, out)
        return (None, *(g if need else None for g, need in zip(grads, ctx.needs_input_grad[1:])))


class _Spec:
    def __init__(self, forward, backward):
        self.forward, self.backward = forward, backward


def _tensor(x, like):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, device=like.device)


def _apply(forward, backward, *tensors):
    if not any(isinstance(t, torch.Tensor) for t in tensors):
        return forward(*tensors)
    like = next(t for t in tensors if isinstance(t, torch.Tensor))
    return _Op.apply(_Spec(forward, backward), *(_tensor(t, like) for t in tensors))


def sig(path, degree, *, time_aug=False, lead_lag=False, end_time=1.0, horner=True,
        scalar_term=False, correction=None, n_jobs=-1, device="auto"):
    """`roughsig.sig` with its gradient."""
    kw = dict(time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, n_jobs=n_jobs,
              device=device)
    return _apply(
        lambda p: _api.sig(p, degree, horner=horner, scalar_term=scalar_term,
                           correction=correction, **kw),
        lambda g, inp, out: (_api.sig_backprop(inp[0], out, g, degree, correction=correction,
                                               **kw),),
        path)


def sig_combine(sig1, sig2, dimension, degree, *, time_aug=False, lead_lag=False, n_jobs=-1,
                device="auto"):
    """`roughsig.sig_combine` with its gradients."""
    kw = dict(time_aug=time_aug, lead_lag=lead_lag, n_jobs=n_jobs, device=device)
    return _apply(
        lambda a, b: _api.sig_combine(a, b, dimension, degree, **kw),
        lambda g, inp, out: _api.sig_combine_backprop(g, *inp, dimension, degree, **kw),
        sig1, sig2)


def sig_join(sig, displacement, dimension, degree, *, prepend=False, n_jobs=-1, device="auto"):
    """`roughsig.sig_join` with its gradients."""
    kw = dict(prepend=prepend, n_jobs=n_jobs, device=device)
    return _apply(
        lambda s, v: _api.sig_join(s, v, dimension, degree, **kw),
        lambda g, inp, out: _api.sig_join_backprop(g, *inp, dimension, degree, **kw),
        sig, displacement)


def linear_sig(displacement, dimension, degree, *, scalar_term=False, n_jobs=-1, device="auto"):
    """`roughsig.linear_sig` with its gradient."""
    kw = dict(scalar_term=scalar_term, n_jobs=n_jobs, device=device)
    return _apply(
        lambda v: _api.linear_sig(v, dimension, degree, **kw),
        lambda g, inp, out: (_api.linear_sig_backprop(g, inp[0], dimension, degree, **kw),),
        displacement)


def linear_log_sig(displacement, dimension, degree, *, method=1, scalar_term=False, n_jobs=-1,
                   device="auto"):
    """`roughsig.linear_log_sig` with its gradient."""
    kw = dict(method=method, scalar_term=scalar_term, n_jobs=n_jobs, device=device)
    return _apply(
        lambda v: _api.linear_log_sig(v, dimension, degree, **kw),
        lambda g, inp, out: (_api.linear_log_sig_backprop(g, inp[0], dimension, degree, **kw),),
        displacement)


def log_sig_combine(log_sig1, log_sig2, dimension, degree, *, time_aug=False, lead_lag=False,
                    n_jobs=-1, device="auto"):
    """`roughsig.log_sig_combine` with its gradients."""
    kw = dict(time_aug=time_aug, lead_lag=lead_lag, n_jobs=n_jobs, device=device)
    return _apply(
        lambda a, b: _api.log_sig_combine(a, b, dimension, degree, **kw),
        lambda g, inp, out: _api.log_sig_combine_backprop(g, *inp, dimension, degree, **kw),
        log_sig1, log_sig2)


def log_sig_join(log_sig, displacement, dimension, degree, *, n_jobs=-1, device="auto"):
    """`roughsig.log_sig_join` with its gradients."""
    kw = dict(n_jobs=n_jobs, device=device)
    return _apply(
        lambda l, v: _api.log_sig_join(l, v, dimension, degree, **kw),
        lambda g, inp, out: _api.log_sig_join_backprop(g, *inp, dimension, degree, **kw),
        log_sig, displacement)


def sig_coef(path, words, *, time_aug=False, lead_lag=False, end_time=1.0, prefixes=False,
             n_jobs=-1, device="auto"):
    """`roughsig.sig_coef` with its gradient."""
    kw = dict(time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, n_jobs=n_jobs,
              device=device)
    return _apply(
        lambda p: _api.sig_coef(p, words, prefixes=prefixes, **kw),
        lambda g, inp, out: (_api.sig_coef_backprop(inp[0], words, out, g, **kw),),
        path)


def transform_path(path, *, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
                   device="auto"):
    """`roughsig.transform_path` with its gradient."""
    kw = dict(time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, n_jobs=n_jobs,
              device=device)
    return _apply(
        lambda p: _api.transform_path(p, **kw),
        lambda g, inp, out: (_api.transform_path_backprop(g, **kw),),
        path)


def log_sig(path, degree, *, time_aug=False, lead_lag=False, end_time=1.0, method=1,
            scalar_term=False, correction=None, n_jobs=-1, device="auto"):
    """`roughsig.log_sig` with its gradient."""
    kw = dict(time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, method=method,
              scalar_term=scalar_term, n_jobs=n_jobs, device=device)
    if correction is None or np.size(correction) == 0:
        backward = lambda g, inp, out: (_api.log_sig_backprop(inp[0], g, degree, **kw),)  # noqa: E731
    else:
        # With a correction, the log-signature is the corrected signature's: its gradient is the
        # logarithm's gradient chained to the corrected signature's.
        sig_kw = dict(time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, n_jobs=n_jobs,
                      device=device)

        def backward(g, inp, out):
            p = inp[0]
            s = _api.sig(p, degree, scalar_term=scalar_term, correction=correction, **sig_kw)
            ds = _api.sig_to_log_sig_backprop(s, g, p.shape[-1], degree, time_aug=time_aug,
                                              lead_lag=lead_lag, method=method, n_jobs=n_jobs,
                                              device=device)
            return (_api.sig_backprop(p, s, ds, degree, correction=correction, **sig_kw),)
    return _apply(lambda p: _api.log_sig(p, degree, correction=correction, **kw), backward, path)


def sig_to_log_sig(sig, dimension, degree, *, time_aug=False, lead_lag=False, method=1,
                   n_jobs=-1, device="auto"):
    """`roughsig.sig_to_log_sig` with its gradient."""
    kw = dict(time_aug=time_aug, lead_lag=lead_lag, method=method, n_jobs=n_jobs, device=device)
    return _apply(
        lambda s: _api.sig_to_log_sig(s, dimension, degree, **kw),
        lambda g, inp, out: (_api.sig_to_log_sig_backprop(inp[0], g, dimension, degree, **kw),),
        sig)


def logsig_to_sig(log_sig, dimension, degree, *, time_aug=False, lead_lag=False, method=1,
                  scalar_term=False, n_jobs=-1, device="auto"):
    """`roughsig.logsig_to_sig` with its gradient."""
    kw = dict(time_aug=time_aug, lead_lag=lead_lag, method=method, scalar_term=scalar_term,
              n_jobs=n_jobs, device=device)
    return _apply(
        lambda s: _api.logsig_to_sig(s, dimension, degree, **kw),
        lambda g, inp, out: (_api.logsig_to_sig_backprop(inp[0], g, dimension, degree, **kw),),
        log_sig)


log_sig_to_sig = logsig_to_sig


def _kernel(native_forward, native_backward, path1, path2, kw):
    """A kernel operation through the native module, whose backprop also knows `normalize`."""
    args = _api._kernel_args(**kw)

    def forward(x, y):
        (x, y), back = floats(x, y)
        return back(native_forward(x, y, args))

    def backward(g, inp, out):
        (g, x, y), back = floats(g, *inp)
        dx, dy = native_backward(g, x, y, args)
        return back(dx), back(dy)

    return _apply(forward, backward, path1, path2)


def sig_kernel(path1, path2, *, method="finite_difference", dyadic_order=None, order=None,
               static_kernel=None, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
               return_grid=False, normalize=False, device="auto"):
    """`roughsig.sig_kernel` with its gradients (also normalised, also of the grid)."""
    kw = dict(method=method, dyadic_order=dyadic_order, order=order, static_kernel=static_kernel,
              time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, n_jobs=n_jobs,
              return_grid=return_grid, normalize=normalize, device=device)
    return _kernel(_native.sig_kernel, _native.sig_kernel_backprop, path1, path2, kw)


def sig_kernel_gram(path1, path2, *, method="finite_difference", dyadic_order=None, order=None,
                    static_kernel=None, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
                    max_batch=-1, return_grid=False, normalize=False, device="auto"):
    """`roughsig.sig_kernel_gram` with its gradients. For `F(gram(x, x))` pass the same tensor
    twice: autograd adds the two sides' gradients."""
    if return_grid:
        raise ValueError("return_grid is not supported by sig_kernel_gram")
    kw = dict(method=method, dyadic_order=dyadic_order, order=order, static_kernel=static_kernel,
              time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, n_jobs=n_jobs,
              return_grid=False, normalize=normalize, device=device, max_batch=max_batch)
    return _kernel(lambda x, y, a: _native.sig_kernel_gram(x, y, a),
                   _native.sig_kernel_gram_backprop, path1, path2, kw)


def _metric(forward, native_backward, sample1, sample2, seed):
    """A metric of two samples with its gradients: `native_backward(seed(grad, y), x, y)` gives
    `(dx, dy)`."""
    def backward(g, inp, out):
        (x, y), back = floats(*inp)
        dx, dy = native_backward(seed(g.detach().cpu().numpy(), y), x, y)
        return back(dx), back(dy)

    return _apply(forward, backward, sample1, sample2)


def sig_mmd(sample1, sample2, *, method="finite_difference", dyadic_order=None, order=None,
            static_kernel=None, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
            max_batch=-1, device="auto"):
    """`roughsig.sig_mmd` with its gradients."""
    kw = dict(method=method, dyadic_order=dyadic_order, order=order, static_kernel=static_kernel,
              time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, n_jobs=n_jobs,
              max_batch=max_batch, device=device)
    args = _api._metric_args(**kw)
    return _metric(lambda x, y: _api.sig_mmd(x, y, **kw),
                   lambda g, x, y: _native.sig_mmd_backprop(g, x, y, args),
                   sample1, sample2, lambda g, y: float(g))


def sig_score(sample, y, *, method="finite_difference", dyadic_order=None, order=None, lam=1.0,
              static_kernel=None, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
              max_batch=-1, device="auto"):
    """`roughsig.sig_score` with its gradients."""
    kw = dict(method=method, dyadic_order=dyadic_order, order=order, static_kernel=static_kernel,
              time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, n_jobs=n_jobs,
              max_batch=max_batch, device=device)
    args, lam = _api._metric_args(**kw), real(lam, "lam")
    return _metric(lambda x, yy: _api.sig_score(x, yy, lam=lam, **kw),
                   lambda g, x, yy: _native.sig_score_backprop(g, x, yy, lam, args),
                   sample, y, lambda g, yy: np.array(np.reshape(g, yy.shape[:-2]),
                                                     dtype=yy.dtype))


def expected_sig_score(sample1, sample2, *, method="finite_difference", dyadic_order=None,
                       order=None, lam=1.0, static_kernel=None, time_aug=False, lead_lag=False,
                       end_time=1.0, n_jobs=-1, max_batch=-1, device="auto"):
    """`roughsig.expected_sig_score` with its gradients."""
    kw = dict(method=method, dyadic_order=dyadic_order, order=order, static_kernel=static_kernel,
              time_aug=time_aug, lead_lag=lead_lag, end_time=end_time, n_jobs=n_jobs,
              max_batch=max_batch, device=device)
    args, lam = _api._metric_args(**kw), real(lam, "lam")
    return _metric(lambda x, y: _api.expected_sig_score(x, y, lam=lam, **kw),
                   lambda g, x, y: _native.expected_sig_score_backprop(g, x, y, lam, args),
                   sample1, sample2, lambda g, y: float(np.reshape(g, ())))
