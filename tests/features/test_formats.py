"""The four output formats, read back by readers no one here wrote: the csv module,
liac-arff (the toolkit's own ARFF dependency), pyarrow/pandas and numpy.load."""
import csv
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from refimpl.features import LabelColumn, open_writer
from refimpl.features.formats import ROW_GROUP

import arff  # noqa: E402  (liac-arff, the toolkit's own ARFF reader; a test requirement)

LABELS = [LabelColumn("emotion", False, ("angry", "very sad")), LabelColumn("arousal", True)]
DIM = 6


def sample_files(rng, windowed):
    """(name, stamps, rows, labels) of three files: awkward names, zeros, tiny and huge
    float32 values, a column that is zero everywhere (3)."""
    files = []
    for i, (name, emotion, arousal) in enumerate([("a.wav", "angry", "0.5"),
                                                  ("sub dir/b, c.wav", "very sad", "-1e-3"),
                                                  ("it's.wav", "angry", "")]):
        n = 3 if windowed else 1
        rows = rng.standard_normal((n, DIM)).astype(np.float32) * np.float32(10.0 ** (i * 3 - 3))
        rows[rows < 0] = 0
        rows[:, 3] = 0
        rows[0, 0] = np.float32(1 / 3)
        stamps = [Decimal("0.5") * k for k in range(n)] if windowed else None
        files.append((name, stamps, rows, [emotion, arousal]))
    return files


def write(path, files, windowed, **kw):
    with open_writer(path, dim=DIM, windowed=windowed, label_columns=LABELS, **kw) as w:
        for f in files:
            w.write(*f)
    return w


@pytest.mark.parametrize("windowed", [False, True])
def test_csv_is_the_toolkits_layout_and_round_trips_float32(tmp_path, windowed):
    files = sample_files(np.random.default_rng(1), windowed)
    out = tmp_path / "f.csv"
    write(out, files, windowed)
    raw = out.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")         # excel dialect, as csv.writer
    rows = list(csv.reader(out.open(newline="")))
    assert rows[0] == ["name"] + (["timeStamp"] if windowed else []) + \
        [f"neuron_{i}" for i in range(DIM)] + ["emotion", "arousal"]
    body = rows[1:]
    assert [r[0] for r in body] == [f[0] for f in files for _ in range(len(f[2]))]
    first = 2 if windowed else 1
    back = np.array([[np.float32(v) for v in r[first:first + DIM]] for r in body])
    np.testing.assert_array_equal(back, np.concatenate([f[2] for f in files]))
    # numbers as str() of the float32 (what the toolkit's str(v) prints on this NumPy)
    assert body[0][first] == str(np.float32(1 / 3)) == "0.33333334"
    assert body[0][first + 3] == "0.0"
    if windowed:
        assert [r[1] for r in body[:3]] == ["0.0", "0.5", "1.0"]
    assert body[-1][-2:] == ["angry", ""]


@pytest.mark.parametrize("windowed", [False, True])
def test_arff_parses_with_liac_arff(tmp_path, windowed):
    files = sample_files(np.random.default_rng(2), windowed)
    out = tmp_path / "f.arff"
    write(out, files, windowed)
    text = out.read_text()
    assert text.startswith("@relation 'Deep Spectrum Features'\n\n@attribute name string\n")
    assert ("@attribute timeStamp numeric\n" in text) == windowed
    assert "@attribute emotion {angry,'very sad'}\n@attribute arousal numeric\n\n@data\n" in text
    data = arff.loads(text)
    names = [a[0] for a in data["attributes"]]
    assert names[:1 + windowed] == ["name"] + (["timeStamp"] if windowed else [])
    assert data["attributes"][-2] == ("emotion", ["angry", "very sad"])
    assert data["attributes"][-1] == ("arousal", "NUMERIC")
    rows = data["data"]
    assert [r[0] for r in rows] == [f[0] for f in files for _ in range(len(f[2]))]
    first = 1 + windowed
    back = np.array([r[first:first + DIM] for r in rows], np.float64).astype(np.float32)
    np.testing.assert_array_equal(back, np.concatenate([f[2] for f in files]))
    assert rows[-1][-1] is None                             # missing value: ?
    b = rows[len(files[0][2])]
    assert b[0] == "sub dir/b, c.wav" and b[-2] == "very sad" and b[-1] == pytest.approx(-1e-3)


