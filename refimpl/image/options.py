"""The spectrogram picture's options and the signals that have no picture.

SpectrogramOptions are the DeepSpectrum toolkit's plotting options (defaults: the paper's)
and the pixel rule, which says whose nearest-neighbour resampling picks the data pixel
each screen pixel shows:

  "2017"             matplotlib 2.0.0 to 3.10.x (Agg's span_interpolator_linear, no
                     flips): the pixels the DeepSpectrum toolkit drew in 2017, and so the
                     paper's. The default.
  "matplotlib-3.11"  matplotlib 3.11 and later, whose resampling changed (_resample flips
                     data and transform for 'nearest'; a floating-point interpolator that
                     truncates replaced Agg's 1/256-rounding one): one pixel column
                     differs in about two thirds of EmoDB's pictures.
check_signal refuses, with an ImageError naming the file, the signals every renderer
refuses: not mono, shorter than one FFT frame, non-finite samples, digital silence.
"""
from dataclasses import dataclass

import numpy as np

from refimpl.errors import ImageError

__all__ = ["IMAGE_SIZE", "SpectrogramOptions", "DEFAULT_OPTIONS", "check_signal", "ImageError",
           "PIXELS_2017", "PIXELS_MPL311", "PIXEL_RULES", "matplotlib_pixel_rule"]

IMAGE_SIZE = 227  # pixels per side: the figure is 1 inch at this dpi (AlexNet's input)
PIXELS_2017 = "2017"
PIXELS_MPL311 = "matplotlib-3.11"
PIXEL_RULES = (PIXELS_2017, PIXELS_MPL311)


@dataclass(frozen=True)
class SpectrogramOptions:
    """The toolkit's plotting options. Defaults are the paper's.

    Parameters
    ----------
    nfft : int
        Samples per FFT frame (matplotlib's NFFT; the frames overlap by `noverlap`).
    cmap : str
        A matplotlib colour map.
    fmax : float, optional
        Top of the frequency axis in Hz (the toolkit's -ylim); None: Fs/2.
    pixels : str
        Whose resampling rule: "2017" (the paper's) or "matplotlib-3.11"; see the module
        docstring.
    """
    nfft: int = 256
    cmap: str = "viridis"
    fmax: float | None = None  # top of the frequency axis in Hz (toolkit's -ylim); None = Fs/2
    pixels: str = PIXELS_2017  # whose resampling rule: see the module docstring

    def __post_init__(self):
        if self.pixels not in PIXEL_RULES:
            raise ImageError(f"unknown pixel rule {self.pixels!r}; choose from "
                             f"{', '.join(PIXEL_RULES)}")

    @property
    def noverlap(self):
        return self.nfft // 2


DEFAULT_OPTIONS = SpectrogramOptions()


def check_signal(signal, nfft, name=""):
    """Refuse signals that have no spectrogram image: a signal that is exactly zero
    everywhere would be one white square, and one shorter than NFFT has no complete frame."""
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


def matplotlib_pixel_rule(version=None):
    """The pixel rule a matplotlib version draws with (default: the installed one's)."""
    from packaging.version import Version   # a dependency of matplotlib itself
    if version is None:
        import matplotlib
        version = matplotlib.__version__
    return PIXELS_MPL311 if Version(version).release[:2] >= (3, 11) else PIXELS_2017
