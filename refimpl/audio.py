"""Stage 1 — audio: read a speech file as the deep spectrum recipe expects it.

The image stage plots the signal with Fs = the file's own sample rate, so nothing is
resampled here. Samples become float64 in [-1, 1] (integer PCM divided by its full scale,
as soundfile does), several channels are averaged to mono.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from refimpl.errors import AudioError

__all__ = ["Audio", "AudioError", "read_audio", "windows", "to_pcm16", "pcm16_to_float",
           "FULL_SCALE"]

# 16-bit PCM's full scale: soundfile reads sample s as s / 32768 and writes x as x * 32768.
FULL_SCALE = 32768.0


@dataclass(frozen=True)
class Audio:
    signal: np.ndarray  # float64, mono, in [-1, 1]
    rate: int           # samples per second, as stored in the file
    name: str = ""      # where it came from, for error messages and output rows

    @property
    def duration(self):
        return len(self.signal) / self.rate


def read_audio(path, *, trim_zeros=False):
    """Read `path` (16/24/32-bit PCM or float WAV, FLAC, ...) as mono float64.

    trim_zeros: drop runs of exact-zero samples at both ends, as the 2017 DeepSpectrum
    toolkit did with np.trim_zeros (digital silence would otherwise plot as -inf dB).
    """
    path = Path(path)
    try:
        samples, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, OSError) as e:
        raise AudioError(f"{path}: cannot read audio ({e})") from None
    signal = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if trim_zeros:
        signal = np.trim_zeros(signal)
    if len(signal) == 0:
        raise AudioError(f"{path}: no audio samples" + (" after trimming zeros" if trim_zeros else ""))
    return Audio(np.ascontiguousarray(signal), int(rate), str(path))


def to_pcm16(x):
    """Float in [-1, 1] -> int16 samples, rounding to nearest and clipping."""
    return np.clip(np.round(x * FULL_SCALE), -32768, 32767).astype(np.int16)


def pcm16_to_float(samples):
    """The float signal a WAV reader gives for these samples (soundfile's scaling)."""
    return np.asarray(samples, dtype=np.float64) / FULL_SCALE


def windows(audio, window, hop):
    """Cut `audio` into windows of `window` seconds every `hop` seconds (the toolkit's
    -t option): yields (start time in seconds, Audio). The last, shorter remainder is
    dropped unless the file is shorter than one window, in which case the whole file is
    one window — so every file yields at least one row."""
    size = int(round(window * audio.rate))
    step = int(round(hop * audio.rate))
    if size <= 0 or step <= 0:
        raise ValueError("window and hop must be positive")
    n = len(audio.signal)
    if n <= size:
        yield 0.0, audio
        return
    for start in range(0, n - size + 1, step):
        yield start / audio.rate, Audio(audio.signal[start:start + size], audio.rate, audio.name)
