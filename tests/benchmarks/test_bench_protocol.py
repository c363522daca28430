"""Speed of the protocol on EmoDB-sized data (about 270 training files, 7 classes).

Marked slow (the BoAW search alone takes about 2-3 CPU minutes): `make test` leaves it out,
`make bench` runs it (pytest tests/benchmarks/test_bench_protocol.py --benchmark-enable).
"""
import numpy as np
import pytest

from refimpl import protocol as C
from tests.protocol.protocol_helpers import speaker_folds


def _emodb_sized(d, n=270, n_classes=7, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.normal(size=(n, d)).astype(np.float32)
    speakers = rng.integers(0, 5, n)
    return X, y, speaker_folds(speakers)


@pytest.mark.slow
@pytest.mark.parametrize("name,d", [("egemaps", 88), ("deepspectrum", 4096), ("compare", 6373)])
def test_select_alpha_speed(benchmark, name, d):
    X, y, fold = _emodb_sized(d)
    alpha, cv = benchmark.pedantic(C.select_alpha, args=(X, y, fold), rounds=1, iterations=1)
    assert len(cv) == 24


@pytest.mark.slow
def test_select_boaw_speed(benchmark):
    """The SGD part of the BoAW search (bags drawn at random: the quantiser is not timed)."""
    X, y, fold = _emodb_sized(2)
    llds = [np.zeros((1, 1))] * len(y)

    def bags(train, test, size, na, seed):
        rng = np.random.default_rng(seed)
        return (rng.poisson(1.0, (len(train), size)).astype(float),
                rng.poisson(1.0, (len(test), size)).astype(float))

    settings = {(t, o): (y if t == "7class" else y % 2, o) for t in ("2class", "7class")
                for o in (False, True)}
    models = benchmark.pedantic(C.select_boaw_multi, args=(llds, fold, bags, settings),
                                rounds=1, iterations=1)
    assert len(models) == 4


# The inner CV's SVM fits: all 24 alphas on one direction of EmoDB-sized deep spectrum
# data (135 files, 4096 features, 7 classes), scikit-learn's SGDClassifier one alpha at a
# time (the anchor: the definition) against the compiled lockstep SGD (the same models,
# refimpl.protocol.sgd). Group "sgd-24-alphas"; compare the two medians of one run.
@pytest.mark.slow
@pytest.mark.benchmark(group="sgd-24-alphas")
@pytest.mark.parametrize("engine", ["sklearn", "kernel"])
def test_fit_all_alphas_speed(benchmark, engine):
    from refimpl.protocol import sgd
    if engine == "kernel":
        from oracles import unavailable
        try:
            sgd._kernel()
        except ImportError:
            unavailable("core", "the compiled SGD is not built (make build)")
    X, y, _ = _emodb_sized(4096, n=135)
    X = C.standardise(X)
    svms = benchmark.pedantic(sgd.fit_svms, args=(X, y, C.ALPHAS, 0), kwargs={"engine": engine},
                              rounds=3, iterations=1)
    assert len(svms) == 24
