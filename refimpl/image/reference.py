"""Stage 2 — image: the spectrogram picture that the network sees (paper section 2.1).

This is the 2017 DeepSpectrum recipe, drawn by matplotlib itself, which is the reference
every faster renderer is checked against:

  * a 1 x 1 inch figure without frame, one Axes filling it ([0, 0, 1, 1]), axis off;
  * Axes.specgram with NFFT=256, noverlap=NFFT/2, Fs = the file's sample rate and
    matplotlib's defaults otherwise: Hann window, PSD scaled by frequency, one-sided,
    10*log10, mean detrending off (mlab's detrend_none), colour map viridis;
  * the image's interpolation pinned to 'nearest' — matplotlib 3.2 changed imshow's default
    to 'antialiased', which alters more than 90 % of the pixels of this tiny picture;
  * x and y limits equal to the image extent (the optional fmax lowers the top);
  * saved as PNG at dpi=227, read back as 227 x 227 RGB, alpha dropped.

Digital silence: 10*log10(0) = -inf. matplotlib masks non-finite values, and with the
frameless figure they are drawn transparent; dropping alpha turns them white
(255, 255, 255). A signal that is exactly zero everywhere would be one white square, and a
signal shorter than NFFT has no complete frame: both are refused with an ImageError
naming the file, since neither is an image of speech.

Drawing happens under matplotlib's default style, so a user's matplotlibrc cannot change
the pixels.
"""
import io
from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 227  # pixels per side: the figure is 1 inch at this dpi (AlexNet's input)


class ImageError(ValueError):
    """A signal that cannot make a spectrogram image. Names the file."""


@dataclass(frozen=True)
class SpectrogramOptions:
    """The toolkit's plotting options. Defaults are the paper's."""
    nfft: int = 256
    cmap: str = "viridis"
    fmax: float | None = None  # top of the frequency axis in Hz (toolkit's -ylim); None = Fs/2

    @property
    def noverlap(self):
        return self.nfft // 2


DEFAULT_OPTIONS = SpectrogramOptions()


def check_signal(signal, nfft, name=""):
    """Refuse signals that have no spectrogram image (see module docstring)."""
    label = name or "<signal>"
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ImageError(f"{label}: expected a mono signal, got shape {signal.shape}")
    if len(signal) < nfft:
        raise ImageError(f"{label}: {len(signal)} samples is shorter than one FFT frame "
                         f"(NFFT={nfft})")
    if not np.all(np.isfinite(signal)):
        raise ImageError(f"{label}: signal contains NaN or infinite samples")
    if not np.any(signal):
        raise ImageError(f"{label}: signal is digital silence (all samples are exactly zero)")


def spectrogram_figure(signal, rate, options=DEFAULT_OPTIONS):
    """The matplotlib Figure of the recipe, before saving (for inspection and tests)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1), frameon=False)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    _, _, _, im = ax.specgram(signal, NFFT=options.nfft, Fs=rate,
                              noverlap=options.noverlap, cmap=options.cmap)
    im.set_interpolation("nearest")
    left, right, bottom, top = im.get_extent()
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top if options.fmax is None else options.fmax)
    return fig


def png_bytes(signal, rate, options=DEFAULT_OPTIONS):
    """The PNG file exactly as the recipe saves it."""
    import warnings

    import matplotlib.style

    with matplotlib.style.context("default"), np.errstate(divide="ignore"), \
            warnings.catch_warnings():
        # a signal of exactly NFFT samples is one frame; matplotlib warns about it
        warnings.filterwarnings("ignore", "Only one segment is calculated")
        fig = spectrogram_figure(signal, rate, options)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=IMAGE_SIZE)
    return buf.getvalue()


def decode_png(data):
    """PNG bytes -> H x W x 3 uint8 RGB (alpha dropped, as the toolkit did)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        rgba = np.asarray(im.convert("RGBA"))
    return np.ascontiguousarray(rgba[:, :, :3])


def spectrogram_image(signal, rate, options=DEFAULT_OPTIONS, name=""):
    """Signal -> 227 x 227 x 3 uint8 RGB spectrogram image, through matplotlib."""
    check_signal(signal, options.nfft, name)
    image = decode_png(png_bytes(signal, rate, options))
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ImageError(f"{name or '<signal>'}: matplotlib drew {image.shape}, expected "
                         f"{(IMAGE_SIZE, IMAGE_SIZE, 3)}")
    return image


def save_png(image, path):
    """Write an RGB uint8 image as PNG, atomically."""
    from PIL import Image

    from refimpl.fileio import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB").save(tmp, format="PNG")
