"""The large comparison with the openXBOW jar (pytest -m slow): real MFCC LLDs of all 535
EmoDB files, codebook sizes 10..5000 and Na 1..500, and the paper's largest setting
(Cs 5000, Na 500) on all of EmoDB: the jar's bags and codebook against ours in-process and
against the file the whole `refimpl boaw` process writes (timings:
tests/benchmarks/test_bench_boaw.py).

What the jar costs: its word assignment scans the whole codebook once per assigned word,
frames x Cs x Na steps, so Cs 5000 / Na 500 on all of EmoDB's 147,637 frames takes the jar
about 10 minutes (with the quick JIT, openxbow.PREDICTABLE_JIT) where the other settings
here take seconds to two minutes. That run happens once, in the background, from this
module's first jar comparison to its last test; the other Na 500 setting runs on the
first 54 files (13,805 frames)."""
import subprocess
import sys

import pytest

from refimpl.baselines import boaw as B
from refimpl.baselines import openxbow as X
from test_boaw import compare, fast_mode_difference_bound, jar_args, openxbow_jar  # noqa: F401

pytestmark = pytest.mark.slow

PAPER_LARGEST = dict(size=5000, method="random++", assignments=500)


@pytest.fixture(scope="module")
def emodb_all_csv(emodb_lld_csvs):
    return emodb_lld_csvs()


@pytest.fixture(scope="module")
def emodb_tenth_csv(emodb_lld_csvs):
    return emodb_lld_csvs(54)


class BackgroundJar:
    """The jar on one input, running beside the tests until `result()` is asked for."""

    def __init__(self, folder, args, jar):
        self.out, self.codebook = folder / "j.csv", folder / "jcb.txt"
        self.cmd = X.openxbow_command(["-o", self.out, "-writeName", "-B", self.codebook]
                                      + args, jar, X.PREDICTABLE_JIT)
        self.log = folder / "jar.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT)

    def result(self, timeout=3600):
        """(bags file, codebook file), once the jar has finished and succeeded."""
        rc = self.process.wait(timeout)
        # stdout and stderr went to one log: all of it is searched, and shown once
        X.check_openxbow_run(self.cmd, rc, "", self.log.read_text())
        return self.out, self.codebook

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def paper_largest_jar(tmp_path_factory, openxbow_jar, emodb_all_csv):
    """The jar at the paper's largest setting on all EmoDB, started by the first jar
    comparison of the module (the first test in it) so that its ten minutes overlap the
    others."""
    run = BackgroundJar(tmp_path_factory.mktemp("jar_paper_largest"),
                        ["-i", emodb_all_csv] + jar_args(**PAPER_LARGEST), openxbow_jar)
    yield run
    run.stop()


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
]


def config_id(cfg):
    return ",".join(f"{k}={v}" for k, v in cfg.items())


@pytest.mark.usefixtures("paper_largest_jar")
@pytest.mark.parametrize("cfg", BIG_MATRIX, ids=config_id)
def test_emodb_all_matches_jar(tmp_path, openxbow_jar, emodb_all_csv, cfg):
    same_bags, same_cb, res = compare(tmp_path, openxbow_jar, emodb_all_csv, **cfg)
    assert res.bags.shape == (535, cfg["size"])
    assert same_bags and same_cb


@pytest.mark.usefixtures("paper_largest_jar")
@pytest.mark.parametrize("cfg", [dict(PAPER_LARGEST, log=True, standardize_input=True)],
                         ids=config_id)
def test_a_tenth_of_emodb_at_na_500_matches_jar(tmp_path, openxbow_jar, emodb_tenth_csv, cfg):
    same_bags, same_cb, res = compare(tmp_path, openxbow_jar, emodb_tenth_csv, **cfg)
    assert res.bags.shape == (54, cfg["size"])
    assert same_bags and same_cb


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


def test_paper_largest_setting_all_emodb_equals_the_jar(tmp_path, emodb_all_csv,
                                                        paper_largest_jar):
    """Paper's largest setting (Cs=5000, Na=500) on all 535 files: our bags and codebook
    in-process, and the file the whole `python -m refimpl boaw` process writes, are byte
    for byte the jar's. Last in the module: it waits for the background jar."""
    subprocess.run([sys.executable, "-m", "refimpl", "boaw", str(emodb_all_csv), "-o",
                    str(tmp_path / "r.csv"), "--size", "5000", "--assignments", "500"],
                   check=True)
    res = B.boaw(B.read_lld_csv(str(emodb_all_csv)), **PAPER_LARGEST)
    B.write_bags(tmp_path / "r_api.csv", res.names, res.bags, source=str(emodb_all_csv))
    B.save_codebook(tmp_path / "rcb.txt", res.codebook)
    jar_bags, jar_codebook = paper_largest_jar.result()
    assert (tmp_path / "r.csv").read_bytes() == jar_bags.read_bytes()
    assert (tmp_path / "r_api.csv").read_bytes() == jar_bags.read_bytes()
    assert (tmp_path / "rcb.txt").read_bytes() == jar_codebook.read_bytes()
