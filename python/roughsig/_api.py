"""pySigLib 4.0's functions on roughsig's engine: the same names, arguments and defaults (but
`n_jobs`, which defaults to -1, all cores), and a `device` keyword: "auto" (the default: the GPU
for work large enough to pay, where one is found), "cpu", "gpu", or "gpu:NAME" (an adapter whose
name contains NAME)."""

import numpy as np

from . import _native
from ._arrays import count, device_name, flag, floats, jobs, real, word, word_list
from .static_kernels import LinearKernel, StaticKernel


def _sig_args(time_aug=False, lead_lag=False, end_time=1.0, scalar_term=False, n_jobs=-1,
              device="auto"):
    return {
        "time_aug": flag(time_aug, "time_aug"),
        "lead_lag": flag(lead_lag, "lead_lag"),
        "end_time": real(end_time, "end_time"),
        "scalar_term": flag(scalar_term, "scalar_term"),
        "n_jobs": jobs(n_jobs),
        "device": device_name(device),
    }


def _correction(correction, dtype):
    """pySigLib's `correction` (numpy or torch) as a numpy array of the path's float dtype, or None."""
    if correction is None:
        return None
    (c,), _ = floats(correction)
    return np.asarray(c, dtype=dtype)


def _method(method):
    if isinstance(method, bool) or method not in (0, 1, 2, 3):
        raise ValueError(f"method must be 0, 1, 2 or 3, got {method!r}")
    return int(method)


def sig(path, degree, *, time_aug=False, lead_lag=False, end_time=1.0, horner=True,
        scalar_term=False, correction=None, n_jobs=-1, device="auto"):
    """Truncated signatures of `path` `(..., length, dimension)`: `(..., sig_length)`.
    `horner` is accepted for pySigLib's sake; roughsig always uses Horner's scheme."""
    flag(horner, "horner")
    (p,), back = floats(path)
    args = _sig_args(time_aug, lead_lag, end_time, scalar_term, n_jobs, device)
    return back(_native.sig(p, count(degree, "degree"), args, _correction(correction, p.dtype)))


signature = sig


def sig_backprop(path, sig, sig_derivs, degree, *, time_aug=False, lead_lag=False, end_time=1.0,
                 correction=None, n_jobs=-1, device="auto"):
    """The gradient with respect to `path` of a scalar `F`, given `sig = sig(path)` and
    `sig_derivs = dF/dsig`."""
    (p, s, d), back = floats(path, sig, sig_derivs)
    args = _sig_args(time_aug, lead_lag, end_time, False, n_jobs, device)
    return back(_native.sig_backprop(p, s, d, count(degree, "degree"), args,
                                     _correction(correction, p.dtype)))


def transform_path(path, *, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
                   device="auto"):
    """The path after lead-lag (channels lag then lead) and time augmentation (time last)."""
    (p,), back = floats(path)
    return back(_native.transform_path(p, _sig_args(time_aug, lead_lag, end_time, False, n_jobs,
                                                    device)))


def transform_path_backprop(derivs, *, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
                            device="auto"):
    """The gradient with respect to the original path, given derivatives for the transformed one."""
    (d,), back = floats(derivs)
    return back(_native.transform_path_backprop(
        d, _sig_args(time_aug, lead_lag, end_time, False, n_jobs, device)))


def sig_combine(sig1, sig2, dimension, degree, *, time_aug=False, lead_lag=False, n_jobs=-1,
                device="auto"):
    """`sig1 ⊗ sig2`: the signature of the concatenated paths (Chen's identity)."""
    (a, b), back = floats(sig1, sig2)
    args = _sig_args(time_aug, lead_lag, 1.0, False, n_jobs, device)
    return back(_native.sig_combine(a, b, count(dimension, "dimension"), count(degree, "degree"),
                                    args))


def sig_combine_backprop(deriv, sig1, sig2, dimension, degree, *, time_aug=False, lead_lag=False,
                         n_jobs=-1, device="auto"):
    """The gradients of `sig_combine` with respect to `sig1` and `sig2`."""
    (d, a, b), back = floats(deriv, sig1, sig2)
    args = _sig_args(time_aug, lead_lag, 1.0, False, n_jobs, device)
    da, db = _native.sig_combine_backprop(d, a, b, count(dimension, "dimension"),
                                          count(degree, "degree"), args)
    return back(da), back(db)


