"""The protocol's linear SVM: scikit-learn's SGDClassifier, fitted for many alphas at once.

`fit_svms(X, y, alphas, seed)` returns, per alpha, the model that
`SGDClassifier(alpha=alpha, random_state=seed, **SGD_SETTINGS).fit(X, y)` gives: the same
coef_, intercept_ and predictions, bit for bit. Two paths with that one signature:

* `fit_svms_reference`: one scikit-learn fit per alpha (the definition).
* the compiled path (csrc/_sgd.pyx, _sgd_kernels.h): scikit-learn's own update rule, run for
  eight alphas in lockstep over the same sample order. scikit-learn sums each dot product
  as a single chain of additions, so its fit runs at the adder's latency; the lanes give
  eight independent chains per pass over a sample, each in scikit-learn's order. The inner
  CV fits every (X, y) with all 24 alphas, which is where the protocol spends its time.

What scikit-learn does that the compiled path copies outside the kernel: classes are
np.unique(y); two classes give one binary problem (classes_[1] positive), more give one
per class (one-vs-all); the shuffle seed of each binary problem is drawn from
numpy.random.RandomState exactly as SGDClassifier.fit draws it (shuffle_seeds); predict is
classes_[decision > 0] or classes_[argmax], the decision being X @ coef_.T + intercept_.
tests/protocol/test_sgd.py holds both paths equal on generated problems (2 to 7 classes,
oversampled rows, constant columns, the whole alpha grid, the weight-rescale path of large
alphas).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from refimpl._util.native import import_kernel

SGD_EPOCHS = 5
SGD_SETTINGS = dict(loss="hinge", penalty="l2", learning_rate="optimal", max_iter=SGD_EPOCHS,
                    tol=None, shuffle=True, fit_intercept=True, average=False)

# The settings the compiled kernel implements (the epoch count is its argument).
_KERNEL_SETTINGS = dict(loss="hinge", penalty="l2", learning_rate="optimal", tol=None,
                        shuffle=True, fit_intercept=True, average=False)

_MAX_INT = np.iinfo(np.int32).max   # scikit-learn's MAX_INT for seeds

# "sklearn" forces the reference path everywhere (for checking a result against it).
ENGINE_VARIABLE = "REFIMPL_SGD"
ENGINES = ("auto", "kernel", "sklearn")


def make_svm(alpha: float, seed: int):
    # here, not at the top: scikit-learn is a heavy import that the compiled path never needs
    from sklearn.linear_model import SGDClassifier
    return SGDClassifier(alpha=alpha, random_state=seed, **SGD_SETTINGS)


@dataclass
class LinearSVM:
    """A fitted one-vs-all linear SVM, predicting as SGDClassifier does."""
    classes_: np.ndarray
    coef_: np.ndarray        # (1, d) for two classes, (n_classes, d) otherwise
    intercept_: np.ndarray
    alpha: float

    @classmethod
    def from_sklearn(cls, svm) -> "LinearSVM":
        return cls(svm.classes_, svm.coef_, svm.intercept_, float(svm.alpha))

    def decision_function(self, X) -> np.ndarray:
        scores = np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_.take(indices, axis=0)


def shuffle_seeds(n_classes: int, random_state: int) -> list[int]:
    """The shuffle seed SGDClassifier(random_state=random_state).fit passes to its SGD loop
    for each binary problem (one for two classes, else one per class), drawn the same way:
    for two classes from RandomState(random_state); for more, RandomState(random_state)
    draws one seed per class and each class's RandomState(seed) then draws the dataset's
    seed (unused for shuffling) and the shuffle seed."""
    def per_problem(rng):
        rng.randint(1, np.iinfo(np.int32).max)   # make_dataset's seed
        return int(rng.randint(_MAX_INT))
    if n_classes == 2:
        return [per_problem(np.random.RandomState(random_state))]
    seeds = np.random.RandomState(random_state).randint(_MAX_INT, size=n_classes)
    return [per_problem(np.random.RandomState(s)) for s in seeds]


def fit_svms_reference(X, y, alphas, seed: int) -> list[LinearSVM]:
    """One scikit-learn fit per alpha: the definition the compiled path is held to."""
    out = []
    for alpha in alphas:
        # With tol=None scikit-learn does not warn about the fixed epoch count, so no
        # warning filter is needed (a catch_warnings() block per fit is not thread-safe).
        svm = make_svm(alpha, seed).fit(X, y)
        out.append(LinearSVM.from_sklearn(svm))
    return out


def _kernel():
    return import_kernel("refimpl.protocol._sgd")


def _engine(engine):
    engine = engine or os.environ.get(ENGINE_VARIABLE) or "auto"
    if engine not in ENGINES:
        raise ValueError(f"SGD engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    settings = {k: v for k, v in SGD_SETTINGS.items() if k != "max_iter"}
    if engine == "auto":
        if settings != _KERNEL_SETTINGS:
            return "sklearn"
        try:
            _kernel()
        except ImportError:
            return "sklearn"
        return "kernel"
    if engine == "kernel" and settings != _KERNEL_SETTINGS:
        raise ValueError(f"the compiled SGD implements {_KERNEL_SETTINGS}, not {settings}")
    return engine


def fit_svms(X, y, alphas, seed: int, *, engine: str | None = None) -> list[LinearSVM]:
    """Per alpha, the model SGDClassifier(alpha, random_state=seed, **SGD_SETTINGS).fit(X, y)
    gives. `engine`: "auto" (the compiled kernel when built, else scikit-learn), "kernel",
    or "sklearn"; the environment variable REFIMPL_SGD sets the default."""
    alphas = [float(a) for a in alphas]
    if _engine(engine) == "sklearn":
        return fit_svms_reference(X, y, alphas, seed)
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or len(y) != X.shape[0]:
        raise ValueError(f"X must be 2-D with one row per label (X {X.shape}, y {y.shape})")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError("The number of classes has to be greater than one; got "
                         f"{len(classes)} class")
    kernel = _kernel()
    positives = classes[1:] if len(classes) == 2 else classes
    coefs, intercepts = [], []
    for positive, shuffle_seed in zip(positives, shuffle_seeds(len(classes), seed)):
        y_pm = np.where(y == positive, 1.0, -1.0)
        coef, intercept = kernel.hinge_l2(X, y_pm, alphas, SGD_SETTINGS["max_iter"],
                                          shuffle_seed)
        coefs.append(coef)
        intercepts.append(intercept)
    coef_all = np.stack(coefs, axis=1)               # (alphas, problems, d)
    intercept_all = np.stack(intercepts, axis=1)     # (alphas, problems)
    return [LinearSVM(classes, np.ascontiguousarray(coef_all[i]),
                      np.ascontiguousarray(intercept_all[i]), alpha)
            for i, alpha in enumerate(alphas)]
