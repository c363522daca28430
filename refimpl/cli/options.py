"""Options that several commands share: how the spectrogram picture is drawn, and which
part of the audio is used."""
import argparse

from refimpl.audio import as_seconds
from refimpl.features.config import check_image_options
from refimpl.image import DEFAULT_OPTIONS, PIXEL_RULES, RENDERERS, SpectrogramOptions


def whole_number(least):
    """argparse type: a whole number >= `least` (a seed: 0, a count of workers: 1)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is below {least}")
        return value
    parse.__name__ = f"whole number >= {least}"
    return parse


def seconds(text):
    """argparse type: a non-negative number of seconds, kept as the decimal typed."""
    return as_seconds(text)


def add_image_options(p):
    p.add_argument("--nfft", type=int, default=DEFAULT_OPTIONS.nfft, help="FFT size (256)")
    p.add_argument("--cmap", default=DEFAULT_OPTIONS.cmap, help="matplotlib colour map (viridis)")
    p.add_argument("--fmax", type=float, default=None,
                   help="top of the frequency axis in Hz (toolkit's -ylim); default Fs/2")
    p.add_argument("--trim-zeros", action="store_true",
                   help="drop exact-zero samples at both ends first (toolkit's trim)")
    p.add_argument(
        "--renderer", choices=RENDERERS, default="auto",
        help="how to draw the spectrogram: 'matplotlib' (the reference), 'fast' "
             "(the same pixels computed directly, much faster; NFFT 256 only) or "
             "'auto': fast where it is proven identical, matplotlib otherwise (default)")
    p.add_argument(
        "--pixels", choices=PIXEL_RULES, default=DEFAULT_OPTIONS.pixels,
        help="whose resampling picks each pixel: '2017' (matplotlib 2.0 to 3.10, what the "
             "2017 toolkit drew: the paper's pictures; default) or 'matplotlib-3.11' "
             "(matplotlib 3.11 and later: one column differs in most pictures)")


def add_span_options(p):
    p.add_argument("--start", type=seconds, metavar="S",
                   help="use the audio from S seconds on (toolkit's -start)")
    p.add_argument("--end", type=seconds, metavar="S",
                   help="use the audio up to S seconds (toolkit's -end; 0: to the end)")


def image_options(args, rate=None, name=None):
    """The picture's options, refused in one line where no spectrogram can have them
    (with `rate`, fmax is checked against that file's Fs/2 too)."""
    check_image_options(args.nfft, args.cmap, args.fmax, rate, name)
    return SpectrogramOptions(nfft=args.nfft, cmap=args.cmap, fmax=args.fmax,
                              pixels=args.pixels)
