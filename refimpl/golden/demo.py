"""`refimpl demo` (`make run`): the main job on the embedded default, for a fresh checkout.

It runs the whole deep spectrum path on the golden synthetic signals (written out as
16-bit WAV files, as a user's corpus would be), with real Caffe and the seed-0 synthetic
AlexNet, writes CSV and ARFF features, and checks every vector against the golden fc7 —
so one command shows both how to use the tool and that it is faithful here.
"""
from pathlib import Path

import numpy as np
import soundfile

from refimpl import features
from refimpl._util.atomic import atomic_open, atomic_path
from refimpl.golden import TOLERANCES, load_cases
from refimpl.network import open_network
from refimpl.network.weights import resolve_weights

__all__ = ["write_demo_corpus", "run_demo"]


def write_demo_corpus(out):
    """golden cases -> OUT/wav/NAME.wav and OUT/labels.csv (label = signal family)."""
    wav = Path(out) / "wav"
    cases = load_cases()
    for case in cases:
        with atomic_path(wav / f"{case.name}.wav") as tmp:
            soundfile.write(tmp, case.samples, case.rate, subtype="PCM_16", format="WAV")
    with atomic_open(Path(out) / "labels.csv") as f:
        f.write("name,class\n")
        for case in cases:
            f.write(f"{case.name}.wav,{case.name.split('_')[0]}\n")
    return cases


def run_demo(out, backend="caffe"):
    """Extract the demo corpus into OUT/features.csv and .arff; returns (the extraction,
    the worst fc7 error relative to each golden vector's maximum, the tolerance)."""
    out = Path(out)
    cases = write_demo_corpus(out)
    files = sorted((out / "wav").glob("*.wav"))
    net = open_network(backend, resolve_weights("synthetic:0"))
    try:
        result = features.extract(files, net, labels=features.read_labels(out / "labels.csv"))
    finally:
        net.close()
    for suffix in ("csv", "arff"):
        features.write_features(result, out / f"features.{suffix}")
    expected = {f"{c.name}.wav": c.fc7 for c in cases}
    worst = 0.0
    for name, row in zip(result.names, result.rows):
        ref = expected[name]
        worst = max(worst, float(np.max(np.abs(row - ref)) / ref.max()))
    return result, worst, TOLERANCES["fc7_max_error_rel_to_max"]
