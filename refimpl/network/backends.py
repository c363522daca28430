"""Network backends behind one small protocol, and feature networks over them.

A backend runs AlexNet on blobs:

    class Backend(Protocol):
        name: str                                   # "numpy", "c", "caffe", "torch"
        def forward(self, blob, until="fc7"): ...   # (N, 3, 227, 227) -> blob `until`
        def close(self): ...

    backend = open_backend("c", weights)            # weights: a caffemodel path

A feature network takes images (uint8 N x 227 x 227 x 3 RGB), applies its own input
stage and returns (N, dim) features: AlexNet's blob stage then a backend, or
EfficientNet-Lite0's own pipeline.

    net = open_network("alexnet", backend="c", weights=path)
    features = net.features(images)
"""
from typing import Protocol

import numpy as np

from refimpl.errors import UsageError
from refimpl.network import efficientnet
from refimpl.network.blob import image_to_blob
from refimpl.network.caffe_client import CaffeNetwork
from refimpl.network.cforward import CNetwork
from refimpl.network.reference import NumpyNetwork
from refimpl.network.spec import FEATURE_BLOB, FEATURE_DIM
from refimpl.network.torch_backend import TorchNetwork

__all__ = ["Backend", "BACKENDS", "NETWORKS", "open_backend", "open_network",
           "AlexNetFeatures", "EfficientNetFeatures"]


class Backend(Protocol):
    name: str

    def forward(self, blob, until=FEATURE_BLOB) -> np.ndarray: ...

    def close(self) -> None: ...


# numpy: the readable reference; caffe: the real thing; c: the compiled core (fastest on a
# CPU); torch: PyTorch on a CPU or a CUDA device (an optional extra)
BACKENDS = {"numpy": NumpyNetwork, "caffe": CaffeNetwork, "c": CNetwork, "torch": TorchNetwork}
# the backends that run on a device other than the CPU, and how they name it
DEVICE_BACKENDS = {"torch": "cpu, cuda or cuda:N",
                   "caffe": "cpu or gpu:N (a CUDA pycaffe named by REFIMPL_CAFFE_PYTHON)"}

NETWORKS = ("alexnet", "efficientnet-lite0")


def open_backend(name, weights, device=None):
    """An AlexNet backend with `weights` (a caffemodel path) loaded once; `device` for the
    backends that can run elsewhere than on the CPU (DEVICE_BACKENDS)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(sorted(BACKENDS))}")
    if device is None:
        return BACKENDS[name](weights)
    if name not in DEVICE_BACKENDS:
        raise UsageError(f"backend {name!r} runs on the CPU only (a device is for "
                         f"{', '.join(DEVICE_BACKENDS)})")
    return BACKENDS[name](weights, device=device)


class AlexNetFeatures:
    """Images -> fc7 through one of the AlexNet backends: the blob stage (BGR, CHW, pixel
    values, optionally minus the ImageNet mean) then the forward pass."""
    name = "alexnet"
    dim = FEATURE_DIM

    def __init__(self, backend, weights, subtract_mean=False, device=None):
        self.net = open_backend(backend, weights, device)
        self.subtract_mean = subtract_mean

    def features(self, images):
        return self.net.forward(image_to_blob(images, self.subtract_mean), FEATURE_BLOB)

    def close(self):
        self.net.close()


class EfficientNetFeatures:
    """Images -> the 1280-d pooled layer of the pretrained EfficientNet-Lite0 (NumPy
    forward pass; its own input pipeline, see refimpl.network.efficientnet)."""
    name = "efficientnet-lite0"
    dim = efficientnet.FEATURE_DIM

    def __init__(self):
        self._net = efficientnet.network()

    def features(self, images):
        return efficientnet.efficientnet_features(images, net=self._net)

    def close(self):
        pass


def open_network(backend="caffe", weights=None, net="alexnet", subtract_mean=False,
                 device=None):
    """An open feature network: .features(uint8 N x 227 x 227 x 3 RGB) -> (N, .dim)."""
    if net == "alexnet":
        return AlexNetFeatures(backend, weights, subtract_mean, device)
    if net == "efficientnet-lite0":
        return EfficientNetFeatures()
    raise ValueError(f"unknown network {net!r}; choose from {', '.join(NETWORKS)}")
