"""`make reproduce`: the paper's whole grid on a corpus, from audio to results/.

    rows, failures = reproduce("emodb", out_dir="results", seed=0)

The corpus is loaded (refimpl.corpus); for built-in EmoDB the noisy and denoised
conditions are generated first wherever a file is missing (refimpl.conditions); then the
grid runs (refimpl.experiments.grid) over the feature sets named (adapters.FEATURE_FACTORIES).
"""
from pathlib import Path

from refimpl.conditions import generate_denoised, generate_noisy
from refimpl.corpus import load_corpus
from refimpl.errors import UsageError
from refimpl.experiments.adapters import FEATURE_FACTORIES
from refimpl.experiments.grid import run_grid

__all__ = ["reproduce", "prepare_corpus", "FEATURE_FACTORIES"]


def prepare_corpus(spec, root=None, seed=0):
    """Load a corpus (`emodb`, `aibo` with root, or a manifest CSV); built-in EmoDB's
    generated conditions are made first when any of their files is missing."""
    corpus = load_corpus(spec, root=root, seed=seed)

    def missing(condition):
        return any(p is None or not Path(p).is_file()
                   for p in corpus.audio_paths(condition, check=False))

    if spec == "emodb":
        if missing("noisy"):
            generate_noisy(corpus, seed=seed)
        if missing("denoised"):
            generate_denoised(corpus, seed=seed)
    if spec == "aibo" and corpus.rows[0].get("path_noisy") and missing("denoised"):
        # FAU-AIBO's noisy condition is its room microphone; the enhancer denoises it
        generate_denoised(corpus, seed=seed, noisy_paths=corpus.audio_paths("noisy"))
    return corpus


def reproduce(spec="emodb", root=None, *, out_dir="results", seed=0, features=None, jobs=1):
    """The grid on corpus `spec` with the feature sets `features` (names of
    FEATURE_FACTORIES; default all). Returns (rows, failures)."""
    names = list(features or FEATURE_FACTORIES)
    unknown = [n for n in names if n not in FEATURE_FACTORIES]
    if unknown:
        raise UsageError(f"unknown feature set(s) {unknown}; choose from "
                         f"{list(FEATURE_FACTORIES)}")
    if spec not in ("emodb", "aibo") and not Path(spec).is_file():
        raise UsageError(f"{spec}: no such corpus manifest (or use emodb / aibo)")
    feature_sets = [FEATURE_FACTORIES[n](seed=seed) for n in names]
    corpus = prepare_corpus(spec, root, seed)
    return run_grid(corpus, feature_sets, out_dir=out_dir, seed=seed, jobs=jobs)
