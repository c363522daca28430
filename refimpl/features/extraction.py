"""A whole extraction run: inputs in, one feature file out (extract_to_file, row by row
and atomically, with the failed inputs listed in its ExtractionSummary), and small runs kept
in memory (extract -> Extraction -> write_features).

A reduced copy (the toolkit's -reduced) drops the neuron columns that are exactly zero
in every row written; name, timeStamp and the labels are always kept. (The toolkit
compared the written text with '0.0' or '0' and so also dropped a label or time stamp
column that was all zeros; here only neurons are dropped.)
"""
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from refimpl._util.files import check_outputs
from refimpl.errors import LabelError, UsageError
from refimpl.features.config import ExtractorConfig
from refimpl.features.engine import iter_features
from refimpl.features.formats import ARFF_RELATION, FORMATS, RowSpool, open_writer, output_format
from refimpl.features.inputs import AudioInput, Labels, folder_labels

__all__ = ["ExtractionSummary", "extract_to_file", "reduced_path", "Extraction", "extract",
           "write_features"]


def reduced_path(output):
    """The reduced copy's default name, as the toolkit's reduce tool named it:
    OUT.reduced.SUFFIX beside OUT."""
    output = Path(output)
    return output.with_name(f"{output.stem}.reduced{output.suffix}")



@dataclass
class ExtractionSummary:
    output: Path | None              # None when no row was written (every input failed)
    files: int = 0                   # inputs
    rows: int = 0                    # rows written
    cached: int = 0                  # files whose features came from the cache
    failed: list = field(default_factory=list)   # one line per input that gave no rows
    dim: int = 0
    reduced: Path | None = None
    kept: int | None = None          # neuron columns in the reduced copy


def extract_to_file(inputs: Iterable[AudioInput], config: ExtractorConfig,
                    output: str | Path, *, format: str | None = None,
                    labels: Labels | None = None, reduced: str | Path | None = None,
                    network=None, cache: bool = True, cache_root: str | Path | None = None,
                    jobs: int = 1, spectrogram_dir: str | Path | None = None,
                    progress: bool = False, report: Callable[[str], None] | None = None,
                    client=None) -> ExtractionSummary:
    """Extract `inputs` with `config` into `output`, streaming (row by row, atomically).

    Parameters
    ----------
    inputs : iterable of AudioInput
        The files and their row names (refimpl.features.find_audio).
    config : ExtractorConfig
        Everything that changes the features.
    output : str or path
        The feature file: .csv, .arff, .parquet or .npz (or name `format`).
    format : str, optional
        "csv", "arff", "parquet" or "npz", whatever the suffix.
    labels : Labels, optional
        A label file's labels (refimpl.features.read_labels); default: each file's
        parent folder's name.
    reduced : str or path, optional
        Also write a reduced copy there (format by its suffix, else the output's).
    network, cache, cache_root, jobs, spectrogram_dir, progress
        As for iter_features.
    report : callable, optional
        report(line) is called at once for each input that fails (default: collected in
        the summary only).
    client : dask.distributed.Client, optional
        Workers that compute the features (refimpl.features.distributed; `network` and
        `jobs` then do not apply).

    Returns
    -------
    ExtractionSummary
        The output (None when every input failed: no file is written), rows, inputs
        served from the cache, and one line per failed input.

    Examples
    --------
    >>> from refimpl import ExtractorConfig, extract_to_file, find_audio
    >>> config = ExtractorConfig(backend="c", weights="synthetic:0")   # doctest: +SKIP
    >>> extract_to_file(find_audio(["wav/"]), config, "features.csv")  # doctest: +SKIP
    """
    inputs = list(inputs)
    # before any work: an output that is one of the files this run reads would destroy it
    check_outputs({"the output": output, "the reduced copy": reduced},
                  {"an input": [a.path for a in inputs],
                   "the label file": [labels.source] if labels is not None and labels.path
                   else [],
                   "the weights": [config.weights] if config.weights else []}, UsageError)
    labels = folder_labels(inputs) if labels is None else labels
    summary = ExtractionSummary(Path(output), files=len(inputs), dim=config.dim)

    def fail(line):
        summary.failed.append(line)
        if report is not None:
            report(line)

    todo, row_labels = [], {}
    for a in inputs:
        try:
            row_labels[a.name] = labels.values_for(a.name)
        except LabelError as e:
            fail(str(e))
            continue
        todo.append(a)
    fmt = output_format(output, format)
    if reduced is not None:   # its own suffix's format, else the output's
        known = Path(reduced).suffix.lower().lstrip(".") in FORMATS
        reduced_fmt = output_format(reduced, None if known else fmt)
        Path(reduced).parent.mkdir(parents=True, exist_ok=True)
    options = dict(dim=config.dim, windowed=config.windowed, label_columns=labels.columns)
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(open_writer(output, fmt, **options))
        spool = None
        if reduced is not None:
            spool = RowSpool(Path(reduced).parent, config.dim)
            stack.callback(spool.close)
        if client is not None:
            # dask is an optional extra, imported only by the runs that use it
            from refimpl.features.distributed import iter_features_dask
            results = iter_features_dask(todo, config, client, cache=bool(cache),
                                         cache_root=cache_root,
                                         spectrogram_dir=spectrogram_dir, progress=progress)
        else:
            results = iter_features(todo, config, network=network, cache=cache,
                                    cache_root=cache_root, jobs=jobs,
                                    spectrogram_dir=spectrogram_dir, progress=progress)
        for result in results:
            if not result.ok:
                fail(result.error)
                continue
            summary.cached += result.cached
            stamps = result.times(config)[0]
            writer.write(result.name, stamps, result.features, row_labels[result.name])
            if spool is not None:
                spool.add(result.name, stamps, result.features, row_labels[result.name])
        summary.rows = writer.rows
        if not summary.rows:      # every input failed: no output, rather than an empty one
            writer.discard()
            summary.output = None
            return summary
        if spool is not None:
            keep = np.flatnonzero(spool.nonzero)
            with open_writer(reduced, reduced_fmt, keep=keep,
                             relation="Reduced " + ARFF_RELATION, **options) as small:
                for name, stamps, rows, row_label in spool.replay():
                    small.write(name, stamps, rows, row_label)
            summary.reduced, summary.kept = Path(reduced), len(keep)
    return summary


