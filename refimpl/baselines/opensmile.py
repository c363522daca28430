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

Results are cached per file content and configuration (refimpl._util.cache.FeatureCache).
"""
from __future__ import annotations

import os
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np

from refimpl._util.atomic import atomic_open
from refimpl._util.cache import FeatureCache
from refimpl._util.digest import file_digest
from refimpl._util.locations import package_data
from refimpl.baselines.boaw import write_lld_csv
from refimpl.errors import FeatureError
from refimpl.features.api import FileFeatures, sklearn_estimator
from refimpl.features.engine import Signal

__all__ = ["FEATURE_SETS", "MFCC_CONFIG", "LLD_NAMES", "FeatureError", "config_path",
           "functionals", "functional_names", "functionals_matrix", "write_functionals_csv", "lld", "instance_name",
           "write_lld_csv_files", "config_id", "Functionals"]

MFCC_CONFIG = package_data("mfcc12_e.conf")
LLD_NAMES = [f"mfcc{i}" for i in range(1, 13)] + ["log_energy"]
FRAME_SIZE_S = 0.025
FRAME_STEP_S = 0.010

FEATURE_SETS = {
    # name: (opensmile FeatureSet member, expected number of functionals)
    "egemaps": ("eGeMAPS", 88),
    "compare2013": ("IS13", 6373),
}


def config_path(feature_set):
    """Path of the openSMILE config file the package uses for `feature_set`."""
    import opensmile
    if feature_set not in FEATURE_SETS:
        raise FeatureError(f"unknown feature set {feature_set!r} (choose from "
                           f"{', '.join(FEATURE_SETS)})")
    member = getattr(opensmile.FeatureSet, FEATURE_SETS[feature_set][0])
    return Path(opensmile.__file__).resolve().parent / "core" / "config" / (member.value + ".conf")


def config_id(config):
    """Everything that changes openSMILE's output: its version (the binary is part of the
    configuration) and the config file's bytes."""
    import opensmile
    return f"opensmile=={opensmile.__version__} config-sha256={file_digest(config)}"


_SMILE = {}


def _smile(config, level):
    import opensmile
    key = (str(config), level)
    if key not in _SMILE:
        with warnings.catch_warnings():
            # The package calls eGeMAPSv01a 'deprecated'; v01a is the set of 2017 on purpose.
            warnings.filterwarnings("ignore", message=".*deprecated.*", category=UserWarning)
            _SMILE[key] = opensmile.Smile(feature_set=str(config), feature_level=level)
    return _SMILE[key]


def run_opensmile(path, config, level, start=None, end=None):
    """opensmile.Smile(...).process_file (start/end in seconds) with a clear error naming
    the file."""
    try:
        df = _smile(config, level).process_file(str(path), start=start, end=end)
    except Exception as e:                        # opensmile/audiofile raise many kinds
        raise FeatureError(f"{path}: openSMILE cannot process this file ({e})") from None
    if df.shape[0] == 0:
        raise FeatureError(f"{path}: openSMILE produced no frames (file too short?)")
    return df


def _cached(path, name, config, compute, use_cache):
    """compute(path) -> dict of arrays, through the per-file cache."""
    path = str(path)
    if not os.path.isfile(path):
        raise FeatureError(f"{path}: no such file")
    cache = FeatureCache(name, config_id(config), enabled=use_cache)
    value = cache.get(path)
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


def functionals(path, feature_set="egemaps", use_cache=True):
    """One file's functionals as float32 (openSMILE's own output precision)."""
    return _cached(path, feature_set, config_path(feature_set),
                   _compute_functionals(feature_set), use_cache)["values"]


def functional_names(feature_set="egemaps"):
    return list(_smile(config_path(feature_set), "func").feature_names)


def functionals_matrix(files, feature_set="egemaps", use_cache=True):
    files = list(files)
    return np.stack([functionals(f, feature_set, use_cache) for f in files]) if files else \
        np.zeros((0, FEATURE_SETS[feature_set][1]), np.float32)


