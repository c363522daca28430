"""The C core's AlexNet fc7 against real Caffe (needs `make caffe`)."""
import numpy as np
import pytest

from refimpl import caffe_backend as cb
from refimpl import cforward as C
from refimpl import weights

pytestmark = pytest.mark.caffe

FC7_TOLERANCE = 1e-5  # worst |diff| relative to the vector's max (project-wide)


@pytest.fixture(scope="module")
def caffe_net(caffe_installed, c_core):
    with cb.CaffeNet(cb.ALEXNET_PROTOTXT, weights.synthetic_weights_path(0)) as net:
        yield net


@pytest.mark.parametrize("n,seed", [(1, 31), (4, 32)])
def test_fc7_matches_real_caffe(caffe_net, n, seed):
    blob = np.random.default_rng(seed).integers(0, 256, (n, 3, 227, 227)).astype(np.float32)
    want = caffe_net.extract_fc7(blob)
    got = C.forward_c(weights.synthetic_weights_path(0), blob)
    assert got.shape == want.shape == (n, 4096)
    assert (want > 0).mean() > 0.3
    err = (np.abs(got - want).max(axis=1) / np.abs(want).max(axis=1)).max()
    assert err <= FC7_TOLERANCE, f"fc7 worst error {err:.3g} of max vs Caffe"


@pytest.mark.parametrize("names", [("conv1", "norm1", "pool1"), ("conv5", "pool5", "fc6")])
def test_intermediate_blobs_match_real_caffe(caffe_net, names):
    """Layer by layer (not only the end result): each blob within the fc7 tolerance of
    Caffe's. conv1 already differs in the last bits (~1e-6 of the max: Caffe's OpenBLAS
    blocks the sums differently), and LRN and pooling carry that on unchanged."""
    blob = np.random.default_rng(33).integers(0, 256, (2, 3, 227, 227)).astype(np.float32)
    want = caffe_net.forward(blob, outputs=names)
    for name in names:
        got = C.forward_c(weights.synthetic_weights_path(0), blob, until=name)
        assert got.shape == want[name].shape, name
        scale = float(np.abs(want[name]).max())
        err = float(np.abs(got - want[name]).max())
        assert err <= FC7_TOLERANCE * scale, f"{name}: {err:.3g} of max {scale:.3g}"
