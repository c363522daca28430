"""The real-Caffe worker: protocol, errors, GPU refusal, and our files in Caffe.

Marked `caffe`: they skip only when no Caffe install is found (`make caffe`).
"""
import os
import signal

import numpy as np
import pytest

import tolerances as tol
from refimpl.network import caffe_client as cb
from refimpl.network import caffemodel as cm

pytestmark = pytest.mark.caffe


TINY = """
name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape: { dim: 2 dim: 4 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 6 kernel_size: 3 group: 2 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
        inner_product_param { num_output: 5 } }
"""
TINY_TYPES = {"conv": "Convolution", "relu": "ReLU", "ip": "InnerProduct"}


def tiny_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"conv": [rng.standard_normal((6, 2, 3, 3)).astype(np.float32),
                     rng.standard_normal(6).astype(np.float32)],
            "ip": [rng.standard_normal((5, 216)).astype(np.float32),
                   rng.standard_normal(5).astype(np.float32)]}


def test_ping_reports_versions_and_a_real_gpu_check(worker):
    info = worker.call({"cmd": "ping"})[0]
    assert info["python"].startswith("3.9") and info["caffe"].startswith("1.0")
    # The check looked at the libraries really mapped into the worker: libcaffe is there.
    assert "libcaffe" in info["gpu_detail"]
    assert info["gpu_support"] is False  # the Debian build is CPU_ONLY
    # the OpenBLAS kernels Caffe runs on (picked at run time; OPENBLAS_CORETYPE forces them)
    print(f"Caffe's OpenBLAS core: {info['blas_core']}")
    assert info["blas_core"] not in ("", "?")


def test_arrays_round_trip_unchanged(worker):
    arrays = [np.arange(12, dtype=np.float32).reshape(3, 4), np.zeros((0, 5)),
              np.array([[1, 2]], dtype=np.int64), np.asfortranarray(np.eye(3, dtype="f8"))]
    _, back = worker.call({"cmd": "echo"}, arrays)
    for a, b in zip(arrays, back):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("v1", [False, True])
def test_our_caffemodel_loads_in_caffe_with_identical_params(worker, tmp_path, v1):
    params = tiny_params()
    path = cm.write_caffemodel(tmp_path / "tiny.caffemodel", params, TINY_TYPES, v1=v1)
    net = cb.CaffeNet(TINY, path, worker=worker)
    try:
        for name, blobs in params.items():
            theirs = net.params(name)
            assert len(theirs) == len(blobs)
            for t, o in zip(theirs, blobs):
                np.testing.assert_array_equal(t.reshape(o.shape), o)
    finally:
        net.close()


def test_caffe_saved_model_is_read_identically(worker, tmp_path):
    net = cb.CaffeNet(TINY, cm.write_caffemodel(tmp_path / "in.caffemodel", tiny_params(1),
                                                TINY_TYPES), worker=worker)
    try:
        net.save(tmp_path / "saved.caffemodel")
        model = cm.read_caffemodel(tmp_path / "saved.caffemodel")
        assert model.name == "tiny"
        assert model.types == {"data": "Input", **TINY_TYPES}
        for name in ("conv", "ip"):
            for ours, theirs in zip(model.params[name], net.params(name)):
                assert ours.shape == theirs.shape
                np.testing.assert_array_equal(ours, theirs)
    finally:
        net.close()


