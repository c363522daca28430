"""MFCC 1-12 + log energy from openSMILE (our config) against an independent NumPy HTK-style
implementation written from the HTK book's definitions, on real EmoDB recordings."""
import numpy as np
import pytest
import soundfile as sf

from refimpl import cli
from refimpl.baselines import boaw
from refimpl.baselines import opensmile as lld


def htk_mfcc_e(x, sr=16000, k=0.97, n_bands=26, n_ceps=12, lifter=22):
    """HTK MFCC_E: per-frame pre-emphasis (first sample scaled by 1-k), Hamming window,
    |FFT|^2 on 512 points, triangular mel filters (mel = 1127 ln(1+f/700)) between 0 and
    sr/2, natural log, DCT-II with sqrt(2/N), sinusoidal liftering; log energy of the raw
    frame.  Samples in 16-bit integer scale as HTK reads them."""
    x = np.asarray(x, np.float64) * 32768.0
    N, H = int(0.025 * sr), int(0.010 * sr)
    n = 1 + (len(x) - N) // H
    fr = np.stack([x[i * H:i * H + N] for i in range(n)])
    energy = np.log(np.maximum((fr ** 2).sum(1), 1e-10))
    pe = np.empty_like(fr)
    pe[:, 1:] = fr[:, 1:] - k * fr[:, :-1]
    pe[:, 0] = fr[:, 0] * (1 - k)
    win = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(N) / (N - 1))
    spec = np.abs(np.fft.rfft(pe * win, 512)) ** 2
    mel = lambda f: 1127 * np.log(1 + f / 700.0)
    centers = mel(0) + (mel(sr / 2) - mel(0)) * np.arange(n_bands + 2) / (n_bands + 1)
    fmel = mel(np.arange(257) * sr / 512)
    fb = np.zeros((n_bands, 257))
    for b in range(n_bands):
        lo, c, hi = centers[b:b + 3]
        fb[b] = np.clip(np.minimum((fmel - lo) / (c - lo), (hi - fmel) / (hi - c)), 0, None)
    fb[:, 0] = 0
    logmel = np.log(np.maximum(spec @ fb.T, 1e-8))
    q = np.arange(1, n_ceps + 1)[:, None]
    dct = np.sqrt(2.0 / n_bands) * np.cos(np.pi * q * (np.arange(n_bands)[None, :] + 0.5) / n_bands)
    lift = 1 + lifter / 2 * np.sin(np.pi * np.arange(1, n_ceps + 1) / lifter)
    return np.column_stack([(logmel @ dct.T) * lift, energy])


@pytest.fixture(scope="module")
def emodb_files(shared_data):
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    if len(files) < 5:
        pytest.skip("EmoDB not found")
    return files


def test_mfcc_matches_independent_htk(emodb_files):
    for f in emodb_files[::107]:                     # 5 files spread over the corpus
        times, X = lld.lld(f, use_cache=False)
        x, sr = sf.read(f)
        ref = htk_mfcc_e(x, sr)
        assert X.shape == ref.shape == (1 + (len(x) - 400) // 160, 13)
        assert X.dtype == np.float32
        np.testing.assert_allclose(times, np.arange(len(X)) * 0.01, atol=1e-9)
        # openSMILE computes in float32: differences are rounding, not method.
        np.testing.assert_allclose(X, ref, atol=2e-3, rtol=1e-4)


def test_cache_returns_same_and_is_keyed_by_content(emodb_files, tmp_path, monkeypatch):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / "cache"))
    t1, a = lld.lld(emodb_files[0])
    t2, b = lld.lld(emodb_files[0])
    assert np.array_equal(a, b) and np.array_equal(t1, t2)
    assert len(list((tmp_path / "cache" / "features").rglob("*.npz"))) == 1
    copy = tmp_path / "copy.wav"
    copy.write_bytes(emodb_files[0].read_bytes())
    assert np.array_equal(lld.lld(copy)[1], a)
    assert len(list((tmp_path / "cache" / "features").rglob("*.npz"))) == 1


def test_cli_writes_openxbow_csv(emodb_files, tmp_path):
    out = tmp_path / "llds.csv"
    assert cli.main(["lld", str(emodb_files[0]), str(emodb_files[1]), "-o", str(out)]) == 0
    got = boaw.read_lld_csv(str(out))
    n0 = len(lld.lld(emodb_files[0])[1])
    assert got.features.shape[1] == 13
    assert got.names[0] == emodb_files[0].name and got.names[n0] == emodb_files[1].name
    assert np.array_equal(got.features[:n0], lld.lld(emodb_files[0])[1])   # exact round trip
    first = out.read_text().splitlines()[0].split(";")
    assert first[0] == f"'{emodb_files[0].name}'" and len(first) == 14
    assert cli.main(["lld", str(emodb_files[0]), "-o", str(tmp_path / "t.csv"), "--times"]) == 0
    assert (tmp_path / "t.csv").read_text().splitlines()[1].split(";")[1] == "0.010"


def test_bad_file_is_named(tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF1234WAVEjunk")
    # a file that fails is skipped by name (status 1: some failed), the others come out
    assert cli.main(["lld", str(bad), "-o", str(tmp_path / "o.csv"), "--no-cache"]) == 1
    assert "broken.wav" in capsys.readouterr().err
    assert cli.main(["lld", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "o.csv")]) == 1
