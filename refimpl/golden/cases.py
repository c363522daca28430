"""What golden/ holds and how it is read: the manifest (golden/manifest.json: the cases,
how they were made, the tolerances a port must meet) and each case's files, every one
checked against the SHA-256 the manifest gives for it.

For each case, golden/cases/NAME/ holds
  signal.npy   int16 samples (the rate is in the manifest; float signal = samples/32768)
  image.png    the 227 x 227 RGB image the 2017 recipe draws, drawn by real matplotlib
               2.0.2 on Python 3.6 (refimpl.image.oracles; pixel rule "2017"), lossless
  fc7.npy      float32 (4096,) fc7 after ReLU, computed by REAL Caffe on the seed-0
               synthetic AlexNet (refimpl weights synth --seed 0)
The blob is fully determined by the image; its SHA-256 is in the manifest.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refimpl._util import locations
from refimpl._util.digest import array_digest, file_digest
from refimpl.errors import GoldenError
from refimpl.golden import signals
from refimpl.image import decode_png

__all__ = ["MANIFEST", "CASE_FILES", "WEIGHTS_SEED", "TOLERANCES", "array_sha256",
           "GoldenCase", "load_manifest", "check_case_files", "load_cases"]

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
