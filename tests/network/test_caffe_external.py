"""The Caffe backend on a user's own pycaffe (REFIMPL_CAFFE_PYTHON), and its GPU mode.

No CUDA build of Caffe can be installed here, so the two halves are tested apart:
- the external-interpreter path with our real (CPU-only) Caffe: REFIMPL_CAFFE_PYTHON names
  the install's own launcher, and the features must equal those of the usual path, bit for
  bit (both are real Caffe); GPU mode keeps its clear refusal there;
- the GPU calls with a stand-in `caffe` module (written below) that records every call and
  maps a library named libcudart*, which is how the worker tells a CUDA build: mode "gpu",
  device N must reach set_device(N) and set_mode_gpu() before the net is made and before
  every forward pass.
"""
import ctypes.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from refimpl.errors import CaffeError, CaffeNotInstalled, UsageError
from refimpl.network import caffe_client as cb
from refimpl.network import open_network

TINY = """
name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape: { dim: 2 dim: 3 dim: 5 dim: 5 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 1 } } }
"""

# A stand-in for pycaffe: the calls the worker makes, recorded as JSON lines; "fc7" of a
# batch is each item's mean pixel value repeated 4096 times.
STAND_IN = '''
import ctypes, json, os
import numpy as np
if os.environ.get("FAKE_CUDART"):
    ctypes.CDLL(os.environ["FAKE_CUDART"])      # as a CUDA build maps the CUDA runtime

TEST = 1
__version__ = "stand-in"


def _record(*call):
    with open(os.environ["FAKE_CAFFE_LOG"], "a") as f:
        f.write(json.dumps(call) + "\\n")


def set_mode_cpu():
    _record("set_mode_cpu")


def set_mode_gpu():
    _record("set_mode_gpu")


def set_device(n):
    _record("set_device", n)


class _Blob:
    def __init__(self, *shape):
        self.data = np.zeros(shape, np.float32)

    def reshape(self, *shape):
        self.data = np.zeros(shape, np.float32)


class _Layer:
    type = "InnerProduct"


class Net:
    def __init__(self, prototxt, phase, weights=None):
        _record("Net", os.path.basename(prototxt), os.path.basename(weights or ""))
        self.blobs = {"data": _Blob(1, 3, 227, 227), "fc7": _Blob(1, 4096)}
        self.inputs, self.outputs, self.params = ["data"], ["fc7"], {}
        self._layer_names, self.layers = ["fc7"], [_Layer()]

    def reshape(self):
        self.blobs["fc7"].reshape(self.blobs["data"].data.shape[0], 4096)

    def forward(self):
        _record("forward")
        data = self.blobs["data"].data
        self.blobs["fc7"].data[...] = data.reshape(len(data), -1).mean(axis=1)[:, None]
'''


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """REFIMPL_CAFFE_PYTHON = this Python, with the stand-in caffe on its path and a copy
    of a system library named libcudart.so.stand-in mapped by it. Returns the call log."""
    (tmp_path / "pycaffe" / "caffe").mkdir(parents=True)
    (tmp_path / "pycaffe" / "caffe" / "__init__.py").write_text(STAND_IN)
    libm = ctypes.util.find_library("m")
    source = next((p for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
                               "/usr/lib64", "/lib", "/usr/lib")
                   for p in [Path(d) / libm] if libm and p.is_file()), None)
    if source is None:
        pytest.skip("no system libm to stand in for the CUDA runtime")
    shutil.copy(source, tmp_path / "libcudart.so.stand-in")
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv(cb.CAFFE_PYTHON_ENV, sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pycaffe"))
    monkeypatch.setenv("FAKE_CAFFE_LOG", str(log))
    monkeypatch.setenv("FAKE_CUDART", str(tmp_path / "libcudart.so.stand-in"))
    # the stand-in never reads it, but the caffe backend checks a caffemodel before Caffe
    # sees it (so that an error names the file): a real one
    from refimpl.network.weights import synthetic_weights_path
    return log, synthetic_weights_path(0)


def calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_gpu_mode_and_device_reach_the_users_caffe(stand_in):
    log, weights = stand_in
    blob = np.random.default_rng(0).random((3, 3, 227, 227), dtype=np.float32)
    net = cb.CaffeNetwork(weights, device="gpu:1")
    try:
        assert net.net.worker.info["gpu_support"]
        assert "libcudart.so.stand-in" in net.net.worker.info["gpu_detail"]
        got = net.fc7(blob)
    finally:
        net.close()
    expected = blob.reshape(3, -1).mean(axis=1)     # the stand-in's fc7, computed here
    assert got.shape == (3, 4096) and np.array_equal(got, np.repeat(expected[:, None], 4096, 1))
    seen = calls(log)
    # the worker starts in CPU mode; before the net and before the forward pass: device 1, GPU
    assert seen[0] == ["set_mode_cpu"]
    assert seen[1:4] == [["set_device", 1], ["set_mode_gpu"], ["Net", "deploy.prototxt",
                                                                weights.name]]
    assert seen[4:] == [["set_device", 1], ["set_mode_gpu"], ["forward"]]


def test_cli_extract_backend_caffe_device_gpu(stand_in, tmp_path, shared_data):
    from refimpl import cli
    log, weights = stand_in
    wav = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[0]
    out = tmp_path / "f.csv"
    rc = cli.main(["extract", str(wav), "-o", str(out), "--backend", "caffe", "--device",
                   "gpu:3", "--weights", str(weights), "--no-progress"])
    assert rc == 0 and out.is_file()
    assert ["set_device", 3] in calls(log) and ["set_mode_gpu"] in calls(log)


def test_cpu_is_the_default_device(stand_in):
    log, weights = stand_in
    open_network("caffe", weights).close()
    assert calls(log) == [["set_mode_cpu"], ["set_mode_cpu"], ["Net", "deploy.prototxt",
                                                               weights.name]]


def test_device_names():
    assert cb.parse_device(None) == ("cpu", 0) and cb.parse_device("cpu") == ("cpu", 0)
    assert cb.parse_device("gpu") == ("gpu", 0) and cb.parse_device("GPU:2") == ("gpu", 2)
    for bad in ("cuda:0", "gpu:x", "gpu:-1", "cpu:1"):
        with pytest.raises(UsageError, match="cpu, gpu or gpu:N"):
            cb.parse_device(bad)


def test_a_python_that_is_not_there_or_has_no_caffe_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(cb.CAFFE_PYTHON_ENV, str(tmp_path / "python9"))
    with pytest.raises(CaffeNotInstalled, match=r"REFIMPL_CAFFE_PYTHON=.*python9: no "
                                                r"executable Python"):
        cb.CaffeWorker()
    monkeypatch.setenv(cb.CAFFE_PYTHON_ENV, sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))             # no caffe module there
    with pytest.raises(CaffeNotInstalled, match=r"did not start under it .*No module named "
                                                r"'caffe'"):
        cb.CaffeWorker()


