"""Tables 5-9 in the paper's layout, Figures 2-3, the comparison page and the trust page:
files, orientation, bold cells, significance marks (scipy's chi-squared test as the
oracle of the z-test), seed statistics (numpy) and bootstrap intervals (scipy.stats.bootstrap
with scikit-learn's balanced accuracy)."""
import csv
import itertools

import numpy as np
import pytest
from PIL import Image
from scipy import stats
from sklearn.metrics import balanced_accuracy_score

from refimpl.corpus import CONDITIONS
from refimpl.experiments import figures, paper, report, results, tables, trust
from refimpl.experiments.results import GridRow
from refimpl.experiments.tables import View

TASKS = {"2class": "2-class", "5class": "5-class"}
CONDS = CONDITIONS
# Matched-condition UARs per feature set (same for every task/balancing/condition here).
UARS = {"egemaps": 0.55, "compare": 0.69, "boaw": 0.60, "deepspectrum": 0.70}
N_TEST = 1000


def uar_of(fs, bal, train, test):
    """Distinct values per cell, so a transposed table cannot pass: matched cells get the
    feature set's UAR (+ 1 point for Ov.), cross cells lose 10 points minus a tag that
    names train and test."""
    if train == test:
        return UARS[fs] + (0.01 if bal == "Ov." else 0.0)
    return UARS[fs] - 0.1 + 0.001 * (3 * CONDS.index(train) + CONDS.index(test))


def grid(control=None, n_test=N_TEST, seed=0, shift=0.0, tasks=TASKS):
    rows = []
    for fs, task, bal, train, test in itertools.product(
            UARS, tasks, results.BALANCING, CONDS, CONDS):
        boaw = fs == "boaw"
        rows.append(GridRow(fs, task, bal, train, test, uar_of(fs, bal, train, test) + shift,
                            1e-3, n_test, ["a", "b"], [[1, 0], [0, 1]],
                            500 + CONDS.index(test) if boaw else None, 20 if boaw else None,
                            control if fs == "deepspectrum" else None, seed))
    return rows


def view(rows, tasks=TASKS, paper_cells=None):
    return View(rows, trust.seed_stats(rows), tasks, CONDS, paper_cells or {})


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_tables_have_the_papers_layout(tmp_path):
    written = tables.write_tables(view(grid()), tmp_path)
    assert sorted(p.name for p in written) == sorted(
        f"table{i}.{ext}" for i in range(5, 10) for ext in ("md", "csv"))
    columns = [f"{b} {t}" for b in results.BALANCING for t in CONDS]   # TRAINING condition
    for name, fs in (("table5", "egemaps"), ("table6", "compare")):
        table = read_csv(tmp_path / f"{name}.csv")
        assert table[0] == ["Task", "Test \\ Train"] + columns
        assert [r[:2] for r in table[1:]] == [[t, c] for t in TASKS.values() for c in CONDS]
        for r in table[1:]:             # rows are the TEST condition
            for col, (bal, train) in enumerate(itertools.product(results.BALANCING, CONDS)):
                assert float(r[2 + col]) == pytest.approx(
                    100 * uar_of(fs, bal, train, r[1]), abs=0.005)
    # BoAW: Table 7 = Un., Table 8 = Ov.; UAR, Cs, Na per training condition and cell
    for name, bal in (("table7", "Un."), ("table8", "Ov.")):
        table = read_csv(tmp_path / f"{name}.csv")
        assert table[0] == ["Task", "Test \\ Train"] + [f"{t} {w}" for t in CONDS
                                                      for w in ("UAR", "Cs", "Na")]
        assert len(table) == 1 + 2 * 3
        for r in table[1:]:
            for j, train in enumerate(CONDS):
                uar, cs, na = r[2 + 3 * j: 5 + 3 * j]
                assert float(uar) == pytest.approx(100 * uar_of("boaw", bal, train, r[1]),
                                                   abs=0.005)
                assert (cs, na) == (str(500 + CONDS.index(r[1])), "20")
    t9 = read_csv(tmp_path / "table9.csv")
    assert t9[0][0] == "Network" and len(t9) == 7 and t9[1][0] == "BVLC AlexNet"
    md = (tmp_path / "table7.md").read_text().splitlines()
    assert md[0].startswith("### Table 7") and md[2].count("|") == 2 + 3 * 3 + 1


