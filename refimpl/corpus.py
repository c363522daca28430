"""Corpora as tables: which file, which speaker, which partition and fold, which labels.

The paper (sections 3.2, 3.3) evaluates every feature set on clean, noisy and denoised
versions of one corpus with speaker-independent partitions. This module is that data layer.

A corpus is one table, a row per utterance:

    file       the utterance's name (unique), e.g. "03a01Fa.wav"
    speaker    who speaks it; a speaker lies in one partition and one fold only
    partition  "train" or "test"
    fold       1 or 2 inside train (speaker-independent 2-fold cross-validation), 0 in test
    <task>     one label column per task, e.g. idl_neg = IDL / NEG
    path_clean, path_noisy, path_denoised
               the audio of each acoustic condition ("" where a condition is absent)

API (what the pipeline calls):

    corpus = load_corpus("emodb")                      # built in, reads ../shared/data/emodb
    corpus = load_corpus("emodb", root="/data/emodb")  # a user's copy (official layout)
    corpus = load_corpus("aibo", root="/data/aibo", noisy_dir="/data/aibo/room")
    corpus = load_corpus("my_corpus.csv")              # any corpus, from a manifest CSV
    corpus.name, corpus.tasks                          # tasks: name -> ordered class list
    corpus.rows                                        # list of dicts, columns as above
    y = corpus.labels("idl_neg")                       # int class indices into tasks[task]
    corpus.label_names("idl_neg"), corpus.speakers(), corpus.partitions(), corpus.folds()
    corpus.files(), corpus.audio_paths("noisy")        # every accessor takes partition=
    corpus.counts("idl_neg")                           # {"train": {"IDL": n, ...}, "test": ...}
    corpus.to_manifest("out.csv")                      # round-trips through load_corpus

    # the generated conditions of a built-in corpus (refimpl.conditions, refimpl.denoise)
    load_corpus("emodb", seed=0).audio_paths("noisy")  # <cache>/conditions/emodb/seed0/noisy/
    conditions.generate_noisy(corpus, seed=0)          # writes noisy/*.wav + noisy.csv
    denoise.generate_denoised(corpus, seed=0)          # writes denoised/*.wav + denoised.csv
    denoise.enhance(signal, denoise.load_model())      # one signal (16 kHz float)

Manifest CSV (a new corpus without code): the columns above; a task column is headed
`label:<task>` and may declare its classes in order, `label:<task>=IDL|NEG` (then any other
value is an error; without a declaration the classes are the sorted labels found). Relative
audio paths are relative to the manifest's folder. Other columns are kept but not used.
Every problem in a manifest is reported at once, one line per offending row.

Commands: `refimpl corpus check emodb|aibo|manifest.csv`, `refimpl corpus download emodb`,
`refimpl corpus conditions emodb --seed N` (refimpl.conditions, refimpl.denoise),
`refimpl corpus standin aibo -o DIR` (refimpl.aibo_standin).
"""
import csv
import hashlib
import json
import re
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refimpl import paths
from refimpl.cli import UserError
from refimpl.fileio import atomic_open, atomic_path

DATA_DIR = Path(__file__).resolve().parent / "data"
CONDITIONS = ("clean", "noisy", "denoised")
PARTITIONS = ("train", "test")
BASE_COLUMNS = ("file", "speaker", "partition", "fold")
LABEL_PREFIX = "label:"
DEFAULT_SEED = 0


class CorpusError(UserError):
    """A corpus or manifest with problems; the message lists every offending row."""


