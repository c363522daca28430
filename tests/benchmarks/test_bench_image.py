"""Speed of the two spectrogram renderers on 2 s EmoDB files (pytest-benchmark).

Both are in the group "image-2s" so the comparison table shows their ratio:
  pytest tests/benchmarks/test_bench_image.py --benchmark-enable --benchmark-group-by=group

The claim is about extraction, where every file is new: each round takes the next of the
EmoDB files closest to 2 s (distinct lengths, so distinct image geometries) and starts with
the fast renderer's geometry cache (fastimage._screen_samples_cached) emptied, so no round
is served from what an earlier round computed.
"""
import itertools

import numpy as np
import pytest
import soundfile

from oracles import unavailable
from refimpl.image import fast as fastimage
from refimpl.audio import read_audio
from refimpl.image import spectrogram_image

N_FILES = 16   # distinct inputs per benchmark; rounds cycle through them


@pytest.fixture(scope="module")
def two_second_files(shared_data):
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    if len(files) < N_FILES:
        unavailable("emodb", "no EmoDB wav files in shared data")
    by_length = {}
    for f in sorted(files, key=lambda f: (abs(soundfile.info(str(f)).frames
                                              / soundfile.info(str(f)).samplerate - 2.0), f.name)):
        by_length.setdefault(soundfile.info(str(f)).frames, f)   # one file per length
        if len(by_length) == N_FILES:
            break
    return [read_audio(f) for f in by_length.values()]


class FreshInputs:
    """pedantic setup: the next file, with the geometry cache emptied; remembers the last."""

    def __init__(self, audios):
        self._files = itertools.cycle(audios)
        self.last = None

    def __call__(self):
        fastimage._screen_samples_cached.cache_clear()
        self.last = next(self._files)
        return (self.last.signal, self.last.rate), {}


@pytest.mark.benchmark(group="image-2s")
def test_bench_matplotlib(benchmark, two_second_files):
    image = benchmark.pedantic(spectrogram_image, setup=FreshInputs(two_second_files),
                               rounds=N_FILES, iterations=1)
    assert image.shape == (227, 227, 3)


@pytest.mark.benchmark(group="image-2s")
def test_bench_fast(benchmark, two_second_files):
    inputs = FreshInputs(two_second_files)
    image = benchmark.pedantic(fastimage.spectrogram_image_fast, setup=inputs,
                               rounds=N_FILES, iterations=1)
    info = fastimage._screen_samples_cached.cache_info()
    assert info.hits == 0 and info.misses == 1, info   # the last round computed its own
    assert np.array_equal(image, spectrogram_image(inputs.last.signal, inputs.last.rate))
