import numpy as np
import pytest

from refimpl.network import caffemodel, weights


@pytest.fixture(scope="session")
def params():
    """The seed-0 synthetic AlexNet (bit-identical on every machine) as float32 arrays
    (a module may override it, e.g. with the C core's prepared parameters)."""
    return caffemodel.alexnet_params(weights.synthetic_weights_path(0))


@pytest.fixture(scope="session")
def blob():
    """Three images of BGR pixel values 0..255 (random), as the project feeds AlexNet."""
    return np.random.default_rng(20).integers(0, 256, (3, 3, 227, 227)).astype(np.float32)
