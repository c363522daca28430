"""The C core's features of an image do not depend on the batch it is in, its position
there, the thread count or the work item sizes: bit for bit, at every AlexNet blob.

Every convolution and inner product is one fused-multiply-add chain per output in a
fixed order (csrc/_forward_kernels.c, gemm), and the threads share out independent
outputs, so the bits of an output depend on the layer's shape and the image alone. The
image is compared with itself computed alone on one thread; the other images of the
batch are random. Small batches with every setting drawn by hypothesis, then one batch
of 64 (forward_c's largest piece) with the image deep inside it.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from oracles import unavailable
from refimpl.network import cforward as C
from refimpl.network import weights
from refimpl.network.spec import BLOB_NAMES

SETTINGS = settings(max_examples=int(os.environ.get("REFIMPL_HYPOTHESIS_EXAMPLES", 10)),
                    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def params():
    if not C.available():
        unavailable("core", "C core not built (make build)")
    return C.prepare_params(weights.synthetic_weights_path(0))


@pytest.fixture(autouse=True)
def restore_settings():
    if not C.available():
        unavailable("core", "C core not built (make build)")
    old = C.configure()
    yield
    C.configure(**old)


def images(seed, n):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 227, 227)).astype(np.float32)


IMAGE = images(7, 1)
_alone = {}


def alone(params, until, winograd):
    """The image's blob computed alone, on one thread, with the automatic work sizes."""
    key = (until, winograd)
    if key not in _alone:
        old = C.configure(threads=1, chunk_cols=0, wino_tiles=0,
                          winograd=winograd)
        try:
            _alone[key] = C.forward_c(params, IMAGE, until)[0]
        finally:
            C.configure(**old)
    return _alone[key]


def assert_same_bits(got, want, what):
    assert got.dtype == want.dtype and got.shape == want.shape, what
    diff = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
    assert diff.size == 0, (f"{what}: {diff.size} of {got.size} values differ, worst "
                            f"{np.abs(got - want).max():.3g}")


@SETTINGS
@given(st.data())
def test_blob_of_an_image_is_the_same_in_any_batch_and_thread_count(params, data):
    until = data.draw(st.sampled_from(BLOB_NAMES), label="until")
    winograd = data.draw(st.booleans(), label="winograd")
    threads = data.draw(st.integers(1, 4), label="threads")
    # work item sizes: 0 = automatic; small ones cut rows, tiles and images apart
    chunk = data.draw(st.sampled_from([0, 100, 333]), label="chunk_cols")
    tiles = data.draw(st.sampled_from([0, 13, 50]), label="wino_tiles")
    batch = data.draw(st.integers(1, 5), label="batch")
    pos = data.draw(st.integers(0, batch - 1), label="position")
    seed = data.draw(st.integers(0, 2 ** 31), label="others' seed")
    want = alone(params, until, winograd)
    others = images(seed, batch - 1)
    x = np.concatenate([others[:pos], IMAGE, others[pos:]])
    C.configure(threads=threads, chunk_cols=chunk, wino_tiles=tiles, winograd=winograd)
    got = C.forward_c(params, x, until)[pos]
    assert_same_bits(got, want, f"{until}, batch {batch} at {pos}, {threads} threads")


@pytest.mark.parametrize("threads", [2, 3])
def test_fc7_of_an_image_is_the_same_in_a_batch_of_64(params, threads):
    want = alone(params, "fc7", True)
    pos = 37
    others = images(11, 63)
    x = np.concatenate([others[:pos], IMAGE, others[pos:]])
    C.configure(threads=threads, chunk_cols=0, wino_tiles=0, winograd=True)
    got = C.forward_c(params, x, "fc7")
    assert_same_bits(got[pos], want, f"fc7, batch 64 at {pos}, {threads} threads")
    # and every other image of the batch as it is alone
    for i in (0, 63):
        C.configure(threads=1)
        assert_same_bits(got[i], C.forward_c(params, x[i:i + 1], "fc7")[0], f"image {i}")


def test_fc7_is_the_same_on_every_instruction_set_of_this_cpu(params):
    """The matrix products have an AVX-512, an AVX2 and a baseline (fmaf) path, each
    output one FMA chain in k order on all of them: the same bits. Runs every path this
    CPU has (an AVX-512 machine checks all three; REFIMPL_CORE_ISA=avx2 forces the AVX2
    path in normal use)."""
    core = C._ensure_configured()
    want = alone(params, "fc7", True)
    x = np.concatenate([images(5, 2), IMAGE])
    before = core.kernel_isa()
    ran = []
    try:
        for isa in core.ISAS:
            if core.set_kernel_isa(isa) != isa:
                continue  # not on this CPU
            ran.append(isa)
            C.configure(threads=2, chunk_cols=0, wino_tiles=0, winograd=True)
            assert_same_bits(C.forward_c(params, x, "fc7")[2], want, f"fc7 on {isa}")
    finally:
        core.set_kernel_isa(before)
    assert "baseline" in ran and before in ran, ran