def write_functionals_csv(path, files, feature_set="egemaps", use_cache=True):
    """One ';'-separated row per file ('name';v1;...), a header line of openSMILE's names;
    returns the matrix written."""
    X = functionals_matrix(files, feature_set, use_cache)
    names = functional_names(feature_set)
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("name;" + ";".join(names) + "\n")
        for p, row in zip(files, X):
            f.write(f"'{Path(p).name}';" + ";".join(repr(float(v)) for v in row) + "\n")
    return X


# ------------------------------------------------------------------------ LLDs

def _compute_lld(path):
    df = run_opensmile(path, MFCC_CONFIG, "lld")
    starts = df.index.get_level_values("start").total_seconds().to_numpy(np.float64)
    return {"times": starts, "features": df.to_numpy(np.float32)}


def lld(path, use_cache=True):
    """MFCC 1-12 and log energy of one audio file: (frame start times in s, frames x 13)."""
    r = _cached(path, "mfcc12_e", MFCC_CONFIG, _compute_lld, use_cache)
    return r["times"], r["features"]


def instance_name(path):
    return os.path.basename(str(path))


def write_lld_csv_files(files, out, times=False, use_cache=True):
    """One CSV for openXBOW: 'file.wav';[time;]13 values per frame, files in the given order."""
    names, feats, ts = [], [], []
    for p in files:
        t, x = lld(p, use_cache=use_cache)
        names += [instance_name(p)] * len(x)
        feats.append(x)
        ts.append(t)
    X = np.concatenate(feats) if feats else np.zeros((0, 13), np.float32)
    write_lld_csv(out, names, X, np.concatenate(ts) if times and ts else None)
    return len(names)



# ------------------------------------------------------------------------ the two faces

class _FunctionalsMethods(FileFeatures):
    """openSMILE functionals of whole files (eGeMAPS v01a or ComParE 2013), with the faces
    of refimpl.DeepSpectrum: process_file / process_files / process_folder /
    process_signal -> pandas DataFrame indexed (file, start, end), openSMILE's feature
    names as columns; and a scikit-learn transformer (fit a no-op, transform(paths or
    (signal, rate) pairs) -> one row per item, get_feature_names_out).

    feature_set   "egemaps" or "compare2013"
    cache         the per-file cache of functionals() (whole files; a start/end or a
                  signal is computed by openSMILE each time)

    openSMILE reads the first channel of a multi-channel file or signal (its default).
    """

    def __init__(self, feature_set="egemaps", cache=True):
        self.feature_set = feature_set
        self.cache = cache

    def _names(self):
        return functional_names(self.feature_set)

    def _rows(self, items, start, end):
        for item in items:
            try:
                yield self._one(item, start, end)
            except FeatureError as e:
                yield (item.name if isinstance(item, Signal) else str(item), str(e))

    def _one(self, item, start, end):
        config = config_path(self.feature_set)
        if isinstance(item, Signal):
            samples = np.asarray(item.samples, np.float32)
            try:
                df = _smile(config, "func").process_signal(
                    samples.T if samples.ndim == 2 else samples, int(item.rate))
            except Exception as e:                # opensmile raises many kinds
                raise FeatureError(f"{item.name}: openSMILE cannot process it ({e})") from None
            label = item.name
        elif start is None and end is None:
            values = functionals(item, self.feature_set, use_cache=self.cache)
            return (str(item), values[None], [0], [_duration(item)])
        else:
            df = run_opensmile(item, config, "func", start=start, end=end)
            label = str(item)
        index = df.index
        return (label, df.to_numpy(np.float32),
                index.get_level_values("start").total_seconds().tolist(),
                index.get_level_values("end").total_seconds().tolist())


def _duration(path):
    """A file's duration in seconds, exactly (frames / rate): opensmile-python's end."""
    import soundfile
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError, OSError) as e:
        raise FeatureError(f"{path}: cannot read audio ({e})") from None
    return Decimal(info.frames) / Decimal(info.samplerate)


def __getattr__(name):
    # scikit-learn takes seconds to import; the command line does not need it.
    if name == "Functionals":
        cls = sklearn_estimator(_FunctionalsMethods, "Functionals", __name__)
        globals()["Functionals"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
