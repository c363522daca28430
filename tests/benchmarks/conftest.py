"""What the forward-pass benchmarks share: the seeded synthetic AlexNet, as a caffemodel
path and as float32 parameter arrays (loaded once per session)."""
import pytest

from refimpl.network import caffemodel
from refimpl.network import weights


@pytest.fixture(scope="session")
def weights_path():
    return weights.synthetic_weights_path(0)


@pytest.fixture(scope="session")
def alexnet_params(weights_path):
    return caffemodel.load_alexnet_params(weights_path)