def read_json(name):
    with open(DATA_DIR / name, encoding="utf-8") as f:
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
            raise UserError(f"{self.name}: no task {task!r} (tasks: {', '.join(self.tasks)})")
        return self.tasks[task]

    def audio_paths(self, condition, partition=None, check=True):
        """The audio of one acoustic condition; with check, every file must exist."""
        if condition not in CONDITIONS:
            raise UserError(f"unknown condition {condition!r} (one of {', '.join(CONDITIONS)})")
        column = "path_" + condition
        rows = self._select(partition)
        result = [Path(r[column]) if r.get(column) else None for r in rows]
        if check:
            absent = [r["file"] for r, p in zip(rows, result) if p is None or not p.is_file()]
            if absent:
                hint = (f" (make it with `refimpl corpus conditions {self.name}`)"
                        if condition != "clean" else "")
                raise UserError(
                    f"{self.source or self.name}: {len(absent)} of {len(rows)} files have no "
                    f"{condition} audio{hint}, e.g. {', '.join(absent[:3])}")
        return result

    def subset(self, partition):
        return Corpus(self.name, self.tasks, self._select(partition), self.source, self.notes)

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
        lines = [f"  row {line} ({name}): {msg}" for line, name, msg in problems]
        nrows = len({(p[0], p[1]) for p in problems})
        raise CorpusError(f"{source}: {nrows} bad row(s), {len(problems)} problem(s):\n"
                          + "\n".join(lines))


def _finish(name, tasks, rows, source, check_files=True, notes=None):
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


def _parse_fold(raw):
    raw = (raw or "").strip()
    if raw in ("", "0"):
        return 0
    try:
        return int(raw)
    except ValueError:
        return raw   # reported by validate


def from_manifest(path, check_files=True):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        raw_rows = list(reader)
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
               "partition": r["partition"], "fold": _parse_fold(r["fold"]),
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
    return _finish(name, tasks, rows, str(path), check_files=check_files)


# ----------------------------------------------------------------------------------------
# EmoDB


def emodb_root(root=None):
    return Path(root).expanduser().resolve() if root else paths.shared_data() / "emodb"


def conditions_dir(name, seed=DEFAULT_SEED):
    """Where the generated noisy and denoised audio of a built-in corpus lives."""
    return paths.cache_dir() / "conditions" / name / f"seed{int(seed)}"


def emodb(root=None, seed=DEFAULT_SEED, check_files=True):
    """EmoDB from its official layout (root/wav/SSTTTEV.wav); labels from the file names."""
    spec = read_json("emodb.json")
    root = emodb_root(root)
    wav_dir = root / spec["audio_dir"]
    if not wav_dir.is_dir():
        raise UserError(f"{wav_dir}: EmoDB audio folder not found (give --root, or run "
                        f"`refimpl corpus download emodb --dest DIR`)")
    emotions = {r["code"]: r for r in read_csv_rows(DATA_DIR / spec["emotion_table"])}
    speakers = {r["speaker"]: r for r in read_csv_rows(DATA_DIR / spec["speaker_table"])}
    pattern = re.compile(spec["file_pattern"])
    tasks = {t: d["classes"] for t, d in spec["tasks"].items()}
    cond_dir = conditions_dir("emodb", seed)
    rows, problems = [], []
    for i, wav in enumerate(sorted(wav_dir.glob("*.wav")), start=1):
        m = pattern.match(wav.name)
        if not m:
            problems.append(f"  {wav.name}: not an EmoDB file name (SSTTTEV.wav)")
            continue
        emo = emotions.get(m["code"])
        spk = speakers.get(m["speaker"])
        if emo is None or spk is None:
            problems.append(f"  {wav.name}: unknown "
                            + ("emotion letter " + m["code"] if emo is None
                               else "speaker " + m["speaker"]))
            continue
        row = {"_row": i, "file": wav.name, "speaker": m["speaker"],
               "partition": spk["partition"], "fold": _parse_fold(spk["fold"]),
               "gender": spk["gender"], "emotion_code": m["code"]}
        for task, d in spec["tasks"].items():
            row[task] = emo[d["column"]]
        row["path_clean"] = str(wav)
        row["path_noisy"] = str(cond_dir / "noisy" / wav.name)
        row["path_denoised"] = str(cond_dir / "denoised" / wav.name)
        rows.append(row)
    if problems:
        raise CorpusError(f"{wav_dir}: {len(problems)} unexpected file(s):\n" + "\n".join(problems))
    if not rows:
        raise UserError(f"{wav_dir}: no .wav files")
    # Generated conditions may not exist yet: only the clean audio is required here.
    corpus = _finish("emodb", tasks, rows, str(wav_dir), check_files=False)
    if check_files:
        validate([dict(r, path_noisy="", path_denoised="") for r in corpus.rows], tasks,
                 str(wav_dir))
    return corpus


