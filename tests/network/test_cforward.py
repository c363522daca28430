"""The C core (refimpl.network.cforward, csrc/_forward_kernels.c) against the NumPy reference.

Each kernel is compared with refimpl.network.reference's layer function on random shapes chosen
by hypothesis (odd sizes, groups, pads, strides, tiny chunks so that work items cut
through rows and images, one and two threads). LRN, pooling and ReLU
must be bit-identical (same operations in the same order); convolution and inner product
(conv1 included) sum in another order than NumPy's BLAS, so they agree to float32 rounding: the bound of
two float32 evaluations of each sum (tests/support/tolerances.py), and through the whole network
the rounding carried layer to layer, with conv2-5 by Winograd on the C side. The whole
network to fc7 is compared with the NumPy reference here and with real Caffe in
test_cforward_caffe.py (and with Caffe's golden fc7 in test_golden_fc7_from_caffe).
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tolerances as tol
from oracles import unavailable
from refimpl.network import cforward as C
from refimpl.network import weights
from refimpl.network import reference as N

# Tests that run whether or not the extension is built; the others skip without it.
WITHOUT_CORE = {"test_core_is_built", "test_missing_build_gives_a_clear_error"}

SETTINGS = settings(max_examples=int(os.environ.get("REFIMPL_HYPOTHESIS_EXAMPLES", 40)),
                    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_core_is_built():
    """The other tests skip without the extension; this one fails, so that a test run
    on an unbuilt tree cannot pass quietly."""
    assert C.available(), "refimpl.network._forward is not built: run `make build`"


def rand(seed, shape, scale=1.0, offset=0.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + offset).astype(np.float32)


@pytest.fixture(autouse=True)
def restore_settings(request):
    if request.function.__name__ in WITHOUT_CORE:
        yield
        return
    if not C.available():
        unavailable("core", "C core not built (make build)")
    old = C.configure()
    yield
    C.configure(**old)


def core_settings(data):
    """Draw a thread count and chunk width (small ones cut rows/images)."""
    threads = data.draw(st.sampled_from([1, 2]), label="threads")
    chunk = data.draw(st.sampled_from([0, 1, 7, 16, 100]), label="chunk_cols")
    C.configure(threads=threads, chunk_cols=chunk)


def assert_close_to_sgemm(got, want, bound, what):
    """A float32 SGEMM result: the two products sum in different orders, so they may
    differ by rounding, bounded by the sums' length and terms (tol.conv_bound,
    tol.inner_product_bound), not by the result (it may cancel to ~0). A wrong index or a
    missed term gives errors of the terms' own size. A ReLU after both keeps the bound."""
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert got.dtype == np.float32
    tol.assert_within(got, want, bound, what)


# ------------------------------------------------------------------------ convolution

@SETTINGS
@given(st.data())
def test_conv2d_matches_numpy(data):
    core_settings(data)
    group = data.draw(st.sampled_from([1, 2, 3]))
    cg, mg = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    kh, kw = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    stride, pad = data.draw(st.integers(1, 4)), data.draw(st.integers(0, 3))
    h = data.draw(st.integers(max(1, kh - 2 * pad), 19))
    w = data.draw(st.integers(max(1, kw - 2 * pad), 19))
    n = data.draw(st.integers(1, 3))
    relu = data.draw(st.booleans())
    seed = data.draw(st.integers(0, 2 ** 31))
    x = rand(seed, (n, cg * group, h, w), 10.0)
    wt = rand(seed + 1, (mg * group, cg, kh, kw))
    b = rand(seed + 2, (mg * group,))
    want = N.conv2d(x, wt, b, stride=stride, pad=pad, group=group)
    if relu:
        want = N.relu(want)
    got = C.conv2d(x, wt, b, stride=stride, pad=pad, group=group, relu=relu)
    bound = tol.conv_bound(x, wt, b, stride=stride, pad=pad, group=group)
    assert_close_to_sgemm(got, want, bound, "conv2d")


