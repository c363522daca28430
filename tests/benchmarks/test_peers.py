"""The benchmarks' peers (peers.py) against the NumPy reference (Caffe's semantics) and the
golden fc7 computed by real Caffe: ONNX Runtime on the ONNX graph of
refimpl.network.onnx_graph, and the harness around the "openvino" backend (whose own tests
are tests/network/test_openvino_backend.py).

These runtimes are what the benchmarks compare our C core with (test_bench_peers.py); a
peer that computed something else would make those ratios meaningless. Tolerance: the
project's fc7 measure (golden.TOLERANCES, worst |diff| of an image's blob at most that
fraction of its largest value) for every blob; the peers sum in their own orders, so only
float32 rounding separates them from the reference, while a wrong attribute (group, LRN
bias or window, pooling rounding, flattening order) changes a blob by a good part of its
size. Skipped where the bench extra (requirements-bench.txt) is not installed, under
REFIMPL_REQUIRE too: CI does not install it.
"""
import sys

import numpy as np
import pytest

import peers
from refimpl import golden
from refimpl.network import caffemodel
from refimpl.network import reference as N
from refimpl.network import weights

REL_TO_MAX = golden.TOLERANCES["fc7_max_error_rel_to_max"]
RUNTIMES = {"onnxruntime": peers.OnnxRuntimeNetwork, "openvino": peers.OpenVinoNetwork}


def need(*packages):
    missing = peers.missing_packages(*packages)
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make bench-deps: requirements-bench.txt)")


@pytest.fixture(scope="module")
def params():
    return caffemodel.alexnet_params(weights.synthetic_weights_path(0))


@pytest.fixture(scope="module")
def blob():
    return np.random.default_rng(20).integers(0, 256, (3, 3, 227, 227)).astype(np.float32)


@pytest.fixture(scope="module")
def reference(params, blob):
    return N.forward_blobs(params, blob, N.BLOB_NAMES)


def rel_to_max(got, want):
    n = len(want)
    err = np.abs(got.astype(np.float64) - want).reshape(n, -1).max(axis=1)
    return float((err / np.abs(want).reshape(n, -1).max(axis=1)).max())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_blob_matches_numpy(params, blob, reference, runtime):
    need("onnx", runtime)
    with RUNTIMES[runtime](params, threads=1, outputs=N.BLOB_NAMES) as net:
        got = net.forward(blob)
    assert (reference["fc7"] > 0).mean() > 0.3  # a live network, not a vector of zeros
    for name in N.BLOB_NAMES:
        assert got[name].shape == reference[name].shape, name
        err = rel_to_max(got[name], reference[name])
        assert err <= REL_TO_MAX, f"{runtime} {name}: worst error {err:.3g} of max"


def test_onnxruntime_fc7_passes_golden_verify():
    """golden.verify (what `refimpl golden verify --stage fc7` runs): fc7 from real Caffe."""
    need("onnx", "onnxruntime")
    results = golden.verify("fc7", peers.onnxruntime_fc7)
    assert len(results) == 10 and all(r.passed for r in results), \
        [(r.name, r.error) for r in results if not r.passed]


def test_the_graph_refuses_unknown_blobs_and_bad_input(params, blob):
    need("onnx", "onnxruntime")
    with pytest.raises(ValueError, match="unknown AlexNet blob 'fc9'"):
        peers.onnx_alexnet(params, "fc9")
    with peers.OnnxRuntimeNetwork(params, threads=1, outputs="pool5") as net:
        with pytest.raises(ValueError, match=r"\(N, 3, 227, 227\)"):
            net.forward(blob[:, :, :200])
        with pytest.raises(ValueError, match="not fc7"):
            net.fc7(blob)


@pytest.mark.parametrize("package", ["onnx", "onnxruntime", "openvino"])
def test_missing_package_names_what_to_install(monkeypatch, params, package):
    monkeypatch.setitem(sys.modules, package, None)  # its import now raises ImportError
    build = {"onnx": peers.onnx_alexnet, "onnxruntime": peers.OnnxRuntimeNetwork,
             "openvino": peers.OpenVinoNetwork}[package]  # each imports that package first
    with pytest.raises(ImportError, match=rf"needs {package}, which .*requirements-bench\.txt"):
        build(params)
