"""The extraction engine: order, bad input, the toolkit's chunks, the cache, worker
processes, memory. The network numbers are tested elsewhere against Caffe; here a
transparent stand-in shows which image each row came from, and the images themselves
are compared with matplotlib's (the reference renderer)."""
import os
import threading
from decimal import Decimal

import numpy as np
import pytest
import soundfile

from refimpl._util.cache import FeatureCache
from refimpl.features import ExtractorConfig, Signal, iter_features
from refimpl.features import engine
from refimpl.golden import signals
from refimpl.image import decode_png, spectrogram_image

WITNESS = np.arange(0, 227 * 227 * 3, 37)[:4096]   # pixels spread over the whole image


class PixelNetwork:
    """feature i = pixel WITNESS[i] of the image: a row shows its image."""
    dim = 4096

    def __init__(self):
        self.calls = []

    def features(self, images):
        self.calls.append(len(images))
        return images.reshape(len(images), -1)[:, WITNESS].astype(np.float32)

    def close(self):
        pass


CONFIG = ExtractorConfig(backend="numpy", weights="synthetic:0")


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("tone_440hz_16k", "chirp_100_7000_16k", "speechlike_male_16k"):
        samples, rate = signals.make_case(name)
        soundfile.write(folder / f"{name}.wav", samples, rate, subtype="PCM_16")
    return folder


def run(items, config=CONFIG, **kw):
    kw.setdefault("cache", False)
    return list(iter_features(items, config, network=PixelNetwork(), **kw))


def test_rows_are_the_images_of_their_files_in_order(corpus):
    files = sorted(corpus.glob("*.wav"))
    results = run(files)
    assert [r.name for r in results] == [f.name for f in files]
    for f, r in zip(files, results):
        x, rate = soundfile.read(f)
        want = spectrogram_image(x, rate)[None].reshape(1, -1)[:, WITNESS]   # matplotlib
        np.testing.assert_array_equal(r.features, want)
        assert r.bounds.tolist() == [[0, len(x)]] and r.rate == rate and r.length == len(x)


def test_bad_files_are_named_and_the_rest_still_come_out(corpus, tmp_path):
    (corpus / "text.wav").write_text("not a wav file\n")
    soundfile.write(corpus / "silent.wav", np.zeros(4000, np.int16), 16000, subtype="PCM_16")
    soundfile.write(corpus / "short.wav", np.ones(100, np.int16), 16000, subtype="PCM_16")
    locked = corpus / "locked.wav"
    locked.write_bytes((corpus / "tone_440hz_16k.wav").read_bytes())
    locked.chmod(0)
    files = sorted(corpus.glob("*.wav")) + [tmp_path / "missing.wav"]
    for cache in (False, True):
        results = run(files, cache=cache, cache_root=tmp_path / "cache")
        errors = {r.name: r.error for r in results if not r.ok}
        readable = ["locked.wav"] if os.geteuid() == 0 else []      # root reads anything
        assert [r.name for r in results if r.ok] == sorted(
            ["chirp_100_7000_16k.wav", "speechlike_male_16k.wav", "tone_440hz_16k.wav"]
            + readable)
        assert "digital silence" in errors["silent.wav"]
        assert "shorter than one FFT frame" in errors["short.wav"]
        assert "text.wav: not audio that libsndfile can read" in errors["text.wav"]
        assert errors["missing.wav"].endswith("missing.wav: cannot open (No such file or directory)")
        if not readable:
            assert "locked.wav: cannot read" in errors["locked.wav"]
        assert all("\n" not in e for e in errors.values())


def test_windowed_rows_follow_the_toolkits_chunks(corpus):
    """2.5 s with window 1 s / hop 0.5 s: 5 rows at 0 .. 2.0 s, the last a 0.5 s chunk."""
    wav = corpus / "speechlike_male_16k.wav"                     # 40000 samples
    config = ExtractorConfig(window=1, hop=0.5)
    (r,) = run([wav], config)
    assert r.bounds.tolist() == [[0, 16000], [8000, 24000], [16000, 32000], [24000, 40000],
                                 [32000, 40000]]
    stamps, starts, ends = r.times(config)
    assert [str(s) for s in stamps] == ["0.0", "0.5", "1.0", "1.5", "2.0"]
    assert starts == stamps and [float(e) for e in ends] == [1.0, 1.5, 2.0, 2.5, 2.5]
    x = soundfile.read(wav)[0]
    for (a, b), row in zip(r.bounds, r.features):
        np.testing.assert_array_equal(row, spectrogram_image(x[a:b], 16000).reshape(-1)[WITNESS])
    whole = ExtractorConfig(window=1, hop=0.5, whole_windows=True)
    assert len(run([wav], whole)[0].features) == 4


