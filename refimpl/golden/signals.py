"""Deterministic synthetic signals for golden files, tests and the demo.

Each is made by code from a name alone, so golden/ needs no audio. Randomness comes
from NumPy's PCG64 with a fixed seed (its bit stream is specified and platform
independent). The result is quantised to 16-bit PCM, like a WAV file: that both makes
the signal a realistic input and absorbs last-ulp differences of sin/exp between libm
builds, so the same int16 samples come out on any machine (golden/ stores them anyway
and a test checks that the code still makes them).
"""
import numpy as np

# the PCM conversions live in refimpl.audio (the conditions use them too); golden's
# callers reach them through this module as before
from refimpl.audio import pcm16_to_float, to_pcm16  # noqa: F401


def _time(rate, seconds):
    return np.arange(int(round(rate * seconds)), dtype=np.float64) / rate


def tone(rate, seconds, freq, amplitude=0.5):
    t = _time(rate, seconds)
    return amplitude * np.sin(2 * np.pi * freq * t)


def chirp(rate, seconds, f0, f1, amplitude=0.5):
    """Linear chirp from f0 to f1 Hz."""
    t = _time(rate, seconds)
    k = (f1 - f0) / seconds
    return amplitude * np.sin(2 * np.pi * (f0 * t + 0.5 * k * t * t))


def noise_bursts(rate, seconds, seed, burst=0.15, gap=0.1, amplitude=0.3):
    """Uniform white noise switched on and off, with exact digital silence in the gaps."""
    rng = np.random.Generator(np.random.PCG64(seed))
    x = amplitude * (2.0 * rng.random(len(_time(rate, seconds))) - 1.0)
    period = int(round((burst + gap) * rate))
    on = (np.arange(len(x)) % period) < int(round(burst * rate))
    return np.where(on, x, 0.0)


def speechlike(rate, seconds, seed, f0=120.0):
    """Vowel-like AM/FM signal: a glottal-pulse-ish harmonic series with vibrato on the
    pitch, shaped by three formant resonances, amplitude-modulated at a syllable rate."""
    rng = np.random.Generator(np.random.PCG64(seed))
    t = _time(rate, seconds)
    pitch = f0 * (1.0 + 0.08 * np.sin(2 * np.pi * 4.5 * t) + 0.15 * t / max(seconds, 1e-9))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    formants = np.array([700.0, 1200.0, 2600.0]) * (0.9 + 0.2 * rng.random(3))
    x = np.zeros_like(t)
    for h in range(1, 40):
        fh = h * pitch
        gain = sum(1.0 / (1.0 + ((fh - f) / 120.0) ** 2) for f in formants) / h
        x += np.where(fh < rate / 2, gain * np.sin(h * phase), 0.0)
    envelope = 0.5 * (1.0 - np.cos(2 * np.pi * 3.0 * t)) ** 2
    x *= envelope
    x += 0.01 * (2.0 * rng.random(len(t)) - 1.0)
    return 0.6 * x / np.max(np.abs(x))


# name -> (sample rate, generator). Different rates and lengths on purpose: the plot's
# time and frequency axes both depend on them.
CASES = {
    "tone_440hz_16k": (16000, lambda r: tone(r, 1.0, 440.0)),
    "tone_3khz_8k_short": (8000, lambda r: tone(r, 0.25, 3000.0, amplitude=0.05)),
    "chirp_100_7000_16k": (16000, lambda r: chirp(r, 2.0, 100.0, 7000.0)),
    "chirp_down_44k": (44100, lambda r: chirp(r, 1.5, 15000.0, 200.0, amplitude=0.8)),
    "noise_bursts_16k": (16000, lambda r: noise_bursts(r, 1.2, seed=1)),
    "noise_quiet_22k": (22050, lambda r: 1e-3 * noise_bursts(r, 0.8, seed=2, gap=0.0)),
    "speechlike_male_16k": (16000, lambda r: speechlike(r, 2.5, seed=3, f0=110.0)),
    "speechlike_female_48k": (48000, lambda r: speechlike(r, 1.8, seed=4, f0=220.0)),
    "speechlike_long_16k": (16000, lambda r: speechlike(r, 6.0, seed=5, f0=140.0)),
    "minimal_257_samples_16k": (16000, lambda r: chirp(r, 257 / 16000, 500.0, 4000.0)),
}


def make_case(name):
    """-> (int16 samples, rate) of the named case."""
    rate, make = CASES[name]
    return to_pcm16(make(rate)), rate
