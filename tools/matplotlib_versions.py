"""Which pixel rule each matplotlib release draws: every release in VERSIONS is installed
(official wheels, pip --target into .cache/matplotlib-versions/) and draws the recipe for
every 11th EmoDB file through refimpl/image/mpl_worker.py, and each picture is compared
with the fast renderer's two rules ("2017" and "matplotlib-3.11").

    .venv/bin/python tools/matplotlib_versions.py [--every 11]

Releases of 2017-2020 run on the Python 3.6 of the 2017 oracle (make oracles), newer ones
on the project's Python, each with the dependencies it needs pinned beside it. Downloads
from PyPI; a measurement for the documentation (docs/pixels.md), not a test.
"""
import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from refimpl._util import locations
from refimpl.audio import read_audio
from refimpl.image import PIXEL_RULES, SpectrogramOptions, spectrogram_image_fast
from refimpl.image import oracles

PY36_BASE = ["cycler==0.10.0", "pyparsing==2.2.0", "python-dateutil==2.6.1", "six==1.10.0"]
VERSIONS = [  # (python: "3.6" or "venv", matplotlib, what else it needs beside it)
    ("3.6", "2.0.0", ["numpy==1.13.3", "pytz==2017.2"] + PY36_BASE),
    ("3.6", "2.0.2", ["numpy==1.13.3", "pytz==2017.2"] + PY36_BASE),
    ("3.6", "2.1.0", ["numpy==1.13.3", "pytz==2017.2"] + PY36_BASE),
    ("3.6", "2.2.5", ["numpy==1.13.3", "kiwisolver==1.1.0"] + PY36_BASE),
    ("3.6", "3.0.3", ["numpy==1.13.3", "kiwisolver==1.1.0"] + PY36_BASE),
    ("3.6", "3.1.3", ["numpy==1.16.6", "kiwisolver==1.1.0"] + PY36_BASE),
    ("3.6", "3.3.4", ["numpy==1.19.5", "kiwisolver==1.3.1", "pillow==8.3.2"] + PY36_BASE),
    # wheels built against numpy 1.x: the venv's numpy 2 cannot load them
    ("venv", "3.6.3", ["numpy==1.26.4"]),
    ("venv", "3.7.5", ["numpy==1.26.4"]),
    ("venv", "3.8.4", ["numpy==1.26.4"]),
    ("venv", "3.9.4", []),
    ("venv", "3.10.0", []),
    ("venv", "3.10.9", []),
    ("venv", "3.11.0", []),
    ("venv", "3.11.2", []),
]


def install(python, version, extras, root):
    target = root / f"matplotlib-{version}"
    if not (target / ".complete").is_file():
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--no-deps", "--only-binary", ":all:", "--target", str(target),
                        f"matplotlib=={version}", *extras], check=True)
        (target / ".complete").touch()
    return target


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--every", type=int, default=11, help="every Nth EmoDB file (11: 49)")
    args = p.parse_args(argv)
    files = sorted((locations.shared_data() / "emodb" / "wav").glob("*.wav"))[::args.every]
    audio = [read_audio(f) for f in files]
    cases = [(a.signal, a.rate, SpectrogramOptions()) for a in audio]
    expected = {rule: [spectrogram_image_fast(a.signal, a.rate, SpectrogramOptions(pixels=rule))
                       for a in audio] for rule in PIXEL_RULES}
    py36 = oracles.find_oracle(oracles.MPL_2017).python
    root = locations.cache_dir() / "matplotlib-versions"
    print(f"| matplotlib | Python | pictures equal to the '2017' rule | to the "
          f"'matplotlib-3.11' rule |\n|---|---|---|---|")
    for which, version, extras in VERSIONS:
        python = py36 if which == "3.6" else Path(sys.executable)
        target = install(python, version, extras, root)
        oracle = oracles.Oracle(f"matplotlib-{version}", python, target)
        drawn = oracles.draw_with(oracle, cases)
        equal = {rule: sum(np.array_equal(d.image, e) for d, e in zip(drawn, expected[rule]))
                 for rule in PIXEL_RULES}
        print(f"| {version} | {'3.6' if which == '3.6' else sys.version.split()[0]} | "
              f"{equal[PIXEL_RULES[0]]} of {len(files)} | {equal[PIXEL_RULES[1]]} of "
              f"{len(files)} |", flush=True)


if __name__ == "__main__":
    main()