@SETTINGS
@given(st.data())
def test_conv2d_channel_major_layouts(data):
    """The fused forward keeps blobs (C, N, H, W) between layers: every combination of
    input and output layout gives the NCHW result, transposed."""
    core_settings(data)
    x_cnhw, out_cnhw = data.draw(st.booleans()), data.draw(st.booleans())
    group = data.draw(st.sampled_from([1, 2]))
    n, h, w = data.draw(st.integers(1, 4)), data.draw(st.integers(3, 15)), data.draw(st.integers(3, 15))
    seed = data.draw(st.integers(0, 2 ** 31))
    x = rand(seed, (n, 2 * group, h, w), 5.0)
    wt = rand(seed + 1, (3 * group, 2, 3, 3))
    b = rand(seed + 2, (3 * group,))
    want = N.relu(N.conv2d(x, wt, b, stride=1, pad=1, group=group))
    core = C._ensure_configured()
    xin = np.ascontiguousarray(x.transpose(1, 0, 2, 3)) if x_cnhw else x
    got = core.conv2d_layout(xin, wt, b, 1, 1, 1, 1, group, True, x_cnhw=x_cnhw, out_cnhw=out_cnhw)
    if out_cnhw:
        got = np.ascontiguousarray(got.transpose(1, 0, 2, 3))
    bound = tol.conv_bound(x, wt, b, stride=1, pad=1, group=group)
    assert_close_to_sgemm(got, want, bound, "conv2d layouts")


@pytest.mark.parametrize("kernel,stride", [(11, 4), (5, 4), (4, 4), (3, 2), (5, 1)])
@pytest.mark.parametrize("pad", [0, 1, 2])
def test_conv2d_every_tap_reads_the_right_input_exactly(kernel, stride, pad):
    """One output channel per kernel tap, its filter 1 at that tap and 0 elsewhere: each
    output is then exactly the input value under the tap (a sum of zeros and one product
    by 1), so a misplaced column of im2col shows as a wrong value, not as rounding.
    Widths up to 120 give stride-4 rows of 30 columns: the AVX2 gather's 8-column steps
    and their remainders, with padding on either side; chunks of 7 and 13 columns cut
    the rows into pieces that start anywhere."""
    core = C._ensure_configured()
    taps = kernel * kernel
    wt = np.zeros((taps, 1, kernel, kernel), np.float32)
    wt.reshape(taps, taps)[np.arange(taps), np.arange(taps)] = 1.0
    for width in list(range(kernel, 40)) + [63, 64, 65, 95, 120]:
        x = rand(width, (2, 1, kernel + 3, width), 10.0)
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        for chunk in (0, 7, 13):
            got = core.conv2d_layout(x, wt, None, stride, stride, pad, pad, 1, False,
                                     chunk_cols=chunk)
            oh, ow = got.shape[2:]
            for ky in range(kernel):
                for kx in range(kernel):
                    want = xp[:, 0, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride]
                    np.testing.assert_array_equal(
                        got[:, ky * kernel + kx], want,
                        err_msg=f"width {width}, chunk {chunk}, tap ({ky}, {kx})")


def test_conv2d_alexnet_conv1_shape_and_values():
    x = rand(1, (2, 3, 227, 227), 60.0, 120.0)
    wt, b = rand(2, (96, 3, 11, 11), 0.01), rand(3, (96,))
    got = C.conv2d(x, wt, b, stride=4)
    assert got.shape == (2, 96, 55, 55)
    assert_close_to_sgemm(got, N.conv2d(x, wt, b, stride=4),
                          tol.conv_bound(x, wt, b, stride=4), "conv1")


def test_conv2d_without_bias_and_rectangular_stride_pad():
    x = rand(4, (2, 4, 13, 10), 3.0)
    wt = rand(5, (6, 2, 3, 4))
    got = C.conv2d(x, wt, None, stride=(2, 1), pad=(1, 2), group=2)
    assert_close_to_sgemm(got, N.conv2d(x, wt, None, stride=(2, 1), pad=(1, 2), group=2),
                          tol.conv_bound(x, wt, None, stride=(2, 1), pad=(1, 2), group=2),
                          "rectangular")


