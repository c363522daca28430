"""Stages 3 and 4 — blob and network: a spectrogram image -> AlexNet's activations; blob
fc7 (after its ReLU) is the deep spectrum feature vector.

    spec          THE AlexNet layer table (everything else is derived from it or checked)
    blob          image -> Caffe's input blob (BGR, CHW, pixel values)
    reference     the NumPy forward pass with Caffe's exact semantics, top to bottom
    cforward      the compiled C core (csrc/): the reference's numbers, several times faster
    caffe_client  real Caffe in a worker process (caffe_worker.py): the oracle, and a backend
    caffemodel    .caffemodel files read and written without Caffe or protobuf
    weights       the BVLC AlexNet (download, SHA1) and seeded synthetic stand-ins
    efficientnet  EfficientNet-Lite0, a second, truly pretrained network (torchckpt reads
                  its PyTorch checkpoint without PyTorch)
    torch_backend PyTorch (an optional extra), on a CPU or a CUDA device
    openvino_backend  OpenVINO's CPU plugin (an optional extra) on onnx_graph's AlexNet,
                  the caffemodel as an ONNX graph built in memory
    backends      the Backend protocol, open_backend and open_network
"""
from refimpl.network.backends import (BACKENDS, NETWORKS, Backend, arithmetic_key, feature_dim,
                                      feature_layer, names_own_arithmetic, open_backend,
                                      open_network)
from refimpl.network.blob import image_to_blob

__all__ = ["Backend", "BACKENDS", "NETWORKS", "arithmetic_key", "names_own_arithmetic",
           "open_backend", "open_network", "feature_layer", "feature_dim", "image_to_blob"]
