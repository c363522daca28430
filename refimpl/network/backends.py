"""Network backends behind one small protocol, and feature networks over them.

A backend runs AlexNet on blobs:

    class Backend(Protocol):
        name: str                                   # "numpy", "c", "caffe", "torch", ...
        def forward(self, blob, until="fc7"): ...   # (N, 3, 227, 227) -> blob `until`
        def close(self): ...

    backend = open_backend("c", weights)            # weights: a caffemodel path

A feature network takes images (uint8 N x 227 x 227 x 3 RGB), applies its own input
stage and returns (N, dim) features: AlexNet's blob stage then a backend up to any of its
blobs (fc7 by default, as the paper; pool5, conv5, fc6, ... flattened in C order, as the
toolkit's np.ravel did), or EfficientNet-Lite0's own pipeline.

    net = open_network("c", weights=path, layer="fc7")
    features = net.features(images)                 # (N, net.dim)
"""
from pathlib import Path
from typing import Protocol

import numpy as np

from refimpl.errors import UsageError
from refimpl.network import caffemodel, efficientnet
from refimpl.network.blob import image_to_blob
from refimpl.network.caffe_client import CaffeNetwork
from refimpl.network.cforward import CNetwork
from refimpl.network.openvino_backend import OpenVinoNetwork
from refimpl.network.reference import NumpyNetwork
from refimpl.network.spec import BLOB_NAMES, FEATURE_BLOB, blob_dim
from refimpl.network.torch_backend import TorchNetwork

__all__ = ["Backend", "BACKENDS", "NETWORKS", "arithmetic_key", "names_own_arithmetic",
           "open_backend", "open_network", "feature_layer",
           "feature_dim", "AlexNetFeatures", "EfficientNetFeatures"]


class Backend(Protocol):
    name: str

    def forward(self, blob, until=FEATURE_BLOB) -> np.ndarray: ...

    def close(self) -> None: ...


# numpy: the readable reference; caffe: the real thing; c: the compiled core; torch: PyTorch
# on a CPU or a CUDA device (an optional extra); openvino: OpenVINO's CPU plugin (an
# optional extra; faster than the core on some CPUs, see docs/performance.md)
BACKENDS = {"numpy": NumpyNetwork, "caffe": CaffeNetwork, "c": CNetwork, "torch": TorchNetwork,
            "openvino": OpenVinoNetwork}
# the backends that run on a device other than the CPU, and how they name it
DEVICE_BACKENDS = {"torch": "cpu, cuda or cuda:N",
                   "caffe": "cpu or gpu:N (a CUDA pycaffe named by REFIMPL_CAFFE_PYTHON)"}

NETWORKS = ("alexnet", "efficientnet-lite0")


def names_own_arithmetic(name):
    """Whether backend `name` names what moves its last bits itself (its class's
    arithmetic_id: the C core, OpenVINO)."""
    return hasattr(BACKENDS[name], "arithmetic_id")


def arithmetic_key(name):
    """Backend `name` as a cache key names it: followed by its arithmetic_id where it has
    one (ExtractorConfig.config_id and the grid's adapters both key AlexNet's features so)."""
    if not names_own_arithmetic(name):
        return name
    return f"{name} {BACKENDS[name].arithmetic_id()}"


