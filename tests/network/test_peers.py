"""The ONNX AlexNet graph of refimpl.network.peers on ONNX Runtime and OpenVINO, against the NumPy
reference (Caffe's semantics) and the golden fc7 computed by real Caffe.

These runtimes are what the benchmarks compare our C core with
(tests/benchmarks/test_bench_peers.py); a peer that computed something else would make
those ratios meaningless. Tolerance: the project's fc7 measure (golden.TOLERANCES, worst
|diff| of an image's blob at most 1e-5 of its largest value) for every blob; the peers sum
in their own orders (and OpenVINO may pick Winograd or other convolution algorithms), so
only float32 rounding separates them from the reference, measured at most a few 1e-6 of
the max, while a wrong attribute (group, LRN bias or window, pooling rounding, flattening
order) changes a blob by a good part of its size. Skipped only where the bench extra
(requirements-bench.txt) is not installed.
"""
import sys

import numpy as np
import pytest

from refimpl import golden
from refimpl.network import reference as N
from refimpl.network import peers

REL_TO_MAX = golden.TOLERANCES["fc7_max_error_rel_to_max"]
RUNTIMES = {"onnxruntime": ("OnnxRuntimeNetwork", "onnxruntime_fc7"),
            "openvino": ("OpenVinoNetwork", "openvino_fc7")}


def need(*packages):
    missing = peers.missing_packages(*packages)
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make bench-deps: requirements-bench.txt)")


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
    cls = getattr(peers, RUNTIMES[runtime][0])
    with cls(params, threads=1, outputs=N.BLOB_NAMES) as net:
        got = net.forward(blob)
    assert (reference["fc7"] > 0).mean() > 0.3  # a live network, not a vector of zeros
    for name in N.BLOB_NAMES:
        assert got[name].shape == reference[name].shape, name
        err = rel_to_max(got[name], reference[name])
        assert err <= REL_TO_MAX, f"{runtime} {name}: worst error {err:.3g} of max"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_golden_verify_fc7_passes(runtime, capsys):
    """`refimpl golden verify --stage fc7 --impl refimpl.network.peers:...`: fc7 from real Caffe."""
    need("onnx", runtime)
    from refimpl.cli import main
    assert main(["golden", "verify", "--stage", "fc7",
                 "--impl", f"refimpl.network.peers:{RUNTIMES[runtime][1]}"]) == 0
    assert "10/10 cases pass" in capsys.readouterr().out


def test_openvino_runs_with_the_threads_and_precision_asked_for(params):
    need("onnx", "openvino")
    with peers.OpenVinoNetwork(params, threads=1) as net:
        got = net.settings(n=1)
    assert got["INFERENCE_NUM_THREADS"] == "1"
    precision = got["INFERENCE_PRECISION_HINT"].lower()  # "<Type: 'float32'>" in 2026.4
    assert "float32" in precision or precision == "f32", precision
    assert got["NUM_STREAMS"] == "1"


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
