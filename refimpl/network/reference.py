"""ImageNet AlexNet forward pass in pure NumPy, with Caffe's exact layer semantics.

The deep spectrum features are the activations of BVLC AlexNet's second fully connected
layer (fc7, after its ReLU) for a 227x227 spectrogram image. This module computes them
without Caffe. Every layer follows Caffe's CPU implementation (not the paper's or another
framework's variant), because that is what produced the published features:

* convolution: cross-correlation with zero padding, `group` independent channel groups
  (AlexNet's two-GPU split lives on in conv2, conv4 and conv5), bias added after;
* ReLU: max(x, 0);
* LRN across channels: x / (k + alpha/n * sum of x^2 over the n channels centred on the
  channel, zero beyond the edges)^beta, with k=1, n=5, alpha=1e-4, beta=0.75;
* max pooling: the output size is rounded UP (ceil), unlike most frameworks; with padding
  the last window must still start inside the (left-padded) input; windows are clipped to
  the input, so padding never wins a max;
* inner product: x W^T + b, on the blob flattened in C order (channel, row, column);
* dropout: the identity at test time (Caffe scales during training instead).

All arithmetic is float32, like Caffe's; results match Caffe to rounding (the summation
order inside BLAS differs between builds, so the last bits do too).

Blobs are NCHW float32 arrays. The layer functions take one blob and return a new one.
The forward pass itself keeps the conv part channel-major, (C, N, H, W), through the
*_cnhw variants. The compiled core (refimpl.network.cforward over csrc/) computes the same
forward pass, checked against this module and against real Caffe.
"""
import numpy as np

from refimpl.network import caffemodel
from refimpl.network.spec import (ALEXNET_LAYERS, BLOB_NAMES, FEATURE_BLOB, FINAL_LAYER,
                                  INPUT_SHAPE, pool_output_size)

__all__ = [
    "conv2d", "conv2d_cnhw", "relu", "lrn", "lrn_cnhw", "max_pool", "pool_output_size",
    "inner_product", "forward_numpy", "forward_blobs", "golden_fc7", "NumpyNetwork",
]


# Largest im2col buffer of conv2d_cnhw; bigger batches are done in chunks of images.
_COLS_BYTES = 256 << 20


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv2d(x, weights, bias=None, stride=1, pad=0, group=1):
    """Caffe's Convolution layer: x (N, C, H, W) -> (N, M, OH, OW), float32.

    weights (M, C/group, KH, KW); bias (M,) or None; stride and pad an int or (h, w).
    OH = (H + 2*pad - KH) // stride + 1 (floor, as in Caffe's conv).
    """
    x = np.asarray(x, dtype=np.float32)
    out = conv2d_cnhw(x.transpose(1, 0, 2, 3), weights, bias, stride, pad, group)
    return np.ascontiguousarray(out.transpose(1, 0, 2, 3))


