# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled AlexNet kernels (C in _forward_kernels.c); the Python API is refimpl.network.cforward.

Each function takes float32 C-contiguous 4-D arrays in one of two layouts, chosen by a
flag: NCHW (Caffe's, shape (N, C, H, W)) or CNHW (shape (C, N, H, W)), the layout the
fused forward keeps between convolutions so that a batch is one matrix product per
group. Shapes are checked by the caller (cforward.py); here only what the C code needs
to be memory-safe is checked. All kernels run without the GIL.
"""
import numpy as np
cimport numpy as cnp
from libc.stddef cimport ptrdiff_t

cnp.import_array()

cdef extern from "_forward_kernels.h" nogil:
    ctypedef struct fw_view:
        float *data
        int n, c, h, w
        ptrdiff_t sn, sc
    ctypedef struct fw_conv_cfg:
        int kh, kw, sh, sw, ph, pw, group, relu
    ctypedef struct fw_ctx:
        int threads
        int chunk_cols
        int wino_tiles
    int fw_conv(const fw_ctx *ctx, const fw_view *inp, const float *weights,
                const float *bias, int m, const fw_conv_cfg *cfg, const fw_view *out)
    int fw_wino_tile(int r)
    int FW_PANEL
    int fw_wino_panels(int m, int group)
    int fw_wino_transform_filters(const float *weights, int r, int m, int cg, int group,
                                  float *u)
    int fw_conv_wino(const fw_ctx *ctx, const fw_view *inp, const float *u,
                     const float *bias, int m, const fw_conv_cfg *cfg, const fw_view *out)
    size_t fw_packed_size(int m, int k)
    void fw_pack_rows(const float *w, int m, int k, float *out)
    int fw_inner_product(const fw_ctx *ctx, const float *x, int n, int k, const float *wp,
                         const float *bias, int m, int relu, float *out)
    int fw_lrn(const fw_ctx *ctx, const fw_view *inp, const fw_view *out, int size,
               float alpha, float beta, float k)
    void fw_max_pool(const fw_ctx *ctx, const fw_view *inp, const fw_view *out, int kh,
                     int kw, int sh, int sw, int ph, int pw)
    void fw_relu(const fw_ctx *ctx, float *x, const float *src, ptrdiff_t count)
    int fw_pool_output_size(int size, int kernel, int stride, int pad)
    enum:
        FW_ISA_BASELINE
        FW_ISA_AVX2
        FW_ISA_AVX512
    int fw_set_isa(int isa)
    int fw_isa()

cdef fw_ctx _ctx
_ctx.threads = 1
_ctx.chunk_cols = 0
_ctx.wino_tiles = 0

# Whether the fused forward (refimpl.network.cforward) takes the Winograd path where it applies;
# the kernels here only follow what they are given (conv2d_layout's wino_filters).
_winograd = True
# Winograd convolutions run so far (tests check that the forward really takes the path).
_wino_calls = 0


def winograd_calls():
    """How many convolutions have run by Winograd's minimal filtering in this process."""
    return _wino_calls


def configure(threads=None, chunk_cols=None, winograd=None, wino_tiles=None):
    """Set the OpenMP thread count, the im2col chunk width (0 = automatic), whether the
    forward uses Winograd convolutions and the Winograd tiles per work item
    (0 = automatic). Returns the previous settings."""
    global _winograd
    old = settings()
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        _ctx.threads = int(threads)
    if chunk_cols is not None:
        _ctx.chunk_cols = max(0, int(chunk_cols))
    if winograd is not None:
        _winograd = bool(winograd)
    if wino_tiles is not None:
        _ctx.wino_tiles = max(0, int(wino_tiles))
    return old


def settings():
    return dict(threads=_ctx.threads, chunk_cols=_ctx.chunk_cols,
                winograd=_winograd, wino_tiles=_ctx.wino_tiles)


WINOGRAD_KERNELS = (3, 5)
# outputs per tile side of each kernel size's Winograd transform, F(mxm, rxr): r -> m
WINOGRAD_TILES = {r: fw_wino_tile(r) for r in WINOGRAD_KERNELS}


def winograd_points(r):
    """n = m + r - 1, the transform's points per side for r x r kernels."""
    return WINOGRAD_TILES[r] + r - 1

# the matrix products' instruction sets, weakest first (same bits on each)
ISAS = {"baseline": FW_ISA_BASELINE, "avx2": FW_ISA_AVX2, "avx512": FW_ISA_AVX512}


def set_kernel_isa(name=None):
    """Run the matrix products with instruction set `name` (one of ISAS), or the best this
    CPU has for None; asking for more than it has gives that best. Returns the one in use."""
    if name is not None and name not in ISAS:
        raise ValueError(f"unknown instruction set {name!r}; one of {', '.join(ISAS)}")
    got = fw_set_isa(-1 if name is None else ISAS[name])
    return next(k for k, v in ISAS.items() if v == got)


def kernel_isa():
    """The instruction set the matrix products run with now."""
    got = fw_isa()
    return next(k for k, v in ISAS.items() if v == got)


PANEL = FW_PANEL


def _winograd_filters_shape(int r, int m, int cg, int group):
    return (winograd_points(r) ** 2, group, fw_wino_panels(m, group), cg, FW_PANEL)


def winograd_filters(cnp.ndarray weights, int group=1):
    """Winograd F(mxm, rxr) filters (m = WINOGRAD_TILES[r]) for stride-1 convolutions with
    square r x r kernels, r in WINOGRAD_KERNELS: weights (M, C/group, r, r) float32
    C-contiguous -> U, G g G^T computed in double and rounded once, laid out for the
    core's products: (n^2, group, panels, C/group, PANEL) float32, n = m + r - 1, each
    group's M/group filters in panels of PANEL, zero-padded (winograd_filters_rows gives
    the plain (n^2, M, C/group))."""
    if weights.ndim != 4 or weights.dtype != np.float32 or not weights.flags.c_contiguous:
        raise ValueError("weights must be C-contiguous float32 (M, C/group, r, r)")
    cdef int m = weights.shape[0], cg = weights.shape[1], r = weights.shape[2]
    if weights.shape[3] != r or r not in WINOGRAD_KERNELS:
        raise ValueError(f"Winograd needs square {WINOGRAD_KERNELS} kernels, got "
                         f"{weights.shape[2]}x{weights.shape[3]}")
    if group < 1 or m % group:
        raise ValueError(f"{m} filters do not split into {group} groups")
    cdef cnp.ndarray u = np.empty(_winograd_filters_shape(r, m, cg, group), dtype=np.float32)
    fw_wino_transform_filters(<const float *>cnp.PyArray_DATA(weights), r, m, cg, group,
                              <float *>cnp.PyArray_DATA(u))
    return u


def winograd_filters_rows(u, int m):
    """winograd_filters' result for M = m filters as (n^2, M, C/group), filter o's
    transform at [:, o, :]: the panels unpacked, their padding dropped."""
    nn, group, panels, cg, panel = u.shape
    rows = np.asarray(u).transpose(0, 1, 2, 4, 3).reshape(nn, group, panels * panel, cg)
    return np.ascontiguousarray(rows[:, :, :m // group].reshape(nn, m, cg))


cdef fw_view _view(cnp.ndarray a, bint cnhw) except *:
    cdef fw_view v
    if a.ndim != 4 or a.dtype != np.float32 or not a.flags.c_contiguous:
        raise ValueError("expected a C-contiguous float32 4-D array")
    v.data = <float *>cnp.PyArray_DATA(a)
    if cnhw:
        v.c = a.shape[0]; v.n = a.shape[1]
    else:
        v.n = a.shape[0]; v.c = a.shape[1]
    v.h = a.shape[2]; v.w = a.shape[3]
    if cnhw:
        v.sc = <ptrdiff_t>v.n * v.h * v.w
        v.sn = <ptrdiff_t>v.h * v.w
    else:
        v.sn = <ptrdiff_t>v.c * v.h * v.w
        v.sc = <ptrdiff_t>v.h * v.w
    return v


def _empty(shape_nchw, bint cnhw, buffer=None, avoid=None):
    """A new (N, C, H, W) or (C, N, H, W) float32 array; or, if `buffer` (a 1-D
    C-contiguous float32 array) holds at least as many floats, a view of its first ones:
    a caller that runs the same layers again and again passes its last outputs' memory
    back and so writes into pages it has already touched (see cforward._Arena). Never a
    view that overlaps `avoid` (the layer's input)."""
    n, c, h, w = shape_nchw
    shape = (c, n, h, w) if cnhw else (n, c, h, w)
    size = n * c * h * w
    if (isinstance(buffer, np.ndarray) and buffer.ndim == 1 and buffer.dtype == np.float32
            and buffer.flags.c_contiguous and buffer.shape[0] >= size
            and not np.may_share_memory(buffer[:size], avoid)):
        return buffer[:size].reshape(shape)
    return np.empty(shape, dtype=np.float32)


def pool_output_size(int size, int kernel, int stride, int pad):
    return fw_pool_output_size(size, kernel, stride, pad)


def conv2d_layout(cnp.ndarray x, cnp.ndarray weights, bias, int sh, int sw, int ph, int pw,
                  int group, bint relu, bint x_cnhw=False, bint out_cnhw=False,
                  int chunk_cols=-1, wino_filters=None, out_buffer=None):
    """Convolution (+ bias, + ReLU if asked). weights (M, C/group, KH, KW) float32
    C-contiguous; bias (M,) float32 or None. With wino_filters (winograd_filters(weights))
    a stride-1 convolution runs by Winograd's minimal filtering instead of im2col.
    out_buffer: memory to write the output into if it is large enough and apart from x
    (see _empty)."""
    cdef fw_view vin = _view(x, x_cnhw), vout
    cdef fw_conv_cfg cfg
    cdef cnp.ndarray b
    cdef const float *bp = NULL
    cdef int m = weights.shape[0], rc
    if weights.ndim != 4 or weights.dtype != np.float32 or not weights.flags.c_contiguous:
        raise ValueError("weights must be C-contiguous float32 (M, C/group, KH, KW)")
    if group < 1 or vin.c % group or m % group or weights.shape[1] * group != vin.c:
        raise ValueError(f"weights {np.shape(weights)} do not fit {vin.c} input channels "
                         f"with group={group}")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError("stride must be >= 1 and pad >= 0")
    cfg.kh = weights.shape[2]; cfg.kw = weights.shape[3]
    if cfg.kw > 64:
        raise ValueError(f"kernel width {cfg.kw} > 64 is not supported by the C core")
    cfg.sh = sh; cfg.sw = sw; cfg.ph = ph; cfg.pw = pw
    cfg.group = group; cfg.relu = relu
    oh = (vin.h + 2 * ph - cfg.kh) // sh + 1
    ow = (vin.w + 2 * pw - cfg.kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {cfg.kh}x{cfg.kw} larger than padded input "
                         f"{vin.h}x{vin.w}")
    if bias is not None:
        b = bias
        if b.dtype != np.float32 or b.ndim != 1 or b.shape[0] != m or not b.flags.c_contiguous:
            raise ValueError(f"bias must be float32 ({m},)")
        bp = <const float *>cnp.PyArray_DATA(b)
    out = _empty((vin.n, m, oh, ow), out_cnhw, out_buffer, x)
    vout = _view(out, out_cnhw)
    cdef const float *wp = <const float *>cnp.PyArray_DATA(weights)
    cdef fw_ctx ctx = _ctx
    cdef cnp.ndarray u
    cdef const float *up = NULL
    if chunk_cols >= 0:
        ctx.chunk_cols = chunk_cols
    global _wino_calls
    if wino_filters is not None:
        u = wino_filters
        r = cfg.kh
        if (cfg.kw != r or r not in WINOGRAD_KERNELS or sh != 1 or sw != 1
                or u.dtype != np.float32 or not u.flags.c_contiguous
                or (<object>u).shape != _winograd_filters_shape(r, m, weights.shape[1], group)):
            raise ValueError("wino_filters must be winograd_filters(weights, group) of a "
                             f"stride-1 convolution with a square {WINOGRAD_KERNELS} kernel")
        up = <const float *>cnp.PyArray_DATA(u)
    with nogil:
        if up != NULL:
            rc = fw_conv_wino(&ctx, &vin, up, bp, m, &cfg, &vout)
        else:
            rc = fw_conv(&ctx, &vin, wp, bp, m, &cfg, &vout)
    if rc:
        raise MemoryError("conv2d: out of memory for the im2col / Winograd buffers")
    if up != NULL:
        _wino_calls += 1
    return out


def inner_product(x, weights, bias=None, bint fuse_relu=False, packed=None):
    """Caffe's InnerProduct (+ ReLU): x (N, ...) flattened in C order, weights (M, K),
    bias (M,) or None -> (N, M) float32. packed: pack_rows(weights), if kept (otherwise
    packed here, a copy of the weights)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    x = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    if bias is not None:
        bias = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
    return _inner_product(x, weights, bias, fuse_relu, packed)


def pack_rows(cnp.ndarray weights):
    """Inner-product weights (M, K) float32 C-contiguous -> the layout fw_inner_product
    reads (strips of output neurons, each K x 16; see fw_pack_rows)."""
    if weights.ndim != 2 or weights.dtype != np.float32 or not weights.flags.c_contiguous:
        raise ValueError("weights must be C-contiguous float32 (M, K)")
    cdef int m = weights.shape[0], k = weights.shape[1]
    cdef cnp.ndarray out = np.empty(fw_packed_size(m, k), dtype=np.float32)
    with nogil:
        fw_pack_rows(<const float *>cnp.PyArray_DATA(weights), m, k,
                     <float *>cnp.PyArray_DATA(out))
    return out


def _inner_product(cnp.ndarray x, cnp.ndarray weights, bias, bint relu, packed=None):
    cdef cnp.ndarray b, wpk
    cdef const float *bp = NULL
    cdef int n, k, m
    if x.ndim != 2 or x.dtype != np.float32 or not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous float32 (N, K)")
    if weights.ndim != 2 or weights.dtype != np.float32 or not weights.flags.c_contiguous:
        raise ValueError("weights must be C-contiguous float32 (M, K)")
    n = x.shape[0]; k = x.shape[1]; m = weights.shape[0]
    if weights.shape[1] != k:
        raise ValueError(f"weights {np.shape(weights)} do not fit input of {k} values")
    if bias is not None:
        b = bias
        if b.dtype != np.float32 or b.ndim != 1 or b.shape[0] != m or not b.flags.c_contiguous:
            raise ValueError(f"bias must be float32 ({m},)")
        bp = <const float *>cnp.PyArray_DATA(b)
    return inner_product_packed(x, pack_rows(weights) if packed is None else packed, m,
                                bias, relu)


def inner_product_packed(cnp.ndarray x, cnp.ndarray packed, int m, bias, bint relu):
    """inner_product from the packed weights alone (pack_rows of an (m, K) matrix; the
    original need not be kept): x (N, K) float32 C-contiguous -> (N, m)."""
    cdef cnp.ndarray b, wpk = packed
    cdef const float *bp = NULL
    cdef int n, k
    if x.ndim != 2 or x.dtype != np.float32 or not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous float32 (N, K)")
    n = x.shape[0]; k = x.shape[1]
    if bias is not None:
        b = bias
        if b.dtype != np.float32 or b.ndim != 1 or b.shape[0] != m or not b.flags.c_contiguous:
            raise ValueError(f"bias must be float32 ({m},)")
        bp = <const float *>cnp.PyArray_DATA(b)
    if (wpk.ndim != 1 or wpk.dtype != np.float32 or not wpk.flags.c_contiguous
            or m < 1 or wpk.shape[0] != fw_packed_size(m, k)):
        raise ValueError(f"packed must be pack_rows of ({m}, {k}) weights")
    cdef cnp.ndarray out = np.empty((n, m), dtype=np.float32)
    cdef const float *xp = <const float *>cnp.PyArray_DATA(x)
    cdef const float *wp = <const float *>cnp.PyArray_DATA(wpk)
    cdef float *op = <float *>cnp.PyArray_DATA(out)
    cdef int rc
    with nogil:
        rc = fw_inner_product(&_ctx, xp, n, k, wp, bp, m, relu, op)
    if rc:
        raise MemoryError("inner_product: out of memory")
    return out


def lrn_layout(cnp.ndarray x, int size, float alpha, float beta, float k, bint cnhw=False,
               bint inplace=False):
    """Caffe's ACROSS_CHANNELS LRN. With inplace=True, x is overwritten and returned."""
    cdef fw_view vin = _view(x, cnhw), vout
    cdef int rc
    if size < 1:
        raise ValueError("LRN size must be >= 1")
    out = x if inplace else np.empty_like(x)
    vout = _view(out, cnhw)
    with nogil:
        rc = fw_lrn(&_ctx, &vin, &vout, size, alpha, beta, k)
    if rc:
        raise MemoryError("lrn: out of memory")
    return out


def max_pool_layout(cnp.ndarray x, int kh, int kw, int sh, int sw, int ph, int pw,
                    bint x_cnhw=False, bint out_cnhw=False, out_buffer=None):
    """Caffe's MAX pooling, ceil-mode output size. out_buffer: as conv2d_layout's."""
    cdef fw_view vin = _view(x, x_cnhw), vout
    if kh < 1 or kw < 1 or sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError("pooling needs kernel >= 1, stride >= 1, pad >= 0")
    if ph >= kh or pw >= kw:
        raise ValueError("pooling pad must be smaller than the kernel (as in Caffe)")
    oh = fw_pool_output_size(vin.h, kh, sh, ph)
    ow = fw_pool_output_size(vin.w, kw, sw, pw)
    if oh < 1 or ow < 1:
        raise ValueError(f"pooling kernel {kh}x{kw} larger than padded input "
                         f"{vin.h}x{vin.w}")
    out = _empty((vin.n, vin.c, oh, ow), out_cnhw, out_buffer, x)
    vout = _view(out, out_cnhw)
    with nogil:
        fw_max_pool(&_ctx, &vin, &vout, kh, kw, sh, sw, ph, pw)
    return out


def relu(cnp.ndarray x, bint inplace=False):
    """max(x, 0) on any C-contiguous float32 array."""
    if x.dtype != np.float32 or not x.flags.c_contiguous:
        raise ValueError("expected a C-contiguous float32 array")
    out = x if inplace else np.empty_like(x)
    cdef float *op = <float *>cnp.PyArray_DATA(out)
    cdef const float *xp = <const float *>cnp.PyArray_DATA(x)
    cdef ptrdiff_t count = x.size
    with nogil:
        fw_relu(&_ctx, op, xp, count)
    return out
