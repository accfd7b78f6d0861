"""numpy in, numpy out: dtypes, batch axes, strides, the GIL, the GPU, and the library's errors."""

import os
import threading
import time

import numpy as np
import pytest

import roughsig

RNG = np.random.default_rng(7)


def paths(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).cumsum(axis=-2).astype(dtype)


def test_float32_and_float64_are_kept():
    x = paths(3, 20, 2)
    s64 = roughsig.sig(x, 3)
    s32 = roughsig.sig(x.astype(np.float32), 3)
    assert s64.dtype == np.float64 and s32.dtype == np.float32
    np.testing.assert_allclose(s32, s64, rtol=1e-4, atol=1e-4 * np.abs(s64).max())


def test_integer_and_list_inputs_read_as_float64():
    x = np.arange(30).reshape(15, 2) % 7
    s = roughsig.sig(x, 2)
    assert s.dtype == np.float64
    np.testing.assert_allclose(s, roughsig.sig(x.astype(np.float64), 2))
    np.testing.assert_allclose(roughsig.sig(x.tolist(), 2), s)


def test_mixed_dtypes_compute_in_float64():
    x = paths(2, 10, 3)
    s = roughsig.sig(x, 3)
    g = roughsig.sig_backprop(x.astype(np.float32), s, np.ones_like(s), 3)
    assert g.dtype == np.float64


def test_any_leading_batch_axes():
    x = paths(2, 3, 12, 2)
    s = roughsig.sig(x, 3)
    assert s.shape == (2, 3, roughsig.sig_length(2, 3))
    np.testing.assert_allclose(s[1, 2], roughsig.sig(x[1, 2], 3))
    k = roughsig.sig_kernel(x, x[::-1], dyadic_order=1)
    assert k.shape == (2, 3)


def test_strided_views_are_read_in_place():
    x = paths(6, 40, 3)
    view = x[::2, ::3, ::-1]
    assert not view.flags.c_contiguous
    np.testing.assert_allclose(roughsig.sig(view, 4), roughsig.sig(view.copy(), 4), rtol=1e-14)


def test_n_jobs_and_devices_give_the_same_numbers():
    x = paths(8, 50, 3)
    one = roughsig.sig(x, 4, n_jobs=1, device="cpu")
    np.testing.assert_allclose(roughsig.sig(x, 4, n_jobs=-1), one, rtol=1e-12)
    assert roughsig.last_backend() in ("cpu", None) or roughsig.last_backend().startswith("gpu")


def test_the_gil_is_released_while_computing():
    x = paths(32, 2000, 4)
    counter, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    def rate(block):
        """The counting thread's increments per second while `block` runs in this thread."""
        before, start = counter[0], time.perf_counter()
        block()
        return (counter[0] - before) / (time.perf_counter() - start)

    t = threading.Thread(target=count)
    t.start()
    try:
        idle = rate(lambda: time.sleep(0.2))
        computing = rate(lambda: roughsig.sig(x, 4, n_jobs=1, device="cpu"))
    finally:
        stop.set()
        t.join()
    # Holding the GIL, the native call would stop the counting thread for its whole duration (all
    # but the thin Python layer's share of the call), not slow it to a fraction.
    assert computing > 0.2 * idle, (computing, idle)


def test_words_and_indices():
    assert roughsig.words(2, 2) == [(), (0,), (1,), (0, 0), (0, 1), (1, 0), (1, 1)]
    assert roughsig.lyndon_words(2, 3) == [(0,), (1,), (0, 1), (0, 0, 1), (0, 1, 1)]
    assert roughsig.is_lyndon((0, 1)) and not roughsig.is_lyndon((1, 0))
    w = (1, 0, 2)
    assert roughsig.idx_to_word(roughsig.word_to_idx(w, 3), 3) == w
    x = paths(2, 10, 3)
    s = roughsig.sig(x, 3)
    c = roughsig.sig_coef(x, [w, (2,)])
    np.testing.assert_allclose(c[:, 0], s[:, roughsig.word_to_idx(w, 3)], rtol=1e-12)


def test_sig_kernel_gram_of_one_sample_is_symmetric():
    x = paths(5, 12, 2)
    g = roughsig.sig_kernel_gram(x, x, dyadic_order=1, static_kernel=roughsig.RBFKernel(2.0))
    assert g.shape == (5, 5)
    np.testing.assert_array_equal(g, g.T)
    # The general form sweeps each pair in its own order: the same numbers to rounding (small
    # entries are differences of large terms, so relative to the matrix's largest entry).
    general = roughsig.sig_kernel_gram(x, x.copy(), dyadic_order=1,
                                       static_kernel=roughsig.RBFKernel(2.0))
    np.testing.assert_allclose(g, general, rtol=1e-12, atol=1e-13 * np.abs(g).max())


def test_kernel_gradients_follow_left_and_right_deriv():
    x, y = paths(3, 8, 2), paths(3, 6, 2)
    d = np.ones(3)
    left, right = roughsig.sig_kernel_backprop(d, x, y, dyadic_order=0)
    assert left.shape == x.shape and right is None
    left2, right2 = roughsig.sig_kernel_backprop(d, x, y, dyadic_order=0, left_deriv=False,
                                                 right_deriv=True)
    assert left2 is None and right2.shape == y.shape


def _gpu_available():
    if roughsig.devices():
        return True
    if os.environ.get("ROUGHSIG_REQUIRE_GPU") == "1":
        pytest.fail("ROUGHSIG_REQUIRE_GPU=1 but no GPU adapter was found")
    pytest.skip("no GPU adapter")


