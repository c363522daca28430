"""Stage 5 — features: speech files in, deep spectrum vectors out.

audio -> image -> blob -> network (fc7 after ReLU) -> one 4096-d row per file (or per
window with --window/--hop), written as the DeepSpectrum toolkit wrote them:
CSV columns `name`, `timeStamp` (windowed only), `neuron_0` .. `neuron_4095`, `class`;
or ARFF with the same attributes. A file that cannot be used is reported by name and
skipped; the others still come out, and outputs are written atomically.
"""
import csv
import queue
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from refimpl._util.atomic import atomic_open
from refimpl.audio import read_audio, windows
from refimpl.errors import AudioError, ImageError, LabelError, UsageError
from refimpl.image import DEFAULT_OPTIONS, render_image
from refimpl.network.spec import FEATURE_DIM

__all__ = ["find_audio", "read_labels", "label_for", "Extraction", "file_images", "extract",
           "write_csv", "write_arff", "write_features", "AUDIO_SUFFIXES"]

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".au"}
ARFF_RELATION = "Deep Spectrum Features"


# ------------------------------------------------------------------------------ inputs

def find_audio(inputs):
    """Files and folders (searched recursively) -> sorted list of audio files."""
    found = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES))
        elif p.exists():
            found.append(p)
        else:
            raise AudioError(f"{p}: no such file or folder")
    return found