@pytest.mark.parametrize("windowed", [False, True])
def test_parquet_and_npz_hold_the_same_rows(tmp_path, windowed):
    files = sample_files(np.random.default_rng(3), windowed)
    want = np.concatenate([f[2] for f in files])
    write(tmp_path / "f.parquet", files, windowed)
    write(tmp_path / "f.npz", files, windowed)
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert list(frame.columns[:1 + windowed]) == ["name"] + (["timeStamp"] if windowed else [])
    neurons = frame[[f"neuron_{i}" for i in range(DIM)]]
    assert (neurons.dtypes == np.float32).all()
    np.testing.assert_array_equal(neurons.to_numpy(), want)
    assert frame["arousal"].dtype == np.float64 and np.isnan(frame["arousal"].iloc[-1])
    assert list(frame["emotion"]) == [f[3][0] for f in files for _ in range(len(f[2]))]
    with np.load(tmp_path / "f.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["features"], want)
        assert z["features"].dtype == np.float32
        assert list(z["name"]) == list(frame["name"])
        assert list(z["feature_names"]) == list(neurons.columns)
        assert list(z["label_names"]) == ["emotion", "arousal"]
        np.testing.assert_array_equal(z["label_arousal"], frame["arousal"].to_numpy())
        if windowed:
            np.testing.assert_array_equal(z["timeStamp"], frame["timeStamp"].to_numpy())
            assert list(z["timeStamp"][:3]) == [0.0, 0.5, 1.0]


def test_parquet_is_written_in_row_groups(tmp_path):
    import pyarrow.parquet as pq
    rng = np.random.default_rng(4)
    n = 2 * ROW_GROUP + 5
    with open_writer(tmp_path / "big.parquet", dim=DIM, windowed=False) as w:
        for i in range(n):
            w.write(f"{i}.wav", None, rng.random((1, DIM), np.float32), [])
    meta = pq.ParquetFile(tmp_path / "big.parquet").metadata
    assert meta.num_rows == n and meta.num_row_groups == 3


def test_keep_writes_only_those_neurons_under_their_own_names(tmp_path):
    files = sample_files(np.random.default_rng(5), False)
    write(tmp_path / "r.csv", files, False, keep=[0, 2, 5])
    frame = pd.read_csv(tmp_path / "r.csv")
    assert list(frame.columns) == ["name", "neuron_0", "neuron_2", "neuron_5", "emotion",
                                   "arousal"]
    np.testing.assert_array_equal(frame[["neuron_0", "neuron_2", "neuron_5"]].to_numpy(np.float32),
                                  np.concatenate([f[2] for f in files])[:, [0, 2, 5]])


@pytest.mark.parametrize("suffix", ["csv", "arff", "parquet", "npz"])
def test_a_failure_leaves_nothing_at_the_name(tmp_path, suffix):
    out = tmp_path / f"f.{suffix}"
    files = sample_files(np.random.default_rng(6), False)
    with pytest.raises(RuntimeError, match="network died"):
        with open_writer(out, dim=DIM, windowed=False, label_columns=LABELS) as w:
            w.write(*files[0])
            raise RuntimeError("network died")
    assert list(tmp_path.iterdir()) == []


def test_the_format_comes_from_the_suffix_or_is_named(tmp_path):
    from refimpl.errors import UsageError
    from refimpl.features import output_format
    assert output_format("x.ARFF") == "arff" and output_format("x.txt", "npz") == "npz"
    with pytest.raises(UsageError, match="x.txt: cannot tell the output format"):
        output_format("x.txt")
