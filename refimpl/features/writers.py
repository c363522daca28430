"""Feature files, written row by row as the features are made (memory stays flat), and
atomically: the file appears at its name only once it is complete.

Formats (the output's suffix chooses, or `format`):

    csv      as the toolkit wrote it: csv module's excel dialect (lines end in CRLF), a
             header `name,[timeStamp,]neuron_0,...,neuron_D-1,<label columns>`
    arff     as the toolkit wrote it: @relation 'Deep Spectrum Features', `name` string,
             `timeStamp` numeric (windowed only), the neurons numeric, each label column
             nominal {sorted values} or numeric; values are quoted only where ARFF needs
             it (the toolkit never quoted, which broke on names with spaces or commas)
    parquet  the same columns, typed: name string, timeStamp float64, neurons float32,
             labels string or float64 (pyarrow), in row groups of ROW_GROUP rows
    npz      NumPy arrays: name, timeStamp (windowed), features (rows x D float32),
             feature_names, label_names and one label_<column> array per label column

Numbers are written as the toolkit's str() of each float32 prints on today's NumPy (the
shortest text that reads back to the same float32), time stamps as the decimals the
toolkit printed (0.0, 0.5, 1.0 for a hop of 0.5).

A reduced copy (the toolkit's -reduced) drops the neuron columns that are exactly zero
in every row written; name, timeStamp and the labels are always kept. (The toolkit
compared the written text with '0.0' or '0' and so also dropped a label or time stamp
column that was all zeros; here only neurons are dropped.)
"""
import contextlib
import csv
import glob
import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refimpl._util.atomic import atomic_open, atomic_path
from refimpl._util.digest import file_digest, text_digest
from refimpl._util.files import check_outputs
from refimpl.errors import LabelError, MissingDependency, UsageError
from refimpl.features.engine import ExtractorConfig, iter_features
from refimpl.features.inputs import AudioInput, folder_labels, label_number

__all__ = ["FORMATS", "ARFF_RELATION", "output_format", "open_writer", "FeatureWriter",
           "ExtractionSummary", "extract_to_file", "reduced_path", "ROW_GROUP", "Extraction",
           "extract", "write_features", "shard_path", "shard_of", "find_shards",
           "merge_shards", "write_shard_record", "shard_record_path"]

FORMATS = ("csv", "arff", "parquet", "npz")
ARFF_RELATION = "Deep Spectrum Features"
ROW_GROUP = 256
SHARD_RECORD = "refimpl shard 1"     # the kind and version of a shard's record


def output_format(path, format=None):
    """`format`, or the one the path's suffix names; a UsageError for anything else."""
    fmt = format or Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"{path}: cannot tell the output format from the suffix; name the "
                         f"file .csv, .arff, .parquet or .npz, or pass --format")
    return fmt


def reduced_path(output):
    """The reduced copy's default name, as the toolkit's reduce tool named it:
    OUT.reduced.SUFFIX beside OUT."""
    output = Path(output)
    return output.with_name(f"{output.stem}.reduced{output.suffix}")


def _floats(row):
    return row.astype(str)


# what a quoted ARFF value writes as an escape (Weka's reader turns them back): a line
# end inside a value would otherwise end the row
_ARFF_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r"}


def _arff_value(value):
    if value == "":
        return "?"
    if any(c in value for c in " ,'\"{}%\t\\\n\r") or value == "?":
        return "'" + "".join(_ARFF_ESCAPES.get(c, c) for c in value) + "'"
    return value


class FeatureWriter:
    """Base class: `write(name, stamps, rows, labels)` for each file, then `close()`
    (or use as a context manager; an error discards the partial file). rows: (n, dim)
    float32; stamps: n decimals or None; labels: one string per label column. `keep`:
    the neuron indices to write (all by default)."""

    def __init__(self, path, *, dim, windowed, label_columns=(), keep=None,
                 relation=ARFF_RELATION):
        self.path = Path(path)
        self.dim = int(dim)
        self.windowed = bool(windowed)
        self.label_columns = list(label_columns)
        self.keep = None if keep is None else np.asarray(keep, np.int64)
        self.relation = relation
        self.rows = 0
        self._closed = False
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._open()
        except BaseException as e:
            self._stack.__exit__(type(e), e, e.__traceback__)
            raise

    @property
    def neuron_names(self):
        idx = range(self.dim) if self.keep is None else self.keep
        return [f"neuron_{i}" for i in idx]

    def write(self, name, stamps, rows, labels):
        rows = np.asarray(rows, np.float32)
        if self.keep is not None:
            rows = rows[:, self.keep]
        self._write(name, stamps, rows, list(labels))
        self.rows += len(rows)

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._finish()
        self._stack.close()   # fsync + rename onto the final name

    def discard(self, error=None):
        """Leave nothing at the path (the partial file is removed)."""
        if self._closed:
            return
        self._closed = True
        self._discard()
        error = error or RuntimeError(f"{self.path}: discarded")
        self._stack.__exit__(type(error), error, error.__traceback__)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.close()
        else:
            self.discard(value)
        return False

    # subclasses
    def _open(self): ...
    def _write(self, name, stamps, rows, labels): ...
    def _finish(self): ...

    def _discard(self):
        """Release what _open took before the partial file is removed."""


