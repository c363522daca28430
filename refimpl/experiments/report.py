"""Every output of the grid, and the page that gathers them (results/report.md), laid out
as the paper lays out its own so a reader can hold our page against it:

    results     results.csv (one line per cell of the reference seed), results.json
    tables      Tables 5-9 (Markdown and CSV twins)
    figures     Figures 2-3 (PNG)
    trust       trust.md/.csv: per cell the 95 % bootstrap interval over test files and,
                with several seeds, the spread over seeds
    comparison  paper_comparison.md/.csv: the paper's numbers beside ours, its claims
                checked, its contradictions decided

Cells give UAR in percent; with several seeds (`--seeds`) a cell gives mean +- sd over
seeds. Every table exists as Markdown and as a CSV twin (the reference seed's UARs); all
files are written atomically.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

from refimpl._util.atomic import atomic_open
from refimpl.corpus import CONDITIONS
from refimpl.experiments import paper as published
from refimpl.experiments.comparison import write_paper_comparison
from refimpl.experiments.figures import write_figures
from refimpl.experiments.results import GridRow, write_raw
from refimpl.experiments.tables import CONTROL_NOTE, View, display_name, percent, write_tables
from refimpl.experiments.trust import intervals_of, seed_stats, trust_summary, write_trust

__all__ = ["write_results"]


def _confusion_md(row: GridRow) -> str:
    classes = [str(c) for c in row.classes]
    buf = io.StringIO()
    buf.write("| true \\ predicted | " + " | ".join(classes) + " |\n")
    buf.write("|" + "|".join("---" for _ in range(len(classes) + 1)) + "|\n")
    for c, counts in zip(classes, row.confusion):
        buf.write(f"| {c} | " + " | ".join(str(v) for v in counts) + " |\n")
    return buf.getvalue()


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
    view = View(reference, seed_stats(rows), tasks, tuple(conditions), paper)
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
                      f"{r.train}** (UAR {percent(r.uar)} %, alpha {r.alpha:g}"
                      + (f", Cs {r.cs}, Na {r.na}" if r.cs else "") + ")", "",
                      _confusion_md(r)]
    lines += ["All cells with confusion matrices: [results.json](results.json); "
              "one line per cell: [results.csv](results.csv).", ""]
    lines += ["### Files left out", ""]
    lines += [f"- {f}" for f in failures] if failures else ["None: every file was processed."]
    with atomic_open(out_dir / "report.md") as f:
        f.write("\n".join(lines) + "\n")
    return written + [out_dir / "report.md"]
