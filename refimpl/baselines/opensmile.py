"""Low-level descriptors for the bag-of-audio-words baseline: MFCC 1-12 + log energy.

The paper computed them with openSMILE; so do we, through the `opensmile` package (which
ships the openSMILE library) and our config refimpl/data/mfcc12_e.conf: openSMILE's
MFCC12_E_D_A settings without the deltas (25 ms frames, 10 ms hop, pre-emphasis 0.97,
Hamming window, 26 mel bands, HTK MFCC 1-12 with liftering 22, HTK log energy).

    times, feats = lld("a.wav")           # (frames,) start times in s, (frames, 13) float32
    write_lld_csv_files(["a.wav", "b.wav"], "llds.csv")   # what openXBOW reads

Results are cached per file content and config in cache_dir()/features/ (see feature_cache).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from . import paths
from .fileio import atomic_path

MFCC_CONFIG = Path(__file__).resolve().parent / "data" / "mfcc12_e.conf"
LLD_NAMES = [f"mfcc{i}" for i in range(1, 13)] + ["log_energy"]
FRAME_SIZE_S = 0.025
FRAME_STEP_S = 0.010


class FeatureError(ValueError):
    """openSMILE could not process a file (the message names it)."""


def _file_digest(path, _memo={}):
    """Content hash of a file, memoised on (path, size, mtime) within the process."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _memo[key] = h.hexdigest()
    return _memo[key]


def _config_digest(config_path, extra=""):
    h = hashlib.sha256(Path(config_path).read_bytes())
    h.update(extra.encode())
    return h.hexdigest()[:16]


def feature_cache(path, config_path, compute, tag, extra="", use_cache=True):
    """compute(path) -> dict of arrays, cached as .npz under
    cache_dir()/features/<tag>-<config hash>/<content hash>.npz (atomic writes)."""
    path = str(path)
    if not os.path.isfile(path):
        raise FeatureError(f"{path}: no such file")
    if not use_cache:
        return compute(path)
    folder = paths.cache_dir() / "features" / f"{tag}-{_config_digest(config_path, extra)}"
    target = folder / (_file_digest(path) + ".npz")
    if target.is_file():
        try:
            with np.load(target, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            pass                                  # unreadable cache entry: recompute
    result = compute(path)
    with atomic_path(target) as part:
        with open(part, "wb") as f:
            np.savez(f, **result)
    return result


_SMILE = {}


def _smile(config_path, level):
    import opensmile
    key = (str(config_path), level)
    if key not in _SMILE:
        import warnings
        with warnings.catch_warnings():
            # The package calls eGeMAPSv01a 'deprecated'; v01a is the set of 2017 on purpose.
            warnings.filterwarnings("ignore", message=".*deprecated.*", category=UserWarning)
            _SMILE[key] = opensmile.Smile(feature_set=str(config_path), feature_level=level)
    return _SMILE[key]


def run_opensmile(path, config_path, level):
    """opensmile.Smile(...).process_file with a clear error naming the file."""
    try:
        df = _smile(config_path, level).process_file(str(path))
    except Exception as e:                        # opensmile/audiofile raise many kinds
        raise FeatureError(f"{path}: openSMILE cannot process this file ({e})") from None
    if df.shape[0] == 0:
        raise FeatureError(f"{path}: openSMILE produced no frames (file too short?)")
    return df


def _compute_lld(path):
    df = run_opensmile(path, MFCC_CONFIG, "lld")
    starts = df.index.get_level_values("start").total_seconds().to_numpy(np.float64)
    return {"times": starts, "features": df.to_numpy(np.float32)}


def lld(path, use_cache=True):
    """MFCC 1-12 and log energy of one audio file: (frame start times in s, frames x 13)."""
    import opensmile
    r = feature_cache(path, MFCC_CONFIG, _compute_lld, "mfcc12_e",
                      extra=f"opensmile=={opensmile.__version__}", use_cache=use_cache)
    return r["times"], r["features"]


def instance_name(path):
    return os.path.basename(str(path))


def write_lld_csv_files(files, out, times=False, use_cache=True):
    """One CSV for openXBOW: 'file.wav';[time;]13 values per frame, files in the given order."""
    from .boaw import write_lld_csv
    names, feats, ts = [], [], []
    for p in files:
        t, x = lld(p, use_cache=use_cache)
        names += [instance_name(p)] * len(x)
        feats.append(x)
        ts.append(t)
    X = np.concatenate(feats) if feats else np.zeros((0, 13), np.float32)
    write_lld_csv(out, names, X, np.concatenate(ts) if times and ts else None)
    return len(names)


def _cmd_lld(args):
    from .cli import UserError
    try:
        n = write_lld_csv_files(args.files, args.output, times=args.times,
                                use_cache=not args.no_cache)
    except FeatureError as e:
        raise UserError(str(e)) from None
    print(f"{n} frames from {len(args.files)} files -> {args.output}")
    return 0


def register(sub):
    p = sub.add_parser("lld", help="MFCC 1-12 + log energy (openSMILE) as openXBOW input CSV")
    p.add_argument("files", nargs="+", help="audio files")
    p.add_argument("-o", "--output", required=True, help="OUT.csv")
    p.add_argument("--times", action="store_true", help="write the frame start time after the name")
    p.add_argument("--no-cache", action="store_true", help="recompute instead of using the cache")
    p.set_defaults(func=_cmd_lld)
