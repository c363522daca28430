"""render_image: the one entry point of the image stage, which picks the renderer (the
fast one where it supports the options, matplotlib otherwise) and keeps the pixel rule
asked for whatever matplotlib is installed."""
import warnings

import numpy as np

from refimpl.errors import PixelRuleWarning
from refimpl.image.fast import fast_path_supported, spectrogram_image_fast
from refimpl.image.options import (DEFAULT_OPTIONS, ImageError, SpectrogramOptions,
                                   matplotlib_pixel_rule)
from refimpl.image.reference import spectrogram_image

__all__ = ["render_image", "RENDERERS"]

RENDERERS = ("auto", "fast", "matplotlib")


def render_image(signal: np.ndarray, rate: int,
                 options: SpectrogramOptions = DEFAULT_OPTIONS, name: str = "",
                 renderer: str = "auto") -> np.ndarray:
    """Signal -> 227 x 227 x 3 uint8 RGB spectrogram image, by the chosen renderer.

    Parameters
    ----------
    signal : numpy.ndarray
        Mono samples, float (1-D).
    rate : int
        The sampling rate in Hz.
    options : SpectrogramOptions
        The picture (the paper's by default: nfft 256, viridis, up to Fs/2, the "2017"
        pixels).
    name : str
        Names the signal in error messages (a file's name).
    renderer : str
        "fast" computes the pixels directly and raises ImageError for options it does not
        support (fast_path_supported); "matplotlib" draws them with the installed
        matplotlib; "auto" (the default) is "fast" where supported, matplotlib otherwise.

    Returns
    -------
    numpy.ndarray
        (227, 227, 3) uint8 RGB.

    Raises
    ------
    ImageError
        A signal no spectrogram can be drawn of (every renderer refuses the same ones,
        check_signal), or a pixel rule no available renderer draws.

    Notes
    -----
    options.pixels is honoured whatever matplotlib is installed: where the installed one
    draws with another rule (3.11 and later draw "matplotlib-3.11", 2.0 to 3.10 "2017"),
    "matplotlib" warns in one line (PixelRuleWarning) and computes the picture with the
    fast renderer, and where that does not support the options either, ImageError says
    so.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> render_image(0.5 * np.sin(2 * np.pi * 440 * t), 16000).shape
    (227, 227, 3)
    """
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}; choose from {', '.join(RENDERERS)}")
    fast_ok = fast_path_supported(rate, options)
    if renderer == "fast" or (renderer == "auto" and fast_ok):
        return spectrogram_image_fast(signal, rate, options, name=name)
    drawn_by = matplotlib_pixel_rule()
    if options.pixels == drawn_by:
        return spectrogram_image(signal, rate, options, name=name)
    if not fast_ok:
        raise ImageError(_other_rule(name, options.pixels, drawn_by)
                         + f"; the fast renderer does not support {options} at {rate} Hz")
    if renderer == "matplotlib":
        warnings.warn(_other_rule(name, options.pixels, drawn_by)
                      + "; computed by the fast renderer instead", PixelRuleWarning,
                      stacklevel=2)
    return spectrogram_image_fast(signal, rate, options, name=name)


def _other_rule(name, wanted, drawn_by):
    import matplotlib  # slow to import: only where a picture or colour map needs it
    return (f"{name or '<signal>'}: matplotlib {matplotlib.__version__} draws the "
            f"{drawn_by!r} pixels, not the {wanted!r} ones asked for")