def test_start_and_end_cut_each_file_first(corpus):
    wav = corpus / "speechlike_male_16k.wav"
    config = ExtractorConfig(start="0.5", end="2", window="0.5")
    (r,) = run([wav], config)
    assert r.length == 24000 and len(r.features) == 3
    stamps, _, ends = r.times(config)
    assert [str(s) for s in stamps] == ["0.5", "1.0", "1.5"] and str(ends[-1]) == "2.0"
    x = soundfile.read(wav)[0]
    np.testing.assert_array_equal(r.features[0], spectrogram_image(x[8000:16000], 16000)
                                  .reshape(-1)[WITNESS])
    (whole,) = run([wav], ExtractorConfig(start=1))
    assert whole.times(ExtractorConfig(start=1))[1:] == ([Decimal(1)], [Decimal("2.5")])


def test_worker_processes_give_the_same_rows(corpus):
    files = sorted(corpus.glob("*.wav")) * 2
    config = ExtractorConfig(window="0.75", hop="0.5")
    one = run(files, config)
    two = run(files, config, jobs=2)
    assert [r.name for r in two] == [r.name for r in one]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.features, b.features)
        np.testing.assert_array_equal(a.bounds, b.bounds)


def test_a_files_chunks_go_through_the_network_apart_from_other_files(corpus):
    """A network whose results depend on the batch (BLAS's blocking: numpy, Caffe, torch)
    gets one file's chunks at a time (at most FORWARD_PIECE of them), so that no file's
    features depend on its neighbours."""
    files = sorted(corpus.glob("*.wav"))
    net = PixelNetwork()
    list(iter_features(files, ExtractorConfig(window="0.05"), network=net, cache=False))
    # 1 s, 2 s, 2.5 s in 50 ms chunks: 20, 40, 50 chunks, cut into pieces of 32
    assert net.calls == [32, 8, 32, 18, 20]


class InvariantPixelNetwork(PixelNetwork):
    batch_invariant = True


def test_a_batch_invariant_network_takes_several_files_at_once(corpus, tmp_path):
    """A batch-invariant network (the C core) gets FORWARD_PIECE images at a time from
    however many files, and each file still gets its own rows, in order, among cache hits
    and unusable files."""
    files = sorted(corpus.glob("*.wav"))
    config = ExtractorConfig(backend="numpy", weights="synthetic:0", window="0.05")
    net = InvariantPixelNetwork()
    got = list(iter_features(files, config, network=net, cache=False))
    assert net.calls == [32, 32, 32, 14]    # 20 + 40 + 50 chunks
    want = run(files, config)
    for a, b in zip(got, want, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.features, b.features)
    (corpus / "text.wav").write_text("not a wav file\n")
    root = tmp_path / "cache"
    run(files[1:2], config, cache=True, cache_root=root)
    items = [files[0], corpus / "text.wav", files[1], files[2]]
    net = InvariantPixelNetwork()
    got = list(iter_features(items, config, network=net, cache=True, cache_root=root))
    assert [r.name for r in got] == [p.name for p in items]
    assert [r.cached for r in got] == [False, False, True, False]
    assert "not audio" in got[1].error
    computed = len(want[0].features) + len(want[2].features)
    assert sum(net.calls) == computed and set(net.calls[:-1]) <= {32}, net.calls
    for r in got[:1] + got[2:]:
        np.testing.assert_array_equal(r.features, want[files.index(corpus / r.name)].features)


