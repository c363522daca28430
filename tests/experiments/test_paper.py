"""The paper's published numbers and claims: refimpl/data/paper_results.csv against the
shared copy of the paper's tables (read off the paper by someone else), and the claims
checked on the paper's own numbers (its text makes them about those tables)."""
import csv

import pytest

from refimpl._util import locations
from refimpl.experiments import paper

SHARED = locations.shared_data().parent / "paper" / "uar_tables.csv"


@pytest.fixture(scope="module")
def shared_cells():
    if not SHARED.is_file():
        pytest.skip(f"the paper's tables are not at {SHARED}")
    with open(SHARED, newline="") as f:
        return list(csv.DictReader(f))


def test_every_published_cell_is_recorded_and_equal(shared_cells):
    with open(paper.PAPER_RESULTS, newline="") as f:
        ours = list(csv.DictReader(line for line in f if not line.startswith("#")))
    assert len(shared_cells) == 144
    key = lambda r: (r["table"], r["feature_set"], r["task"], r["balancing"], r["train"],
                     r["test"])
    assert len({key(r) for r in ours}) == len(ours) == 144
    assert {key(r): r for r in ours} == {key(r): r for r in shared_cells}
    # and as the report reads them: every cell, its value, BoAW's Cs and Na
    loaded = paper.load_paper()
    assert len(loaded) == 144
    names = {"deep_spectrum": "deepspectrum"}
    for r in shared_cells:
        cell = loaded[(names.get(r["feature_set"], r["feature_set"]), r["task"],
                       {"un": "Un.", "ov": "Ov."}[r["balancing"]], r["train"], r["test"])]
        assert cell.table == int(r["table"]) and cell.uar == float(r["uar"])
        assert (cell.cs, cell.na) == ((int(r["cs"]), int(r["na"])) if r["cs"] else (None, None))


def test_the_claims_hold_on_the_papers_own_numbers():
    cells = {k: c.uar for k, c in paper.load_paper().items()}
    results = paper.check_claims(cells)
    assert [c.key for c, _, _ in results] == [c.key for c in paper.CLAIMS]
    assert all(holds is True for _, holds, _ in results), results
    detail = {c.key: d for c, _, d in results}
    assert "noisy: deep spectrum 35.5" in detail["deep-spectrum-strongest"]
    assert detail["denoising-compare"] == "noisy 24.6 -> denoised 30.4"


def test_each_claim_can_fail_and_says_when_it_cannot_be_checked():
    cells = {k: c.uar for k, c in paper.load_paper().items()}
    broken = {
        "deep-spectrum-strongest": {("compare", "5class", "Ov.", "noisy", "noisy"): 0.40},
        "boaw-least-hurt": {k: v - 0.2 for k, v in cells.items()
                            if k[0] == "boaw" and k[3] != k[4]},
        "oversampling-5class": {k: v - 0.1 for k, v in cells.items()
                                if k[1] == "5class" and k[2] == "Ov." and k[3] != k[4]},
        "denoising-compare": {("compare", "5class", "Un.", "denoised", "denoised"): 0.2},
        "egemaps-below-compare": {("egemaps", "2class", "Ov.", "clean", "clean"): 0.70},
    }
    for key, change in broken.items():
        verdict = {c.key: h for c, h, _ in paper.check_claims({**cells, **change})}
        assert verdict[key] is False, key
        assert sum(v is False for v in verdict.values()) == 1, (key, verdict)
    clean_only = {k: v for k, v in cells.items() if k[3] == k[4] == "clean"}
    verdict = {c.key: h for c, h, _ in paper.check_claims(clean_only)}
    assert verdict["boaw-least-hurt"] is None and verdict["denoising-compare"] is None
    assert verdict["egemaps-below-compare"] is True


def test_tasks_map_onto_the_papers_by_number_of_classes():
    assert paper.task_roles({"idl_neg": "2-class", "emotion7": "7-class"}) == \
        {"idl_neg": "2class", "emotion7": "5class"}
    assert paper.task_roles({"idl_neg": "2-class", "class5": "5-class"}) == \
        {"idl_neg": "2class", "class5": "5class"}
    assert paper.task_roles({"a": "3-class"}) == {"a": "5class"}
    assert paper.task_roles({"a": "2-class", "b": "3-class", "c": "4-class"}) == \
        {"a": "2class", "c": "5class"}
    cells = paper.paper_cells({"idl_neg": "2-class", "emotion7": "7-class"})
    assert len(cells) == 144
    assert cells[("compare", "emotion7", "Un.", "noisy", "noisy")].uar == 0.246


def test_seed_counts_count_each_seed_on_its_own():
    cells = {k: c.uar for k, c in paper.load_paper().items()}
    flipped = {**cells, ("compare", "5class", "Un.", "denoised", "denoised"): 0.2}
    counts = paper.seed_counts([cells, flipped, cells])
    assert counts["denoising-compare"] == (2, 3)
    assert counts["egemaps-below-compare"] == (3, 3)
