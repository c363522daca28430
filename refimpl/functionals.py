"""Utterance-level functionals of the paper's two conventional baselines, from openSMILE.

- eGeMAPS: the extended Geneva minimalistic set, version v01a (88 functionals), the one
  current in 2017.
- ComParE 2013: openSMILE's IS13_ComParE.conf (6373 functionals), the set of the
  INTERSPEECH 2013 ComParE challenge the paper cites.  Not ComParE_2016: same names and
  count but different values in about a third of them.

Both configs ship inside the `opensmile` package (opensmile.FeatureSet.eGeMAPS and
opensmile.FeatureSet.IS13), so what is computed is openSMILE's own code and config.

    vec = functionals("a.wav", "egemaps")          # (88,) float32
    names = functional_names("compare2013")        # 6373 names in openSMILE's order
    X = functionals_matrix(files, "compare2013")   # (files, 6373)

Cached per file content and configuration in cache_dir()/features/ (refimpl.lld.feature_cache).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .lld import FeatureError, feature_cache, run_opensmile, _smile

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


def _compute(feature_set):
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
    cfg = config_path(feature_set)
    import opensmile
    extra = f"opensmile=={opensmile.__version__}"   # the binary is part of the config
    r = feature_cache(path, cfg, _compute(feature_set), feature_set, extra=extra,
                      use_cache=use_cache)
    return r["values"]


def functional_names(feature_set="egemaps"):
    return list(_smile(config_path(feature_set), "func").feature_names)


def functionals_matrix(files, feature_set="egemaps", use_cache=True):
    files = list(files)
    return np.stack([functionals(f, feature_set, use_cache) for f in files]) if files else \
        np.zeros((0, FEATURE_SETS[feature_set][1]), np.float32)


def _cmd_functionals(args):
    from .cli import UserError
    from .fileio import atomic_open
    try:
        X = functionals_matrix(args.files, args.set, use_cache=not args.no_cache)
        names = functional_names(args.set)
    except FeatureError as e:
        raise UserError(str(e)) from None
    with atomic_open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write("name;" + ";".join(names) + "\n")
        for p, row in zip(args.files, X):
            f.write(f"'{Path(p).name}';" + ";".join(repr(float(v)) for v in row) + "\n")
    print(f"{X.shape[0]} x {X.shape[1]} {args.set} functionals -> {args.output}")
    return 0


def register(sub):
    p = sub.add_parser("functionals", help="eGeMAPS (88) or ComParE 2013 (6373) functionals (openSMILE)")
    p.add_argument("files", nargs="+", help="audio files")
    p.add_argument("-o", "--output", required=True, help="OUT.csv (';'-separated, header line)")
    p.add_argument("--set", choices=sorted(FEATURE_SETS), default="egemaps")
    p.add_argument("--no-cache", action="store_true")
    p.set_defaults(func=_cmd_functionals)
