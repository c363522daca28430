"""Real matplotlib of other versions, each in its own environment: the oracles of the
image stage and the painters of golden/.

    MPL_2017    matplotlib 2.0.2 with numpy 1.13.3 on Python 3.6, official wheels: what
                the DeepSpectrum toolkit drew with in 2017 (pixel rule "2017"), plus the
                toolkit's PNG decoding (imread, scikit-image 0.13's img_as_float)
    MPL_3_11    matplotlib 3.11.2 on the project's Python (pixel rule "matplotlib-3.11")

`make oracles` (tools/install_mpl_oracles.sh) installs both under locations.oracles_dir()
(.oracles/ in a checkout); REFIMPL_MPL2017_PYTHON names another Python that imports a
matplotlib 2.0.x instead. Each call runs refimpl/image/mpl_worker.py there on a batch of
signals, drawn as the toolkit drew them, and reads the PNGs back:

    images = draw_images(MPL_2017, [(signal, rate, SpectrogramOptions()), ...])
"""
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refimpl._util import locations
from refimpl._util.optional import missing
from refimpl.errors import ImageError
from refimpl.image.options import PIXELS_2017, PIXELS_MPL311
from refimpl.image.reference import decode_png

__all__ = ["MPL_2017", "MPL_3_11", "ORACLE_NAMES", "Oracle", "OracleDrawing", "find_oracle",
           "draw_images", "draw_with", "oracle_versions"]

MPL_2017 = "matplotlib-2.0.2"
MPL_3_11 = "matplotlib-3.11.2"
ORACLE_NAMES = (MPL_2017, MPL_3_11)
PIXELS_OF = {MPL_2017: PIXELS_2017, MPL_3_11: PIXELS_MPL311}
WORKER_SCRIPT = Path(__file__).resolve().parent / "mpl_worker.py"
OWN_2017_PYTHON = "REFIMPL_MPL2017_PYTHON"


@dataclass(frozen=True)
class Oracle:
    """How to start one oracle's worker: its interpreter and what goes on its path."""
    name: str
    python: Path
    path: Path | None = None   # a folder put first on PYTHONPATH (MPL_3_11)

    @property
    def pixels(self):
        return PIXELS_OF[self.name]


@dataclass
class OracleDrawing:
    """One picture drawn by an oracle: the RGB image (alpha dropped), the PNG file as
    saved, and, from MPL_2017, the float32 array the 2017 toolkit decoded from it."""
    image: np.ndarray
    png: bytes
    toolkit_array: np.ndarray | None


def find_oracle(name):
    """The Oracle called `name`, or MissingDependency saying how to install it."""
    if name not in ORACLE_NAMES:
        raise ValueError(f"unknown oracle {name!r}; choose from {', '.join(ORACLE_NAMES)}")
    root = locations.oracles_dir()
    if name == MPL_2017:
        own = os.environ.get(OWN_2017_PYTHON)
        python = Path(own).expanduser() if own else root / MPL_2017 / "bin" / "python"
        ready = python.is_file() and (own or (root / MPL_2017 / ".complete").is_file())
        oracle = Oracle(name, python)
    else:
        ready = (root / MPL_3_11 / ".complete").is_file()
        oracle = Oracle(name, Path(sys.executable), root / MPL_3_11)
    if not ready:
        raise missing(name, "the image oracle", f"run `make oracles` (matplotlib 2.0.2 needs a "
                      f"Python 3.6, e.g. `pyenv install 3.6.15`; or set {OWN_2017_PYTHON})",
                      f"looked under {root}")
    return oracle


def _environment(oracle):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k not in ("MPLBACKEND", "MPLCONFIGDIR")}
    env["MPLCONFIGDIR"] = tempfile.gettempdir()   # no user matplotlibrc, no font cache clash
    if oracle.path is not None:
        env["PYTHONPATH"] = str(oracle.path)
    return env


def draw_images(name, cases, timeout_per_image=5.0):
    """Draw each (signal, rate, options) of `cases` with the oracle `name`: a list of
    OracleDrawing, in order. options.pixels is not used: the oracle draws its own rule."""
    return draw_with(find_oracle(name), cases, timeout_per_image)


def draw_with(oracle, cases, timeout_per_image=5.0):
    """draw_images with any Oracle (e.g. another matplotlib release on a path of its own:
    tools/matplotlib_versions.py)."""
    name = oracle.name
    cases = list(cases)
    with tempfile.TemporaryDirectory(prefix="refimpl-oracle-") as tmp:
        request = Path(tmp) / "request.npz"
        jobs = [{"rate": rate, "nfft": int(o.nfft), "cmap": o.cmap,
                 "fmax": None if o.fmax is None else float(o.fmax)} for _, rate, o in cases]
        arrays = {f"signal_{i}": np.asarray(s, dtype=np.float64)
                  for i, (s, _, _) in enumerate(cases)}
        np.savez(request, jobs=json.dumps(jobs), **arrays)
        out = Path(tmp) / "out"
        out.mkdir()
        try:
            done = subprocess.run(
                [str(oracle.python), str(WORKER_SCRIPT), str(request), str(out)],
                env=_environment(oracle), stdin=subprocess.DEVNULL, capture_output=True,
                timeout=60 + timeout_per_image * len(cases))
        except subprocess.TimeoutExpired:
            raise ImageError(f"{name}: the oracle did not finish {len(cases)} pictures in "
                             f"time") from None
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
            raise ImageError(f"{name}: the oracle failed (exit {done.returncode}): {tail[0]}")
        return [_read_drawing(out, i) for i in range(len(cases))]


def oracle_versions(name):
    """What the oracle runs: {"python", "numpy", "matplotlib"[, "imread", "scikit-image"]}."""
    oracle = find_oracle(name)
    code = ("import json, sys, numpy, matplotlib; print(json.dumps({'python': "
            "sys.version.split()[0], 'numpy': numpy.__version__, 'matplotlib': "
            "matplotlib.__version__}))")
    done = subprocess.run([str(oracle.python), "-c", code], env=_environment(oracle),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    if done.returncode != 0:
        raise ImageError(f"{name}: the oracle's Python does not start (exit {done.returncode})")
    return json.loads(done.stdout)


def _read_drawing(out, i):
    png = (out / f"{i}.png").read_bytes()
    toolkit = out / f"{i}.toolkit.npy"
    return OracleDrawing(decode_png(png), png, np.load(toolkit) if toolkit.is_file() else None)
