"""The protocol's data steps: standardising, random oversampling of the minority classes,
the speaker-independence check of the inner folds, and the seed of every random step."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["OVERSAMPLE_RATIO", "standardise", "oversample_indices", "oversample",
           "training_data", "check_speaker_independent", "child_seed"]

OVERSAMPLE_RATIO = 0.75


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


def training_data(X, y, oversampling, seed, *path):
    """What a model is fitted on: (X, y) as they are, or oversampled with the child seed of
    `path` (where in the protocol the step is)."""
    if oversampling:
        return oversample(X, y, OVERSAMPLE_RATIO, child_seed(seed, 1, *path))
    return X, y


def check_speaker_independent(fold, speakers) -> None:
    """Raise ValueError if a speaker has rows in more than one inner fold."""
    fold = np.asarray(fold)
    speakers = np.asarray(speakers)
    seen: dict = {}
    for f, s in zip(fold.tolist(), speakers.tolist()):
        if seen.setdefault(s, f) != f:
            raise ValueError(f"speaker {s!r} is in inner folds {seen[s]} and {f}; "
                             "the cross-validation must be speaker-independent")


def child_seed(seed: int, *path: int) -> int:
    """A child seed for one random step, derived from the run's seed and where it is used."""
    return int(np.random.SeedSequence([int(seed), *map(int, path)]).generate_state(1)[0])
