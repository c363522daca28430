"""`make reproduce`: the paper's whole grid on a corpus, from audio to results/.

    rows, failures = reproduce("emodb", out_dir="results", seed=0)
    rows, failures = reproduce("my_corpus.csv", seeds=range(10))     # clean audio is enough

The corpus is loaded (refimpl.corpus); its noisy and denoised conditions are generated
first for every file that lacks them, whatever the corpus (refimpl.conditions: EmoDB,
FAU-AIBO without its room microphone, a manifest with clean audio only, at any sample
rate); then the grid runs (refimpl.experiments.grid) over the feature sets named
(adapters.FEATURE_FACTORIES) and writes the tables, figures and the comparison with the
paper (refimpl.experiments.report).

`seed` seeds the conditions, the random-weight control network and the reference run of
the classifier; `seeds` reruns the classifier (only) with more seeds.
"""
from pathlib import Path

from refimpl import protocol
from refimpl.conditions import generate_conditions
from refimpl.conditions.generate import conditions_home, lacking
from refimpl.corpus import CONDITIONS, load_corpus
from refimpl.errors import UsageError
from refimpl.experiments.adapters import FEATURE_FACTORIES
from refimpl.experiments.grid import BOAW_SELECT, run_grid

__all__ = ["reproduce", "prepare_corpus", "parse_seeds", "FEATURE_FACTORIES", "NA_GRIDS",
           "CONDITION_SETS"]

# The Na values searched for BoAW: the union of the tables' and the text's (default), or
# the grid stated in the paper's section 3.4 (refimpl.experiments.paper, contradiction 1).
NA_GRIDS = {"union": protocol.BOAW_ASSIGNMENTS, "stated": (10, 20, 50, 100, 200, 500)}
# --conditions: the whole grid, or its clean column only (no conditions generated).
CONDITION_SETS = {"all": CONDITIONS, "clean": ("clean",)}


def parse_seeds(text):
    """'0-9', '0,3,7' or '0-4,9' -> [0, 1, ...] (each seed once, in the order given)."""
    seeds = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            seeds += range(int(lo), int(hi) + 1) if sep else [int(lo)]
    except ValueError:
        raise UsageError(f"seeds {text!r}: expected numbers and ranges like 0-9 or 0,3,7") \
            from None
    if not seeds:
        raise UsageError(f"seeds {text!r}: no seed given")
    return list(dict.fromkeys(seeds))


def prepare_corpus(spec, root=None, seed=0, conditions=CONDITIONS, noise_dir=None,
                   download_noise=False, jobs=None, log=print, **corpus_options):
    """Load a corpus (`emodb`, `aibo` with root, or a manifest CSV) and generate the
    conditions the grid needs (of `conditions`) for every file that lacks them."""
    corpus = load_corpus(spec, root=root, seed=seed, **corpus_options)
    wanted = [c for c in ("noisy", "denoised") if c in conditions]
    home = conditions_home(corpus, seed)
    if any(lacking(corpus, c, home) for c in wanted):
        only = wanted[0] if len(wanted) == 1 else None
        generate_conditions(corpus, seed, only=only, noise_root=noise_dir, log=log,
                            download_noise=download_noise, jobs=jobs)
    return corpus


def reproduce(spec="emodb", root=None, *, out_dir="results", seed=0, seeds=None,
              features=None, jobs=1, conditions="all", na_grid="union", boaw_select="cv",
              noise_dir=None, download_noise=False, noisy_dir=None, client=None,
              **grid_options):
    """The grid on corpus `spec` with the feature sets `features` (names of
    FEATURE_FACTORIES; default all). `conditions`: "all" or "clean" (CONDITION_SETS);
    `na_grid`: "union" or "stated" (NA_GRIDS); `boaw_select`: "cv" or "per-test"
    (grid.BOAW_SELECT); `noisy_dir`: FAU-AIBO's room microphone; `client`: a
    dask.distributed Client whose workers compute the deep spectrum features (the same
    values). Returns (rows, failures) as grid.run_grid."""
    names = list(features or FEATURE_FACTORIES)
    unknown = [n for n in names if n not in FEATURE_FACTORIES]
    if unknown:
        raise UsageError(f"unknown feature set(s) {unknown}; choose from "
                         f"{list(FEATURE_FACTORIES)}")
    for value, allowed, what in ((conditions, CONDITION_SETS, "conditions"),
                                 (na_grid, NA_GRIDS, "na_grid"),
                                 (boaw_select, BOAW_SELECT, "boaw_select")):
        if value not in allowed:
            raise UsageError(f"{what} {value!r}: choose from {', '.join(allowed)}")
    if spec not in ("emodb", "aibo") and not Path(spec).is_file():
        raise UsageError(f"{spec}: no such corpus manifest (or use emodb / aibo)")
    corpus_options = {"noisy_dir": noisy_dir} if spec == "aibo" and noisy_dir else {}
    feature_sets = [FEATURE_FACTORIES[n](seed=seed, client=client) for n in names]
    corpus = prepare_corpus(spec, root, seed, CONDITION_SETS[conditions], noise_dir,
                            download_noise, jobs, **corpus_options)
    options = {"assignments": NA_GRIDS[na_grid], **grid_options}
    meta = {"conditions": ", ".join(CONDITION_SETS[conditions]),
            "BoAW Na grid": f"{na_grid} {list(options['assignments'])}",
            "BoAW settings chosen": {"cv": "by inner CV on the training partition",
                                     "per-test": "on each test condition (the paper's "
                                                 "reporting; optimistic)"}[boaw_select]}
    return run_grid(corpus, feature_sets, out_dir=out_dir, seed=seed, seeds=seeds,
                    jobs=jobs, conditions=CONDITION_SETS[conditions], boaw_select=boaw_select,
                    meta=meta, choices={"na_grid": na_grid}, **options)