def read_labels(path):
    """Label file -> {file name: label}. CSV (comma, semicolon or tab) whose first column
    is the file name (with or without folder and extension) and second the label; a
    header row is recognised by its first cell being 'name' or 'file'."""
    try:
        lines = [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError as e:
        raise LabelError(f"{path}: not a UTF-8 text label file (byte {e.start})") from None
    if not lines:
        raise LabelError(f"{path}: empty label file")
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
        rows = [r for r in csv.reader(lines, dialect) if r]
    except csv.Error:
        raise LabelError(f"{path}: no label column (line 1 has no comma, semicolon or tab "
                         "between a file name and a label)") from None
    if rows and rows[0][0].strip().lower() in ("name", "file", "filename"):
        rows = rows[1:]
    labels = {}
    for i, r in enumerate(rows, 1):
        if len(r) < 2:
            raise LabelError(f"{path}: row {i} has no label column: {r}")
        labels[Path(r[0].strip()).name] = r[1].strip()
    return labels


def label_for(labels, file):
    if labels is None:
        return "?"
    file = Path(file)
    for key in (file.name, file.stem):
        if key in labels:
            return labels[key]
    raise LabelError(f"{file}: no label in the label file")


# --------------------------------------------------------------------------- pipeline

@dataclass
class Extraction:
    names: list = field(default_factory=list)       # file name per row
    timestamps: list = field(default_factory=list)  # window start (s) per row, or None
    labels: list = field(default_factory=list)
    rows: list = field(default_factory=list)        # float32 (4096,) per row
    failed: list = field(default_factory=list)      # (file, reason)

    @property
    def matrix(self):
        return np.stack(self.rows) if self.rows else np.zeros((0, FEATURE_DIM), np.float32)

    @property
    def dim(self):
        return len(self.rows[0]) if self.rows else FEATURE_DIM


def file_images(file, options=DEFAULT_OPTIONS, window=None, hop=None, trim_zeros=False,
                renderer="auto"):
    """-> [(window start in s, or None; image)] for one file. Raises AudioError or
    ImageError (naming the file) if it cannot be used. renderer: see image.render_image
    ('auto' computes matplotlib's pixels directly where that is proven identical)."""
    audio = read_audio(file, trim_zeros=trim_zeros)
    parts = windows(audio, window, hop or window) if window else [(None, audio)]
    return [(start, render_image(a.signal, a.rate, options, name=str(file), renderer=renderer))
            for start, a in parts]


def _produce_images(files, queue, stop, make_images):
    """Producer thread: (file, images or the error) for each file, in order, then None."""
    try:
        for f in files:
            if stop.is_set():
                return
            try:
                item = (f, make_images(f), None)
            except (AudioError, ImageError) as e:
                item = (f, None, e)
            queue.put(item)
    except BaseException as e:  # an unexpected failure: hand it to the consumer
        queue.put((None, None, e))
        return
    queue.put(None)


def extract(files, network, *, labels=None, options=DEFAULT_OPTIONS, window=None, hop=None,
            batch=32, trim_zeros=False, progress=True, prefetch=64,
            renderer="auto"):
    """Deep spectrum features of `files` through `network` (an open backend).

    Images are made in a producer thread while the network runs on the previous batch
    (the network's work happens outside the GIL: in the Caffe worker process, or in BLAS
    and the C core), gathered into batches of `batch` images. The queue between them holds
    at most `prefetch` files, so memory stays bounded on any corpus size."""
    result = Extraction()
    pending = []  # (file, start, image) waiting for a forward pass

    def flush():
        rows = np.asarray(network.features(np.stack([img for _, _, img in pending])),
                          dtype=np.float32)
        for (f, start, _), row in zip(pending, rows):
            result.names.append(Path(f).name)
            result.timestamps.append(start)
            result.labels.append(label_for(labels, f))
            result.rows.append(row)
        pending.clear()

    def make_images(f):
        return file_images(f, options, window, hop, trim_zeros, renderer)

    q = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()
    producer = threading.Thread(target=_produce_images, args=(files, q, stop, make_images),
                                daemon=True)
    producer.start()
    try:
        with tqdm(total=len(files), unit="file", disable=not progress, file=sys.stderr) as bar:
            while (item := q.get()) is not None:
                f, images, error = item
                if f is None:
                    raise error
                bar.update(1)
                if error is not None:
                    result.failed.append((str(f), str(error)))
                    continue
                for start, image in images:
                    pending.append((f, start, image))
                    if len(pending) >= batch:
                        flush()
        if pending:
            flush()
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                producer.join(0.05)
    return result


# ---------------------------------------------------------------------------- writers

def _fmt(x):
    # 9 significant digits round-trip any float32 exactly.
    return format(float(x), ".9g")


def write_csv(result, path, windowed=False):
    header = ["name"] + (["timeStamp"] if windowed else []) + \
             [f"neuron_{i}" for i in range(result.dim)] + ["class"]
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for name, ts, label, row in zip(result.names, result.timestamps, result.labels, result.rows):
            w.writerow([name] + ([_fmt(ts)] if windowed else []) + [_fmt(v) for v in row] + [label])


def _arff_quote(s):
    return "'" + str(s).replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_arff(result, path, windowed=False):
    classes = sorted(set(result.labels) - {"?"})
    with atomic_open(path, "w") as f:
        f.write(f"@relation {_arff_quote(ARFF_RELATION)}\n\n")
        f.write("@attribute name string\n")
        if windowed:
            f.write("@attribute timeStamp numeric\n")
        for i in range(result.dim):
            f.write(f"@attribute neuron_{i} numeric\n")
        if classes:
            f.write("@attribute class {" + ",".join(_arff_quote(c) for c in classes) + "}\n")
        else:
            f.write("@attribute class numeric\n")
        f.write("\n@data\n")
        for name, ts, label, row in zip(result.names, result.timestamps, result.labels, result.rows):
            cells = [_arff_quote(name)] + ([_fmt(ts)] if windowed else []) + \
                    [_fmt(v) for v in row] + [_arff_quote(label) if label != "?" else "?"]
            f.write(",".join(cells) + "\n")


def write_features(result, path, windowed=False):
    path = Path(path)
    if path.suffix.lower() == ".arff":
        write_arff(result, path, windowed)
    elif path.suffix.lower() == ".csv":
        write_csv(result, path, windowed)
    else:
        raise UsageError(f"{path}: output must end in .csv or .arff")