def sig_join(sig, displacement, dimension, degree, *, prepend=False, n_jobs=-1, device="auto"):
    """`sig ⊗ exp(v)` (or `exp(v) ⊗ sig` with `prepend`): append the straight segment `v`."""
    (s, v), back = floats(sig, displacement)
    args = _sig_args(n_jobs=n_jobs, device=device)
    return back(_native.sig_join(s, v, count(dimension, "dimension"), count(degree, "degree"),
                                 flag(prepend, "prepend"), args))


def sig_join_backprop(d_out, sig, displacement, dimension, degree, *, prepend=False, n_jobs=-1,
                      device="auto"):
    """The gradients of `sig_join` with respect to `sig` and `displacement`."""
    (d, s, v), back = floats(d_out, sig, displacement)
    args = _sig_args(n_jobs=n_jobs, device=device)
    ds, dv = _native.sig_join_backprop(d, s, v, count(dimension, "dimension"),
                                       count(degree, "degree"), flag(prepend, "prepend"), args)
    return back(ds), back(dv)


def sig_length(dimension, degree, *, time_aug=False, lead_lag=False, scalar_term=False):
    """The length of a signature (after the transforms widen the dimension)."""
    return _native.sig_length(count(dimension, "dimension"), count(degree, "degree"),
                              flag(time_aug, "time_aug"), flag(lead_lag, "lead_lag"),
                              flag(scalar_term, "scalar_term"))


def log_sig_length(dimension, degree, *, time_aug=False, lead_lag=False):
    """The number of Lyndon words up to `degree`: the length of a log-signature (methods 1-3)."""
    return _native.log_sig_length(count(dimension, "dimension"), count(degree, "degree"),
                                  flag(time_aug, "time_aug"), flag(lead_lag, "lead_lag"))


def prepare_log_sig(dimension, degree, method=1, *, time_aug=False, lead_lag=False, n_jobs=-1):
    """Accepted for pySigLib's sake: roughsig prepares what a log-signature needs on first use."""
    count(dimension, "dimension", 1)
    count(degree, "degree", 1)
    _method(method)
    flag(time_aug, "time_aug")
    flag(lead_lag, "lead_lag")
    jobs(n_jobs)


def log_sig(path, degree, *, time_aug=False, lead_lag=False, end_time=1.0, method=1,
            scalar_term=False, correction=None, n_jobs=-1, device="auto"):
    """Log-signatures: method 0 the expanded tensor logarithm, 1 its coefficients at the Lyndon
    words, 2 and 3 the coordinates in the Lyndon bracket basis."""
    (p,), back = floats(path)
    c = _correction(correction, p.dtype)
    if c is not None and c.size and _method(method) == 3:
        raise ValueError("correction is not supported with log_sig method=3")
    args = _sig_args(time_aug, lead_lag, end_time, scalar_term, n_jobs, device)
    return back(_native.log_sig(p, count(degree, "degree"), _method(method), args, c))


def log_sig_backprop(path, log_sig_derivs, degree, *, time_aug=False, lead_lag=False,
                     end_time=1.0, method=1, scalar_term=False, n_jobs=-1, device="auto"):
    """The gradient of a scalar `F(log_sig(path))` with respect to `path`."""
    (p, d), back = floats(path, log_sig_derivs)
    args = _sig_args(time_aug, lead_lag, end_time, scalar_term, n_jobs, device)
    return back(_native.log_sig_backprop(p, d, count(degree, "degree"), _method(method), args))


def sig_to_log_sig(sig, dimension, degree, *, time_aug=False, lead_lag=False, method=1, n_jobs=-1,
                   device="auto"):
    """Log-signatures of signatures of `dimension`-channel paths."""
    (s,), back = floats(sig)
    args = _sig_args(time_aug, lead_lag, 1.0, False, n_jobs, device)
    return back(_native.sig_to_log_sig(s, count(dimension, "dimension"), count(degree, "degree"),
                                       _method(method), args))


