# cython: language_level=3
"""Hot loops of refimpl.image.fast (the matplotlib-identical spectrogram renderer).

Two kernels, each a fused loop over what numpy would do in several passes:

  psd_columns  the one-sided PSD from numpy's FFT rows, written transposed into mlab's
               (freqs, frames) layout, with mlab's operations: conj(X) * X (whose real
               part numpy computes with or without a fused multiply-add, depending on
               its SIMD loop: the caller says which after checking numpy), the doubling
               of the inner bins, * (1 / Fs) and * (1 / sum(window**2)) (numpy's complex
               division by a real number multiplies by its reciprocal);
  paint        autoscale, normalise, colour-table lookup and nearest-neighbour gather
               into the 227 x 227 x 3 picture, given Agg's sample indices.

Built with -ffp-contract=off (setup.py), so the C compiler fuses nothing on its own.
"""
import numpy as np

cimport numpy as cnp
from libc.math cimport fma, isfinite
from libc.string cimport memcpy

cnp.import_array()


def windowed_frames(const double[::1] x, const double[::1] window, Py_ssize_t hop,
                    double complex[:, ::1] out):
    """out[j, i] = x[j * hop + i] * window[i] + 0j, mlab's windowed frames (one product
    each, as numpy's `frames * window`)."""
    cdef Py_ssize_t n_frames = out.shape[0], nfft = out.shape[1], i, j
    if window.shape[0] != nfft or hop <= 0 or (n_frames - 1) * hop + nfft > x.shape[0]:
        raise ValueError("windowed_frames: shapes do not match")
    with nogil:
        for j in range(n_frames):
            for i in range(nfft):
                out[j, i] = x[j * hop + i] * window[i]
    return out


def psd_columns(const double complex[:, ::1] spectrum, double complex[:, ::1] out,
                double rate, double window_power, bint use_fma):
    """out[k, j].real = PSD of frame j at bin k (k < out rows); out.imag = 0."""
    cdef Py_ssize_t n_frames = spectrum.shape[0]
    cdef Py_ssize_t n_freqs = out.shape[0]
    cdef Py_ssize_t j, k
    cdef double a, b, p
    cdef double inv_rate = 1.0 / (rate + 0.0 * 0.0)
    cdef double inv_power = 1.0 / (window_power + 0.0 * 0.0)
    if out.shape[1] != n_frames or spectrum.shape[1] < n_freqs:
        raise ValueError("psd_columns: shapes do not match")
    with nogil:
        for j in range(n_frames):
            for k in range(n_freqs):
                a = spectrum[j, k].real
                b = spectrum[j, k].imag
                if use_fma:
                    p = fma(a, a, b * b)
                else:
                    p = a * a + b * b
                if 0 < k < n_freqs - 1:
                    p = p * 2.0
                p = p * inv_rate
                p = p * inv_power
                out[k, j] = p
    return out


def finite_range(const double[:, ::1] z):
    """(vmin, vmax, any finite) over the finite values of z."""
    cdef Py_ssize_t i, n = z.shape[0] * z.shape[1]
    cdef const double *p = &z[0, 0]
    cdef double v, lo = 0.0, hi = 0.0
    cdef bint found = False
    with nogil:
        for i in range(n):
            v = p[i]
            if isfinite(v):
                if not found:
                    lo = v
                    hi = v
                    found = True
                elif v < lo:
                    lo = v
                elif v > hi:
                    hi = v
    return lo, hi, found


cdef inline void put(unsigned char *px, double v, double vmin, double span, double dn,
                     Py_ssize_t n, bint flat, const unsigned char *lut) noexcept nogil:
    """One screen pixel: matplotlib's Normalize then Colormap (see paint)."""
    cdef double s
    cdef Py_ssize_t idx
    if not isfinite(v):
        px[0] = 255
        px[1] = 255
        px[2] = 255
        return
    if flat:
        idx = 0
    else:
        s = v - vmin
        s = s / span
        s = s * dn
        if s == dn:
            s = dn - 1
        idx = <Py_ssize_t>s
        if idx < 0:
            idx = 0
        elif idx >= n:
            idx = n - 1
    px[0] = lut[3 * idx]
    px[1] = lut[3 * idx + 1]
    px[2] = lut[3 * idx + 2]


def paint(const double[:, ::1] z, const Py_ssize_t[::1] columns,
          const Py_ssize_t[::1] rows_main, const Py_ssize_t[::1] rows_last,
          const unsigned char[:, ::1] lut, double vmin, double vmax,
          unsigned char[:, :, ::1] out):
    """out[size-1-y, x] = colour of z[rows(y, x), columns[x]]; rows_last for the last x.

    Colour: matplotlib's Normalize then Colormap: ((v - vmin) / (vmax - vmin)) * N,
    N -> N - 1, truncated; non-finite (masked) -> white, Agg's transparent canvas."""
    cdef Py_ssize_t size = out.shape[0]
    cdef Py_ssize_t n = lut.shape[0], width = z.shape[1]
    cdef Py_ssize_t x, y
    cdef double span = vmax - vmin, dn = <double>n
    cdef bint flat = vmin == vmax
    cdef const double *zrow
    cdef const double *zbase = &z[0, 0]
    cdef const unsigned char *table = &lut[0, 0]
    cdef unsigned char *line
    if out.shape[1] != size or out.shape[2] != 3 or lut.shape[1] != 3 \
            or columns.shape[0] != size or rows_main.shape[0] != size \
            or rows_last.shape[0] != size:
        raise ValueError("paint: shapes do not match")
    for x in range(size):
        if not (0 <= columns[x] < width):
            raise ValueError("paint: column index out of range")
    for y in range(size):
        if not (0 <= rows_main[y] < z.shape[0] and 0 <= rows_last[y] < z.shape[0]):
            raise ValueError("paint: row index out of range")
    with nogil:
        for y in range(size):
            line = &out[size - 1 - y, 0, 0]
            if y > 0 and rows_main[y] == rows_main[y - 1]:
                # the same data row as the screen row below: same colours (the data
                # has fewer rows than the screen, so this saves most divisions)
                memcpy(line, line + 3 * size, 3 * (size - 1))
            else:
                zrow = zbase + rows_main[y] * width
                for x in range(size - 1):
                    put(line + 3 * x, zrow[columns[x]], vmin, span, dn, n, flat, table)
            put(line + 3 * (size - 1), zbase[rows_last[y] * width + columns[size - 1]],
                vmin, span, dn, n, flat, table)
    return out
