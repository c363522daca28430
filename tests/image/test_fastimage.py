"""The fast renderer against its oracle, matplotlib itself (refimpl.image).

Every test draws the same signal both ways and demands zero differing pixels; nothing
here compares against stored numbers of our own. The slow suite over all EmoDB files is
in test_fastimage_emodb.py.
"""
import argparse
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import import_or_unavailable, unavailable
from refimpl.golden import signals
from refimpl.image import fast as fastimage
from refimpl.image import ImageError, SpectrogramOptions, spectrogram_image

RATES = [8000, 16000, 22050, 44100, 48000]


def differing_pixels(signal, rate, options=SpectrogramOptions()):
    want = spectrogram_image(signal, rate, options)
    got = fastimage.spectrogram_image_fast(signal, rate, options)
    assert got.shape == want.shape == (227, 227, 3) and got.dtype == np.uint8
    return int(np.any(got != want, axis=-1).sum()), want


def tone(rate, seconds, freq, amplitude):
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def noise(n, amplitude, seed):
    x = np.random.default_rng(seed).standard_normal(n)
    return amplitude * x / np.max(np.abs(x))


# --------------------------------------------------------------------- identity: cases

@pytest.mark.parametrize("name", sorted(signals.CASES))
def test_golden_signals(name):
    samples, rate = signals.make_case(name)
    assert differing_pixels(signals.pcm16_to_float(samples), rate)[0] == 0


def test_stored_golden_images():
    """The committed golden images (drawn by matplotlib when golden/ was made)."""
    from refimpl import golden
    from refimpl._util import locations as paths

    if not (paths.golden_dir() / golden.MANIFEST).is_file():
        unavailable("golden", "golden/ has no manifest (refimpl golden make)")
    results = golden.verify("image", fastimage.spectrogram_image_fast)
    assert results and all(r.passed and r.error == 0 for r in results), results


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("amplitude", [1e-6, 1e-3, 1.0])
def test_tones_chirps_noise(rate, amplitude):
    n = int(1.3 * rate)
    for x in (tone(rate, 1.3, rate / 7.3, amplitude),
              amplitude * signals.chirp(rate, 1.3, 50.0, 0.45 * rate, amplitude=1.0),
              noise(n, amplitude, seed=rate)):
        assert differing_pixels(x, rate)[0] == 0


@pytest.mark.parametrize("n", [256, 257, 383, 384, 385, 511, 512, 640, 1000, 4000])
def test_very_short(n):
    """Few frames: each is many screen pixels wide, the boundaries all matter."""
    for rate in (8000, 16000, 44100):
        assert differing_pixels(noise(n, 0.5, seed=n), rate)[0] == 0


def test_long():
    rate = 16000
    x = signals.speechlike(rate, 45.0, seed=7)
    assert differing_pixels(x, rate)[0] == 0


def test_partial_digital_silence_is_white():
    rate = 16000
    x = signals.noise_bursts(rate, 2.0, seed=3, burst=0.2, gap=0.3)
    diff, want = differing_pixels(x, rate)
    assert diff == 0
    white = np.all(want == 255, axis=-1)
    assert 0 < white.sum() < white.size  # the gaps are masked (-inf dB) -> white


def test_all_frames_silent():
    """Energy only after the last full frame: every value masked, an all-white picture."""
    x = np.zeros(1000)
    x[-5:] = 0.5
    diff, want = differing_pixels(x, 16000)
    assert diff == 0 and np.all(want == 255)


@pytest.mark.parametrize("fmax", [8000.0, 4000.0, 1234.5, 300.0, 62.5])
def test_fmax(fmax):
    rate = 16000
    for x in (signals.speechlike(rate, 1.0, seed=1), noise(900, 0.1, seed=2)):
        assert differing_pixels(x, rate, SpectrogramOptions(fmax=fmax))[0] == 0


@pytest.mark.parametrize("cmap", ["magma", "gray", "jet", "coolwarm", "tab10"])
def test_other_colour_maps(cmap):
    rate = 22050
    x = signals.chirp(rate, 1.1, 100.0, 9000.0)
    assert differing_pixels(x, rate, SpectrogramOptions(cmap=cmap))[0] == 0


# ------------------------------------------------------------------ identity: a sweep

