"""AlexNet to fc7 on PyTorch (CPU or CUDA), from the same caffemodel as the other backends.

The layers are PyTorch's own operators, configured to Caffe's semantics (refimpl.network.reference
states them and is the reference this module is tested against):

* Convolution: F.conv2d with `groups` (conv2, conv4 and conv5 have two groups), zero
  padding, bias added.
* LRN across channels: F.local_response_norm computes x / (k + alpha * mean of x^2 over
  the window)^beta, the window zero-padded beyond the channel edges, size // 2 channels
  before and (size - 1) // 2 after. alpha * mean = alpha/n * sum, Caffe's formula, and for
  odd n the window is centred exactly as Caffe's ((n - 1) / 2 on each side); Caffe refuses
  even n (LRNLayer::LayerSetUp), and so does this module, where the two would differ.
* Max pooling: F.max_pool2d with ceil_mode=True. PyTorch's ceil-mode size is
  ceil((H + 2 pad - kernel) / stride) + 1, dropping a last window that starts in the right
  padding: Caffe's rule (network.pool_output_size), except that PyTorch drops that window
  without padding too, where Caffe keeps it empty. That only happens for kernel < stride,
  which AlexNet does not have; every pooled size is checked against pool_output_size.
  Padding never wins a max in either.
* InnerProduct: F.linear on the blob flattened in C order (channel, row, column), which is
  what reshape gives on a contiguous NCHW tensor.
* ReLU in place, as in the prototxt: blob "conv1" is read after relu1, "fc7" after relu7.

float32 throughout. On CUDA, cuDNN's convolutions would by default run in TF32 (10-bit
mantissa), which is not Caffe's arithmetic; every forward pass runs with PyTorch's fp32
precision set to "ieee" for convolutions and matrix products (restored afterwards).

    net = TorchNetwork(weights, device="cuda:0")      # or "cpu"
    fc7 = net.fc7(blob)                               # (N, 3, 227, 227) float32 -> (N, 4096)
    refimpl golden verify --stage fc7 --impl refimpl.network.torch_backend:golden_fc7
    REFIMPL_TORCH_DEVICE=cuda refimpl golden verify --stage fc7 --impl refimpl.network.torch_backend:golden_fc7

PyTorch is an optional dependency (requirements-torch.txt, or the `torch` extra), imported
only when a network is built.
"""
import contextlib
import os
import re

import numpy as np

from refimpl._util.optional import optional_import
from refimpl.network import spec as _ref
from refimpl.network.caffemodel import alexnet_params

__all__ = ["TorchNetwork", "golden_fc7", "available", "lrn", "max_pool", "DEVICE_ENV"]

DEVICE_ENV = "REFIMPL_TORCH_DEVICE"

# Blob name -> the layer after which it is final (ReLUs work in place, as in Caffe).
_LAYER_INDEX = {name: i for i, (name, _, _) in enumerate(_ref.ALEXNET_LAYERS)}

# PyTorch's per-operator fp32 precision switches (torch >= 2.9); "ieee" is plain float32.
# Only these new-style flags are touched: PyTorch refuses to read the legacy allow_tf32
# flags once the two styles have been mixed.
_FP32_SWITCHES = [("cudnn", "conv"), ("cuda", "matmul"), ("mkldnn", "conv"),
                  ("mkldnn", "matmul")]


def _torch():
    return optional_import("torch", "refimpl.network.torch_backend")


def available():
    """True if PyTorch can be imported."""
    try:
        _torch()
    except ImportError:
        return False
    return True


def _device(torch, device):
    """'cpu', 'cuda' or 'cuda:N' -> torch.device, with a clear error when CUDA is absent."""
    text = str(device).strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise ValueError(f"torch device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    dev = torch.device(text)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"torch device {text!r} asked for, but this PyTorch ({torch.__version__}, "
                f"CUDA {torch.version.cuda}) sees no CUDA device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"torch device {text!r} asked for, but only "
                               f"{torch.cuda.device_count()} CUDA device(s) are visible")
    return dev


@contextlib.contextmanager
def _ieee_fp32(torch):
    """Plain float32 convolutions and matrix products (no TF32 / bf16 shortcuts) inside."""
    saved = []
    try:
        for backend, op in _FP32_SWITCHES:
            flags = getattr(getattr(torch.backends, backend, None), op, None)
            if flags is None or not hasattr(flags, "fp32_precision"):
                continue
            saved.append((flags, flags.fp32_precision))
            flags.fp32_precision = "ieee"
        if not saved and hasattr(torch.backends, "cudnn"):  # PyTorch before 2.9
            saved.append((torch.backends.cudnn, ("allow_tf32", torch.backends.cudnn.allow_tf32)))
            saved.append((torch.backends.cuda.matmul,
                          ("allow_tf32", torch.backends.cuda.matmul.allow_tf32)))
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        yield
    finally:
        for flags, value in reversed(saved):
            if isinstance(value, tuple):
                setattr(flags, value[0], value[1])
            else:
                flags.fp32_precision = value


# ------------------------------------------------------------------------------ layers

def _lrn(F, x, size, alpha, beta, k):
    """Caffe's cross-channel LRN by F.local_response_norm (same formula and window for the
    odd sizes Caffe allows; see the module's docstring)."""
    if size % 2 != 1:
        raise ValueError(f"LRN size {size} is even; Caffe (and this backend) support odd "
                         "sizes only")
    return F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k)