def sig_to_log_sig_backprop(sig, log_sig_derivs, dimension, degree, *, time_aug=False,
                            lead_lag=False, method=1, n_jobs=-1, device="auto"):
    """The gradient of a scalar `F(sig_to_log_sig(sig))` with respect to `sig`."""
    (s, d), back = floats(sig, log_sig_derivs)
    args = _sig_args(time_aug, lead_lag, 1.0, False, n_jobs, device)
    return back(_native.sig_to_log_sig_backprop(s, d, count(dimension, "dimension"),
                                                count(degree, "degree"), _method(method), args))


def logsig_to_sig(log_sig, dimension, degree, *, time_aug=False, lead_lag=False, method=1,
                  scalar_term=False, n_jobs=-1, device="auto"):
    """Signatures from log-signatures (the truncated tensor exponential), the inverse of
    `sig_to_log_sig`. Method 0 input has the signature's layout (its scalar term inferred from
    the length, the output following it); methods 1 and 2 give the scalar term where
    `scalar_term` asks."""
    (s,), back = floats(log_sig)
    args = _sig_args(time_aug, lead_lag, 1.0, scalar_term, n_jobs, device)
    return back(_native.log_sig_to_sig(s, count(dimension, "dimension"), count(degree, "degree"),
                                       _exp_method(method), args))


log_sig_to_sig = logsig_to_sig


def logsig_to_sig_backprop(log_sig, sig_derivs, dimension, degree, *, time_aug=False,
                           lead_lag=False, method=1, scalar_term=False, n_jobs=-1, device="auto"):
    """The gradient of a scalar `F(logsig_to_sig(log_sig))` with respect to `log_sig`."""
    (s, d), back = floats(log_sig, sig_derivs)
    args = _sig_args(time_aug, lead_lag, 1.0, scalar_term, n_jobs, device)
    return back(_native.log_sig_to_sig_backprop(s, d, count(dimension, "dimension"),
                                                count(degree, "degree"), _exp_method(method),
                                                args))


log_sig_to_sig_backprop = logsig_to_sig_backprop


def linear_sig(displacement, dimension, degree, *, scalar_term=False, n_jobs=-1, device="auto"):
    """The signatures of the straight segments from 0 to each displacement `(..., dimension)`."""
    (v,), back = floats(displacement)
    args = _sig_args(scalar_term=scalar_term, n_jobs=n_jobs, device=device)
    return back(_native.linear_sig(v, count(dimension, "dimension"), count(degree, "degree"),
                                   args))


def linear_sig_backprop(derivs, displacement, dimension, degree, *, scalar_term=False, n_jobs=-1,
                        device="auto"):
    """The gradient of a scalar `F(linear_sig(displacement))` with respect to `displacement`."""
    (g, v), back = floats(derivs, displacement)
    args = _sig_args(scalar_term=scalar_term, n_jobs=n_jobs, device=device)
    return back(_native.linear_sig_backprop(g, v, count(dimension, "dimension"),
                                            count(degree, "degree"), args))


def linear_log_sig(displacement, dimension, degree, *, method=1, scalar_term=False, n_jobs=-1,
                   device="auto"):
    """The log-signatures of the straight segments from 0 to each displacement: the displacement
    at the letters, 0 above (a leading 0 for method 0 with `scalar_term`)."""
    (v,), back = floats(displacement)
    args = _sig_args(scalar_term=scalar_term, n_jobs=n_jobs, device=device)
    return back(_native.linear_log_sig(v, count(dimension, "dimension"), count(degree, "degree"),
                                       _method(method), args))


def linear_log_sig_backprop(derivs, displacement, dimension, degree, *, method=1,
                            scalar_term=False, n_jobs=-1, device="auto"):
    """The gradient of a scalar `F(linear_log_sig(displacement))` with respect to `displacement`."""
    (g, v), back = floats(derivs, displacement)
    args = _sig_args(scalar_term=scalar_term, n_jobs=n_jobs, device=device)
    return back(_native.linear_log_sig_backprop(g, v, count(dimension, "dimension"),
                                                count(degree, "degree"), _method(method), args))


def log_sig_combine(log_sig1, log_sig2, dimension, degree, *, time_aug=False, lead_lag=False,
                    n_jobs=-1, device="auto"):
    """The log-signature of two paths end to end from theirs (Lyndon basis, methods 2 and 3):
    the Baker-Campbell-Hausdorff product."""
    (a, b), back = floats(log_sig1, log_sig2)
    args = _sig_args(time_aug, lead_lag, n_jobs=n_jobs, device=device)
    return back(_native.log_sig_combine(a, b, count(dimension, "dimension"),
                                        count(degree, "degree"), args))


