"""ExtractorConfig: everything that changes deep spectrum features, checked when it is
made, and named in full by its config_id() (the key of the per-file feature cache).
"""
import os
from dataclasses import dataclass, fields
from decimal import Decimal

import numpy as np

from refimpl._util.digest import content_digest
from refimpl.audio import as_seconds
from refimpl.errors import ImageError, UsageError
from refimpl.image import PIXEL_RULES, PIXELS_2017, RENDERERS, SpectrogramOptions
from refimpl.network import (BACKENDS, NETWORKS, arithmetic_key, efficientnet, feature_dim,
                             feature_layer, names_own_arithmetic, open_network)
from refimpl.network.weights import resolve_weights

__all__ = ["ExtractorConfig", "check_image_options", "blas_threads", "FORWARD_PIECE",
           "CACHE_NAME"]

FORWARD_PIECE = 32          # a file's chunks per forward pass (bounds memory on long files)
CACHE_NAME = "deepspectrum"
_ENGINE_VERSION = "3"       # bump when the cached value's layout or meaning changes
                            # (3: entries hold their key, see FeatureCache(keyed=True))


@dataclass(frozen=True)
class ExtractorConfig:
    """Everything that changes deep spectrum features (its config_id is the cache key).
    Refused with a UsageError when made with values that do not fit.

    Parameters
    ----------
    net : str
        "alexnet" or "efficientnet-lite0".
    layer : str, optional
        AlexNet's blob whose activations are the features: fc7 by default, or pool5,
        conv5, fc6, ...
    backend : str
        "c", "numpy", "caffe", "torch" or "openvino" (AlexNet).
    weights : str, optional
        A caffemodel path, "synthetic:SEED", or None for the BVLC weights.
    nfft, cmap, fmax, renderer, pixels
        The spectrogram picture (refimpl.image).
    window, hop : Decimal, float or str, optional
        Seconds (hop defaults to the window); None: one row per file. Times are kept as
        the decimals they were written as (see refimpl.audio).
    whole_windows : bool
        Keep only full windows (default: the toolkit's chunks, short tails kept).
    start, end : Decimal, float or str, optional
        Seconds of each file to use (the toolkit's -start/-end).
    trim_zeros : bool
        Drop exact-zero samples at both ends first.
    subtract_mean : bool
        Subtract the ImageNet mean (NOT what the paper did).
    device : str, optional
        Where the torch backend runs.

    Examples
    --------
    >>> ExtractorConfig(backend="numpy", window=1, hop=0.5).hop
    Decimal('0.5')
    """
    net: str = "alexnet"
    layer: str | None = None
    backend: str = "c"
    weights: str | None = None
    nfft: int = 256
    cmap: str = "viridis"
    fmax: float | None = None
    window: Decimal | None = None
    hop: Decimal | None = None
    whole_windows: bool = False
    start: Decimal | None = None
    end: Decimal | None = None
    trim_zeros: bool = False
    renderer: str = "auto"
    pixels: str = PIXELS_2017
    subtract_mean: bool = False
    device: str | None = None

    def __post_init__(self):
        for name in ("window", "hop", "start", "end"):
            object.__setattr__(self, name, as_seconds(getattr(self, name), name))
        if self.window is not None and self.hop is None:
            object.__setattr__(self, "hop", self.window)   # the hop defaults to the window
        if self.net not in NETWORKS:
            raise UsageError(f"unknown network {self.net!r}; choose from {', '.join(NETWORKS)}")
        object.__setattr__(self, "weights", None if self.weights is None else str(self.weights))
        feature_layer(self.net, self.layer)
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown backend {self.backend!r}; choose from "
                             f"{', '.join(sorted(BACKENDS))}")
        if self.renderer not in RENDERERS:
            raise UsageError(f"unknown renderer {self.renderer!r}; choose from "
                             f"{', '.join(RENDERERS)}")
        if self.pixels not in PIXEL_RULES:
            raise UsageError(f"unknown pixel rule {self.pixels!r}; choose from "
                             f"{', '.join(PIXEL_RULES)}")
        if self.hop is not None and self.window is None:
            raise UsageError("a hop needs a window")
        if self.window == 0 or self.hop == 0:
            raise UsageError("window and hop must be longer than 0 s")
        if self.start is not None and self.end and self.end <= self.start:
            raise UsageError(f"end ({self.end} s) must come after start ({self.start} s)")
        check_image_options(self.nfft, self.cmap, self.fmax)

    @classmethod
    def fields(cls):
        return [f.name for f in fields(cls)]

    @property
    def feature_layer(self):
        return feature_layer(self.net, self.layer)

    @property
    def dim(self):
        return feature_dim(self.net, self.layer)

    @property
    def windowed(self):
        return self.window is not None

    @property
    def image_options(self):
        return SpectrogramOptions(nfft=int(self.nfft), cmap=self.cmap,
                                  fmax=None if self.fmax is None else float(self.fmax),
                                  pixels=self.pixels)

    def weights_path(self):
        """The weights file (AlexNet: resolved like --weights; EfficientNet: fetched)."""
        if self.net == "efficientnet-lite0":
            return efficientnet.fetch_weights()
        return resolve_weights(self.weights)

    def open_network(self):
        weights = self.weights_path() if self.net == "alexnet" else None
        return open_network(self.backend, weights, self.net, self.subtract_mean, self.device,
                            self.layer)

    def config_id(self):
        """One line naming every setting that changes the features, with the weights'
        SHA-256 and the backend's algorithm where it moves the last bits (the C core's
        Winograd convolutions, torch's version and device)."""
        import matplotlib  # slow to import: only where a picture or colour map needs it
        backend = self.backend
        if self.net == "efficientnet-lite0":
            backend = "numpy"   # its own NumPy forward pass; backend and device do not apply
        elif backend == "torch":
            from refimpl.network import torch_backend   # PyTorch: an optional extra
            backend += f" torch={torch_backend._torch().__version__} device={self.device or 'cpu'}"
        else:
            # the C core names its algorithm (one FMA chain per output, whatever the batch
            # and threads), OpenVINO its version and thread count
            backend = arithmetic_key(backend)
        image = self.image_options
        invariant = self.net == "alexnet" and getattr(BACKENDS[self.backend],
                                                      "batch_invariant", False)
        if (self.net == "alexnet" and not invariant
                and not names_own_arithmetic(self.backend)):
            # numpy's, Caffe's and torch's BLAS split sums by thread: the count moves bits
            backend += f" threads={blas_threads()}"
        return (f"deepspectrum engine={_ENGINE_VERSION} net={self.net} layer={self.feature_layer} "
                f"weights-sha256={content_digest(self.weights_path())} backend={backend} "
                f"subtract_mean={self.subtract_mean} nfft={image.nfft} cmap={image.cmap} "
                f"fmax={image.fmax} pixels={image.pixels} renderer={self.renderer} "
                f"matplotlib={matplotlib.__version__} "
                f"mix=sum/2 trim_zeros={self.trim_zeros} start={_key(self.start)} "
                f"end={_key(self.end)} window={_key(self.window)} hop={_key(self.hop)} "
                f"whole_windows={self.whole_windows} "
                f"forward={'any-batch' if invariant else f'per-file/{FORWARD_PIECE}'}")


