"""Speed of the two spectrogram renderers on a 2 s EmoDB file (pytest-benchmark).

Both are in the group "image-2s" so the comparison table shows their ratio:
  pytest tests/benchmarks/test_bench_image.py --benchmark-enable --benchmark-group-by=group
"""
import numpy as np
import pytest
import soundfile

from refimpl.image import fast as fastimage
from refimpl.audio import read_audio
from refimpl.image import spectrogram_image


@pytest.fixture(scope="module")
def two_second_file(shared_data):
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    if not files:
        pytest.skip("no EmoDB wav files in shared data")
    path = min(files, key=lambda f: (abs(soundfile.info(str(f)).duration - 2.0), f.name))
    return read_audio(path)


@pytest.mark.benchmark(group="image-2s")
def test_bench_matplotlib(benchmark, two_second_file):
    a = two_second_file
    image = benchmark(spectrogram_image, a.signal, a.rate)
    assert image.shape == (227, 227, 3)


@pytest.mark.benchmark(group="image-2s")
def test_bench_fast(benchmark, two_second_file):
    a = two_second_file
    image = benchmark(fastimage.spectrogram_image_fast, a.signal, a.rate)
    assert np.array_equal(image, spectrogram_image(a.signal, a.rate))
