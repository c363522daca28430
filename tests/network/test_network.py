"""Each NumPy layer against a direct, loop-by-loop definition of Caffe's semantics.

The loop definitions below are transcriptions of Caffe's CPU layer code (conv via the
definition of cross-correlation, LRN's window, pooling's ceil rule and clipped windows),
in float64, on small random shapes chosen by hypothesis (odd sizes, groups, pads,
strides, pooling edge cases). Real Caffe is the oracle in test_network_caffe.py.
"""
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tolerances as tol
from refimpl.network import reference as N

# REFIMPL_HYPOTHESIS_EXAMPLES raises the number of random cases for a thorough run.
SETTINGS = settings(max_examples=int(os.environ.get("REFIMPL_HYPOTHESIS_EXAMPLES", 40)),
                    deadline=None)


def arrays(draw, shape, scale=1.0):
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# ------------------------------------------------------------------ loop definitions

def conv_loops(x, w, b, stride, pad, group):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, m, oh, ow))
    mg = m // group
    for i in range(n):
        for o in range(m):
            g = o // mg
            for y in range(oh):
                for xx in range(ow):
                    s = 0.0
                    for ci in range(cg):
                        for ky in range(kh):
                            for kx in range(kw):
                                iy, ix = y * stride - pad + ky, xx * stride - pad + kx
                                if 0 <= iy < h and 0 <= ix < wd:
                                    s += float(x[i, g * cg + ci, iy, ix]) * float(w[o, ci, ky, kx])
                    out[i, o, y, xx] = s + float(b[o])
    return out


def lrn_loops(x, size, alpha, beta, k, with_scale=False):
    n, c, h, w = x.shape
    out = np.zeros(x.shape)
    scale = np.zeros(x.shape)
    pre = (size - 1) // 2
    for ch in range(c):
        lo, hi = max(0, ch - pre), min(c, ch - pre + size)
        s = (x[:, lo:hi].astype(np.float64) ** 2).sum(axis=1)
        scale[:, ch] = k + alpha / size * s
        out[:, ch] = x[:, ch] * scale[:, ch] ** -beta
    return (out, scale) if with_scale else out


def pool_loops(x, kernel, stride, pad):
    """Caffe's PoolingLayer<Dtype>::Forward_cpu, MAX, transcribed."""
    n, c, h, w = x.shape
    ph = int(math.ceil((h + 2 * pad - kernel) / stride)) + 1
    pw = int(math.ceil((w + 2 * pad - kernel) / stride)) + 1
    if pad:
        if (ph - 1) * stride >= h + pad:
            ph -= 1
        if (pw - 1) * stride >= w + pad:
            pw -= 1
    out = np.zeros((n, c, ph, pw), np.float32)
    for i in range(n):
        for ch in range(c):
            for py in range(ph):
                for px in range(pw):
                    hs, ws = py * stride - pad, px * stride - pad
                    he, we = min(hs + kernel, h), min(ws + kernel, w)
                    hs, ws = max(hs, 0), max(ws, 0)
                    # Caffe starts each max at -FLT_MAX: an empty window (kernel <
                    # stride, no pad, ceil rounding) keeps it
                    out[i, ch, py, px] = max(x[i, ch, hs:he, ws:we].max(initial=-np.inf),
                                             -np.finfo(np.float32).max)
    return out


# ------------------------------------------------------------------ properties

@st.composite
def conv_cases(draw):
    group = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, 3))
    mg = draw(st.integers(1, 3))
    k = draw(st.integers(1, 5))
    stride = draw(st.integers(1, 4))
    pad = draw(st.integers(0, 3))
    h = draw(st.integers(max(1, k - 2 * pad), 11))
    w = draw(st.integers(max(1, k - 2 * pad), 11))
    n = draw(st.integers(1, 3))
    x = arrays(draw, (n, group * cg, h, w), 10)
    wt = arrays(draw, (group * mg, cg, k, k))
    b = arrays(draw, (group * mg,))
    return x, wt, b, stride, pad, group


@SETTINGS
@given(conv_cases())
def test_conv2d_matches_definition(case):
    x, w, b, stride, pad, group = case
    ours = N.conv2d(x, w, b, stride=stride, pad=pad, group=group)
    ref = conv_loops(x, w, b, stride, pad, group)
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    # one float32 evaluation against the float64 definition
    tol.assert_within(ours, ref, tol.conv_bound(x, w, b, stride=stride, pad=pad, group=group,
                                                evaluations=1), "conv2d")


