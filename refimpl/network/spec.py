"""THE AlexNet definition: every other description of the network is derived from this
table or checked against it (weights/alexnet/deploy.prototxt, which real Caffe reads, is
compared with it layer by layer in tests/network/test_spec.py, through Caffe itself).

BVLC AlexNet as Caffe runs it at test time, in order. Blob names equal layer names; ReLU
and dropout work in place on their bottom blob, so blob "fc7" is read after relu7 (and
drop7, the identity at test time): the deep spectrum features are fc7 after its ReLU.
"""
from typing import NamedTuple

from refimpl._util import locations

__all__ = ["Layer", "LAYERS", "ALEXNET_LAYERS", "PARAM_SHAPES", "CAFFE_TYPES", "LAYER_TYPES",
           "BLOB_NAMES", "FINAL_LAYER", "FEATURE_BLOB", "FEATURE_DIM", "INPUT_BLOB",
           "INPUT_SHAPE", "prototxt_path", "blob_shapes", "blob_dim", "conv_output_size",
           "pool_output_size"]


class Layer(NamedTuple):
    name: str
    kind: str            # conv, relu, lrn, pool, fc, dropout
    config: dict = {}    # the arguments of the layer function (refimpl.network.reference)
    params: tuple = ()   # shapes of its parameter blobs: (weights, bias)
    inplace: bool = False  # writes into its bottom blob (ReLU, dropout)


_LRN = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)
_POOL = dict(kernel=3, stride=2, pad=0)

LAYERS = (
    Layer("conv1", "conv", dict(stride=4, pad=0, group=1), ((96, 3, 11, 11), (96,))),
    Layer("relu1", "relu", inplace=True),
    Layer("norm1", "lrn", _LRN),
    Layer("pool1", "pool", _POOL),
    Layer("conv2", "conv", dict(stride=1, pad=2, group=2), ((256, 48, 5, 5), (256,))),
    Layer("relu2", "relu", inplace=True),
    Layer("norm2", "lrn", _LRN),
    Layer("pool2", "pool", _POOL),
    Layer("conv3", "conv", dict(stride=1, pad=1, group=1), ((384, 256, 3, 3), (384,))),
    Layer("relu3", "relu", inplace=True),
    Layer("conv4", "conv", dict(stride=1, pad=1, group=2), ((384, 192, 3, 3), (384,))),
    Layer("relu4", "relu", inplace=True),
    Layer("conv5", "conv", dict(stride=1, pad=1, group=2), ((256, 192, 3, 3), (256,))),
    Layer("relu5", "relu", inplace=True),
    Layer("pool5", "pool", _POOL),
    Layer("fc6", "fc", {}, ((4096, 9216), (4096,))),
    Layer("relu6", "relu", inplace=True),
    Layer("drop6", "dropout", inplace=True),
    Layer("fc7", "fc", {}, ((4096, 4096), (4096,))),
    Layer("relu7", "relu", inplace=True),
    Layer("drop7", "dropout", inplace=True),
    Layer("fc8", "fc", {}, ((1000, 4096), (1000,))),
)

# (name, kind, config) triples: the form the layer loops of the forward passes walk.
ALEXNET_LAYERS = [(layer.name, layer.kind, layer.config) for layer in LAYERS]

# Layer name -> shapes of its parameter blobs (Caffe's (out, in/group, kh, kw) order).
PARAM_SHAPES = {layer.name: list(layer.params) for layer in LAYERS if layer.params}

# Caffe's layer type strings, by kind and by layer name.
CAFFE_TYPES = {"conv": "Convolution", "relu": "ReLU", "lrn": "LRN", "pool": "Pooling",
               "fc": "InnerProduct", "dropout": "Dropout"}
LAYER_TYPES = {layer.name: CAFFE_TYPES[layer.kind] for layer in LAYERS}

# The blobs a forward pass can return, in order, and for each the last layer writing it.
BLOB_NAMES = [layer.name for layer in LAYERS if not layer.inplace]


def _final_layers():
    final, top = {}, None
    for layer in LAYERS:
        if not layer.inplace:
            top = layer.name
        final[top] = layer.name
    return final


FINAL_LAYER = _final_layers()

INPUT_BLOB = "data"
INPUT_SHAPE = (3, 227, 227)          # BGR, pixel values 0..255 (refimpl.network.blob)
FEATURE_BLOB = "fc7"
FEATURE_DIM = PARAM_SHAPES[FEATURE_BLOB][1][0]


def conv_output_size(size, kernel, stride, pad):
    """Caffe's convolution output size: floor((size + 2*pad - kernel) / stride) + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def pool_output_size(size, kernel, stride, pad):
    """Caffe's pooled size: ceil((size + 2*pad - kernel) / stride) + 1, then, with
    padding, drop the last window if it would start in the right padding."""
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def blob_shapes():
    """Blob name -> its shape for one image, e.g. {"conv1": (96, 55, 55), ..., "fc7": (4096,)}."""
    shapes, (c, h, w) = {}, INPUT_SHAPE
    flat = None
    for layer in LAYERS:
        if layer.kind == "conv":
            k, s, p = layer.params[0][2], layer.config["stride"], layer.config["pad"]
            c, h, w = layer.params[0][0], conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
        elif layer.kind == "pool":
            k, s, p = layer.config["kernel"], layer.config["stride"], layer.config["pad"]
            h, w = pool_output_size(h, k, s, p), pool_output_size(w, k, s, p)
        elif layer.kind == "fc":
            flat = layer.params[0][0]
        if not layer.inplace:
            shapes[layer.name] = (flat,) if flat is not None else (c, h, w)
    return shapes


def blob_dim(name):
    """Number of values of blob `name` per image (e.g. fc7: 4096, pool5: 9216)."""
    if name not in BLOB_NAMES:
        raise ValueError(f"unknown AlexNet blob {name!r}; one of {', '.join(BLOB_NAMES)}")
    n = 1
    for d in blob_shapes()[name]:
        n *= d
    return n


def prototxt_path():
    """Caffe's deploy definition of the same network (weights/alexnet/deploy.prototxt)."""
    return locations.weights_dir() / "alexnet" / "deploy.prototxt"
