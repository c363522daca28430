"""The large comparison with the openXBOW jar (pytest -m slow): real MFCC LLDs of all 535
EmoDB files, codebook sizes 10..5000 and Na 1..500, and the whole `refimpl boaw` process
against the jar's at the paper's largest setting (timings: tests/benchmarks/test_bench_boaw.py)."""
import subprocess
import sys

import pytest

from refimpl.baselines import boaw as B
from refimpl.baselines import openxbow as X
from test_boaw import compare, fast_mode_difference_bound, jar_args, openxbow_jar  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emodb_all_csv(emodb_lld_csvs):
    return emodb_lld_csvs()


BIG_MATRIX = [
    dict(size=10, method="random", assignments=1),
    dict(size=10, method="random++", assignments=5, log=True),
    dict(size=100, method="random++", assignments=1, norm=1),
    dict(size=100, method="random", assignments=10, idf=True, standardize_input=True),
    dict(size=500, method="random++", assignments=1, standardize_input=True),
    dict(size=500, method="random++", assignments=50, log=True, idf=True),
    dict(size=1000, method="random", assignments=100, log=True, norm=2, standardize_output=True),
    dict(size=1000, method="random++", assignments=20, gaussian=3.0, norm=3, standardize_input=True),
    dict(size=2000, method="random++", assignments=200, log=True, standardize_input=True,
         standardize_output=True),
    dict(size=5000, method="random", assignments=10, log=True, idf=True, norm=3,
         standardize_input=True, standardize_output=True),
    dict(size=5000, method="random++", assignments=500),
    dict(size=5000, method="random++", assignments=500, log=True, standardize_input=True),
]


@pytest.mark.parametrize("cfg", BIG_MATRIX, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_emodb_all_matches_jar(tmp_path, openxbow_jar, emodb_all_csv, cfg):
    same_bags, same_cb, res = compare(tmp_path, openxbow_jar, emodb_all_csv, **cfg)
    assert res.bags.shape == (535, cfg["size"])
    assert same_bags and same_cb


def test_whole_process_output_equals_the_jars(tmp_path, openxbow_jar, emodb_all_csv):
    """Paper's largest setting (Cs=5000, Na=500) on all 535 files: the file written by the
    whole `python -m refimpl boaw` process is byte for byte the jar's."""
    cfg = dict(size=5000, assignments=500)
    X.run_openxbow(["-i", emodb_all_csv, "-o", tmp_path / "j.csv", "-writeName"] + jar_args(**cfg),
                   openxbow_jar)
    subprocess.run([sys.executable, "-m", "refimpl", "boaw", str(emodb_all_csv), "-o",
                    str(tmp_path / "r.csv"), "--size", "5000", "--assignments", "500"], check=True)
    assert (tmp_path / "j.csv").read_bytes() == (tmp_path / "r.csv").read_bytes()


def test_fast_mode_differences_all_emodb(emodb_all_csv):
    """The fast (BLAS) mode on all EmoDB frames, Cs=5000, Na=500: count of assignments that
    differ from openXBOW's (reported; they are float ties / near-ties)."""
    lld = B.read_lld_csv(str(emodb_all_csv))
    words = B.learn_codebook(lld.features, 5000, "random++", 10)
    diff, total = B.assignment_differences(lld.features, words, 500)
    bound = fast_mode_difference_bound(lld.features, words, 500)
    print(f"\nfast mode: {diff} of {total} assignments differ ({diff / total:.2e}); "
          f"rounding allows {bound}")
    assert diff <= bound