def test_the_users_environment_reaches_their_python(monkeypatch):
    monkeypatch.setenv(cb.CAFFE_PYTHON_ENV, sys.executable)
    monkeypatch.setenv("PYTHONPATH", "/opt/caffe/python")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/local/cuda/lib64")
    monkeypatch.setenv("PYTHONHOME", "/somewhere")
    env = cb.caffe_env()
    assert env["PYTHONPATH"] == "/opt/caffe/python"
    assert env["LD_LIBRARY_PATH"] == "/usr/local/cuda/lib64" and "PYTHONHOME" not in env


# ------------------------------------------------------------ our real Caffe, by the same path

@pytest.fixture
def own_launcher(monkeypatch):
    if not cb.caffe_available():
        pytest.skip("real Caffe not installed (make caffe)")
    launcher = cb.caffe_python()
    monkeypatch.setenv(cb.CAFFE_PYTHON_ENV, str(launcher))
    return launcher


@pytest.mark.caffe
def test_external_path_runs_real_caffe_bit_for_bit(own_launcher, monkeypatch, tmp_path):
    blob = np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32)
    with cb.CaffeWorker() as w:
        assert Path(w.proc.args[0]) == own_launcher and w.info["python"].startswith("3.9")
        net = cb.CaffeNet(TINY, worker=w)
        net.save(tmp_path / "tiny.caffemodel")
        external = net.forward(blob, outputs=("ip",))["ip"]
    monkeypatch.delenv(cb.CAFFE_PYTHON_ENV)
    with cb.CaffeNet(TINY, tmp_path / "tiny.caffemodel") as usual:
        assert np.array_equal(usual.forward(blob, outputs=("ip",))["ip"], external)


@pytest.mark.caffe
def test_cpu_only_build_keeps_its_clear_error(own_launcher):
    with pytest.raises(CaffeError, match=r"REFIMPL_CAFFE_PYTHON=.*is a CPU-only build"):
        cb.CaffeNet(TINY, mode="gpu")
