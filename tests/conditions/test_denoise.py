"""The LSTM mask enhancer: NumPy forward vs real Caffe, STFT/Mel plumbing, measures."""
import json

import numpy as np
import pytest
import soundfile as sf

import tolerances as tol
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

# float32 on both sides: the sums round differently (BLAS), and so do sigmoid and tanh
# (Caffe: 1 / (1 + exp(-x)), tanh as 2 sigmoid(2x) - 1 in double or tanhf; ours:
# 0.5 (1 + tanh(x / 2)) and numpy's float32 tanh). Both stay within 4 ulps of the exact
# function; for values below 1 in magnitude an ulp is at most u, so 4u absolute.
ACTIVATION_ABS = 4 * tol.U


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


def _activation(z, var, f, df):
    return f(z), df(z) ** 2 * var + ACTIVATION_ABS ** 2


def lstm_variance(x, var, w_x, b, w_h, cont):
    """(h, sigma^2) of one float32 evaluation of Caffe's LSTM layer (as D.lstm_forward),
    float64, rounding carried through the time steps (tests/support/tolerances.py, section 3):
    gate sums of D + H + 1 terms, the four activations, c = f c' + i g (two products and
    a sum), h = o tanh(c)."""
    x, var = np.asarray(x, np.float64), np.broadcast_to(np.asarray(var, np.float64), x.shape)
    w_x, b, w_h = (np.asarray(a, np.float64) for a in (w_x, b, w_h))
    steps, n, _ = x.shape
    hidden = w_h.shape[1]
    h = c = np.zeros((n, hidden))
    var_h = var_c = np.zeros((n, hidden))
    out, out_var = np.empty((steps, n, hidden)), np.empty((steps, n, hidden))
    dsig = lambda z: _sigmoid(z) * (1 - _sigmoid(z))
    dtanh = lambda z: 1 - np.tanh(z) ** 2
    for t in range(steps):
        keep = np.asarray(cont[t], np.float64)[:, None]
        inp = np.concatenate([x[t], h * keep], axis=1)
        inp_var = np.concatenate([var[t], var_h * keep], axis=1)
        z, var_z = tol.inner_product_variance(inp, inp_var, np.concatenate([w_x, w_h], 1), b)
        gi, gf, go, gg = (slice(k * hidden, (k + 1) * hidden) for k in range(4))
        i, var_i = _activation(z[:, gi], var_z[:, gi], _sigmoid, dsig)
        f, var_f = _activation(z[:, gf], var_z[:, gf], _sigmoid, dsig)
        o, var_o = _activation(z[:, go], var_z[:, go], _sigmoid, dsig)
        g, var_g = _activation(z[:, gg], var_z[:, gg], np.tanh, dtanh)
        c_prev, var_c_prev = keep * c, keep * var_c
        c = f * c_prev + i * g
        var_c = (c_prev ** 2 * var_f + f ** 2 * var_c_prev + g ** 2 * var_i + i ** 2 * var_g
                 + tol.U ** 2 * ((f * c_prev) ** 2 + (i * g) ** 2 + c ** 2))
        tc, var_tc = _activation(c, var_c, np.tanh, dtanh)
        h = o * tc
        var_h = tc ** 2 * var_o + o ** 2 * var_tc + tol.U ** 2 * h ** 2
        out[t], out_var[t] = h, var_h
    return out, out_var


def enhancer_variance(params, x, cont):
    """{"lstm1": ..., "mask_out": ...}: (value, sigma^2) of D.network_forward's blobs."""
    p = lambda name, i: params[f"{name}/{i}"]
    h, var = np.asarray(x, np.float64), 0.0
    out = {}
    for k in (1, 2, 3):
        h, var = lstm_variance(h, var, p(f"lstm{k}", 0), p(f"lstm{k}", 1), p(f"lstm{k}", 2), cont)
        out[f"lstm{k}"] = (h, var)
        if k < 3:
            y, var_y = tol.inner_product_variance(h.reshape(-1, h.shape[-1]),
                                                  var.reshape(-1, h.shape[-1]),
                                                  p(f"fc{k}", 0), p(f"fc{k}", 1))
            h, var = _activation(y, var_y, np.tanh, lambda z: 1 - np.tanh(z) ** 2)
            h, var = h.reshape(x.shape[:2] + (-1,)), var.reshape(x.shape[:2] + (-1,))
    y, var_y = tol.inner_product_variance(h.reshape(-1, h.shape[-1]), var.reshape(-1, h.shape[-1]),
                                          p("mask", 0), p("mask", 1))
    m, var_m = _activation(y, var_y, _sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z)))
    out["mask_out"] = (m.reshape(x.shape[:2] + (-1,)), var_m.reshape(x.shape[:2] + (-1,)))
    return out


def assert_like_caffe(ours, caffe, params, x, cont, names):
    """Ours within the bound of two float32 evaluations of each blob."""
    rounding = enhancer_variance(params, x, cont)
    for name in names:
        var = rounding[name][1]
        used = tol.assert_within(ours[name], caffe[name], tol.statistical(var, var), name)
        print(f"{name}: {used:.3f} of the bound")


def random_params(seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-scale, scale, s).astype(np.float32) for k, s in LAYER_SHAPES.items()}


@pytest.mark.caffe
def test_numpy_forward_matches_caffe_random_weights(caffe_installed):
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
    mask = D.network_forward(params, x, cont)
    assert_like_caffe({"lstm1": h1, "mask_out": mask}, caffe, params, x, cont,
                      ["lstm1", "mask_out"])