# ------------------------------------------------------------- small runs, in memory

@dataclass
class Extraction:
    """Every FileResult of a run, kept in memory (for a handful of files; corpora go
    through extract_to_file or iter_features)."""
    config: object
    results: list
    labels: object = None           # Labels, or None: the parent folders' names

    @property
    def ok(self):
        return [r for r in self.results if r.ok]

    @property
    def names(self):
        """The row names, one per row."""
        return [r.name for r in self.ok for _ in range(len(r.features))]

    @property
    def timestamps(self):
        """The toolkit's time stamp per row (float seconds), or None per row unwindowed."""
        out = []
        for r in self.ok:
            stamps = r.times(self.config)[0]
            out += [None] * len(r.features) if stamps is None else [float(s) for s in stamps]
        return out

    @property
    def rows(self):
        return [row for r in self.ok for row in r.features]

    @property
    def matrix(self):
        ok = self.ok
        return (np.concatenate([r.features for r in ok]) if ok
                else np.zeros((0, self.dim), np.float32))

    @property
    def failed(self):
        """(file, reason) per input that gave no rows."""
        return [(r.path or r.name, r.error) for r in self.results if not r.ok]

    @property
    def dim(self):
        ok = self.ok
        return ok[0].features.shape[1] if ok else self.config.dim


def extract(inputs, network=None, *, config=None, labels=None, progress=False, jobs=1,
            cache=False, **settings):
    """iter_features into an Extraction. `inputs`: paths, AudioInputs or Signals; the
    configuration is `config` or ExtractorConfig(**settings) (window=, hop=, renderer=,
    backend=, weights=, ...); `network` an open one (default: opened from it)."""
    config = config if config is not None else ExtractorConfig(**settings)
    results = list(iter_features(inputs, config, network=network, cache=cache, jobs=jobs,
                                 progress=progress))
    return Extraction(config, results, labels)


def write_features(extraction, path, format=None):
    """Write an Extraction to `path` (format by suffix, as extract_to_file)."""
    results = extraction.ok
    labels = extraction.labels
    if labels is None:
        labels = folder_labels([AudioInput(Path(r.path or r.name), r.name) for r in results])
    config = extraction.config
    dim = results[0].features.shape[1] if results else config.dim
    with open_writer(path, format, dim=dim, windowed=config.windowed,
                     label_columns=labels.columns) as w:
        for r in results:
            w.write(r.name, r.times(config)[0], r.features, labels.values_for(r.name))
    return w.rows

