"""Tables 5-9, Figures 2-3 and the report page: files, shapes, labels, significance marks."""
import csv
import itertools

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from refimpl.experiments import report
from refimpl.experiments.report import GridRow

TASKS = {"2class": "2-class", "5class": "5-class"}
# Matched-condition UARs per feature set (same for every task/balancing/condition here).
UARS = {"egemaps": 0.55, "compare": 0.69, "boaw": 0.60, "deepspectrum": 0.70}
N_TEST = 1000


def grid(control=None, n_test=N_TEST):
    rows = []
    for fs, task, bal, train, test in itertools.product(
            UARS, TASKS, report.BALANCING, report.CONDITIONS, report.CONDITIONS):
        uar = UARS[fs] - (0.1 if train != test else 0.0)
        boaw = fs == "boaw"
        rows.append(GridRow(fs, task, bal, train, test, uar, 1e-3, n_test, ["a", "b"],
                            [[1, 0], [0, 1]], 500 if boaw else None, 20 if boaw else None,
                            control if fs == "deepspectrum" else None))
    return rows


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_significance_marks_follow_the_z_test():
    marks = report.significance_marks(grid(), "2class", "Un.")
    for cond in report.CONDITIONS:
        # 0.70 vs 0.55 on 1000: p far below 0.001; 0.70 vs 0.69: not significant.
        assert marks[(cond, "egemaps")] and marks[(cond, "boaw")]
        assert not marks[(cond, "compare")]
        assert (cond, "deepspectrum") not in marks
    # Oracle for the boundary case 0.70 vs 0.60 on 1000 instances.
    table = [[700, 300], [600, 400]]
    p = stats.chi2_contingency(table, correction=False)[1]
    assert marks[("clean", "boaw")] == (p < 0.001)
    # With 50 test instances nothing is significant.
    assert not any(report.significance_marks(grid(n_test=50), "2class", "Ov.").values())


def test_tables_have_the_papers_shape(tmp_path):
    rows = grid()
    written = report.write_tables(rows, tmp_path, TASKS)
    assert sorted(p.name for p in written) == sorted(
        f"table{i}.{ext}" for i in range(5, 10) for ext in ("md", "csv"))
    uar_cols = [f"{t} {b}" for t in report.CONDITIONS for b in report.BALANCING]
    for name in ("table5", "table6"):
        table = read_csv(tmp_path / f"{name}.csv")
        assert table[0] == ["Task", "Train"] + uar_cols
        assert len(table) == 1 + 2 * 3
        assert [r[:2] for r in table[1:4]] == [["2-class", c] for c in report.CONDITIONS]
    t5 = read_csv(tmp_path / "table5.csv")
    assert t5[1][2] == "55.00" and t5[1][4] == "45.00"   # matched clean, then clean->noisy
    for name, task in (("table7", "2class"), ("table8", "5class")):
        table = read_csv(tmp_path / f"{name}.csv")
        assert table[0] == ["Train"] + uar_cols + ["Cs Un.", "Na Un.", "Cs Ov.", "Na Ov."]
        assert len(table) == 4
        assert table[1][-4:] == ["500", "20", "500", "20"]
    t9 = read_csv(tmp_path / "table9.csv")
    assert t9[0][0] == "Network" and len(t9) == 7 and t9[1][0] == "BVLC AlexNet"
    md = (tmp_path / "table7.md").read_text().splitlines()
    assert md[0].startswith("### Table 7") and md[2].count("|") == len(uar_cols) + 6


def test_control_rows_are_labelled(tmp_path):
    report.write_tables(grid(control="random-weight AlexNet"), tmp_path, TASKS)
    t9 = read_csv(tmp_path / "table9.csv")
    assert all("not the paper's network" in r[0] for r in t9[1:])
    assert "not the paper's network" in (tmp_path / "table9.md").read_text()


def test_figures_are_pngs(tmp_path):
    paths = report.write_figures(grid(), tmp_path, TASKS)
    assert [p.name for p in paths] == ["figure2.png", "figure3.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 600 and im.size[1] > 300


def test_full_report_and_paper_comparison(tmp_path):
    # A made-up published-numbers file: only the mechanism is tested here (the shipped
    # refimpl/data/paper_results.csv holds only numbers read from the paper).
    paper = tmp_path / "paper.csv"
    paper.write_text("# test file\n" + ",".join(report.PAPER_FIELDS) + "\n"
                     "aibo,egemaps,2class,Un.,clean,clean,60.0,,,test value\n"
                     "emodb,egemaps,2class,Un.,clean,clean,1.0,,,other corpus\n")
    out = tmp_path / "results"
    written = report.write_results(grid(control="random-weight AlexNet"), out, corpus="aibo",
                                   tasks=TASKS, failures=["x.wav (egemaps, noisy): bad"],
                                   meta={"seed": 0}, paper_path=paper)
    names = {p.name for p in written}
    assert {"report.md", "results.csv", "results.json", "figure2.png", "figure3.png",
            "paper_comparison.md", "paper_comparison.csv"} <= names
    comparison = read_csv(out / "paper_comparison.csv")
    assert len(comparison) == 2
    assert comparison[1][5:8] == ["60.0", "55.0", "-5.0"]
    t5 = read_csv(out / "table5.csv")
    md5 = (out / "table5.md").read_text()
    assert "55.0 (60.0; -5.0)" in md5
    text = (out / "report.md").read_text()
    assert "not the paper's network" in text and "x.wav" in text
    assert "figure2.png" in text and "Table 9" in text
    rows, meta = report.load_raw(out / "results.json")
    assert len(rows) == len(grid()) and meta == {"seed": 0}
    assert t5[1][2] == "55.00"


def test_no_published_numbers_means_an_empty_comparison(tmp_path):
    assert report.load_paper_results("aibo") == {} or all(
        row["source"] for row in report.load_paper_results("aibo").values())
    report.write_results(grid(), tmp_path, corpus="aibo", tasks=TASKS)
    assert len(read_csv(tmp_path / "paper_comparison.csv")) == \
        1 + len(report.load_paper_results("aibo"))
