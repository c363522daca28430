"""Model selection and the final model: alpha chosen by the speaker-independent 2-fold
inner cross-validation, the SVM trained on the whole training partition, and its test."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from refimpl.protocol import sgd
from refimpl.protocol.metrics import confusion, uar, uar_from_confusion
from refimpl.protocol.sampling import (check_speaker_independent, child_seed, standardise,
                                       training_data)

__all__ = ["ALPHAS", "cv_scores", "best_of", "select_alpha", "Model", "Result", "fit_final",
           "evaluate", "train_model"]

# Regularisation grid: {1, 2, 5} x 10^k for k = -6..1, i.e. 1e-6, 2e-6, 5e-6, ..., 5e1.
# Built from decimal literals (float("2e-6")), not 2 * 10**-6, so each value is exactly the
# double nearest to the decimal the paper writes.
ALPHAS = tuple(float(f"{m}e{k}") for k in range(-6, 2) for m in (1, 2, 5))


def _fit(X, y, alpha, seed):
    return sgd.fit_svms(X, y, [alpha], seed)[0]


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
        X_fit, y_fit = training_data(X_tr, y[tr], oversampling, seed, 1, k)
        prepared.append((X_fit, y_fit, X_te, y[te]))
    return prepared


def cv_scores(prepared, alphas, classes, seed) -> dict:
    """{alpha: mean UAR of both directions} of the inner CV, from each direction's prepared
    (training matrix, labels, scored matrix, labels). Each direction's SVMs are fitted for
    all alphas in one call (the same models as one fit per alpha: refimpl.protocol.sgd)."""
    per_direction = []
    for k, (X_fit, y_fit, X_te, y_te) in enumerate(prepared):
        svms = sgd.fit_svms(X_fit, y_fit, alphas, child_seed(seed, 2, k))
        per_direction.append([uar(y_te, svm.predict(X_te), classes) for svm in svms])
    return {alpha: float(np.mean([scores[i] for scores in per_direction]))
            for i, alpha in enumerate(alphas)}


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
    cv = cv_scores(prepared, alphas, classes, seed)
    return best_of(cv), cv


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
    X_fit, y_fit = training_data((X - mean) / scale, y, oversampling, seed, 9)
    svm = _fit(X_fit, y_fit, alpha, child_seed(seed, 3))
    return Model(alpha, classes, mean, scale, svm, dict(cv_uars or {}), len(y), len(y_fit))


def evaluate(model: Model, X_test, y_test, extra=None) -> Result:
    """The model's Result on a test set; `extra` is kept with it (BoAW: its Cs and Na)."""
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
