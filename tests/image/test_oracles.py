"""The two pixel rules against the matplotlib that drew them, in their own environments
(refimpl.image.oracles, `make oracles`):

  "2017"             the fast renderer vs real matplotlib 2.0.2 on Python 3.6 with numpy
                     1.13.3 (official wheels): what the DeepSpectrum toolkit drew in 2017
  "matplotlib-3.11"  the fast renderer vs real matplotlib 3.11.2

Zero differing pixels, on generated signals chosen where the rules are fragile: even and
odd frame counts, the frame counts and fmax values whose screen columns or rows sit
nearest a data-pixel boundary (where the two rules part), every rate the README names,
fmax below Fs/2, the toolkit's windowed chunks, signals just longer than NFFT, digital
silence. All 535 EmoDB files: the slow test at the end. The toolkit's PNG decoding
(imread + scikit-image's img_as_float) is audited here too.
"""
import functools
import warnings

import numpy as np
import pytest

from oracles import unavailable
from refimpl.errors import MissingDependency, PixelRuleWarning
from refimpl.golden import signals
from refimpl.image import (PIXELS_2017, PIXELS_MPL311, ImageError, SpectrogramOptions,
                           matplotlib_pixel_rule, render_image, spectrogram_image)
from refimpl.image import fast as fastimage
from refimpl.image import oracles

RATES = [1000, 8000, 11025, 12345, 16000, 22050, 32000, 44100, 48000, 96000]
ORACLE_OF = {PIXELS_2017: oracles.MPL_2017, PIXELS_MPL311: oracles.MPL_3_11}
TEST_ORACLE = {oracles.MPL_2017: "mpl2017", oracles.MPL_3_11: "mpl311"}


def need(name):
    try:
        oracles.find_oracle(name)
    except MissingDependency as e:
        unavailable(TEST_ORACLE[name], str(e))


def frames_of(n, nfft=256):
    return 1 + (n - nfft) // (nfft // 2)


