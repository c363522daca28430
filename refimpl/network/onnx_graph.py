"""AlexNet as an ONNX graph built from the caffemodel in memory (no converter, no
downloaded model): what the "openvino" backend (refimpl.network.openvino_backend) runs,
and what the benchmarks feed ONNX Runtime (tests/benchmarks/peers.py).

The graph is AlexNet as in refimpl.network.ALEXNET_LAYERS, with ONNX's standard operators,
whose definitions give Caffe's semantics:
* Conv with `group`, `pads`, `strides`; bias added.
* LRN: ONNX defines y = x / (bias + alpha/size * square_sum)^beta, square_sum over the
  channels max(0, c - floor((size-1)/2)) .. min(C-1, c + ceil((size-1)/2)), i.e. a window
  clipped at the edges (as zero padding would be). bias = Caffe's k; for odd sizes (the only
  ones Caffe accepts) the window is Caffe's, (size-1)/2 channels on each side.
* MaxPool with ceil_mode=1: ONNX's size is ceil((H + 2 pad - kernel) / stride) + 1, Caffe's
  (network.pool_output_size) without its rule for a last window starting in the right
  padding; the builder checks every pooled size against pool_output_size and refuses a
  network where they would differ (not AlexNet).
* Flatten(axis=1) is the C-order flattening Caffe's InnerProduct uses; Gemm(transB=1)
  computes x W^T + b; Relu after each, as the prototxt.

onnx (and the runtimes) are optional: requirements-bench.txt, `make bench-deps`, or
pip install -e '.[bench]'; they are imported only when a graph is built.
"""
import numpy as np

from refimpl._util.optional import optional_import
from refimpl.network import spec as _ref
from refimpl.network.caffemodel import alexnet_params

__all__ = ["onnx_alexnet", "check_blob", "require", "missing_packages", "OPSET", "INSTALL_HINT"]

OPSET = 17  # supported by every onnxruntime and OpenVINO release of the last years
INSTALL_HINT = ("install the extra: make bench-deps, or pip install -r "
                "requirements-bench.txt (or pip install -e '.[bench]')")


def require(name, user="refimpl.network.onnx_graph"):
    """Import the optional package `name` (one of the bench extra's), or a
    MissingDependency that says what `user` needs and how to install the extra."""
    return optional_import(name, user, INSTALL_HINT)


def missing_packages(*names):
    """The names among `names` (default: onnx, onnxruntime, openvino) that cannot be
    imported, for a skip message."""
    import importlib.util
    names = names or ("onnx", "onnxruntime", "openvino")

    def absent(name):
        try:
            return importlib.util.find_spec(name) is None
        except (ImportError, ValueError):  # a broken or blocked install counts as absent
            return True
    return [n for n in names if absent(n)]


def _onnx_pool_size(size, kernel, stride, pad):
    """ONNX MaxPool's ceil_mode output size (without Caffe's right-padding rule)."""
    return -(-(size + 2 * pad - kernel) // stride) + 1


def onnx_alexnet(weights, outputs=_ref.FEATURE_BLOB):
    """AlexNet from a caffemodel path (or load_alexnet_params' dict) as an onnx.ModelProto:
    input "data" float32 (N, 3, 227, 227) with a free batch dimension N; graph outputs the
    blobs named in `outputs` (one name or several, of network.BLOB_NAMES; "fc7" is after
    relu7, as Caffe's in-place blob), as far as the last of them."""
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    for blob in outputs:
        if blob not in _ref.BLOB_NAMES:
            raise ValueError(f"unknown AlexNet blob {blob!r}; one of {', '.join(_ref.BLOB_NAMES)}")
    params = alexnet_params(weights)
    wanted = {_ref.FINAL_LAYER[blob]: blob for blob in outputs}  # last writer -> blob
    nodes, inits, graph_outputs = [], [], []
    x, hw = "data", _ref.INPUT_SHAPE[1]
    shape = list(_ref.INPUT_SHAPE)  # of the current blob, per image
    for name, kind, cfg in _ref.ALEXNET_LAYERS:
        out = name + "_y"  # blob names are the Identity outputs below
        if kind == "conv":
            w, b = params[name]
            inits += [numpy_helper.from_array(w, name + "_w"), numpy_helper.from_array(b, name + "_b")]
            p, s = cfg["pad"], cfg["stride"]
            nodes.append(helper.make_node(
                "Conv", [x, name + "_w", name + "_b"], [out], name=name, group=cfg["group"],
                kernel_shape=list(w.shape[2:]), strides=[s, s], pads=[p, p, p, p]))
            hw = (hw + 2 * p - w.shape[2]) // s + 1
            shape = [w.shape[0], hw, hw]
        elif kind == "relu":
            nodes.append(helper.make_node("Relu", [x], [out], name=name))
        elif kind == "lrn":
            if cfg["size"] % 2 != 1:
                raise ValueError(f"{name}: LRN size {cfg['size']} is even; Caffe supports odd "
                                 "sizes only, and ONNX's window differs there")
            nodes.append(helper.make_node("LRN", [x], [out], name=name, size=cfg["size"],
                                          alpha=cfg["alpha"], beta=cfg["beta"], bias=cfg["k"]))
        elif kind == "pool":
            k, s, p = cfg["kernel"], cfg["stride"], cfg["pad"]
            caffe, theirs = _ref.pool_output_size(hw, k, s, p), _onnx_pool_size(hw, k, s, p)
            if caffe != theirs:
                raise ValueError(f"{name}: ONNX's ceil-mode pooled size {theirs} differs from "
                                 f"Caffe's {caffe} for input {hw}, kernel {k}, stride {s}, pad {p}")
            nodes.append(helper.make_node("MaxPool", [x], [out], name=name, kernel_shape=[k, k],
                                          strides=[s, s], pads=[p, p, p, p], ceil_mode=1))
            hw = caffe
            shape = [shape[0], hw, hw]
        elif kind == "fc":
            w, b = params[name]
            inits += [numpy_helper.from_array(w, name + "_w"), numpy_helper.from_array(b, name + "_b")]
            if len(shape) == 3:  # the conv part ends: C-order flattening, as Caffe's
                nodes.append(helper.make_node("Flatten", [x], [x + "_flat"], axis=1))
                x = x + "_flat"
            nodes.append(helper.make_node("Gemm", [x, name + "_w", name + "_b"], [out],
                                          name=name, transB=1))
            shape = [w.shape[0]]
        elif kind == "dropout":  # the identity at test time
            nodes.append(helper.make_node("Identity", [x], [out], name=name))
        else:
            raise AssertionError(f"unhandled layer kind {kind}")
        x = out
        if name in wanted:
            blob = wanted.pop(name)
            nodes.append(helper.make_node("Identity", [x], [blob], name="output_" + blob))
            graph_outputs.append(helper.make_tensor_value_info(blob, TensorProto.FLOAT,
                                                               ["N", *shape]))
            if not wanted:
                break
    graph = helper.make_graph(
        nodes, "alexnet_to_" + outputs[-1],
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", *_ref.INPUT_SHAPE])],
        graph_outputs, initializer=inits)
    model = helper.make_model(graph, producer_name="refimpl.network.onnx_graph",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def check_blob(blob):
    """blob as float32 C-contiguous (N, 3, 227, 227), or a ValueError naming its shape."""
    blob = np.ascontiguousarray(blob, dtype=np.float32)
    if blob.ndim != 4 or blob.shape[1:] != _ref.INPUT_SHAPE:
        raise ValueError(f"AlexNet input must be (N, 3, 227, 227), got {blob.shape}")
    return blob
