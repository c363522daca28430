"""Golden files: the expected output of every stage on small synthetic cases, and the
harness that checks any implementation against them.

golden/manifest.json lists the cases and records how they were made (library versions,
the BLAS Caffe ran on, the weights) and the tolerances a port must meet. For each case,
golden/cases/NAME/ holds
  signal.npy   int16 samples (the rate is in the manifest; float signal = samples/32768)
  image.png    the 227 x 227 RGB image the 2017 recipe draws, drawn by real matplotlib
               2.0.2 on Python 3.6 (refimpl.image.oracles; pixel rule "2017"), lossless
  fc7.npy      float32 (4096,) fc7 after ReLU, computed by REAL Caffe on the seed-0
               synthetic AlexNet (refimpl weights synth --seed 0)
The blob is fully determined by the image; its SHA-256 is in the manifest, and so is the
SHA-256 of each of the three files (entry["files"]), checked whenever the cases are loaded.
`refimpl golden make` builds the whole folder beside golden/ and swaps it in at the end.

`refimpl golden make` regenerates everything (it needs `make caffe` and `make oracles`);
the fast renderer must draw every image the same or nothing is written. `refimpl golden
verify --stage image|blob|fc7 --impl MODULE:CALLABLE` checks another implementation:
  image: f(signal: float64 1-D, rate: int) -> uint8 227 x 227 x 3 RGB
  blob:  f(image: uint8 227 x 227 x 3)      -> float32 3 x 227 x 227 or 1 x 3 x 227 x 227
  fc7:   f(blob: float32 N x 3 x 227 x 227, weights: path of the seed-0 caffemodel)
         -> float32 N x 4096
"""
import importlib
import json
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refimpl._util import locations
from refimpl._util.atomic import atomic_dir, atomic_open, atomic_path
from refimpl._util.digest import array_digest, file_digest
from refimpl.errors import GoldenError
from refimpl.golden import signals
from refimpl.image import (DEFAULT_OPTIONS, decode_png, save_png, spectrogram_image,
                           spectrogram_image_fast)
from refimpl.image.oracles import MPL_2017, draw_images, oracle_versions
from refimpl.network.blob import image_to_blob
from refimpl.network.caffe_client import CaffeNet
from refimpl.network.weights import synthetic_weights_path

MANIFEST = "manifest.json"
CASE_FILES = ("signal.npy", "image.png", "fc7.npy")   # per case, each hashed in the manifest
WEIGHTS_SEED = 0
TOLERANCES = {
    # Pixels and blobs are exact: the image is integers, the blob a cast of them.
    "image_differing_pixels": 0,
    "blob_max_abs_error": 0.0,
    # fc7 is float arithmetic summed in a different order by each BLAS; errors are
    # measured relative to the largest activation of the case's vector. The value is the
    # float32 rounding bound of two evaluations of AlexNet (a port and Caffe, summing in
    # any order) carried through the layers, largest over the golden cases (2.2e-5 of
    # the max), rounded up: tests/tolerances.py derives it and test_golden checks that it
    # still is that. Measured: 5-8e-7 (NumPy, the C core, either BLAS kernel).
    "fc7_max_error_rel_to_max": 3e-5,
}


array_sha256 = array_digest  # the manifest's hash of an array (values, dtype, shape)


# ----------------------------------------------------------------------------- reading

@dataclass
class GoldenCase:
    name: str
    rate: int
    samples: np.ndarray  # int16
    image: np.ndarray    # uint8 227 x 227 x 3
    blob_sha256: str
    fc7: np.ndarray      # float32 4096

    @property
    def signal(self):
        return signals.pcm16_to_float(self.samples)


def load_manifest(root=None):
    root = Path(root or locations.golden_dir())
    with open(root / MANIFEST) as f:
        return json.load(f)


def check_case_files(root, entry):
    """Each of a case's files against the SHA-256 the manifest gives for it."""
    d = Path(root) / "cases" / entry["name"]
    hashes = entry.get("files")
    if not hashes or set(hashes) != set(CASE_FILES):
        raise GoldenError(f"{Path(root) / MANIFEST}: case {entry['name']} lists no SHA-256 "
                              f"for each of {', '.join(CASE_FILES)} (regenerate: refimpl golden make)")
    for name in CASE_FILES:
        path = d / name
        if not path.is_file():
            raise GoldenError(f"{path}: golden file missing")
        actual = file_digest(path, "sha256")
        if actual != hashes[name]:
            raise GoldenError(f"{path}: sha256 {actual} differs from the manifest's "
                                  f"{hashes[name]} (changed or damaged; regenerate with "
                                  f"`refimpl golden make`)")


def load_cases(root=None):
    root = Path(root or locations.golden_dir())
    manifest = load_manifest(root)
    cases = []
    for entry in manifest["cases"]:
        check_case_files(root, entry)
        d = root / "cases" / entry["name"]
        cases.append(GoldenCase(
            name=entry["name"], rate=entry["rate"],
            samples=np.load(d / "signal.npy"),
            image=decode_png((d / "image.png").read_bytes()),
            blob_sha256=entry["blob_sha256"],
            fc7=np.load(d / "fc7.npy")))
    return cases


