"""The classification protocol of the paper (section 3.4), function by function.

A linear SVM trained by stochastic gradient descent on standardised features; its
regularisation strength chosen by speaker-independent 2-fold cross-validation inside the
training partition; unweighted average recall (UAR) as the measure; optional random
oversampling of the minority classes. For bags-of-audio-words the codebook size and the
number of assignments are searched by the same inner cross-validation.

Choices the paper leaves open, made here once and named in the code:

* SGD: scikit-learn's `SGDClassifier(loss="hinge", penalty="l2")` with its default
  learning-rate schedule ("optimal"), shuffling before every epoch, and a fixed 5 epochs
  without a convergence test (`max_iter=5, tol=None`). That is exactly what the
  scikit-learn of the paper's time (0.18, 2017: `n_iter=5` by default, no `tol`) did.
  The newer defaults (`max_iter=1000, tol=1e-3`) change the numbers and are ~50x
  slower on 4096-dimensional deep spectrum features with small alphas, where the
  "optimal" step size is huge and the loss never settles within tolerance. Each sample
  updates the weights on its own ("per-sample updates"); several classes are handled
  one-vs-all, which is what SGDClassifier does. refimpl.protocol.sgd fits these models,
  for all alphas of the inner CV at once, with SGDClassifier's coefficients bit for bit.
* Standardisation: mean and standard deviation fitted on the (non-oversampled) training
  data, then applied to training and test data; a constant feature gets scale 1 (as in
  scikit-learn's StandardScaler), so it becomes 0 instead of NaN.
* Oversampling: every class with fewer than `floor(0.75 * majority)` instances is brought
  to exactly `floor(0.75 * majority)` by adding instances drawn at random *with
  replacement* from that class (its originals all stay). Classes already at or above
  that size are untouched. Oversampling happens only on data that is trained on (inner
  training fold, whole training partition), never on data that is scored.
* Inner CV: train on fold 1 and score on fold 2, and the other way round; the criterion
  is the mean of the two UARs. Ties (exactly equal means) go to the *larger* alpha, the
  more strongly regularised, simpler model.
* UAR: the mean of the per-class recalls over the classes that occur in `y_true`
  (a class without test instances has no recall; balanced_accuracy_score does the same).
* Every random step takes its seed from `seed` through numpy's SeedSequence, so the same
  seed gives the same result bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

from refimpl.protocol import sgd
from refimpl.protocol.sgd import SGD_EPOCHS, SGD_SETTINGS, make_svm  # noqa: F401 (API)

# Regularisation grid: {1, 2, 5} x 10^k for k = -6..1, i.e. 1e-6, 2e-6, 5e-6, ..., 5e1.
# Built from decimal literals (float("2e-6")), not 2 * 10**-6, so each value is exactly the
# double nearest to the decimal the paper writes.
ALPHAS = tuple(float(f"{m}e{k}") for k in range(-6, 2) for m in (1, 2, 5))

# BoAW search ranges (the paper's tables show both): codebook size Cs, assignments Na.
BOAW_SIZES = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
BOAW_ASSIGNMENTS = (1, 2, 5, 10, 20, 50, 100, 200, 500)

OVERSAMPLE_RATIO = 0.75

SIGNIFICANCE_LEVEL = 0.001


# --------------------------------------------------------------------------- measures

def confusion(y_true, y_pred, classes) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class, both in the order of `classes`."""
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}

    def positions(labels):
        # each distinct label looked up once (the inner CV scores ~10^5 predictions a unit)
        values, inverse = np.unique(np.asarray(labels), return_inverse=True)
        for v in values.tolist():
            if v not in index:
                raise ValueError(f"label {v!r} is not one of {classes}")
        return np.array([index[v] for v in values.tolist()], dtype=np.int64)[inverse]

    t, p = positions(y_true).ravel(), positions(y_pred).ravel()
    if len(t) != len(p):
        raise ValueError(f"{len(t)} true labels but {len(p)} predictions")
    k = len(classes)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def uar_from_confusion(matrix) -> float:
    """Mean recall over the classes (rows) that have at least one instance."""
    matrix = np.asarray(matrix, dtype=np.float64)
    support = matrix.sum(axis=1)
    present = support > 0
    if not present.any():
        raise ValueError("no instances to score")
    return float(np.mean(np.diag(matrix)[present] / support[present]))


def uar(y_true, y_pred, classes=None) -> float:
    """Unweighted average recall: each class's recall counts the same, whatever its size."""
    if classes is None:
        classes = sorted(set(np.asarray(y_true).tolist()) | set(np.asarray(y_pred).tolist()))
    return uar_from_confusion(confusion(y_true, y_pred, classes))


