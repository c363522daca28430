"""The corpus table: one row per utterance, its speaker, partition, fold, labels and the
audio of each acoustic condition; validation that reports every bad row at once; the
manifest CSV that describes any corpus without code; count tables.
"""
import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refimpl._util.atomic import atomic_open
from refimpl._util.files import check_regular
from refimpl._util.digest import text_digest
from refimpl._util.locations import package_data
from refimpl.errors import CorpusError

__all__ = ["Corpus", "CorpusError", "CONDITIONS", "PARTITIONS", "DEFAULT_SEED", "validate",
           "build_corpus", "parse_fold",
           "from_manifest", "count_table", "compare_counts", "check", "read_json",
           "read_csv_rows"]

CONDITIONS = ("clean", "noisy", "denoised")
PARTITIONS = ("train", "test")
BASE_COLUMNS = ("file", "speaker", "partition", "fold")
LABEL_PREFIX = "label:"
DEFAULT_SEED = 0


def read_json(name):
    """A JSON table of refimpl/data/."""
    with open(package_data(name), encoding="utf-8") as f:
        return json.load(f)


def read_csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------------------
# The corpus table


@dataclass
class Corpus:
    name: str
    tasks: dict            # task name -> list of class names, in order
    rows: list             # one dict per utterance (see the module docstring)
    source: str = ""       # where the table came from, for messages
    notes: list = field(default_factory=list)   # what was dropped or assumed while loading

    def __len__(self):
        return len(self.rows)

    def _select(self, partition):
        if partition is None:
            return self.rows
        if partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {PARTITIONS}, not {partition!r}")
        return [r for r in self.rows if r["partition"] == partition]

    def files(self, partition=None):
        return [r["file"] for r in self._select(partition)]

    def speakers(self, partition=None):
        return np.array([r["speaker"] for r in self._select(partition)])

    def partitions(self, partition=None):
        return np.array([r["partition"] for r in self._select(partition)])

    def folds(self, partition=None):
        return np.array([int(r["fold"]) for r in self._select(partition)], dtype=np.int64)

    def label_names(self, task, partition=None):
        self._check_task(task)
        return np.array([r[task] for r in self._select(partition)])

    def labels(self, task, partition=None):
        """Class indices into self.tasks[task] (int64)."""
        index = {c: i for i, c in enumerate(self._check_task(task))}
        return np.array([index[r[task]] for r in self._select(partition)], dtype=np.int64)

    def _check_task(self, task):
        if task not in self.tasks:
            raise CorpusError(f"{self.name}: no task {task!r} (tasks: {', '.join(self.tasks)})")
        return self.tasks[task]

    def audio_paths(self, condition, partition=None, check=True):
        """The audio of one acoustic condition; with check, every file must exist."""
        if condition not in CONDITIONS:
            raise CorpusError(f"unknown condition {condition!r} (one of {', '.join(CONDITIONS)})")
        column = "path_" + condition
        rows = self._select(partition)
        result = [Path(r[column]) if r.get(column) else None for r in rows]
        if check:
            absent = [r["file"] for r, p in zip(rows, result) if p is None or not p.is_file()]
            if absent:
                hint = (f" (make it with `refimpl corpus conditions {self.name}`)"
                        if condition != "clean" else "")
                raise CorpusError(
                    f"{self.source or self.name}: {len(absent)} of {len(rows)} files have no "
                    f"{condition} audio{hint}, e.g. {', '.join(absent[:3])}")
        return result

    def subset(self, partition):
        return Corpus(self.name, self.tasks, self._select(partition), self.source, self.notes)

    def without(self, files):
        """The corpus minus the utterances named in `files` (e.g. those that failed)."""
        drop = set(files)
        return Corpus(self.name, self.tasks, [r for r in self.rows if r["file"] not in drop],
                      self.source, self.notes)

    def task_order(self):
        """Tasks by number of classes (the 2-class task first, as the paper's tables and
        figures are), each with its display name: {task: "<n>-class"}."""
        order = sorted(self.tasks, key=lambda t: (len(self.tasks[t]), t))
        return {t: f"{len(self.tasks[t])}-class" for t in order}

    def fingerprint(self):
        """Digest of everything about the corpus that results depend on: files, speakers,
        partitions, folds and labels, in order (not the audio paths)."""
        columns = [self.files(), self.speakers().tolist(), self.partitions().tolist(),
                   [str(f) for f in self.folds().tolist()]]
        columns += [self.label_names(t).tolist() for t in sorted(self.tasks)]
        text = "\x1e".join("\x1f".join(c) for c in columns) + json.dumps(sorted(self.tasks))
        return text_digest(text, 64)

    def counts(self, task):
        """{partition: {class: number of utterances}} in class order."""
        classes = self._check_task(task)
        out = {}
        for part in PARTITIONS:
            names = [r[task] for r in self._select(part)]
            out[part] = {c: names.count(c) for c in classes}
        return out

    def to_manifest(self, path):
        """Write the table as a manifest CSV that load_corpus reads back unchanged."""
        task_cols = [f"{LABEL_PREFIX}{t}={'|'.join(c)}" for t, c in self.tasks.items()]
        extra = [k for k in self.rows[0] if k not in BASE_COLUMNS and k not in self.tasks
                 and not k.startswith("path_")] if self.rows else []
        header = list(BASE_COLUMNS) + task_cols + [f"path_{c}" for c in CONDITIONS] + extra
        with atomic_open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            for r in self.rows:
                fold = r["fold"] if r["partition"] == "train" else ""
                w.writerow([r["file"], r["speaker"], r["partition"], fold]
                           + [r[t] for t in self.tasks]
                           + [r.get(f"path_{c}", "") for c in CONDITIONS]
                           + [r.get(k, "") for k in extra])


