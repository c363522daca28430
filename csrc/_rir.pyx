"""Compiled core of refimpl.conditions.rir: pyroomacoustics' shoebox room impulse
response, the same bits, several times faster (see _rir_kernels.h).

- images(order, sq, west, east, c, delay): arrival times and amplitudes of every image.
- rir_builder(rir, times, alphas, fs, fdl, lut_gran): libroom.rir_builder on one thread.

refimpl.conditions.rir.shoebox_rir puts them together; tests/conditions/test_rir.py compares
both with pyroomacoustics (libroom.rir_builder on random inputs, compute_rir on rooms).
"""
import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef extern from "_rir_kernels.h" nogil:
    Py_ssize_t rir_images(int order, const double* sqx, const double* sqy,
                          const double* sqz, const float* wx, const float* ex,
                          const float* wy, const float* ey, const float* wz,
                          const float* ez, double c, double delay, float* times,
                          float* alphas, double* t_max)
    int rir_build(float* rir, Py_ssize_t rir_len, const float* times,
                  const float* alphas, Py_ssize_t n, int fs, int fdl, int lut_gran,
                  float* acc, float* table)


def images(int order, sq, west, east, double c, double delay):
    """sq: three float64 tables, west/east: three float32 tables (2*order+1 each, indexed
    by reflection index + order). Returns (times float32, alphas float32, t_max float64)."""
    if order < 0:
        raise ValueError("order must be >= 0")
    cdef Py_ssize_t width = 2 * order + 1
    tables_d = [np.ascontiguousarray(t, dtype=np.float64) for t in sq]
    tables_f = [np.ascontiguousarray(t, dtype=np.float32) for t in (*west, *east)]
    if len(tables_d) != 3 or len(tables_f) != 6 or any(
            t.shape != (width,) for t in tables_d + tables_f):
        raise ValueError(f"need three tables of {width} values each for sq, west and east")
    cdef Py_ssize_t n = (2 * order + 1) * (2 * order * order + 2 * order + 3) // 3
    cdef cnp.ndarray[cnp.float32_t, ndim=1] times = np.empty(n, dtype=np.float32)
    cdef cnp.ndarray[cnp.float32_t, ndim=1] alphas = np.empty(n, dtype=np.float32)
    cdef double[::1] sx = tables_d[0], sy = tables_d[1], sz = tables_d[2]
    cdef float[::1] wx = tables_f[0], wy = tables_f[1], wz = tables_f[2]
    cdef float[::1] ex = tables_f[3], ey = tables_f[4], ez = tables_f[5]
    cdef double t_max = 0.0
    cdef Py_ssize_t made
    with nogil:
        made = rir_images(order, &sx[0], &sy[0], &sz[0], &wx[0], &ex[0], &wy[0], &ey[0],
                          &wz[0], &ez[0], c, delay, &times[0], &alphas[0], &t_max)
    if made != n:
        raise RuntimeError(f"image count {made}, expected {n}")
    return times, alphas, t_max


def rir_builder(cnp.ndarray[cnp.float32_t, ndim=1, mode="c"] rir,
                cnp.ndarray[cnp.float32_t, ndim=1, mode="c"] times,
                cnp.ndarray[cnp.float32_t, ndim=1, mode="c"] alphas,
                int fs, int fdl, int lut_gran):
    """Add the fractional-delay sinc of every (time, alpha) to rir, in place, with the
    arithmetic of pyroomacoustics.libroom.rir_builder(..., num_threads=1)."""
    if times.shape[0] != alphas.shape[0]:
        raise ValueError("time and alpha arrays should have the same size")
    if fdl % 2 != 1 or lut_gran < 1:
        raise ValueError("the fractional filter length should be odd")
    cdef cnp.ndarray[cnp.float32_t, ndim=1] acc = np.zeros(max(rir.shape[0], 1), np.float32)
    cdef cnp.ndarray[cnp.float32_t, ndim=1] table = np.empty((lut_gran + 2) * fdl, np.float32)
    cdef Py_ssize_t n = times.shape[0], length = rir.shape[0]
    cdef int status
    if n == 0:
        return rir
    with nogil:
        status = rir_build(&rir[0], length, &times[0], &alphas[0], n, fs, fdl,
                           lut_gran, &acc[0], &table[0])
    if status == -1:
        raise RuntimeError("a time falls outside the rir array (too short, or negative)")
    if status != 0:
        raise MemoryError("rir_builder: out of memory")
    return rir
