"""Slow suite: the fast renderer against matplotlib on every EmoDB file.

Run with `pytest -m slow tests/test_fastimage_emodb.py` (about 15 s per 100 files on
one core: matplotlib draws each file once, the fast renderer once more).
"""
import time

import numpy as np
import pytest

from refimpl import fastimage
from refimpl.audio import read_audio
from refimpl.image import spectrogram_image


@pytest.mark.slow
def test_all_emodb_files_pixel_identical(shared_data):
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    if not files:
        pytest.skip("no EmoDB wav files in shared data")
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
