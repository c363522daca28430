"""How the protocol scores a model: the confusion matrix, unweighted average recall (UAR)
and the paper's two-sided z-test between two recognition rates."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["SIGNIFICANCE_LEVEL", "confusion", "uar_from_confusion", "uar", "z_test",
           "significantly_better"]

SIGNIFICANCE_LEVEL = 0.001


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


def z_test(p1: float, p2: float, n1: int, n2: int | None = None) -> tuple[float, float]:
    """Two-sided two-proportion z-test with pooled variance: returns (z, p-value).

    The paper's text (as quoted in the project's issue) names only a "2-sided z-test"; the
    paper itself could not be consulted for more detail. This is the usual z-test for two
    recognition rates measured on test sets of n1 and n2 instances (here both = the number
    of test instances of the corpus): the rates are treated as proportions,
    z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p the pooled rate
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