def log_sig_combine_backprop(deriv, ls1, ls2, dimension, degree, *, time_aug=False,
                             lead_lag=False, n_jobs=-1, device="auto"):
    """The gradients of `log_sig_combine` with respect to both log-signatures."""
    (g, a, b), back = floats(deriv, ls1, ls2)
    args = _sig_args(time_aug, lead_lag, n_jobs=n_jobs, device=device)
    da, db = _native.log_sig_combine_backprop(g, a, b, count(dimension, "dimension"),
                                              count(degree, "degree"), args)
    return back(da), back(db)


def log_sig_join(log_sig, displacement, dimension, degree, *, n_jobs=-1, device="auto"):
    """Log-signatures (Lyndon basis) extended by one straight segment each."""
    (l, v), back = floats(log_sig, displacement)
    args = _sig_args(n_jobs=n_jobs, device=device)
    return back(_native.log_sig_join(l, v, count(dimension, "dimension"), count(degree, "degree"),
                                     args))


def log_sig_join_backprop(d_out, log_sig, displacement, dimension, degree, *, n_jobs=-1,
                          device="auto"):
    """The gradients of `log_sig_join` with respect to `log_sig` and `displacement`."""
    (g, l, v), back = floats(d_out, log_sig, displacement)
    args = _sig_args(n_jobs=n_jobs, device=device)
    dl, dv = _native.log_sig_join_backprop(g, l, v, count(dimension, "dimension"),
                                           count(degree, "degree"), args)
    return back(dl), back(dv)


def _exp_method(method):
    if _method(method) == 3:
        raise ValueError("method must be 0, 1 or 2")
    return method


def sig_coef(path, words, *, time_aug=False, lead_lag=False, end_time=1.0, prefixes=False,
             n_jobs=-1, device="auto"):
    """The signature coefficients at the chosen words only (one tuple, or a list of tuples)."""
    (p,), back = floats(path)
    args = _sig_args(time_aug, lead_lag, end_time, False, n_jobs, device)
    return back(_native.sig_coef(p, [list(w) for w in word_list(words)],
                                 flag(prefixes, "prefixes"), args))


def sig_coef_backprop(path, words, coefs, derivs, *, time_aug=False, lead_lag=False, end_time=1.0,
                      n_jobs=-1, device="auto"):
    """The gradient of a scalar `F(sig_coef(path, words))` with respect to `path`; `coefs` (the
    forward result, which pySigLib needs) is not used."""
    del coefs
    (p, d), back = floats(path, derivs)
    args = _sig_args(time_aug, lead_lag, end_time, False, n_jobs, device)
    return back(_native.sig_coef_backprop(p, [list(w) for w in word_list(words)], d, args))


def words(alphabet_size, max_length):
    """Every word of 1 to `max_length` letters, by length, then lexicographically."""
    return [tuple(w) for w in _native.words(count(alphabet_size, "alphabet_size"),
                                            count(max_length, "max_length"))]


def words_of_length(alphabet_size, length):
    """Every word of `length` letters, lexicographically."""
    return [tuple(w) for w in _native.words_of_length(count(alphabet_size, "alphabet_size"),
                                                      count(length, "length"))]


def lyndon_words(alphabet_size, max_length):
    """The Lyndon words of 1 to `max_length` letters: the log-signature's order."""
    return [tuple(w) for w in _native.lyndon_words(count(alphabet_size, "alphabet_size"),
                                                   count(max_length, "max_length"))]


def lyndon_words_of_length(alphabet_size, length):
    """The Lyndon words of `length` letters."""
    return [tuple(w) for w in _native.lyndon_words_of_length(
        count(alphabet_size, "alphabet_size"), count(length, "length"))]


def is_lyndon(word_):
    """Whether the word is a Lyndon word."""
    return _native.is_lyndon(list(word(word_)))


def word_to_idx(word_, alphabet_size, *, scalar_term=False):
    """The word's index in a signature."""
    return _native.word_to_idx(list(word(word_)), count(alphabet_size, "alphabet_size"),
                               flag(scalar_term, "scalar_term"))


