"""The readers under coverage-guided fuzzing (fuzz_readers.py, atheris): each target for
FUZZ_BUDGET_S seconds in the slow suite, and every seed of its corpus once through the
same target in the default suite (fuzz_targets.py, without atheris). A finding is written to the test's
temporary folder (crash-..., timeout-..., oom-...) and fails the test with libFuzzer's
report; it then becomes a named test of its reader.

Found so far (60 s per reader, 2-core machine): the caffemodel codec took a blob shape
whose dims multiply past int64 (it wrapped around to the number of stored values, and
numpy raised a bare ValueError): tests/network/test_caffemodel.py::
test_a_blob_shape_whose_product_wraps_around_is_refused; its input is kept as a seed
(binary_seeds.FOUND_SHAPE_PRODUCT_WRAPS). A later 30 s run: a blob ending in a group
(wire type 3) made the field iterator raise a bare StopIteration: test_caffemodel.py::
test_a_blob_that_ends_in_a_group_is_read_without_a_stray_stopiteration, input kept as
binary_seeds.FOUND_GROUP_AT_END.

The text readers' seeds are files in corpus/; the binary readers' (wav, caffemodel) are
made by binary_seeds.py: no audio or caffemodel is kept in git.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from oracles import import_or_unavailable

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TARGETS = ["wav", "caffemodel", "shard", "labels", "manifest"]
FUZZ_BUDGET_S = int(os.environ.get("REFIMPL_FUZZ_BUDGET_S", 30))   # per target (CI: 5 x 30 s)
# libFuzzer's seed: fixed, so CI repeats the same search and a finding reproduces (a run
# stopped by time still reaches a different depth on a loaded machine); set it to explore
FUZZ_SEED = int(os.environ.get("REFIMPL_FUZZ_SEED", 20170829))


def seed_folder(target, tmp_path):
    """The seeds of `target`: corpus/TARGET, or made into tmp_path (binary_seeds)."""
    from binary_seeds import SEEDS, write_seeds
    if target in SEEDS:
        return write_seeds(target, tmp_path / "seeds" / target)
    return HERE / "corpus" / target


def fuzz_environment():
    """This checkout first on the fuzzer's PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


def _fuzz(target, tmp_path, *options):
    import_or_unavailable("atheris", "atheris",
                          "atheris is not installed (the fuzzer; requirements-torch.txt)")
    found = tmp_path / "corpus"     # new inputs go here, never into the kept seeds
    found.mkdir()
    env = fuzz_environment()
    p = subprocess.run([sys.executable, str(HERE / "fuzz_readers.py"), target, *options,
                        "-max_len=4096", "-rss_limit_mb=2048", "-timeout=10",
                        f"-artifact_prefix={tmp_path}/", str(found),
                        str(seed_folder(target, tmp_path))],
                       capture_output=True, text=True, env=env,
                       timeout=FUZZ_BUDGET_S + 300)
    findings = sorted(f.name for f in tmp_path.iterdir() if f.is_file())   # crash-..., ...
    assert p.returncode == 0 and not findings, (findings, p.stderr[-6000:])
    return p


@pytest.mark.parametrize("target", TARGETS)
def test_every_seed_of_the_corpus_passes(target, tmp_path):
    """The targets themselves, without atheris: each seed returns or raises RefimplError."""
    from fuzz_targets import TARGETS as run
    seeds = sorted(seed_folder(target, tmp_path).iterdir())
    assert seeds
    for seed in seeds:
        run[target](seed.read_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_the_reader_survives_its_fuzzing_budget(target, tmp_path):
    p = _fuzz(target, tmp_path, f"-max_total_time={FUZZ_BUDGET_S}", f"-seed={FUZZ_SEED}")
    assert "Done" in p.stderr


def test_the_memory_budget_counts_the_fuzzer_alone(tmp_path):
    """libFuzzer's -rss_limit_mb reads the peak RSS, which Linux carries across execve: a
    parent that once held 1 GB (as CI's pytest holds 2.2 GB after the image oracles) must
    not make the fuzzer start "out of memory". The parent here is a small Python that
    touches 1 GB and then starts the fuzzer as subprocess.run does (vfork and exec)."""
    import_or_unavailable("atheris", "atheris",
                          "atheris is not installed (the fuzzer; requirements-torch.txt)")
    seeds = seed_folder("labels", tmp_path)
    env = fuzz_environment()
    parent = ("import subprocess, sys\n"
              "held = bytearray(1 << 30)\n"
              "held[::4096] = b'\\x01' * len(held[::4096])\n"
              "sys.exit(subprocess.run(sys.argv[1:]).returncode)\n")
    p = subprocess.run([sys.executable, "-c", parent, sys.executable,
                        str(HERE / "fuzz_readers.py"), "labels", "-runs=20",
                        f"-seed={FUZZ_SEED}", "-rss_limit_mb=900", str(seeds)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    peaks = [int(mb) for mb in re.findall(r"rss: (\d+)Mb", p.stderr)]
    assert peaks and max(peaks) < 900, p.stderr[-3000:]
