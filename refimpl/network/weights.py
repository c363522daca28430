"""AlexNet weights: fetch the official BVLC model, or make a synthetic stand-in.

The deep spectrum features use the ImageNet-trained BVLC AlexNet (`bvlc_alexnet.caffemodel`,
244 MB, Caffe model zoo). `fetch_alexnet()` downloads it from its official address and
checks its SHA1, so a changed or corrupted file is never used.

Where the download is impossible (no internet, CI), `synth_alexnet(seed, path)` writes a
synthetic AlexNet in Caffe's own file format with the real layer shapes. It is
bit-identical for a given seed on every machine: it uses only numpy's PCG64 stream (an
integer generator) and IEEE float32 operations that are exactly rounded (*, -, sqrt), no
exp/log based sampler whose result would depend on the C library. Its scale keeps
activations in a realistic range for the project's input (BGR pixel values 0..255, no
mean subtraction), and fc7 after ReLU is mostly non-zero, so it exercises every layer the
way the trained net does: a good oracle for comparing implementations, not a feature
extractor (its features carry no ImageNet knowledge).

Command line: `refimpl weights fetch [-o PATH]`, `refimpl weights synth --seed N -o PATH`,
`refimpl weights verify PATH [--sha1 HEX]`.
"""
import json
import warnings
from pathlib import Path

import numpy as np

from refimpl._util import locations
from refimpl._util.digest import file_digest
from refimpl._util.fetch import download
from refimpl._util.files import check_regular
from refimpl.errors import CacheWarning, CaffeModelError, ChecksumError, WeightsError
from refimpl.network import caffemodel

__all__ = ["ALEXNET_URL", "ALEXNET_SHA1", "ALEXNET_SIZE", "ChecksumError", "fetch_alexnet",
           "verify_sha1", "sha1_of", "synth_alexnet_params", "synth_alexnet",
           "synthetic_weights_path", "alexnet_weights_path", "resolve_weights"]

_MANIFEST = json.loads((locations.weights_dir() / "weights.json").read_text())["alexnet"]
ALEXNET_URL = _MANIFEST["caffemodel"]["url"]
ALEXNET_SHA1 = _MANIFEST["caffemodel"]["sha1"]
ALEXNET_SIZE = _MANIFEST["caffemodel"]["size"]
ALEXNET_FILE = _MANIFEST["caffemodel"]["file"]


def sha1_of(path):
    return file_digest(path, "sha1")


