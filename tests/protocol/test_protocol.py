"""The classification protocol, checked against independent oracles (scikit-learn, scipy)."""
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, confusion_matrix
from sklearn.preprocessing import StandardScaler

import tolerances as tol
from refimpl import protocol as C
from refimpl.protocol import boaw_search, selection
from tests.protocol.protocol_helpers import evaluate_boaw, speaker_folds, train_and_test


def test_alpha_grid_is_the_papers_24_decimal_values():
    expected = [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3,
                1e-2, 2e-2, 5e-2, 1e-1, 2e-1, 5e-1, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
    assert list(C.ALPHAS) == expected
    assert len(set(C.ALPHAS)) == 24
    assert repr(C.ALPHAS[1]) == "2e-06"


def test_boaw_ranges_and_grid():
    assert C.BOAW_SIZES == (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
    assert C.BOAW_ASSIGNMENTS == (1, 2, 5, 10, 20, 50, 100, 200, 500)
    grid = C.boaw_grid()
    assert all(na <= cs for cs, na in grid)
    assert (5000, 500) in grid and (10, 20) not in grid and (10, 10) in grid


@pytest.mark.parametrize("seed", range(8))
def test_uar_and_confusion_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c", "d", "e"][: 2 + seed % 4]
    y_true = rng.choice(classes, size=57, p=None)
    y_pred = rng.choice(classes, size=57)
    # the mean of the per-class recalls k / n in float64: a division per class, the sum, the
    # mean; two implementations, each within gamma(classes + 2) of the exact value
    want = balanced_accuracy_score(y_true, y_pred)
    assert abs(C.uar(y_true, y_pred, classes) - want) <= 2 * tol.gamma64(len(classes) + 2) * want
    np.testing.assert_array_equal(C.confusion(y_true, y_pred, classes),
                                  confusion_matrix(y_true, y_pred, labels=classes))


def test_uar_weights_classes_equally():
    # 9 of class a all right, 1 of class b wrong: accuracy 0.9 but UAR 0.5.
    assert C.uar(["a"] * 9 + ["b"], ["a"] * 10, ["a", "b"]) == 0.5


def test_unknown_label_is_an_error():
    with pytest.raises(ValueError, match="'z'"):
        C.confusion(["a", "z"], ["a", "a"], ["a", "b"])


def test_oversampling_counts():
    rng = np.random.default_rng(0)
    y = np.array(["A"] * 101 + ["B"] * 30 + ["C"] * 80 + ["D"] * 74 + ["E"] * 75)
    X = np.arange(len(y))[:, None].astype(float)
    X_o, y_o = C.oversample(X, y, 0.75, rng)
    target = math.floor(0.75 * 101)   # 75.75 -> 75 (floor, as documented)
    labels, counts = np.unique(y_o, return_counts=True)
    got = dict(zip(labels.tolist(), counts.tolist()))
    assert got == {"A": 101, "B": target, "C": 80, "D": target, "E": 75}
    # All originals kept, in order, first; every repeat is a row of its own class.
    np.testing.assert_array_equal(X_o[: len(y), 0], X[:, 0])
    extra = X_o[len(y):, 0].astype(int)
    assert (y[extra] == y_o[len(y):]).all()


def test_oversampling_is_seeded():
    y = np.array([0] * 40 + [1] * 7 + [2] * 3)
    a = C.oversample_indices(y, rng=5)
    b = C.oversample_indices(y, rng=5)
    c = C.oversample_indices(y, rng=6)
    np.testing.assert_array_equal(a, b)
    assert len(a) == len(c) == 50 + (30 - 7) + (30 - 3)
    assert not np.array_equal(a, c)


def test_standardise_matches_sklearn():
    rng = np.random.default_rng(1)
    X = rng.normal(3, 2, size=(40, 6))
    X[:, 2] = 7.0   # constant column: scale 1, as StandardScaler
    T = rng.normal(size=(9, 6))
    A, B = C.standardise(X, T)
    scaler = StandardScaler().fit(X)
    # (x - mean) / std in float64 on each side: the mean within gamma(n) of mean |x|, the
    # variance (two-pass) within (n + 3) u relative, its square root halves that, then the
    # difference and the division round once each
    n = len(X)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    d_mu = tol.gamma64(n) * np.abs(X).mean(axis=0)
    for got, data in ((A, X), (B, T)):
        want = scaler.transform(data)
        bound = 2 * ((d_mu + tol.U64 * np.abs(data - mu)) / sd
                     + np.abs(want) * ((n + 3) / 2 * tol.U64 + 2 * tol.U64))
        tol.assert_within(got, want, bound, "standardise")


@pytest.mark.parametrize("p1,p2,n", [(0.70, 0.60, 500), (0.55, 0.58, 8257), (0.9, 0.4, 30),
                                     (0.123, 0.456, 1000)])
def test_z_test_matches_scipy_chi_squared(p1, p2, n):
    # Two-proportion pooled z-test == chi-squared on the 2x2 table without continuity
    # correction (z^2 = chi^2), here with integer counts so both see the same data.
    k1, k2 = round(p1 * n), round(p2 * n)
    z, p = C.z_test(k1 / n, k2 / n, n)
    chi2, p_oracle, _, _ = stats.chi2_contingency([[k1, n - k1], [k2, n - k2]], correction=False)
    # z^2 and chi^2 are a few float64 operations on the same counts (about 10 roundings
    # each), but both take a difference of nearly equal numbers (p1 - p2, observed -
    # expected), which multiplies its operands' rounding by (p1 + p2) / |p1 - p2|, twice
    # in a square. The p-values are the normal tail at |z| and the chi^2(1) tail at chi^2 by
    # different special functions (cephes, relative errors of order 1e-14); a relative
    # error r of chi^2 moves its tail by about chi^2 / 2 r.
    r = 2 * (2 * (p1 + p2) / abs(p1 - p2) + 10) * tol.U64
    assert abs(z * z - chi2) <= r * chi2
    assert abs(p - p_oracle) <= (chi2 / 2 * r + 1e-13) * p_oracle
    assert np.sign(z) == np.sign(k1 - k2)


def test_significance_is_one_sided_in_direction_and_two_sided_in_level():
    assert C.significantly_better(0.70, 0.60, 2000)
    assert not C.significantly_better(0.60, 0.70, 2000)      # worse is never "better"
    assert not C.significantly_better(0.62, 0.60, 300)       # too small a difference
    z, p = C.z_test(0.5, 0.5, 10)
    assert (z, p) == (0.0, 1.0)


def _toy(seed=0, n_speakers=8, per_speaker=30, d=20, n_classes=3):
    rng = np.random.default_rng(seed)
    speakers = np.repeat(np.arange(n_speakers), per_speaker)
    y = rng.integers(0, n_classes, size=len(speakers))
    X = rng.normal(size=(len(y), d))
    X[:, 1:4] += 2.5 * np.eye(n_classes, 3)[y]
    X[:, 0] = speakers          # column 0 carries the speaker (for the fold spy)
    return X, y, speakers


def test_speaker_folds_are_independent_and_balanced():
    speakers = np.array(["s1"] * 50 + ["s2"] * 40 + ["s3"] * 30 + ["s4"] * 25 + ["s5"] * 10)
    fold = speaker_folds(speakers)
    C.check_speaker_independent(fold, speakers)
    assert set(fold.tolist()) == {1, 2}
    assert abs((fold == 1).sum() - (fold == 2).sum()) <= 20
    with pytest.raises(ValueError, match="speaker 's1'"):
        C.check_speaker_independent(np.r_[[1, 2], fold[2:]], speakers)


def test_inner_cv_never_mixes_a_speaker(monkeypatch):
    X, y, speakers = _toy()
    fold = speaker_folds(speakers)
    seen = []
    real = C.standardise

    def spy(train, *others):
        seen.append((set(train[:, 0].tolist()), [set(o[:, 0].tolist()) for o in others]))
        return real(train, *others)

    monkeypatch.setattr(selection, "standardise", spy)    # where select_alpha finds it
    C.select_alpha(X, y, fold, alphas=(1e-3, 1.0), speakers=speakers)
    assert len(seen) == 2       # each direction of the inner CV, once for every alpha
    for train_speakers, (score_speakers,) in seen:
        assert train_speakers and score_speakers
        assert not train_speakers & score_speakers
    with pytest.raises(ValueError, match="speaker-independent"):
        C.select_alpha(X, y, np.where(np.arange(len(y)) % 2, 1, 2), speakers=speakers)


def test_protocol_learns_and_is_deterministic_for_a_seed():
    X, y, speakers = _toy()
    X[:, 0] = 0.0
    fold = speaker_folds(speakers)
    Xt, yt, _ = _toy(seed=1)
    Xt[:, 0] = 0.0
    r1 = train_and_test(X, y, fold, Xt, yt, oversampling=True, seed=3, speakers=speakers)
    r2 = train_and_test(X, y, fold, Xt, yt, oversampling=True, seed=3, speakers=speakers)
    assert r1.uar > 0.8
    assert r1.alpha in C.ALPHAS
    assert set(r1.cv_uars) == set(C.ALPHAS)
    assert r1.cv_uars[r1.alpha] == max(r1.cv_uars.values())
    assert r1.uar == r2.uar and r1.alpha == r2.alpha and r1.cv_uars == r2.cv_uars
    np.testing.assert_array_equal(r1.y_pred, r2.y_pred)
    np.testing.assert_array_equal(r1.confusion, r2.confusion)
    assert r1.confusion.sum() == len(yt) == r1.n_test
    want = balanced_accuracy_score(yt, r1.y_pred)
    assert abs(r1.uar - want) <= 2 * tol.gamma64(len(set(yt)) + 2) * want


def test_ties_go_to_the_larger_alpha():
    assert C.best_of({1e-3: 0.5, 1.0: 0.7, 5.0: 0.7, 50.0: 0.6}) == 5.0


def test_oversampling_only_touches_training_data():
    X, y, speakers = _toy(n_classes=2)
    keep = (y == 0) | (np.arange(len(y)) % 5 == 0)      # make class 1 a minority
    X, y, speakers = X[keep], y[keep], speakers[keep]
    X[:, 0] = 0.0
    fold = speaker_folds(speakers)
    model = C.train_model(X, y, fold, alphas=(0.01,), oversampling=True, seed=0)
    majority = np.bincount(y).max()
    assert model.n_train == len(y)
    assert model.n_train_oversampled == majority + math.floor(0.75 * majority)
    result = C.evaluate(model, X, y)
    assert result.n_test == len(y)


def _random_codebook_boaw(train_llds, test_llds, size, assignments, seed):
    """A small stand-in for openXBOW: random codebook from training frames, Na nearest words.

    Only the first two LLD columns count; the third carries the file's index for the spy.
    """
    rng = np.random.default_rng(seed)
    frames = np.concatenate(train_llds)[:, :2]
    book = frames[rng.choice(len(frames), size=size, replace=len(frames) < size)]

    def bag(llds):
        d = ((llds[:, None, :2] - book[None]) ** 2).sum(-1)
        nearest = np.argsort(d, axis=1, kind="stable")[:, :assignments]
        return np.bincount(nearest.ravel(), minlength=size).astype(float)

    as_bags = lambda files: np.array([bag(f) for f in files]).reshape(len(files), size)
    return as_bags(train_llds), as_bags(test_llds)


def test_select_boaw_learns_codebooks_on_training_llds_only():
    rng = np.random.default_rng(0)
    speakers = np.repeat(np.arange(6), 10)
    y = rng.integers(0, 2, len(speakers))
    llds = [rng.normal(size=(12, 3)) + 2.0 * label for label in y]
    for i, frames in enumerate(llds):
        frames[:, 2] = i                  # file index in every frame, for the spy
    fold = speaker_folds(speakers)
    calls = []

    def spy(train, test, size, na, seed):
        calls.append(({int(f[0, 2]) for f in train}, {int(f[0, 2]) for f in test}, size, na))
        return _random_codebook_boaw(train, test, size, na, seed)

    boaw = C.select_boaw(llds, y, fold, spy, sizes=(10, 20), assignments=(1, 5, 50),
                         alphas=(1e-2, 1.0), seed=2, speakers=speakers)
    inner = [c for c in calls if c[1]]
    assert {(c[2], c[3]) for c in inner} == {(10, 1), (10, 5), (20, 1), (20, 5)}
    for train_files, test_files, _, _ in inner:
        assert not train_files & test_files
        assert len({fold[i] for i in train_files}) == 1
    final = [c for c in calls if not c[1]]
    assert len(final) == 1 and final[0][0] == set(range(len(y)))
    assert final[0][2:] == (boaw.size, boaw.assignments)
    assert (boaw.size, boaw.assignments) in {(10, 1), (10, 5), (20, 1), (20, 5)}
    assert len(boaw.cv_uars) == 4 * 2

    # Several label settings in one pass: one set of inner bags per (Cs, Na), the same
    # choices as separate searches.
    n = len(calls)
    multi = C.select_boaw_multi(llds, fold, spy, {"a": (y, False), "b": (1 - y, True)},
                                sizes=(10, 20), assignments=(1, 5, 50), alphas=(1e-2, 1.0),
                                seed=2)
    assert len([c for c in calls[n:] if c[1]]) == 2 * 4
    alone = C.select_boaw(llds, 1 - y, fold, _random_codebook_boaw, sizes=(10, 20),
                          assignments=(1, 5, 50), alphas=(1e-2, 1.0), oversampling=True, seed=2)
    assert multi["b"].cv_uars == alone.cv_uars
    assert (multi["b"].size, multi["b"].assignments, multi["b"].model.alpha) == \
        (alone.size, alone.assignments, alone.model.alpha)
    assert multi["a"].cv_uars == boaw.cv_uars

    test_llds = [rng.normal(size=(12, 3)) + 2.0 * label for label in y[:20]]
    for f in test_llds:
        f[:, 2] = 999
    result = evaluate_boaw(boaw, test_llds, y[:20])
    assert result.extra == {"cs": boaw.size, "na": boaw.assignments}
    assert calls[-1][0] == set(range(len(y))) and calls[-1][1] == {999}
    assert result.uar > 0.8
    again = C.select_boaw(llds, y, fold, _random_codebook_boaw, sizes=(10, 20),
                          assignments=(1, 5, 50), alphas=(1e-2, 1.0), seed=2)
    assert again.cv_uars == boaw.cv_uars


def test_select_boaw_skips_pairs_the_quantiser_refuses():
    rng = np.random.default_rng(3)
    y = np.tile([0, 1], 10)
    llds = [rng.normal(size=(4, 2)) + 3.0 * label for label in y]
    fold = np.repeat([1, 2], 10)

    def refusing(train, test, size, na, seed):
        frames = sum(len(f) for f in train)
        if size > frames:
            raise ValueError(f"codebook size {size} is larger than the number of frames {frames}")
        return _random_codebook_boaw(train, test, size, na, seed)

    boaw = C.select_boaw(llds, y, fold, refusing, sizes=(10, 20, 50), assignments=(1, 2),
                         alphas=(1e-2,))
    assert {(cs, na) for cs, na, _ in boaw.skipped} == {(50, 1), (50, 2)}
    assert {k[:2] for k in boaw.cv_uars} == {(10, 1), (10, 2), (20, 1), (20, 2)}
    with pytest.raises(ValueError, match="no \\(Cs, Na\\) pair"):
        C.select_boaw(llds, y, fold, refusing, sizes=(50,), assignments=(1,), alphas=(1e-2,))


def test_select_boaw_with_many_equals_one_call_per_na(monkeypatch):
    """The reproduce quantiser (refimpl.baselines.boaw, fast mode) offers `many`: several Na from one
    codebook and ranking per fold. The search must come out exactly as with one call per
    (Cs, Na), whether all Na of a size fit the memory budget at once or only some do."""
    from refimpl.experiments.adapters import openxbow_boaw_fn
    rng = np.random.default_rng(5)
    speakers = np.repeat(np.arange(6), 8)
    y = rng.integers(0, 3, len(speakers))
    llds = [(rng.normal(size=(int(rng.integers(20, 40)), 5)) + label).astype(np.float32)
            for label in y]
    fold = speaker_folds(speakers)
    boaw_fn, _ = openxbow_boaw_fn()
    calls = []

    def counting_many(*args):
        calls.append(tuple(args[4 - 1]))   # the assignments asked for together
        return boaw_fn.many(*args)

    def single(*args):
        return boaw_fn(*args)

    with_many = lambda *a: boaw_fn(*a)    # noqa: E731 - a function object with `many`
    with_many.many = counting_many
    settings = {"un": (y, False), "ov": (y, True)}
    kw = dict(sizes=(10, 50), assignments=(1, 2, 5, 20), alphas=(1e-3, 1e-1), seed=4,
              speakers=speakers, test_llds=llds[:5])
    one = C.select_boaw_multi(llds, fold, single, settings, **kw)
    grouped = C.select_boaw_multi(llds, fold, with_many, settings, **kw)
    assert set(calls) == {(1, 2, 5), (1, 2, 5, 20)}   # Na <= Cs, every Na of a size at once
    # room for 2 Na at Cs 50
    monkeypatch.setattr(boaw_search, "BOAW_BAGS_BUDGET", 2 * len(llds) * 4 * 50 * 2)
    calls.clear()
    split = C.select_boaw_multi(llds, fold, with_many, settings, **kw)
    assert (1, 2) in calls and (5, 20) in calls
    for name in settings:
        for other in (grouped, split):
            assert other[name].cv_uars == one[name].cv_uars
            assert (other[name].size, other[name].assignments, other[name].model.alpha) == \
                (one[name].size, one[name].assignments, one[name].model.alpha)
            assert np.array_equal(other[name].test_bags, one[name].test_bags)


def test_na_groups_walk_every_pair_once_within_the_budget(monkeypatch):
    """The one budgeted walk over (Cs, Na) that the BoAW search and the grid's per-test
    choice share: every pair once, in order, each group of one Cs, and as many Na together
    as the budget holds (one at a time for a quantiser without `many`)."""
    pairs = C.boaw_grid((10, 50, 500), (1, 2, 5, 10, 20, 50, 100))
    bag_bytes = 1000
    monkeypatch.setattr(boaw_search, "BOAW_BAGS_BUDGET", 3 * bag_bytes * 50)  # 3 Na at Cs 50
    groups = list(C.na_groups(pairs, bag_bytes))
    assert [(cs, na) for cs, group in groups for na in group] == pairs
    assert [len(g) for cs, g in groups if cs == 10] == [4]           # 15 fit: all four
    assert [len(g) for cs, g in groups if cs == 50] == [3, 3]        # 3 fit
    assert [len(g) for cs, g in groups if cs == 500] == [1] * 7      # none fits: one each
    assert all(len(g) == 1 for _, g in C.na_groups(pairs, bag_bytes, together=False))
