"""The bag-of-audio-words search: codebook size Cs and number of assignments Na chosen,
with alpha, by the same inner cross-validation, for several label settings at once; and
the one memory-budgeted walk over (Cs, Na) that this search and the grid's per-test
choice (refimpl.experiments.grid) both take."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from refimpl.protocol.sampling import (check_speaker_independent, child_seed, standardise,
                                       training_data)
from refimpl.protocol.selection import ALPHAS, Model, cv_scores, fit_final

__all__ = ["BOAW_SIZES", "BOAW_ASSIGNMENTS", "BOAW_BAGS_BUDGET", "BoawFn", "BoawModel",
           "boaw_grid", "na_groups", "final_codebook_seed", "select_boaw_multi",
           "select_boaw"]

# BoAW search ranges (the paper's tables show both): codebook size Cs, assignments Na.
BOAW_SIZES = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
BOAW_ASSIGNMENTS = (1, 2, 5, 10, 20, 50, 100, 200, 500)

# boaw_fn(train_llds, test_llds, size, assignments, seed) -> (train_bags, test_bags):
# a random codebook of `size` words learnt on train_llds (a list of per-file (frames, d)
# LLD matrices), every file of both lists quantised with it into a histogram of
# `assignments` nearest words per frame; bags are (n_files, size) matrices.
# A boaw_fn may also have a `many(train_llds, test_llds, size, assignments, seed)` method
# returning {na: (train_bags, test_bags)} for a list of assignments, equal to one call per
# na but sharing the codebook and the nearest-word search (the Na search's main cost).
BoawFn = Callable[[Sequence[np.ndarray], Sequence[np.ndarray], int, int, int],
                  tuple[np.ndarray, np.ndarray]]

# Raw bags held at once while the Na values of one codebook size are scored together
# (FAU-AIBO's ~10k training files x Cs = 5000 take ~400 MB per Na; EmoDB's all fit).
BOAW_BAGS_BUDGET = 512 * 2**20


@dataclass
class BoawModel:
    model: Model
    size: int
    assignments: int
    train_llds: list
    boaw_fn: BoawFn
    codebook_seed: int
    cv_uars: dict   # {(size, assignments, alpha): mean inner UAR}
    test_bags: np.ndarray | None = None   # bags of select_boaw's `test_llds`, if given
    skipped: list = field(default_factory=list)   # [(Cs, Na, why)] the quantiser refused

    def bags(self, test_llds):
        """Test LLDs quantised with the codebook learnt on the whole training partition."""
        _, test = self.boaw_fn(self.train_llds, list(test_llds), self.size,
                               self.assignments, self.codebook_seed)
        return test


def boaw_grid(sizes=BOAW_SIZES, assignments=BOAW_ASSIGNMENTS):
    """(Cs, Na) pairs searched; Na > Cs is skipped (a frame cannot take more words than exist)."""
    return [(cs, na) for cs in sizes for na in assignments if na <= cs]


def na_groups(pairs, bag_bytes: int, together: bool = True) -> Iterator[tuple[int, list]]:
    """(Cs, [Na, ...]) over the (Cs, Na) `pairs`, in their order: the Na values of each
    codebook size in groups whose bags fit BOAW_BAGS_BUDGET at once, where one Na's bags
    take `bag_bytes` bytes per codebook word; one Na at a time unless `together` (a boaw_fn
    with `many`, which makes the bags of several Na in one call)."""
    for cs in dict.fromkeys(c for c, _ in pairs):
        nas = [na for c, na in pairs if c == cs]
        step = max(1, BOAW_BAGS_BUDGET // (bag_bytes * cs)) if together else 1
        for i in range(0, len(nas), step):
            yield cs, nas[i:i + step]


def final_codebook_seed(seed: int, size: int) -> int:
    """The seed of the codebook of `size` words learnt on the whole training partition."""
    return child_seed(seed, 5, size)


def _score_boaw_pair(cv, prepared, inner, folds, cs, na, alphas, seed):
    """Inner-CV UAR of every setting and alpha on one (Cs, Na) pair's fold bags."""
    for name, (y, oversampling, classes) in prepared.items():
        # the (oversampled) training bags of both folds, made once for every alpha
        fold_data = [(*training_data(folds[k][0], y[tr], oversampling, seed, 1, k),
                      folds[k][1], y[te]) for k, (tr, te) in enumerate(inner)]
        for alpha, score in cv_scores(fold_data, alphas, classes, seed).items():
            cv[name][(cs, na, alpha)] = score


