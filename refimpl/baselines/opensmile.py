"""The paper's openSMILE baselines: utterance functionals (eGeMAPS, ComParE 2013) and the
low-level descriptors that bags of audio words quantise (MFCC 1-12 + log energy).

Everything is computed by openSMILE itself, through the `opensmile` package (which ships
the openSMILE library), with openSMILE's own configs:

- eGeMAPS: the extended Geneva minimalistic set, version v01a (88 functionals), the one
  current in 2017.
- ComParE 2013: openSMILE's IS13_ComParE.conf (6373 functionals), the set of the
  INTERSPEECH 2013 ComParE challenge the paper cites. Not ComParE_2016: same names and
  count but different values in about a third of them.
- LLDs for BoAW: our config refimpl/data/mfcc12_e.conf, openSMILE's MFCC12_E_D_A settings
  without the deltas (25 ms frames, 10 ms hop, pre-emphasis 0.97, Hamming window, 26 mel
  bands, HTK MFCC 1-12 with liftering 22, HTK log energy).

    vec = functionals("a.wav", "egemaps")          # (88,) float32
    names = functional_names("compare2013")        # 6373 names in openSMILE's order
    X = functionals_matrix(files, "compare2013")   # (files, 6373)
    times, feats = lld("a.wav")                    # (frames,) start times in s, (frames, 13)
    write_lld_csv_files(["a.wav", "b.wav"], "llds.csv")   # what openXBOW reads
    Functionals("egemaps").process_files(files)    # DataFrame (file, start, end); also
                                                   # a scikit-learn transformer
                                                   # (refimpl.baselines.estimators)

Results are cached per file content and configuration (refimpl._util.cache.FeatureCache).
Every file is first read by refimpl.audio.read_audio, so a file openSMILE would quietly
turn into numbers (NaN samples, a header only, a file cut short) is refused or warned about
with the same one-line message as everywhere else; features that come out NaN (a file
shorter than openSMILE's frames) are refused. Several channels: openSMILE (as
opensmile-python calls it) reads the first channel only, and a warning says so.
The CSV writers skip the files that fail and return them; each row is named by the file's
path relative to the deepest folder holding all the files (its name, when they share one).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from refimpl._util.atomic import atomic_open
from refimpl._util.cache import FeatureCache
from refimpl._util.digest import file_digest
from refimpl._util.locations import package_data
from refimpl.audio import check_audio
from refimpl._util.lazy import lazy_attributes
from refimpl.baselines.boaw import write_lld_csv
from refimpl.errors import AudioWarning, FeatureError, RefimplError

__all__ = ["FEATURE_SETS", "MFCC_CONFIG", "LLD_NAMES", "FeatureError", "config_path",
           "functionals", "functional_names", "functionals_matrix", "write_functionals_csv",
           "lld", "instance_names", "write_lld_csv_files", "config_id", "Functionals"]

MFCC_CONFIG = package_data("mfcc12_e.conf")
LLD_NAMES = [f"mfcc{i}" for i in range(1, 13)] + ["log_energy"]
FRAME_SIZE_S = 0.025
FRAME_STEP_S = 0.010

FEATURE_SETS = {
    # name: (opensmile FeatureSet member, expected number of functionals)
    "egemaps": ("eGeMAPS", 88),
    "compare2013": ("IS13", 6373),
}


def _opensmile():
    # the opensmile package imports pandas and audinterface (seconds): only the commands
    # that run openSMILE import it
    import opensmile
    return opensmile


def config_path(feature_set):
    """Path of the openSMILE config file the package uses for `feature_set`."""
    opensmile = _opensmile()
    if feature_set not in FEATURE_SETS:
        raise FeatureError(f"unknown feature set {feature_set!r} (choose from "
                           f"{', '.join(FEATURE_SETS)})")
    member = getattr(opensmile.FeatureSet, FEATURE_SETS[feature_set][0])
    return Path(opensmile.__file__).resolve().parent / "core" / "config" / (member.value + ".conf")


def config_id(config):
    """Everything that changes openSMILE's output: its version (the binary is part of the
    configuration) and the config file's bytes."""
    opensmile = _opensmile()
    return f"opensmile=={opensmile.__version__} config-sha256={file_digest(config)}"


_SMILES = {}


def smile(config, level):
    """The opensmile.Smile of `config` at `level` ("func" or "lld"), made once."""
    opensmile = _opensmile()
    key = (str(config), level)
    if key not in _SMILES:
        with warnings.catch_warnings():
            # The package calls eGeMAPSv01a 'deprecated'; v01a is the set of 2017 on purpose.
            warnings.filterwarnings("ignore", message=".*deprecated.*", category=UserWarning)
            _SMILES[key] = opensmile.Smile(feature_set=str(config), feature_level=level)
    return _SMILES[key]


def _check_audio(path):
    """Refuse (AudioError) or warn about what refimpl.audio refuses or warns about; say
    which channel openSMILE reads."""
    channels = check_audio(path).channels
    if channels > 1:
        warnings.warn(f"{path}: {channels} channels; openSMILE reads the first one only",
                      AudioWarning, stacklevel=3)


def run_opensmile(path, config, level, start=None, end=None):
    """opensmile.Smile(...).process_file (start/end in seconds) with a clear error naming
    the file."""
    _check_audio(path)
    try:
        with warnings.catch_warnings():
            # a file shorter than a frame: opensmile-python warns and fills NaN, which is
            # refused below with the file's name
            warnings.filterwarnings("ignore", message="Segment too short")
            df = smile(config, level).process_file(str(path), start=start, end=end)
    except Exception as e:                        # opensmile/audiofile raise many kinds
        raise FeatureError(f"{path}: openSMILE cannot process this file ({e})") from None
    if df.shape[0] == 0:
        raise FeatureError(f"{path}: openSMILE produced no frames (file too short?)")
    if not np.isfinite(df.to_numpy(np.float64)).all():
        raise FeatureError(f"{path}: openSMILE's {level} features are NaN or infinite (a "
                           f"file shorter than its analysis frames?)")
    return df


