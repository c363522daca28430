"""How far the two pixel rules lie apart on a corpus (refimpl.image.options: "2017", what
matplotlib 2.0 to 3.10 draw, vs "matplotlib-3.11"): the share of pictures that differ,
which columns, and how far the features move, for the seed-0 synthetic AlexNet (fc7, C
core) and EfficientNet-Lite0's real ImageNet weights (the 1280 pooled features).

    .venv/bin/python tools/pixel_rules_report.py [WAV_FOLDER]   (default: shared EmoDB)

Prints a Markdown summary (docs/pixels.md's figures come from it). Movement is measured as
the golden files measure fc7: max |a - b| over the vector, divided by the vector's max.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from refimpl._util import locations
from refimpl.audio import read_audio
from refimpl.golden import TOLERANCES
from refimpl.image import PIXELS_2017, PIXELS_MPL311, SpectrogramOptions, spectrogram_image_fast
from refimpl.network.backends import open_network
from refimpl.network.weights import synthetic_weights_path


def relative_moves(network, old, new, batch=32):
    moves = []
    for i in range(0, len(old), batch):
        a = network.features(old[i:i + batch])
        b = network.features(new[i:i + batch])
        moves += [float(np.abs(x - y).max() / max(float(np.abs(x).max()), 1e-30))
                  for x, y in zip(a, b)]
    return np.array(moves)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", default=str(locations.shared_data() / "emodb" / "wav"))
    args = p.parse_args(argv)
    files = sorted(Path(args.folder).glob("*.wav"))
    if not files:
        sys.exit(f"{args.folder}: no .wav files")
    old, new, columns, worst = [], [], [], 0
    for path in files:
        audio = read_audio(path)
        a = spectrogram_image_fast(audio.signal, audio.rate, SpectrogramOptions(pixels=PIXELS_2017))
        b = spectrogram_image_fast(audio.signal, audio.rate,
                                   SpectrogramOptions(pixels=PIXELS_MPL311))
        differ = np.any(a != b, axis=-1)
        if differ.any():
            old.append(a)
            new.append(b)
            columns.append(int(differ.any(axis=0).sum()))
            worst = max(worst, int(np.abs(a.astype(int) - b.astype(int)).max()))
    n = len(files)
    print(f"## The two pixel rules on {n} files of {args.folder}\n")
    print(f"- pictures that differ: {len(old)} of {n} ({100 * len(old) / n:.1f} %); "
          f"screen columns that differ per such picture: {min(columns, default=0)} to "
          f"{max(columns, default=0)}; largest channel difference {worst}")
    if not old:
        return
    old, new = np.stack(old), np.stack(new)
    tolerance = TOLERANCES["fc7_max_error_rel_to_max"]
    alexnet = open_network("c", synthetic_weights_path(0))
    moves = relative_moves(alexnet, old, new)
    print(f"- fc7, seed-0 synthetic AlexNet (C core), over the differing pictures: median "
          f"{100 * np.median(moves):.2f} %, max {100 * moves.max():.2f} % of the vector's "
          f"max ({np.median(moves) / tolerance:.0f}x / {moves.max() / tolerance:.0f}x the "
          f"golden tolerance {tolerance:g})")
    efficientnet = open_network("numpy", None, net="efficientnet-lite0")
    moves = relative_moves(efficientnet, old, new)
    print(f"- EfficientNet-Lite0 (real ImageNet weights), 1280 pooled features: median "
          f"{100 * np.median(moves):.2f} %, max {100 * moves.max():.2f} % of the vector's max")


if __name__ == "__main__":
    main()
