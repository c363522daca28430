"""Stage 2 — image, the reference: the spectrogram picture that the network sees (paper
section 2.1), drawn by matplotlib itself as the 2017 DeepSpectrum recipe did. Every faster
renderer is checked against it. The installed matplotlib draws by its own version's pixel
rule (refimpl.image.options: 2.0 to 3.10 draw "2017", the paper's); asked for the other
rule, spectrogram_image refuses. The recipe:

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
import warnings

import numpy as np
from PIL import Image

from refimpl._util.atomic import atomic_path
from refimpl.image.options import (DEFAULT_OPTIONS, IMAGE_SIZE, ImageError, check_signal,
                                   matplotlib_pixel_rule)

__all__ = ["spectrogram_figure", "png_bytes", "decode_png", "spectrogram_image", "save_png"]


def spectrogram_figure(signal, rate, options=DEFAULT_OPTIONS):
    """The matplotlib Figure of the recipe, before saving (for inspection and tests)."""
    # matplotlib is slow to import: only the drawing paths import it
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
    import matplotlib.style  # slow to import: only the drawing paths import it

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
    with Image.open(io.BytesIO(data)) as im:
        rgba = np.asarray(im.convert("RGBA"))
    return np.ascontiguousarray(rgba[:, :, :3])


def spectrogram_image(signal, rate, options=DEFAULT_OPTIONS, name=""):
    """Signal -> 227 x 227 x 3 uint8 RGB spectrogram image, through matplotlib.

    matplotlib draws with its own version's pixel rule (matplotlib_pixel_rule); asked
    for the other one, this raises ImageError rather than return other pixels
    (render_image falls back to the fast renderer instead)."""
    check_signal(signal, options.nfft, name)
    drawn_by = matplotlib_pixel_rule()
    if options.pixels != drawn_by:
        import matplotlib  # slow to import: only the drawing paths import it
        raise ImageError(f"{name or '<signal>'}: matplotlib {matplotlib.__version__} draws "
                         f"the {drawn_by!r} pixels, not the {options.pixels!r} ones asked for")
    image = decode_png(png_bytes(signal, rate, options))
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ImageError(f"{name or '<signal>'}: matplotlib drew {image.shape}, expected "
                         f"{(IMAGE_SIZE, IMAGE_SIZE, 3)}")
    return image


def save_png(image, path):
    """Write an RGB uint8 image as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB").save(tmp, format="PNG")
