"""The Python API: feature extractors with the two faces researchers know.

pandas, like opensmile-python / audinterface: process_file, process_files,
process_folder and process_signal return a DataFrame with one row per file (or chunk),
indexed by (file, start, end) as timedeltas (a signal without a file: (start, end)), one
column per feature. A file that cannot be used is left out with a FileWarning naming it.

scikit-learn: a transformer. fit is a no-op (or, with reduced=True, learns which
columns are non-zero on the training files), transform(X) takes a list of paths or of
(signal, rate) pairs and returns one row per item, get_feature_names_out names the
columns, and every constructor argument is a parameter stored as given (clone,
GridSearchCV and Pipeline work).

    ds = DeepSpectrum(backend="c", weights="synthetic:0")
    df = ds.process_folder("wav/")                          # DataFrame
    Pipeline([("ds", DeepSpectrum()), ("scale", StandardScaler()), ("svm", SGDClassifier())])

FileFeatures holds the shared machinery (refimpl.baselines.estimators uses it for the
openSMILE functionals). This module imports scikit-learn and pandas, which take seconds:
refimpl and refimpl.features offer DeepSpectrum lazily (refimpl._util.lazy), so neither
`import refimpl` nor the command line imports it.
"""
from __future__ import annotations

import dataclasses
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from refimpl.errors import FeatureError, FileWarning, UsageError
from refimpl.features.config import ExtractorConfig
from refimpl.features.engine import Signal, iter_features
from refimpl.features.extraction import ExtractionSummary, extract_to_file
from refimpl.features.inputs import AUDIO_SUFFIXES, find_audio

__all__ = ["FileFeatures", "FileWarning", "time_index", "DeepSpectrum"]


def _nanoseconds(seconds):
    return int((Decimal(seconds) * 10**9).to_integral_value())


def time_index(files, starts, ends):
    """pandas MultiIndex (file, start, end) as audformat.segmented_index builds it (file
    a "string", start and end timedelta64[ns]); files=None gives (start, end), as
    audinterface indexes a signal without a file. starts/ends in seconds."""
    levels = [pd.to_timedelta(np.array([_nanoseconds(s) for s in values], np.int64), unit="ns")
              .astype("timedelta64[ns]") for values in (starts, ends)]
    if files is None:
        return pd.MultiIndex.from_arrays(levels, names=["start", "end"])
    return pd.MultiIndex.from_arrays([pd.Index(list(files), dtype="string")] + levels,
                                     names=["file", "start", "end"])


def _as_transform_items(X):
    """transform's input -> paths or Signals: a path (str, Path) or a (signal, rate)
    pair per item."""
    items = []
    for i, x in enumerate(X):
        if isinstance(x, (str, Path)):
            items.append(x)
        elif isinstance(x, (tuple, list)) and len(x) == 2 and not isinstance(x[0], (str, Path)):
            items.append(Signal(np.asarray(x[0]), x[1], f"signal {i}"))
        else:
            raise UsageError(f"item {i}: expected a path or a (signal, sampling rate) pair, "
                             f"got {type(x).__name__}")
    return items


