"""The grid's results as data: one row per cell (GridRow), and the raw files that hold them,
results.csv (one line per cell of the reference seed) and results.json (every seed's rows,
with confusion matrices and per-file predictions). The grid builds its rows from this
module; the tables, figures and pages that show them are refimpl.experiments.report's.
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from refimpl._util.atomic import atomic_open

__all__ = ["GridRow", "BALANCING", "RAW_FIELDS", "write_raw", "load_raw"]

BALANCING = ("Un.", "Ov.")
RAW_FIELDS = ["feature_set", "task", "balancing", "train", "test", "uar", "alpha", "cs",
              "na", "n_test", "control"]


@dataclass
class GridRow:
    """One cell of the grid: a model trained on `train` with one seed, scored on `test`."""
    feature_set: str            # tables.FEATURE_SETS key or a control key ("deepspectrum-random")
    task: str                   # key of the tasks mapping, e.g. "2class"
    balancing: str              # "Un." or "Ov."
    train: str                  # condition
    test: str                   # condition
    uar: float                  # fraction 0..1
    alpha: float
    n_test: int
    classes: list = field(default_factory=list)
    confusion: list = field(default_factory=list)   # rows true, cols predicted
    cs: int | None = None
    na: int | None = None
    control: str | None = None  # why this row is a control, e.g. "random-weight AlexNet"
    seed: int = 0               # the classifier's seed (SGD order, oversampling, codebook)
    y_true: list | None = None  # per test file, index into classes (for the bootstrap)
    y_pred: list | None = None
    ci_low: float | None = None     # 95 % bootstrap interval of uar over the test files
    ci_high: float | None = None    # (refimpl.experiments.trust), set with y_true / y_pred

    def key(self):
        return (self.feature_set, self.task, self.balancing, self.train, self.test)


def write_raw(rows, out_dir, meta=None, all_rows=None):
    """results.csv (one line per grid cell of the reference seed) and results.json (every
    seed's rows, with confusion matrices and per-file predictions)."""
    out_dir = Path(out_dir)
    with atomic_open(out_dir / "results.csv", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RAW_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
    with atomic_open(out_dir / "results.json") as f:
        json.dump({"meta": meta or {}, "rows": [asdict(r) for r in (all_rows or rows)]}, f)
    return [out_dir / "results.csv", out_dir / "results.json"]


def load_raw(path):
    """(rows, meta) from a results.json written by write_raw."""
    data = json.loads(Path(path).read_text())
    return [GridRow(**r) for r in data["rows"]], data.get("meta", {})

