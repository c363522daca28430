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
"""
import contextlib
import csv
import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from refimpl._util.atomic import atomic_path
from refimpl._util.optional import optional_import
from refimpl.errors import UsageError
from refimpl.features.inputs import label_number

__all__ = ["FORMATS", "ARFF_RELATION", "ROW_GROUP", "output_format", "open_writer",
           "FeatureWriter", "CsvWriter", "ArffWriter", "ParquetWriter", "NpzWriter", "WRITERS",
           "RowSpool", "parquet_modules"]

FORMATS = ("csv", "arff", "parquet", "npz")
ARFF_RELATION = "Deep Spectrum Features"
ROW_GROUP = 256


def output_format(path, format=None):
    """`format`, or the one the path's suffix names; a UsageError for anything else."""
    fmt = format or Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"{path}: cannot tell the output format from the suffix; name the "
                         f"file .csv, .arff, .parquet or .npz, or pass --format")
    return fmt



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


def parquet_modules():
    """(pyarrow, pyarrow.parquet), or MissingDependency saying how to install them."""
    why = "Parquet output (or write .csv, .arff or .npz)"
    return optional_import("pyarrow", why), optional_import("pyarrow.parquet", why)


class ParquetWriter(FeatureWriter):
    def _open(self):
        pa, pq = parquet_modules()
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
        pa, _ = parquet_modules()
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


class RowSpool:
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
        self._spool = RowSpool(self.path.parent, len(self.neuron_names))
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