class FileFeatures(TransformerMixin, BaseEstimator):
    """The pandas and scikit-learn faces over `_rows(items, start, end)`, which a
    subclass provides: per item, in order, (file label, values (n, d), starts, ends) or
    (file label, error line); and `_names()`, the d column names.

    transform and fit_transform are defined here, in a subclass of TransformerMixin, so
    that scikit-learn wraps them for set_output(transform="pandas")."""
    reduced = False

    # ---------------------------------------------------------------- pandas
    def process_file(self, file, *, start=None, end=None):
        """One file -> DataFrame ((file, start, end) index). start/end in seconds."""
        return self.process_files([file], starts=start, ends=end)

    def process_files(self, files, *, starts=None, ends=None):
        """Files -> one DataFrame, rows in the files' order. starts/ends: seconds, one
        value for every file or one per file."""
        if isinstance(files, (str, Path)):
            files = [files]            # one path, not a sequence of one-letter names
        files = [str(f) for f in files]
        spans = list(zip(self._per_file(starts, len(files), "starts"),
                         self._per_file(ends, len(files), "ends")))
        parts = [None] * len(files)
        for span in dict.fromkeys(spans):       # one run per distinct (start, end)
            where = [i for i, s in enumerate(spans) if s == span]
            for i, row in zip(where, self._rows([files[i] for i in where], *span)):
                parts[i] = row
        return self._frame(parts, with_file=True)

    def process_folder(self, root, *, filetype="wav", include_root=True):
        """Every audio file under `root` (recursively, sorted; filetype: a suffix, or
        None for every audio suffix) -> DataFrame; the file level holds root/relative
        path, or the relative path with include_root=False."""
        root = Path(root)
        if not root.is_dir():
            raise UsageError(f"{root}: not a folder")
        suffixes = AUDIO_SUFFIXES if filetype is None else {"." + filetype.lower().lstrip(".")}
        found = [a for a in find_audio([root]) if a.path.suffix.lower() in suffixes]
        frame = self.process_files([a.path for a in found])
        if not include_root:
            frame.index = frame.index.set_levels(
                frame.index.levels[0].map(lambda f: Path(f).relative_to(root).as_posix()),
                level="file")
        return frame

    def process_signal(self, signal, sampling_rate, *, file=None, start=None, end=None):
        """A signal, (samples,) or (channels, samples) as audinterface takes it ->
        DataFrame indexed (start, end), or (file, start, end) when `file` is given."""
        signal = np.asarray(signal)
        if signal.ndim == 2 and signal.shape[0] > signal.shape[1]:
            # (frames, channels), as soundfile reads it: taken as (channels, samples) it
            # would be a signal of `channels` samples
            raise UsageError(f"{file or 'signal'}: shape {signal.shape} looks like "
                             f"{signal.shape[1]} channel(s) of {signal.shape[0]} frames, laid "
                             f"out (frames, channels); process_signal takes (channels, "
                             f"samples), as audinterface: pass signal.T")
        item = Signal(signal.T if signal.ndim == 2 else signal, sampling_rate,
                      file or "signal")
        row = next(iter(self._rows([item], start, end)))
        if len(row) == 2:
            raise FeatureError(row[1])
        if file is None:
            return self._frame([row], with_file=False)
        return self._frame([row], with_file=True)

    @staticmethod
    def _per_file(value, n, what):
        if value is None or np.isscalar(value) or isinstance(value, (str, Decimal)):
            return [value] * n
        value = list(value)
        if len(value) != n:
            raise UsageError(f"{what}: {len(value)} values for {n} files")
        return value

    def _frame(self, rows, with_file):
        good = []
        for row in rows:
            if len(row) == 2:
                warnings.warn(f"left out: {row[1]}", FileWarning, stacklevel=3)
            else:
                good.append(row)
        names = self._names()
        values = (np.concatenate([r[1] for r in good]) if good
                  else np.zeros((0, len(names)), np.float32))
        files = [r[0] for r in good for _ in range(len(r[1]))] if with_file else None
        index = time_index(files, [s for r in good for s in r[2]], [e for r in good for e in r[3]])
        frame = pd.DataFrame(values, index=index, columns=names)
        if self.reduced:
            frame = frame.loc[:, (frame != 0).any(axis=0).to_numpy()]
        return frame

    # ---------------------------------------------------------------- scikit-learn
    def fit(self, X, y=None):
        """A no-op (the network is fixed), except with reduced=True: then it learns the
        columns that are non-zero in some row of X (support_)."""
        if self.reduced:
            self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        values = self._matrix(X)
        if self.reduced:
            self.support_ = np.flatnonzero((values != 0).any(axis=0))
            return values[:, self.support_]
        return values

    def transform(self, X):
        """One row per item of X (paths, or (signal, rate) pairs), float32."""
        values = self._matrix(X)
        if self.reduced:
            values = values[:, self._support()]
        return values

    def get_feature_names_out(self, input_features=None):
        names = np.asarray(self._names(), dtype=object)
        return names[self._support()] if self.reduced else names

    def _support(self):
        if not hasattr(self, "support_"):
            raise NotFittedError("reduced=True learns its columns in fit; call fit first")
        return self.support_

    def _matrix(self, X):
        items = _as_transform_items(X)
        rows, failed = [], []
        for row in self._rows(items, None, None):
            if len(row) == 2:
                failed.append(row[1])
            elif len(row[1]) != 1:
                raise UsageError(f"{row[0]}: {len(row[1])} rows; transform gives one row per "
                                 f"item, so it takes no window (use process_files for "
                                 f"windowed rows)")
            else:
                rows.append(row[1][0])
        if failed:
            raise FeatureError(f"{len(failed)} of {len(items)} items failed: " + "; ".join(failed))
        return (np.stack(rows) if rows
                else np.zeros((0, len(self._names())), np.float32))


