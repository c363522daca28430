"""FAU-AIBO as distributed for the Interspeech 2009 Emotion Challenge (licensed: bring
your own copy), read as a Corpus: train = school Ohm, test = school Mont, the paper's
speaker-independent inner folds by speaker number (1-16 / 18-32), the 2-class and 5-class
label files, and optionally the room-microphone recordings (the noisy condition).
"""
from pathlib import Path

from refimpl._util import locations
from refimpl.corpus.table import DEFAULT_SEED, build_corpus, read_json, validate
from refimpl.errors import CorpusError

__all__ = ["aibo", "ROOM_DIR", "STANDIN_MARK", "STANDIN_NOTE"]

# The room-microphone recordings are not part of the challenge package; a folder ROOT/room
# is taken for them (the stand-in writes one), else --noisy-dir names it.
ROOM_DIR = "room"
# `refimpl corpus standin aibo` (refimpl.conditions.standin) leaves this file in the folder
# it writes; a corpus loaded from such a folder says so wherever its notes are shown.
STANDIN_MARK = "STANDIN.json"
STANDIN_NOTE = ("NOT FAU-AIBO: a generated stand-in (EmoDB speech in FAU-AIBO's layout, the "
                "paper's counts, labels unrelated to the audio), for cost, scale and the AIBO "
                "code path only; its UARs mean nothing (chance is expected)")


def _read_aibo_labels(path):
    """chunk_labels_*_corpus.txt: '<chunk_id> <label> <confidence>' per line."""
    if not path.is_file():
        raise CorpusError(f"{path}: FAU-AIBO label file not found")
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


def aibo(root, clean_dir=None, noisy_dir=None, matched=None, check_files=True,
         seed=DEFAULT_SEED):
    """FAU-AIBO: train = school Ohm, test = school Mont, folds by speaker number.

    With noisy_dir (room microphone; default ROOT/room where that folder exists), the
    corpus is restricted to the chunks present in both recordings (the paper's matched
    utterances) unless matched=False; the denoised condition is then looked up where
    refimpl.conditions generates it (the cache's conditions/aibo/seed<N>/denoised/).
    """
    spec = read_json("aibo.json")
    root = Path(root).expanduser().resolve()
    lay = spec["layout"]
    clean_dir = Path(clean_dir) if clean_dir else root / lay["clean_dir"]
    if noisy_dir is None and (root / ROOM_DIR).is_dir():
        noisy_dir = root / ROOM_DIR
    noisy_dir = Path(noisy_dir) if noisy_dir else None
    denoised_dir = locations.conditions_dir("aibo", seed) / "denoised"
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
            row["path_denoised"] = str(denoised_dir / (cid + ".wav"))
        rows.append(row)
    notes = [f"{dropped} chunk(s) dropped: not in both the close-talk and room-microphone "
             f"recordings"] if noisy_dir is not None else []
    if (root / STANDIN_MARK).is_file():
        notes.insert(0, STANDIN_NOTE)
    # The denoised condition may not be generated yet: the recordings are what must exist.
    corpus = build_corpus("aibo", tasks, rows, str(root), check_files=False, notes=notes)
    if check_files:
        validate([dict(r, path_denoised="") for r in corpus.rows], tasks, str(root))
    return corpus

