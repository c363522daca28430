"""The baselines as scikit-learn estimators (and, for the functionals, the pandas face of
refimpl.DeepSpectrum): Functionals (openSMILE's functionals of whole files) and
BoAWTransformer (openXBOW's bags of audio words).

This module imports scikit-learn and pandas (seconds): refimpl, refimpl.baselines.opensmile
and refimpl.baselines.boaw offer these classes on first use (refimpl._util.lazy), so the
command line never imports it.
"""
from __future__ import annotations

from decimal import Decimal

import numpy as np
import soundfile
from sklearn.base import BaseEstimator, TransformerMixin

from refimpl.baselines.boaw import LLD, boaw
from refimpl.baselines.opensmile import (config_path, functional_names, functionals,
                                         run_opensmile, smile)
from refimpl.errors import AudioError, BoawError, FeatureError
from refimpl.features.api import FileFeatures
from refimpl.features.engine import Signal

__all__ = ["Functionals", "BoAWTransformer"]


class Functionals(FileFeatures):
    """openSMILE functionals of whole files (eGeMAPS v01a or ComParE 2013), with the faces
    of refimpl.DeepSpectrum: process_file / process_files / process_folder /
    process_signal -> pandas DataFrame indexed (file, start, end), openSMILE's feature
    names as columns; and a scikit-learn transformer (fit a no-op, transform(paths or
    (signal, rate) pairs) -> one row per item, get_feature_names_out).

    openSMILE reads the first channel of a multi-channel file or signal (its default).

    Parameters
    ----------
    feature_set : str
        "egemaps" (eGeMAPS v01a, 88 functionals) or "compare2013" (6373).
    cache : bool
        The per-file cache of refimpl.baselines.opensmile.functionals (whole files; a
        start/end or a signal is computed by openSMILE each time).

    Examples
    --------
    >>> frame = Functionals("egemaps").process_files(["a.wav", "b.wav"])  # doctest: +SKIP
    """

    def __init__(self, feature_set: str = "egemaps", cache: bool = True):
        self.feature_set = feature_set
        self.cache = cache

    def _names(self):
        return functional_names(self.feature_set)

    def _rows(self, items, start, end):
        for item in items:
            try:
                yield self._one(item, start, end)
            except (AudioError, FeatureError) as e:     # this file only: the rest go on
                yield (item.name if isinstance(item, Signal) else str(item), str(e))

    def _one(self, item, start, end):
        config = config_path(self.feature_set)
        if isinstance(item, Signal):
            samples = np.asarray(item.samples, np.float32)
            try:
                df = smile(config, "func").process_signal(
                    samples.T if samples.ndim == 2 else samples, int(item.rate))
            except Exception as e:                # opensmile raises many kinds
                raise FeatureError(f"{item.name}: openSMILE cannot process it ({e})") from None
            label = item.name
        elif start is None and end is None:
            values = functionals(item, self.feature_set, use_cache=self.cache)
            return (str(item), values[None], [0], [_duration(item)])
        else:
            df = run_opensmile(item, config, "func", start=start, end=end)
            label = str(item)
        index = df.index
        return (label, df.to_numpy(np.float32),
                index.get_level_values("start").total_seconds().tolist(),
                index.get_level_values("end").total_seconds().tolist())


def _duration(path):
    """A file's duration in seconds, exactly (frames / rate): opensmile-python's end."""
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError, OSError) as e:
        raise FeatureError(f"{path}: cannot read audio ({e})") from None
    return Decimal(info.frames) / Decimal(info.samplerate)


