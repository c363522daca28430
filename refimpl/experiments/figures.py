"""Figures 2 (2-class) and 3 (multi-class): one bar per feature set and matched condition,
the strongest of Un. and Ov. (as the paper plots them), the 95 % bootstrap interval over
test files as an error bar, an asterisk where deep spectrum is better by the paper's
two-sided z-test at p < 0.001 (protocol.z_test).
"""
from __future__ import annotations

import math
from pathlib import Path

from refimpl import protocol
from refimpl._util.atomic import atomic_path
from refimpl.experiments.tables import (DEEP_SPECTRUM, View, display_name, feature_order,
                                        strongest)

__all__ = ["significance_marks", "matched_figure", "write_figures"]


def significance_marks(view: View, task, level=protocol.SIGNIFICANCE_LEVEL):
    """{(condition, feature_set): True} where deep spectrum's strongest matched cell beats
    that feature set's strongest (two-sided z-test, n = test instances). The reference is
    the real deep spectrum row when there is one, else its control."""
    sets = feature_order(view.rows)
    marks = {}
    for cond in view.conditions:
        ref = next((r for r in (strongest(view, fs, task, cond) for fs in sets
                                if fs.startswith(DEEP_SPECTRUM)) if r is not None), None)
        if ref is None:
            continue
        for fs in sets:
            other = strongest(view, fs, task, cond)
            if other is None or fs.startswith(DEEP_SPECTRUM):
                continue
            n = min(ref.n_test, other.n_test)
            marks[(cond, fs)] = protocol.significantly_better(view.value(ref.key()),
                                                              view.value(other.key()), n, level)
    return marks


def matched_figure(view: View, task, intervals, path, title=None):
    """Bars of the strongest matched-condition UAR per feature set (PNG), the bootstrap
    interval as error bars, asterisks for the z-test."""
    # here, not at the top: pyplot is a heavy import that only the figures need, and the
    # Agg backend has to be chosen before pyplot is first imported
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = feature_order(view.rows)
    marks = significance_marks(view, task)
    fig, ax = plt.subplots(figsize=(8, 4.4))
    width = 0.8 / max(1, len(sets))
    for i, fs in enumerate(sets):
        xs, hs, errs, labels = [], [], [[], []], []
        for j, cond in enumerate(view.conditions):
            r = strongest(view, fs, task, cond)
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
