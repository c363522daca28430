"""`refimpl golden make`: regenerate golden/ from the case generators (golden.signals),
matplotlib 2.0.2 (the 2017 image oracle) and real Caffe (`make caffe`, `make oracles`).
The fast renderer must draw every image the same or nothing is written; the new folder
replaces golden/ only once it is complete.
"""
import json
import platform
import shutil
from pathlib import Path

import numpy as np
import PIL

from refimpl._util import locations
from refimpl._util.atomic import atomic_dir, atomic_open, atomic_path
from refimpl._util.digest import file_digest
from refimpl.errors import GoldenError
from refimpl.golden import signals
from refimpl.golden.cases import CASE_FILES, MANIFEST, TOLERANCES, WEIGHTS_SEED, array_sha256
from refimpl.image import DEFAULT_OPTIONS, save_png, spectrogram_image_fast
from refimpl.image.oracles import MPL_2017, draw_images, oracle_versions
from refimpl.network.blob import image_to_blob
from refimpl.network.caffe_client import CaffeNet
from refimpl.network.weights import synthetic_weights_path

__all__ = ["make_golden", "blas_of_caffe"]


def blas_of_caffe():
    """Which BLAS library Caffe's libblas.so.3 resolves to in the prefix."""
    for lib in sorted(locations.caffe_prefix().glob("usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas*.so*")):
        if lib.is_file() and not lib.is_symlink():
            return lib.name
    return "unknown"


def make_golden(root=None, weights=None, log=None):
    """Regenerate golden/ from the case generators, matplotlib 2.0.2 and real Caffe;
    log(line), when given, is called with one line per case made.

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
            if log is not None:
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