def audio_sha256(path):
    """SHA-256 of a file's decoded 16-bit samples: independent of the WAV header's layout."""
    import soundfile as sf
    samples, _ = sf.read(str(path), dtype="int16", always_2d=True)
    return hashlib.sha256(np.ascontiguousarray(samples).tobytes()).hexdigest()


def download_emodb(dest, url=None, sha256=None, progress=True, reference=None):
    """Download the official EmoDB archive, check it, unpack it to dest (dest/wav/...).

    The archive's SHA-256 is checked when known (emodb.json, or sha256=); the audio is always
    checked against emodb_audio_sha256.csv. Everything lands atomically: an interrupted
    download leaves nothing behind.
    """
    spec = read_json("emodb.json")
    url = url or spec["archive_url"]
    expected = (sha256 or spec.get("archive_sha256") or "").lower() or None
    dest = Path(dest).expanduser().resolve()
    if (dest / spec["audio_dir"]).is_dir():
        raise UserError(f"{dest / spec['audio_dir']}: already exists; remove it or pick --dest")
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "download.zip"
    digest = hashlib.sha256()
    with atomic_path(archive) as tmp:
        try:
            response = urllib.request.urlopen(url, timeout=60)
        except OSError as e:
            raise UserError(f"{url}: download failed ({e})") from None
        with response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            from tqdm import tqdm
            with tqdm(total=total, unit="B", unit_scale=True, desc="EmoDB",
                      disable=not progress) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        got = digest.hexdigest()
        if expected and got != expected:
            raise UserError(f"{url}: SHA-256 {got} differs from the expected {expected}")
    print(f"archive SHA-256 {got}" + (" (matches)" if expected else " (not pinned)"))
    unpack_emodb(archive, dest, reference=reference)
    return dest


def unpack_emodb(archive, dest, reference=None):
    """Unzip into a temporary folder beside dest, check the audio, then move wav/ into place.

    reference: {file name: audio_sha256}, by default emodb_audio_sha256.csv (all 535 files).
    """
    spec = read_json("emodb.json")
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix=".emodb-unpack-", dir=dest) as tmp:
        try:
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    target = (Path(tmp) / member).resolve()
                    if not str(target).startswith(str(Path(tmp).resolve())):
                        raise UserError(f"{archive}: unsafe path in archive: {member}")
                z.extractall(tmp)
        except zipfile.BadZipFile as e:
            raise UserError(f"{archive}: not a zip archive ({e})") from None
        wavs = sorted(Path(tmp).rglob("*.wav"))
        if not wavs:
            raise UserError(f"{archive}: no .wav files inside")
        if reference is None:
            reference = {r["file"]: r["sha256"]
                         for r in read_csv_rows(DATA_DIR / "emodb_audio_sha256.csv")}
        found = {w.name: w for w in wavs}
        bad = [f"  {n}: missing from the archive" for n in sorted(set(reference) - set(found))]
        bad += [f"  {n}: audio differs from the reference copy" for n, w in sorted(found.items())
                if n in reference and audio_sha256(w) != reference[n]]
        bad += [f"  {n}: not an EmoDB file" for n in sorted(set(found) - set(reference))]
        if bad:
            raise CorpusError(f"{archive}: {len(bad)} problem(s):\n" + "\n".join(bad))
        wav_dir = wavs[0].parent
        shutil.move(str(wav_dir), str(dest / spec["audio_dir"]))
    return dest / spec["audio_dir"]