def test_the_c_core_batched_across_files_writes_the_per_file_bytes(shared_data, tmp_path,
                                                                   monkeypatch):
    """Real speech through the C core: the CSV of a run that batches images across files
    (whole files: 40 files, one image each; windowed: several chunks per file) is the same
    bytes as a run that sends each file's images on their own."""
    from refimpl.cli import main
    from refimpl.network import cforward
    if not cforward.available():
        from oracles import unavailable
        unavailable("core", "the compiled core is not built (make build)")
    wavs = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    batches = []
    forward = cforward.CNetwork.forward

    def spy(self, blob, until="fc7"):
        batches.append(len(blob))
        return forward(self, blob, until)

    monkeypatch.setattr(cforward.CNetwork, "forward", spy)
    for files, window in [(wavs[:40], []), (wavs[40:46], ["--window", "0.5", "--hop", "0.25"])]:
        out = {}
        for across in (True, False):
            monkeypatch.setattr(cforward.CNetwork, "batch_invariant", across)
            batches.clear()
            path = tmp_path / f"{across}.csv"
            assert main(["extract", *map(str, files), "-o", str(path), "--backend", "c",
                         "--weights", "synthetic:0", "--no-progress", "--no-cache",
                         *window]) == 0
            out[across] = path.read_bytes(), list(batches)
        (batched, sizes), (per_file, file_sizes) = out[True], out[False]
        assert batched == per_file
        assert sizes[0] == engine.FORWARD_PIECE and len(sizes) < len(file_sizes), (sizes,
                                                                                  file_sizes)


def test_the_cache_serves_a_second_run_and_follows_the_configuration(corpus, tmp_path):
    files = sorted(corpus.glob("*.wav"))
    root = tmp_path / "cache"
    first = run(files, cache=True, cache_root=root)
    again = run(files, cache=True, cache_root=root)
    assert [r.cached for r in first] == [False] * 3 and [r.cached for r in again] == [True] * 3
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.features, b.features)
        assert (a.rate, a.length) == (b.rate, b.length)
    windowed = ExtractorConfig(backend="numpy", weights="synthetic:0", window=1)
    assert not any(r.cached for r in run(files, windowed, cache=True, cache_root=root))
    # content, not name: a copy under another name is served
    copy = tmp_path / "copy.wav"
    copy.write_bytes(files[0].read_bytes())
    assert run([copy], cache=True, cache_root=root)[0].cached


def test_every_setting_that_changes_features_changes_the_cache_key():
    import dataclasses
    variants = [dict(), dict(layer="pool5"), dict(weights="synthetic:1"), dict(nfft=512),
                dict(cmap="magma"), dict(fmax=4000.0), dict(window=1),
                dict(window=1, hop="0.5"), dict(window=2, hop="0.5"),
                dict(window=1, whole_windows=True), dict(start=1),
                dict(end=2), dict(trim_zeros=True), dict(renderer="matplotlib"),
                dict(subtract_mean=True), dict(backend="c")]
    ids = [dataclasses.replace(CONFIG, **v).config_id() for v in variants]
    assert len(set(ids)) == len(variants)
    # the same features under other spellings: one key
    assert dataclasses.replace(CONFIG, window=1).config_id() == \
        dataclasses.replace(CONFIG, window="1.0", hop=1.0).config_id()


def test_a_damaged_cache_entry_is_recomputed(corpus, tmp_path):
    files = sorted(corpus.glob("*.wav"))[:1]
    root = tmp_path / "cache"
    run(files, cache=True, cache_root=root)
    cache = FeatureCache(engine.CACHE_NAME, CONFIG.config_id(), root)
    (entry,) = cache.folder.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(UserWarning, match="damaged cache entry"):
        (r,) = run(files, cache=True, cache_root=root)
    assert not r.cached and r.ok


def test_signals_are_extracted_like_files(corpus):
    wav = corpus / "chirp_100_7000_16k.wav"
    x, rate = soundfile.read(wav)
    from_file, from_signal, stereo = run([wav, Signal(x, rate, "mine"),
                                          Signal(np.stack([x, x], 1), rate)])
    np.testing.assert_array_equal(from_file.features, from_signal.features)
    np.testing.assert_array_equal(from_file.features, stereo.features)   # (x + x) / 2 == x
    assert from_signal.name == "mine" and from_signal.path is None
    bad = run([Signal(np.zeros((2, 3, 4)), rate, "cube")])[0]
    assert "cube: a signal must be" in bad.error


