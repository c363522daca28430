"""The C core's AlexNet fc7 against real Caffe (needs `make caffe`).

Bound (tests/support/tolerances.py): two float32 evaluations of the network, the C core's (conv2-5
by Winograd when it is on) and Caffe's (im2col + SGEMM), rounding carried layer to layer.
"""
import numpy as np
import pytest

import tolerances as tol
from refimpl.network import caffe_client as cb
from refimpl.network import caffemodel as cm
from refimpl.network import cforward as C
from refimpl.network import weights

pytestmark = pytest.mark.caffe


def bounds(blob, names):
    params = cm.load_alexnet_params(weights.synthetic_weights_path(0))
    return tol.alexnet_bound(params, blob, names, winograd=C.settings()["winograd"])


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
    used = tol.assert_within(got, want, bounds(blob, ["fc7"])["fc7"][1], "fc7 vs Caffe")
    print(f"fc7, C core vs Caffe: {used:.3f} of the bound")


@pytest.mark.parametrize("names", [("conv1", "norm1", "pool1"), ("conv5", "pool5", "fc6")])
def test_intermediate_blobs_match_real_caffe(caffe_net, names):
    """Layer by layer (not only the end result): each blob within its bound of Caffe's.
    conv1 already differs in the last bits (Caffe's OpenBLAS sums in another order),
    and LRN and pooling carry that on."""
    blob = np.random.default_rng(33).integers(0, 256, (2, 3, 227, 227)).astype(np.float32)
    want = caffe_net.forward(blob, outputs=names)
    bound = bounds(blob, names)
    for name in names:
        got = C.forward_c(weights.synthetic_weights_path(0), blob, until=name)
        assert got.shape == want[name].shape, name
        used = tol.assert_within(got, want[name], bound[name][1].reshape(got.shape), name)
        print(f"{name}, C core vs Caffe: {used:.3f} of the bound")
