"""pytest-benchmark: writing per-file cache entries (one fc7 row each), renamed into place
without an fsync (what FeatureCache does) against with one (atomic_open's default, the
anchor). Group "cache-put"; compare the means within one run."""
import numpy as np
import pytest

from refimpl._util.atomic import atomic_path


@pytest.mark.benchmark(group="cache-put")
@pytest.mark.parametrize("durable", [True, False], ids=["fsync", "rename-only"])
def test_bench_cache_put(benchmark, tmp_path, durable):
    row = np.random.default_rng(0).random(4096, dtype=np.float32)
    written = []

    def put_100():      # new names each round, as new cache entries have
        for _ in range(100):
            written.append(tmp_path / f"{len(written)}.npy")
            with atomic_path(written[-1], durable=durable) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, row)

    benchmark.pedantic(put_100, rounds=5, iterations=1)
    assert np.array_equal(np.load(written[-1]), row)