def test_forward_any_batch_size(worker, tmp_path):
    path = cm.write_caffemodel(tmp_path / "t.caffemodel", tiny_params(), TINY_TYPES)
    with cb.CaffeNet(TINY, path, worker=worker) as net:
        x = np.random.default_rng(2).standard_normal((5, 4, 6, 6)).astype(np.float32)
        whole = net.forward(x, outputs=("ip", "conv"))
        assert whole["ip"].shape == (5, 5) and whole["conv"].shape == (5, 6, 6, 6)
        parts = net.forward(x, outputs=("ip",), batch_size=2)["ip"]
        # Not equal: Caffe's SGEMM for the inner product has M = batch rows, and OpenBLAS
        # blocks (so rounds) each row's sum by the matrix size. Bound: two float32
        # evaluations of conv (19 terms) -> ReLU -> inner product (217 terms).
        p = tiny_params()
        y, var = tol.conv_variance(x, 0.0, *p["conv"], pad=1, group=2)
        y, var = tol.relu_variance(y, var)
        _, var = tol.inner_product_variance(y, var, *p["ip"])
        used = tol.assert_within(parts, whole["ip"], tol.statistical(var, var), "batch 2 vs 5")
        print(f"batch 2 vs batch 5: {used:.3f} of the bound")


def test_caffe_error_is_reported_and_worker_survives(worker):
    with pytest.raises(cb.CaffeError, match="KeyError"):
        worker.call({"cmd": "params", "net": 12345, "layer": "x"})
    with pytest.raises(FileNotFoundError, match="nothere.caffemodel"):
        worker.load(TINY, "/nonexistent/nothere.caffemodel")
    assert worker.call({"cmd": "ping"})[0]["ok"]


def test_gpu_mode_refused_before_touching_caffe(worker):
    with pytest.raises(cb.CaffeError, match="CPU-only build"):
        cb.CaffeNet(TINY, mode="gpu", worker=worker)
    # the refusal also holds inside the worker, for clients that skip the check
    with pytest.raises(cb.CaffeError, match="CPU-only build"):
        worker.call({"cmd": "load", "prototxt_text": TINY, "mode": "gpu", "device": 0})
    assert worker.call({"cmd": "ping"})[0]["ok"]  # still alive: no abort happened


def test_worker_death_reported_with_status_and_log(tmp_path, caffe_installed):
    """Wrong weight shapes make Caffe abort (a failed CHECK): reported, not hung."""
    params = tiny_params()
    params["conv"][0] = np.zeros((6, 4, 3, 3), np.float32)  # group ignored: wrong shape
    path = cm.write_caffemodel(tmp_path / "bad.caffemodel", params, TINY_TYPES)
    with cb.CaffeWorker() as w:
        with pytest.raises(cb.CaffeWorkerDied, match=r"(?s)SIGABRT.*(shape mismatch|"
                                                     r"Check failed)") as info:
            w.load(TINY, path)
        print(info.value)
        with pytest.raises(cb.CaffeError, match="closed"):
            w.call({"cmd": "ping"})


def test_killed_worker_is_reported(caffe_installed):
    w = cb.CaffeWorker()
    os.kill(w.proc.pid, signal.SIGKILL)
    with pytest.raises(cb.CaffeWorkerDied, match="SIGKILL"):
        w.call({"cmd": "ping"})
    w.close()


def test_clean_shutdown(caffe_installed):
    with cb.CaffeWorker() as w:
        proc = w.proc
    assert proc.returncode == 0


def test_not_installed_says_make_caffe(monkeypatch, tmp_path):
    monkeypatch.setenv("REFIMPL_CAFFE_PREFIX", str(tmp_path / "nocaffe"))
    assert not cb.caffe_available()
    with pytest.raises(cb.CaffeNotInstalled, match="make caffe"):
        cb.CaffeNet()


def test_worker_env_is_clean(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/bogus")
    monkeypatch.setenv("LD_PRELOAD", "libbogus.so")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/bogus")
    env = cb.caffe_env()
    assert "PYTHONPATH" not in env and "LD_PRELOAD" not in env
    assert "LD_LIBRARY_PATH" not in env and env["GLOG_minloglevel"] == "2"


def test_worker_imports_nothing_from_refimpl():
    src = cb.WORKER_SCRIPT.read_text()
    assert "refimpl" not in "".join(line for line in src.splitlines()
                                    if line.startswith(("import", "from")))