# ----------------------------------------------------------------------------------------
# FAU-AIBO (Interspeech 2009 Emotion Challenge distribution)


def _read_aibo_labels(path):
    """chunk_labels_*_corpus.txt: '<chunk_id> <label> <confidence>' per line."""
    if not path.is_file():
        raise UserError(f"{path}: FAU-AIBO label file not found")
    labels, problems = {}, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                problems.append(f"  line {n}: expected '<chunk_id> <label> <confidence>'")
                continue
            labels[parts[0]] = (parts[1], n)
    if problems:
        raise CorpusError(f"{path}: {len(problems)} bad line(s):\n" + "\n".join(problems))
    return labels


def aibo(root, clean_dir=None, noisy_dir=None, matched=None, check_files=True):
    """FAU-AIBO: train = school Ohm, test = school Mont, folds by speaker number.

    With noisy_dir (room microphone), the corpus is restricted to the chunks present in both
    recordings (the paper's matched utterances) unless matched=False.
    """
    spec = read_json("aibo.json")
    root = Path(root).expanduser().resolve()
    lay = spec["layout"]
    clean_dir = Path(clean_dir) if clean_dir else root / lay["clean_dir"]
    noisy_dir = Path(noisy_dir) if noisy_dir else None
    matched = (noisy_dir is not None) if matched is None else matched
    tasks = {t: d["classes"] for t, d in spec["tasks"].items()}
    per_task = {t: _read_aibo_labels(root / lay[d["label_file"]])
                for t, d in spec["tasks"].items()}
    first = next(iter(per_task))
    ids = set(per_task[first])
    problems = []
    for t, lab in per_task.items():
        for cid in sorted(set(lab) ^ ids):
            problems.append(f"  {cid}: listed for task {first if cid in ids else t} only")
    if problems:
        raise CorpusError(f"{root}: the label files disagree on {len(problems)} chunk(s):\n"
                          + "\n".join(problems))
    fold_of = {}
    for fold in ("1", "2"):
        lo, hi = spec["folds"][fold]
        for n in range(lo, hi + 1):
            fold_of[n] = int(fold)
    rows, dropped = [], 0
    for cid in sorted(ids, key=lambda c: per_task[first][c][1]):
        line = per_task[first][cid][1]
        parts = cid.split("_")
        school = parts[0]
        partition = {"Ohm": "train", "Mont": "test"}.get(school, school)
        try:
            number = int(parts[1])
        except (IndexError, ValueError):
            number = None
        row = {"_row": line, "file": cid + ".wav", "speaker": "_".join(parts[:2]),
               "partition": partition, "school": school}
        if partition == "train":
            row["fold"] = fold_of.get(number, 0)
            row["fold_raw"] = (str(row["fold"]) if row["fold"] else
                               f"none: speaker number {parts[1] if len(parts) > 1 else '?'} "
                               f"is outside the paper's 1-16 / 18-32")
        else:
            row["fold"] = 0
        for t in tasks:
            row[t] = per_task[t][cid][0]
        row["path_clean"] = str(clean_dir / (cid + ".wav"))
        if noisy_dir is not None:
            noisy = noisy_dir / (cid + ".wav")
            if matched and not (noisy.is_file() and Path(row["path_clean"]).is_file()):
                dropped += 1
                continue
            row["path_noisy"] = str(noisy)
        rows.append(row)
    notes = [f"{dropped} chunk(s) dropped: not in both the close-talk and room-microphone "
             f"recordings"] if noisy_dir is not None else []
    return _finish("aibo", tasks, rows, str(root), check_files=check_files, notes=notes)


# ----------------------------------------------------------------------------------------
# Entry point


