"""Stage 2 — image: the spectrogram picture that the network sees (paper section 2.1).

    options    SpectrogramOptions (the toolkit's plotting options) and check_signal
    reference  the 2017 recipe drawn by matplotlib itself: THE reference
    fast       the same pixels computed directly (about 40x faster), proven identical

render_image is the one entry point: it picks the renderer.
"""
from refimpl.image.fast import fast_path_supported, spectrogram_image_fast
from refimpl.image.options import (DEFAULT_OPTIONS, IMAGE_SIZE, ImageError, SpectrogramOptions,
                                   check_signal)
from refimpl.image.reference import decode_png, png_bytes, save_png, spectrogram_image

__all__ = ["render_image", "RENDERERS", "SpectrogramOptions", "DEFAULT_OPTIONS", "IMAGE_SIZE",
           "ImageError", "check_signal", "spectrogram_image", "spectrogram_image_fast",
           "fast_path_supported", "png_bytes", "decode_png", "save_png"]

RENDERERS = ("auto", "fast", "matplotlib")


def render_image(signal, rate, options=DEFAULT_OPTIONS, name="", renderer="auto"):
    """Signal -> 227 x 227 x 3 uint8 RGB spectrogram image, by the chosen renderer.

    renderer: "matplotlib" draws the reference picture; "fast" computes the same pixels
    directly and raises ImageError for options it does not support; "auto" (the default)
    is "fast" where fast_path_supported(rate, options), matplotlib otherwise. Both refuse
    the same signals (check_signal) with the same ImageError."""
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}; choose from {', '.join(RENDERERS)}")
    if renderer == "matplotlib" or (renderer == "auto"
                                    and not fast_path_supported(rate, options)):
        return spectrogram_image(signal, rate, options, name=name)
    return spectrogram_image_fast(signal, rate, options, name=name)