def _cached(path, name, config, compute, use_cache, check):
    """compute(path) -> dict of arrays, through the per-file cache; check(value) says why
    a cached value cannot be right (it is then recomputed)."""
    path = str(path)
    cache = FeatureCache(name, config_id(config), enabled=use_cache)
    value = cache.get(path, check=check)
    if value is None:
        value = compute(path)
        cache.put(path, value)
    return value


# ------------------------------------------------------------------------ functionals

def _compute_functionals(feature_set):
    def compute(path):
        df = run_opensmile(path, config_path(feature_set), "func")
        vec = df.to_numpy(np.float32)
        if vec.shape != (1, FEATURE_SETS[feature_set][1]):
            raise FeatureError(f"{path}: openSMILE returned {vec.shape[1]} {feature_set} "
                               f"functionals, expected {FEATURE_SETS[feature_set][1]}")
        return {"values": vec[0]}
    return compute


def _functionals_problem(feature_set):
    def problem(value):
        got = value.get("values") if isinstance(value, dict) else None
        if got is None or got.shape != (FEATURE_SETS[feature_set][1],):
            return f"not {FEATURE_SETS[feature_set][1]} {feature_set} functionals"
        return None
    return problem


def functionals(path, feature_set="egemaps", use_cache=True):
    """One file's functionals as float32 (openSMILE's own output precision)."""
    return _cached(path, feature_set, config_path(feature_set),
                   _compute_functionals(feature_set), use_cache,
                   _functionals_problem(feature_set))["values"]


def functional_names(feature_set="egemaps"):
    return list(smile(config_path(feature_set), "func").feature_names)


def functionals_matrix(files, feature_set="egemaps", use_cache=True):
    files = list(files)
    return np.stack([functionals(f, feature_set, use_cache) for f in files]) if files else \
        np.zeros((0, FEATURE_SETS[feature_set][1]), np.float32)


def _each_file(files, compute):
    """[(name, compute(file))] for the files that work, [(file, message)] for the rest."""
    files = [str(f) for f in files]
    done, failed = [], []
    for name, p in zip(instance_names(files), files):
        try:
            done.append((name, compute(p)))
        except RefimplError as e:
            failed.append((p, str(e)))
    return done, failed


def write_functionals_csv(path, files, feature_set="egemaps", use_cache=True):
    """One ';'-separated row per file ('name';v1;...), a header line of openSMILE's names.
    Files that fail are left out; returns (the matrix written, [(file, message)])."""
    done, failed = _each_file(files, lambda p: functionals(p, feature_set, use_cache))
    X = np.stack([v for _, v in done]) if done else \
        np.zeros((0, FEATURE_SETS[feature_set][1]), np.float32)
    names = functional_names(feature_set)
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("name;" + ";".join(names) + "\n")
        for (name, _), row in zip(done, X):
            f.write(f"'{name}';" + ";".join(repr(float(v)) for v in row) + "\n")
    return X, failed


# ------------------------------------------------------------------------ LLDs

def _compute_lld(path):
    df = run_opensmile(path, MFCC_CONFIG, "lld")
    starts = df.index.get_level_values("start").total_seconds().to_numpy(np.float64)
    return {"times": starts, "features": df.to_numpy(np.float32)}


def _lld_problem(value):
    value = value if isinstance(value, dict) else {}
    times, feats = value.get("times"), value.get("features")
    if times is None or feats is None or feats.ndim != 2 or feats.shape[1] != len(LLD_NAMES) \
            or times.shape != (len(feats),):
        return f"not frames x {len(LLD_NAMES)} LLDs with their times"
    return None


def lld(path, use_cache=True):
    """MFCC 1-12 and log energy of one audio file: (frame start times in s, frames x 13)."""
    r = _cached(path, "mfcc12_e", MFCC_CONFIG, _compute_lld, use_cache, _lld_problem)
    return r["times"], r["features"]


def instance_names(files):
    """Row names: each file's path relative to the deepest folder that holds them all, so
    files of one folder are named by their file names and two 'a.wav' in different
    folders stay apart ('x/a.wav', 'y/a.wav')."""
    paths = [os.path.abspath(str(f)) for f in files]
    if not paths:
        return []
    base = os.path.commonpath([os.path.dirname(p) for p in paths])
    return [os.path.relpath(p, base) for p in paths]


def write_lld_csv_files(files, out, times=False, use_cache=True):
    """One CSV for openXBOW: 'name';[time;]13 values per frame, files in the given order.
    Files that fail are left out; returns (frames written, [(file, message)])."""
    done, failed = _each_file(files, lambda p: lld(p, use_cache=use_cache))
    names = [name for name, (_, x) in done for _ in range(len(x))]
    X = np.concatenate([x for _, (_, x) in done]) if done else np.zeros((0, 13), np.float32)
    ts = np.concatenate([t for _, (t, _) in done]) if times and done else None
    write_lld_csv(out, names, X, ts)
    return len(names), failed


# scikit-learn takes seconds to import; the command line does not need it
__getattr__, __dir__ = lazy_attributes(__name__,
                                       {"Functionals": "refimpl.baselines.estimators"})
