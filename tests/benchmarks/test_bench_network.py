"""Speed of the AlexNet forward pass: NumPy reference vs real Caffe (pytest-benchmark).

Run with `pytest tests/benchmarks --benchmark-enable`; compare the `numpy`, `c` and
`caffe` rows of the same batch size (same machine, same moment).
"""
import numpy as np
import pytest

from refimpl import caffe_backend as cb
from refimpl import caffemodel as cm
from refimpl import network as N
from refimpl import weights


@pytest.fixture(scope="module")
def weights_path():
    return weights.synthetic_weights_path(0)


def images(n):
    return np.random.default_rng(0).integers(0, 256, (n, 3, 227, 227)).astype(np.float32)


@pytest.mark.parametrize("batch", [1, 32])
def test_numpy_forward(benchmark, weights_path, batch):
    params = cm.load_alexnet_params(weights_path)
    blob = images(batch)
    benchmark.group = f"alexnet fc7 batch {batch}"
    out = benchmark(N.forward_numpy, params, blob)
    assert out.shape == (batch, 4096)


@pytest.mark.parametrize("batch", [1, 32])
def test_c_forward(benchmark, weights_path, batch):
    pytest.importorskip("refimpl._forward", reason="compiled core not built (make build)")
    params = cm.load_alexnet_params(weights_path)
    blob = images(batch)
    benchmark.group = f"alexnet fc7 batch {batch}"
    out = benchmark(N.forward_c, params, blob)
    assert out.shape == (batch, 4096)


@pytest.mark.caffe
@pytest.mark.parametrize("batch", [1, 32])
def test_caffe_forward(benchmark, weights_path, batch):
    if not cb.caffe_available():
        pytest.skip("real Caffe not installed")
    blob = images(batch)
    benchmark.group = f"alexnet fc7 batch {batch}"
    with cb.CaffeNet(cb.ALEXNET_PROTOTXT, weights_path) as net:
        net.extract_fc7(blob)  # warm up (allocations at the first reshape)
        out = benchmark(net.extract_fc7, blob)
    assert out.shape == (batch, 4096)


def test_parse_caffemodel(benchmark, weights_path):
    model = benchmark.pedantic(cm.read_caffemodel, (weights_path,), rounds=3)
    assert len(model.params) == 8