# ------------------------------------------------------------------- deep spectrum

_CONFIG_FIELDS = ExtractorConfig.fields()


class DeepSpectrum(FileFeatures):
    """Deep spectrum features (Cummins et al. 2017): the spectrogram image of each file
    (or chunk) through AlexNet, the activations of blob `layer` (fc7 after its ReLU by
    default, 4096 columns neuron_0 .. neuron_4095), as pandas DataFrames and as a
    scikit-learn transformer.

    Parameters
    ----------
    net : str
        "alexnet" (the paper's) or "efficientnet-lite0".
    layer : str, optional
        The AlexNet blob whose activations are the features (default fc7, after its ReLU).
    backend : str
        "c" (the compiled core), "numpy" (the reference), "caffe" (real Caffe), "torch".
    weights : str or path, optional
        A caffemodel path, "synthetic:SEED" (a seeded random AlexNet: NOT the paper's
        network) or None (the BVLC weights of `make weights`).
    nfft, cmap, fmax, renderer, pixels
        The picture (the paper's: 256, viridis, Fs/2, the "2017" pixels whatever
        matplotlib is installed; refimpl.image.options).
    window, hop : float, optional
        Seconds of audio per row and between rows, as the toolkit cut them (hop defaults
        to window; None: one row per file).
    whole_windows : bool
        Keep only full windows.
    start, end : float, optional
        The span of each file used, in seconds.
    trim_zeros : bool
        Drop runs of exact-zero samples at both ends first.
    subtract_mean : bool
        Subtract the ImageNet mean (NOT what the paper did).
    device : str, optional
        Where the torch backend runs (cpu, cuda, cuda:N), or the caffe backend (cpu,
        gpu:N).
    reduced : bool
        Drop the columns that are zero in every row (fit learns them).
    num_workers : int
        Processes that draw the spectrograms (the network runs in this one; they are
        spawned, so a script must keep its work under `if __name__ == "__main__":`).
    cache : bool
        The per-file feature cache (on by default).
    cache_root : str or path, optional
        Where that cache lives (default: refimpl._util.locations.cache_dir()).
    verbose : bool
        A progress bar.

    The network is opened on first use and kept; close() (or `with`) releases it.

    Examples
    --------
    >>> ds = DeepSpectrum(backend="c", weights="synthetic:0")    # doctest: +SKIP
    >>> frame = ds.process_folder("wav/")                         # doctest: +SKIP
    """

    def __init__(self, net: str = "alexnet", layer: str | None = None, backend: str = "c",
                 weights: str | Path | None = None, nfft: int = 256, cmap: str = "viridis",
                 fmax: float | None = None, window: float | None = None,
                 hop: float | None = None, whole_windows: bool = False,
                 start: float | None = None, end: float | None = None,
                 trim_zeros: bool = False, renderer: str = "auto", pixels: str = "2017",
                 subtract_mean: bool = False, device: str | None = None,
                 reduced: bool = False, num_workers: int = 1, cache: bool = True,
                 cache_root: str | Path | None = None, verbose: bool = False):
        self.net = net
        self.layer = layer
        self.backend = backend
        self.weights = weights
        self.nfft = nfft
        self.cmap = cmap
        self.fmax = fmax
        self.window = window
        self.hop = hop
        self.whole_windows = whole_windows
        self.start = start
        self.end = end
        self.trim_zeros = trim_zeros
        self.renderer = renderer
        self.pixels = pixels
        self.subtract_mean = subtract_mean
        self.device = device
        self.reduced = reduced
        self.num_workers = num_workers
        self.cache = cache
        self.cache_root = cache_root
        self.verbose = verbose

    # the engine's view of the parameters
    @property
    def config(self):
        """The ExtractorConfig of the current parameters."""
        return ExtractorConfig(**{f: getattr(self, f) for f in _CONFIG_FIELDS})

    def _network_for(self, config):
        key = (config.net, config.feature_layer, config.backend, config.weights,
               config.subtract_mean, config.device)
        if getattr(self, "_open", None) is None or self._open[0] != key:
            self.close()
            self._open = (key, config.open_network())
        return self._open[1]

    def close(self):
        """Release the network (a Caffe worker process, GPU memory)."""
        opened = getattr(self, "_open", None)
        self._open = None
        if opened is not None:
            opened[1].close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_open", None)
        state.pop("_client", None)
        return state

    def process_files(self, files, *, starts=None, ends=None, client=None):
        """Files -> one DataFrame, rows in the files' order. starts/ends: seconds, one
        value for every file or one per file. client: a dask.distributed Client whose
        workers compute the features (refimpl.features.distributed; the same values),
        each loading the network once."""
        self._client = client
        try:
            return super().process_files(files, starts=starts, ends=ends)
        finally:
            self._client = None

    def _names(self):
        return [f"neuron_{i}" for i in range(self.config.dim)]

    def _rows(self, items, start, end):
        config = self.config
        if start is not None or end is not None:
            config = dataclasses.replace(
                config, start=config.start if start is None else start,
                end=config.end if end is None else end)
        for r in self.iter_features(items, config):
            label = r.path if r.path is not None else r.name
            if not r.ok:
                yield (label, r.error)
            else:
                _, starts, ends = r.times(config)
                yield (label, r.features, starts, ends)

    # the engine, for callers that stream
    def iter_features(self, items, config=None, client=None):
        """refimpl.features.iter_features with these parameters (and the open network):
        one FileResult per item, in order, as they are made; with a dask.distributed
        `client`, made on its workers (refimpl.features.distributed)."""
        config = self.config if config is None else config
        client = client if client is not None else getattr(self, "_client", None)
        if client is not None:
            # dask is an optional extra, imported only by the runs that use it
            from refimpl.features.distributed import iter_features_dask
            return iter_features_dask(items, config, client, cache=bool(self.cache),
                                      cache_root=self.cache_root, progress=self.verbose)
        return iter_features(items, config, network=self._network_for(config),
                             cache=self.cache, cache_root=self.cache_root,
                             jobs=self.num_workers, progress=self.verbose)

    def to_file(self, inputs, output, *, format=None, labels=None, reduced=None,
                spectrogram_dir=None) -> ExtractionSummary:
        """Extract files or folders into a feature file (CSV, ARFF, Parquet, .npz), row by
        row as `refimpl extract` does.

        Parameters
        ----------
        inputs : str, path or sequence of them
            Audio files, or folders searched recursively.
        output : str or path
            The feature file; its suffix names the format unless `format` does.
        format : str, optional
            "csv", "arff", "parquet" or "npz".
        labels : Labels, optional
            A label file's labels (refimpl.features.read_labels); default: each file's
            parent folder's name.
        reduced : str or path, optional
            Also write a copy without the columns that are zero in every row, there.
        spectrogram_dir : str or path, optional
            Write each spectrogram as PNG into this folder.

        Returns
        -------
        ExtractionSummary
            Rows written, files from the cache, and one line per input that failed.
        """
        config = self.config
        return extract_to_file(find_audio([inputs] if isinstance(inputs, (str, Path))
                                          else inputs), config, output,
                               format=format, labels=labels, reduced=reduced,
                               network=self._network_for(config), cache=self.cache,
                               cache_root=self.cache_root, jobs=self.num_workers,
                               spectrogram_dir=spectrogram_dir, progress=self.verbose)
