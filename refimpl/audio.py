"""Stage 1 — audio: read a speech file as the deep spectrum recipe expects it.

The image stage plots the signal with Fs = the file's own sample rate, so nothing is
resampled here. Samples become float64 in [-1, 1] (integer PCM divided by its full scale,
as soundfile does), several channels are averaged to mono. A file that cannot be used
is refused with an AudioError naming it; one that can but is suspect (cut short, samples
beyond [-1, 1]) gets an AudioWarning.
"""
import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from refimpl.errors import AudioError, AudioWarning

__all__ = ["Audio", "AudioError", "read_audio", "check_audio", "windows"]


@dataclass(frozen=True)
class Audio:
    signal: np.ndarray  # float64, mono, in [-1, 1]
    rate: int           # samples per second, as stored in the file
    name: str = ""      # where it came from, for error messages and output rows

    @property
    def duration(self):
        return len(self.signal) / self.rate


def read_audio(path, *, trim_zeros=False):
    """Read `path` (8/16/24/32-bit PCM or float WAV, FLAC, Ogg, ...) as mono float64.

    trim_zeros: drop runs of exact-zero samples at both ends, as the 2017 DeepSpectrum
    toolkit did with np.trim_zeros (digital silence would otherwise plot as -inf dB).

    Refused with an AudioError naming the file and the reason: a path that cannot be
    opened (missing, a folder, no permission, a symlink loop), an empty file, bytes that
    are not audio, no samples, NaN or infinite samples. Used with an AudioWarning: a file
    cut short (its header declares more samples than it holds: what is there is read),
    float samples beyond [-1, 1] (used as they are).
    """
    path = Path(path)
    with _sound_file(path) as f:
        samples = f.read(dtype="float64", always_2d=True)
        _judge(path, f, _Tally().add(samples))
    signal = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if trim_zeros:
        signal = np.trim_zeros(signal)
        if len(signal) == 0:
            raise AudioError(f"{path}: no audio samples after trimming zeros")
    return Audio(np.ascontiguousarray(signal), int(f.samplerate), str(path))


def check_audio(path, block=1 << 18):
    """Refuse or warn about what read_audio refuses or warns about, reading `block` frames
    at a time (memory does not grow with the file: for tools that read the file
    themselves, like openSMILE). Returns soundfile's info of the file."""
    path = Path(path)
    with _sound_file(path) as f:
        tally = _Tally()
        for samples in f.blocks(block, dtype="float64", always_2d=True):
            tally.add(samples)
        _judge(path, f, tally)
    return soundfile.info(str(path))


@contextlib.contextmanager
def _sound_file(path):
    """soundfile.SoundFile(path), with every way of failing turned into an AudioError
    naming the file."""
    _check_openable(path)
    try:
        with soundfile.SoundFile(str(path)) as f:
            yield f
    except (RuntimeError, soundfile.LibsndfileError) as e:
        reason = (getattr(e, "error_string", None) or str(e)).rstrip(".")
        raise AudioError(f"{path}: not audio that libsndfile can read ({reason})") from None


class _Tally:
    """Frames, NaN or infinite samples and the peak of what has been read."""

    def __init__(self):
        self.frames = self.nonfinite = 0
        self.peak = 0.0

    def add(self, samples):
        finite = np.isfinite(samples)
        self.frames += len(samples)
        self.nonfinite += samples.size - np.count_nonzero(finite)
        self.peak = max(self.peak, float(np.max(np.abs(samples), where=finite, initial=0.0)))
        return self


def _judge(path, f, tally):
    """Refuse (AudioError) or warn (AudioWarning) about what was read of `f`."""
    declared = f.frames
    if f.format in ("WAV", "WAVEX"):
        declared = max(declared, _declared_wav_frames(path, f.channels, f.subtype))
    if tally.frames == 0:
        raise AudioError(f"{path}: no audio samples (a header only)")
    if tally.nonfinite:
        raise AudioError(f"{path}: {tally.nonfinite} of {tally.frames * f.channels} samples "
                         "are NaN or infinite")
    if tally.frames < declared:
        warnings.warn(f"{path}: truncated: the header declares {declared} samples, the "
                      f"file holds {tally.frames}; using those", AudioWarning, stacklevel=3)
    if tally.peak > 1.0:
        warnings.warn(f"{path}: samples reach {tally.peak:.4g}, beyond [-1, 1]; used "
                      "unscaled", AudioWarning, stacklevel=3)


def _check_openable(path):
    """AudioError with the operating system's reason when `path` cannot be read as a file
    (libsndfile only says 'System error'), or when it is empty."""
    try:
        with open(path, "rb") as f:
            if not f.read(1):
                raise AudioError(f"{path}: empty file (0 bytes)")
    except IsADirectoryError:
        raise AudioError(f"{path}: a folder, not an audio file") from None
    except OSError as e:
        raise AudioError(f"{path}: cannot open ({e.strerror or e})") from None


# bytes per sample of the WAV subtypes libsndfile reads
_WAV_SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
                     "FLOAT": 4, "DOUBLE": 8, "ULAW": 1, "ALAW": 1}


def _declared_wav_frames(path, channels, subtype):
    """The number of frames a RIFF WAV's data chunk declares (0 when unknown).

    libsndfile quietly reads a WAV whose data chunk is cut short as far as it goes and
    reports that as its length; the declared size is what tells that the file is
    truncated. Streaming writers put 0 or 0xFFFFFFFF there ('until the end'): unknown."""
    width = _WAV_SAMPLE_BYTES.get(subtype)
    if not width:
        return 0
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        while len(chunk := f.read(8)) == 8:
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                return 0 if size in (0, 0xFFFFFFFF) else size // (width * channels)
            f.seek(size + (size & 1), 1)    # chunks are padded to an even length
    return 0


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