@pytest.mark.caffe
def test_numpy_forward_matches_caffe_trained_weights_real_speech(caffe_installed, shared_data):
    model = D.load_model()
    wav = sorted((shared_data / "emodb" / "wav").glob("16*.wav"))[0]   # a test speaker
    audio, _ = sf.read(str(wav))
    x = ((D.log_mel(D.stft(audio)) - model["input_mean"]) / model["input_std"])
    x = x[:, None, :].astype(np.float32)
    cont = np.ones(x.shape[:2], np.float32)
    cont[0] = 0
    params = {k: v for k, v in model.items() if "/" in k}
    caffe = D.caffe_forward(params, x, cont)
    assert_like_caffe({"mask_out": D.network_forward(model, x, cont)}, caffe, params, x, cont,
                      ["mask_out"])


def stft_round_trip_bound(x, mask_sum_error=0.0):
    """float64 STFT then inverse: per frame a forward and an inverse FFT (tol.fft_error
    each, of the windowed frame's norm), the window products and the dual window's
    (4 roundings), a sample summed from at most ceil(WIN / HOP) frames; mask_sum_error: a
    relative error of the spectrum's scaling (a mask's weights summing to 1 within it)."""
    op = D.stft_operator()
    frames = op.stft(x)                                 # columns: FFTs of windowed frames
    frame_norm = float(np.sqrt((np.abs(frames) ** 2).sum(axis=0).max() * 2 / D.NFFT))
    overlap = -(-D.WIN // D.HOP)
    per_frame = (2 * tol.fft_error(D.NFFT) + mask_sum_error) * frame_norm
    return overlap * float(np.abs(op.dual_win).max()) * per_frame + 4 * tol.U64 * np.abs(x)


def test_stft_round_trip_and_unit_mask_is_identity():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000 + 123) * 0.1
    tol.assert_within(D.istft(D.stft(x), len(x)), x, stft_round_trip_bound(x), "round trip")
    spec = D.stft(x)
    ones = np.ones((spec.shape[1], D.N_MELS))
    # each bin's mask is a weighted mean of the Mel masks: weights summing to 1 within gamma
    weights = D.mel_to_linear_matrix()
    sum_error = tol.gamma64(int((weights > 0).sum(axis=1).max()) + 1)
    bound = stft_round_trip_bound(x, sum_error)
    tol.assert_within(D.apply_mel_mask(spec, ones, len(x)), x, bound, "unit mask")
    half = D.apply_mel_mask(spec, 0.5 * ones, len(x))
    tol.assert_within(half, 0.5 * x, 0.5 * bound, "half mask")


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
    # two float64 FFTs of the same windowed frame (plus the window product on each side)
    bound = (2 * tol.fft_error(D.NFFT) + 2 * tol.U64) * np.linalg.norm(expected)
    tol.assert_within(spec[:, col], expected, bound, "STFT frame")


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
    # each row divided by its float64 sum, then summed again: twice gamma of its length
    tol.assert_within(m.sum(axis=1), 1.0, 2 * tol.gamma64(int((m > 0).sum(axis=1).max()) + 1),
                      "row sums")
    assert np.argmax(m[np.argmax(fb[50])]) == 50
    # the HTK formula 2595 log10(1 + f / 700) (1000 Hz is about 1000 mel), computed the
    # same way by math: 4 correctly rounded steps or 1-ulp log10s each side
    import math
    want = 2595 * math.log10(1 + 1000 / 700)
    assert abs(D.hz_to_mel(1000) - want) <= 8 * tol.U64 * want and abs(want - 1000) < 0.02


def test_ideal_ratio_mask():
    rng = np.random.default_rng(3)
    s = D.stft(rng.standard_normal(8000))
    # sqrt(P / (P' + floor)): the floor moves the masks off 1 and 0.5 by
    # floor / (2 P) and floor / (16 P); each side a few float64 roundings of the result
    p = D.mel_power(s).T
    for noisy, want in ((s, np.sqrt(p / (p + D.LOG_FLOOR))),
                        (2 * s, np.sqrt(p / (4 * p + D.LOG_FLOOR)))):
        n_bins = int((D.mel_filterbank() > 0).sum(axis=1).max())
        tol.assert_within(D.ideal_ratio_mask(s, noisy), want,
                          (2 * tol.gamma64(n_bins) + 8 * tol.U64) * want, "ratio mask")
    assert np.abs(np.sqrt(p / (p + D.LOG_FLOOR)) - 1).max() > 0   # the floor is there
    assert D.ideal_ratio_mask(2 * s, s).max() == 1.0


def test_si_sdr_and_segmental_snr_analytic():
    rng = np.random.default_rng(4)
    s = rng.standard_normal(16000)
    s -= s.mean()
    e = rng.standard_normal(16000)
    e -= e.mean()
    e -= np.dot(e, s) / np.dot(s, s) * s         # orthogonal to s
    e *= np.sqrt(np.sum(s ** 2) / np.sum(e ** 2) / 10)   # 10 dB below
    # dB of a ratio of two float64 energies over 16000 samples (projections, differences):
    # each energy within gamma(n) and a few roundings, 10 / ln 10 dB per unit of relative error
    db = 10 / np.log(10) * 4 * (tol.gamma64(len(s)) + 4 * tol.U64)
    assert abs(D.si_sdr(s, s + e) - 10.0) <= db
    assert abs(D.si_sdr(s, 3.0 * (s + e)) - 10.0) <= db   # scale-invariant
    assert abs(D.segmental_snr(s, s + 0.1 * s) - 20.0) <= db
    assert D.segmental_snr(s, s) == 35.0 and abs(D.segmental_snr(s, -s) - 10 * np.log10(0.25)) <= db


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
def test_caffe_training_learns_and_is_deterministic(caffe_installed):
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