def load_corpus(name_or_manifest, root=None, seed=DEFAULT_SEED, **kwargs):
    """'emodb', 'aibo' (root= the licensed copy) or the path of a manifest CSV."""
    key = str(name_or_manifest)
    if key == "emodb":
        return emodb(root, seed=seed, **kwargs)
    if key == "aibo":
        if root is None:
            raise UserError("aibo: give the folder of your licensed FAU-AIBO copy (--root)")
        return aibo(root, **kwargs)
    if key.endswith(".csv") or Path(key).is_file():
        return from_manifest(key, **kwargs)
    raise UserError(f"{key}: neither a built-in corpus (emodb, aibo) nor a manifest CSV")


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


def check(corpus, out=None):
    """Print the count table and compare with the published counts; True when they agree."""
    out = out or sys.stdout
    for line in count_table(corpus):
        print(line, file=out)
    for note in corpus.notes:
        print(f"  note: {note}", file=out)
    if corpus.name == "emodb":
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
            print(f"  MISMATCH with {source}:", file=out)
            for line in bad:
                print(f"    {line}", file=out)
        else:
            print(f"  counts agree with {source}", file=out)
    return ok


# ----------------------------------------------------------------------------------------
# Command line


def _cmd_check(args):
    kwargs = {}
    if args.corpus == "aibo":
        kwargs = {"clean_dir": args.clean_dir, "noisy_dir": args.noisy_dir}
    corpus = load_corpus(args.corpus, root=args.root, **kwargs)
    return 0 if check(corpus) else 1


def _cmd_download(args):
    if args.corpus != "emodb":
        raise UserError(f"{args.corpus}: only EmoDB can be downloaded (FAU-AIBO is licensed)")
    dest = download_emodb(args.dest, url=args.url, sha256=args.sha256)
    print(f"EmoDB unpacked to {dest}; use it with --root {dest}")
    return 0


def _cmd_conditions(args):
    from refimpl import conditions
    return conditions.run_conditions_command(args)


def register(subparsers):
    p = subparsers.add_parser("corpus", help="corpora: check counts, download, make conditions")
    sub = p.add_subparsers(dest="corpus_command", required=True)

    c = sub.add_parser("check", help="print partition and per-class counts and compare them "
                                     "with the published ones")
    c.add_argument("corpus", help="emodb, aibo, or a manifest CSV")
    c.add_argument("--root", help="the corpus folder (EmoDB: default ../shared/data/emodb)")
    c.add_argument("--clean-dir", help="FAU-AIBO close-talk audio (default ROOT/wav)")
    c.add_argument("--noisy-dir", help="FAU-AIBO room-microphone audio; restricts to matched chunks")
    c.set_defaults(func=_cmd_check)

    d = sub.add_parser("download", help="download and unpack the official EmoDB archive")
    d.add_argument("corpus", choices=["emodb"])
    d.add_argument("--dest", required=True, help="folder to unpack into (gets wav/)")
    d.add_argument("--url", help="archive URL (default: the official one)")
    d.add_argument("--sha256", help="expected SHA-256 of the archive")
    d.set_defaults(func=_cmd_download)

    g = sub.add_parser("conditions", help="generate the noisy and denoised conditions")
    g.add_argument("corpus", choices=["emodb"])
    g.add_argument("--root", help="EmoDB folder (default ../shared/data/emodb)")
    g.add_argument("--seed", type=int, default=DEFAULT_SEED)
    g.add_argument("--only", choices=["noisy", "denoised"], help="generate one condition only")
    g.add_argument("--limit", type=int, help="only the first N files (a quick look)")
    g.add_argument("--noise-root", help="background-noise folder (default ../shared/data/noise)")
    g.set_defaults(func=_cmd_conditions)

    from refimpl import aibo_standin      # here: it imports this module
    aibo_standin.add_arguments(sub.add_parser(
        "standin", help="generate a stand-in corpus in FAU-AIBO's layout (EmoDB audio) at "
                        "the paper's scale, for cost and the AIBO code path, not for UARs"))