def test_conv2d_rejects_misfit_weights():
    x = rand(6, (1, 4, 8, 8))
    with pytest.raises(ValueError, match="group"):
        C.conv2d(x, rand(7, (6, 3, 3, 3)), None, group=2)
    with pytest.raises(ValueError, match="larger than"):
        C.conv2d(x, rand(7, (2, 4, 11, 11)), None)
    with pytest.raises(ValueError, match="bias"):
        C.conv2d(x, rand(7, (2, 4, 3, 3)), np.zeros(3, np.float32))


# -------------------------------------------------------------------------------- LRN

@SETTINGS
@given(st.data())
def test_lrn_bit_identical_to_numpy(data):
    core_settings(data)
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 24))
    h, w = data.draw(st.integers(1, 23)), data.draw(st.integers(1, 23))
    size = data.draw(st.sampled_from([1, 3, 5, 7]))
    scale = data.draw(st.sampled_from([1.0, 30.0, 300.0]))
    x = rand(data.draw(st.integers(0, 2 ** 31)), (n, c, h, w), scale)
    np.testing.assert_array_equal(C.lrn(x, size=size), N.lrn(x, size=size))


@SETTINGS
@given(st.data())
def test_lrn_other_parameters(data):
    """Any alpha, beta, k: the general power (double pow) instead of AlexNet's
    beta = 0.75 shortcut. The running sums are the same operations in the same order (bit
    for bit); the powers are both double pow (< 1 double ulp) rounded to float32, which
    differ only where the double values straddle a float32 rounding edge, by 1 ulp of
    S^-beta; times x (rounded, half an ulp each side): within 2 ulps of the result."""
    c, size = data.draw(st.integers(1, 12)), data.draw(st.sampled_from([3, 5, 9]))
    alpha = data.draw(st.sampled_from([1e-4, 1e-3, 0.5]))
    beta = data.draw(st.sampled_from([0.5, 0.75, 1.0, 2.0]))
    k = data.draw(st.sampled_from([1.0, 2.0]))
    x = rand(data.draw(st.integers(0, 2 ** 31)), (2, c, 7, 9), 20.0)
    got = C.lrn(x, size, alpha, beta, k)
    want = N.lrn(x, size, alpha, beta, k)
    tol.assert_within(got, want, tol.ulps(want, 2), "LRN, general power")


def test_lrn_alexnet_norm1_exact():
    x = np.maximum(rand(8, (2, 96, 55, 55), 200.0), 0)
    np.testing.assert_array_equal(C.lrn(x), N.lrn(x))


# ---------------------------------------------------------------------------- pooling

@SETTINGS
@given(st.data())
def test_max_pool_bit_identical_to_numpy(data):
    core_settings(data)
    k = data.draw(st.integers(1, 4))
    stride, pad = data.draw(st.integers(1, 3)), data.draw(st.integers(0, k - 1))
    h = data.draw(st.integers(max(1, k - 2 * pad), 17))
    # up to 41 columns: 3-wide stride-2 rows of 8 to 20 outputs take the AVX2 path
    w = data.draw(st.integers(max(1, k - 2 * pad), 41))
    x = rand(data.draw(st.integers(0, 2 ** 31)), (2, 3, h, w), 5.0)
    want = N.max_pool(x, kernel=k, stride=stride, pad=pad)
    got = C.max_pool(x, kernel=k, stride=stride, pad=pad)
    np.testing.assert_array_equal(got, want)


def test_max_pool_3x3_stride_2_every_row_width():
    """AlexNet's windows at every width from 3 to 41: rows of 8 or more whole windows take
    the AVX2 path (its last block overlapping the one before), the rest the scalar loop."""
    for w in range(3, 42):
        x = rand(w, (2, 3, 7, w), 5.0)
        x[0, 0, :, ::3] = 0.0
        x[0, 1, :, ::3] = -0.0
        got, want = (f(x, kernel=3, stride=2, pad=0) for f in (C.max_pool, N.max_pool))
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32),
                                      err_msg=f"w={w}")  # bits: signed zeros too


@pytest.mark.parametrize("size,kernel,stride,pad", [
    (55, 3, 2, 0), (27, 3, 2, 0), (13, 3, 2, 0), (6, 3, 2, 1), (7, 2, 2, 1), (5, 3, 3, 2),
    (1, 1, 1, 0), (8, 3, 3, 0), (10, 4, 3, 1)])
