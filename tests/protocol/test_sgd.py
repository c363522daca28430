"""The protocol's linear SVM (refimpl.protocol.sgd): the compiled many-alpha SGD gives
scikit-learn's SGDClassifier models bit for bit.

Oracle: scikit-learn's SGDClassifier(alpha, random_state=seed, **SGD_SETTINGS).fit itself
(fit_svms_reference is nothing but that). Equality, not closeness: the kernel performs the
same IEEE double operations in the same order, so a difference in any bit of coef_ or
intercept_ is a bug (a changed seed draw, a reordered sum, a fused multiply-add).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import unavailable
from refimpl import protocol as P
from refimpl.protocol import sgd


@pytest.fixture(scope="module", autouse=True)
def kernel():
    try:
        return sgd._kernel()
    except ImportError:
        unavailable("core", "the compiled SGD (refimpl.protocol._sgd) is not built (make build)")


def sklearn_models(X, y, alphas, seed):
    return [P.make_svm(a, seed).fit(X, y) for a in alphas]


def assert_same_models(got, X, y, alphas, seed):
    want = sklearn_models(X, y, alphas, seed)
    assert len(got) == len(want)
    for g, w, alpha in zip(got, want, alphas):
        assert g.alpha == alpha
        assert np.array_equal(g.classes_, w.classes_)
        assert g.coef_.shape == w.coef_.shape and g.coef_.dtype == w.coef_.dtype
        assert np.array_equal(g.coef_, w.coef_), f"coef_ differs at alpha {alpha}"
        assert np.array_equal(g.intercept_, w.intercept_), f"intercept_ differs at alpha {alpha}"
        assert np.array_equal(g.predict(X), w.predict(X))
        assert np.array_equal(g.decision_function(X), w.decision_function(X))


@st.composite
def problems(draw):
    n = draw(st.integers(3, 90))
    d = draw(st.integers(1, 70))
    k = draw(st.integers(2, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((n, d)) * draw(st.sampled_from([1e-3, 1.0, 30.0]))
    if draw(st.booleans()):
        X[:, rng.integers(0, d)] = 0.0            # a constant (standardised) column
    y = np.array([f"class{c}" for c in rng.integers(0, k, n)])
    y[:2] = ["class0", "class1"]                   # at least two classes
    if draw(st.booleans()):                        # oversampled: repeated rows
        X, y = P.oversample(X, y, rng=rng)
    seed = draw(st.integers(0, 2**32 - 1))
    alphas = draw(st.lists(st.sampled_from(P.ALPHAS), min_size=1, max_size=11))
    return np.ascontiguousarray(X), y, alphas, seed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_compiled_sgd_equals_sklearn_bit_for_bit(problem):
    X, y, alphas, seed = problem
    assert_same_models(sgd.fit_svms(X, y, alphas, seed, engine="kernel"), X, y, alphas, seed)


@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_the_whole_alpha_grid_on_a_deep_spectrum_sized_problem(n_classes):
    # 24 alphas = three blocks of eight lanes; 1e-6 .. 50 spans the tiny steps and the
    # alphas whose first steps shrink the weights to zero (scale 0, then reset_wscale).
    rng = np.random.default_rng(n_classes)
    X = P.standardise(rng.standard_normal((120, 600)) * rng.uniform(0.1, 10, 600))
    y = rng.integers(0, n_classes, 120)
    assert_same_models(sgd.fit_svms(X, y, P.ALPHAS, 12345, engine="kernel"), X, y,
                       P.ALPHAS, 12345)


def test_the_rescale_path_is_taken_and_still_equal():
    # alpha = 50: eta * alpha > 1 at the first samples, so scikit-learn scales w by 0, which
    # drops wscale under 1e-9 and multiplies the weights out (WeightVector.reset_wscale).
    X = np.random.default_rng(0).standard_normal((40, 5))
    y = np.arange(40) % 2
    alpha = 50.0
    typw = np.sqrt(1 / np.sqrt(alpha))
    assert 1 - alpha / (alpha * (1 / (typw * alpha))) < 0     # the first shrink factor
    assert_same_models(sgd.fit_svms(X, y, [alpha, 1e-6], 7, engine="kernel"), X, y,
                       [alpha, 1e-6], 7)


def test_seeds_are_drawn_as_sklearn_draws_them():
    # Different seeds give different sample orders, hence different models; the same seed
    # the same model, for two classes and for several.
    X = np.random.default_rng(1).standard_normal((50, 8))
    for y in (np.arange(50) % 2, np.arange(50) % 4):
        a, b = (sgd.fit_svms(X, y, [1e-3], s, engine="kernel")[0] for s in (1, 2))
        assert not np.array_equal(a.coef_, b.coef_)
        assert_same_models([a], X, y, [1e-3], 1)
    assert len(sgd.shuffle_seeds(2, 0)) == 1 and len(sgd.shuffle_seeds(5, 0)) == 5


def test_engines_and_errors(monkeypatch):
    X = np.random.default_rng(2).standard_normal((20, 3))
    y = np.arange(20) % 3
    ref = sgd.fit_svms(X, y, [1e-4], 0, engine="sklearn")[0]
    monkeypatch.setenv(sgd.ENGINE_VARIABLE, "sklearn")
    assert sgd._engine(None) == "sklearn"
    monkeypatch.setenv(sgd.ENGINE_VARIABLE, "kernel")
    got = sgd.fit_svms(X, y, [1e-4], 0)[0]
    assert np.array_equal(got.coef_, ref.coef_)
    with pytest.raises(ValueError, match="SGD engine"):
        sgd.fit_svms(X, y, [1e-4], 0, engine="gpu")
    with pytest.raises(ValueError, match="greater than one"):
        sgd.fit_svms(X, np.zeros(20), [1e-4], 0, engine="kernel")
    with pytest.raises(ValueError, match="alphas must be positive"):
        sgd.fit_svms(X, y, [0.0], 0, engine="kernel")
    # settings the kernel does not implement go to scikit-learn under "auto", and are
    # refused under "kernel"
    monkeypatch.setitem(sgd.SGD_SETTINGS, "loss", "log_loss")
    assert sgd._engine("auto") == "sklearn"
    with pytest.raises(ValueError, match="implements"):
        sgd._engine("kernel")


def test_non_finite_weights_raise_like_sklearn():
    X = np.full((6, 2), 1e308)
    y = np.arange(6) % 2
    with pytest.raises(ValueError) as want:
        P.make_svm(1e-6, 0).fit(X, y)
    with pytest.raises(ValueError, match="under-/overflow") as got:
        sgd.fit_svms(X, y, [1e-6], 0, engine="kernel")
    assert "epoch #1" in str(want.value) and "epoch #1" in str(got.value)


def test_the_protocol_selects_with_the_kernel_as_with_sklearn(monkeypatch):
    # select_alpha's whole table of inner-CV UARs, both engines.
    rng = np.random.default_rng(5)
    X = rng.standard_normal((80, 30))
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, 80)]
    fold = np.where(np.arange(80) < 40, 1, 2)
    tables = []
    for engine in ("kernel", "sklearn"):
        monkeypatch.setenv(sgd.ENGINE_VARIABLE, engine)
        tables.append(P.select_alpha(X, y, fold, oversampling=True, seed=3))
    assert tables[0] == tables[1]