# --------------------------------------------------------------------------- statistics

def z_test(p1: float, p2: float, n1: int, n2: int | None = None) -> tuple[float, float]:
    """Two-sided two-proportion z-test with pooled variance: returns (z, p-value).

    The paper's text (as quoted in the project's issue) names only a "2-sided z-test"; the
    paper itself could not be consulted for more detail. This is the usual z-test for two
    recognition rates measured on test sets of n1 and n2 instances (here both = the number
    of test instances of the corpus): the rates are treated as proportions, z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p the pooled rate
    (p1 n1 + p2 n2) / (n1 + n2). UARs are fed in as the proportions. It is the same test as
    a chi-squared test on the 2x2 table of successes/failures without continuity
    correction (z^2 = chi^2), which the tests use as the oracle.
    """
    n2 = n1 if n2 is None else n2
    if n1 <= 0 or n2 <= 0:
        raise ValueError("sample sizes must be positive")
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0.0:
        # Both rates 0 or both 1: no evidence of a difference.
        return 0.0, 1.0
    z = (p1 - p2) / math.sqrt(variance)
    return z, float(2.0 * stats.norm.sf(abs(z)))


def significantly_better(p1: float, p2: float, n: int, level: float = SIGNIFICANCE_LEVEL) -> bool:
    """True when rate p1 beats p2 on n test instances at the two-sided level (p < level)."""
    z, p = z_test(p1, p2, n)
    return p1 > p2 and p < level


# --------------------------------------------------------------------------- data steps

def standardise(X_train, *others):
    """Standardise with the training data's mean and standard deviation.

    Returns the transformed training matrix followed by every other matrix transformed
    with the same statistics (float64).
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    mean = X_train.mean(axis=0)
    scale = X_train.std(axis=0)
    scale[scale == 0.0] = 1.0
    out = [(X_train - mean) / scale]
    out += [(np.asarray(X, dtype=np.float64) - mean) / scale for X in others]
    return out[0] if not others else tuple(out)


def oversample_indices(y, ratio: float = OVERSAMPLE_RATIO, rng=None) -> np.ndarray:
    """Row indices of the oversampled training set: all originals plus random repeats.

    Each class smaller than floor(ratio * majority size) gets floor(ratio * majority) - n
    extra rows drawn with replacement from its own rows. The originals keep their order
    and come first; the repeats follow, class by class in sorted label order.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(rng)
    labels, counts = np.unique(y, return_counts=True)
    target = math.floor(ratio * counts.max())
    extra = []
    for label, count in zip(labels, counts):
        if count < target:
            members = np.flatnonzero(y == label)
            extra.append(rng.choice(members, size=target - count, replace=True))
    return np.concatenate([np.arange(len(y))] + extra)


def oversample(X, y, ratio: float = OVERSAMPLE_RATIO, rng=None):
    """(X, y) with every minority class upsampled at random (see oversample_indices)."""
    idx = oversample_indices(y, ratio, rng)
    return np.asarray(X)[idx], np.asarray(y)[idx]


def check_speaker_independent(fold, speakers) -> None:
    """Raise ValueError if a speaker has rows in more than one inner fold."""
    fold = np.asarray(fold)
    speakers = np.asarray(speakers)
    seen: dict = {}
    for f, s in zip(fold.tolist(), speakers.tolist()):
        if seen.setdefault(s, f) != f:
            raise ValueError(f"speaker {s!r} is in inner folds {seen[s]} and {f}; "
                             "the cross-validation must be speaker-independent")


def speaker_folds(speakers, n_folds: int = 2) -> np.ndarray:
    """Deterministic speaker-independent folds 1..n_folds of about equal size.

    For corpora that do not ship a fold split: speakers sorted by number of rows
    (largest first, ties by name) and each put into the currently smallest fold.
    """
    speakers = np.asarray(speakers)
    names, counts = np.unique(speakers, return_counts=True)
    order = sorted(range(len(names)), key=lambda i: (-counts[i], str(names[i])))
    sizes = [0] * n_folds
    assign = {}
    for i in order:
        f = min(range(n_folds), key=lambda k: (sizes[k], k))
        assign[names[i]] = f + 1
        sizes[f] += counts[i]
    return np.array([assign[s] for s in speakers], dtype=np.int64)


def _seed(seed: int, *path: int) -> int:
    """A child seed for one random step, derived from the run's seed and where it is used."""
    return int(np.random.SeedSequence([int(seed), *map(int, path)]).generate_state(1)[0])