def idx_to_word(idx, alphabet_size, *, scalar_term=False):
    """The word at index `idx` of a signature."""
    return tuple(_native.idx_to_word(count(idx, "idx"), count(alphabet_size, "alphabet_size"),
                                     flag(scalar_term, "scalar_term")))


def _dyadic_order(dyadic_order):
    if dyadic_order is None:
        raise ValueError("dyadic_order is required when method='finite_difference'")
    if isinstance(dyadic_order, tuple):
        if len(dyadic_order) != 2:
            raise ValueError("dyadic_order must be an int or a tuple of two ints")
        return tuple(count(lam, "dyadic_order") for lam in dyadic_order)
    lam = count(dyadic_order, "dyadic_order")
    return (lam, lam)


def _kernel_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time, n_jobs,
                 return_grid, normalize, device, max_batch=-1):
    if method == "polynomial":
        if dyadic_order is not None:
            raise ValueError("dyadic_order is not supported when method='polynomial'")
        if order is None:
            raise ValueError("order is required when method='polynomial'")
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
            raise TypeError("order must be of type int")
        if not 2 <= order <= 64:
            raise ValueError("order must be between 2 and 64")
        dyadic, order = (0, 0), int(order)
    elif method == "finite_difference":
        if order is not None:
            raise ValueError("order is not supported when method='finite_difference'")
        dyadic, order = _dyadic_order(dyadic_order), 0
    else:
        raise ValueError(f"method must be 'finite_difference' or 'polynomial', got {method!r}")
    if static_kernel is None:
        static_kernel = LinearKernel()
    if not isinstance(static_kernel, StaticKernel):
        raise ValueError("static_kernel must be a roughsig StaticKernel (LinearKernel, "
                         "ScaledLinearKernel, RBFKernel, PolynomialKernel, Matern12Kernel, "
                         "Matern32Kernel, Matern52Kernel or RationalQuadraticKernel)")
    return {
        "dyadic_order": dyadic,
        "order": order,
        "static_kernel": static_kernel.spec(),
        "time_aug": flag(time_aug, "time_aug"),
        "lead_lag": flag(lead_lag, "lead_lag"),
        "end_time": real(end_time, "end_time"),
        "normalize": flag(normalize, "normalize"),
        "return_grid": flag(return_grid, "return_grid"),
        "n_jobs": jobs(n_jobs),
        "device": device_name(device),
        "max_batch": _max_batch(max_batch),
    }


def _max_batch(max_batch):
    """pySigLib's `max_batch`: the most pairs of paths in flight at once, -1 for no bound."""
    if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)):
        raise TypeError("max_batch must be an int")
    if max_batch == 0 or max_batch < -1:
        raise ValueError("max_batch must be -1 or positive")
    return int(max_batch)


def _pick(left_deriv, right_deriv, pair):
    flag(left_deriv, "left_deriv")
    flag(right_deriv, "right_deriv")
    return (pair[0] if left_deriv else None), (pair[1] if right_deriv else None)


def sig_kernel(path1, path2, *, method="finite_difference", dyadic_order=None, order=None,
               static_kernel=None, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
               return_grid=False, normalize=False, device="auto"):
    """Signature kernels of paired paths `(..., L1, d)` and `(..., L2, d)` by the finite-difference
    Goursat PDE."""
    (x, y), back = floats(path1, path2)
    args = _kernel_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time,
                        n_jobs, return_grid, normalize, device)
    return back(_native.sig_kernel(x, y, args))


def sig_kernel_backprop(derivs, path1, path2, *, method="finite_difference", dyadic_order=None,
                        order=None, static_kernel=None, time_aug=False, lead_lag=False,
                        end_time=1.0, left_deriv=True, right_deriv=False, k_grid=None, n_jobs=-1,
                        return_grid=False, device="auto"):
    """`(dF/dpath1, dF/dpath2)` given `derivs = dF/dk`; an entry is None where `left_deriv` /
    `right_deriv` does not ask for it. `k_grid` is accepted for pySigLib's sake (the grid is
    recomputed)."""
    del k_grid
    (d, x, y), back = floats(derivs, path1, path2)
    args = _kernel_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time,
                        n_jobs, return_grid, False, device)
    dx, dy = _native.sig_kernel_backprop(d, x, y, args)
    return _pick(left_deriv, right_deriv, (back(dx), back(dy)))


