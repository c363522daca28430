"""Stage 2 — image: the spectrogram picture that the network sees (paper section 2.1).

    options    SpectrogramOptions (the toolkit's plotting options and the pixel rule)
               and check_signal
    reference  the recipe drawn by matplotlib itself: THE reference
    fast       the same pixels computed directly (about 40x faster), proven identical,
               under either pixel rule whatever matplotlib is installed
    oracles    real matplotlib 2.0.2 (2017) and 3.11.2 in their own environments, for tests
               and golden files

render_image is the one entry point: it picks the renderer.
"""
import warnings

from refimpl.errors import PixelRuleWarning
from refimpl.image.fast import fast_path_supported, spectrogram_image_fast
from refimpl.image.options import (DEFAULT_OPTIONS, IMAGE_SIZE, PIXEL_RULES, PIXELS_2017,
                                   PIXELS_MPL311, ImageError, SpectrogramOptions, check_signal,
                                   matplotlib_pixel_rule)
from refimpl.image.reference import decode_png, png_bytes, save_png, spectrogram_image

__all__ = ["render_image", "RENDERERS", "SpectrogramOptions", "DEFAULT_OPTIONS", "IMAGE_SIZE",
           "ImageError", "check_signal", "spectrogram_image", "spectrogram_image_fast",
           "fast_path_supported", "png_bytes", "decode_png", "save_png", "PIXEL_RULES",
           "PIXELS_2017", "PIXELS_MPL311", "matplotlib_pixel_rule"]

RENDERERS = ("auto", "fast", "matplotlib")


def render_image(signal, rate, options=DEFAULT_OPTIONS, name="", renderer="auto"):
    """Signal -> 227 x 227 x 3 uint8 RGB spectrogram image, by the chosen renderer.

    renderer: "fast" computes the pixels directly and raises ImageError for options it
    does not support (fast_path_supported); "matplotlib" draws them with the installed
    matplotlib; "auto" (the default) is "fast" where supported, matplotlib otherwise.

    options.pixels is honoured whatever matplotlib is installed: where the installed one
    draws with another rule (3.11 and later draw "matplotlib-3.11", 2.0 to 3.10 "2017"),
    "matplotlib" warns in one line (PixelRuleWarning) and computes the picture with the
    fast renderer, and where that does not support the options either, ImageError says
    so. Every renderer refuses the same signals (check_signal) with the same ImageError."""
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
