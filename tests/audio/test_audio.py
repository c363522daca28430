import numpy as np
import pytest
import soundfile
from scipy.io import wavfile

from decimal import Decimal

import tolerances as tol
from hypothesis import given, settings, strategies as st

from refimpl.audio import (Audio, AudioError, chunk_bounds, chunk_stamps, cut, read_audio,
                           seconds_to_samples)
from refimpl.errors import UsageError

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


def test_keeps_the_file_rate_and_mixes_stereo_to_the_mean(tmp_path, tone):
    path = tmp_path / "stereo.wav"
    stereo = np.stack([tone, -0.5 * tone], axis=1)
    soundfile.write(path, stereo, 22050, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.rate == 22050
    # soundfile (the toolkit's reader) is the oracle for the stored channels
    left, right = soundfile.read(path, dtype="float64")[0].T
    np.testing.assert_array_equal(audio.signal, (left + right) / 2)


def test_more_channels_are_summed_and_halved_as_the_toolkit_did(tmp_path, tone):
    """sum / 2 for any number of channels (extract_deep_spectrum.py at 261092d): for four
    channels that is twice their mean, not the mean."""
    path = tmp_path / "quad.wav"
    soundfile.write(path, np.stack([tone, 0.5 * tone, -0.25 * tone, 0.1 * tone], axis=1),
                    16000, subtype="FLOAT")
    stored = soundfile.read(path, dtype="float64")[0]
    np.testing.assert_array_equal(read_audio(path).signal, stored.sum(axis=1) / 2)
    np.testing.assert_allclose(read_audio(path).signal, 2 * stored.mean(axis=1), rtol=1e-15)


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
    with pytest.raises(AudioError, match=r"missing.wav: cannot open \(No such file"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="a folder, not an audio file"):
        read_audio(tmp_path)
    silent = tmp_path / "all_zero.wav"
    soundfile.write(silent, np.zeros(10), 16000)
    with pytest.raises(AudioError, match="all_zero.wav.*after trimming"):
        read_audio(silent, trim_zeros=True)


# ------------------------------------------------------------------ the toolkit's chunks

def toolkit_rule(length, rate, window, hop):
    """The rule of the issue / extract_deep_spectrum.py at 261092d, written out with the
    decimal arithmetic of the toolkit's Decimal options: W = int(window*sr), H =
    int(hop*sr), chunks n = 0 .. max(int(len/H), 1) - 1, each [n*H, min(n*H + W, len))."""
    w = int(Decimal(window) * rate)
    h = int(Decimal(hop) * rate)
    return [(n * h, min(n * h + w, length)) for n in range(max(int(length / h), 1))]


# (seconds of audio, rate, window, hop) -> the sample ranges, worked out by hand in the
# research note (16 kHz) and here (other rates)
PINNED = [
    (2.5, 16000, "1", "0.5", [(0, 16000), (8000, 24000), (16000, 32000), (24000, 40000),
                              (32000, 40000)]),
    (0.7, 16000, "1", "0.5", [(0, 11200)]),
    (3.0, 16000, "1", "0.5", [(0, 16000), (8000, 24000), (16000, 32000), (24000, 40000),
                              (32000, 48000), (40000, 48000)]),
    (2.99, 16000, "1", "0.5", [(0, 16000), (8000, 24000), (16000, 32000), (24000, 40000),
                               (32000, 47840)]),
    (0.4, 16000, "1", "0.5", [(0, 6400)]),
    (3.0, 16000, "0.5", "1", [(0, 8000), (16000, 24000), (32000, 40000)]),
    # 44.1 kHz: a 25 ms hop is 1102 samples (24.989 ms), a 50 ms window 2205
    (0.1, 44100, "0.05", "0.025", [(0, 2205), (1102, 3307), (2204, 4409), (3306, 4410)]),
    # 22.05 kHz: 0.7 s is 15435 samples as a decimal, 15434 in binary floating point
    (1.5, 22050, "0.7", "0.7", [(0, 15435), (15435, 30870)]),
    # 8 kHz, window shorter than the hop: gaps
    (1.0, 8000, "0.1", "0.3", [(0, 800), (2400, 3200), (4800, 5600)]),
]


@pytest.mark.parametrize("seconds,rate,window,hop,expected", PINNED)
def test_chunks_are_the_toolkits(seconds, rate, window, hop, expected):
    length = int(round(seconds * rate))
    assert chunk_bounds(length, rate, window, hop) == expected
    assert toolkit_rule(length, rate, window, hop) == expected


def test_a_2_5_s_file_with_window_1_hop_half_gives_5_stamps():
    assert [str(s) for s in chunk_stamps(len(chunk_bounds(40000, 16000, 1, 0.5)), 0.5)] == \
        ["0.0", "0.5", "1.0", "1.5", "2.0"]
    # the stamp is the nominal time, printed as the toolkit's Decimal printed it
    assert [str(s) for s in chunk_stamps(3, "0.50")] == ["0.00", "0.50", "1.00"]
    assert [str(s) for s in chunk_stamps(3, 1)] == ["0", "1", "2"]
    assert [str(s) for s in chunk_stamps(2, "0.025", start="1.5")] == ["1.500", "1.525"]


@settings(deadline=None)   # up to 25 000 chunks per case: slow on a busy machine
@given(length=st.integers(1, 200_000), rate=st.sampled_from([8000, 16000, 22050, 44100, 48000]),
       window=st.decimals("0.001", "3", places=3), hop=st.decimals("0.001", "3", places=3))
def test_chunks_follow_the_rule_for_any_length_and_rate(length, rate, window, hop):
    if int(hop * rate) < 1 or int(window * rate) < 1:
        with pytest.raises(UsageError, match="shorter than one sample"):
            chunk_bounds(length, rate, window, hop)
        return
    assert chunk_bounds(length, rate, window, hop) == toolkit_rule(length, rate, window, hop)


def test_whole_windows_only_drops_the_short_tails():
    assert chunk_bounds(40000, 16000, 1, 0.5, whole_windows=True) == \
        [(0, 16000), (8000, 24000), (16000, 32000), (24000, 40000)]
    # a file shorter than one window is still one row, all of it
    assert chunk_bounds(11200, 16000, 1, 0.5, whole_windows=True) == [(0, 11200)]
    for a, b in chunk_bounds(47840, 16000, "0.25", "0.1", whole_windows=True):
        assert b - a == 4000 and a % 1600 == 0 and b <= 47840


def test_no_window_is_one_chunk_and_bad_windows_are_refused():
    assert chunk_bounds(1234, 16000) == [(0, 1234)]
    with pytest.raises(UsageError, match="needs a window"):
        chunk_bounds(1234, 16000, hop=1)
    with pytest.raises(UsageError, match="shorter than one sample"):
        chunk_bounds(1234, 16000, "0.00001", "0.00001")


def test_seconds_become_samples_as_decimals():
    assert seconds_to_samples("0.7", 22050) == 15435 != int(0.7 * 22050)
    assert seconds_to_samples(0.7, 22050) == 15435   # a float by its shortest repr
    assert seconds_to_samples(Decimal("1.001"), 16000) == 16016


def test_start_and_end_cut_before_chunking():
    a = Audio(np.arange(48000.0), 16000, "x")
    part = cut(a, start="0.5", end="2.25")
    np.testing.assert_array_equal(part.signal, np.arange(8000.0, 36000.0))
    assert cut(a, start=1).signal[0] == 16000 and len(cut(a, end="1").signal) == 16000
    assert cut(a, end=0) is a            # end 0 means "no end", as in the toolkit
    assert len(cut(a, end=10).signal) == 48000   # past the end: to the end
    with pytest.raises(AudioError, match="x: nothing left"):
        cut(a, start=3)
    with pytest.raises(UsageError, match="start"):
        cut(a, start=-1)