class CsvWriter(FeatureWriter):
    def _open(self):
        self._file = open(self._tmp, "w", newline="", encoding="utf-8")
        self._stack.callback(self._file.close)
        self._csv = csv.writer(self._file)
        self._csv.writerow(["name"] + (["timeStamp"] if self.windowed else []) +
                           self.neuron_names + [c.name for c in self.label_columns])

    def _write(self, name, stamps, rows, labels):
        for i, row in enumerate(rows):
            self._csv.writerow([name] + ([str(stamps[i])] if self.windowed else []) +
                               _floats(row).tolist() + labels)

    def _finish(self):
        self._file.flush()


class ArffWriter(FeatureWriter):
    def _open(self):
        self._file = open(self._tmp, "w", newline="\n", encoding="utf-8")
        self._stack.callback(self._file.close)
        f = self._file
        f.write(f"@relation {_arff_value(self.relation)}\n\n@attribute name string\n")
        if self.windowed:
            f.write("@attribute timeStamp numeric\n")
        for n in self.neuron_names:
            f.write(f"@attribute {n} numeric\n")
        for c in self.label_columns:
            kind = "numeric" if c.numeric else "{" + ",".join(_arff_value(v) for v in c.values) + "}"
            f.write(f"@attribute {_arff_value(c.name)} {kind}\n")
        f.write("\n@data\n")

    def _write(self, name, stamps, rows, labels):
        tail = "".join("," + _arff_value(v) for v in labels)
        head = _arff_value(name)
        for i, row in enumerate(rows):
            stamp = f",{stamps[i]}" if self.windowed else ""
            self._file.write(head + stamp + "," + ",".join(_floats(row).tolist()) + tail + "\n")

    def _finish(self):
        self._file.flush()


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingDependency("Parquet output needs pyarrow: pip install pyarrow "
                                "(or write .csv, .arff or .npz)") from None
    return pyarrow, pyarrow.parquet


class ParquetWriter(FeatureWriter):
    def _open(self):
        pa, pq = _pyarrow()
        cols = [pa.field("name", pa.string())]
        if self.windowed:
            cols.append(pa.field("timeStamp", pa.float64()))
        cols += [pa.field(n, pa.float32()) for n in self.neuron_names]
        cols += [pa.field(c.name, pa.float64() if c.numeric else pa.string())
                 for c in self.label_columns]
        self._schema = pa.schema(cols)
        self._writer = pq.ParquetWriter(str(self._tmp), self._schema)
        self._pending = []

    def _write(self, name, stamps, rows, labels):
        self._pending.append((name, stamps, rows, labels))
        if sum(len(p[2]) for p in self._pending) >= ROW_GROUP:
            self._flush()

    def _flush(self):
        if not self._pending:
            return
        pa, _ = _pyarrow()
        n = [len(p[2]) for p in self._pending]
        arrays = [pa.array([p[0] for p, k in zip(self._pending, n) for _ in range(k)], pa.string())]
        if self.windowed:
            arrays.append(pa.array([float(s) for p in self._pending for s in p[1]], pa.float64()))
        matrix = np.concatenate([p[2] for p in self._pending])
        arrays += [pa.array(matrix[:, j]) for j in range(matrix.shape[1])]
        for j, c in enumerate(self.label_columns):
            values = [p[3][j] for p, k in zip(self._pending, n) for _ in range(k)]
            arrays.append(pa.array([label_number(v) for v in values], pa.float64()) if c.numeric
                          else pa.array(values, pa.string()))
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        self._pending = []

    def _finish(self):
        self._flush()
        self._writer.close()

    def _discard(self):
        self._writer.close()