def test_pool_output_size_is_caffes(size, kernel, stride, pad):
    assert C.pool_output_size(size, kernel, stride, pad) == \
        N.pool_output_size(size, kernel, stride, pad)


def test_max_pool_alexnet_sizes():
    x = rand(9, (1, 4, 13, 13))
    assert C.max_pool(x).shape == (1, 4, 6, 6)
    assert C.max_pool(rand(9, (1, 2, 55, 55))).shape == (1, 2, 27, 27)


def test_max_pool_rejects_pad_not_below_kernel():
    with pytest.raises(ValueError, match="pad"):
        C.max_pool(rand(10, (1, 1, 5, 5)), kernel=2, stride=1, pad=2)


# ---------------------------------------------------------- inner product and ReLU

@SETTINGS
@given(st.data())
def test_inner_product_matches_numpy(data):
    core_settings(data)
    n = data.draw(st.integers(1, 9))
    k, m = data.draw(st.integers(1, 300)), data.draw(st.integers(1, 70))
    relu = data.draw(st.booleans())
    with_bias = data.draw(st.booleans())
    seed = data.draw(st.integers(0, 2 ** 31))
    x = rand(seed, (n, k), 3.0)
    wt = rand(seed + 1, (m, k))
    b = rand(seed + 2, (m,)) if with_bias else None
    want = N.inner_product(x, wt, b)
    if relu:
        want = N.relu(want)
    assert_close_to_sgemm(C.inner_product(x, wt, b, relu=relu), want,
                          tol.inner_product_bound(x, wt, b), "inner_product")


def test_inner_product_flattens_blobs_in_c_order():
    x = rand(11, (3, 4, 2, 2))
    wt = rand(12, (5, 16))
    assert_close_to_sgemm(C.inner_product(x, wt), N.inner_product(x, wt),
                          tol.inner_product_bound(x, wt), "flatten")


def test_relu_exact():
    x = rand(13, (3, 5, 7, 9))
    np.testing.assert_array_equal(C.relu(x), N.relu(x))


# ------------------------------------------------------------------------ the network

@pytest.fixture(scope="module")
def params():
    """The shared synthetic AlexNet, prepared once for the C core."""
    return C.prepare_params(weights.synthetic_weights_path(0))


@pytest.fixture(scope="module")
def numpy_blobs(params, blob):
    return N.forward_blobs(params, blob, N.BLOB_NAMES[:-1])


@pytest.fixture(scope="module")
def rounding(params, blob):
    """sigma^2 of one float32 evaluation of every blob: by im2col + SGEMM (numpy, and the
    C core with Winograd off) and with conv2-5 by Winograd (the C core's default)."""
    names = N.BLOB_NAMES[:-1]
    return {"gemm": tol.alexnet_variance(params, blob, names),
            "winograd": tol.alexnet_variance(params, blob, names, winograd=True)}


def c_side(rounding):
    return rounding["winograd" if C.settings()["winograd"] else "gemm"]


def test_fc7_matches_numpy_reference(params, blob, numpy_blobs, rounding):
    got = C.forward_c(params, blob)
    want = numpy_blobs["fc7"]
    assert got.shape == (3, 4096) and got.dtype == np.float32
    assert (want > 0).mean() > 0.3  # a live network, not a vector of zeros
    bound = tol.statistical(c_side(rounding)["fc7"][1], rounding["gemm"]["fc7"][1])
    tol.assert_within(got, want, bound, "fc7, C vs NumPy")


@pytest.mark.parametrize("name", N.BLOB_NAMES[:-1])
def test_every_blob_matches_numpy(params, blob, numpy_blobs, rounding, name):
    """Not bit for bit even at conv1: the C core sums each output as one FMA chain in k
    order, numpy's OpenBLAS in its own blocked order (by size and library version)."""
    got = C.forward_c(params, blob, until=name)
    want = numpy_blobs[name]
    assert got.shape == want.shape
    bound = tol.statistical(c_side(rounding)[name][1], rounding["gemm"][name][1])
    tol.assert_within(got, want, bound.reshape(got.shape), name)


