"""The LSTM mask enhancer: NumPy forward vs real Caffe, STFT/Mel plumbing, measures."""
import json

import numpy as np
import pytest
import soundfile as sf

from refimpl._util.digest import file_digest
from refimpl.conditions import denoise as D
from refimpl.conditions import generate
from refimpl.network.caffe_client import caffe_available

LAYER_SHAPES = {
    "lstm1/0": (1024, 100), "lstm1/1": (1024,), "lstm1/2": (1024, 256),
    "fc1/0": (64, 256), "fc1/1": (64,),
    "lstm2/0": (1024, 64), "lstm2/1": (1024,), "lstm2/2": (1024, 256),
    "fc2/0": (64, 256), "fc2/1": (64,),
    "lstm3/0": (1024, 64), "lstm3/1": (1024,), "lstm3/2": (1024, 256),
    "mask/0": (100, 256), "mask/1": (100,),
}

# float32 on both sides; Caffe sums in a different order (BLAS), nothing else differs.
GOLDEN_ATOL = 2e-6


def random_params(seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-scale, scale, s).astype(np.float32) for k, s in LAYER_SHAPES.items()}


needs_caffe = pytest.mark.skipif(not caffe_available(), reason="real Caffe not installed (make caffe)")


@pytest.mark.caffe
@needs_caffe
def test_numpy_forward_matches_caffe_random_weights():
    params = random_params()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 3, 100)).astype(np.float32)
    cont = np.ones((9, 3), np.float32)
    cont[0] = 0
    cont[5, 1] = 0          # a sequence starting mid-batch: the state must reset there
    caffe = D.caffe_forward(params, x, cont)
    for k in (1, 2, 3):
        assert caffe[f"lstm{k}"].shape == (9, 3, 256)
    h1 = D.lstm_forward(x, params["lstm1/0"], params["lstm1/1"], params["lstm1/2"], cont)
    np.testing.assert_allclose(h1, caffe["lstm1"], rtol=0, atol=GOLDEN_ATOL)
    mask = D.network_forward(params, x, cont)
    np.testing.assert_allclose(mask, caffe["mask_out"], rtol=0, atol=GOLDEN_ATOL)


@pytest.mark.caffe
@needs_caffe
def test_numpy_forward_matches_caffe_trained_weights_real_speech(shared_data):
    model = D.load_model()
    wav = sorted((shared_data / "emodb" / "wav").glob("16*.wav"))[0]   # a test speaker
    audio, _ = sf.read(str(wav))
    x = ((D.log_mel(D.stft(audio)) - model["input_mean"]) / model["input_std"])
    x = x[:, None, :].astype(np.float32)
    cont = np.ones(x.shape[:2], np.float32)
    cont[0] = 0
    params = {k: v for k, v in model.items() if "/" in k}
    caffe = D.caffe_forward(params, x, cont)
    np.testing.assert_allclose(D.network_forward(model, x, cont), caffe["mask_out"],
                               rtol=0, atol=GOLDEN_ATOL)


def test_stft_round_trip_and_unit_mask_is_identity():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000 + 123) * 0.1
    np.testing.assert_allclose(D.istft(D.stft(x), len(x)), x, atol=1e-12)
    spec = D.stft(x)
    ones = np.ones((spec.shape[1], D.N_MELS))
    np.testing.assert_allclose(D.apply_mel_mask(spec, ones, len(x)), x, atol=1e-12)
    half = D.apply_mel_mask(spec, 0.5 * ones, len(x))
    np.testing.assert_allclose(half, 0.5 * x, atol=1e-12)


