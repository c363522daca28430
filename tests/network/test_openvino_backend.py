"""The "openvino" backend (refimpl.network.openvino_backend): OpenVINO's CPU plugin on the
ONNX graph of refimpl.network.onnx_graph, against the NumPy reference (Caffe's semantics)
and the golden fc7 computed by real Caffe.

Tolerance: the project's fc7 measure (golden.TOLERANCES: worst |diff| of an image's blob
at most that fraction of its largest value), for every blob; OpenVINO sums in its own
orders (and may pick Winograd or other convolution algorithms), so only float32 rounding
separates it from the reference, while a wrong attribute (group, LRN bias or window,
pooling rounding, flattening order) changes a blob by a good part of its size.

openvino is an optional extra that CI does not install (requirements-bench.txt): these
tests skip without it, under REFIMPL_REQUIRE too, and say what to install.
"""
import sys

import numpy as np
import pytest

from refimpl import golden
from refimpl.network import open_backend
from refimpl.network import reference as N
from refimpl.network.onnx_graph import missing_packages
from refimpl.network.openvino_backend import OpenVinoNetwork, arithmetic_id

REL_TO_MAX = golden.TOLERANCES["fc7_max_error_rel_to_max"]


def need_openvino():
    missing = missing_packages("onnx", "openvino")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make bench-deps: "
                    "requirements-bench.txt)")


def rel_to_max(got, want):
    n = len(want)
    err = np.abs(got.astype(np.float64) - want).reshape(n, -1).max(axis=1)
    return float((err / np.abs(want).reshape(n, -1).max(axis=1)).max())


def test_every_blob_matches_numpy(params, blob):
    need_openvino()
    want = N.forward_blobs(params, blob, N.BLOB_NAMES)
    with OpenVinoNetwork(params, threads=1) as net:
        got = net.blobs(blob, N.BLOB_NAMES)
        np.testing.assert_array_equal(net.forward(blob[:1], "pool2"),
                                      net.blobs(blob[:1], ["pool2"])["pool2"])
    assert (want["fc7"] > 0).mean() > 0.3  # a live network, not a vector of zeros
    for name in N.BLOB_NAMES:
        assert got[name].shape == want[name].shape, name
        err = rel_to_max(got[name], want[name])
        assert err <= REL_TO_MAX, f"openvino {name}: worst error {err:.3g} of max"


def test_golden_verify_fc7_passes(capsys):
    """`refimpl golden verify --stage fc7 --impl refimpl.network.openvino_backend:golden_fc7`:
    fc7 from real Caffe (golden/)."""
    need_openvino()
    from refimpl.cli import main
    assert main(["golden", "verify", "--stage", "fc7",
                 "--impl", "refimpl.network.openvino_backend:golden_fc7"]) == 0
    assert "10/10 cases pass" in capsys.readouterr().out


def test_runs_with_the_threads_and_precision_asked_for(params):
    need_openvino()
    with OpenVinoNetwork(params, threads=1) as net:
        got = net.settings(n=1)
    assert got["INFERENCE_NUM_THREADS"] == "1"
    precision = got["INFERENCE_PRECISION_HINT"].lower()  # "<Type: 'float32'>" in 2026.4
    assert "float32" in precision or precision == "f32", precision
    assert got["NUM_STREAMS"] == "1"


def test_is_a_backend_whose_cache_key_names_its_threads(monkeypatch):
    """open_backend("openvino") as any backend; it is not batch-invariant, and its cache
    key names the thread count it runs with (its sums depend on it)."""
    need_openvino()
    import openvino
    net = open_backend("openvino", _weights())
    try:
        assert net.name == "openvino" and net.batch_invariant is False
        assert net.forward(np.zeros((1, 3, 227, 227), np.float32)).shape == (1, 4096)
    finally:
        net.close()
    monkeypatch.setenv("REFIMPL_THREADS", "3")
    assert arithmetic_id() == f"openvino={openvino.__version__} precision=f32 threads=3"
    assert OpenVinoNetwork(_weights()).threads == 3
    from refimpl.features.engine import ExtractorConfig
    key = ExtractorConfig(backend="openvino", weights="synthetic:0").config_id()
    assert f"backend=openvino {arithmetic_id()}" in key
    monkeypatch.setenv("REFIMPL_THREADS", "1")
    assert ExtractorConfig(backend="openvino", weights="synthetic:0").config_id() != key


def _weights():
    from refimpl.network.weights import synthetic_weights_path
    return synthetic_weights_path(0)


def test_refuses_unknown_blobs_and_bad_input(params, blob):
    need_openvino()
    with OpenVinoNetwork(params, threads=1) as net:
        with pytest.raises(ValueError, match="unknown AlexNet blob 'fc9'"):
            net.forward(blob, "fc9")
        with pytest.raises(ValueError, match=r"\(N, 3, 227, 227\)"):
            net.forward(blob[:, :, :200])
    with pytest.raises(RuntimeError, match="closed"):
        net.forward(blob)


def test_missing_openvino_names_what_to_install(monkeypatch, params):
    monkeypatch.setitem(sys.modules, "openvino", None)  # its import now raises ImportError
    with pytest.raises(ImportError, match=r"needs openvino, which .*requirements-bench\.txt"):
        OpenVinoNetwork(params)
