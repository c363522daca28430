"""Extraction on dask workers (refimpl.features.distributed), shards and their merge:
the rows must be the very bytes of the serial run (`--jobs 1` in this process), also when
a worker process is killed half way; files finished before the kill are not computed
again (their cache entries keep their inodes: an entry is only ever replaced by a rename,
which makes a new inode)."""
import csv
import os
import shutil
import signal
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from oracles import import_or_unavailable

from refimpl.cli import main
from refimpl.errors import MissingDependency
from refimpl.network import cforward

pytestmark = pytest.mark.skipif(not cforward.available(), reason="C core not built (make build)")
distributed = import_or_unavailable("distributed", "dask")

BASE = ["--backend", "c", "--weights", "synthetic:0", "--no-progress"]
FILES = 8


@pytest.fixture(scope="module")
def emodb8(shared_data, tmp_path_factory):
    """The FILES shortest EmoDB utterances (by labels.csv's duration), copied into a
    folder emodb8/wav/."""
    with open(shared_data / "emodb" / "labels.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: (float(r["duration_s"]), r["file"]))
    folder = tmp_path_factory.mktemp("emodb8") / "wav"
    folder.mkdir()
    for r in rows[:FILES]:
        shutil.copy(shared_data / "emodb" / "wav" / r["file"], folder / r["file"])
    return folder


@pytest.fixture(scope="module")
def serial(emodb8, tmp_path_factory):
    """fmt -> the serial run's output in that format (one process, --jobs 1), all made
    through one cache that the shard tests then read."""
    folder = tmp_path_factory.mktemp("serial")
    made = {}

    def run(fmt):
        if fmt not in made:
            out = folder / f"serial.{fmt}"
            assert main(["extract", str(emodb8), "-o", str(out), "--jobs", "1",
                         "--cache-dir", str(folder / "cache"), *BASE]) == 0
            made[fmt] = out
        return made[fmt]
    run.cache = folder / "cache"
    return run


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of two worker processes, one thread each (as on a cluster's nodes)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def entries(cache):
    """Cache entry -> inode."""
    return {p.name: p.stat().st_ino for p in cache.rglob("*.npz")}


def test_local_cluster_gives_the_serial_bytes(emodb8, serial, tmp_path, capsys):
    out, cache = tmp_path / "dask.csv", tmp_path / "cache"
    assert main(["extract", str(emodb8), "-o", str(out), "--dask", "local:2",
                 "--cache-dir", str(cache), *BASE]) == 0
    assert out.read_bytes() == serial("csv").read_bytes()
    assert len(entries(cache)) == FILES          # every file went through the cache
    assert f"of {FILES} file(s)" in capsys.readouterr().err


def test_a_killed_worker_loses_no_finished_file(emodb8, serial, client, tmp_path):
    """SIGKILL one worker once the first file's entry is in the cache: dask reruns its
    chunk elsewhere, the output is still the serial bytes, and no entry written before
    the kill is written again; a rerun takes every file from the cache."""
    from refimpl import features
    cache, out = tmp_path / "cache", tmp_path / "killed.csv"
    victim = sorted(client.run(os.getpid).items())[0]
    seen = {}

    def kill_after_first_result():
        deadline = time.monotonic() + 120
        while not entries(cache) and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.update(entries(cache))
        os.kill(victim[1], signal.SIGKILL)

    killer = threading.Thread(target=kill_after_first_result)
    killer.start()
    config = features.ExtractorConfig(backend="c", weights="synthetic:0")
    summary = features.extract_to_file(features.find_audio([emodb8]), config, out,
                                       cache_root=cache, client=client)
    killer.join()
    assert 1 <= len(seen) < FILES, "the kill came after the run, so it tested nothing"
    assert victim[1] not in client.run(os.getpid).values()    # it really died
    assert out.read_bytes() == serial("csv").read_bytes()
    after = entries(cache)
    assert len(after) == FILES and summary.rows == FILES
    # finished files are not recomputed (a file whose result was lost with the worker
    # comes from the cache when dask reruns its chunk: summary.cached counts those)
    assert {k: after[k] for k in seen} == seen
    again = features.extract_to_file(features.find_audio([emodb8]), config, out,
                                     cache_root=cache, client=client)
    assert again.cached == FILES and entries(cache) == after
    assert out.read_bytes() == serial("csv").read_bytes()


def test_the_api_on_a_client_gives_the_same_frame(emodb8, client):
    from refimpl.features import DeepSpectrum
    paths = sorted(emodb8.glob("*.wav"))[:3]
    with DeepSpectrum(backend="c", weights="synthetic:0", window=1, hop=0.5,
                      cache=False) as ds:
        here = ds.process_files(paths)
        there = ds.process_files(paths, client=client)
        opened = client.run(_open_networks)
        ds.process_files(paths[:1], client=client)
    assert len(here) > len(paths)                   # windowed: several rows per file
    pd.testing.assert_frame_equal(there, here, check_exact=True)
    # each worker opened its network once: a worker that held networks still holds just
    # those (the module's client also served earlier tests' configurations), and one that
    # held none opened at most one (which workers the scheduler uses for each call is its
    # choice: a worker idle in the first call may open its network in the second)
    after = client.run(_open_networks)
    assert set(after) == set(opened)
    for worker, ids in after.items():
        assert ids == opened[worker] or (not opened[worker] and len(ids) == 1), (opened, after)


def _open_networks(dask_worker):
    """The ids of the networks a worker holds open (NetworkPlugin)."""
    from refimpl.features.distributed import PLUGIN_NAME
    return sorted(id(network) for network, _ in
                  dask_worker.plugins[PLUGIN_NAME]._networks.values())


@pytest.mark.parametrize("fmt", ["csv", "arff"])
def test_shards_merge_to_the_serial_bytes(emodb8, serial, tmp_path, fmt, capsys):
    out = tmp_path / f"sharded.{fmt}"
    cache = ["--cache-dir", str(serial.cache)]
    expected = serial(fmt).read_bytes()
    for i in range(3):       # 8 files in 3 shards: blocks of 2, 3 and 3
        assert main(["extract", str(emodb8), "-o", str(out), "--shard", f"{i}/3",
                     *cache, *BASE]) == 0
    assert not out.exists()
    assert main(["extract", "-o", str(out), "--merge"]) == 0
    assert out.read_bytes() == expected
    assert f"merged 3 shards ({FILES} rows)" in capsys.readouterr().err


def test_parquet_and_npz_shards_merge_to_the_same_values(emodb8, serial, tmp_path):
    cache = ["--cache-dir", str(serial.cache)]
    for fmt in ("parquet", "npz"):
        out = tmp_path / f"sharded.{fmt}"
        for i in range(2):
            assert main(["extract", str(emodb8), "-o", str(out), "--shard", f"{i}/2",
                         *cache, *BASE]) == 0
        assert main(["extract", "-o", str(out), "--merge"]) == 0
        if fmt == "parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(serial(fmt)),
                                          check_exact=True)
        else:
            with np.load(out) as got, np.load(serial(fmt)) as want:
                assert sorted(got.files) == sorted(want.files)
                for key in want.files:
                    np.testing.assert_array_equal(got[key], want[key], strict=True)


@pytest.mark.parametrize("args, message", [
    (["--dask", "nonsense"], "expected a scheduler address"),
    (["--dask", "local:0"], "local:N needs a number of workers"),
    (["--dask", "local:two"], "local:N needs a number of workers"),
    (["--dask", "local:2", "--jobs", "2"], "--jobs is for one machine"),
    (["--shard", "2/2"], "expected I/N with 0 <= I < N"),
    (["--shard", "1/0"], "expected I/N with 0 <= I < N"),
    (["--shard=-1/2"], "expected I/N with 0 <= I < N"),
    (["--shard", "a/b"], "expected I/N with 0 <= I < N"),
    (["--shard", "0/9"], "9 shards of 8 file(s)"),
    (["--shard", "0/2", "--reduced"], "cannot be made per shard"),
])
def test_bad_dask_and_shard_values_are_usage_errors(emodb8, tmp_path, capsys, args, message):
    assert main(["extract", str(emodb8), "-o", str(tmp_path / "x.csv"), "--no-cache",
                 *BASE, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())                  # nothing was written


def test_merge_names_what_is_missing_or_mixed(emodb8, serial, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["extract", "-o", str(out), "--merge"]) == 2
    assert "no shards to merge" in capsys.readouterr().err
    cache = ["--cache-dir", str(serial.cache)]
    assert main(["extract", str(emodb8), "-o", str(out), "--shard", "1/2", *cache, *BASE]) == 0
    assert main(["extract", "-o", str(out), "--merge"]) == 2
    assert "m.shard-0-of-2.csv" in capsys.readouterr().err
    assert main(["extract", str(emodb8), "-o", str(out), "--shard", "0/3", *cache, *BASE]) == 0
    assert main(["extract", "-o", str(out), "--merge"]) == 2
    assert "shards of different splits" in capsys.readouterr().err
    (tmp_path / "m.shard-0-of-3.csv").unlink()
    assert main(["extract", str(emodb8), "-o", str(out), "--shard", "0/2", "--window", "1",
                 *cache, *BASE]) == 0
    assert main(["extract", "-o", str(out), "--merge"]) == 2
    # the shards' records say which setting differs before their headers are read
    assert "m.shard-1-of-2.csv: made with another configuration" in capsys.readouterr().err
    assert not out.exists()
    assert main(["extract", str(emodb8), "-o", str(out), "--merge"]) == 2
    assert "takes no inputs" in capsys.readouterr().err


def test_without_dask_a_clear_missing_dependency(monkeypatch, emodb8, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)     # `import distributed` fails
    monkeypatch.delitem(sys.modules, "refimpl.features.distributed", raising=False)
    with pytest.raises(MissingDependency, match=r"pip install refimpl\[dask\]"):
        import refimpl.features.distributed  # noqa: F401
    monkeypatch.delitem(sys.modules, "refimpl.features.distributed", raising=False)
    assert main(["extract", str(emodb8), "-o", str(tmp_path / "x.csv"), "--dask", "local:2",
                 *BASE]) == 2
    assert "pip install refimpl[dask]" in capsys.readouterr().err


def test_reproduce_feature_stage_on_a_client_gives_the_same_rows(emodb8, client, tmp_path,
                                                                  monkeypatch):
    """refimpl reproduce --dask: the grid's deep spectrum extractor, on the workers."""
    from refimpl.experiments import adapters
    from refimpl.network import weights
    monkeypatch.setattr(weights, "alexnet_weights_path", lambda: tmp_path / "absent.caffemodel")
    paths = [str(p) for p in sorted(emodb8.glob("*.wav"))[:4]] + [str(tmp_path / "gone.wav")]
    here = adapters.DeepSpectrumExtractor(seed=0, backend="c")
    there = adapters.DeepSpectrumExtractor(seed=0, backend="c", client=client)
    assert there.config_id == here.config_id              # the same cache entries
    try:
        want, got = here.extract(paths), there.extract(paths)
    finally:
        here.close()
    for w, g in zip(want[:-1], got[:-1]):
        np.testing.assert_array_equal(g, w, strict=True)
    assert isinstance(got[-1], RuntimeError) and "gone.wav" in str(got[-1])
