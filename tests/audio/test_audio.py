import numpy as np
import pytest
import soundfile
from scipy.io import wavfile

import tolerances as tol
from refimpl.audio import AudioError, read_audio, windows

# libsndfile converts a float x to an n-bit integer k (within 1 step: measured up to 0.99
# steps, so not always to the nearest) scaled by 2^(n-1) - 1 and reads k / 2^(n-1) back:
# off by at most (1 + |x|) / 2^(n-1). FLOAT keeps float32(x) (half an ulp), DOUBLE x.
PCM_BITS = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


def stored_error_bound(x, subtype):
    if subtype in PCM_BITS:
        return (1 + np.abs(x)) / 2.0 ** (PCM_BITS[subtype] - 1)
    return tol.ulps(x, 0.5) if subtype == "FLOAT" else np.zeros_like(x)


@pytest.fixture
def tone():
    t = np.arange(8000) / 16000
    return 0.5 * np.sin(2 * np.pi * 440 * t)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_reads_every_wav_sample_format_as_float_in_unit_range(tmp_path, tone, subtype):
    path = tmp_path / f"{subtype}.wav"
    soundfile.write(path, tone, 16000, subtype=subtype)
    audio = read_audio(path)
    assert audio.rate == 16000 and audio.signal.dtype == np.float64
    # scipy's reader is an independent oracle for the stored integers
    rate, raw = wavfile.read(path)
    assert rate == 16000
    if raw.dtype.kind == "i":
        full_scale = {2: 2**15, 4: 2**31}[raw.dtype.itemsize]
        np.testing.assert_array_equal(audio.signal, raw / full_scale)
    else:  # the stored float32/float64 values, converted exactly to float64
        np.testing.assert_array_equal(audio.signal, raw)
    tol.assert_within(audio.signal, tone, stored_error_bound(tone, subtype), subtype)


def test_keeps_the_file_rate_and_averages_channels(tmp_path, tone):
    path = tmp_path / "stereo.wav"
    stereo = np.stack([tone, -0.5 * tone], axis=1)
    soundfile.write(path, stereo, 22050, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.rate == 22050
    # stored float32(t) and float32(-t / 2) = -float32(t) / 2; their mean is float32(t) / 4
    # exactly, within a quarter of float32's half ulp of 0.25 t
    tol.assert_within(audio.signal, 0.25 * tone, 0.25 * tol.ulps(tone, 0.5), "channel mean")


def test_trim_zeros_removes_exact_zero_runs_at_both_ends_only(tmp_path):
    x = np.concatenate([np.zeros(100), [0.5, 0.0, -0.5], np.zeros(50)])
    path = tmp_path / "z.wav"
    soundfile.write(path, x, 16000, subtype="FLOAT")
    assert len(read_audio(path).signal) == 153
    np.testing.assert_array_equal(read_audio(path, trim_zeros=True).signal, [0.5, 0.0, -0.5])


def test_unreadable_and_empty_files_are_named_in_the_error(tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_bytes(b"RIFF....garbage")
    with pytest.raises(AudioError, match="not_audio.wav"):
        read_audio(bad)
    with pytest.raises(AudioError, match="missing.wav"):
        read_audio(tmp_path / "missing.wav")
    silent = tmp_path / "all_zero.wav"
    soundfile.write(silent, np.zeros(10), 16000)
    with pytest.raises(AudioError, match="all_zero.wav.*after trimming"):
        read_audio(silent, trim_zeros=True)


def test_windows_cover_the_file_and_keep_short_files_whole(tone):
    from refimpl.audio import Audio
    a = Audio(np.arange(16000.0), 16000, "x")
    parts = list(windows(a, 0.25, 0.125))
    assert [s for s, _ in parts] == [i * 0.125 for i in range(7)]
    assert all(len(p.signal) == 4000 for _, p in parts)
    np.testing.assert_array_equal(parts[2][1].signal, np.arange(4000.0, 8000.0))
    short = Audio(np.ones(100), 16000, "short")
    assert [(s, len(p.signal)) for s, p in windows(short, 1.0, 1.0)] == [(0.0, 100)]
