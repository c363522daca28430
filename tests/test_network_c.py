"""The compiled kernels (csrc/_forward.pyx) against the NumPy reference and real Caffe.

LRN and pooling must be bit-identical to the NumPy reference (same operations in the same
order); conv and inner product go through the same kind of sgemm, so they are compared
with a float32 tolerance. Needs the built extension (`make build`).
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refimpl import caffemodel as cm
from refimpl import network as N
from refimpl import weights

F = pytest.importorskip("refimpl._forward", reason="compiled core not built (make build)")
SETTINGS = settings(max_examples=int(os.environ.get("REFIMPL_HYPOTHESIS_EXAMPLES", 40)),
                    deadline=None)


def rand(seed, shape, scale=1.0, offset=0.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + offset).astype("f4")


@SETTINGS
@given(st.data())
def test_conv_c_matches_numpy(data):
    group = data.draw(st.sampled_from([1, 2, 3]))
    cg, mg = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    kh, kw = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    sh, sw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    ph, pw = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
    h = data.draw(st.integers(max(1, kh - 2 * ph), 13))
    w = data.draw(st.integers(max(1, kw - 2 * pw), 13))
    n = data.draw(st.integers(1, 4))
    seed = data.draw(st.integers(0, 2 ** 31))
    relu = data.draw(st.booleans())
    x = rand(seed, (group * cg, n, h, w), 50, 50)
    wt = rand(seed + 1, (group * mg, cg, kh, kw))
    b = rand(seed + 2, (group * mg,)) if data.draw(st.booleans()) else None
    cfg = dict(stride=(sh, sw), pad=(ph, pw), group=group, fuse_relu=relu)
    ref = N.conv2d_cnhw(x, wt, b, **cfg)
    for kernel in (F.conv2d_cnhw, F.conv2d_cnhw_per_image):
        ours = kernel(x, wt, b, **cfg)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
        if relu:
            assert (ours >= 0).all()


def test_conv_c_in_chunks_equals_whole(monkeypatch):
    x = rand(1, (6, 5, 9, 9))
    wt = rand(2, (4, 3, 3, 3))
    b = rand(3, (4,))
    whole = F.conv2d_cnhw(x, wt, b, pad=1, group=2)
    monkeypatch.setattr(F, "COLS_BYTES", 1)  # one image per chunk
    np.testing.assert_array_equal(F.conv2d_cnhw(x, wt, b, pad=1, group=2), whole)


@SETTINGS
@given(st.data())
def test_lrn_c_bit_identical_to_numpy(data):
    size = data.draw(st.sampled_from([1, 3, 5, 7]))
    alpha = data.draw(st.sampled_from([1e-4, 1e-2, 0.3]))
    beta = data.draw(st.sampled_from([0.75, 0.5, 1.25]))
    k = data.draw(st.sampled_from([1.0, 2.0]))
    shape = (data.draw(st.integers(1, 12)), data.draw(st.integers(1, 3)),
             data.draw(st.integers(1, 30)), data.draw(st.integers(1, 30)))  # > 256 pixels too
    x = rand(data.draw(st.integers(0, 2 ** 31)), shape, 100)
    np.testing.assert_array_equal(F.lrn_cnhw(x, size, alpha, beta, k),
                                  N.lrn_cnhw(x, size, alpha, beta, k))


@SETTINGS
@given(st.data())
def test_max_pool_c_bit_identical_to_numpy(data):
    kernel, stride = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    pad = data.draw(st.integers(0, kernel - 1))
    h = data.draw(st.integers(max(1, kernel - 2 * pad), 12))
    w = data.draw(st.integers(max(1, kernel - 2 * pad), 12))
    x = rand(data.draw(st.integers(0, 2 ** 31)), (2, 3, h, w), 1, -3)
    np.testing.assert_array_equal(F.max_pool(x, kernel, stride, pad),
                                  N.max_pool(x, kernel, stride, pad))


@SETTINGS
@given(st.data())
def test_inner_product_c_matches_numpy(data):
    n, k, m = (data.draw(st.integers(1, 5)), data.draw(st.integers(1, 40)),
               data.draw(st.integers(1, 9)))
    seed = data.draw(st.integers(0, 2 ** 31))
    n = data.draw(st.sampled_from([n, n + 4]))  # sgemv (n < 4) and sgemm paths
    x, wt, b = rand(seed, (n, k)), rand(seed + 1, (m, k)), rand(seed + 2, (m,))
    ref = N.inner_product(x, wt, b)
    np.testing.assert_allclose(F.inner_product(x, wt, b), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(F.inner_product(x, wt, b, fuse_relu=True), N.relu(ref),
                               rtol=1e-5, atol=1e-5)


def test_forward_c_matches_numpy_on_every_blob():
    params = cm.load_alexnet_params(weights.synthetic_weights_path(0))
    blob = np.random.default_rng(8).integers(0, 256, (2, 3, 227, 227)).astype(np.float32)
    names = ["conv1", "norm1", "pool2", "conv5", "pool5", "fc6", "fc8"]
    ref = N.forward_blobs(params, blob, names)
    for name in names:
        ours = N.forward_c(params, blob, until=name, threads=2)
        assert ours.shape == ref[name].shape, name
        err = np.abs(ours - ref[name]).max() / np.abs(ref[name]).max()
        assert err <= 1e-5, (name, err)
