"""The Dask example on a local cluster of two worker processes: the features equal one local call."""

import importlib.util
import pathlib

import numpy as np
import pytest

import roughsig

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "dask_signatures.py"


def load_example():
    spec = importlib.util.spec_from_file_location("dask_signatures", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_signature_features_on_a_local_cluster():
    example = load_example()
    paths = np.random.default_rng(1).standard_normal((90, 30, 3)).cumsum(axis=1)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        x = da.from_array(paths, chunks=(20, -1, -1))
        sig = example.sig_features(x, 3, time_aug=True, n_jobs=1)
        logsig = example.sig_features(x, 3, log_sig_method=2, lead_lag=True, n_jobs=1)
        got_sig, got_log = client.compute([sig, logsig], sync=True)
        # The work ran on a cluster of two worker processes.
        assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_allclose(got_sig, roughsig.sig(paths, 3, time_aug=True), rtol=1e-10)
    np.testing.assert_allclose(got_log, roughsig.log_sig(paths, 3, method=2, lead_lag=True),
                               rtol=1e-10, atol=1e-12)
    assert got_sig.shape == (90, roughsig.sig_length(3, 3, time_aug=True))
