"""Options that several commands share: how the spectrogram picture is drawn."""
from refimpl.image import DEFAULT_OPTIONS, RENDERERS, SpectrogramOptions


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
             "(the same pixels computed directly, about 40x faster; NFFT 256 only) or "
             "'auto': fast where it is proven identical, matplotlib otherwise (default)")


def image_options(args):
    return SpectrogramOptions(nfft=args.nfft, cmap=args.cmap, fmax=args.fmax)