def test_gpu_results_match_the_cpu():
    _gpu_available()
    x, y = paths(4, 30, 3), paths(4, 25, 3)
    for dtype, rtol in ((np.float32, 2e-4), (np.float64, 1e-10)):
        if dtype == np.float64 and not any(a["f64"] for a in roughsig.devices()):
            continue
        xs, ys = x.astype(dtype), y.astype(dtype)
        s = roughsig.sig(xs, 4, device="gpu")
        assert roughsig.last_backend().startswith("gpu")
        cpu = roughsig.sig(xs, 4, device="cpu")
        np.testing.assert_allclose(s, cpu, rtol=rtol, atol=rtol * np.abs(cpu).max())
        k = roughsig.sig_kernel(xs, ys, dyadic_order=1, device="gpu")
        kc = roughsig.sig_kernel(xs, ys, dyadic_order=1, device="cpu")
        np.testing.assert_allclose(k, kc, rtol=rtol * 10)
        ls = roughsig.log_sig(xs, 3, method=2, device="gpu")
        lc = roughsig.log_sig(xs, 3, method=2, device="cpu")
        np.testing.assert_allclose(ls, lc, rtol=rtol, atol=rtol * np.abs(lc).max())
        words = [[0, 1], [2], [1, 1, 0, 2]]
        cg = roughsig.sig_coef(xs, words, prefixes=True, device="gpu")
        cc = roughsig.sig_coef(xs, words, prefixes=True, device="cpu")
        np.testing.assert_allclose(cg, cc, rtol=rtol, atol=rtol * np.abs(cc).max())
        # A level-2 correction per segment; a long path, which the GPU cuts in time.
        c = np.full(9, -0.05, dtype)
        sc = roughsig.sig(xs, 3, correction=c, device="gpu")
        assert roughsig.last_backend().startswith("gpu")
        scc = roughsig.sig(xs, 3, correction=c, device="cpu")
        np.testing.assert_allclose(sc, scc, rtol=rtol, atol=rtol * np.abs(scc).max())
        long = (paths(2, 400, 3) / 20).astype(dtype)
        cg = roughsig.sig_coef(long, words, device="gpu")
        cc = roughsig.sig_coef(long, words, device="cpu")
        np.testing.assert_allclose(cg, cc, rtol=rtol * 10, atol=rtol * np.abs(cc).max())
        d = np.ones_like(cc)
        gg = roughsig.sig_coef_backprop(long, words, cg, d, device="gpu")
        gc = roughsig.sig_coef_backprop(long, words, cc, d, device="cpu")
        np.testing.assert_allclose(gg, gc, rtol=rtol * 10, atol=rtol * 10 * np.abs(gc).max())
        k = roughsig.sig_kernel(xs, ys, method="polynomial", order=8, device="gpu")
        kc = roughsig.sig_kernel(xs, ys, method="polynomial", order=8, device="cpu")
        np.testing.assert_allclose(k, kc, rtol=rtol * 10)
        k = roughsig.sig_kernel(xs, ys, dyadic_order=1, device="gpu",
                                static_kernel=roughsig.Matern32Kernel(1.5))
        kc = roughsig.sig_kernel(xs, ys, dyadic_order=1, device="cpu",
                                 static_kernel=roughsig.Matern32Kernel(1.5))
        np.testing.assert_allclose(k, kc, rtol=rtol * 10)


def test_devices_are_listed_with_the_auto_choice():
    listed = roughsig.devices()
    assert isinstance(listed, list)
    for a in listed:
        assert {"name", "backend", "device_type", "f64", "auto"} <= set(a)
    assert sum(a["auto"] for a in listed) <= 1
    assert "Auto" in roughsig.auto_device_reason()


def test_metrics_keep_pysiglibs_shapes():
    x, y = paths(4, 6, 2), paths(3, 6, 2)
    assert np.shape(roughsig.sig_mmd(x, y, dyadic_order=0)) == ()
    assert np.shape(roughsig.sig_score(x, y, dyadic_order=0)) == (3,)
    assert np.shape(roughsig.sig_score(x, y[0], dyadic_order=0)) == (1,)
    assert np.shape(roughsig.expected_sig_score(x, y, dyadic_order=0)) == (1,)
    with pytest.raises(ValueError, match="at least 2"):
        roughsig.sig_mmd(x[:1], y, dyadic_order=0)


def test_max_batch_and_new_static_kernels():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 6, 2)).cumsum(axis=1) * 0.3
    y = rng.standard_normal((4, 7, 2)).cumsum(axis=1) * 0.3
    for kernel in (None, roughsig.PolynomialKernel(2.0, 0.5, 1.0), roughsig.Matern32Kernel(1.2),
                   roughsig.RationalQuadraticKernel(0.9, 2.0)):
        whole = roughsig.sig_kernel_gram(x, y, dyadic_order=1, static_kernel=kernel)
        capped = roughsig.sig_kernel_gram(x, y, dyadic_order=1, static_kernel=kernel, max_batch=3)
        np.testing.assert_allclose(capped, whole, rtol=1e-14, atol=0)
    assert repr(roughsig.PolynomialKernel(2.0, 0.5, 1.0)) == "PolynomialKernel(2.0,0.5,1.0)"
    with pytest.raises(ValueError, match="sigma"):
        roughsig.Matern12Kernel(0.0)
