"""`roughsig.torch_api`: autograd Functions whose backward passes are roughsig's backprops, checked
with `torch.autograd.gradcheck` (central differences in float64)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import roughsig  # noqa: E402
from roughsig import torch_api as rt  # noqa: E402


def tensor(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * 0.5).cumsum(-2) \
        .requires_grad_()


def check(f, *inputs):
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("flags", [{}, {"time_aug": True}, {"lead_lag": True, "end_time": 2.0}])
def test_sig_gradient(flags):
    check(lambda p: rt.sig(p, 3, **flags), tensor(2, 6, 2))


def test_sig_with_scalar_term_and_batch_axes():
    check(lambda p: rt.sig(p, 3, scalar_term=True), tensor(2, 2, 5, 2))


@pytest.mark.parametrize("method", [0, 1, 2])
def test_log_sig_gradient(method):
    check(lambda p: rt.log_sig(p, 3, method=method), tensor(2, 6, 2, seed=method))


def test_corrected_sig_and_log_sig_gradients():
    # A level-2 correction per segment (Itô-like) and one of levels 2 and 3 shared by all.
    per_segment = np.random.default_rng(0).standard_normal((5, 4)) * 0.3
    shared = np.random.default_rng(1).standard_normal(4 + 8) * 0.3
    check(lambda p: rt.sig(p, 3, correction=per_segment), tensor(2, 6, 2))
    check(lambda p: rt.sig(p, 3, time_aug=True, correction=shared), tensor(2, 6, 2, seed=1))
    for method in (0, 1, 2):
        check(lambda p: rt.log_sig(p, 3, method=method, correction=per_segment),
              tensor(2, 6, 2, seed=2))


def test_sig_to_log_sig_gradient():
    s = rt.sig(tensor(2, 6, 2), 3).detach().requires_grad_()
    check(lambda s: rt.sig_to_log_sig(s, 2, 3, method=2), s)


def test_combine_and_join_gradients():
    a = rt.sig(tensor(3, 4, 2, seed=1), 3).detach().requires_grad_()
    b = rt.sig(tensor(3, 4, 2, seed=2), 3).detach().requires_grad_()
    check(lambda a, b: rt.sig_combine(a, b, 2, 3), a, b)
    v = tensor(3, 1, 2, seed=3)[:, 0].detach().requires_grad_()
    check(lambda a, v: rt.sig_join(a, v, 2, 3), a, v)
    check(lambda a, v: rt.sig_join(a, v, 2, 3, prepend=True), a, v)


def test_transform_path_and_sig_coef_gradients():
    check(lambda p: rt.transform_path(p, lead_lag=True, time_aug=True), tensor(2, 5, 2))
    check(lambda p: rt.sig_coef(p, [(0, 1), (1, 1, 0)], prefixes=True), tensor(2, 6, 2))


@pytest.mark.parametrize("kernel", [None, roughsig.RBFKernel(2.0), roughsig.ScaledLinearKernel(0.7)])
def test_sig_kernel_gradient(kernel):
    x, y = tensor(2, 5, 2, seed=4), tensor(2, 4, 2, seed=5)
    check(lambda x, y: rt.sig_kernel(x, y, dyadic_order=1, static_kernel=kernel), x, y)


def test_normalised_kernel_and_grid_gradients():
    x, y = tensor(2, 5, 2, seed=6), tensor(2, 4, 2, seed=7)
    check(lambda x, y: rt.sig_kernel(x, y, dyadic_order=0, normalize=True), x, y)
    check(lambda x, y: rt.sig_kernel(x, y, dyadic_order=(1, 0), return_grid=True), x, y)


def test_gram_gradient_also_of_one_sample():
    x, y = tensor(3, 4, 2, seed=8), tensor(2, 5, 2, seed=9)
    check(lambda x, y: rt.sig_kernel_gram(x, y, dyadic_order=1), x, y)
    check(lambda x: rt.sig_kernel_gram(x, x, dyadic_order=0), x)


def test_tensors_in_tensors_out():
    p = tensor(2, 6, 3).detach().float()
    s = rt.sig(p, 2)
    assert isinstance(s, torch.Tensor) and s.dtype == torch.float32 and s.device == p.device
    np.testing.assert_allclose(s.numpy(), roughsig.sig(p.numpy(), 2), rtol=1e-6)
    # The numpy API takes tensors too and hands tensors back.
    assert isinstance(roughsig.sig(p, 2), torch.Tensor)


def test_a_training_step():
    p = tensor(4, 10, 2)
    loss = rt.log_sig(p, 3, method=2).pow(2).sum()
    loss.backward()
    assert p.grad is not None and p.grad.shape == p.shape and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("method", [0, 1, 2])
def test_logsig_to_sig_gradient(method):
    p = tensor(2, 6, 2, seed=10 + method).detach()
    log = rt.log_sig(p, 3, method=method).detach().requires_grad_()
    check(lambda l: rt.logsig_to_sig(l, 2, 3, method=method), log)


def test_log_sig_combine_and_join_gradients():
    a = rt.log_sig(tensor(3, 4, 2, seed=20), 3, method=2).detach().requires_grad_()
    b = rt.log_sig(tensor(3, 4, 2, seed=21), 3, method=2).detach().requires_grad_()
    check(lambda a, b: rt.log_sig_combine(a, b, 2, 3), a, b)
    v = tensor(3, 1, 2, seed=22)[:, 0].detach().requires_grad_()
    check(lambda a, v: rt.log_sig_join(a, v, 2, 3), a, v)


@pytest.mark.parametrize("method", [0, 1, 2])
def test_linear_sig_and_log_sig_gradients(method):
    v = tensor(3, 1, 2, seed=23 + method)[:, 0].detach().requires_grad_()
    check(lambda v: rt.linear_sig(v, 2, 3, scalar_term=True), v)
    check(lambda v: rt.linear_log_sig(v, 2, 3, method=method, scalar_term=True), v)


@pytest.mark.parametrize("kw", [{"dyadic_order": 1},
                                {"dyadic_order": (1, 0), "static_kernel": roughsig.RBFKernel(0.8)}])
def test_metric_gradients(kw):
    x, y = tensor(3, 4, 2, seed=4), tensor(2, 2, 5, 2, seed=5)
    check(lambda a, b: rt.sig_mmd(a, b, **kw), x, y)
    check(lambda a, b: rt.sig_score(a, b, lam=0.6, **kw), x, y)
    check(lambda a, b: rt.sig_score(a, b[0, 0], **kw), x, y)
    check(lambda a, b: rt.expected_sig_score(a, b[0], lam=2.0, **kw), x, y)
