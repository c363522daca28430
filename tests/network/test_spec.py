"""The one AlexNet table (refimpl.network.spec) against what real Caffe makes of
weights/alexnet/deploy.prototxt: the same layers in the same order, the same types, the
same parameter shapes and blob shapes. Caffe is the oracle; the table is ours."""
import pytest

from refimpl.network import spec
from refimpl.network.caffe_client import CaffeNet, caffe_available

pytestmark = pytest.mark.skipif(not caffe_available(), reason="real Caffe not installed "
                                                                "(make caffe)")


@pytest.fixture(scope="module")
def caffe_view():
    with CaffeNet(spec.prototxt_path()) as net:
        return net.info


def test_layers_and_types_are_caffes(caffe_view):
    layers = [(name, kind) for name, kind in caffe_view["layers"] if kind != "Input"]
    assert layers == [(layer.name, spec.CAFFE_TYPES[layer.kind]) for layer in spec.LAYERS]


def test_parameter_shapes_are_caffes(caffe_view):
    caffe_params = {name: [tuple(s) for s in shapes]
                    for name, shapes in caffe_view["params"].items()}
    assert caffe_params == {name: [tuple(s) for s in shapes]
                            for name, shapes in spec.PARAM_SHAPES.items()}


def test_blob_shapes_are_caffes(caffe_view):
    blobs = {name: tuple(shape[1:]) for name, shape in caffe_view["blobs"].items()
             if name != spec.INPUT_BLOB}
    assert blobs == spec.blob_shapes()
    assert tuple(caffe_view["blobs"][spec.INPUT_BLOB][1:]) == spec.INPUT_SHAPE
    assert list(blobs) == spec.BLOB_NAMES


def test_derived_tables():
    """Every blob is read after the last in-place layer on it, as Caffe's net.blobs are."""
    assert spec.FINAL_LAYER["fc7"] == "drop7" and spec.FINAL_LAYER["conv1"] == "relu1"
    assert spec.FINAL_LAYER["norm1"] == "norm1"
    assert spec.FEATURE_DIM == 4096 and spec.blob_dim("pool5") == 256 * 6 * 6
    with pytest.raises(ValueError, match="unknown AlexNet blob"):
        spec.blob_dim("relu7")