def open_backend(name, weights, device=None):
    """An AlexNet backend with `weights` (a caffemodel path) loaded once; `device` for the
    backends that can run elsewhere than on the CPU (DEVICE_BACKENDS)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(sorted(BACKENDS))}")
    if name == "caffe" and weights is not None:
        # Caffe aborts on a caffemodel it cannot use, with a CHECK message that does not name
        # the file first: read it ourselves, so the error names the file and the layer
        caffemodel.load_alexnet_params(weights)
    if device is None:
        return BACKENDS[name](weights)
    if name not in DEVICE_BACKENDS:
        raise UsageError(f"backend {name!r} runs on the CPU only (a device is for "
                         f"{', '.join(DEVICE_BACKENDS)})")
    return BACKENDS[name](weights, device=device)


class AlexNetFeatures:
    """Images -> blob `layer` (default fc7, after its ReLU) through one of the AlexNet
    backends: the blob stage (BGR, CHW, pixel values, optionally minus the ImageNet mean),
    then the forward pass up to that blob, one row per image (C-order flattening)."""
    name = "alexnet"

    def __init__(self, backend, weights, subtract_mean=False, device=None, layer=FEATURE_BLOB):
        if layer not in BLOB_NAMES:
            raise UsageError(f"AlexNet has no blob {layer!r}; choose from {', '.join(BLOB_NAMES)}")
        self.layer = layer
        self.dim = blob_dim(layer)
        self.net = open_backend(backend, weights, device)
        self.subtract_mean = subtract_mean
        # True where an image's features do not depend on its batch (the C core): the
        # engine then batches several files' images together
        self.batch_invariant = getattr(self.net, "batch_invariant", False)

    def features(self, images):
        out = self.net.forward(image_to_blob(images, self.subtract_mean), self.layer)
        return out.reshape(len(out), self.dim)

    def close(self):
        self.net.close()


class EfficientNetFeatures:
    """Images -> the 1280-d pooled layer of the pretrained EfficientNet-Lite0 (NumPy
    forward pass; its own input pipeline, see refimpl.network.efficientnet)."""
    name = "efficientnet-lite0"
    dim = efficientnet.FEATURE_DIM
    batch_invariant = False   # NumPy's BLAS blocks its products by the batch
    layer = "global-pool"   # its one feature layer

    def __init__(self):
        self._net = efficientnet.network()

    def features(self, images):
        return efficientnet.efficientnet_features(images, net=self._net)

    def close(self):
        pass


def feature_layer(net="alexnet", layer=None):
    """The blob a network's features are read from: `layer`, or the network's own (fc7 for
    AlexNet). A UsageError for a name the network does not have."""
    if net == "alexnet":
        layer = FEATURE_BLOB if layer is None else layer
        if layer not in BLOB_NAMES:
            raise UsageError(f"AlexNet has no blob {layer!r}; choose from {', '.join(BLOB_NAMES)}")
        return layer
    if net == "efficientnet-lite0":
        if layer not in (None, EfficientNetFeatures.layer):
            raise UsageError(f"efficientnet-lite0 has one feature layer, "
                             f"{EfficientNetFeatures.layer!r}, not {layer!r}")
        return EfficientNetFeatures.layer
    raise UsageError(f"unknown network {net!r}; choose from {', '.join(NETWORKS)}")


def feature_dim(net="alexnet", layer=None):
    """Values per image of feature_layer(net, layer) (fc7: 4096, pool5: 9216, ...)."""
    layer = feature_layer(net, layer)
    return EfficientNetFeatures.dim if net == "efficientnet-lite0" else blob_dim(layer)


def open_network(backend: str = "caffe", weights: str | Path | None = None, net: str = "alexnet",
                 subtract_mean: bool = False, device: str | None = None,
                 layer: str | None = None) -> "AlexNetFeatures | EfficientNetFeatures":
    """An open feature network: spectrogram pictures in, one feature vector per picture out.

    Parameters
    ----------
    backend : str
        For AlexNet: "caffe" (real Caffe in a worker process), "numpy" (the reference),
        "c" (the compiled core), "torch" or "openvino" (optional extras).
    weights : str or pathlib.Path, optional
        A caffemodel path, or None for the BVLC AlexNet (downloaded and checked by SHA-1).
        refimpl.network.weights.resolve_weights turns the command line's spellings
        ("synthetic:SEED", a seeded random AlexNet that is not the paper's network) into
        a path.
    net : str
        "alexnet" (the paper's) or "efficientnet-lite0".
    subtract_mean : bool
        Subtract the ImageNet mean from the blob (not what the paper did).
    device : str, optional
        The torch backend's device ("cpu", "cuda", "cuda:N").
    layer : str, optional
        The blob the features are read from (None: the network's own, fc7 for AlexNet).

    Returns
    -------
    AlexNetFeatures or EfficientNetFeatures
        ``.features(images)`` maps uint8 RGB pictures of shape (N, 227, 227, 3) to an
        (N, ``.dim``) float32 array; ``.close()`` releases a worker process.

    Examples
    --------
    >>> from refimpl.network.weights import resolve_weights
    >>> net = open_network("c", resolve_weights("synthetic:0"))
    >>> net.features(np.zeros((2, 227, 227, 3), np.uint8)).shape
    (2, 4096)
    >>> net.close()
    """
    layer = feature_layer(net, layer)   # refuses an unknown network
    if net == "efficientnet-lite0":
        return EfficientNetFeatures()
    return AlexNetFeatures(backend, weights, subtract_mean, device, layer)
