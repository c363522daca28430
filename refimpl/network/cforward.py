"""AlexNet forward pass through the compiled C core (csrc/_forward.pyx, _forward_kernels.c).

Same numbers as the NumPy reference (refimpl/network/reference.py): LRN, pooling and ReLU bit for
bit, the convolutions and inner products to float32 rounding (each of their outputs is
one fused-multiply-add chain in input order, the core's own GEMM; numpy's BLAS sums in
its own blocked order; conv2-5 go through Winograd's transforms). An image's outputs
are the same bits whatever batch it is in, wherever, with any thread count: the threads
share out outputs, never a sum (tests/network/test_determinism.py). The layer functions
here take the reference's arguments and return its shapes, so either can stand in for
the other; `forward_c` is `forward_numpy`'s twin, `CNetwork` the network backend "c",
`golden_fc7` the callable for
`refimpl golden verify --stage fc7 --impl refimpl.network.cforward:golden_fc7`.

Where the speed comes from:

* Between conv1 and pool5 blobs are kept channel-major, (C, N, H, W), so the columns of
  all images of a batch form one matrix: each convolution group is one product over the
  batch, not Caffe's one per image, and no layer needs a transpose.
* That matrix is never built whole. Its columns are cut into chunks of a few hundred,
  and each chunk goes im2col -> GEMM -> bias + ReLU while it is still in cache.
* Both cores work all the time: the OpenMP threads take chunks (and blocks of fc neurons,
  pixels for LRN, planes for pooling), each product on one thread (csrc/_forward_kernels.c,
  gemm: AVX-512 12 x 16 or AVX2 + FMA 6 x 16 register tiles, picked at run time;
  REFIMPL_CORE_ISA=avx2 forces the second). Caffe's im2col, LRN and pooling run on one
  core.
* conv2-5 (stride 1, 5x5 and 3x3 kernels) run by Winograd's minimal filtering
  F(mxm, rxr) (Lavin & Gray 2016): 4x4 output tiles, conv3-5 by F(4x4, 3x3) from 36
  products per tile instead of 144, conv2 by F(4x4, 5x5) from 64 instead of 400, i.e.
  4x and 6.25x fewer multiplications, as 36 (64) matrix products over the batch's
  tiles. The filters are transformed once, in prepare_params (kept by CNetwork), and
  stored in panels of 6 filters so that a product's register tile reads its 6 values
  of A as one contiguous piece. The price is rounding: the error of a tile scales with
  its whole input patch, a few times float32's; fc7 stays well inside the golden
  tolerance of Caffe's (3e-5 of the max, derived from float32 rounding; `refimpl golden
  verify --stage fc7` prints the worst case).
  `configure(winograd=False)` or REFIMPL_WINOGRAD=0 gives the im2col path for every layer.
* No page faults once warm: the layers write into two buffers per thread kept from one
  forward to the next (_Arena), the core's im2col and Winograd buffers are kept per
  thread too (csrc/_forward_kernels.c, scratch).
* LRN runs Caffe's own running window sum (bit-identical to the reference) and takes
  scale^-0.75 as 1/(sqrt(s) sqrt(sqrt(s))) in double: the float result of an exact
  power, at a fraction of pow's cost.
"""
import os
import threading

import numpy as np

from refimpl._util.native import import_kernel
from refimpl.errors import MissingDependency
from refimpl.network.caffemodel import alexnet_params
from refimpl.network.spec import (ALEXNET_LAYERS, BLOB_NAMES, FEATURE_BLOB, FINAL_LAYER,
                                  INPUT_SHAPE)

try:  # the extension is built by setup.py, not shipped; without it this module still imports
    _forward = import_kernel("refimpl.network._forward")
except MissingDependency as _err:
    _forward = None
    _IMPORT_ERROR = _err
else:
    _IMPORT_ERROR = None

__all__ = ["conv2d", "relu", "lrn", "max_pool", "pool_output_size", "inner_product",
           "forward_c", "prepare_params", "PreparedParams", "golden_fc7", "CNetwork",
           "configure", "settings", "available", "kernel_isa"]

def available():
    """True if the compiled core is importable."""
    return _forward is not None


def _core():
    if _forward is None:
        raise MissingDependency(
            str(_IMPORT_ERROR or "refimpl.network._forward (the C core of the forward pass) "
                "is not built: run `make build` (or `python setup.py build_ext --inplace`)")
        ) from _IMPORT_ERROR
    return _forward


