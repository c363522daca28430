"""Sample-rate conversion for the conditions of corpora that are not at 16 kHz: the noise
recordings (16 kHz) go to the corpus's rate, and the enhancer (16 kHz) sees its input
converted down and gives its output back at the corpus's rate.

scipy's polyphase resampler (resample_poly, its default Kaiser-windowed FIR) at the exact
ratio of the two rates, reduced to lowest terms (44.1 kHz <- 16 kHz: up 441, down 160).
"""
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

__all__ = ["resample"]


def resample(signal, from_hz, to_hz, length=None):
    """`signal` (1-D) converted from `from_hz` to `to_hz`, unchanged when they are equal.

    The result has ceil(len * to / from) samples; `length` cuts or zero-pads it to an exact
    length (the enhancer's output back at the corpus rate must line up with its input).
    """
    signal = np.asarray(signal, dtype=np.float64)
    if int(from_hz) != int(to_hz):
        ratio = Fraction(int(to_hz), int(from_hz))
        signal = resample_poly(signal, ratio.numerator, ratio.denominator)
    if length is not None and len(signal) != length:
        signal = np.pad(signal[:length], (0, max(0, length - len(signal))))
    return signal
