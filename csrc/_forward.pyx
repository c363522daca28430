# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled AlexNet layers: the same semantics as refimpl.network, faster.

Each kernel mirrors a function of refimpl/network.py (same arguments, same channel-major
(C, N, H, W) blobs for the conv part) and is tested against it and against real Caffe:

    conv2d_cnhw      im2col packing (OpenMP) + one sgemm per group and image chunk
                     (scipy's BLAS), bias and ReLU fused after it
    lrn_cnhw         Caffe's running window sum, in the same rounding as
                     network.lrn_cnhw (bit-identical to it), OpenMP over pixels
    max_pool         Caffe's ceil-rounded, clipped-window max, OpenMP over planes
    inner_product    one sgemm (x W^T) + bias (+ ReLU)

Matrix products go through scipy.linalg.cython_blas; BLAS threads and OpenMP threads
are not used at the same time (packing, LRN and pooling run between the products).
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
cimport openmp
from libc.math cimport sqrt, pow
from libc.string cimport memset
from scipy.linalg.cython_blas cimport sgemm, sgemv

cnp.import_array()

cdef float FLT_MAX = 3.4028234663852886e38

# Largest im2col buffer; bigger batches are packed and multiplied in chunks of images.
COLS_BYTES = 256 << 20


def _pair(v):
    if np.isscalar(v):
        return int(v), int(v)
    return int(v[0]), int(v[1])


cdef void _im2col(const float *x, float *cols, int c, int n, int h, int w,
                  int i0, int nb, int kh, int kw, int sh, int sw, int ph, int pw,
                  int oh, int ow, int nthreads) noexcept nogil:
    """cols[(ch, ky, kx), (img, oy, ox)] = x[ch, i0 + img, oy*sh - ph + ky, ox*sw - pw + kx]
    (0 outside the input), for images i0 .. i0+nb-1 of a (C, N, H, W) blob."""
    cdef Py_ssize_t rows = <Py_ssize_t>c * kh * kw
    cdef Py_ssize_t ncols = <Py_ssize_t>nb * oh * ow
    cdef Py_ssize_t r, img, oy, ox
    cdef int ch, ky, kx, iy, ix
    cdef const float *src
    cdef float *dst
    for r in prange(rows, schedule="static", num_threads=nthreads):
        ch = <int>(r // (kh * kw))
        ky = <int>((r // kw) % kh)
        kx = <int>(r % kw)
        for img in range(nb):
            src = x + ((<Py_ssize_t>ch * n + i0 + img) * h) * w
            dst = cols + r * ncols + img * oh * ow
            for oy in range(oh):
                iy = <int>oy * sh - ph + ky
                if iy < 0 or iy >= h:
                    memset(dst + oy * ow, 0, ow * sizeof(float))
                    continue
                for ox in range(ow):
                    ix = <int>ox * sw - pw + kx
                    if ix >= 0 and ix < w:
                        dst[oy * ow + ox] = src[iy * w + ix]
                    else:
                        dst[oy * ow + ox] = 0


def conv2d_cnhw(x, weights, bias=None, stride=1, pad=0, group=1, fuse_relu=False):
    """Convolution on (C, N, H, W) float32 -> (M, N, OH, OW); see network.conv2d_cnhw."""
    cdef float[:, :, :, ::1] xv = np.ascontiguousarray(x, dtype=np.float32)
    cdef float[:, :, :, ::1] wv = np.ascontiguousarray(weights, dtype=np.float32)
    cdef int c = xv.shape[0], n = xv.shape[1], h = xv.shape[2], w = xv.shape[3]
    cdef int m = wv.shape[0], cg = wv.shape[1], kh = wv.shape[2], kw = wv.shape[3]
    cdef int sh, sw, ph, pw
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    cdef int g = group
    if g < 1 or c % g or m % g or cg != c // g:
        raise ValueError(f"conv2d: weights {tuple(weights.shape)} do not fit input "
                         f"channels {c} with group={group}")
    cdef int oh = (h + 2 * ph - kh) // sh + 1
    cdef int ow = (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"conv2d: kernel {kh}x{kw} larger than padded input {h}x{w}")
    cdef bint has_bias = bias is not None
    cdef bint relu = fuse_relu
    cdef float[::1] bv = (np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
                          if has_bias else np.zeros(m, dtype=np.float32))
    if bv.shape[0] != m:
        raise ValueError(f"conv2d: bias has {bv.shape[0]} values, need {m}")
    out = np.empty((m, n, oh, ow), dtype=np.float32)
    cdef float[:, :, :, ::1] ov = out
    cdef int spatial = oh * ow
    cdef int kdim = cg * kh * kw
    cdef int mg = m // g
    cdef int chunk = <int>max(1, min(n, COLS_BYTES // (4 * c * kh * kw * spatial)))
    cols_arr = np.empty(<Py_ssize_t>c * kh * kw * chunk * spatial, dtype=np.float32)
    cdef float[::1] cols = cols_arr
    cdef int i0, nb, gi, ncols, ldc
    cdef float one = 1.0, zero = 0.0
    cdef char *nn = b"N"
    cdef Py_ssize_t mi, j, row_len
    cdef float *orow
    cdef float bval
    ldc = n * spatial
    for i0 in range(0, n, chunk):
        nb = min(chunk, n - i0)
        ncols = nb * spatial
        with nogil:
            _im2col(&xv[0, 0, 0, 0], &cols[0], c, n, h, w, i0, nb, kh, kw, sh, sw, ph, pw,
                    oh, ow, openmp.omp_get_max_threads())
            for gi in range(g):
                # Row-major out_g (mg x ncols) = W_g (mg x kdim) @ cols_g (kdim x ncols),
                # i.e. column-major out_g^T = cols_g^T @ W_g^T: sgemm("N", "N").
                # Rows of out are N*OH*OW apart (ldc): the chunk lands in place.
                sgemm(nn, nn, &ncols, &mg, &kdim, &one,
                      &cols[<Py_ssize_t>gi * kdim * ncols], &ncols,
                      &wv[gi * mg, 0, 0, 0], &kdim, &zero,
                      &ov[gi * mg, i0, 0, 0], &ldc)
            if has_bias or relu:
                row_len = ncols
                for mi in prange(m, schedule="static"):
                    orow = &ov[mi, i0, 0, 0]
                    bval = bv[mi]
                    for j in range(row_len):
                        orow[j] = orow[j] + bval
                        if relu and orow[j] < 0:  # max(x, 0); NaN stays NaN
                            orow[j] = 0
    return out


def conv2d_cnhw_per_image(x, weights, bias=None, stride=1, pad=0, group=1,
                          fuse_relu=False):
    """conv2d_cnhw with OpenMP over images: each thread packs one image at a time into
    its own (cache-sized) buffer and multiplies it with a single-threaded sgemm, like
    Caffe's per-image loop but in parallel. Call with BLAS limited to one thread."""
    cdef float[:, :, :, ::1] xv = np.ascontiguousarray(x, dtype=np.float32)
    cdef float[:, :, :, ::1] wv = np.ascontiguousarray(weights, dtype=np.float32)
    cdef int c = xv.shape[0], n = xv.shape[1], h = xv.shape[2], w = xv.shape[3]
    cdef int m = wv.shape[0], cg = wv.shape[1], kh = wv.shape[2], kw = wv.shape[3]
    cdef int sh, sw, ph, pw
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    cdef int g = group
    if g < 1 or c % g or m % g or cg != c // g:
        raise ValueError(f"conv2d: weights {tuple(weights.shape)} do not fit input "
                         f"channels {c} with group={group}")
    cdef int oh = (h + 2 * ph - kh) // sh + 1
    cdef int ow = (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"conv2d: kernel {kh}x{kw} larger than padded input {h}x{w}")
    cdef bint has_bias = bias is not None
    cdef bint relu = fuse_relu
    cdef float[::1] bv = (np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
                          if has_bias else np.zeros(m, dtype=np.float32))
    if bv.shape[0] != m:
        raise ValueError(f"conv2d: bias has {bv.shape[0]} values, need {m}")
    out = np.empty((m, n, oh, ow), dtype=np.float32)
    cdef float[:, :, :, ::1] ov = out
    cdef int spatial = oh * ow
    cdef int kdim = cg * kh * kw
    cdef int mg = m // g
    cdef int nthreads = max(1, min(n, openmp.omp_get_max_threads()))
    cols_arr = np.empty((nthreads, <Py_ssize_t>c * kh * kw * spatial), dtype=np.float32)
    cdef float[:, ::1] cols = cols_arr
    cdef int i, gi, tid, ldc = n * spatial
    cdef float one = 1.0, zero = 0.0
    cdef char *nn = b"N"
    cdef Py_ssize_t mi, j
    cdef float *orow
    cdef float bval
    for i in prange(n, nogil=True, schedule="dynamic", chunksize=1, num_threads=nthreads):
        tid = threadid()
        _im2col(&xv[0, 0, 0, 0], &cols[tid, 0], c, n, h, w, i, 1, kh, kw, sh, sw, ph, pw,
                oh, ow, 1)
        for gi in range(g):
            sgemm(nn, nn, &spatial, &mg, &kdim, &one,
                  &cols[tid, <Py_ssize_t>gi * kdim * spatial], &spatial,
                  &wv[gi * mg, 0, 0, 0], &kdim, &zero, &ov[gi * mg, i, 0, 0], &ldc)
        for mi in range(m):
            orow = &ov[mi, i, 0, 0]
            bval = bv[mi]
            for j in range(spatial):
                orow[j] = orow[j] + bval
                if relu and orow[j] < 0:
                    orow[j] = 0
    return out


def lrn_cnhw(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe's cross-channel LRN on (C, N, H, W) float32; see network.lrn_cnhw.

    Per pixel: scale starts at k, the channels of the first window are added, then per
    channel the entering one added and the leaving one subtracted, each step
    run = float32(double(run) +- a * double(float32(x^2))) (caffe_axpy's fused
    multiply-add); out = float32(scale^-beta computed in double) * x.
    """
    cdef float[:, ::1] xv = np.ascontiguousarray(x, dtype=np.float32).reshape(x.shape[0], -1)
    cdef int c = xv.shape[0]
    cdef Py_ssize_t plane = xv.shape[1]
    out = np.empty((c, plane), dtype=np.float32)
    cdef float[:, ::1] ov = out
    cdef int sz = size
    cdef int pre = (sz - 1) // 2
    cdef double a = <double>(<float>alpha / <float>sz)
    cdef float kf = k
    cdef double nbeta = -<double>(<float>beta)
    cdef bint b075 = beta == 0.75
    cdef Py_ssize_t p0, blk = 256
    for p0 in prange(0, plane, blk, schedule="static", nogil=True):
        _lrn_block(&xv[0, 0], &ov[0, 0], c, plane, p0, min(blk, plane - p0), sz, pre, a, kf,
                   nbeta, b075)
    return out.reshape(x.shape)


cdef void _lrn_block(const float *x, float *out, int c, Py_ssize_t plane, Py_ssize_t p0,
                     Py_ssize_t cnt, int size, int pre, double a, float k, double nbeta,
                     bint b075) noexcept nogil:
    cdef float run[256]
    cdef Py_ssize_t p
    cdef int ch, i, head, tail
    cdef float sq, v
    cdef double s, root
    for p in range(cnt):
        run[p] = k
    for ch in range(c):
        if ch == 0:
            for i in range(min(size - pre, c)):
                for p in range(cnt):
                    v = x[i * plane + p0 + p]
                    sq = v * v
                    run[p] = <float>(<double>run[p] + a * <double>sq)
        else:
            head = ch + size - 1 - pre
            tail = ch - 1 - pre
            if head < c:
                for p in range(cnt):
                    v = x[head * plane + p0 + p]
                    sq = v * v
                    run[p] = <float>(<double>run[p] + a * <double>sq)
            if tail >= 0:
                for p in range(cnt):
                    v = x[tail * plane + p0 + p]
                    sq = v * v
                    run[p] = <float>(<double>run[p] - a * <double>sq)
        for p in range(cnt):
            s = <double>run[p]
            if b075:
                root = sqrt(s)
                s = 1.0 / (root * sqrt(root))
            else:
                s = pow(s, nbeta)
            out[ch * plane + p0 + p] = (<float>s) * x[ch * plane + p0 + p]


def pool_output_size(int size, int kernel, int stride, int pad):
    """As network.pool_output_size (ceil; C division truncates, so round up by hand)."""
    if size + 2 * pad < kernel:
        raise ValueError(f"pooling: kernel {kernel} larger than padded input {size}")
    cdef int out = (size + 2 * pad - kernel + stride - 1) // stride + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def max_pool(x, kernel=3, stride=2, pad=0):
    """Caffe's MAX pooling on any (A, B, H, W) float32 blob; see network.max_pool."""
    cdef int kh, kw, sh, sw, ph, pw
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    cdef float[:, :, ::1] xv = np.ascontiguousarray(x, dtype=np.float32).reshape(
        -1, x.shape[2], x.shape[3])
    cdef Py_ssize_t planes = xv.shape[0]
    cdef int h = xv.shape[1], w = xv.shape[2]
    cdef int oh = pool_output_size(h, kh, sh, ph)
    cdef int ow = pool_output_size(w, kw, sw, pw)
    out = np.empty((x.shape[0], x.shape[1], oh, ow), dtype=np.float32)
    cdef float[:, :, ::1] ov = out.reshape(-1, oh, ow)
    cdef Py_ssize_t q
    cdef int py, px, hs, ws, he, we, yy, xx
    cdef float best, v
    for q in prange(planes, schedule="static", nogil=True):
        for py in range(oh):
            hs = py * sh - ph
            he = min(hs + kh, h)
            hs = max(hs, 0)
            for px in range(ow):
                ws = px * sw - pw
                we = min(ws + kw, w)
                ws = max(ws, 0)
                best = -FLT_MAX
                for yy in range(hs, he):
                    for xx in range(ws, we):
                        v = xv[q, yy, xx]
                        if v > best:
                            best = v
                ov[q, py, px] = best
    return out


def inner_product(x, weights, bias=None, fuse_relu=False):
    """x (N, ...) flattened, times W^T (W: (M, K)) plus bias -> (N, M); optional ReLU."""
    cdef float[:, ::1] xv = np.ascontiguousarray(x, dtype=np.float32).reshape(x.shape[0], -1)
    cdef float[:, ::1] wv = np.ascontiguousarray(weights, dtype=np.float32)
    cdef int n = xv.shape[0], kdim = xv.shape[1], m = wv.shape[0]
    if wv.shape[1] != kdim:
        raise ValueError(f"inner_product: weights {tuple(weights.shape)} do not fit "
                         f"inputs of {kdim} values")
    out = np.empty((n, m), dtype=np.float32)
    cdef float[:, ::1] ov = out
    cdef float one = 1.0, zero = 0.0
    cdef char *tr = b"T"
    cdef char *nn = b"N"
    cdef bint has_bias = bias is not None
    cdef bint relu = fuse_relu
    cdef float[::1] bv = (np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
                          if has_bias else np.zeros(m, dtype=np.float32))
    if bv.shape[0] != m:
        raise ValueError(f"inner_product: bias has {bv.shape[0]} values, need {m}")
    cdef Py_ssize_t i, j
    cdef int inc = 1
    with nogil:
        if n < 4:
            # A few images: matrix-vector products, which stream W once at memory speed
            # (sgemm with a 1-column operand is several times slower here).
            for i in range(n):
                sgemv(tr, &kdim, &m, &one, &wv[0, 0], &kdim, &xv[i, 0], &inc, &zero,
                      &ov[i, 0], &inc)
        else:
            # Column-major out^T (m x n) = W (col-major k x m, transposed) @ x^T (k x n).
            sgemm(tr, nn, &m, &n, &kdim, &one, &wv[0, 0], &kdim, &xv[0, 0], &kdim, &zero,
                  &ov[0, 0], &m)
        if has_bias or relu:
            for i in range(n):
                for j in range(m):
                    ov[i, j] = ov[i, j] + bv[j]
                    if relu and ov[i, j] < 0:
                        ov[i, j] = 0
    return out
