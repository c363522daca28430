"""The spectrogram picture's options and the signals that have no picture.

SpectrogramOptions are the DeepSpectrum toolkit's plotting options (defaults: the paper's).
check_signal refuses, with an ImageError naming the file, the signals every renderer
refuses: not mono, shorter than one FFT frame, non-finite samples, digital silence.
"""
from dataclasses import dataclass

import numpy as np

from refimpl.errors import ImageError

__all__ = ["IMAGE_SIZE", "SpectrogramOptions", "DEFAULT_OPTIONS", "check_signal", "ImageError"]

IMAGE_SIZE = 227  # pixels per side: the figure is 1 inch at this dpi (AlexNet's input)


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
