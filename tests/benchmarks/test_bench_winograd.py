"""Speed of AlexNet's conv2-5 in the C core: Winograd vs im2col, layer by layer.

    pytest tests/benchmarks/test_bench_winograd.py --benchmark-enable

One group per layer (batch 32, the layer's real input from the synthetic seed-0 network),
two rows each: "winograd" (the forward's default) and "im2col" (configure(winograd=False)
and REFIMPL_WINOGRAD=0 give it). On a machine shared with other jobs compare the rows of
a group, taken at the same moment, rather than absolute times.
"""
import numpy as np
import pytest

from refimpl.network import cforward as C
from refimpl.network import reference as N
from refimpl.network import weights


BATCH = 32
LAYERS = ["conv2", "conv3", "conv4", "conv5"]
BEFORE = {"conv2": "pool1", "conv3": "pool2", "conv4": "conv3", "conv5": "conv4"}
CONFIG = {name: cfg for name, kind, cfg in N.ALEXNET_LAYERS}


@pytest.fixture(scope="module")
def params(c_core):
    return C.prepare_params(weights.synthetic_weights_path(0))


@pytest.fixture(scope="module")
def inputs(params):
    blob = np.random.default_rng(0).integers(0, 256, (BATCH, 3, 227, 227)).astype(np.float32)
    # channel-major (C, N, H, W), as the forward keeps blobs between convolutions
    return {name: np.ascontiguousarray(C.forward_c(params, blob, until=BEFORE[name])
                                       .transpose(1, 0, 2, 3)) for name in LAYERS}


@pytest.mark.parametrize("method", ["winograd", "im2col"])
@pytest.mark.parametrize("name", LAYERS)
def test_conv(benchmark, params, inputs, name, method):
    core = C._ensure_configured()
    w, b = params[name]
    cfg = CONFIG[name]
    u = params.winograd[name] if method == "winograd" else None
    x = inputs[name]

    def conv():
        return core.conv2d_layout(x, w, b, 1, 1, cfg["pad"], cfg["pad"], cfg["group"],
                                  True, x_cnhw=True, out_cnhw=True, wino_filters=u)

    benchmark.group = f"{name}, batch {BATCH}"
    benchmark.name = method
    out = benchmark(conv)
    assert out.shape[:2] == (w.shape[0], BATCH)