def _max_pool(F, x, kernel, stride, pad):
    """Caffe's max pooling by F.max_pool2d(ceil_mode=True), its size checked against
    network.pool_output_size (the rules differ only for kernel < stride without pad)."""
    out = F.max_pool2d(x, kernel, stride, pad, ceil_mode=True)
    want = tuple(_ref.pool_output_size(n, kernel, stride, pad) for n in x.shape[2:])
    if tuple(out.shape[2:]) != want:
        raise ValueError(f"max pool kernel {kernel} stride {stride} pad {pad}: PyTorch's "
                         f"ceil-mode size {tuple(out.shape[2:])} differs from Caffe's {want}")
    return out


def _numpy_layer(fn, x, **cfg):
    torch = _torch()
    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return fn(torch.nn.functional, t, **cfg).numpy()


def lrn(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """This backend's LRN on a NumPy (N, C, H, W) blob (CPU), like network.lrn."""
    return _numpy_layer(_lrn, x, size=int(size), alpha=float(alpha), beta=float(beta),
                        k=float(k))


def max_pool(x, kernel=3, stride=2, pad=0):
    """This backend's max pooling on a NumPy (N, C, H, W) blob (CPU), like
    network.max_pool (square kernel, stride and pad)."""
    return _numpy_layer(_max_pool, x, kernel=int(kernel), stride=int(stride), pad=int(pad))


class TorchNetwork:
    """AlexNet on PyTorch, weights loaded once onto `device` ("cpu", "cuda", "cuda:N").

    fc7(blob) and forward(blob, until) take and return NumPy float32 arrays, like the other
    backends (refimpl.features); forward_tensor works on torch tensors already on the
    device. Batches larger than `batch_size` (None: no limit) run in pieces. Thread counts
    are PyTorch's own (torch.set_num_threads); this class leaves them alone.
    """

    name = "torch"

    def __init__(self, weights, device="cpu", batch_size=None):
        torch = _torch()
        self._torch = torch
        self.device = _device(torch, device)
        self.batch_size = batch_size
        self.params = {name: tuple(torch.from_numpy(a).to(self.device) for a in arrays)
                       for name, arrays in alexnet_params(weights).items()}

    # ------------------------------------------------------------------ NumPy interface
    def fc7(self, blob):
        return self.forward(blob, "fc7")

    def forward(self, blob, until=_ref.FEATURE_BLOB, from_blob=None):
        """AlexNet on `blob` (N, 3, 227, 227) float32 -> blob `until` (any of
        network.BLOB_NAMES) as a NumPy float32 array. With `from_blob` (a blob name),
        `blob` is that blob's value and the pass starts with the layer after it (each
        layer can so be checked on its own, from the reference's input)."""
        blob = np.ascontiguousarray(blob, dtype=np.float32)
        if from_blob is None and (blob.ndim != 4 or blob.shape[1:] != _ref.INPUT_SHAPE):
            raise ValueError(f"AlexNet input must be (N, 3, 227, 227), got {blob.shape}")
        self._layer_range(until, from_blob)  # bad names fail before any work
        step = self.batch_size or max(1, len(blob))
        pieces = []
        for i in range(0, max(1, len(blob)), step):
            x = self._torch.from_numpy(blob[i:i + step]).to(self.device)
            pieces.append(self.forward_tensor(x, until, from_blob).cpu().numpy())
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    # ----------------------------------------------------------------- tensor interface
    def forward_tensor(self, x, until=_ref.FEATURE_BLOB, from_blob=None):
        """The forward pass on a float32 tensor on self.device: the (N, 3, 227, 227)
        image, or blob `from_blob`'s value."""
        torch = self._torch
        if self.params is None:
            raise RuntimeError("TorchNetwork is closed")
        first, last = self._layer_range(until, from_blob)
        F = torch.nn.functional
        with torch.inference_mode(), _ieee_fp32(torch):
            for name, kind, cfg in _ref.ALEXNET_LAYERS[first:last + 1]:
                if kind == "conv":
                    w, b = self.params[name]
                    x = F.conv2d(x, w, b, stride=cfg["stride"], padding=cfg["pad"],
                                 groups=cfg["group"])
                elif kind == "relu":
                    x = F.relu(x, inplace=True)
                elif kind == "lrn":
                    x = _lrn(F, x, **cfg)
                elif kind == "pool":
                    x = _max_pool(F, x, **cfg)
                elif kind == "fc":
                    w, b = self.params[name]
                    x = F.linear(x.reshape(x.shape[0], w.shape[1]), w, b)  # C-order flattening
                elif kind == "dropout":
                    pass  # the identity at test time
                else:
                    raise AssertionError(f"unhandled layer kind {kind}")
        return x

    @staticmethod
    def _layer_range(until, from_blob):
        """Indices into ALEXNET_LAYERS of the first and last layer to run."""
        for name in (until, from_blob):
            if name is not None and name not in _ref.BLOB_NAMES:
                raise ValueError(f"unknown AlexNet blob {name!r}; one of "
                                 f"{', '.join(_ref.BLOB_NAMES)}")
        first = 0 if from_blob is None else _LAYER_INDEX[_ref.FINAL_LAYER[from_blob]] + 1
        last = _LAYER_INDEX[_ref.FINAL_LAYER[until]]
        if last < first:
            raise ValueError(f"blob {until!r} comes before {from_blob!r}")
        return first, last

    def synchronize(self):
        """Wait for the device's queued work (CUDA runs asynchronously; for timing)."""
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)

    def close(self):
        self.params = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def golden_fc7(blob, weights):
    """fc7 in `refimpl golden verify --stage fc7`'s signature, on the device named by
    $REFIMPL_TORCH_DEVICE (default "cpu"):
    `refimpl golden verify --stage fc7 --impl refimpl.network.torch_backend:golden_fc7`."""
    with TorchNetwork(weights, device=os.environ.get(DEVICE_ENV, "cpu") or "cpu") as net:
        return net.fc7(blob)