def validate(rows, tasks, source, check_files=True):
    """Collect every problem of a table and raise one CorpusError listing them all.

    rows are dicts with 'fold' already an int (0 where absent) and '_row' the line number
    of the row in its source (for messages).
    """
    problems = []   # (line, file, message)

    def bad(r, message):
        problems.append((r.get("_row", "?"), r.get("file", ""), message))

    seen = {}
    for r in rows:
        if not r.get("file"):
            bad(r, "empty file name")
        elif r["file"] in seen:
            bad(r, f"duplicate file (also row {seen[r['file']]})")
        else:
            seen[r["file"]] = r.get("_row", "?")
        if not r.get("speaker"):
            bad(r, "empty speaker")
        if r.get("partition") not in PARTITIONS:
            bad(r, f"partition {r.get('partition')!r} is neither train nor test")
        elif r["partition"] == "train" and r.get("fold") not in (1, 2):
            bad(r, f"training row needs fold 1 or 2, not {r.get('fold_raw', r.get('fold'))!r}")
        elif r["partition"] == "test" and r.get("fold") not in (0,):
            bad(r, f"test row must have no fold, not {r.get('fold_raw', r.get('fold'))!r}")
        for task, classes in tasks.items():
            value = r.get(task, "")
            if value not in classes:
                bad(r, f"unknown label {value!r} for task {task} (classes: {'|'.join(classes)})")
        if check_files:
            for cond in CONDITIONS:
                p = r.get("path_" + cond)
                if cond == "clean" and not p:
                    bad(r, "no clean audio path")
                elif p and not Path(p).is_file():
                    bad(r, f"missing {cond} audio file {p}")

    # Speaker independence: a speaker in one partition, and in one inner fold.
    for key, what in (("partition", "both partitions"), ("fold", "both inner folds")):
        where = {}
        for r in rows:
            if key == "fold" and r.get("partition") != "train":
                continue
            where.setdefault(r.get("speaker"), set()).add(r.get(key))
        for r in rows:
            if key == "fold" and r.get("partition") != "train":
                continue
            if len(where.get(r.get("speaker"), ())) > 1:
                bad(r, f"speaker {r['speaker']} is in {what} "
                       f"({', '.join(sorted(map(str, where[r['speaker']])))})")

    if problems:
        problems.sort(key=lambda p: (p[0] if isinstance(p[0], int) else 10**9))
        lines = [f"{source}: row {line} ({name}): {msg}" for line, name, msg in problems]
        nrows = len({(p[0], p[1]) for p in problems})
        raise CorpusError(f"{source}: {nrows} bad row(s), {len(problems)} problem(s):\n"
                          + "\n".join(lines))


def build_corpus(name, tasks, rows, source, check_files=True, notes=None):
    validate(rows, tasks, source, check_files=check_files)
    for r in rows:
        r.pop("_row", None)
        r.pop("fold_raw", None)
        for cond in CONDITIONS:
            r.setdefault("path_" + cond, "")
    return Corpus(name, tasks, rows, source, notes or [])


# ----------------------------------------------------------------------------------------
# Any corpus: a manifest CSV


def _parse_label_header(column):
    """'label:idl_neg=IDL|NEG' -> ('idl_neg', ['IDL', 'NEG']); undeclared -> (task, None)."""
    spec = column[len(LABEL_PREFIX):]
    task, _, classes = spec.partition("=")
    return task.strip(), ([c for c in classes.split("|")] if classes else None)


def parse_fold(raw):
    raw = (raw or "").strip()
    if raw in ("", "0"):
        return 0
    try:
        return int(raw)
    except ValueError:
        return raw   # reported by validate