class BoAWTransformer(TransformerMixin, BaseEstimator):
    """Bags of audio words as a scikit-learn transformer. fit(X) learns the codebook (and
    IDF / output statistics) as openXBOW -B does on the training files; transform(X)
    returns one bag per file, as openXBOW -b does with that codebook. X: a list of per-file
    LLD arrays (frames x features), or an LLD DataFrame indexed by (file, start, end), as
    opensmile-python's LLD level gives it (one bag per file, in order of appearance).
    get_feature_names_out: openXBOW's names, W(0) .. W(size-1). Every constructor
    argument is a parameter stored as given (clone, GridSearchCV).

    Parameters
    ----------
    size : int
        Codebook size Cs (openXBOW -size).
    method : str
        How the codebook is drawn: "random", "random++", "kmeans" or "kmeans++".
    seed : int
        openXBOW's random seed (a Java int).
    assignments : int
        Words each frame is assigned to, Na (openXBOW -a).
    gaussian : float
        Sigma of Gaussian weighting of the assignments, 0 for none.
    log : bool
        log10(TF + 1) term weighting (openXBOW -log).
    idf : bool
        Inverse document frequency weighting (openXBOW -idf).
    norm : int
        Bag normalisation 0-3 (openXBOW -norm).
    standardize_input, standardize_output : bool
        Standardise the LLDs / the bags with statistics learnt in fit.
    fast : bool
        BLAS distances (refimpl.baselines.boaw_fast): the same except near ties.

    Examples
    --------
    >>> bags = BoAWTransformer(size=500, assignments=10).fit(train).transform(test)  # doctest: +SKIP
    """

    def __init__(self, size: int = 500, method: str = "random++", seed: int = 10,
                 assignments: int = 1, gaussian: float = 0.0, log: bool = False,
                 idf: bool = False, norm: int = 0, standardize_input: bool = False,
                 standardize_output: bool = False, fast: bool = False):
        self.size = size
        self.method = method
        self.seed = seed
        self.assignments = assignments
        self.gaussian = gaussian
        self.log = log
        self.idf = idf
        self.norm = norm
        self.standardize_input = standardize_input
        self.standardize_output = standardize_output
        self.fast = fast

    @staticmethod
    def _per_file(X):
        if hasattr(X, "index") and hasattr(X, "to_numpy"):   # a pandas LLD frame
            files = X.index.get_level_values("file") if "file" in (X.index.names or []) \
                else X.index
            values = X.to_numpy(np.float32)
            order = list(dict.fromkeys(files))
            codes = {f: i for i, f in enumerate(order)}
            which = np.array([codes[f] for f in files])
            return [values[which == i] for i in range(len(order))]
        return list(X)

    @classmethod
    def _as_lld(cls, X):
        X = cls._per_file(X)
        names = [str(i) for i, x in enumerate(X) for _ in range(len(x))]
        feats = np.concatenate([np.asarray(x, np.float32) for x in X]) if X else np.zeros((0, 0))
        return LLD(names, feats)

    def fit(self, X, y=None) -> "BoAWTransformer":
        """Learn the codebook (and IDF / output statistics) from X's frames (openXBOW -B).

        Parameters
        ----------
        X : list of arrays (frames, features), or a pandas LLD frame
            One array per file, or a DataFrame indexed by (file, start, end).
        y : ignored

        Returns
        -------
        BoAWTransformer
            self, with codebook_ set.
        """
        res = boaw(self._as_lld(X), size=self.size, method=self.method, seed=self.seed,
                   assignments=self.assignments, gaussian=self.gaussian, log=self.log,
                   idf=self.idf, norm=self.norm, standardize_input=self.standardize_input,
                   standardize_output=self.standardize_output, fast=self.fast)
        self.codebook_ = res.codebook
        return self

    def transform(self, X) -> np.ndarray:
        """One bag per file of X, with the learnt codebook (openXBOW -b).

        Parameters
        ----------
        X : list of arrays (frames, features), or a pandas LLD frame

        Returns
        -------
        numpy.ndarray
            (files, size) float32.
        """
        X = self._per_file(X)
        if any(len(x) == 0 for x in X):
            raise BoawError("every file needs at least one LLD frame")
        res = boaw(self._as_lld(X), codebook=self.codebook_, norm=self.norm, fast=self.fast)
        return res.bags

    def get_feature_names_out(self, input_features=None):
        return np.array([f"W({i})" for i in range(self.size)], dtype=object)