def length_for(frames, nfft=256):
    return nfft + (frames - 1) * (nfft // 2)


def columns_where_rules_part(frames, rate, fmax=None):
    """How many screen pixels the two rules sample from different data pixels, for a
    signal of `frames` frames (from the fast renderer's index arithmetic alone: used to
    choose the signals, never as the expected answer)."""
    n = length_for(frames)
    extent = fastimage.spectrum_extent(n, rate)
    ylim = (extent[2], extent[3] if fmax is None else fmax)
    a = fastimage._screen_samples(frames, 129, extent, ylim, PIXELS_2017)
    b = fastimage._screen_samples(frames, 129, extent, ylim, PIXELS_MPL311)
    return int((a[0] != b[0]).sum() + (a[1] != b[1]).sum())


def generated_cases():
    """(label, signal, rate, options): the signals the oracle tests draw."""
    rng = np.random.default_rng(2017)
    cases = []

    def add(label, x, rate, **options):
        cases.append((label, np.asarray(x, dtype=np.float64), rate,
                      SpectrogramOptions(**options)))

    def speech(n, rate, seed):
        x = signals.speechlike(rate, n / rate + 0.01, seed=seed)[:n]
        return x if np.any(x) else rng.standard_normal(n)

    # frame counts where the rules part (ties: even counts; near-boundary columns) and
    # where they agree, even and odd, at every rate
    for rate in RATES:
        parting = [f for f in range(2, 300) if columns_where_rules_part(f, rate)]
        agreeing = [f for f in range(2, 300) if not columns_where_rules_part(f, rate)]
        picks = rng.choice(parting, 3, replace=False).tolist() + \
            rng.choice(agreeing, 2, replace=False).tolist()
        picks += [next(f for f in parting if f % 2), next(f for f in parting if not f % 2)]
        for frames in picks:
            n = length_for(frames) + int(rng.integers(0, 128))  # a partial frame is dropped
            add(f"{rate}Hz_{frames}frames", speech(n, rate, frames), rate)
    # fmax below Fs/2, including values whose rows sit nearest a boundary
    for rate in (8000, 16000, 44100):
        n = length_for(150)
        fmaxes = [f for f in np.linspace(200.0, rate / 2 - 10, 400)
                  if columns_where_rules_part(150, rate, f)]
        for fmax in rng.choice(fmaxes, 3, replace=False).tolist() + [rate / 4, 62.5]:
            add(f"{rate}Hz_fmax{fmax:.1f}", speech(n, rate, 7), rate, fmax=float(fmax))
    # the toolkit's windowed chunks of one file (1 s windows, 0.5 s hop, the tail kept)
    rate = 16000
    x = signals.speechlike(rate, 3.3, seed=11)
    for i in range(int(len(x) / (rate // 2))):
        chunk = x[i * (rate // 2): min(i * (rate // 2) + rate, len(x))]
        if len(chunk) >= 256 and np.any(chunk):
            add(f"chunk{i}", chunk, rate)
    # just longer than NFFT, and digital silence inside
    for n in (256, 257, 300, 383, 384, 385, 511, 512, 513):
        add(f"short{n}", rng.standard_normal(n) * 0.3, 16000)
    add("silence_gap", signals.noise_bursts(16000, 2.0, seed=3, burst=0.2, gap=0.3), 16000)
    add("magma", speech(length_for(101), 22050, 5), 22050, cmap="magma")
    return cases


CASES = generated_cases()


def drawn_by(oracle_name, cases):
    need(oracle_name)
    return oracles.draw_images(oracle_name, [(x, rate, o) for _, x, rate, o in cases])


@functools.cache
def drawings_of_the_cases(oracle_name):
    """Each oracle draws CASES once per run (about 0.1 s a picture in 2.0.2)."""
    return drawn_by(oracle_name, CASES)


def differing(pixels, cases, drawings):
    bad = []
    for (label, x, rate, options), drawing in zip(cases, drawings):
        ours = fastimage.spectrogram_image_fast(
            x, rate, SpectrogramOptions(options.nfft, options.cmap, options.fmax, pixels))
        n = int(np.any(ours != drawing.image, axis=-1).sum())
        if n:
            bad.append((label, n))
    return bad


@pytest.mark.parametrize("pixels", [PIXELS_2017, PIXELS_MPL311])
def test_fast_renderer_draws_what_its_matplotlib_draws(pixels):
    drawings = drawings_of_the_cases(ORACLE_OF[pixels])
    assert differing(pixels, CASES, drawings) == []


def test_the_cases_reach_the_pixels_where_the_rules_part():
    """The two oracles disagree on many of the generated pictures (else the tests above
    could not tell the rules apart), and the 2017 rule is not the 3.11 one."""
    old = drawings_of_the_cases(oracles.MPL_2017)
    new = drawings_of_the_cases(oracles.MPL_3_11)
    parted = [label for (label, *_), a, b in zip(CASES, old, new)
              if not np.array_equal(a.image, b.image)]
    assert len(parted) >= len(RATES) * 3, parted
    assert differing(PIXELS_MPL311, CASES, old) != []


def test_the_2017_oracle_is_what_2017_ran():
    need(oracles.MPL_2017)
    versions = oracles.oracle_versions(oracles.MPL_2017)
    assert versions["matplotlib"] == "2.0.2" and versions["numpy"] == "1.13.3"
    assert versions["python"].startswith("3.6.")


def test_the_toolkits_png_decoding_gives_our_pixels():
    """The 2017 toolkit decoded matplotlib's PNG with imread.imread_from_blob, scaled it
    with scikit-image's img_as_float, cast to float32 and dropped alpha, then
    caffe.io.Transformer multiplied by 255 (raw_scale). That float32 product is the 8-bit
    pixel again for every pixel of 2.0.2's PNGs, so the toolkit's route and ours (PIL,
    then a cast: refimpl.network.blob) hand Caffe the same numbers; the Transformer's
    other steps against ours: tests/network/test_blob_caffe.py."""
    for drawing in drawings_of_the_cases(oracles.MPL_2017):
        toolkit = drawing.toolkit_array
        assert toolkit is not None, "the 2017 oracle has no imread/scikit-image"
        assert toolkit.dtype == np.float32 and toolkit.shape == (227, 227, 3)
        scaled = toolkit.copy()
        scaled *= 255   # caffe.io.Transformer.preprocess: caffe_in *= raw_scale
        np.testing.assert_array_equal(scaled, drawing.image.astype(np.float32))


# ----------------------------------------------------- the rule, whatever is installed

def test_installed_matplotlib_draws_the_2017_pixels():
    """requirements.txt pins a matplotlib of the 2017 rule (3.10.x): the reference
    renderer draws the default pixels itself."""
    import matplotlib
    assert SpectrogramOptions().pixels == PIXELS_2017
    assert matplotlib_pixel_rule() == PIXELS_2017, matplotlib.__version__


@pytest.mark.parametrize("version, rule", [("2.0.2", PIXELS_2017), ("3.10.9", PIXELS_2017),
                                           ("3.11.0rc1", PIXELS_MPL311),
                                           ("3.11.2", PIXELS_MPL311), ("4.0", PIXELS_MPL311)])
def test_pixel_rule_of_a_version(version, rule):
    assert matplotlib_pixel_rule(version) == rule


def test_another_rules_matplotlib_never_gives_other_pixels(monkeypatch):
    """Under a matplotlib that draws the other rule: the reference refuses, renderer
    'matplotlib' warns in one line and computes the asked-for pixels with the fast
    renderer, options the fast renderer lacks are refused; nothing silently differs."""
    import refimpl.image.render as image_stage
    import refimpl.image.reference as reference
    x, rate = signals.speechlike(16000, 0.7, seed=4), 16000
    want = fastimage.spectrogram_image_fast(x, rate)
    other = lambda version=None: PIXELS_MPL311   # noqa: E731
    monkeypatch.setattr(image_stage, "matplotlib_pixel_rule", other)
    monkeypatch.setattr(reference, "matplotlib_pixel_rule", other)
    with pytest.raises(ImageError, match="draws the 'matplotlib-3.11' pixels"):
        spectrogram_image(x, rate, name="a.wav")
    with pytest.warns(PixelRuleWarning, match="a.wav: matplotlib .* computed by the fast"):
        got = render_image(x, rate, name="a.wav", renderer="matplotlib")
    assert np.array_equal(got, want)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(render_image(x, rate), want)        # auto: fast, no word
    with pytest.raises(ImageError, match="fast renderer does not support"):
        render_image(x, rate, SpectrogramOptions(nfft=512), name="a.wav")


def test_the_311_picture_under_the_installed_matplotlib():
    """The installed matplotlib (3.10.x) draws 2017's pixels; the 3.11 picture asked of it
    comes from the fast renderer, with the one-line warning (its pixels against real
    3.11.2: test_fast_renderer_draws_what_its_matplotlib_draws)."""
    x, rate = signals.speechlike(16000, 0.7, seed=4), 16000
    mpl311 = SpectrogramOptions(pixels=PIXELS_MPL311)
    with pytest.warns(PixelRuleWarning, match="not the 'matplotlib-3.11' ones asked for"):
        got = render_image(x, rate, mpl311, renderer="matplotlib")
    assert np.array_equal(got, fastimage.spectrogram_image_fast(x, rate, mpl311))
    assert not np.array_equal(got, render_image(x, rate))


def test_unknown_pixel_rule_is_refused():
    with pytest.raises(ImageError, match="unknown pixel rule 'agg'"):
        SpectrogramOptions(pixels="agg")


# ------------------------------------------------------------- Agg's integer line

def agg_dda2(first, last, count):
    """agg::dda2_line_interpolator, forward-adjusted, stepped as Agg steps it (C integer
    division and remainder truncate toward zero)."""
    d = last - first
    lft = int(d / count)
    rem = d - lft * count
    mod = rem
    if mod <= 0:
        mod += count
        rem += count
        lft -= 1
    mod -= count
    y, out = first, []
    for _ in range(count):
        out.append(y)
        mod += rem
        y += lft
        if mod > 0:
            mod -= count
            y += 1
    return out


def test_dda2_closed_form_is_aggs_loop():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        count = int(rng.integers(1, 500))
        first, last = (int(v) for v in rng.integers(-200000, 200000, 2))
        if rng.random() < 0.2:
            last = first + count * int(rng.integers(-300, 300))   # exact multiples
        assert fastimage.dda2_positions(first, last, count).tolist() == \
            agg_dda2(first, last, count), (first, last, count)


# ------------------------------------------------------------------ all of EmoDB

@pytest.mark.slow
@pytest.mark.parametrize("pixels", [PIXELS_2017, PIXELS_MPL311])
def test_all_emodb_files_as_their_matplotlib_draws_them(shared_data, pixels):
    from refimpl.audio import read_audio
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    if not files:
        unavailable("emodb", "no EmoDB wav files in shared data")
    assert len(files) == 535
    audio = [read_audio(f) for f in files]
    cases = [(a.name, a.signal, a.rate, SpectrogramOptions()) for a in audio]
    drawings = drawn_by(ORACLE_OF[pixels], cases)
    assert differing(pixels, cases, drawings) == []


def test_cache_key_names_the_pixel_rule():
    """A feature cache entry made with one rule is never read as the other's: the
    extractor's configuration id (the cache key) and the grid's deep spectrum
    configuration both name the rule."""
    from refimpl.features import ExtractorConfig
    old = ExtractorConfig(weights="synthetic:0").config_id()
    new = ExtractorConfig(weights="synthetic:0", pixels=PIXELS_MPL311).config_id()
    assert old != new and "pixels=2017" in old and "pixels=matplotlib-3.11" in new
    assert "pixels='2017'" in repr(SpectrogramOptions())