def from_manifest(path, check_files=True):
    path = Path(path)
    try:
        check_regular(path)      # a FIFO or device would block or never end
    except FileNotFoundError:
        raise CorpusError(f"{path}: manifest not found") from None
    except OSError as e:
        raise CorpusError(f"{path}: cannot read the manifest ({e.strerror})") from None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            raw_rows = list(reader)
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not a UTF-8 text manifest (byte {e.start} is "
                          f"{e.object[e.start:e.start + 1]!r})") from None
    except csv.Error as e:
        raise CorpusError(f"{path}: not a CSV manifest ({e})") from None
    missing = [c for c in BASE_COLUMNS + ("path_clean",) if c not in header]
    label_cols = [c for c in header if c.startswith(LABEL_PREFIX)]
    if missing or not label_cols:
        what = ", ".join(missing) + (", " if missing and not label_cols else "")
        what += "" if label_cols else "a label:<task> column"
        raise CorpusError(f"{path}: missing column(s) {what}")
    tasks = {}
    for col in label_cols:
        task, classes = _parse_label_header(col)
        if classes is None:
            classes = sorted({r[col] for r in raw_rows if r[col]})
        tasks[task] = classes
    rows = []
    base = path.resolve().parent
    for i, raw in enumerate(raw_rows, start=2):   # line 1 is the header
        r = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        row = {"_row": i, "file": r["file"], "speaker": r["speaker"],
               "partition": r["partition"], "fold": parse_fold(r["fold"]),
               "fold_raw": r["fold"]}
        for col in label_cols:
            row[_parse_label_header(col)[0]] = r[col]
        for cond in CONDITIONS:
            p = r.get("path_" + cond, "")
            row["path_" + cond] = str((base / p)) if p and not Path(p).is_absolute() else p
        for k, v in r.items():
            if k not in BASE_COLUMNS and k not in label_cols and not k.startswith("path_"):
                row[k] = v
        rows.append(row)
    name = path.stem
    return build_corpus(name, tasks, rows, str(path), check_files=check_files)


# ----------------------------------------------------------------------------------------
# Checking counts


def count_table(corpus):
    """Lines describing partitions, speakers, folds and per-class counts."""
    lines = [f"corpus {corpus.name}: {len(corpus)} utterances ({corpus.source})"]
    for part in PARTITIONS:
        sub = corpus._select(part)
        spk = sorted({r["speaker"] for r in sub})
        lines.append(f"  {part:5s} {len(sub):6d} utterances, {len(spk)} speakers: {' '.join(spk)}")
        if part == "train":
            for fold in (1, 2):
                fs = [r for r in sub if r["fold"] == fold]
                fspk = sorted({r["speaker"] for r in fs})
                lines.append(f"        fold {fold} {len(fs):6d} utterances, {len(fspk)} speakers: "
                             f"{' '.join(fspk)}")
    for task, classes in corpus.tasks.items():
        counts = corpus.counts(task)
        width = max(6, *(len(c) for c in classes))
        lines.append(f"  task {task}:")
        lines.append("    " + " " * 6 + "".join(f"{c:>{width + 1}s}" for c in classes) + "   total")
        for part in PARTITIONS:
            lines.append(f"    {part:6s}" + "".join(f"{counts[part][c]:>{width + 1}d}" for c in classes)
                         + f"{sum(counts[part].values()):8d}")
    return lines


def compare_counts(corpus, expected):
    """Compare a corpus's counts with a published table; returns mismatch lines ([] = equal).

    expected: {"train"/"test": {"total": n, task: {class: n} or None}} or, for EmoDB, the
    whole-corpus form {"total": n, task: {class: n}}. None entries are not checked.
    """
    bad = []
    if "train" in expected or "test" in expected:
        for part in PARTITIONS:
            exp = expected.get(part) or {}
            sub = corpus.subset(part)
            if exp.get("total") is not None and len(sub) != exp["total"]:
                bad.append(f"{part}: {len(sub)} utterances, expected {exp['total']}")
            for task in corpus.tasks:
                if exp.get(task):
                    got = sub.counts(task)[part]
                    for c, n in exp[task].items():
                        if got.get(c) != n:
                            bad.append(f"{part} {task} {c}: {got.get(c)}, expected {n}")
    else:
        if expected.get("total") is not None and len(corpus) != expected["total"]:
            bad.append(f"{len(corpus)} utterances, expected {expected['total']}")
        for task in corpus.tasks:
            if expected.get(task):
                got = corpus.counts(task)
                for c, n in expected[task].items():
                    total = got["train"][c] + got["test"][c]
                    if total != n:
                        bad.append(f"{task} {c}: {total}, expected {n}")
    return bad


def check(corpus, expected=None):
    """The count table compared with the published counts: (True when they agree, the
    report's lines: the table, the corpus's notes, then agreement or each mismatch).

    expected: (source, counts as compare_counts takes them) to compare with instead of the
    published ones (e.g. a generated stand-in's scaled counts).
    """
    lines = list(count_table(corpus))
    lines += [f"  note: {note}" for note in corpus.notes]
    if expected is not None:
        sets = [expected]
    elif corpus.name == "emodb":
        exp = read_json("emodb.json")["expected_counts"]
        sets = [("EmoDB documentation", exp)]
    elif corpus.name == "aibo":
        exp = read_json("aibo.json")["expected_counts"]
        key = "matched" if any(r.get("path_noisy") for r in corpus.rows) else "challenge"
        sets = [(exp[key]["source"], exp[key])]
    else:
        sets = []
    ok = True
    for source, table in sets:
        bad = compare_counts(corpus, table)
        if bad:
            ok = False
            lines.append(f"  MISMATCH with {source}:")
            lines += [f"    {line}" for line in bad]
        else:
            lines.append(f"  counts agree with {source}")
    return ok, lines