def test_stft_matches_plain_numpy_frames():
    # Oracle: a frame cut by hand, Hann-windowed, zero-padded FFT.
    from scipy.signal.windows import hann
    rng = np.random.default_rng(2)
    x = rng.standard_normal(4000)
    op = D.stft_operator()
    spec = D.stft(x)
    frame = 10                                   # frame index p covers centre p * HOP
    col = frame - op.p_min
    start = frame * D.HOP - D.WIN // 2
    padded = np.zeros(D.NFFT)
    padded[:D.WIN] = x[start:start + D.WIN] * hann(D.WIN, sym=False)
    # scipy's ShortTimeFFT references the phase to the window's centre: rotate it to 0
    expected = np.fft.rfft(np.roll(padded, -(D.WIN // 2)))
    np.testing.assert_allclose(spec[:, col], expected, atol=1e-10)


@pytest.mark.parametrize("length", [400, 561, 1234, 16000, 16001, 48000])
def test_stft_and_istft_are_scipys_bit_for_bit(length):
    # Oracle: scipy's ShortTimeFFT itself (one FFT per frame), on a signal and on a masked
    # spectrogram: the batched transforms must give the same floats, not close ones.
    rng = np.random.default_rng(length)
    op = D.stft_operator()
    x = rng.standard_normal(length) * 0.1
    spec = op.stft(x)
    masked = spec * rng.random(spec.shape)
    assert D._operator()[1], "the batched FFT disagrees with scipy's on this machine"
    assert np.array_equal(D.stft(x), spec)
    assert np.array_equal(D.istft(masked, length), op.istft(masked, k1=length))


def test_scipys_own_transforms_where_the_batched_ones_disagree(monkeypatch):
    op = D.stft_operator()
    monkeypatch.setattr(D, "_FAST", [op, False])
    monkeypatch.setattr(D, "_stft_batched", None)          # must not be called
    monkeypatch.setattr(D, "_istft_batched", None)
    x = np.random.default_rng(0).standard_normal(3000)
    spec = D.stft(x)
    assert np.array_equal(spec, op.stft(x))
    assert np.array_equal(D.istft(spec, 3000), op.istft(spec, k1=3000))


def test_mel_filterbank_shape_and_coverage():
    fb = D.mel_filterbank()
    assert fb.shape == (100, D.NFFT // 2 + 1)
    assert (fb.max(axis=1) > 0.5).all()          # every filter covers bins (no empty band)
    edges = D.mel_to_hz(np.linspace(0, D.hz_to_mel(8000), 102))
    freqs = np.arange(D.NFFT // 2 + 1) * D.FS / D.NFFT
    for b in (0, 37, 99):                         # triangles where the HTK formula puts them
        inside = (freqs > edges[b]) & (freqs < edges[b + 2])
        assert (fb[b][inside] > 0).all() and (fb[b][~inside] == 0).all()
    m = D.mel_to_linear_matrix(fb)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    assert np.argmax(m[np.argmax(fb[50])]) == 50
    assert D.hz_to_mel(1000) == pytest.approx(999.985, abs=1e-3)   # HTK: 1000 Hz ~ 1000 mel


def test_ideal_ratio_mask():
    rng = np.random.default_rng(3)
    s = D.stft(rng.standard_normal(8000))
    np.testing.assert_allclose(D.ideal_ratio_mask(s, s), 1.0, atol=1e-5)   # + floor
    np.testing.assert_allclose(D.ideal_ratio_mask(s, 2 * s), 0.5, atol=1e-5)
    assert D.ideal_ratio_mask(2 * s, s).max() == 1.0


def test_si_sdr_and_segmental_snr_analytic():
    rng = np.random.default_rng(4)
    s = rng.standard_normal(16000)
    s -= s.mean()
    e = rng.standard_normal(16000)
    e -= e.mean()
    e -= np.dot(e, s) / np.dot(s, s) * s         # orthogonal to s
    e *= np.sqrt(np.sum(s ** 2) / np.sum(e ** 2) / 10)   # 10 dB below
    assert D.si_sdr(s, s + e) == pytest.approx(10.0, abs=1e-9)
    assert D.si_sdr(s, 3.0 * (s + e)) == pytest.approx(10.0, abs=1e-9)   # scale-invariant
    assert D.segmental_snr(s, s + 0.1 * s) == pytest.approx(20.0, abs=1e-9)
    assert D.segmental_snr(s, s) == 35.0 and D.segmental_snr(s, -s) == pytest.approx(-6.02, abs=0.01)


def test_prototxt_describes_the_papers_network():
    text = D.net_prototxt(100, 16, train=True)
    assert text.count('type: "LSTM"') == 3 and text.count("num_output: 256") == 3
    assert text.count("num_output: 64") == 2 and text.count('type: "TanH"') == 2
    assert "num_output: 100" in text and 'type: "Sigmoid"' in text
    assert 'type: "EuclideanLoss"' in text
    assert "EuclideanLoss" not in D.net_prototxt(10, 1, train=False)


def test_committed_weights_match_their_checksum():
    info = json.loads(D.WEIGHTS_INFO.read_text())
    assert file_digest(D.WEIGHTS) == info["sha256"]
    model = D.load_model()
    for k, shape in LAYER_SHAPES.items():
        assert model[k].shape == shape
    assert model["input_mean"].shape == model["input_std"].shape == (100,)


def test_enhancement_improves_unseen_test_speakers(shared_data, tmp_path):
    """The trained enhancer on a few simulated test-speaker files: SI-SDR must go up."""
    from refimpl.corpus import Corpus, load_corpus
    corpus = load_corpus("emodb", root=shared_data / "emodb")
    rows = corpus.subset("test").rows[::60]
    small = Corpus(corpus.name, corpus.tasks, rows, corpus.source)
    generate.generate_noisy(small, seed=11, out_dir=tmp_path, progress=False)
    generate.generate_denoised(small, seed=11, out_dir=tmp_path, progress=False)
    summary = json.loads((tmp_path / "enhancement.json").read_text())["test"]
    assert summary["files"] == len(rows)
    # On all 292 test files: SI-SDR +0.8 dB (87 % of files better), segSNR +2.2 dB (all).
    assert summary["segsnr_denoised_db"] > summary["segsnr_noisy_db"] + 1.0, summary
    assert summary["si_sdr_denoised_db"] > summary["si_sdr_noisy_db"], summary
    out, fs = sf.read(str(tmp_path / "denoised" / rows[0]["file"]))
    assert fs == 16000 and len(out) == len(sf.read(rows[0]["path_clean"])[0])


def test_conditions_command_is_bit_reproducible(shared_data, tmp_path, monkeypatch, capsys):
    """`refimpl corpus conditions emodb --seed N` twice, in two caches: identical files."""
    from refimpl import cli
    outputs = []
    for run in ("a", "b"):
        monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / run))
        assert cli.main(["corpus", "conditions", "emodb", "--root", str(shared_data / "emodb"),
                         "--seed", "3", "--limit", "2"]) == 0
        base = tmp_path / run / "conditions" / "emodb" / "seed3"
        files = sorted(p for p in base.rglob("*.wav"))
        assert [p.parent.name for p in files] == ["denoised"] * 2 + ["noisy"] * 2
        outputs.append([p.read_bytes() for p in files])
        assert (base / "noisy.csv").is_file() and (base / "denoised.csv").is_file()
    assert outputs[0] == outputs[1]
    assert "SI-SDR" in capsys.readouterr().out


@pytest.mark.caffe
@needs_caffe
def test_caffe_training_learns_and_is_deterministic():
    """Caffe's solver through our script, on a tiny learnable mapping: the loss falls, and
    the same data and seed give the same weights bit for bit."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 6, D.N_MELS)).astype(np.float32)
    y = (1 / (1 + np.exp(-2 * x))).astype(np.float32)        # a per-band squashing
    a, losses = D.caffe_train(x, y, iters=60, lr=1e-2, batch=4)
    b, _ = D.caffe_train(x, y, iters=60, lr=1e-2, batch=4)
    assert losses[-1][1] < 0.7 * losses[0][1], losses
    assert set(a) == set(LAYER_SHAPES)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