def conv2d_cnhw(x, weights, bias=None, stride=1, pad=0, group=1, fuse_relu=False):
    """conv2d on channel-major blobs: x (C, N, H, W) -> (M, N, OH, OW), float32.

    Done like Caffe: unroll every receptive field into a column (im2col), then one matrix
    product per group, (M/g, C/g*KH*KW) @ (C/g*KH*KW, N*OH*OW). The unrolling is a single
    strided copy, so there is no Python loop over pixels, and in the channel-major layout
    the product is already the next layer's input (no transposes between layers).
    fuse_relu applies the following in-place ReLU on the fly.
    """
    weights = np.asarray(weights, dtype=np.float32)
    c, n, h, w = x.shape
    m, cg, kh, kw = weights.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    if c % group or m % group or cg != c // group:
        raise ValueError(f"conv2d: weights {weights.shape} do not fit input channels {c} "
                         f"with group={group}")
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"conv2d: kernel {kh}x{kw} larger than padded input {h}x{w}")
    if ph or pw:
        padded = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=np.float32)
        padded[:, :, ph:ph + h, pw:pw + w] = x
        x = padded
    else:
        x = np.asarray(x, dtype=np.float32)
    # The receptive fields are unrolled (im2col) for as many images as fit in
    # _COLS_BYTES at once: big matrix products keep BLAS efficient (measured: chunks of a
    # few images cost 2-3x more time), while the bound keeps memory in check for big
    # batches (the whole of conv2 at batch 32 is 224 MB).
    kdim = cg * kh * kw
    spatial = oh * ow
    chunk = int(max(1, min(n, _COLS_BYTES // (4 * c * kh * kw * spatial))))
    cols_buf = np.empty(group * kdim * chunk * spatial, dtype=np.float32)
    res_buf = np.empty(m * chunk * spatial, dtype=np.float32)
    wmat = weights.reshape(group, m // group, kdim)
    bias = None if bias is None else np.asarray(bias, dtype=np.float32).reshape(m, 1, 1)
    out = np.empty((m, n, oh, ow), dtype=np.float32)
    s_c, s_n, s_h, s_w = x.strides
    for i0 in range(0, n, chunk):
        nb = min(chunk, n - i0)
        # View of every receptive field of images i0..i0+nb: (C, KH, KW, nb, OH, OW).
        fields = np.lib.stride_tricks.as_strided(
            x[:, i0:], shape=(c, kh, kw, nb, oh, ow),
            strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw), writeable=False)
        cols = cols_buf[:group * kdim * nb * spatial].reshape(group, kdim, nb * spatial)
        np.copyto(cols.reshape(c, kh, kw, nb, oh, ow), fields)  # the im2col copy
        res = res_buf[:m * nb * spatial].reshape(group, m // group, nb * spatial)
        np.matmul(wmat, cols, out=res)  # one sgemm per group
        res = res.reshape(m, nb, spatial)
        if bias is not None:
            res += bias
        if fuse_relu:
            np.maximum(res, np.float32(0), out=res)
        out[:, i0:i0 + nb] = res.reshape(m, nb, oh, ow)
    return out


def relu(x):
    """Caffe's ReLU (negative_slope 0): max(x, 0)."""
    return np.maximum(x, np.float32(0))


def lrn(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe's LRN layer, ACROSS_CHANNELS: x / (k + alpha/size * sum_window x^2)^beta.

    The window holds `size` channels centred on each channel ((size-1)//2 before it);
    channels beyond the edges count as zero.

    Computed in Caffe's own order, so that the result is as close to Caffe's as its
    OpenBLAS allows: the window sum is a running sum over channels (start with k, add
    alpha/size * x^2 of the channels of the first window, then per channel add the
    entering one and subtract the leaving one), each step an axpy computed here with a
    fused multiply-add; the power is taken in double precision and rounded once to
    float32, as std::pow does in caffe_powx. Bit-identical only where Caffe's saxpy
    kernel (OpenBLAS picks it at run time) rounds the same way: seen with its Zen kernels,
    not with its Haswell, SandyBridge, Nehalem or Prescott ones; elsewhere within the
    rounding bound of the running sum (tests/tolerances.py, lrn_variance).
    """
    x = np.asarray(x, dtype=np.float32)
    out = lrn_cnhw(x.transpose(1, 0, 2, 3), size, alpha, beta, k)
    return np.ascontiguousarray(out.transpose(1, 0, 2, 3))


def lrn_cnhw(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """lrn on channel-major blobs: x (C, N, H, W) -> (C, N, H, W).

    One channel plane (all images) at a time, with small reused buffers: the running sum
    needs only the previous channel's scale, and big temporaries would cost more in
    page faults than the arithmetic.
    """
    c = x.shape[0]
    pre = (size - 1) // 2
    a = np.float64(np.float32(alpha) / np.float32(size))  # alpha_over_size, in float
    xc = np.ascontiguousarray(x, dtype=np.float32).reshape(c, -1)
    plane = xc.shape[1]
    out = np.empty_like(xc)
    sq = np.empty(plane, dtype=np.float32)
    asq = np.empty(plane, dtype=np.float64)
    acc = np.empty(plane, dtype=np.float64)
    root = np.empty(plane, dtype=np.float64)
    run = np.full(plane, np.float32(k), dtype=np.float32)
    neg_beta = -np.float64(np.float32(beta))

    def axpy(sign, channel):
        """run += sign * a * x[channel]^2 as caffe_axpy does it: x^2 rounded to float32
        (caffe_sqr), a * x^2 exact in double (24-bit times 24-bit), the sum rounded once
        to float32 (OpenBLAS's saxpy uses a fused multiply-add)."""
        np.multiply(xc[channel], xc[channel], out=sq)
        np.multiply(sq, a, out=asq)
        if sign > 0:
            np.add(run, asq, out=acc)
        else:
            np.subtract(run, asq, out=acc)
        np.copyto(run, acc, casting="unsafe")

    for ch in range(c):
        if ch == 0:  # the first window: channels 0 .. size-1-pre (the rest is padding)
            for i in range(0, min(size - pre, c)):
                axpy(+1, i)
        else:  # slide: add the entering channel, subtract the leaving one
            if ch + size - 1 - pre < c:
                axpy(+1, ch + size - 1 - pre)
            if ch - 1 - pre >= 0:
                axpy(-1, ch - 1 - pre)
        # scale^-beta in double, rounded once (caffe_powx = std::pow per element).
        np.copyto(acc, run)
        if beta == 0.75:  # s^-0.75 = 1 / (sqrt(s) * sqrt(sqrt(s))): the same float32
            np.sqrt(acc, out=root)
            np.sqrt(root, out=acc)
            acc *= root
            np.divide(1.0, acc, out=acc)
        else:
            np.power(acc, neg_beta, out=acc)
        np.copyto(out[ch], acc, casting="unsafe")
    out *= xc
    return out.reshape(x.shape)


def max_pool(x, kernel=3, stride=2, pad=0):
    """Caffe's MAX pooling: x (N, C, H, W) -> (N, C, PH, PW) with ceil-rounded PH, PW.

    Each window [p*stride - pad, p*stride - pad + kernel) is clipped to the input, so the
    max is taken over real values only; an empty window gives -FLT_MAX like Caffe's.
    """
    x = np.asarray(x, dtype=np.float32)
    n, c, h, w = x.shape
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    ph, pw = _pair(pad)
    oh = pool_output_size(h, kh, sh, ph)
    ow = pool_output_size(w, kw, sw, pw)
    # Pad so that every (clipped) window is a full kernel whose extra cells hold -FLT_MAX,
    # Caffe's initial value of each max: a window that lies wholly outside the input
    # (possible without padding when kernel < stride) gives -FLT_MAX, as in Caffe.
    need_h = (oh - 1) * sh + kh
    need_w = (ow - 1) * sw + kw
    padded = np.full((n, c, need_h, need_w), -np.finfo(np.float32).max, dtype=np.float32)
    hh = min(h, need_h - ph)
    ww = min(w, need_w - pw)
    padded[:, :, ph:ph + hh, pw:pw + ww] = x[:, :, :hh, :ww]
    out = None
    for dy in range(kh):
        for dx in range(kw):
            win = padded[:, :, dy:dy + sh * (oh - 1) + 1:sh, dx:dx + sw * (ow - 1) + 1:sw]
            out = win.copy() if out is None else np.maximum(out, win, out=out)
    return out


def inner_product(x, weights, bias=None):
    """Caffe's InnerProduct: x flattened to (N, K) in C order, then x W^T + b.

    weights (M, K), bias (M,) or None -> (N, M) float32.
    """
    x = np.asarray(x, dtype=np.float32)
    x = x.reshape(x.shape[0], -1)
    out = x @ np.asarray(weights, dtype=np.float32).T
    if bias is not None:
        out += np.asarray(bias, dtype=np.float32)
    return out


def _as_params(params):
    """A caffemodel path, a CaffeModel or a parameter dict -> float32 (weights, bias) dict."""
    return caffemodel.alexnet_params(params)


def _layers(params, x):
    """Run AlexNet layer by layer, yielding (layer name, blob after the layer).

    The conv part runs on channel-major (C, N, H, W) blobs, which saves a transpose per
    layer; yielded blobs are views in Caffe's (N, C, H, W) order.
    """
    x = np.ascontiguousarray(x.transpose(1, 0, 2, 3))  # (C, N, H, W)
    for name, kind, cfg in ALEXNET_LAYERS:
        if kind == "conv":  # the ReLU after each conv is fused into it
            x = conv2d_cnhw(x, *params[name], **cfg, fuse_relu=True)
        elif kind == "relu":
            if x.ndim == 2:  # after fc (after conv it is already fused)
                x = relu(x)
        elif kind == "lrn":
            x = lrn_cnhw(x, **cfg)
        elif kind == "pool":
            x = max_pool(x, **cfg)  # works on any leading axes
        elif kind == "fc":
            if x.ndim == 4:  # Caffe flattens (N, C, H, W) in C order
                x = x.transpose(1, 0, 2, 3).reshape(x.shape[1], -1)
            x = inner_product(x, *params[name])
        # dropout: the identity at test time
        yield name, (x.transpose(1, 0, 2, 3) if x.ndim == 4 else x)


def _check_input(blob):
    blob = np.asarray(blob, dtype=np.float32)
    if blob.ndim != 4 or blob.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"AlexNet input must be (N, 3, 227, 227), got {blob.shape}")
    return blob


def forward_blobs(params, blob, names):
    """Run AlexNet and return the named blobs (Caffe's blob names, e.g. "pool5", "fc7")
    as a dict; runs only as far as the last one needed."""
    params = _as_params(params)
    blob = _check_input(blob)
    for name in names:
        if name not in BLOB_NAMES:
            raise ValueError(f"unknown AlexNet blob {name!r}; one of {', '.join(BLOB_NAMES)}")
    wanted = {FINAL_LAYER[n]: n for n in names}
    out = {}
    for layer, x in _layers(params, blob):
        if layer in wanted:
            out[wanted[layer]] = np.ascontiguousarray(x)
            if len(out) == len(wanted):
                break
    return out


def forward_numpy(params, blob, until=FEATURE_BLOB, batch_size=None, threads=None):
    """Run AlexNet on `blob` (N, 3, 227, 227) float32 and return blob `until`.

    params: a .caffemodel path or `caffemodel.load_alexnet_params(...)`'s dict.
    until: the blob to return: "fc7" (default) = the deep spectrum features, read after
    relu7, which works in place on blob fc7, as in Caffe; any of BLOB_NAMES works. The
    output of an fc layer is (N, M); of others (N, C, H, W). batch_size splits big inputs
    to bound memory (conv1's im2col buffer is ~4.4 MB per image, conv2's ~7 MB).
    threads: limit the BLAS threads for this call (None: leave BLAS's default). On a
    busy machine OpenBLAS's spinning threads can make 2 threads slower than 1.
    """
    if threads is not None:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=int(threads), user_api="blas"):
            return forward_numpy(params, blob, until, batch_size)
    params = _as_params(params)
    blob = _check_input(blob)
    if batch_size and blob.shape[0] > batch_size:
        return np.concatenate([forward_numpy(params, blob[i:i + batch_size], until)
                               for i in range(0, blob.shape[0], batch_size)])
    return forward_blobs(params, blob, [until])[until]


class NumpyNetwork:
    """The NumPy reference as a network backend (refimpl.network.open_backend): weights
    loaded once."""
    name = "numpy"

    def __init__(self, weights):
        self.params = _as_params(weights)

    def forward(self, blob, until=FEATURE_BLOB):
        return forward_numpy(self.params, blob, until)

    def fc7(self, blob):
        return self.forward(blob, "fc7")

    def close(self):
        self.params = None


def golden_fc7(blob, weights):
    """fc7 in `refimpl golden verify --stage fc7`'s signature (the default implementation
    it checks)."""
    return forward_numpy(caffemodel.load_alexnet_params(weights), blob)