# ---------------------------------------------------------------------------- making

def blas_of_caffe():
    """Which BLAS library Caffe's libblas.so.3 resolves to in the prefix."""
    for lib in sorted(locations.caffe_prefix().glob("usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas*.so*")):
        if lib.is_file() and not lib.is_symlink():
            return lib.name
    return "unknown"


def make_golden(root=None, weights=None, log=print):
    """Regenerate golden/ from the case generators, matplotlib 2.0.2 and real Caffe.

    Everything is written into a new folder beside `root` (what else `root` holds, such as
    efficientnet-lite0/, is copied over), which replaces `root` only once it is complete:
    an interrupted run leaves the old golden files as they were."""
    root = Path(root or locations.golden_dir())
    with atomic_dir(root) as new:
        if root.is_dir():
            for item in root.iterdir():
                if item.name not in ("cases", MANIFEST):
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, new / item.name)
        return _make_golden_into(new, weights, log)


def _make_golden_into(root, weights, log):
    import PIL

    root = Path(root or locations.golden_dir())
    weights = Path(weights or synthetic_weights_path(WEIGHTS_SEED))
    cases = {name: signals.make_case(name) for name in signals.CASES}
    drawn = draw_images(MPL_2017, [(signals.pcm16_to_float(samples), rate, DEFAULT_OPTIONS)
                                   for samples, rate in cases.values()])
    painter = oracle_versions(MPL_2017)
    drawn_by = (f"matplotlib {painter['matplotlib']} (Python {painter['python']}, "
                f"numpy {painter['numpy']})")
    for (name, (samples, rate)), drawing in zip(cases.items(), drawn):
        fast = spectrogram_image_fast(signals.pcm16_to_float(samples), rate, name=name)
        differ = int(np.any(fast != drawing.image, axis=-1).sum())
        if differ:
            raise GoldenError(f"{name}: the fast renderer and {drawn_by} differ in {differ} "
                              f"pixels; golden/ is left as it was")
    entries = []
    with CaffeNet(weights=weights) as net:
        caffe_info = net.worker.info
        for (name, (samples, rate)), drawing in zip(cases.items(), drawn):
            image = drawing.image
            blob = image_to_blob(image)
            fc7 = net.forward(blob, outputs=("fc7",))["fc7"][0].astype(np.float32)
            d = root / "cases" / name
            d.mkdir(parents=True, exist_ok=True)
            with atomic_path(d / "signal.npy") as tmp:
                _save_npy(tmp, samples)
            save_png(image, d / "image.png")
            with atomic_path(d / "fc7.npy") as tmp:
                _save_npy(tmp, fc7)
            entries.append({
                "name": name, "rate": rate, "n_samples": int(len(samples)),
                "signal_sha256": array_sha256(samples),
                "image_sha256": array_sha256(image),
                "image_drawn_by": drawn_by,
                "blob_sha256": array_sha256(blob[0]),
                "fc7_max": float(fc7.max()),
                "fc7_nonzero_fraction": float(np.mean(fc7 > 0)),
                "files": {f: file_digest(d / f, "sha256") for f in CASE_FILES},
            })
            log(f"{name}: {len(samples)} samples at {rate} Hz, fc7 max {fc7.max():.4g}, "
                f"{np.mean(fc7 > 0):.0%} non-zero")
    manifest = {
        "format": 2,
        "made_by": "refimpl golden make",
        "image_options": {"nfft": DEFAULT_OPTIONS.nfft, "noverlap": DEFAULT_OPTIONS.noverlap,
                          "cmap": DEFAULT_OPTIONS.cmap, "fmax": DEFAULT_OPTIONS.fmax,
                          "pixels": DEFAULT_OPTIONS.pixels, "dpi": 227},
        "blob": {"channel_order": "BGR", "layout": "CHW", "scale": "0..255",
                 "mean_subtracted": False},
        "weights": {"kind": "synthetic AlexNet (refimpl weights synth)", "seed": WEIGHTS_SEED,
                    "sha256": file_digest(weights)},
        "versions": {
            "python": platform.python_version(), "numpy": np.__version__,
            "matplotlib": painter["matplotlib"], "matplotlib_python": painter["python"],
            "matplotlib_numpy": painter["numpy"], "pillow": PIL.__version__,
            "caffe": caffe_info.get("caffe"), "caffe_numpy": caffe_info.get("numpy"),
            "caffe_python": caffe_info.get("python"), "caffe_blas": blas_of_caffe(),
            "caffe_blas_core": caffe_info.get("blas_core"),
        },
        "tolerances": TOLERANCES,
        "cases": entries,
    }
    with atomic_open(root / MANIFEST) as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def _save_npy(path, a):
    with open(path, "wb") as f:
        np.save(f, a, allow_pickle=False)


# --------------------------------------------------------------------------- verifying

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
