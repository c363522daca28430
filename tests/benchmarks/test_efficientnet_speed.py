"""Speed of the NumPy EfficientNet-Lite0 forward pass (run with --benchmark-enable).

Per-image time = mean / batch size. Without --benchmark-enable (the default in pytest.ini) each
runs once as a plain smoke test.
"""
import numpy as np
import pytest

from refimpl.network import efficientnet as E


@pytest.fixture(scope="module")
def net(efficientnet_weights):
    return E.network()


@pytest.mark.parametrize("batch", [1, 32])
def test_efficientnet_features_speed(benchmark, net, batch):
    images = np.random.default_rng(0).integers(0, 256, (batch, 227, 227, 3), dtype=np.uint8)
    benchmark.extra_info["batch"] = batch
    features = benchmark(E.efficientnet_features, images, net=net)  # default internal batching
    assert features.shape == (batch, E.FEATURE_DIM)