def test_forward_invariant_to_threads_and_batching(params, blob):
    """Threads and batch only change who computes which output and how wide the
    products are: bit for bit (test_determinism.py draws many more settings)."""
    C.configure(threads=1)
    one = C.forward_c(params, blob)
    C.configure(threads=2)
    np.testing.assert_array_equal(C.forward_c(params, blob, batch_size=2), one)


@pytest.mark.parametrize("n", [1, 2])
def test_returned_blobs_are_not_overwritten_by_later_forwards(params, blob, n):
    """The layers write into per-thread buffers reused from one forward to the next
    (cforward._Arena); what a caller gets must be its own. At batch 1 the CNHW -> NCHW
    transpose of a conv or pool blob is already contiguous, so a missing copy would
    hand out the buffer itself."""
    names = [name for name in N.BLOB_NAMES if not name.startswith("fc")]  # conv1 .. pool5
    kept = {name: C.forward_c(params, blob[:n], until=name) for name in names}
    copies = {name: a.copy() for name, a in kept.items()}
    for name in names:  # other images through every layer
        C.forward_c(params, blob[n:2 * n] * -1.0, until=name)
    for name in names:
        np.testing.assert_array_equal(kept[name], copies[name], err_msg=name)
        assert not any(np.shares_memory(kept[name], b)
                       for b in C._ARENA.buffers if b is not None), name


def test_concurrent_forwards_from_two_threads(params, blob):
    """extract() runs the network beside an image thread; two callers at once must each
    get their own answer."""
    import threading
    want = [C.forward_c(params, blob[i:i + 1]) for i in range(2)]
    got = [None, None]

    def work(i):
        for _ in range(2):
            got[i] = C.forward_c(params, blob[i:i + 1])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        np.testing.assert_array_equal(got[i], want[i])


def test_forward_accepts_a_caffemodel_path_and_rejects_bad_input(params, blob):
    from refimpl.network import weights
    path = weights.synthetic_weights_path(0)
    np.testing.assert_array_equal(C.forward_c(path, blob[:1]), C.forward_c(params, blob[:1]))
    with pytest.raises(ValueError, match="227"):
        C.forward_c(params, blob[:, :, :200])
    with pytest.raises(ValueError, match="unknown AlexNet blob"):
        C.forward_c(params, blob, until="fc9")


def test_empty_batch(params):
    out = C.forward_c(params, np.zeros((0, 3, 227, 227), np.float32))
    assert out.shape == (0, 4096) and out.dtype == np.float32


def test_cnetwork_backend(params, blob):
    """The backend keeps the inner products' weights once, packed (not also as Caffe
    stores them), and gives the same bits as forward_c on the full prepared dict."""
    from refimpl.network import weights
    net = C.CNetwork(weights.synthetic_weights_path(0))
    try:
        assert all(net.params[name][0] is None for name in ("fc6", "fc7", "fc8"))
        np.testing.assert_array_equal(net.fc7(blob), C.forward_c(params, blob))
        np.testing.assert_array_equal(net.forward(blob, "fc8"), C.forward_c(params, blob, "fc8"))
    finally:
        net.close()


def test_inner_product_from_packed_weights_checks_their_size(params):
    core = C._ensure_configured()
    w, b = params["fc7"]
    x = rand(3, (2, 4096))
    np.testing.assert_array_equal(core.inner_product_packed(x, params.packed["fc7"], 4096, b, True),
                                  C.inner_product(x, w, b, relu=True))
    with pytest.raises(ValueError, match=r"pack_rows of \(4096, 9216\)"):
        core.inner_product_packed(rand(3, (2, 9216)),
                                  params.packed["fc7"], 4096, b, False)


def test_golden_fc7_from_caffe():
    """The C core passes `refimpl golden verify --stage fc7` (fc7 stored from real Caffe)."""
    from refimpl import golden
    results = golden.verify("fc7", C.golden_fc7)
    assert results and all(r.passed for r in results), [(r.name, r.error) for r in results]


def test_missing_build_gives_a_clear_error(monkeypatch):
    monkeypatch.setattr(C, "_forward", None)
    with pytest.raises(ImportError, match="make build"):
        C.forward_c({}, np.zeros((1, 3, 227, 227), np.float32))
    with pytest.raises(ImportError, match="make build"):
        C.CNetwork("unused.caffemodel")
