"""How far each number of the grid can be trusted: two measures, side by side.

* The test set: a 95 % bootstrap interval of one model's UAR over the test files. The test
  files are resampled with replacement (scipy.stats.bootstrap, paired: each file keeps its
  true and predicted class; percentile interval; BOOTSTRAP_RESAMPLES resamples drawn by
  numpy's default_rng(BOOTSTRAP_SEED)). Every cell is resampled with the same draws, so
  two cells of one run are compared on the same resampled test sets.
* The classifier's randomness: the spread of a cell's UAR over seeds (`--seeds`), which
  rerun everything that draws random numbers (SGD's sample order, the oversampling draw,
  BoAW's random codebook) on the same features and conditions: mean, sample standard
  deviation (ddof 1), min and max.

Both are written to trust.md / trust.csv (write_trust) and summarised in report.md
(trust_summary).
"""
from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy.stats import bootstrap

from refimpl._util.atomic import atomic_open
from refimpl.experiments.results import RAW_FIELDS
from refimpl.experiments.tables import View, display_name, feature_order, percent, write_table

__all__ = ["BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CONFIDENCE", "uar_statistic",
           "bootstrap_interval", "SeedStats", "seed_stats", "spread_summary", "intervals_of",
           "write_trust", "trust_summary"]

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 2017
CONFIDENCE = 0.95


def uar_statistic(y_true, y_pred, axis=-1):
    """UAR along `axis` of class-index arrays (non-negative integers; vectorised for
    scipy.stats.bootstrap): the mean recall over the classes that occur in that
    resample's y_true. One confusion matrix per resample, counted by one bincount."""
    y_true = np.moveaxis(np.asarray(y_true, dtype=np.int64), axis, -1)
    y_pred = np.moveaxis(np.asarray(y_pred, dtype=np.int64), axis, -1)
    k = int(max(y_true.max(), y_pred.max())) + 1
    batch = y_true.shape[:-1]
    n = int(np.prod(batch, dtype=np.int64))
    offset = np.arange(n, dtype=np.int64).reshape(batch + (1,)) * (k * k)
    confusion = np.bincount((offset + y_true * k + y_pred).ravel(),
                            minlength=n * k * k).reshape(n, k, k)
    support = confusion.sum(axis=2)
    hits = np.diagonal(confusion, axis1=1, axis2=2)
    present = support > 0
    recall = np.where(present, hits / np.maximum(support, 1), 0.0)
    return (recall.sum(axis=1) / present.sum(axis=1)).reshape(batch)


def bootstrap_interval(y_true, y_pred, confidence=CONFIDENCE,
                       resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED):
    """(low, high) of the UAR over resampled test files (see the module docstring)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) < 2:
        return math.nan, math.nan
    result = bootstrap((y_true, y_pred), uar_statistic, paired=True, vectorized=True,
                       n_resamples=resamples, confidence_level=confidence,
                       method="percentile", random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass
class SeedStats:
    """A cell's UAR over seeds (fractions)."""
    values: list

    @property
    def n(self):
        return len(self.values)

    @property
    def mean(self):
        return float(np.mean(self.values))

    @property
    def sd(self):
        return float(np.std(self.values, ddof=1)) if self.n > 1 else math.nan

    @property
    def low(self):
        return float(min(self.values))

    @property
    def high(self):
        return float(max(self.values))


def seed_stats(rows: Iterable) -> dict:
    """{cell key: SeedStats} over the rows of every seed (GridRow.key() names a cell)."""
    values: dict = {}
    for r in sorted(rows, key=lambda r: r.seed):
        values.setdefault(r.key(), []).append(r.uar)
    return {k: SeedStats(v) for k, v in values.items()}