def sig_kernel_gram(path1, path2, *, method="finite_difference", dyadic_order=None, order=None,
                    static_kernel=None, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
                    max_batch=-1, return_grid=False, normalize=False, device="auto"):
    """The Gram matrix `k(path1[i], path2[j])`; when `path2` is `path1`, one triangle is computed."""
    if return_grid:
        raise ValueError("return_grid is not supported by sig_kernel_gram")
    symmetric = path2 is path1
    (x, y), back = floats(path1, path2)
    args = _kernel_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time,
                        n_jobs, False, normalize, device, max_batch)
    return back(_native.sig_kernel_gram(x, None if symmetric else y, args))


def _metric_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time, n_jobs,
                 max_batch, device):
    return _kernel_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time,
                        n_jobs, False, False, device, max_batch)


def sig_mmd(sample1, sample2, *, method="finite_difference", dyadic_order=None, order=None,
            static_kernel=None, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
            max_batch=-1, device="auto"):
    """The squared MMD between two samples of paths under the signature kernel (the unbiased
    estimator; at least two paths in each sample). The Gram matrices are reduced in tiles."""
    (x, y), back = floats(sample1, sample2)
    args = _metric_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time,
                        n_jobs, max_batch, device)
    return back(_native.sig_mmd(x, y, args))


def sig_score(sample, y, *, method="finite_difference", dyadic_order=None, order=None, lam=1.0,
              static_kernel=None, time_aug=False, lead_lag=False, end_time=1.0, n_jobs=-1,
              max_batch=-1, device="auto"):
    """The signature kernel score of `sample` at each path of `y` (shaped as `y`'s batch axes)."""
    (x, yy), back = floats(sample, y)
    args = _metric_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time,
                        n_jobs, max_batch, device)
    scores = _native.sig_score(x, yy, real(lam, "lam"), args)
    # pySigLib gives one path `y` a score of shape (1,).
    return back(np.reshape(scores, (1,)) if np.ndim(yy) == 2 else scores)


def expected_sig_score(sample1, sample2, *, method="finite_difference", dyadic_order=None,
                       order=None, lam=1.0, static_kernel=None, time_aug=False, lead_lag=False,
                       end_time=1.0, n_jobs=-1, max_batch=-1, device="auto"):
    """The mean of `sig_score(sample1, y)` over the paths `y` of `sample2`, shape `(1,)`."""
    (x, y), back = floats(sample1, sample2)
    args = _metric_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time,
                        n_jobs, max_batch, device)
    return back(np.reshape(_native.expected_sig_score(x, y, real(lam, "lam"), args), (1,)))


def sig_kernel_gram_backprop(derivs, path1, path2, *, method="finite_difference",
                             dyadic_order=None, order=None, static_kernel=None, time_aug=False,
                             lead_lag=False, end_time=1.0, left_deriv=True, right_deriv=False,
                             k_grid=None, n_jobs=-1, return_grid=False, max_batch=-1,
                             device="auto"):
    """`(dF/dpath1, dF/dpath2)` of a scalar `F` of the Gram matrix, given `derivs = dF/dGram`."""
    del k_grid
    if return_grid:
        raise ValueError("return_grid is not supported by sig_kernel_gram_backprop")
    (d, x, y), back = floats(derivs, path1, path2)
    args = _kernel_args(method, dyadic_order, order, static_kernel, time_aug, lead_lag, end_time,
                        n_jobs, False, False, device, max_batch)
    dx, dy = _native.sig_kernel_gram_backprop(d, x, y, args)
    return _pick(left_deriv, right_deriv, (back(dx), back(dy)))


def devices():
    """Every GPU adapter wgpu finds (Vulkan, Metal, DX12) as a dict; `auto` marks the one
    `device="auto"` uses for large work."""
    adapters, _ = _native.devices()
    return adapters


def auto_device_reason():
    """Why `device="auto"` picks what it picks, in words."""
    return _native.devices()[1]


def last_backend():
    """Where the last call on this thread ran: "cpu", "gpu (<adapter>)", or None before any."""
    return _native.last_backend()