class _Spool:
    """Rows kept on disk (a raw float32 file) with their names, stamps and labels in
    memory (a few bytes per row), for the writers that need every row before writing:
    .npz (whose arrays need their length up front) and the reduced copy (which needs to
    know the columns that stay zero)."""

    def __init__(self, folder, dim):
        self.dim = dim
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".spool-")
        self.files = []                   # (name, stamps, labels, row count)
        self.nonzero = np.zeros(dim, bool)
        self.rows = 0

    def add(self, name, stamps, rows, labels):
        rows = np.ascontiguousarray(rows, np.float32)
        self._file.write(rows.tobytes())
        self.nonzero |= (rows != 0).any(axis=0)
        self.files.append((name, stamps, list(labels), len(rows)))
        self.rows += len(rows)

    def replay(self):
        """(name, stamps, rows, labels) per file, reading the rows back in order."""
        self._file.seek(0)
        for name, stamps, labels, n in self.files:
            rows = np.frombuffer(self._file.read(n * self.dim * 4), np.float32)
            yield name, stamps, rows.reshape(n, self.dim), labels

    def copy_rows(self, out):
        """Write the rows to a binary file, a file's rows at a time."""
        for _, _, rows, _ in self.replay():
            out.write(rows.tobytes())

    def close(self):
        self._file.close()


class NpzWriter(FeatureWriter):
    def _open(self):
        self._spool = _Spool(self.path.parent, len(self.neuron_names))
        self._stack.callback(self._spool.close)

    def _write(self, name, stamps, rows, labels):
        self._spool.add(name, stamps, rows, labels)

    def _finish(self):
        spool, n = self._spool, self._spool.rows
        names = [f[0] for f in spool.files for _ in range(f[3])]
        arrays = {"name": np.array(names, dtype=str),
                  "feature_names": np.array(self.neuron_names, dtype=str),
                  "label_names": np.array([c.name for c in self.label_columns], dtype=str)}
        if self.windowed:
            arrays["timeStamp"] = np.array([float(s) for f in spool.files for s in f[1]],
                                           np.float64)
        for j, c in enumerate(self.label_columns):
            values = [f[2][j] for f in spool.files for _ in range(f[3])]
            arrays[f"label_{c.name}"] = (np.array([label_number(v) for v in values], np.float64)
                                         if c.numeric else np.array(values, dtype=str))
        with zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            for key, a in arrays.items():
                buf = io.BytesIO()
                np.save(buf, a, allow_pickle=False)
                z.writestr(f"{key}.npy", buf.getvalue())
            with z.open("features.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_2_0(
                    member, {"descr": "<f4", "fortran_order": False, "shape": (n, spool.dim)})
                spool.copy_rows(member)


WRITERS = {"csv": CsvWriter, "arff": ArffWriter, "parquet": ParquetWriter, "npz": NpzWriter}


def open_writer(path, format=None, **kwargs):
    """The streaming writer for `path` (FeatureWriter's arguments)."""
    return WRITERS[output_format(path, format)](path, **kwargs)


# ------------------------------------------------------------------------- a whole run

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


def extract_to_file(inputs, config, output, *, format=None, labels=None, reduced=None,
                    network=None, cache=True, cache_root=None, jobs=1, spectrogram_dir=None,
                    progress=False, report=None, client=None):
    """Extract `inputs` (AudioInputs, from find_audio) with `config` into `output`,
    streaming. labels: Labels (read_labels), or None for the parent folders' names.
    reduced: also write a reduced copy there (format by its suffix, else the output's
    format). report(line) is
    called at once for each input that fails (default: collected in the summary only).
    client: a dask.distributed Client whose workers compute the features
    (refimpl.features.distributed; `network` and `jobs` then do not apply). The rest of
    the arguments go to iter_features. Returns an ExtractionSummary."""
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
            spool = _Spool(Path(reduced).parent, config.dim)
            stack.callback(spool.close)
        if client is not None:
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


# ------------------------------------------------------------- shards (array jobs)

def shard_path(output, index, count):
    """Where shard `index` of `count` of OUT.SUFFIX is written: OUT.shard-I-of-N.SUFFIX
    beside it."""
    output = Path(output)
    return output.with_name(f"{output.stem}.shard-{index}-of-{count}{output.suffix}")


