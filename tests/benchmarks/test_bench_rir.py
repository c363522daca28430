"""pytest-benchmark: the noisy condition's room impulse response, pyroomacoustics'
compute_rir on one thread (the anchor) against refimpl.conditions.rir's exact
re-organisations of the same arithmetic (numpy, and the compiled builder). One room of mean
size for the noisy condition's ranges (image-source order 85, 0.83 M images); all three give
the same bits (asserted here, tested in tests/conditions/test_rir.py).
Group "rir"; compare the means within one run.
"""
import numpy as np
import pytest

from refimpl.conditions import room_simulation as N
from refimpl.conditions import rir as R
from refimpl.corpus.table import read_json

pra = pytest.importorskip("pyroomacoustics")


@pytest.fixture(scope="module")
def room():
    params = N.draw_parameters(np.random.default_rng(3), read_json(N.SPEC_FILE), "train",
                               N.noise_pool())
    return params, R.pyroomacoustics_rir(params, 16000, num_threads=1)[0]


@pytest.mark.benchmark(group="rir")
@pytest.mark.parametrize("how", ["pyroomacoustics", "numpy", "compiled"])
def test_bench_rir(benchmark, room, how):
    params, reference = room
    if how == "compiled" and R._kernel() is None:
        pytest.skip("compiled builder not built")
    run = {"pyroomacoustics": lambda: R.pyroomacoustics_rir(params, 16000, num_threads=1)[0],
           "numpy": lambda: R.shoebox_rir(params, 16000, compiled=False)[0],
           "compiled": lambda: R.shoebox_rir(params, 16000)[0]}[how]
    rir = benchmark.pedantic(run, rounds=3, iterations=1)
    assert np.array_equal(rir, reference)