def verify_sha1(path, expected=ALEXNET_SHA1):
    """Raise ChecksumError naming the file and both hashes unless SHA1(path) == expected."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    actual = sha1_of(path)
    if actual != expected.lower():
        raise ChecksumError(f"{path}: SHA1 is {actual}, expected {expected.lower()}")
    return actual


def alexnet_weights_path():
    """Where fetch_alexnet() puts the official model by default."""
    return locations.cache_dir() / "weights" / ALEXNET_FILE


def fetch_alexnet(dest=None, url=None, sha1=ALEXNET_SHA1, progress=True, timeout=60):
    """Download the official BVLC AlexNet caffemodel to `dest` and check its SHA1.

    The file appears only after the checksum matched; on a mismatch nothing is kept and
    ChecksumError gives both hashes. An existing `dest` with the right checksum is kept.
    Returns the path."""
    dest = Path(dest) if dest else alexnet_weights_path()
    return download(url or ALEXNET_URL, dest, sha1=sha1, progress=progress, timeout=timeout,
                    desc="bvlc_alexnet")


# --------------------------------------------------------------------------- synthetic

# Biases: uniform on [low, high) per layer. The input is not mean-subtracted (pixels
# 0..255), so with zero-mean He-uniform weights the pre-activations of every layer are
# symmetric around zero with a std of ~60-120 and ReLU keeps about half of them. Positive
# biases of about half that std in fc6 and fc7 push most units into the linear part of
# ReLU (~70 % of fc7 non-zero), as in the trained net whose fc7 is mostly non-zero. The
# conv biases are small but non-zero, so that a bias bug cannot hide.
# Bump when the recipe below changes, so stale cached files are not reused.
SYNTH_VERSION = "v1"
_BIAS_RANGE = {"conv1": (0.0, 1.0), "conv2": (0.0, 1.0), "conv3": (0.0, 1.0),
               "conv4": (0.0, 1.0), "conv5": (0.0, 1.0), "fc6": (25.0, 75.0),
               "fc7": (25.0, 75.0), "fc8": (-1.0, 1.0)}


def _uniform(rng, shape, low, high):
    """float32 uniform on [low, high) by exactly rounded operations only.

    Generator.random(dtype=float32) is (next_uint32 >> 8) * 2**-24: exact. Each further
    step is one correctly rounded IEEE float32 operation, identical on every machine (no
    exp/log/sin whose last bits depend on the C library).
    """
    u = rng.random(int(np.prod(shape)), dtype=np.float32)
    u *= np.float32(high) - np.float32(low)
    u += np.float32(low)
    return u.reshape(shape)


def synth_alexnet_params(seed=0):
    """Synthetic AlexNet parameters: layer name -> (weights, bias), float32.

    Weights are He-uniform, U[-sqrt(6/fan_in), sqrt(6/fan_in)), which keeps the second
    moment of the activations about constant through conv/fc + ReLU. Drawn in layer
    order from one PCG64 stream: conv1 weights, conv1 bias, conv2 weights, ...
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    params = {}
    for name, (wshape, bshape) in caffemodel.ALEXNET_PARAM_SHAPES.items():
        fan_in = int(np.prod(wshape[1:]))
        bound = np.sqrt(np.float32(6) / np.float32(fan_in))  # sqrt is exactly rounded
        weights = _uniform(rng, wshape, -bound, bound)
        bias = _uniform(rng, bshape, *_BIAS_RANGE[name])
        params[name] = (weights, bias)
    return params


def synth_alexnet(seed, path, v1=False):
    """Write the synthetic AlexNet for `seed` as a .caffemodel at `path` (atomically)."""
    params = synth_alexnet_params(seed)
    return caffemodel.write_caffemodel(
        path, {k: list(v) for k, v in params.items()}, caffemodel.ALEXNET_LAYER_TYPES,
        v1=v1, name="AlexNet-synthetic-seed%d" % seed)


def synthetic_weights_path(seed=0):
    """The cached synthetic AlexNet for `seed`, generated (atomically) if missing; a
    cached file that is not a whole caffemodel is removed and made again, with a warning."""
    path = locations.cache_dir() / "weights" / \
        f"alexnet_synthetic_{SYNTH_VERSION}_seed{seed}.caffemodel"
    if path.is_file():
        try:
            caffemodel.check_complete(path)
        except CaffeModelError as e:
            warnings.warn(f"{path}: damaged cache entry: {e}; removed, recomputing",
                          CacheWarning, stacklevel=2)
            path.unlink(missing_ok=True)
    if not path.is_file():
        synth_alexnet(seed, path)
    return path


def resolve_weights(spec):
    """A --weights value -> caffemodel path. 'synthetic:SEED' makes (or reuses) the seeded
    synthetic AlexNet; None means the real BVLC weights fetched by `make weights`."""
    if spec is None:
        path = alexnet_weights_path()
        if not path.exists():
            raise WeightsError(f"no AlexNet weights at {path}: run `make weights` (`refimpl "
                               f"weights fetch`) to download the BVLC model, or pass --weights "
                               f"synthetic:0 (a random stand-in, not the paper's network)")
        return path
    if str(spec).startswith("synthetic:"):
        seed = str(spec).split(":", 1)[1]
        if not seed.isdigit():
            raise WeightsError(f"--weights {spec}: the seed must be a whole number")
        return synthetic_weights_path(int(seed))
    path = Path(spec)
    try:
        check_regular(path)      # a FIFO or device is named, never read
    except FileNotFoundError:
        raise WeightsError(f"{path}: weights file not found") from None
    except OSError as e:
        raise WeightsError(f"{path}: cannot read the weights ({e.strerror})") from None
    return path