@SETTINGS
@given(st.data())
def test_lrn_matches_definition(data):
    size = data.draw(st.sampled_from([1, 3, 5, 7]))
    c = data.draw(st.integers(1, 9))
    shape = (data.draw(st.integers(1, 2)), c, data.draw(st.integers(1, 5)),
             data.draw(st.integers(1, 5)))
    alpha = data.draw(st.sampled_from([1e-4, 1e-3, 0.5]))
    beta = data.draw(st.sampled_from([0.75, 0.5, 1.0]))
    k = data.draw(st.sampled_from([1.0, 2.0]))
    x = arrays(data.draw, shape, data.draw(st.sampled_from([1.0, 100.0])))
    ours = N.lrn(x, size, alpha, beta, k)
    assert ours.dtype == np.float32
    ref = lrn_loops(x, size, alpha, beta, k)
    # Caffe's running window sum (add the entering channel, subtract the leaving one)
    # carries rounding errors of the order of the sums met along the channels, so small
    # sums next to large ones are only that accurate, in Caffe as here (tol.lrn_variance).
    tol.assert_within(ours, ref, tol.lrn_bound(x, size, alpha, beta, k, evaluations=1), "LRN")


@SETTINGS
@given(st.data())
def test_max_pool_matches_caffe_ceil_rule(data):
    kernel = data.draw(st.integers(1, 4))
    stride = data.draw(st.integers(1, 4))
    pad = data.draw(st.integers(0, kernel - 1))  # Caffe: CHECK_LT(pad, kernel)
    h = data.draw(st.integers(max(1, kernel - 2 * pad), 12))
    w = data.draw(st.integers(max(1, kernel - 2 * pad), 12))
    x = arrays(data.draw, (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), h, w))
    x -= 5  # all negative in places: padding must never win the max
    ours = N.max_pool(x, kernel, stride, pad)
    ref = pool_loops(x, kernel, stride, pad)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)  # max is exact


@pytest.mark.parametrize("size,kernel,stride,pad,expected", [
    (55, 3, 2, 0, 27), (27, 3, 2, 0, 13), (13, 3, 2, 0, 6),  # AlexNet
    (6, 3, 2, 0, 3),     # ceil: floor would give 2
    (5, 2, 2, 1, 3),     # (3-1)*2 = 4 < 5+1: kept
    (4, 2, 2, 1, 3),     # ceil gives 3 (last window starts at 4-1=3 inside): kept
    (3, 3, 2, 2, 3),     # ceil gives 4, but (4-1)*2 = 6 >= 3+2: dropped
])
def test_pool_output_size_examples(size, kernel, stride, pad, expected):
    assert N.pool_output_size(size, kernel, stride, pad) == expected


@SETTINGS
@given(st.data())
def test_inner_product_and_relu(data):
    n = data.draw(st.integers(1, 4))
    shape = (n, data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3)),
             data.draw(st.integers(1, 3)))
    m = data.draw(st.integers(1, 7))
    x = arrays(data.draw, shape)
    k = int(np.prod(shape[1:]))
    w = arrays(data.draw, (m, k))
    b = arrays(data.draw, (m,))
    ours = N.inner_product(x, w, b)
    ref = x.reshape(n, -1).astype(np.float64) @ w.T.astype(np.float64) + b
    tol.assert_within(ours, ref, tol.inner_product_bound(x, w, b, evaluations=1), "inner product")
    r = N.relu(ours)
    np.testing.assert_array_equal(r, np.where(ours > 0, ours, 0))
    assert not np.signbit(r).any()


def test_forward_rejects_bad_input():
    params = {n: tuple(np.zeros(s, np.float32) for s in shapes)
              for n, shapes in __import__("refimpl.network.caffemodel", fromlist=["x"])
              .ALEXNET_PARAM_SHAPES.items()}
    with pytest.raises(ValueError, match=r"\(N, 3, 227, 227\)"):
        N.forward_numpy(params, np.zeros((1, 3, 224, 224), np.float32))
    with pytest.raises(ValueError, match="unknown AlexNet blob"):
        N.forward_numpy(params, np.zeros((1, 3, 227, 227), np.float32), until="prob")


def test_forward_blob_shapes_and_batching():
    from refimpl.network import weights
    rng = np.random.default_rng(0)
    params = weights.synth_alexnet_params(0)
    x = rng.uniform(0, 255, (3, 3, 227, 227)).astype(np.float32)
    shapes = {"pool1": (3, 96, 27, 27), "conv5": (3, 256, 13, 13), "fc8": (3, 1000)}
    got = N.forward_blobs(params, x, list(shapes) + ["fc7"])
    assert {k: v.shape for k, v in got.items()} == {**shapes, "fc7": (3, 4096)}
    whole = got["fc7"]
    assert (whole >= 0).all()
    # batches of 2 give SGEMMs of other shapes, which OpenBLAS may block differently:
    # two float32 evaluations of the network
    var = tol.alexnet_variance(params, x, ["fc7"])["fc7"][1]
    tol.assert_within(N.forward_numpy(params, x, batch_size=2), whole, tol.statistical(var, var),
                      "fc7, batch 2 vs 3")


def test_forward_threads_limit_gives_same_features():
    from refimpl.network import weights
    params = weights.synth_alexnet_params(1)
    x = np.random.default_rng(4).uniform(0, 255, (1, 3, 227, 227)).astype(np.float32)
    a = N.forward_numpy(params, x)
    b = N.forward_numpy(params, x, threads=1)
    var = tol.alexnet_variance(params, x, ["fc7"])["fc7"][1]
    tol.assert_within(b, a, tol.statistical(var, var), "fc7, 1 thread vs default")
