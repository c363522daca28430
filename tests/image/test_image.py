"""The image stage against matplotlib driven the way the 2017 toolkit drove it."""
import io

import matplotlib
import numpy as np
import pytest
from PIL import Image

from refimpl.golden import signals
from refimpl.image import (IMAGE_SIZE, ImageError, SpectrogramOptions, check_signal,
                           spectrogram_image)


def toolkit_pyplot_image(x, rate, nfft=256, cmap="viridis", ylim=None):
    """The 2017 DeepSpectrum plotting code path, written procedurally with pyplot as the
    toolkit did (figure -> set_size_inches -> Axes -> specgram -> savefig -> read back),
    plus the interpolation pin. An independent route through matplotlib to compare with."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with matplotlib.rc_context(matplotlib.rcParamsDefault):
        fig = plt.figure(frameon=False)
        fig.set_size_inches(1, 1)
        ax = plt.Axes(fig, [0.0, 0.0, 1.0, 1.0])
        ax.set_axis_off()
        fig.add_axes(ax)
        _, _, _, im = ax.specgram(x, NFFT=nfft, Fs=rate, noverlap=int(nfft / 2), cmap=cmap)
        im.set_interpolation("nearest")
        extent = im.get_extent()
        plt.xlim([extent[0], extent[1]])
        plt.ylim([extent[2], extent[3]])
        if ylim:
            plt.ylim(top=ylim)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=IMAGE_SIZE)
        plt.close(fig)
    return np.asarray(Image.open(buf))[:, :, :3]


@pytest.mark.parametrize("name", ["speechlike_male_16k", "chirp_down_44k", "noise_bursts_16k",
                                  "minimal_257_samples_16k"])
def test_matches_the_toolkit_pyplot_route_pixel_for_pixel(name):
    samples, rate = signals.make_case(name)
    x = signals.pcm16_to_float(samples)
    ours = spectrogram_image(x, rate)
    assert ours.shape == (227, 227, 3) and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, toolkit_pyplot_image(x, rate))


@pytest.mark.parametrize("opts", [SpectrogramOptions(nfft=512), SpectrogramOptions(cmap="magma"),
                                  SpectrogramOptions(fmax=4000.0)])
def test_options_match_the_toolkit_route(opts):
    samples, rate = signals.make_case("speechlike_female_48k")
    x = signals.pcm16_to_float(samples)
    ours = spectrogram_image(x, rate, opts)
    np.testing.assert_array_equal(
        ours, toolkit_pyplot_image(x, rate, nfft=opts.nfft, cmap=opts.cmap, ylim=opts.fmax))
    assert not np.array_equal(ours, spectrogram_image(x, rate))


def test_interpolation_pin_matters():
    """Without the pin, matplotlib's own default resampling changes most pixels: the pin
    is what keeps images equal to those of matplotlib < 3.2 used in 2017."""
    from refimpl.image.reference import spectrogram_figure
    samples, rate = signals.make_case("speechlike_male_16k")
    x = signals.pcm16_to_float(samples)
    fig = spectrogram_figure(x, rate)
    fig.axes[0].images[0].set_interpolation("antialiased")
    buf = io.BytesIO()
    with np.errstate(divide="ignore"):
        fig.savefig(buf, format="png", dpi=IMAGE_SIZE)
    unpinned = np.asarray(Image.open(buf))[:, :, :3]
    pinned = spectrogram_image(x, rate)
    assert np.mean(np.any(unpinned != pinned, axis=-1)) > 0.5


def test_digital_silence_inside_a_signal_is_white_columns():
    samples, rate = signals.make_case("noise_bursts_16k")
    image = spectrogram_image(signals.pcm16_to_float(samples), rate)
    white = np.all(image == 255, axis=-1)
    assert white.any()
    # -inf dB cells are whole STFT frames of zeros: whole pixel columns turn white
    cols = white.all(axis=0)
    assert white.sum() == cols.sum() * image.shape[0]


def test_unusable_signals_are_refused_by_name():
    with pytest.raises(ImageError, match="quiet.wav.*digital silence"):
        spectrogram_image(np.zeros(4000), 16000, name="quiet.wav")
    with pytest.raises(ImageError, match="tiny.wav.*shorter than one FFT frame"):
        spectrogram_image(np.ones(255), 16000, name="tiny.wav")
    with pytest.raises(ImageError, match="NaN"):
        check_signal(np.array([0.1] * 300 + [np.nan]), 256, "nan.wav")
    spectrogram_image(np.linspace(-1, 1, 256), 16000)  # exactly one frame is fine


def test_amplitude_scale_barely_matters():
    """dB images are autoscaled, so a gain is a constant offset and no pixel moves.

    A gain of 1/2 scales every step before the log exactly (a power of two, in float64),
    so the dB values differ from the original's by a constant up to about 4 ulps of
    themselves (log10 and the subtractions of the autoscale); a pixel changes colour only
    if its scaled value lies that close to one of the 256 colour boundaries: expected
    51529 pixels * 256 boundaries * 2 * 4u (u = 2^-53) ~ 1e-8 pixels. So none may."""
    samples, rate = signals.make_case("speechlike_male_16k")
    x = signals.pcm16_to_float(samples)
    a, b = spectrogram_image(x, rate), spectrogram_image(0.5 * x, rate)
    assert int(np.any(a != b, axis=-1).sum()) == 0
