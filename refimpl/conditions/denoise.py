"""The denoised condition: the paper's LSTM mask enhancer (section 3.3).

The paper enhances the noisy speech with a deep recurrent network that looks at 100 Mel
bands of the noisy signal and predicts, per frame and band, a mask deciding which bands to
suppress: three LSTM layers of 256 units, feed-forward layers of 64 tanh units between them,
and a 100-dimensional mask at the output. Here, as there:

    noisy wav -> STFT (25 ms Hann window, 10 ms hop, 1024-point FFT)
              -> power in 100 Mel bands (HTK Mel scale, 0-8 kHz) -> log -> standardise
              -> LSTM 256 -> FC 64 tanh -> LSTM 256 -> FC 64 tanh -> LSTM 256 -> FC 100 sigmoid
              =  Mel mask (0..1) -> mapped to the linear-frequency bins (each bin takes the
                 weighted mean of the masks of the Mel filters covering it)
              -> multiplied with the noisy STFT -> inverse STFT -> denoised wav.

The network is defined and trained in real Caffe (its LSTM layer, Adam solver; see
refimpl/conditions/denoise_caffe.py, run under Caffe's own Python). Inference uses the pure-NumPy
forward pass below, golden-checked against Caffe's forward with the same weights.

Training data differs from the paper: the paper trained on AVIC, which we do not have. We
train on the clean/noisy pairs of the *training* partition only (EmoDB training speakers,
simulated room microphone of refimpl.conditions.room_simulation); the test speakers stay
unseen. Target: the ideal ratio mask in the Mel domain, sqrt(clean Mel power / noisy Mel
power) clipped to 0..1, learnt with a squared-error loss (mask approximation).
"""
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import fft
from scipy.signal import ShortTimeFFT
from scipy.signal.windows import hann

from refimpl._util import locations
from refimpl._util.atomic import atomic_open, atomic_path
from refimpl._util.digest import file_digest
from refimpl.corpus.table import DEFAULT_SEED
from refimpl.errors import WeightsError
from refimpl.network.caffe_client import caffe_env, caffe_python

__all__ = ["stft", "istft", "log_mel", "mel_filterbank", "ideal_ratio_mask", "apply_mel_mask",
           "network_forward", "caffe_forward", "load_model", "enhance", "training_chunks",
           "train", "si_sdr", "segmental_snr", "WEIGHTS", "FS"]

FS = 16000
WIN = 400          # 25 ms
HOP = 160          # 10 ms
NFFT = 1024        # fine enough that every one of the 100 Mel filters covers FFT bins
N_MELS = 100
LSTM_UNITS = 256
FC_UNITS = 64
LOG_FLOOR = 1e-10
CHUNK_FRAMES = 100  # training sequences: 1 s
BATCH = 16

WEIGHTS = locations.weights_dir() / "denoiser" / "denoiser.npz"
WEIGHTS_INFO = locations.weights_dir() / "denoiser" / "denoiser.json"
CAFFE_SCRIPT = Path(__file__).resolve().parent / "denoise_caffe.py"
LAYERS = ("lstm1", "fc1", "lstm2", "fc2", "lstm3", "mask")


# ------------------------------------------------------------------------ signal front end

def stft_operator():
    """scipy's ShortTimeFFT of the enhancer: the definition stft and istft follow."""
    return ShortTimeFFT(hann(WIN, sym=False), hop=HOP, fs=FS, mfft=NFFT)


# stft and istft compute what ShortTimeFFT.stft / .istft(k1=length) compute, with the same
# operations on the same values, but with one FFT call for all frames where scipy makes one
# per frame (most of the enhancer's time on short files). Whether the batched FFT gives the
# per-frame FFT's bits is checked once per process (_batched_fft_agrees); where it does
# not, scipy's own methods are used.
_FAST = []      # per process: [the operator, whether the batched transforms agree]


def _operator():
    if not _FAST:
        op = stft_operator()
        _FAST.extend([op, None])
        _FAST[1] = _batched_fft_agrees(op)
    return _FAST[0], _FAST[1]


