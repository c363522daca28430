"""`refimpl demo`: the main job on the embedded default, for a fresh checkout.

It runs the whole deep spectrum path on the golden synthetic signals (written out as
16-bit WAV files, as a user's corpus would be), with real Caffe and the seed-0 synthetic
AlexNet, writes CSV and ARFF features, and checks every vector against the golden fc7 —
so one command shows both how to use the tool and that it is faithful here.
"""
import sys
from pathlib import Path

import numpy as np

from refimpl import golden


def register(sub):
    p = sub.add_parser("demo", help="extract features of the embedded synthetic signals "
                                    "and check them against golden/")
    p.add_argument("-o", "--out", default="out/demo", help="output folder (out/demo)")
    p.add_argument("--backend", default="caffe", help="caffe (default) or numpy")
    p.set_defaults(func=_cmd_demo)


def write_demo_corpus(out):
    """golden cases -> OUT/wav/NAME.wav and OUT/labels.csv (label = signal family)."""
    import soundfile
    from refimpl.fileio import atomic_open, atomic_path
    wav = Path(out) / "wav"
    cases = golden.load_cases()
    for case in cases:
        with atomic_path(wav / f"{case.name}.wav") as tmp:
            soundfile.write(tmp, case.samples, case.rate, subtype="PCM_16", format="WAV")
    with atomic_open(Path(out) / "labels.csv") as f:
        f.write("name,label\n")
        for case in cases:
            f.write(f"{case.name}.wav,{case.name.split('_')[0]}\n")
    return cases


def _cmd_demo(args):
    from refimpl import features
    out = Path(args.out)
    cases = write_demo_corpus(out)
    files = sorted((out / "wav").glob("*.wav"))
    weights = features.resolve_weights("synthetic:0")
    print(f"extracting {len(files)} files with backend {args.backend} "
          f"(synthetic seed-0 AlexNet: a stand-in, not the paper's network)", file=sys.stderr)
    net = features.open_network(args.backend, weights)
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
    tol = golden.TOLERANCES["fc7_max_error_rel_to_max"]
    print(f"wrote {out}/features.csv and .arff: {len(result.rows)} x {result.dim}")
    print(f"fc7 against golden (real Caffe): worst error {worst:.2e} of the vector max "
          f"(tolerance {tol:g}) -> {'OK' if worst <= tol else 'MISMATCH'}")
    return 0 if worst <= tol and not result.failed else 1