def test_the_best_cell_of_each_block_is_bold(tmp_path):
    tables.write_tables(view(grid()), tmp_path)
    md = (tmp_path / "table5.md").read_text()
    bold = [line for line in md.splitlines() if "**" in line]
    # per task block, the matched Ov. cells (56.0) are the best: three per block
    assert len(bold) == 6 and all(line.count("**56.0**") == 1 for line in bold)
    assert md.count("**") == 2 * 6


def test_control_rows_are_labelled(tmp_path):
    tables.write_tables(view(grid(control="random-weight AlexNet")), tmp_path)
    t9 = read_csv(tmp_path / "table9.csv")
    assert all("not the paper's network" in r[0] for r in t9[1:])
    assert "not the paper's network" in (tmp_path / "table9.md").read_text()


def test_significance_marks_use_the_strongest_balancing_and_the_z_test():
    marks = figures.significance_marks(View(grid(), {}, TASKS), "2class")
    for cond in CONDS:
        # 0.71 vs 0.56 on 1000: p far below 0.001; 0.71 vs 0.70: not significant.
        assert marks[(cond, "egemaps")] and marks[(cond, "boaw")]
        assert not marks[(cond, "compare")]
        assert (cond, "deepspectrum") not in marks
    # Oracle for the boundary case 0.71 vs 0.61 (both Ov., the stronger) on 1000 instances.
    table = [[710, 290], [610, 390]]
    p = stats.chi2_contingency(table, correction=False)[1]
    assert marks[("clean", "boaw")] == (p < 0.001)
    # With 50 test instances nothing is significant.
    assert not any(figures.significance_marks(View(grid(n_test=50), {}, TASKS),
                                             "2class").values())


