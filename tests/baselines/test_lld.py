"""MFCC 1-12 + log energy from openSMILE (our config) against an independent NumPy HTK-style
implementation written from the HTK book's definitions, on real EmoDB recordings."""
import numpy as np
import pytest
import soundfile as sf

import tolerances as tol
from oracles import unavailable
from refimpl import cli
from refimpl.baselines import boaw
from refimpl.baselines import opensmile as lld


def htk_mfcc_e(x, sr=16000, k=0.97, n_bands=26, n_ceps=12, lifter=22, with_bound=False):
    """HTK MFCC_E: per-frame pre-emphasis (first sample scaled by 1-k), Hamming window,
    |FFT|^2 on 512 points, triangular mel filters (mel = 1127 ln(1+f/700)) between 0 and
    sr/2, natural log, DCT-II with sqrt(2/N), sinusoidal liftering; log energy of the raw
    frame.  Samples in 16-bit integer scale as HTK reads them.

    with_bound: also the element-wise bound on a float32 computation of the same (as
    openSMILE's), from float32 rounding carried through the steps (tests/support/tolerances.py,
    section 3): pre-emphasis and window (a few roundings per sample); the FFT by Higham's
    norm-wise bound for radix-2 FFTs (Accuracy and Stability, Thm 24.2: log2(N) eta, eta =
    u + gamma(4)(sqrt(2) + u)), its error taken as spread evenly over the bins; the power,
    the filter sums, the log (whose error is the band's relative error: small bands next
    to an FFT's absolute error are where MFCCs lose digits), the DCT and the lifter."""
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
    mfcc = np.column_stack([(logmel @ dct.T) * lift, energy])
    if not with_bound:
        return mfcc
    u = tol.U
    y = pe * win
    e_pe = u * (2 * k * np.abs(np.roll(fr, 1, axis=1)) + np.abs(pe))   # k, k x, the difference
    e_y = np.abs(win) * e_pe + 3 * u * np.abs(y)                       # window value, product
    eta = u + tol.gamma(4) * (np.sqrt(2) + u)
    nfft = 512
    fft_err = np.sqrt(nfft) * (np.linalg.norm(e_y, axis=1)
                               + np.log2(nfft) * eta * np.linalg.norm(y, axis=1))
    var_x = (fft_err ** 2 / nfft)[:, None]                             # per bin, spread evenly
    var_p = 4 * spec * var_x + 3 * (u * spec) ** 2
    band = spec @ fb.T
    terms_sq = spec ** 2 @ (fb ** 2).T
    var_band = (var_p @ (fb ** 2).T + tol.sum_variance((fb > 0).sum(1), terms_sq, band)
                + u * u * terms_sq)                                    # + filter weights' rounding
    var_log = var_band / np.maximum(band, 1e-8) ** 2 + (u * logmel) ** 2
    c = logmel @ dct.T
    dsq = (logmel ** 2) @ (dct ** 2).T
    var_c = var_log @ (dct ** 2).T + tol.sum_variance(n_bands, dsq, c) + u * u * dsq
    var_mfcc = lift ** 2 * var_c + 2 * (u * c * lift) ** 2
    sq = (fr ** 2).sum(1)
    var_energy = tol.sum_variance(N, (fr ** 4).sum(1), sq) / np.maximum(sq, 1e-10) ** 2
    return mfcc, tol.statistical(np.column_stack([var_mfcc, var_energy]))


@pytest.fixture(scope="module")
def emodb_files(shared_data):
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    if len(files) < 5:
        unavailable("emodb", "EmoDB not found")
    return files


def test_mfcc_matches_independent_htk(emodb_files):
    for f in emodb_files[::107]:                     # 5 files spread over the corpus
        times, X = lld.lld(f, use_cache=False)
        x, sr = sf.read(f)
        ref, bound = htk_mfcc_e(x, sr, with_bound=True)
        assert X.shape == ref.shape == (1 + (len(x) - 400) // 160, 13)
        assert X.dtype == np.float32
        # frame start times: i * 0.01 s in float64, at most two roundings of t each side
        tol.assert_within(times, np.arange(len(X)) * 0.01,
                          4 * tol.U64 * np.arange(len(X)) * 0.01, "frame times")
        # openSMILE computes in float32: differences are rounding, not method.
        used = tol.assert_within(X, ref, bound, f.name)
        print(f"{f.name}: {used:.3f} of the bound")


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