def test_spectrograms_are_written_as_they_are_made(corpus, tmp_path):
    from refimpl.features import AudioInput
    wav = corpus / "speechlike_male_16k.wav"
    out = tmp_path / "png"
    config = ExtractorConfig(window=1, hop=0.5)
    (r,) = run([AudioInput(wav, "spk/a.wav")], config, spectrogram_dir=out)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert names == [f"spk/a_{n}.png" for n in range(5)]      # the toolkit's names
    x = soundfile.read(wav)[0]
    for n, (a, b) in enumerate(r.bounds):
        png = decode_png((out / f"spk/a_{n}.png").read_bytes())
        np.testing.assert_array_equal(png, spectrogram_image(x[a:b], 16000))


def test_failures_outside_bad_input_stop_the_run_and_leave_no_thread(corpus, monkeypatch):
    files = sorted(corpus.glob("*.wav"))
    before = threading.active_count()

    class Broken(PixelNetwork):
        def features(self, images):
            raise RuntimeError("caffe worker died")
    with pytest.raises(RuntimeError, match="worker died"):
        list(iter_features(files, CONFIG, network=Broken(), cache=False, prefetch=1))

    def explode(*a, **k):
        raise MemoryError("out of memory while drawing")
    monkeypatch.setattr(engine, "draw_piece", explode)
    with pytest.raises(MemoryError):
        run(files)
    assert threading.active_count() == before


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_input_stream_is_read_only_a_few_files_ahead(tmp_path, jobs):
    """Memory stays flat on any corpus: the inputs are consumed as the work goes, at
    most `prefetch` files (plus the one being drawn and the one in the network) ahead of
    the results handed out, and no result is kept once it is handed out."""
    wav = tmp_path / "a.wav"
    soundfile.write(wav, signals.make_case("tone_440hz_16k")[0], 16000, subtype="PCM_16")
    pulled = []

    def stream(n):
        for i in range(n):
            pulled.append(i)
            yield wav
    prefetch = 3
    ahead = []
    for k, r in enumerate(iter_features(stream(40), CONFIG, network=PixelNetwork(),
                                        cache=False, prefetch=prefetch, jobs=jobs)):
        assert r.ok
        ahead.append(len(pulled) - (k + 1))
    assert len(pulled) == 40 and max(ahead) <= prefetch + 2, ahead


def test_a_long_file_is_drawn_a_piece_at_a_time(tmp_path, monkeypatch):
    """20 s in 50 ms chunks is 400 images (62 MB): drawn FORWARD_PIECE at a time, and at
    most `prefetch` pieces (plus the one being drawn) wait for the network."""
    rng = np.random.default_rng(7)
    wav = tmp_path / "long.wav"
    soundfile.write(wav, (rng.standard_normal(320000) * 3000).astype(np.int16), 16000,
                    subtype="PCM_16")
    drawn, waiting = [], []
    real = engine.draw_piece

    def counting(piece, config):
        drawn.append(len(piece.bounds))
        return real(piece, config)

    class Watching(PixelNetwork):
        def features(self, images):
            waiting.append(len(drawn) - len(self.calls))
            return super().features(images)
    monkeypatch.setattr(engine, "draw_piece", counting)
    (r,) = list(iter_features([wav], ExtractorConfig(window="0.05"), network=Watching(),
                              cache=False, prefetch=2))
    assert len(r.features) == 400 and sum(drawn) == 400 and max(drawn) == engine.FORWARD_PIECE
    assert max(waiting) <= 2 + 2, waiting


def test_png_names_stay_inside_the_folder():
    assert engine.png_names("a.wav", 1, False) == ["a.png"]
    assert engine.png_names("spk/a.b.wav", 2, True) == ["spk/a.b_0.png", "spk/a.b_1.png"]
    assert engine.png_names("/data/x/a.wav", 1, False) == ["data/x/a.png"]
    assert engine.png_names("../up/a.wav", 1, False) == ["up/a.png"]


def test_cache_key_names_what_moves_the_last_bits(monkeypatch):
    """The C core's sums are fixed by the layer's shape (no thread count in its key);
    a BLAS-backed backend's bits follow the BLAS thread count, so its key names it."""
    from refimpl.features import ExtractorConfig
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    c_key = ExtractorConfig(weights="synthetic:0").config_id()
    assert "sums=fma-in-order" in c_key and "threads=" not in c_key
    numpy_key = ExtractorConfig(weights="synthetic:0", backend="numpy").config_id()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert "threads=3" in numpy_key
    assert ExtractorConfig(weights="synthetic:0", backend="numpy").config_id() != numpy_key