def final_codebook_seed(seed: int, size: int) -> int:
    """The seed of the codebook of `size` words learnt on the whole training partition."""
    return _seed(seed, 5, size)


# --------------------------------------------------------------------------- SVM

def _fit(X, y, alpha, seed):
    return sgd.fit_svms(X, y, [alpha], seed)[0]


def _train_set(X, y, oversampling, seed, *path):
    if oversampling:
        return oversample(X, y, OVERSAMPLE_RATIO, _seed(seed, 1, *path))
    return X, y


def _inner_folds(X, y, fold, oversampling, seed):
    """Both directions of the inner CV, prepared once for every alpha: [(training matrix
    (standardised with its own statistics, then oversampled if asked), its labels, the
    scored fold's matrix, its labels)]. Nothing here depends on alpha, so preparing it once
    gives every alpha's fit exactly the arrays a separate preparation would."""
    X = np.asarray(X)
    y = np.asarray(y)
    fold = np.asarray(fold)
    prepared = []
    for k, (train_fold, score_fold) in enumerate(((1, 2), (2, 1))):
        tr, te = fold == train_fold, fold == score_fold
        if not tr.any() or not te.any():
            raise ValueError(f"inner fold {train_fold if not tr.any() else score_fold} is empty")
        X_tr, X_te = standardise(X[tr], X[te])
        X_fit, y_fit = _train_set(X_tr, y[tr], oversampling, seed, 1, k)
        prepared.append((X_fit, y_fit, X_te, y[te]))
    return prepared


def _cv_scores(prepared, alphas, classes, seed) -> dict:
    """{alpha: mean UAR of both directions}. Each direction's SVMs are fitted for all alphas
    in one call (the same models as one fit per alpha: refimpl.protocol.sgd)."""
    per_direction = []
    for k, (X_fit, y_fit, X_te, y_te) in enumerate(prepared):
        svms = sgd.fit_svms(X_fit, y_fit, alphas, _seed(seed, 2, k))
        per_direction.append([uar(y_te, svm.predict(X_te), classes) for svm in svms])
    return {alpha: float(np.mean([scores[i] for scores in per_direction]))
            for i, alpha in enumerate(alphas)}


def cross_validate(X, y, fold, alpha, *, classes=None, oversampling=False, seed=0) -> float:
    """Mean UAR of the 2-fold inner CV for one alpha (train on one fold, score the other)."""
    classes = sorted(set(np.asarray(y).tolist())) if classes is None else list(classes)
    return _cv_scores(_inner_folds(X, y, fold, oversampling, seed), [alpha], classes,
                      seed)[float(alpha)]


def best_of(scores: Mapping) -> object:
    """Key with the highest score; exact ties go to the larger key (stronger regularisation)."""
    return max(scores, key=lambda k: (scores[k], k))


def select_alpha(X, y, fold, *, classes=None, alphas: Sequence[float] = ALPHAS,
                 oversampling: bool = False, seed: int = 0, speakers=None):
    """Choose alpha by speaker-independent 2-fold CV inside the training partition.

    `fold` holds 1 or 2 for every training row. When `speakers` is given the folds are
    checked to be speaker-independent. Returns (best alpha, {alpha: mean inner UAR}).
    """
    if speakers is not None:
        check_speaker_independent(fold, speakers)
    classes = sorted(set(np.asarray(y).tolist())) if classes is None else list(classes)
    prepared = _inner_folds(X, y, fold, oversampling, seed)
    cv = _cv_scores(prepared, alphas, classes, seed)
    return best_of(cv), cv


# --------------------------------------------------------------------------- final model

@dataclass
class Model:
    """A trained protocol model: training statistics for standardising, SVM, chosen alpha."""
    alpha: float
    classes: list
    mean: np.ndarray
    scale: np.ndarray
    svm: object
    cv_uars: dict = field(default_factory=dict)
    n_train: int = 0
    n_train_oversampled: int = 0

    def predict(self, X):
        return self.svm.predict((np.asarray(X, dtype=np.float64) - self.mean) / self.scale)


@dataclass
class Result:
    """One test of a model: UAR, confusion (rows true, cols predicted, in `classes` order)."""
    uar: float
    alpha: float
    confusion: np.ndarray
    classes: list
    cv_uars: dict
    y_pred: np.ndarray
    n_train: int
    n_test: int
    extra: dict = field(default_factory=dict)   # e.g. {"cs": 500, "na": 20} for BoAW


