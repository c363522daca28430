"""The noisy condition's room impulse response (refimpl.conditions.rir): pyroomacoustics'
bits, exactly, whatever pyroomacoustics' own thread setting.

Oracles: pyroomacoustics' image-source model (room.sources[0].images / damping), its
libroom.rir_builder on one thread, its Room.compute_rir, and room.simulate (through
room_simulation.simulate with the reference response). Equality, not closeness: the fast path is the
same IEEE operations in the same order, so any difference is a bug.
"""
import numpy as np
import pytest

from refimpl.conditions import room_simulation as N
from refimpl.conditions import rir as R
from refimpl.corpus.table import read_json

pra = pytest.importorskip("pyroomacoustics")


@pytest.fixture
def pra_threads():
    """set(n): pyroomacoustics' own thread count for this test, restored afterwards."""
    before = pra.constants.get("num_threads")
    yield lambda n: pra.constants.set("num_threads", n)
    pra.constants.set("num_threads", before)


def drawn_rooms(seeds, partition="train"):
    spec, pool = read_json(N.SPEC_FILE), N.noise_pool()
    return [N.draw_parameters(np.random.default_rng(s), spec, partition, pool) for s in seeds]


@pytest.mark.parametrize("order", [0, 1, 2, 7])
def test_image_sources_equal_libroom(order):
    dims, source, absorption = [6.1, 4.7, 3.05], [1.3, 3.9, 1.21], 0.23
    room = pra.ShoeBox(dims, fs=16000, materials=pra.Material(absorption), max_order=order)
    room.add_source(source)
    room.add_microphone([4.2, 1.1, 1.7])
    room.image_source_model()
    images, attenuation = R.shoebox_images(dims, source, order, absorption)
    assert images.dtype == np.float32 and attenuation.dtype == np.float32
    assert np.array_equal(images, room.sources[0].images)
    assert np.array_equal(attenuation, room.sources[0].damping[0])


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_shoebox_rir_equals_pyroomacoustics_bit_for_bit(compiled, shared_data, pra_threads):
    # Rooms as the noisy condition draws them (orders 40-70 here, to keep the reference's
    # image-source step short), pyroomacoustics' compute_rir on one thread as the oracle.
    if compiled:
        kernel = pytest.importorskip("refimpl.conditions._rir")
        assert R._kernel() is kernel, "the compiled builder is built but disagrees with libroom"
    for params in drawn_rooms((2, 4, 11)):
        ref, absorption, order = R.pyroomacoustics_rir(params, 16000, num_threads=1)
        got, a2, o2 = R.shoebox_rir(params, 16000, compiled=compiled)
        assert (a2, o2) == (absorption, order) and 40 <= order <= 70
        assert got.dtype == ref.dtype and np.array_equal(got, ref)


def test_the_response_does_not_follow_pyroomacoustics_thread_setting(shared_data, pra_threads):
    # pyroomacoustics' default is one builder thread per core, and its partial sums move the
    # last bits with the count; the noisy condition's response stays the one-thread one.
    params = drawn_rooms((4,))[0]
    one = R.pyroomacoustics_rir(params, 16000, num_threads=1)[0]
    pra_threads(2)
    assert np.array_equal(N.room_impulse_response(params, 16000)[0], one)
    assert np.array_equal(R.shoebox_rir(params, 16000, compiled=False)[0], one)


def test_compiled_rir_builder_equals_libroom():
    # Oracle: pyroomacoustics' own rir_builder on one thread, on random times (any
    # fractional part, so every row of the sinc table is used) and signed amplitudes,
    # including images that overlap on the same samples.
    kernel = pytest.importorskip("refimpl.conditions._rir")
    from pyroomacoustics import libroom
    rng = np.random.default_rng(7)
    for n, length in ((1, 200), (50, 400), (20000, 16000)):
        times = rng.uniform(45 / 16000, (length - 45) / 16000, n).astype(np.float32)
        if n > 1:
            times[1] = times[0]                    # two images on the same sample
            times[-1] = np.float32(1 / 64)         # exactly sample 250: the table's last row
        alphas = rng.standard_normal(n).astype(np.float32)
        ours, theirs = np.zeros(length, np.float32), np.zeros(length, np.float32)
        kernel.rir_builder(ours, times, alphas, 16000, 81, 20)
        libroom.rir_builder(theirs, times, alphas, 16000, 81, 20, 1)
        assert np.array_equal(ours, theirs), n
    with pytest.raises(RuntimeError, match="outside the rir array"):
        kernel.rir_builder(np.zeros(100, np.float32), np.array([0.05], np.float32),
                           np.ones(1, np.float32), 16000, 81, 20)


def test_noisy_file_is_the_simulation_with_pyroomacoustics_response(shared_data, tmp_path):
    # A whole written file of the noisy condition against the same steps run with
    # pyroomacoustics' compute_rir (one thread), written the same way: the same file.
    import soundfile as sf
    spec, pool = read_json(N.SPEC_FILE), N.noise_pool()
    clean_path = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[3]
    name = clean_path.name
    N.noisy_file(clean_path, tmp_path / name, name, "test", 0, pool, spec)
    clean, fs = N.read_mono(clean_path, 16000)
    params = N.draw_parameters(np.random.default_rng(N.file_seed(0, name)), spec, "test", pool)
    noise = N.read_mono(params["noise_file"], fs)[0]
    expected, _ = N.simulate(clean, fs, params, noise,
                             impulse_response=lambda p, f: R.pyroomacoustics_rir(p, f, 1))
    sf.write(str(tmp_path / "expected.wav"), expected, fs, subtype="PCM_16", format="WAV")
    assert (tmp_path / name).read_bytes() == (tmp_path / "expected.wav").read_bytes()
