"""`refimpl golden verify`: run an implementation of a stage on every golden case and
compare it with the golden files, within the manifest's tolerances. The signatures an
implementation of each stage must have:
  image: f(signal: float64 1-D, rate: int) -> uint8 227 x 227 x 3 RGB
  blob:  f(image: uint8 227 x 227 x 3)      -> float32 3 x 227 x 227 or 1 x 3 x 227 x 227
  fc7:   f(blob: float32 N x 3 x 227 x 227, weights: path of the seed-0 caffemodel)
         -> float32 N x 4096
"""
import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refimpl.errors import GoldenError
from refimpl.golden.cases import array_sha256, load_cases, load_manifest
from refimpl.image import spectrogram_image
from refimpl.network.blob import image_to_blob
from refimpl.network.weights import synthetic_weights_path

__all__ = ["CaseResult", "load_callable", "verify", "reference_image", "reference_blob",
           "DEFAULT_IMPL"]


@dataclass
class CaseResult:
    name: str
    error: float      # differing pixels (image) or max error (blob: absolute, fc7: relative)
    passed: bool
    detail: str = ""


def load_callable(spec):
    """'package.module:function' -> the function."""
    module, sep, attr = spec.partition(":")
    if not sep:
        raise ValueError(f"--impl must look like MODULE:CALLABLE, got {spec!r}")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _returned(value, shape, dtype=None, exact=True):
    """`value` (what an implementation returned) as an array of `shape`, or a one-line
    reason why it is not one (None, a string, the wrong shape)."""
    if value is None or isinstance(value, (str, bytes)):
        return None, f"returned {type(value).__name__}, not an array of shape {shape}"
    try:
        got = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as e:
        return None, f"returned {type(value).__name__}, not an array ({e})"
    fits = got.shape == tuple(shape) or (not exact and got.size == np.prod(shape))
    if got.dtype == object or not fits:
        return None, f"returned shape {got.shape}, expected {tuple(shape)}"
    return got.reshape(shape), None


def verify(stage, impl, root=None, weights=None):
    """Run `impl` on every golden case of `stage`; -> list of CaseResult. An
    implementation whose result is not an array of the stage's shape fails (fc7: a
    GoldenError, the whole batch being one call; image, blob: that case)."""
    if stage not in ("image", "blob", "fc7"):
        raise GoldenError(f"unknown stage {stage!r}; choose image, blob or fc7")
    if not callable(impl):
        raise GoldenError(f"the implementation {impl!r} is not callable")
    manifest = load_manifest(root)
    tol = manifest["tolerances"]
    results = []
    cases = load_cases(root)
    if stage == "fc7":
        weights = Path(weights or synthetic_weights_path(manifest["weights"]["seed"]))
        blobs = np.concatenate([image_to_blob(c.image) for c in cases])
        got, problem = _returned(impl(blobs, weights), (len(cases), 4096), np.float32)
        if problem:
            raise GoldenError(f"fc7 implementation {getattr(impl, '__name__', impl)}: "
                              f"{problem}")
    for i, case in enumerate(cases):
        if stage == "image":
            img, problem = _returned(impl(case.signal, case.rate), case.image.shape)
            if problem:
                results.append(CaseResult(case.name, float("inf"), False, problem))
                continue
            diff = int(np.any(img != case.image, axis=-1).sum())
            results.append(CaseResult(case.name, diff, diff <= tol["image_differing_pixels"],
                                      f"{diff} of {img.shape[0] * img.shape[1]} pixels differ"))
        elif stage == "blob":
            blob, problem = _returned(impl(case.image), (3, 227, 227), np.float32, exact=False)
            if problem:
                results.append(CaseResult(case.name, float("inf"), False, problem))
                continue
            want = image_to_blob(case.image)[0]
            assert array_sha256(want) == case.blob_sha256, "golden blob hash mismatch"
            err = float(np.max(np.abs(blob - want)))
            results.append(CaseResult(case.name, err, err <= tol["blob_max_abs_error"]))
        else:
            ref = case.fc7
            err = float(np.max(np.abs(got[i] - ref)) / max(float(ref.max()), 1e-30))
            results.append(CaseResult(case.name, err, err <= tol["fc7_max_error_rel_to_max"],
                                      f"max |diff| {np.max(np.abs(got[i] - ref)):.3g}, "
                                      f"fc7 max {ref.max():.4g}"))
    return results


# ---------------------------------------------------------------- reference callables

def reference_image(signal, rate):
    return spectrogram_image(signal, rate)


def reference_blob(image):
    return image_to_blob(image)


DEFAULT_IMPL = {"image": "refimpl.golden:reference_image", "blob": "refimpl.golden:reference_blob",
                "fc7": "refimpl.network.reference:golden_fc7"}