def spread_summary(stats: Mapping, groups: Sequence[tuple[str, callable]]):
    """[(group name, cells, median sd, largest sd, largest max - min)] in UAR fractions,
    for each (name, key filter) of `groups`; cells with one seed only are left out."""
    out = []
    for name, keep in groups:
        cells = [s for k, s in stats.items() if keep(k) and s.n > 1]
        if cells:
            sds = [s.sd for s in cells]
            out.append((name, len(cells), float(np.median(sds)), float(max(sds)),
                        float(max(s.high - s.low for s in cells))))
    return out


# --------------------------------------------------------------------------- trust.md

def intervals_of(rows) -> dict:
    """{cell key: (low, high)} bootstrap intervals of the given rows' UARs: as the grid
    stored them, else computed from the rows' predictions, else NaN."""
    def interval(r):
        if r.ci_low is not None:
            return r.ci_low, r.ci_high
        if r.y_true:
            return bootstrap_interval(r.y_true, r.y_pred)
        return math.nan, math.nan
    return {r.key(): interval(r) for r in rows}


def write_trust(view: View, intervals, all_rows, out_dir):
    """trust.md / trust.csv: per cell the bootstrap interval and the spread over seeds."""
    header = ["Feature set", "Task", "Bal.", "Train", "Test", "UAR [%]", "95 % CI low",
              "95 % CI high", "Seeds", "Mean", "SD", "Min", "Max"]
    body = []
    for r in view.rows:
        s = view.stats.get(r.key())
        lo, hi = intervals.get(r.key(), (math.nan, math.nan))
        spread = ([s.n, percent(s.mean), percent(s.sd), percent(s.low), percent(s.high)]
                  if s and s.n > 1 else [1, "", "", "", ""])
        body.append([display_name(r), view.tasks.get(r.task, r.task), r.balancing, r.train,
                     r.test, percent(r.uar), percent(lo), percent(hi)] + spread)
    notes = [f"95 % CI: percentile bootstrap over the {view.rows[0].n_test if view.rows else 0}"
             f" test files ({BOOTSTRAP_RESAMPLES} resamples, numpy default_rng("
             f"{BOOTSTRAP_SEED}), the same resamples for every cell) of the reference "
             "seed's model. Seeds: every seed reruns SGD's order, the oversampling draw and "
             "BoAW's random codebook on the same features and conditions; SD is the sample "
             "standard deviation over seeds."]
    written = write_table(out_dir, "trust", "How far each number can be trusted", header,
                          body, body, notes)
    if view.seeds > 1:
        with atomic_open(Path(out_dir) / "results_seeds.csv", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["seed"] + RAW_FIELDS, extrasaction="ignore")
            w.writeheader()
            for r in all_rows:
                w.writerow(asdict(r))
        written.append(Path(out_dir) / "results_seeds.csv")
    return written


def trust_summary(view: View, intervals) -> list:
    """Markdown lines: how wide the intervals are and how much the seed moves the cells."""
    lines = []
    groups = [(f"{display_name(fs, view.rows)}, {name}",
               lambda k, fs=fs, t=task: k[0] == fs and k[1] == t)
              for fs in feature_order(view.rows) for task, name in view.tasks.items()]
    widths = {}
    for key, (lo, hi) in intervals.items():
        if not math.isnan(lo):
            widths.setdefault((key[0], key[1]), []).append(hi - lo)
    lines += ["| Feature set, task | cells | median 95 % CI width | median SD over seeds | "
              "largest SD | largest max - min |", "|---|---|---|---|---|---|"]
    spread = {name: rest for name, *rest in spread_summary(view.stats, groups)}
    for name, keep in groups:
        w = [v for (fs, task), ws in widths.items() for v in ws if keep((fs, task))]
        if not w:
            continue
        w.sort()
        s = spread.get(name)
        lines.append(f"| {name} | {len(w)} | {100 * w[len(w) // 2]:.1f} | "
                     + (f"{100 * s[1]:.1f} | {100 * s[2]:.1f} | {100 * s[3]:.1f} |" if s
                        else "– | – | – |"))
    return lines
