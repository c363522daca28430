"""Slow suite: the fast renderer against matplotlib on every EmoDB file, and a wide
hypothesis sweep (long signals, odd rates, fmax, colour maps).

Run with `pytest -m slow tests/test_fastimage_emodb.py` (about 25 s for the 535 files
and 20 s for the sweep on one quiet core).
"""
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import unavailable
from refimpl.image import fast as fastimage
from refimpl.audio import read_audio
from refimpl.image import SpectrogramOptions, spectrogram_image


@pytest.mark.slow
def test_all_emodb_files_pixel_identical(shared_data):
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    if not files:
        unavailable("emodb", "no EmoDB wav files in shared data")
    differing, bad_files = 0, []
    seconds = {"matplotlib": 0.0, "fast": 0.0}
    for path in files:
        audio = read_audio(path)
        t0 = time.perf_counter()
        want = spectrogram_image(audio.signal, audio.rate, name=audio.name)
        t1 = time.perf_counter()
        got = fastimage.spectrogram_image_fast(audio.signal, audio.rate, name=audio.name)
        t2 = time.perf_counter()
        seconds["matplotlib"] += t1 - t0
        seconds["fast"] += t2 - t1
        n = int(np.any(got != want, axis=-1).sum())
        if n:
            differing += n
            bad_files.append((path.name, n))
    print(f"\nEmoDB: {len(files)} files, {differing} differing pixels; "
          f"matplotlib {1e3 * seconds['matplotlib'] / len(files):.2f} ms/file, "
          f"fast {1e3 * seconds['fast'] / len(files):.3f} ms/file")
    assert len(files) == 535
    assert differing == 0, f"differing pixels in {len(bad_files)} files: {bad_files[:10]}"


@pytest.mark.slow
@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(256, 200000),
       rate=st.one_of(st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000]),
                      st.integers(500, 192000)),
       log_amplitude=st.floats(-7.0, 0.0),
       gap=st.tuples(st.floats(0, 1), st.floats(0, 1)),
       fmax_fraction=st.one_of(st.none(), st.floats(0.001, 1.0)),
       cmap=st.sampled_from(["viridis", "viridis", "magma", "gray"]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_wide_sweep(n, rate, log_amplitude, gap, fmax_fraction, cmap, seed):
    """Noise with a stretch of digital silence, any rate, fmax and a few colour maps."""
    x = np.random.default_rng(seed).standard_normal(n) * 10.0 ** log_amplitude
    lo, hi = sorted(int(g * n) for g in gap)
    x[lo:hi] = 0.0
    if not np.any(x):
        x[0] = 1e-3
    fmax = None if fmax_fraction is None else fmax_fraction * rate / 2
    options = SpectrogramOptions(fmax=fmax, cmap=cmap)
    want = spectrogram_image(x, rate, options)
    got = fastimage.spectrogram_image_fast(x, rate, options)
    assert int(np.any(got != want, axis=-1).sum()) == 0
