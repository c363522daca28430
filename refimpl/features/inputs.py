"""What goes into an extraction: the audio files (and the name each gets in the output)
and their labels.

Names: a file found in a folder is named by its path relative to that folder
(`speaker1/a.wav`), a file given directly by its file name (`a.wav`), as the toolkit
named rows by the file name; where two inputs would get the same name, both are named by
the path as given, so that rows never share a name.

Labels, as the toolkit took them: from a label file (CSV, or TSV by its .tsv suffix; a
header row names the label columns, one or several; the first column is the file), or,
without one, the name of each file's parent folder (one nominal column, `class`, always nominal).
A label file's column whose every value is a number is numeric (regression targets); any
other is nominal.
"""
import csv
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Iterable

from refimpl._util.files import check_regular
from refimpl.errors import LabelError

__all__ = ["AUDIO_SUFFIXES", "AudioInput", "find_audio", "LabelColumn", "Labels",
           "read_labels", "folder_labels", "label_number"]

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".au"}


@dataclass(frozen=True)
class AudioInput:
    path: Path
    name: str   # its row name in the output


def find_audio(inputs: Iterable[str | Path]) -> list[AudioInput]:
    """Files and folders (searched recursively, each sorted) -> AudioInputs, in the
    order given.

    Parameters
    ----------
    inputs : iterable of str or path
        Audio files and folders. A path that is not a folder is taken as a file, whatever
        its suffix, even if it does not exist (reading it then fails with a line naming
        it, and the other files still come out); a folder without audio gives nothing.

    Returns
    -------
    list of AudioInput
        Each file's path and its row name (its path relative to the folder given).
    """
    found = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(AudioInput(f, f.relative_to(p).as_posix())
                         for f in sorted(p.rglob("*"))
                         if f.suffix.lower() in AUDIO_SUFFIXES and not f.is_dir())
        else:
            found.append(AudioInput(p, p.name))
    counts = {}
    for a in found:
        counts[a.name] = counts.get(a.name, 0) + 1
    return [a if counts[a.name] == 1 else AudioInput(a.path, a.path.as_posix()) for a in found]


# ------------------------------------------------------------------------------ labels

@dataclass
class LabelColumn:
    name: str
    numeric: bool
    values: tuple = ()   # the nominal values, sorted (empty for a numeric column)


@dataclass
class Labels:
    """Label columns and, per file key, one value (a string as read) per column."""
    columns: list
    rows: dict                       # key -> [value per column]
    source: str = ""                 # the label file, or "folder names"
    header: list = field(default_factory=list)
    path: bool = False               # whether `source` is a file
    _by_base: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        by_base = {}
        for key in self.rows:
            by_base.setdefault(PurePath(key).name, []).append(key)
        self._by_base = {base: keys[0] for base, keys in by_base.items() if len(keys) == 1}

    def key_for(self, name):
        """The label row for a file named `name` (its row name, e.g. `sub/a.wav`): the key
        written as that name, as its file name or its stem, or a key with a folder whose
        file name is unique in the label file; None if there is none."""
        base = PurePath(name).name
        for key in (name, base, PurePath(base).stem):
            if key in self.rows:
                return key
        return self._by_base.get(base) or self._by_base.get(PurePath(base).stem)

    def values_for(self, name):
        key = self.key_for(name)
        if key is None:
            hint = ""
            if self.header and self.header[0] in (PurePath(name).name, PurePath(name).stem):
                hint = " (its first row was read as the header; add a header row)"
            raise LabelError(f"{name}: no label in {self.source}{hint}")
        return self.rows[key]

    def unused(self, names):
        """Keys of the label file that no file in `names` uses (labels for files that are
        not among the inputs)."""
        used = {self.key_for(n) for n in names}
        return [k for k in self.rows if k not in used]


def _is_number(value):
    try:
        float(value)
    except ValueError:
        return False
    return True


def _columns(names, table):
    cols = []
    for j, name in enumerate(names):
        values = [r[j] for r in table if r[j] != ""]   # empty cells are missing values
        numeric = bool(values) and all(_is_number(v) for v in values)
        cols.append(LabelColumn(name, numeric, () if numeric else tuple(sorted(set(values)))))
    return cols


def read_labels(path):
    """A label file -> Labels. The delimiter is a tab for .tsv, else whichever of , ; or
    tab the first line uses. The first row is the header (as in the toolkit), naming the
    label columns after the file column, unless its first cell is an audio file's name;
    a file without a header gets one label column, `class`. Cells are stripped of
    surrounding spaces. Every problem is a LabelError naming the file (and the line)."""
    path = Path(path)
    try:
        check_regular(path)      # a FIFO or device would block or never end
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or e   # an OSError without its repr
        raise LabelError(f"{path}: cannot read the label file ({reason})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise LabelError(f"{path}: the label file is empty")
    if path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(lines[0], delimiters=",;\t").delimiter
        except csv.Error:
            raise LabelError(f"{path}: the first line has no label column (expected "
                             f"'file,label', separated by comma, semicolon or tab)") from None
    rows = [[c.strip() for c in r] for r in csv.reader(lines, delimiter=delimiter)]
    first = rows[0]
    has_header = PurePath(first[0]).suffix.lower() not in AUDIO_SUFFIXES
    if len(first) < 2:
        raise LabelError(f"{path}: line 1 has no label column: {lines[0]!r}")
    names = first[1:] if has_header else (["class"] if len(first) == 2 else
                                          [f"class_{i}" for i in range(1, len(first))])
    if has_header and (len(set(names)) != len(names) or "" in names):
        raise LabelError(f"{path}: the header's label columns must have distinct, "
                         f"non-empty names: {first[1:]}")
    table, keys = {}, {}
    for number, r in enumerate(rows[1:] if has_header else rows, 2 if has_header else 1):
        if len(r) != len(names) + 1 or not r[0]:
            raise LabelError(f"{path}: line {number} has {len(r)} cells, expected "
                             f"{len(names) + 1} (file, {', '.join(names)}): {r}")
        key = PurePath(r[0]).as_posix()
        if key in table:
            raise LabelError(f"{path}: line {number}: {r[0]} is labelled twice (line "
                             f"{keys[key]} too)")
        table[key], keys[key] = r[1:], number
    if not table:
        raise LabelError(f"{path}: the label file has a header but no rows")
    return Labels(_columns(names, list(table.values())), table, str(path),
                  first if has_header else [], path=True)


def folder_labels(inputs):
    """Without a label file: the name of each file's parent folder, one nominal column
    `class` (the toolkit's default)."""
    rows = {a.name: [a.path.absolute().parent.name] for a in inputs}
    classes = tuple(sorted({r[0] for r in rows.values()}))
    return Labels([LabelColumn("class", False, classes)], rows, "folder names")


def label_number(value):
    """A numeric label's value as a float (an empty cell is missing: NaN)."""
    return float(value) if value != "" else math.nan

