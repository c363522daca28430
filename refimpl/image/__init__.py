"""Stage 2 — image: the spectrogram picture that the network sees (paper section 2.1).

    options    SpectrogramOptions (the toolkit's plotting options and the pixel rule)
               and check_signal
    reference  the recipe drawn by matplotlib itself: THE reference
    fast       the same pixels computed directly (much faster: the benchmark
               tests/benchmarks/test_bench_image.py), proven identical, under either
               pixel rule whatever matplotlib is installed
    oracles    real matplotlib 2.0.2 (2017) and 3.11.2 in their own environments, for tests
               and golden files
    render     render_image, the one entry point: it picks the renderer
"""
from refimpl.image.fast import fast_path_supported, spectrogram_image_fast
from refimpl.image.options import (DEFAULT_OPTIONS, IMAGE_SIZE, PIXEL_RULES, PIXELS_2017,
                                   PIXELS_MPL311, ImageError, SpectrogramOptions, check_signal,
                                   matplotlib_pixel_rule)
from refimpl.image.reference import decode_png, png_bytes, save_png, spectrogram_image
from refimpl.image.render import RENDERERS, render_image

__all__ = ["render_image", "RENDERERS", "SpectrogramOptions", "DEFAULT_OPTIONS", "IMAGE_SIZE",
           "ImageError", "check_signal", "spectrogram_image", "spectrogram_image_fast",
           "fast_path_supported", "png_bytes", "decode_png", "save_png", "PIXEL_RULES",
           "PIXELS_2017", "PIXELS_MPL311", "matplotlib_pixel_rule"]
