"""Every backend's feature network read at any AlexNet blob (the toolkit's -layer) against
real Caffe reading the same blob of the same net, flattened as the toolkit's np.ravel
did. Tolerance: element by element, the float32 rounding bound of two evaluations of the
network carried through its layers (tests/support/tolerances.py alexnet_bound; Winograd's for
the C core)."""
import numpy as np
import pytest
import tolerances as tol
from oracles import unavailable

from refimpl.errors import UsageError
from refimpl.network import caffemodel
from refimpl.network import caffe_client as cb
from refimpl.network import cforward, open_network, torch_backend, weights
from refimpl.network.blob import image_to_blob
from refimpl.network.spec import blob_dim

LAYERS = ["norm1", "conv5", "pool5", "fc6"]   # fc7 is checked in test_*_caffe.py
BACKENDS = ["numpy", "c", "torch", pytest.param("caffe", marks=pytest.mark.caffe)]


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(41).integers(0, 256, (2, 227, 227, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def caffe_blobs(images, caffe_installed):
    with cb.CaffeNet(cb.ALEXNET_PROTOTXT, weights.synthetic_weights_path(0)) as net:
        return net.forward(image_to_blob(images), outputs=tuple(LAYERS))


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_blob_is_a_feature_layer(backend, images, caffe_blobs):
    if backend == "c" and not cforward.available():
        unavailable("core", "the C core is not built (make build)")
    if backend == "torch" and not torch_backend.available():
        unavailable("torch", "PyTorch is not installed (make test-deps)")
    params = caffemodel.load_alexnet_params(weights.synthetic_weights_path(0))
    bounds = {k: b for k, (_, b) in tol.alexnet_bound(params, image_to_blob(images), LAYERS,
                                                      winograd=backend == "c").items()}
    for layer in LAYERS:
        net = open_network(backend, weights.synthetic_weights_path(0), layer=layer)
        try:
            got = net.features(images)
        finally:
            net.close()
        want = caffe_blobs[layer].reshape(len(images), -1)       # np.ravel per image
        assert got.shape == want.shape == (2, blob_dim(layer)) and net.dim == blob_dim(layer)
        tol.assert_within(got, want, bounds[layer].reshape(len(images), -1), layer)


def test_unknown_layers_are_refused_with_the_choices():
    with pytest.raises(UsageError, match="no blob 'prob'.*pool5"):
        open_network("numpy", weights.synthetic_weights_path(0), layer="prob")
    with pytest.raises(UsageError, match="efficientnet-lite0 has one feature layer"):
        open_network(net="efficientnet-lite0", layer="fc7")
