"""pytest-benchmark: the room impulse response of the FAU-AIBO stand-in's room microphone,
pyroomacoustics' compute_rir (refimpl.conditions, the anchor) against the stand-in's exact
re-organisations of the same arithmetic (aibo_standin.shoebox_rir, numpy and compiled).
One room of mean size for the noisy condition's ranges (image-source order 85, 0.83 M
images); all three give the same bits (asserted here, tested in test_aibo_standin.py).
Group "standin-rir"; compare the means within one run.
"""
import numpy as np
import pytest

from refimpl import aibo_standin as S, conditions as N
from refimpl.corpus import read_json

pra = pytest.importorskip("pyroomacoustics")


@pytest.fixture(scope="module")
def room():
    params = N.draw_parameters(np.random.default_rng(3), read_json(N.SPEC_FILE), "train",
                               N.noise_pool())
    old = pra.constants.get("num_threads")
    pra.constants.set("num_threads", S.RIR_THREADS)
    reference = N.room_impulse_response(params, 16000)[0]
    yield params, reference
    pra.constants.set("num_threads", old)


@pytest.mark.benchmark(group="standin-rir")
@pytest.mark.parametrize("how", ["pyroomacoustics", "standin-numpy", "standin-compiled"])
def test_bench_standin_rir(benchmark, room, how):
    params, reference = room
    if how == "standin-compiled" and S._kernel() is None:
        pytest.skip("compiled core not built")
    run = {"pyroomacoustics": lambda: N.room_impulse_response(params, 16000)[0],
           "standin-numpy": lambda: S.shoebox_rir(params, 16000, compiled=False)[0],
           "standin-compiled": lambda: S.shoebox_rir(params, 16000)[0]}[how]
    rir = benchmark.pedantic(run, rounds=3, iterations=1)
    assert np.array_equal(rir, reference)