# REFIMPL_SWEEP_EXAMPLES=2000 for a longer run; the slow suite has a wider sweep too.
@settings(max_examples=int(os.environ.get("REFIMPL_SWEEP_EXAMPLES", 50)), deadline=None,
          derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(256, 60000),
       rate=st.one_of(st.sampled_from(RATES), st.integers(1000, 96000)),
       log_amplitude=st.floats(-6.0, 0.0),
       kind=st.sampled_from(["noise", "tone", "silence_gap"]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_sweep(n, rate, log_amplitude, kind, seed):
    x = noise(n, 10.0 ** log_amplitude, seed)
    if kind == "tone":
        x = 10.0 ** log_amplitude * np.sin(np.arange(n) * (seed % 1000 + 1) * 1e-3)
    elif kind == "silence_gap":
        x[n // 4: n // 2] = 0.0
    assert differing_pixels(x, rate)[0] == 0


# ------------------------------------------------------------- the paths inside fast

def test_compiled_kernel_is_used_and_agrees_with_numpy():
    """The Cython PSD kernel is active (built) and reproduces numpy's arithmetic."""
    import_or_unavailable("refimpl.image._render", "core", "compiled core not built (make build)")
    assert fastimage._kernel_mode() is not None


def test_numpy_fallback_is_identical(monkeypatch):
    """Without the compiled core (or where it cannot match numpy) the NumPy code path
    draws the same pixels.

    `from refimpl.image import _render` finds the submodule as an attribute of the package once
    anything has imported it, whatever sys.modules says; so both go, and the NumPy paint is
    counted, to prove that it is what drew the images."""
    import refimpl.image
    monkeypatch.setattr(fastimage, "_kernel_mode", lambda: None)
    monkeypatch.setattr(fastimage, "_render_kernel", lambda: None)   # it caches the import
    monkeypatch.setitem(sys.modules, "refimpl.image._render", None)  # import fails ...
    monkeypatch.delattr(refimpl.image, "_render", raising=False)     # ... also for from-imports
    with pytest.raises(ImportError):
        from refimpl.image import _render  # noqa: F401
    calls = []
    real_paint = fastimage._paint_numpy
    monkeypatch.setattr(fastimage, "_paint_numpy",
                        lambda *a: calls.append(a[0].shape) or real_paint(*a))
    cases = ((signals.noise_bursts(16000, 1.0, seed=4), 16000), (noise(700, 1e-4, seed=5), 44100))
    for x, rate in cases:
        assert differing_pixels(x, rate)[0] == 0
    assert len(calls) == len(cases)


# ---------------------------------------------------------------- dispatch and errors

def test_render_image_dispatch(monkeypatch):
    import refimpl.image.render as image_stage
    x, rate = signals.speechlike(16000, 0.5, seed=2), 16000
    calls = []
    real_fast = fastimage.spectrogram_image_fast
    monkeypatch.setattr(image_stage, "spectrogram_image_fast",
                        lambda *a, **k: calls.append("fast") or real_fast(*a, **k))
    render_image = image_stage.render_image
    ref = spectrogram_image(x, rate)
    assert np.array_equal(render_image(x, rate), ref) and calls == ["fast"]
    assert np.array_equal(render_image(x, rate, renderer="matplotlib"), ref)
    assert calls == ["fast"]
    # unsupported options: auto falls back to matplotlib, fast refuses
    wide = SpectrogramOptions(nfft=512)
    assert not fastimage.fast_path_supported(rate, wide)
    assert np.array_equal(render_image(x, rate, wide),
                          spectrogram_image(x, rate, wide))
    assert calls == ["fast"]
    with pytest.raises(ImageError, match="does not support"):
        render_image(x, rate, wide, renderer="fast")
    with pytest.raises(ValueError, match="unknown renderer"):
        render_image(x, rate, renderer="agg")


def test_supported_options():
    ok = fastimage.fast_path_supported
    assert ok(16000) and ok(16000, SpectrogramOptions(fmax=8000.0))
    assert not ok(16000, SpectrogramOptions(fmax=8000.5))  # axis beyond the data
    assert not ok(16000, SpectrogramOptions(fmax=0.0))
    assert not ok(16000, SpectrogramOptions(nfft=128))
    assert not ok(16000, SpectrogramOptions(cmap="no_such_map"))


@pytest.mark.parametrize("signal, match", [
    (np.ones(255), "shorter than one FFT frame"),
    (np.zeros(1000), "digital silence"),
    (np.array([0.1] * 300 + [np.nan]), "NaN"),
    (np.ones((300, 2)), "mono"),
])
def test_refuses_what_matplotlib_path_refuses(signal, match):
    for render in (spectrogram_image, fastimage.spectrogram_image_fast):
        with pytest.raises(ImageError, match=match) as e:
            render(signal, 16000, name="bad.wav")
        assert "bad.wav" in str(e.value)


def test_renderer_option():
    from refimpl.cli.options import add_image_options
    parser = argparse.ArgumentParser()
    add_image_options(parser)
    assert parser.parse_args([]).renderer == "auto"
    assert parser.parse_args(["--renderer", "fast"]).renderer == "fast"
    with pytest.raises(SystemExit):
        parser.parse_args(["--renderer", "agg"])


# ------------------------------------------------------- the colour step on its own

@pytest.mark.parametrize("cmap", ["viridis", "tab10"])
@pytest.mark.parametrize("flat", [False, True])
def test_paint_matches_normalize_and_colormap(cmap, flat):
    """_render.paint against matplotlib's own Normalize + Colormap(bytes=True), on values
    placed one ulp either side of every colour-table boundary, with masked values."""
    render = import_or_unavailable("refimpl.image._render", "core",
                                   "compiled core not built (make build)")
    import matplotlib
    from matplotlib.colors import Normalize

    colormap = matplotlib.colormaps[cmap]
    vmin, vmax = -123.456789, 17.25
    edges = vmin + (vmax - vmin) * np.arange(colormap.N + 1) / colormap.N
    values = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    values = np.clip(values, vmin, vmax)
    rng = np.random.default_rng(0)
    z = rng.choice(values, size=(129, 227))
    z[0, 0], z[-1, -1] = vmin, vmax
    z[rng.random(z.shape) < 0.05] = -np.inf
    if flat:
        z[np.isfinite(z)] = 3.5
    lo, hi, any_finite = render.finite_range(z)
    assert any_finite
    want = colormap(Normalize()(np.ma.masked_invalid(z)), bytes=True)[..., :3]
    want[~np.isfinite(z)] = 255
    lut = (colormap._lut[:colormap.N, :3] * 255).astype(np.uint8)
    columns = np.arange(227, dtype=np.intp)
    rows = (np.arange(227) * 129 // 227).astype(np.intp)
    out = np.empty((227, 227, 3), np.uint8)
    render.paint(z, columns, rows, rows, lut, lo, hi, out)
    assert np.array_equal(out[::-1], want[rows])