def blas_threads():
    """The thread count OpenBLAS (numpy's, and the Caffe worker's, which inherits this
    environment) and torch start with: the usual variables, else every core."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def check_image_options(nfft, cmap, fmax, rate=None, name=None):
    """Refuse (UsageError, one line) picture options no spectrogram can have: nfft < 2, a
    colour map matplotlib does not know, fmax not a number in (0, Fs/2]. With `rate` (a
    file's; `name` names it) the top is checked against that file's Fs/2 as well."""
    try:
        whole = not isinstance(nfft, bool) and float(nfft).is_integer() and nfft >= 2
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise UsageError(f"nfft must be a whole number of at least 2, not {nfft!r}")
    if not isinstance(cmap, str) or not _known_cmap(cmap):
        raise UsageError(f"--cmap {cmap!r}: not a matplotlib colour map (e.g. viridis, "
                         f"magma, gray)")
    if fmax is None:
        return
    try:
        top = float(fmax)
    except (TypeError, ValueError):
        raise UsageError(f"--fmax {fmax!r}: not a number of Hz") from None
    if not (np.isfinite(top) and top > 0):
        raise UsageError(f"--fmax {fmax!r}: must be a frequency above 0 Hz (and at most "
                         f"half the sampling rate)")
    if rate is not None and top > rate / 2:
        raise ImageError(f"{name or '<signal>'}: --fmax {top:g} Hz is above half its "
                         f"sampling rate ({rate} Hz / 2)")


def _known_cmap(name):
    import matplotlib  # slow to import: only where a picture or colour map needs it
    return name in matplotlib.colormaps


def _key(seconds):
    """A time in the cache key: the same number always the same text (1, 1.0 and 1.00)."""
    return None if seconds is None else format(seconds.normalize(), "f")