def select_boaw_multi(train_llds: Sequence[np.ndarray], fold, boaw_fn: BoawFn,
                      settings: Mapping[object, tuple], *, sizes=BOAW_SIZES,
                      assignments=BOAW_ASSIGNMENTS, alphas=ALPHAS, seed=0, speakers=None,
                      test_llds: Sequence[np.ndarray] | None = None) -> dict:
    """Search Cs x Na x alpha by the inner 2-fold CV for several label settings at once.

    `settings` maps a name to (y, oversampling[, classes]): e.g. the tasks x {Un., Ov.} of
    one training condition, which share LLDs, folds and therefore every codebook. Each
    (Cs, Na) pair's bags are built once, scored for every setting and alpha, and dropped;
    a boaw_fn with `many` builds the bags of several Na of one Cs together (one codebook
    and one nearest-word search per fold), as many at a time as BOAW_BAGS_BUDGET allows
    (na_groups; FAU-AIBO's ~10k training files x Cs = 5000 fit one at a time). Returns
    {name: BoawModel}.

    In the inner CV the codebook is learnt on the inner training fold's LLDs and the other
    fold quantised with it; the final codebook is learnt on the whole training partition,
    and `test_llds`, if given, are quantised with it in the same boaw_fn call
    (BoawModel.test_bags). The codebook's seed depends on the run's seed, Cs and the fold,
    not on Na, so one random codebook per size serves every number of assignments (as
    openXBOW with a fixed seed), and a boaw_fn may cache codebooks by (size, seed).
    Ties: larger alpha first (as select_alpha), then the smaller Cs, then the smaller Na
    (the cheaper representation).
    """
    fold = np.asarray(fold)
    train_llds = list(train_llds)
    if speakers is not None:
        check_speaker_independent(fold, speakers)
    prepared = {}
    for name, setting in settings.items():
        y = np.asarray(setting[0])
        classes = sorted(set(y.tolist())) if len(setting) < 3 or setting[2] is None \
            else list(setting[2])
        prepared[name] = (y, bool(setting[1]), classes)
    inner = [(np.flatnonzero(fold == a), np.flatnonzero(fold == b)) for a, b in ((1, 2), (2, 1))]
    cv = {name: {} for name in settings}
    skipped = []
    many = getattr(boaw_fn, "many", None)
    fold_bag_bytes = 2 * len(train_llds) * 4    # both folds' float32 bags, per word and Na
    for cs, group in na_groups(boaw_grid(sizes, assignments), fold_bag_bytes, bool(many)):
        # Each fold quantised with the codebook of the other (training) fold; one
        # codebook per (Cs, fold) serves every Na of the group.
        try:
            made = []
            for k, (tr, te) in enumerate(inner):
                tr_llds, te_llds = [train_llds[i] for i in tr], [train_llds[i] for i in te]
                if many:
                    made.append(many(tr_llds, te_llds, cs, group, child_seed(seed, 4, cs, k)))
                else:
                    made.append({group[0]: boaw_fn(tr_llds, te_llds, cs, group[0],
                                                   child_seed(seed, 4, cs, k))})
        except ValueError as e:
            # A size the quantiser cannot build (openXBOW: a codebook larger than the
            # training frames of a small inner fold) is left out of the search, not fatal.
            skipped += [(cs, na, str(e)) for na in group]
            continue
        for na in group:
            # standardised with each training fold's statistics; shared by all
            # settings and alphas
            folds = [standardise(*made[k].pop(na)) for k in range(len(inner))]
            _score_boaw_pair(cv, prepared, inner, folds, cs, na, alphas, seed)
            del folds
    if not any(cv.values()):
        raise ValueError("no (Cs, Na) pair could be built: " + "; ".join(
            f"Cs={cs} Na={na}: {why}" for cs, na, why in skipped[:3]))
    test_llds = [] if test_llds is None else list(test_llds)
    final_bags = {}
    models = {}
    for name, (y, oversampling, classes) in prepared.items():
        scores = cv[name]
        cs, na, alpha = max(scores, key=lambda k: (scores[k], k[2], -k[0], -k[1]))
        codebook_seed = final_codebook_seed(seed, cs)
        if (cs, na) not in final_bags:
            final_bags[(cs, na)] = boaw_fn(train_llds, test_llds, cs, na, codebook_seed)
        B_train, B_test = final_bags[(cs, na)]
        model = fit_final(B_train, y, alpha, classes=classes, oversampling=oversampling,
                          seed=seed, cv_uars={a: scores[(cs, na, a)] for a in alphas})
        models[name] = BoawModel(model, cs, na, train_llds, boaw_fn, codebook_seed, scores,
                                 B_test if test_llds else None, list(skipped))
    return models


def select_boaw(train_llds: Sequence[np.ndarray], y, fold, boaw_fn: BoawFn, *, classes=None,
                sizes=BOAW_SIZES, assignments=BOAW_ASSIGNMENTS, alphas=ALPHAS,
                oversampling=False, seed=0, speakers=None,
                test_llds: Sequence[np.ndarray] | None = None) -> "BoawModel":
    """Search Cs x Na x alpha by the inner 2-fold CV; return a BoawModel trained on all.

    One label setting of select_boaw_multi (see there for the details).
    """
    return select_boaw_multi(train_llds, fold, boaw_fn, {0: (y, oversampling, classes)},
                             sizes=sizes, assignments=assignments, alphas=alphas, seed=seed,
                             speakers=speakers, test_llds=test_llds)[0]