def fit_final(X, y, alpha, *, classes=None, oversampling=False, seed=0, cv_uars=None) -> Model:
    """Train on the whole training partition with the chosen alpha."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    classes = sorted(set(y.tolist())) if classes is None else list(classes)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0.0] = 1.0
    X_fit, y_fit = _train_set((X - mean) / scale, y, oversampling, seed, 9)
    svm = _fit(X_fit, y_fit, alpha, _seed(seed, 3))
    return Model(alpha, classes, mean, scale, svm, dict(cv_uars or {}), len(y), len(y_fit))


def evaluate(model: Model, X_test, y_test, extra=None) -> Result:
    y_test = np.asarray(y_test)
    y_pred = model.predict(X_test)
    matrix = confusion(y_test, y_pred, model.classes)
    return Result(uar_from_confusion(matrix), model.alpha, matrix, list(model.classes),
                  dict(model.cv_uars), np.asarray(y_pred), model.n_train, len(y_test),
                  dict(extra or {}))


def train_model(X_train, y_train, fold, *, classes=None, alphas=ALPHAS, oversampling=False,
                seed=0, speakers=None) -> Model:
    """Inner-CV alpha selection, then the final model on the whole training partition."""
    classes = sorted(set(np.asarray(y_train).tolist())) if classes is None else list(classes)
    alpha, cv = select_alpha(X_train, y_train, fold, classes=classes, alphas=alphas,
                             oversampling=oversampling, seed=seed, speakers=speakers)
    return fit_final(X_train, y_train, alpha, classes=classes, oversampling=oversampling,
                     seed=seed, cv_uars=cv)


def train_and_test(X_train, y_train, fold, X_test, y_test, *, classes=None, alphas=ALPHAS,
                   oversampling=False, seed=0, speakers=None) -> Result:
    """The whole protocol for one train/test pair."""
    model = train_model(X_train, y_train, fold, classes=classes, alphas=alphas,
                        oversampling=oversampling, seed=seed, speakers=speakers)
    return evaluate(model, X_test, y_test)


# --------------------------------------------------------------------------- BoAW

# boaw_fn(train_llds, test_llds, size, assignments, seed) -> (train_bags, test_bags):
# a random codebook of `size` words learnt on train_llds (a list of per-file (frames, d)
# LLD matrices), every file of both lists quantised with it into a histogram of
# `assignments` nearest words per frame; bags are (n_files, size) matrices.
# A boaw_fn may also have a `many(train_llds, test_llds, size, assignments, seed)` method
# returning {na: (train_bags, test_bags)} for a list of assignments, equal to one call per
# na but sharing the codebook and the nearest-word search (the Na search's main cost).
BoawFn = Callable[[Sequence[np.ndarray], Sequence[np.ndarray], int, int, int],
                  tuple[np.ndarray, np.ndarray]]

# Raw fold bags held at once while the Na values of one codebook size are scored together
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


def _score_boaw_pair(cv, prepared, inner, folds, cs, na, alphas, seed):
    """Inner-CV UAR of every setting and alpha on one (Cs, Na) pair's fold bags."""
    for name, (y, oversampling, classes) in prepared.items():
        # the (oversampled) training bags of both folds, made once for every alpha
        fold_data = [(*_train_set(folds[k][0], y[tr], oversampling, seed, 1, k), folds[k][1],
                      y[te]) for k, (tr, te) in enumerate(inner)]
        for alpha, score in _cv_scores(fold_data, alphas, classes, seed).items():
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
    (FAU-AIBO's ~10k training files x Cs = 5000 fit one at a time). Returns
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
    grid = boaw_grid(sizes, assignments)
    per_na = 2 * len(train_llds) * 4            # bytes of both folds' bags per word and Na
    for cs in dict.fromkeys(c for c, _ in grid):
        nas = [na for c, na in grid if c == cs]
        step = max(1, BOAW_BAGS_BUDGET // (per_na * cs)) if many else 1
        for group in (nas[i:i + step] for i in range(0, len(nas), step)):
            # Each fold quantised with the codebook of the other (training) fold; one
            # codebook per (Cs, fold) serves every Na of the group.
            try:
                made = []
                for k, (tr, te) in enumerate(inner):
                    tr_llds, te_llds = [train_llds[i] for i in tr], [train_llds[i] for i in te]
                    if many:
                        made.append(many(tr_llds, te_llds, cs, group, _seed(seed, 4, cs, k)))
                    else:
                        made.append({group[0]: boaw_fn(tr_llds, te_llds, cs, group[0],
                                                       _seed(seed, 4, cs, k))})
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


def evaluate_boaw(boaw: BoawModel, test_llds, y_test) -> Result:
    return evaluate(boaw.model, boaw.bags(test_llds), y_test,
                    extra={"cs": boaw.size, "na": boaw.assignments})