def default_threads():
    env = os.environ.get("REFIMPL_THREADS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_configured = False
_config_lock = threading.RLock()


def _default_isa():
    """$REFIMPL_CORE_ISA (avx512, avx2 or baseline: the most the matrix products may use,
    e.g. avx2 to check that path on an AVX-512 machine), else None: the best there is."""
    name = os.environ.get("REFIMPL_CORE_ISA", "").strip().lower()
    if name and name not in _forward.ISAS:
        raise ValueError(f"REFIMPL_CORE_ISA={name!r}: expected one of {', '.join(_forward.ISAS)}")
    return name or None


def kernel_isa():
    """The instruction set of the core's matrix products now: "avx512", "avx2" or
    "baseline" (the same bits on each)."""
    return _ensure_configured().kernel_isa()


def _default_winograd():
    env = os.environ.get("REFIMPL_WINOGRAD", "").strip().lower()
    return env not in ("0", "no", "false", "off")


def configure(threads=None, chunk_cols=None, winograd=None, wino_tiles=None):
    """Tune the C core: `threads` (default: the CPUs this process may use, or
    $REFIMPL_THREADS; the threads take whole work items),
    `chunk_cols` (im2col columns per work item, 0 = automatic),
    `winograd` (the forward runs conv2-5 by Winograd's minimal filtering; default on,
    $REFIMPL_WINOGRAD=0 turns it off) and `wino_tiles` (Winograd tiles per work item,
    0 = automatic). Returns the previous settings."""
    global _configured
    core = _core()
    with _config_lock:
        if not _configured:  # defaults first, so that a partial call keeps the others
            _configured = True
            configure(threads=default_threads(), chunk_cols=0,
                      winograd=_default_winograd(), wino_tiles=0)
            core.set_kernel_isa(_default_isa())
        return core.configure(threads=threads, chunk_cols=chunk_cols,
                              winograd=winograd, wino_tiles=wino_tiles)


def settings():
    """The current settings (configure's arguments)."""
    _ensure_configured()
    return _forward.settings()


def arithmetic_id():
    """What decides the last bits of the core's output, for cache keys: the convolution
    algorithm (with Winograd, its tile sizes: another F(m, r) gives other bits), and sums
    that are one FMA chain per output in a fixed order (so neither the batch nor the
    thread count enters)."""
    if settings()["winograd"]:
        conv = "+".join(f"F({m}x{m},{r}x{r})"
                        for r, m in sorted(_core().WINOGRAD_TILES.items()))
    else:
        conv = "False"
    return f"winograd={conv} sums=fma-in-order"


def _ensure_configured():
    core = _core()
    if not _configured:
        configure()
    return core


# ------------------------------------------------------------------- layer functions
# Same signatures and results as refimpl.network.reference's; NCHW float32 in, NCHW float32 out.

def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def _nchw(x, what):
    x = _f32(x)
    if x.ndim != 4:
        raise ValueError(f"{what}: expected an (N, C, H, W) blob, got shape {x.shape}")
    return x


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv2d(x, weights, bias=None, stride=1, pad=0, group=1, relu=False, winograd=False):
    """Caffe's Convolution (like network.conv2d), optionally with the following ReLU
    fused in: x (N, C, H, W) -> (N, M, OH, OW). winograd=True computes it by Winograd's
    minimal filtering (F(4x4, 3x3) or F(4x4, 5x5)), as the forward does for conv2-5
    (stride 1, square 3x3 or 5x5 kernels only; anything else is a ValueError)."""
    core = _ensure_configured()
    x = _nchw(x, "conv2d")
    weights = _f32(weights)
    if weights.ndim != 4:
        raise ValueError(f"conv2d: weights must be (M, C/group, KH, KW), got {weights.shape}")
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    b = None if bias is None else _f32(bias).reshape(-1)
    u = None
    if winograd:
        if (sh, sw) != (1, 1) or not _winograd_applies(weights, 1):
            raise ValueError(f"conv2d: Winograd needs stride 1 and a square "
                             f"{core.WINOGRAD_KERNELS} kernel, got stride {(sh, sw)}, "
                             f"weights {weights.shape}")
        u = core.winograd_filters(weights, int(group))
    return core.conv2d_layout(x, weights, b, sh, sw, ph, pw, int(group), bool(relu),
                              wino_filters=u)


def relu(x):
    """Caffe's ReLU: max(x, 0)."""
    return _ensure_configured().relu(_f32(x))


def lrn(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe's LRN across channels (like network.lrn)."""
    core = _ensure_configured()
    return core.lrn_layout(_nchw(x, "lrn"), int(size), float(alpha), float(beta), float(k))


def pool_output_size(size, kernel, stride, pad):
    """Caffe's ceil-mode pooled size (like network.pool_output_size)."""
    return _core().pool_output_size(int(size), int(kernel), int(stride), int(pad))


def max_pool(x, kernel=3, stride=2, pad=0):
    """Caffe's MAX pooling with ceil-mode output size (like network.max_pool)."""
    core = _ensure_configured()
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
    return core.max_pool_layout(_nchw(x, "max_pool"), kh, kw, sh, sw, ph, pw)


def inner_product(x, weights, bias=None, relu=False):
    """Caffe's InnerProduct (like network.inner_product), optionally with ReLU fused:
    x flattened to (N, K) in C order -> (N, M)."""
    core = _ensure_configured()
    x = _f32(x)
    x = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    b = None if bias is None else _f32(bias).reshape(-1)
    return core.inner_product(x, _f32(weights), b, bool(relu))


# ---------------------------------------------------------------------- the network



class PreparedParams(dict):
    """prepare_params' result: {layer: (weights, bias)} float32 C-contiguous, plus
    `winograd` = {layer: winograd_filters(weights)} for the convolutions that can run by
    Winograd's minimal filtering (stride 1, 3x3 or 5x5 kernels: conv2-5) and `packed` =
    {layer: pack_rows(weights)} for the inner products (their weights in the order the
    core reads them, made once rather than per call), with `fc_outputs` = {layer: M}.
    Without keep_fc_weights the inner products' weights are None here: the packed copy
    is all the forward reads (fc6-fc8's weights are 234 MB)."""

    def __init__(self, arrays, winograd, packed, fc_outputs):
        super().__init__(arrays)
        self.winograd = winograd
        self.packed = packed
        self.fc_outputs = fc_outputs


def prepare_params(params, keep_fc_weights=True):
    """A caffemodel path or load_alexnet_params' dict -> the same dict with every array
    float32 and C-contiguous, the Winograd-transformed filters of conv2-5 and the packed
    inner-product weights (CNetwork does it once and keeps the result). The weights must
    not be changed in place afterwards. keep_fc_weights=False drops the inner products'
    own weights once packed (their entries become (None, bias)): CNetwork's choice, which
    keeps one copy of fc6-fc8 instead of two; such a dict serves forward_c only."""
    arrays = alexnet_params(params)
    core = _core()
    winograd = {name: core.winograd_filters(arrays[name][0], cfg["group"])
                for name, kind, cfg in ALEXNET_LAYERS
                if kind == "conv" and _winograd_applies(arrays[name][0], cfg["stride"])}
    fc = [name for name, kind, _ in ALEXNET_LAYERS if kind == "fc"]
    packed, fc_outputs = {}, {}
    for name in fc:
        w, b = arrays[name]
        packed[name], fc_outputs[name] = core.pack_rows(w), w.shape[0]
        if not keep_fc_weights:
            arrays[name] = (None, b)
    return PreparedParams(arrays, winograd, packed, fc_outputs)


def _winograd_applies(weights, stride):
    return (int(stride) == 1 and weights.ndim == 4 and weights.shape[2] == weights.shape[3]
            and weights.shape[2] in _core().WINOGRAD_KERNELS)


def forward_c(params, blob, until=FEATURE_BLOB, batch_size=64):
    """AlexNet on `blob` (N, 3, 227, 227) float32 -> blob `until`, as forward_numpy.

    params: a .caffemodel path or `caffemodel.load_alexnet_params(...)`'s dict, prepared
    at each call; pass `prepare_params(...)`'s result to prepare once (as CNetwork does).
    until: "fc7" (default: the deep spectrum features, after relu7) or any AlexNet blob
    name, as in forward_numpy. Batches larger than `batch_size` run in pieces (memory).
    """
    core = _ensure_configured()
    if not isinstance(params, PreparedParams):
        params = prepare_params(params, keep_fc_weights=False)
    blob = _f32(blob)
    if blob.ndim != 4 or blob.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"AlexNet input must be (N, 3, 227, 227), got {blob.shape}")
    if until not in BLOB_NAMES:
        raise ValueError(f"unknown AlexNet blob {until!r}; one of {', '.join(BLOB_NAMES)}")
    stop = FINAL_LAYER[until]
    if batch_size and blob.shape[0] > batch_size:
        return np.concatenate([forward_c(params, blob[i:i + batch_size], until, batch_size)
                               for i in range(0, blob.shape[0], batch_size)])
    return _forward_layers(core, params, blob, stop)


class _Arena(threading.local):
    """Two buffers per thread that the layers from conv1 to pool5 write into in turn
    (each reads one and writes the other; LRN and ReLU work in place).

    Why: a new 37 MB conv1 output (batch 32) is memory the kernel has to find and zero
    page by page at first touch, and so is every other layer's. At batch 32 on two
    threads that was about 24 of 234 ms per forward; writing into the pages of the last
    forward removes it. A buffer grows to the largest batch its thread has run (about
    46 MB at 32 images, 92 MB at 64) and is kept until the thread ends or CNetwork.close.
    The arrays the caller gets are never these buffers (see _forward_layers)."""

    def __init__(self):
        self.buffers = [None, None]

    @staticmethod
    def other(current):
        """The index of the buffer to write next: not the one holding the input."""
        return 1 if current == 0 else 0

    def keep(self, index, out):
        """Adopt `out` as buffer `index` if the layer had to allocate (the buffer was
        missing or too small); returns `index`, now the buffer holding the blob."""
        buffer = self.buffers[index]
        if buffer is None or not np.may_share_memory(out, buffer):
            self.buffers[index] = out.reshape(-1)
        return index

    def release(self):
        self.buffers = [None, None]


_ARENA = _Arena()


def _forward_layers(core, params, x, stop):
    """The layer loop. Blobs between conv1 and pool5 are CNHW (`cnhw` True); a ReLU that
    follows a convolution or inner product is fused into it. Convolution and pooling
    outputs go to this thread's _Arena (`held`: the index of the buffer holding x, None
    when x is not in the arena); the blob returned is copied out of it."""
    layers = ALEXNET_LAYERS
    wino = params.winograd if core.settings()["winograd"] else {}
    arena = _ARENA
    cnhw = False
    held = None
    i = 0
    while i < len(layers):
        name, kind, cfg = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        fuse = nxt is not None and nxt[1] == "relu" and name != stop
        if kind == "conv":
            w, b = params[name]
            j = arena.other(held)
            x = core.conv2d_layout(x, w, b, cfg["stride"], cfg["stride"], cfg["pad"], cfg["pad"],
                                   cfg["group"], fuse, x_cnhw=cnhw, out_cnhw=True,
                                   wino_filters=wino.get(name), out_buffer=arena.buffers[j])
            held = arena.keep(j, x)
            cnhw = True
        elif kind == "relu":
            x = core.relu(x, inplace=True)
        elif kind == "lrn":
            x = core.lrn_layout(x, cfg["size"], cfg["alpha"], cfg["beta"], cfg["k"], cnhw=cnhw,
                         inplace=True)
        elif kind == "pool":
            k, s, p = cfg["kernel"], cfg["stride"], cfg["pad"]
            # pool5 writes NCHW, which is the C-order flattening fc6 expects
            to_cnhw = cnhw and name != "pool5" and name != stop
            j = arena.other(held)
            x = core.max_pool_layout(x, k, k, s, s, p, p, x_cnhw=cnhw, out_cnhw=to_cnhw,
                                     out_buffer=arena.buffers[j])
            held = arena.keep(j, x)
            cnhw = to_cnhw
        elif kind == "fc":
            if cnhw:
                x = np.ascontiguousarray(x.transpose(1, 0, 2, 3))
                cnhw = False
            held = None  # the product's output is new
            b = params[name][1]
            x = core.inner_product_packed(x.reshape(x.shape[0], int(np.prod(x.shape[1:]))),
                                          params.packed[name],
                                          params.fc_outputs[name], b, fuse)
        elif kind == "dropout":
            pass
        else:
            raise AssertionError(f"unhandled layer kind {kind}")
        if fuse:
            i += 1  # the ReLU was done inside the layer
            name = layers[i][0]
        if name == stop:
            break
        i += 1
    if cnhw:
        x = x.transpose(1, 0, 2, 3)
    # never hand out the arena (at batch 1 the transpose above is already contiguous)
    return np.array(x, order="C") if held is not None else np.ascontiguousarray(x)


class CNetwork:
    """The C core as a network backend (refimpl.network.open_backend): weights prepared
    once."""
    name = "c"
    # an image's outputs do not depend on the other images of the batch (nor on the
    # thread count): the engine may batch images of several files together
    batch_invariant = True
    # what moves its last bits, for cache keys (ExtractorConfig.config_id, the grid)
    arithmetic_id = staticmethod(arithmetic_id)

    def __init__(self, weights):
        _core()  # fail early, with the build hint, if the extension is missing
        self.params = prepare_params(weights, keep_fc_weights=False)

    def fc7(self, blob):
        return forward_c(self.params, blob, "fc7")

    def forward(self, blob, until=FEATURE_BLOB):
        return forward_c(self.params, blob, until)

    def close(self):
        self.params = None
        _ARENA.release()  # this thread's layer buffers


def golden_fc7(blob, weights):
    """fc7 in `refimpl golden verify --stage fc7`'s signature:
    `refimpl golden verify --stage fc7 --impl refimpl.network.cforward:golden_fc7`."""
    return forward_c(weights, blob, "fc7")