def test_figures_are_pngs(tmp_path):
    paths = figures.write_figures(view(grid()), tmp_path, {})
    assert [p.name for p in paths] == ["figure2.png", "figure3.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 600 and im.size[1] > 300


def test_seed_cells_show_mean_and_sd(tmp_path):
    rng = np.random.default_rng(0)
    shifts = rng.normal(0, 0.02, 4)
    rows = [r for s, d in enumerate(shifts) for r in grid(seed=s, shift=d)]
    v = view([r for r in rows if r.seed == 0])
    v = View(v.rows, trust.seed_stats(rows), TASKS, CONDS)
    tables.write_tables(v, tmp_path)
    key = ("compare", "5class", "Un.", "noisy", "noisy")
    values = [r.uar for r in rows if r.key() == key]
    mean, sd = np.mean(values), np.std(values, ddof=1)
    line = next(l for l in (tmp_path / "table6.md").read_text().splitlines()
                if l.startswith("| 5-class | noisy"))
    assert f"{100 * mean:.1f} ± {100 * sd:.1f}" in line
    assert "mean ± sd over 4 seeds" in (tmp_path / "table6.md").read_text()
    # the CSV twin keeps the reference seed's figure
    t6 = read_csv(tmp_path / "table6.csv")
    assert float(t6[5][3]) == pytest.approx(100 * values[0], abs=0.005)


def test_uar_statistic_is_balanced_accuracy():
    rng = np.random.default_rng(3)
    for k in (2, 5, 7):
        y = rng.integers(0, k, 200)
        p = np.where(rng.random(200) < 0.5, y, rng.integers(0, k, 200))
        idx = rng.integers(0, 200, (20, 200))
        got = trust.uar_statistic(y[idx], p[idx])
        # resamples that miss a class: both average over the classes that occur
        with np.errstate(all="ignore"):
            want = [balanced_accuracy_score(y[i], p[i]) for i in idx]
        assert np.allclose(got, want, rtol=0, atol=1e-12)


def test_bootstrap_interval_is_scipys_with_balanced_accuracy():
    """Same resamples (scipy draws them from the same generator), the statistic from
    scikit-learn: the intervals agree to the last bits of the percentile arithmetic."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 120)
    p = np.where(rng.random(120) < 0.6, y, rng.integers(0, 4, 120))
    lo, hi = trust.bootstrap_interval(y, p, resamples=300)
    oracle = stats.bootstrap((y, p), balanced_accuracy_score, paired=True, vectorized=False,
                             n_resamples=300, method="percentile",
                             random_state=np.random.default_rng(trust.BOOTSTRAP_SEED))
    assert (lo, hi) == pytest.approx((oracle.confidence_interval.low,
                                      oracle.confidence_interval.high), abs=1e-12)
    assert lo < balanced_accuracy_score(y, p) < hi


def _rows_with_predictions():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 80).tolist()
    rows = grid(n_test=80)
    for r in rows:
        r.y_true = y
        r.y_pred = [t if rng.random() < r.uar else 1 - t for t in y]
    return rows


def test_full_report_for_aibo_sets_every_published_cell_beside_ours(tmp_path):
    aibo_tasks = {"idl_neg": "2-class", "class5": "5-class"}
    rows = grid(control="random-weight AlexNet", tasks=aibo_tasks)
    out = tmp_path / "results"
    written = report.write_results(rows, out, corpus="aibo", tasks=aibo_tasks,
                                   failures=["x.wav (egemaps, noisy): bad"], meta={"seed": 0})
    names = {p.name for p in written}
    assert {"report.md", "results.csv", "results.json", "figure2.png", "figure3.png",
            "paper_comparison.md", "paper_comparison.csv", "trust.md", "trust.csv"} <= names
    comparison = read_csv(out / "paper_comparison.csv")
    published = paper.load_paper()
    assert len(comparison) == 1 + 144
    roles = {"2-class": "2class", "5-class": "5class"}
    names = {v: k for k, v in tables.FEATURE_SETS.items()}
    for line in comparison[1:]:
        table, fs, task, bal, train, test, theirs, ours, diff, pcs, pna, ocs, ona = line
        cell = published[(names[fs], roles[task], bal, train, test)]
        assert int(table) == cell.table and float(theirs) == pytest.approx(100 * cell.uar)
        mine = 100 * uar_of(names[fs], bal, train, test)
        assert float(ours) == pytest.approx(mine, abs=0.05)
        assert float(diff) == pytest.approx(mine - 100 * cell.uar, abs=0.051)
        if names[fs] == "boaw":      # the paper's Cs/Na beside ours
            assert (int(pcs), int(pna)) == (cell.cs, cell.na)
            assert int(ocs) == 500 + CONDS.index(test)
    md5 = (out / "table5.md").read_text()
    assert "**56.0** (65.4; -9.4)" in md5    # eGeMAPS 2-class Ov. clean/clean: .654
    page = (out / "paper_comparison.md").read_text()
    assert "(FAU-AIBO)" in page and "different corpus" not in page
    assert "Matched conditions" in page and "| Deep Spectrum | 5-class | noisy | 35.5 |" in page
    text = (out / "report.md").read_text()
    assert "not the paper's network" in text and "x.wav" in text
    assert "figure2.png" in text and "Table 9" in text and "claims" in text
    loaded, meta = results.load_raw(out / "results.json")
    assert len(loaded) == len(rows) and meta == {"seed": 0}


def test_another_corpus_gets_the_paper_as_context_and_the_claims(tmp_path):
    emodb_tasks = {"idl_neg": "2-class", "emotion7": "7-class"}
    rows = _rows_with_predictions()
    rows = [GridRow(**{**r.__dict__, "task": {"2class": "idl_neg", "5class": "emotion7"}[r.task]})
            for r in rows]
    report.write_results(rows, tmp_path, corpus="emodb", tasks=emodb_tasks)
    page = (tmp_path / "paper_comparison.md").read_text()
    assert "emodb is a different corpus" in page and "multi-class task" in page
    assert "emotion7 (7-class) for the paper's 5-class" in page
    for claim in paper.CLAIMS:
        assert claim.text in page
    # deep spectrum (71.0) beats ComParE (70.0) in every matched condition: holds
    line = next(l for l in page.splitlines() if l.startswith("| Deep spectrum is the strongest"))
    assert "**holds**" in line and "1 of 1" in line
    assert "Every published cell" in page and "| 9 | Deep Spectrum | 7-class |" in page
    # no published numbers inside this corpus's own tables
    assert "(" not in (tmp_path / "table5.md").read_text().split("|---|")[1].split("Cells")[0]
    trust_rows = read_csv(tmp_path / "trust.csv")
    assert trust_rows[0][5:8] == ["UAR [%]", "95 % CI low", "95 % CI high"]
    assert len(trust_rows) == 1 + len(rows)
    for line, r in zip(trust_rows[1:], rows):       # each cell's own predictions
        lo, hi = trust.bootstrap_interval(r.y_true, r.y_pred)
        assert [float(line[6]), float(line[7])] == pytest.approx([100 * lo, 100 * hi], abs=0.05)
