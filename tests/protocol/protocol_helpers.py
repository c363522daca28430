"""Shortcuts the protocol's tests and benchmarks use, over refimpl.protocol's public API.

They lived in refimpl.protocol, where nothing but the tests called them: speaker folds for
synthetic data, the whole protocol for one train/test pair, and a BoAW model's test.
"""
import numpy as np

from refimpl import protocol


def speaker_folds(speakers, n_folds: int = 2) -> np.ndarray:
    """Deterministic speaker-independent folds 1..n_folds of about equal size: speakers
    sorted by number of rows (largest first, ties by name), each put into the currently
    smallest fold."""
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


def train_and_test(X_train, y_train, fold, X_test, y_test, *, classes=None,
                   alphas=protocol.ALPHAS, oversampling=False, seed=0,
                   speakers=None) -> protocol.Result:
    """The whole protocol for one train/test pair: train_model, then evaluate."""
    model = protocol.train_model(X_train, y_train, fold, classes=classes, alphas=alphas,
                                 oversampling=oversampling, seed=seed, speakers=speakers)
    return protocol.evaluate(model, X_test, y_test)


def evaluate_boaw(boaw: protocol.BoawModel, test_llds, y_test) -> protocol.Result:
    """A BoAW model's test: the test LLDs quantised with its final codebook, then scored."""
    return protocol.evaluate(boaw.model, boaw.bags(test_llds), y_test,
                             extra={"cs": boaw.size, "na": boaw.assignments})
