"""Stage 1 — audio: read a speech file as the deep spectrum recipe expects it, and cut it
into the chunks the DeepSpectrum toolkit (August 2017, the paper's) made of it.

The image stage plots the signal with Fs = the file's own sample rate, so nothing is
resampled here. Samples become float64 (integer PCM divided by its full scale, as
soundfile does). A file that cannot be used is refused with an AudioError naming it; one
that can but is suspect (cut short, samples beyond [-1, 1]) gets an AudioWarning. Several channels become one as the toolkit did it: their sum divided
by 2, which is the mean of a stereo file and C/2 times the mean of a file with C > 2
channels. The spectrogram is in dB with its colour limits taken from each picture's own
range, so that gain changes the picture only through rounding.

Times in seconds become samples as the toolkit computed them, int(seconds * rate), with
the seconds taken as written (a decimal number, as the toolkit's Decimal options were: 0.7 s
at 22.05 kHz is 15435 samples, not the 15434 that binary floating point would give).
"""
import contextlib
import warnings
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import soundfile

from refimpl._util.files import check_regular
from refimpl.errors import AudioError, AudioWarning, UsageError

__all__ = ["Audio", "AudioError", "read_audio", "check_audio", "to_mono", "as_seconds",
           "seconds_to_samples", "cut", "chunk_bounds", "chunk_stamps",
           "to_pcm16", "pcm16_to_float", "FULL_SCALE"]

# 16-bit PCM's full scale: soundfile reads sample s as s / 32768 and writes x as x * 32768.
FULL_SCALE = 32768.0


@dataclass(frozen=True)
class Audio:
    signal: np.ndarray  # float64, mono
    rate: int           # samples per second, as stored in the file
    name: str = ""      # where it came from, for error messages and output rows

    @property
    def duration(self):
        return len(self.signal) / self.rate


def to_mono(samples):
    """(frames, channels) -> (frames,): one channel as it is; several as their sum / 2,
    the toolkit's mix (the mean for stereo)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 1 or samples.shape[1] == 1:
        return np.ascontiguousarray(samples.reshape(len(samples)))
    return samples.sum(axis=1) / 2


def read_audio(path: str | Path, *, trim_zeros: bool = False) -> Audio:
    """Read `path` (8/16/24/32-bit PCM or float WAV, FLAC, Ogg, ...) as mono float64
    (to_mono).

    trim_zeros: drop runs of exact-zero samples at both ends, as the DeepSpectrum toolkit
    did with np.trim_zeros before July and after September 2017 (digital silence would
    otherwise plot as -inf dB).

    Refused with an AudioError naming the file and the reason: a path that cannot be
    opened (missing, a folder, no permission, a symlink loop), an empty file, bytes that
    are not audio, no samples, NaN or infinite samples. Used with an AudioWarning: a file
    cut short (its header declares more samples than it holds: what is there is read),
    float samples beyond [-1, 1] (used as they are).

    Parameters
    ----------
    path : str or path
        The audio file.
    trim_zeros : bool
        Drop exact-zero samples at both ends (see above).

    Returns
    -------
    Audio
        signal (float64, mono), rate (Hz, as stored), name (the path as given).

    Raises
    ------
    AudioError
        The file cannot be used (the message names it and says why).
    """
    path = Path(path)
    with _sound_file(path) as f:
        samples = f.read(dtype="float64", always_2d=True)
        _judge(path, f, _Tally().add(samples))
    signal = to_mono(samples)
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
    (libsndfile only says 'System error'), or when it is empty. Only a regular file is
    opened: a FIFO would block the open, a device never end."""
    try:
        check_regular(path)
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


def as_seconds(value, what="time"):
    """A time in seconds as the decimal number it was written as (float, int, str or
    Decimal; a float by its shortest repr, so 0.1 is 0.1), or None. Refuses negative,
    infinite and non-numeric values with a UsageError naming `what`."""
    if value is None:
        return None
    try:
        seconds = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except ArithmeticError:
        raise UsageError(f"{what}: {value!r} is not a number of seconds") from None
    if not seconds.is_finite() or seconds < 0:
        raise UsageError(f"{what}: {value!r} must be a finite, non-negative number of seconds")
    return seconds


def seconds_to_samples(seconds, rate):
    """int(seconds * rate), the toolkit's conversion, computed exactly. (The toolkit's
    decimal context kept 6 significant digits, so a product of more digits, e.g.
    2.99999 s x 48 kHz, was rounded first: 144000 there, 143999 here.)"""
    return int(as_seconds(seconds) * int(rate))


def cut(audio, start=None, end=None):
    """The part of `audio` from `start` to `end` seconds (the toolkit's -start/-end:
    samples [int(start*rate), int(end*rate)); no end, or end 0, means to the end).
    Raises AudioError when nothing is left."""
    start, end = as_seconds(start, "start"), as_seconds(end, "end")
    if not start and not end:
        return audio
    a = seconds_to_samples(start or 0, audio.rate)
    b = seconds_to_samples(end, audio.rate) if end else len(audio.signal)
    if min(b, len(audio.signal)) <= a:
        raise AudioError(f"{audio.name or '<signal>'}: nothing left between start "
                         f"{start or 0} s and end {end if end else 'of file'} "
                         f"({len(audio.signal) / audio.rate:.3f} s long)")
    return Audio(audio.signal[a:b], audio.rate, audio.name)


def chunk_bounds(length, rate, window=None, hop=None, whole_windows=False):
    """The sample ranges [a, b) that a signal of `length` samples is cut into.

    No window: one chunk, the whole signal. Otherwise, with W = int(window*rate) and
    H = int(hop*rate) samples (hop defaults to the window), the toolkit's rule (its
    extract_deep_spectrum.py at 261092d): chunks n = 0 .. max(length // H, 1) - 1, each
    [n*H, min(n*H + W, length)); the trailing chunks that run past the end are kept
    short, and a signal shorter than one hop is one chunk. whole_windows=True keeps only
    chunks of exactly W samples (a signal shorter than W is still one chunk, all of it).
    """
    if window is None and hop is None:
        return [(0, length)]
    if window is None:
        raise UsageError("a hop needs a window")
    w = seconds_to_samples(window, rate)
    h = seconds_to_samples(hop if hop is not None else window, rate)
    if w < 1 or h < 1:
        raise UsageError(f"window {window} s / hop {hop} s is shorter than one sample at "
                         f"{rate} Hz")
    if whole_windows:
        count = (length - w) // h + 1 if length >= w else 0
        return [(n * h, n * h + w) for n in range(count)] or [(0, length)]
    return [(n * h, min(n * h + w, length)) for n in range(max(length // h, 1))]


def chunk_stamps(count, hop=None, start=None):
    """The toolkit's time stamp of each chunk: start + n * hop seconds (as decimals, so
    they print as the toolkit wrote them: 0.0, 0.5, 1.0 for a hop of 0.5)."""
    start = as_seconds(start, "start") or 0
    hop = as_seconds(hop, "hop")
    return [start + n * hop for n in range(count)]


def to_pcm16(x):
    """Float in [-1, 1] -> int16 samples, rounding to nearest and clipping."""
    return np.clip(np.round(x * FULL_SCALE), -32768, 32767).astype(np.int16)


def pcm16_to_float(samples):
    """The float signal a WAV reader gives for these samples (soundfile's scaling)."""
    return np.asarray(samples, dtype=np.float64) / FULL_SCALE