def _batched_fft_agrees(op):
    x = np.random.default_rng(1234).standard_normal(4321)
    spec = op.stft(x)
    return (np.array_equal(_stft_batched(op, x), spec)
            and np.array_equal(_istft_batched(op, spec, len(x)), op.istft(spec, k1=len(x))))


def _stft_batched(op, x):
    """ShortTimeFFT.stft(x) (zero padding, all slices p_min..p_max) in one FFT call."""
    n = len(x)
    p0, p1 = op.p_min, op.p_max(n)
    k0 = p0 * op.hop - op.m_num_mid                  # first sample of the first slice
    k1 = k0 + (p1 - p0) * op.hop + op.m_num
    padded = np.pad(x[max(k0, 0):min(k1, n)], (-min(k0, 0), max(k1 - n, 0)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, op.m_num)[::op.hop][:p1 - p0]
    windowed = frames * op.win
    if op.m_num < op.mfft:
        windowed = np.pad(windowed, ((0, 0), (0, op.mfft - op.m_num)))
    windowed = np.roll(windowed, -((op.phase_shift + op.m_num_mid) % op.m_num), axis=-1)
    return fft.rfft(windowed, n=op.mfft, axis=-1).T


def _istft_batched(op, spec, length):
    """ShortTimeFFT.istft(spec, k1=length) with the inverse FFTs in one call; the frames
    are overlap-added one by one in scipy's order (the sums' rounding depends on it)."""
    q_max = spec.shape[-1] + op.p_min
    if not (op.k_min <= 0 < length <= (q_max - 1) * op.hop + op.m_num - op.m_num_mid):
        return op.istft(spec, k1=length)             # scipy's own checks and messages
    q0, q1 = op.p_min, min(op.p_max(length), q_max)
    n_pts = (op.nearest_k_p(length, left=False) - op.nearest_k_p(0) + op.m_num
             - op.m_num_mid)
    frames = fft.irfft(spec[:, q0 - op.p_min:q1 - op.p_min].T, n=op.mfft, axis=-1)
    frames = np.roll(frames, (op.phase_shift + op.m_num_mid) % op.m_num, axis=-1)
    frames = frames[:, :op.m_num] * op.dual_win
    x = np.zeros(n_pts)
    for q, xs in zip(range(q0, q1), frames):
        i0 = q * op.hop - op.m_num_mid
        i1 = min(i0 + op.m_num, n_pts)
        j0 = max(0, -i0)
        x[max(i0, 0):i1] += xs[j0:i1 - i0]
    return x[:length]


def stft(x):
    """Complex spectrogram (frequency bins, frames) of a mono signal."""
    op, batched = _operator()
    x = np.asarray(x, dtype=np.float64)
    return _stft_batched(op, x) if batched else op.stft(x)


def istft(spec, length):
    op, batched = _operator()
    return _istft_batched(op, spec, length) if batched else op.istft(spec, k1=length)


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels=N_MELS, nfft=NFFT, fs=FS, fmin=0.0, fmax=None):
    """Triangular filters, equally spaced on the HTK Mel scale, peak 1: (n_mels, nfft//2+1)."""
    fmax = fs / 2 if fmax is None else fmax
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.arange(nfft // 2 + 1) * fs / nfft
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def mel_to_linear_matrix(fb=None):
    """(bins, n_mels): each FFT bin's mask is the filter-weighted mean of the Mel masks.

    Bins no filter covers (DC and Nyquist) take the mask of the nearest filter.
    """
    fb = mel_filterbank() if fb is None else fb
    weights = fb.T.copy()
    cover = weights.sum(axis=1)
    centres = np.argmax(fb, axis=1)
    for b in np.flatnonzero(cover <= 0):
        weights[b, np.argmin(np.abs(centres - b))] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


def mel_power(spec, fb=None):
    fb = mel_filterbank() if fb is None else fb
    return fb @ (np.abs(spec) ** 2)


def log_mel(spec, fb=None):
    """Network input: log Mel power, frames x bands."""
    return np.log(mel_power(spec, fb) + LOG_FLOOR).T


def ideal_ratio_mask(clean_spec, noisy_spec, fb=None):
    """Training target: sqrt(clean / noisy) Mel power, clipped to 0..1, frames x bands."""
    ratio = mel_power(clean_spec, fb) / (mel_power(noisy_spec, fb) + LOG_FLOOR)
    return np.clip(np.sqrt(ratio), 0.0, 1.0).T


def apply_mel_mask(noisy_spec, mask, length):
    """Mel mask (frames x bands) -> linear bins -> masked STFT -> waveform of `length`."""
    linear = mel_to_linear_matrix() @ mask.T            # bins x frames
    return istft(noisy_spec * linear, length)


# ------------------------------------------------------------------------ the network

def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def lstm_forward(x, w_x, b, w_h, cont=None):
    """Caffe's LSTM layer: x (T, N, D) -> h (T, N, H).

    Caffe's layout: w_x (4H, D) with bias b (4H), w_h (4H, H); gates stacked as input,
    forget, output, candidate; cont[t] = 0 resets the state (h and c) before step t.
    """
    T, N, _ = x.shape
    H = w_h.shape[1]
    if cont is None:
        cont = np.ones((T, N), dtype=x.dtype)
        cont[0] = 0
    pre = x @ w_x.T + b                               # all input projections at once
    h = np.zeros((N, H), dtype=x.dtype)
    c = np.zeros((N, H), dtype=x.dtype)
    out = np.empty((T, N, H), dtype=x.dtype)
    for t in range(T):
        keep = cont[t][:, None]
        gates = pre[t] + (h * keep) @ w_h.T
        i = sigmoid(gates[:, :H])
        f = sigmoid(gates[:, H:2 * H])
        o = sigmoid(gates[:, 2 * H:3 * H])
        g = np.tanh(gates[:, 3 * H:])
        c = keep * f * c + i * g
        h = o * np.tanh(c)
        out[t] = h
    return out


def network_forward(params, x, cont=None):
    """The enhancer: standardised log-Mel input (T, N, 100) -> Mel mask (T, N, 100).

    params: {"<layer>/<blob index>": array} in Caffe's layout (as denoise_caffe.py saves).
    """
    p = lambda name, i: params[f"{name}/{i}"]
    h = x
    for k in (1, 2, 3):
        h = lstm_forward(h, p(f"lstm{k}", 0), p(f"lstm{k}", 1), p(f"lstm{k}", 2), cont)
        if k < 3:
            h = np.tanh(h @ p(f"fc{k}", 0).T + p(f"fc{k}", 1))
    return sigmoid(h @ p("mask", 0).T + p("mask", 1))


def net_prototxt(T, N, train):
    """The network in Caffe's text format (train: with the target and the loss)."""
    inputs = [("data", [T, N, N_MELS]), ("cont", [T, N])]
    if train:
        inputs.append(("target", [T, N, N_MELS]))
    shapes = "".join(" shape { %s }" % " ".join(f"dim: {d}" for d in s) for _, s in inputs)
    tops = "".join(f' top: "{n}"' for n, _ in inputs)
    lines = ['name: "lstm_mask_enhancer"',
             f'layer {{ name: "input" type: "Input"{tops} input_param {{{shapes} }} }}']
    filler = 'weight_filler { type: "uniform" min: -0.08 max: 0.08 } bias_filler { type: "constant" value: 0 }'
    bottom = "data"
    for k in (1, 2, 3):
        lines.append(f'layer {{ name: "lstm{k}" type: "LSTM" bottom: "{bottom}" bottom: "cont" '
                     f'top: "lstm{k}" recurrent_param {{ num_output: {LSTM_UNITS} {filler} }} }}')
        bottom = f"lstm{k}"
        if k < 3:
            lines.append(f'layer {{ name: "fc{k}" type: "InnerProduct" bottom: "{bottom}" '
                         f'top: "fc{k}" inner_product_param {{ num_output: {FC_UNITS} axis: 2 '
                         f'weight_filler {{ type: "xavier" }} bias_filler {{ type: "constant" value: 0 }} }} }}')
            lines.append(f'layer {{ name: "tanh{k}" type: "TanH" bottom: "fc{k}" top: "fc{k}" }}')
            bottom = f"fc{k}"
    lines.append(f'layer {{ name: "mask" type: "InnerProduct" bottom: "{bottom}" top: "mask_logit" '
                 f'inner_product_param {{ num_output: {N_MELS} axis: 2 '
                 f'weight_filler {{ type: "xavier" }} bias_filler {{ type: "constant" value: 0 }} }} }}')
    lines.append('layer { name: "sigmoid" type: "Sigmoid" bottom: "mask_logit" top: "mask_out" }')
    if train:
        lines.append('layer { name: "loss" type: "EuclideanLoss" bottom: "mask_out" '
                     'bottom: "target" top: "loss" }')
    return "\n".join(lines) + "\n"


def solver_prototxt(net_file, lr=1e-3, seed=1):
    return (f'net: "{net_file}"\ntype: "Adam"\nbase_lr: {lr}\nmomentum: 0.9\n'
            f'momentum2: 0.999\ndelta: 1e-8\nlr_policy: "fixed"\nclip_gradients: 5\n'
            f'max_iter: 100000000\ndisplay: 0\nsnapshot: 0\nrandom_seed: {seed}\n'
            f'solver_mode: CPU\n')


def run_caffe(*args, log=None):
    """Run denoise_caffe.py under Caffe's own Python (found and isolated as the worker is:
    refimpl.network.caffe_client). One BLAS thread: the machine is shared and the matrices
    small."""
    exe = caffe_python()
    env = caffe_env()
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    proc = subprocess.Popen([str(exe), str(CAFFE_SCRIPT), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if log:
            log(line.rstrip())
    if proc.wait() != 0:
        raise RuntimeError("Caffe failed:\n" + "".join(lines[-30:]))
    return lines


def caffe_forward(params, x, cont):
    """Real Caffe's forward pass of the deploy network (the oracle for network_forward)."""
    T, N, _ = x.shape
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "net.prototxt").write_text(net_prototxt(T, N, train=False))
        np.savez(tmp / "w.npz", **params)
        np.savez(tmp / "in.npz", data=x.astype(np.float32), cont=cont.astype(np.float32))
        run_caffe("forward", tmp / "net.prototxt", tmp / "w.npz", tmp / "in.npz", tmp / "out.npz")
        with np.load(tmp / "out.npz") as z:
            return {k: z[k] for k in z.files}


# ------------------------------------------------------------------------ the trained model

def load_model(path=WEIGHTS):
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no trained denoiser weights; train them with "
                        f"`refimpl denoiser train` (see weights/denoiser/README.md)")
    with np.load(path) as z:
        model = {k: z[k] for k in z.files}
    for key in ("input_mean", "input_std"):
        if key not in model:
            raise WeightsError(f"{path}: not a denoiser weight file (no {key})")
    return model


def enhance(noisy, model):
    """Denoise one signal (float, 16 kHz) with the trained mask network."""
    spec = stft(noisy)
    x = (log_mel(spec) - model["input_mean"]) / model["input_std"]
    mask = network_forward(model, x[:, None, :].astype(np.float32))[:, 0, :]
    return apply_mel_mask(spec, mask.astype(np.float64), len(noisy))


def _pairs(corpus, seed, partition):
    noisy_paths = corpus.audio_paths("noisy", partition)
    for r, noisy_path in zip(corpus.subset(partition).rows, noisy_paths):
        clean, _ = sf.read(r["path_clean"], dtype="float64")
        noisy, _ = sf.read(str(noisy_path), dtype="float64")
        yield r, clean, noisy


def training_chunks(corpus, seed, frames=CHUNK_FRAMES):
    """Standardised log-Mel inputs and IRM targets of the training partition, cut in chunks."""
    feats, targets = [], []
    for _, clean, noisy in _pairs(corpus, seed, "train"):
        cs, ns = stft(clean), stft(noisy)
        feats.append(log_mel(ns))
        targets.append(ideal_ratio_mask(cs, ns))
    allx = np.concatenate(feats)
    mean, std = allx.mean(axis=0), allx.std(axis=0) + 1e-5
    xs, ys = [], []
    for f, t in zip(feats, targets):
        f = (f - mean) / std
        # chunks with half overlap; the last one aligned to the end of the file
        starts = list(range(0, max(len(f) - frames, 0) + 1, frames // 2))
        if len(f) > frames and starts[-1] != len(f) - frames:
            starts.append(len(f) - frames)
        for s in starts:
            if s + frames <= len(f):
                xs.append(f[s:s + frames])
                ys.append(t[s:s + frames])
    return (np.array(xs, dtype=np.float32), np.array(ys, dtype=np.float32),
            mean.astype(np.float32), std.astype(np.float32))


def caffe_train(x, y, iters, lr=1e-3, batch=BATCH, log=None, seed=1):
    """Caffe's Adam solver on chunks x -> y (chunks, T, 100); returns (params, losses).

    losses: (iteration, mean loss of the last 20 iterations) as the solver script reports.
    """
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "train.prototxt").write_text(net_prototxt(x.shape[1], batch, train=True))
        (tmp / "solver.prototxt").write_text(solver_prototxt(tmp / "train.prototxt", lr, seed))
        np.savez(tmp / "data.npz", x=x.astype(np.float32), y=y.astype(np.float32),
                 seed=np.int64(seed))
        lines = run_caffe("train", tmp / "train.prototxt", tmp / "solver.prototxt",
                          tmp / "data.npz", tmp / "w.npz", iters, log=log)
        with np.load(tmp / "w.npz") as z:
            params = {k: z[k] for k in z.files}
    losses = []
    for line in lines:
        if line.startswith("{"):
            d = json.loads(line)
            losses.append((d["iter"], d["loss"]))
    return params, losses


def train(corpus, seed=DEFAULT_SEED, iters=1500, out=WEIGHTS, lr=1e-3, log=print):
    """Train the enhancer with Caffe's Adam solver on the training partition's pairs."""
    t0 = time.perf_counter()
    x, y, mean, std = training_chunks(corpus, seed)
    prep = time.perf_counter() - t0
    log(f"training data: {len(x)} chunks of {CHUNK_FRAMES} frames from "
        f"{len(corpus.subset('train'))} training files ({prep:.1f} s)")
    t1 = time.perf_counter()
    params, losses = caffe_train(x, y, iters, lr, log=log)
    train_s = time.perf_counter() - t1
    out = Path(out)
    with atomic_path(out) as tmp_out:
        with open(tmp_out, "wb") as f:
            np.savez(f, input_mean=mean, input_std=std, **params)
    digest = file_digest(out)
    info = {"file": out.name, "sha256": digest, "iterations": iters, "batch": BATCH,
            "chunk_frames": CHUNK_FRAMES, "learning_rate": lr, "solver": "Adam (Caffe)",
            "corpus": corpus.name, "condition_seed": seed,
            "training_files": len(corpus.subset("train")), "training_chunks": int(len(x)),
            "data_seconds": round(prep, 1), "train_seconds": round(train_s, 1),
            "loss_first": losses[0][1] if losses else None,
            "loss_last": losses[-1][1] if losses else None,
            "retrain": f"refimpl denoiser train {corpus.name} --seed {seed} --iters {iters}"}
    with atomic_open(out.with_suffix(".json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return info


# ------------------------------------------------------------------------ measures

def si_sdr(reference, estimate):
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), zero-mean."""
    s = reference - reference.mean()
    e = estimate - estimate.mean()
    alpha = np.dot(e, s) / np.dot(s, s)
    target = alpha * s
    return 10 * np.log10(np.sum(target ** 2) / np.sum((e - target) ** 2))


def segmental_snr(reference, estimate, frame=512, lo=-10.0, hi=35.0):
    """Mean of per-frame SNRs (non-overlapping 32 ms frames), each clipped to [lo, hi] dB."""
    n = (len(reference) // frame) * frame
    r = reference[:n].reshape(-1, frame)
    d = (reference[:n] - estimate[:n]).reshape(-1, frame)
    snr = 10 * np.log10((np.sum(r ** 2, 1) + 1e-20) / (np.sum(d ** 2, 1) + 1e-20))
    return float(np.mean(np.clip(snr, lo, hi)))
