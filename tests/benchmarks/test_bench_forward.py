"""Speed of AlexNet to fc7: real Caffe vs the NumPy reference vs the C core.

    pytest tests/benchmarks/test_bench_forward.py --benchmark-enable

Each batch size is one benchmark group, so the rows of a group (same inputs, same
machine, same moment) give the ratios; images/s is in each row's extra_info
(--benchmark-verbose or --benchmark-json). The C core runs with conv2-5 by Winograd
(the default, "c") and with every convolution by im2col ("c-im2col").
On a machine shared with other jobs, run it a few times and compare medians.
"""
import pytest

from bench_inputs import random_blob

from refimpl.network import caffe_client as cb
from refimpl.network import cforward as C
from refimpl.network import reference as N

BATCHES = [1, 32]


def run(benchmark, fn, blob, name):
    n = len(blob)
    benchmark.group = f"alexnet to fc7, batch {n}"
    benchmark.name = name
    out = benchmark(fn, blob)
    if benchmark.stats is not None and getattr(benchmark.stats, "stats", None) is not None:
        benchmark.extra_info["images_per_s"] = round(n / benchmark.stats.stats.median, 2)
    assert out.shape == (n, 4096)
    return out


@pytest.mark.caffe
@pytest.mark.parametrize("batch", BATCHES)
def test_caffe(benchmark, weights_path, batch, caffe_installed):
    blob = random_blob(batch)
    with cb.CaffeNet(cb.ALEXNET_PROTOTXT, weights_path) as net:
        net.extract_fc7(blob)  # warm up: Caffe allocates at the first reshape
        run(benchmark, net.extract_fc7, blob, f"caffe b{batch}")


@pytest.mark.parametrize("batch", BATCHES)
def test_numpy(benchmark, alexnet_params, batch):
    run(benchmark, lambda b: N.forward_numpy(alexnet_params, b), random_blob(batch),
        f"numpy b{batch}")


# (name, configure(...) settings): Winograd on (the default) and off, which shows what
# Winograd gains at each batch size.
C_SETUPS = [("c", dict(winograd=True)), ("c-im2col", dict(winograd=False))]


@pytest.mark.parametrize("setup", C_SETUPS, ids=[name for name, _ in C_SETUPS])
@pytest.mark.parametrize("batch", BATCHES)
def test_c(benchmark, weights_path, batch, setup, c_core):
    name, settings = setup
    net = C.CNetwork(weights_path)
    old = C.configure(**settings)
    try:
        blob = random_blob(batch)
        net.fc7(blob)  # warm up
        run(benchmark, net.fc7, blob, f"{name} b{batch}")
    finally:
        C.configure(**old)
        net.close()
