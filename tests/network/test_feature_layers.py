"""Every backend's feature network read at any AlexNet blob (the toolkit's -layer) against
real Caffe reading the same blob of the same net, flattened as the toolkit's np.ravel
did. Tolerance: the golden files' 1e-5 of the blob's largest value (float32 sums in
another order; conv1, LRN and pooling are exact or within that already, see
test_cforward_caffe.py)."""
import numpy as np
import pytest

from refimpl.errors import UsageError
from refimpl.golden import TOLERANCES
from refimpl.network import caffe_client as cb
from refimpl.network import cforward, open_network, torch_backend, weights
from refimpl.network.blob import image_to_blob
from refimpl.network.spec import blob_dim

LAYERS = ["norm1", "conv5", "pool5", "fc6"]   # fc7 is checked in test_*_caffe.py
BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(
    not cforward.available(), reason="C core not built")), pytest.param(
    "torch", marks=pytest.mark.skipif(not torch_backend.available(), reason="no torch")),
    pytest.param("caffe", marks=pytest.mark.caffe)]


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(41).integers(0, 256, (2, 227, 227, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def caffe_blobs(images):
    if not cb.caffe_available():
        pytest.skip("real Caffe not installed (make caffe)")
    with cb.CaffeNet(cb.ALEXNET_PROTOTXT, weights.synthetic_weights_path(0)) as net:
        return net.forward(image_to_blob(images), outputs=tuple(LAYERS))


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_blob_is_a_feature_layer(backend, images, caffe_blobs):
    for layer in LAYERS:
        net = open_network(backend, weights.synthetic_weights_path(0), layer=layer)
        try:
            got = net.features(images)
        finally:
            net.close()
        want = caffe_blobs[layer].reshape(len(images), -1)       # np.ravel per image
        assert got.shape == want.shape == (2, blob_dim(layer)) and net.dim == blob_dim(layer)
        scale = float(np.abs(want).max())
        assert np.abs(got - want).max() <= TOLERANCES["fc7_max_error_rel_to_max"] * scale, layer


def test_unknown_layers_are_refused_with_the_choices():
    with pytest.raises(UsageError, match="no blob 'prob'.*pool5"):
        open_network("numpy", weights.synthetic_weights_path(0), layer="prob")
    with pytest.raises(UsageError, match="efficientnet-lite0 has one feature layer"):
        open_network(net="efficientnet-lite0", layer="fc7")