def shard_of(items, index, count):
    """Shard `index` (from 0) of `count`: a contiguous block of the items, so that the
    shards joined in order are the items in order."""
    items = list(items)
    return items[len(items) * index // count:len(items) * (index + 1) // count]


def find_shards(output):
    """The shard files of `output` (shard_path), in order; a UsageError when there are
    none, when they come from different splits, or when one is missing."""
    output = Path(output)
    name = re.compile(re.escape(output.stem) + r"\.shard-(\d+)-of-(\d+)" +
                      re.escape(output.suffix) + "$")
    found = {}
    for path in output.parent.glob(f"{glob.escape(output.stem)}.shard-*-of-*"
                                   f"{glob.escape(output.suffix)}"):
        if m := name.match(path.name):
            found[int(m[1]), int(m[2])] = path
    if not found:
        raise UsageError(f"{output}: no shards to merge beside it (named like "
                         f"{shard_path(output, 0, 2).name})")
    counts = sorted({n for _, n in found})
    if len(counts) > 1:
        raise UsageError(f"{output}: shards of different splits beside it (of "
                         f"{', '.join(map(str, counts))}); remove the stale ones")
    count = counts[0]
    missing = [i for i in range(count) if (i, count) not in found]
    if missing:
        raise UsageError(f"{output}: {len(missing)} of {count} shards missing, e.g. "
                         f"{shard_path(output, missing[0], count)} (a shard whose files all "
                         f"failed writes nothing)")
    return [found[i, count] for i in range(count)]


def shard_record_path(shard):
    """Where the record of what made a shard is kept: SHARD.json beside it."""
    shard = Path(shard)
    return shard.with_name(shard.name + ".json")


def write_shard_record(shard, config, index, count, all_inputs, inputs, rows):
    """Record beside `shard` what made it: the configuration (config_id), shard `index`
    of `count`, the names of every input of the whole run (their count and digest) and of
    this shard's, its rows and its own SHA-256. merge_shards checks the shards against
    their records, so a truncated, duplicated, renamed or foreign shard is refused."""
    record = {"record": SHARD_RECORD, "shard": [int(index), int(count)],
              "config_id": config.config_id(), "inputs_total": len(all_inputs),
              "inputs_sha256": text_digest(json.dumps([a.name for a in all_inputs]), 64),
              "files": [a.name for a in inputs], "rows": int(rows),
              "sha256": file_digest(shard)}
    with atomic_open(shard_record_path(shard), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def _shard_record(shard, index, count):
    """The record of `shard` (write_shard_record), checked against the file."""
    where = shard_record_path(shard)
    try:
        record = json.loads(where.read_text(encoding="utf-8"))
        if record.get("record") != SHARD_RECORD:
            raise ValueError("not a shard record")
    except FileNotFoundError:
        raise UsageError(f"{shard}: no record of what made it ({where.name} is missing: "
                         f"made by an older refimpl, or copied without it); extract the "
                         f"shard again") from None
    except (OSError, ValueError, AttributeError) as e:
        raise UsageError(f"{where}: not a readable shard record ({e})") from None
    if record["shard"] != [index, count]:
        raise UsageError(f"{shard}: holds shard {record['shard'][0]} of "
                         f"{record['shard'][1]}, not {index} of {count} (copied or renamed?)")
    if file_digest(shard) != record["sha256"]:
        raise UsageError(f"{shard}: not the file that was written (cut short or changed "
                         f"since: its SHA-256 differs from {where.name}'s)")
    return record


def _check_records(output, shards, records):
    """The shards make one whole run: one configuration, one set of inputs, each input in
    exactly one shard."""
    first, seen = records[0], {}
    for shard, record in zip(shards, records):
        if record["config_id"] != first["config_id"]:
            ours, theirs = record["config_id"].split(), first["config_id"].split()
            diff = [w for w in ours if w not in theirs][:2]
            raise UsageError(f"{shard}: made with another configuration than {shards[0]} "
                             f"({', '.join(diff) or 'settings differ'})")
        if (record["inputs_sha256"], record["inputs_total"]) != (first["inputs_sha256"],
                                                                 first["inputs_total"]):
            raise UsageError(f"{shard}: cut from other inputs than {shards[0]} "
                             f"({record['inputs_total']} files there, "
                             f"{first['inputs_total']} here)")
        for name in record["files"]:
            if name in seen:
                raise UsageError(f"{shard}: {name} is also in {seen[name]} (a shard twice?)")
            seen[name] = shard
    if len(seen) != first["inputs_total"]:
        raise UsageError(f"{output}: the shards hold {len(seen)} of the run's "
                         f"{first['inputs_total']} inputs")


def _text_header(fmt, lines, shard):
    """A CSV or ARFF shard's header lines (CSV: the first; ARFF: up to @data)."""
    if fmt == "csv":
        return lines[:1]
    for i, line in enumerate(lines):
        if line.strip().lower() == b"@data":
            return lines[:i + 1]
    raise UsageError(f"{shard}: not an ARFF file (no @data line)")


def _text_rows(fmt, head, body, shard):
    """The rows of a CSV or ARFF shard's body, each checked to have the header's number
    of columns; a UsageError naming the shard and the row otherwise."""
    try:
        text, top = body.decode("utf-8"), b"".join(head).decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{shard}: not UTF-8 text (byte {e.start})") from None
    if fmt == "csv":
        width = len(next(csv.reader([top.strip("\r\n")])))
        reader = csv.reader(io.StringIO(text, newline=""))
    else:
        width = sum(ln.lower().startswith("@attribute") for ln in top.splitlines())
        reader = csv.reader(io.StringIO(text, newline=""), quotechar="'", escapechar="\\",
                            doublequote=False)
    rows = 0
    try:
        for row in reader:
            if not row:
                continue
            rows += 1
            if len(row) != width:
                raise UsageError(f"{shard}: row {rows} has {len(row)} columns, the header "
                                 f"{width} (a cut-off or damaged shard)")
    except csv.Error as e:
        raise UsageError(f"{shard}: row {rows + 1} cannot be read ({e})") from None
    return rows


def merge_shards(output, format=None):
    """Join the shards of `output` (find_shards) into `output`, in order, atomically.

    Each shard is first checked against its record (write_shard_record): its own SHA-256
    (a shard cut short or changed), its place (a shard copied over another), one
    configuration and one set of inputs for all, every input in exactly one shard; and
    every row against the header's width. Anything else is a UsageError naming the shard.
    CSV and ARFF: the header once (every shard's must be the same) and then each shard's
    rows as they were written: the very bytes of one run over all the inputs. Parquet and
    .npz are read and written again: the same columns and values. Returns (the shard
    files, the rows written)."""
    fmt = output_format(output, format)
    shards = find_shards(output)
    records = [_shard_record(shard, i, len(shards)) for i, shard in enumerate(shards)]
    _check_records(output, shards, records)
    rows = 0
    with atomic_path(output) as tmp:
        if fmt in ("csv", "arff"):
            header = None
            with open(tmp, "wb") as out:
                for shard, record in zip(shards, records):
                    data = Path(shard).read_bytes()
                    head = _text_header(fmt, data.splitlines(keepends=True), shard)
                    if header is None:
                        header = head
                        out.writelines(header)
                    elif head != header:
                        raise UsageError(f"{shard}: its header differs from "
                                         f"{shards[0]}'s (another configuration or label "
                                         f"file?)")
                    body = data[sum(map(len, head)):]
                    count = _text_rows(fmt, head, body, shard)
                    if count != record["rows"]:
                        raise UsageError(f"{shard}: holds {count} rows, its record "
                                         f"{record['rows']}")
                    out.write(body)
                    rows += count
        elif fmt == "parquet":
            pa, pq = _pyarrow()
            tables = [pq.read_table(shard) for shard in shards]
            for shard, table in zip(shards[1:], tables[1:]):
                if not table.schema.equals(tables[0].schema):
                    raise UsageError(f"{shard}: its columns differ from {shards[0]}'s")
            merged = pa.concat_tables(tables)
            pq.write_table(merged, tmp, row_group_size=ROW_GROUP)
            rows = merged.num_rows
        else:
            parts = []
            for shard in shards:
                with np.load(shard, allow_pickle=False) as z:
                    parts.append({k: z[k] for k in z.files})
                part = parts[-1]
                if (part["features"].ndim != 2 or len(part["name"]) != len(part["features"])
                        or part["features"].shape[1] != len(part["feature_names"])):
                    raise UsageError(f"{shard}: features {part['features'].shape} do not fit "
                                     f"its {len(part['name'])} names and "
                                     f"{len(part['feature_names'])} columns")
            fixed = ("feature_names", "label_names")
            for shard, part in zip(shards[1:], parts[1:]):
                if part.keys() != parts[0].keys() or any(
                        not np.array_equal(part[k], parts[0][k]) for k in fixed):
                    raise UsageError(f"{shard}: its arrays differ from {shards[0]}'s")
            merged = {k: parts[0][k] if k in fixed else np.concatenate([p[k] for p in parts])
                      for k in parts[0]}
            with open(tmp, "wb") as f:
                np.savez(f, **merged)
            rows = len(merged["name"])
    return shards, rows
