"""Speed of AlexNet to fc7: our C core against what a user would run instead on a CPU,
PyTorch (refimpl.network.torch_backend), ONNX Runtime and OpenVINO (peers.py: the same
caffemodel as an ONNX graph; OpenVINO through the "openvino" backend).

    make bench-deps
    pytest tests/benchmarks/test_bench_peers.py --benchmark-enable

Threads: every runtime runs with the C core's default thread count (T = $REFIMPL_THREADS,
else the CPUs this process may use) and again with 1 thread, so that each comparison is
between equal thread counts: C core configure(threads=...), torch.set_num_threads,
ONNX Runtime intra_op_num_threads (one inter-op thread, sequential), OpenVINO
INFERENCE_NUM_THREADS (one stream, LATENCY hint, f32). Each row's name says its threads.

One benchmark group per batch size (1, 32) and thread count; images/s is in each row's
extra_info, and each peer's row also carries `c_core_speedup`, its median time over the C
core's in the same group of the same run (the C row runs first), which is the number to
read on a shared machine. Before it is timed, each peer's fc7 is checked against the C
core's (the NumPy reference without the core) within the project's fc7 tolerance, so a
peer that computes something else fails instead of winning. Peers whose packages are not
installed are skipped and say which extra to install.
"""
import numpy as np
import pytest

import peers
from bench_inputs import random_blob

from refimpl import golden
from refimpl.network import cforward as C
from refimpl.network import reference as N

BATCHES = [1, 32]
THREADS = sorted({peers.default_threads(), 1}, reverse=True)
RUNTIMES = ["c", "torch", "onnxruntime", "openvino"]  # "c" first: the anchor of each group
CASES = [(batch, threads, runtime) for batch in BATCHES for threads in THREADS
         for runtime in RUNTIMES]
REL_TO_MAX = golden.TOLERANCES["fc7_max_error_rel_to_max"]
_c_medians = {}  # (batch, threads) -> the C core's median seconds in this run


@pytest.fixture(scope="module")
def ours(alexnet_params):
    """fc7 of random_blob(n) by the C core (the NumPy reference where it is not built)."""
    params = alexnet_params
    cache = {}

    def fc7(n):
        if n not in cache:
            blob = random_blob(n)
            cache[n] = (C.forward_c(params, blob) if C.available()
                        else N.forward_numpy(params, blob))
        return cache[n]
    return fc7


class _TorchThreads:
    """torch_backend with torch.set_num_threads(threads) while it runs."""

    def __init__(self, params, threads):
        import torch

        from refimpl.network.torch_backend import TorchNetwork
        self.torch, self.threads = torch, threads
        self.net = TorchNetwork(params, device="cpu")

    def fc7(self, blob):
        old = self.torch.get_num_threads()
        self.torch.set_num_threads(self.threads)
        try:
            return self.net.fc7(blob)
        finally:
            self.torch.set_num_threads(old)

    def info(self):
        return {"torch": self.torch.__version__, "torch_threads": self.threads}

    def close(self):
        self.net.close()


class _CThreads:
    def __init__(self, params, threads):
        self.params, self.threads = C.prepare_params(params), threads

    def fc7(self, blob):
        old = C.configure(threads=self.threads)
        try:
            return C.forward_c(self.params, blob)
        finally:
            C.configure(**old)

    def info(self):
        return {"c_settings": {**C.settings(), "threads": self.threads}}

    def close(self):
        self.params = None


def open_runtime(runtime, params, threads):
    if runtime == "c":
        if not C.available():
            pytest.skip("C core not built (make build)")
        return _CThreads(params, threads)
    if runtime == "torch":
        pytest.importorskip("torch", reason="PyTorch not installed (make test-deps: "
                                            "requirements-torch.txt)")
        return _TorchThreads(params, threads)
    missing = peers.missing_packages("onnx", runtime)
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make bench-deps: "
                    "requirements-bench.txt)")
    cls = peers.OnnxRuntimeNetwork if runtime == "onnxruntime" else peers.OpenVinoNetwork
    net = cls(params, threads=threads)
    if runtime == "onnxruntime":
        import onnxruntime
        net.info = lambda: {"onnxruntime": onnxruntime.__version__, "intra_op_threads": threads,
                            "inter_op_threads": 1}
    else:
        import openvino
        net.info = lambda: {"openvino": openvino.__version__, **net.settings(1)}
    return net


@pytest.fixture(scope="module")
def runtimes(alexnet_params):
    """open(runtime, threads) -> the network, built once per module (building the ONNX
    graph and its session costs seconds)."""
    params = alexnet_params
    opened = {}

    def get(runtime, threads):
        key = (runtime, threads)
        if key not in opened:
            opened[key] = open_runtime(runtime, params, threads)
        return opened[key]
    yield get
    for net in opened.values():
        net.close()


@pytest.mark.parametrize("batch,threads,runtime", CASES,
                         ids=[f"{r}-{t}t-b{b}" for b, t, r in CASES])
def test_fc7(benchmark, runtimes, ours, batch, threads, runtime):
    net = runtimes(runtime, threads)
    blob = random_blob(batch)
    got = net.fc7(blob)  # warm up (OpenVINO compiles for this batch size here)
    if runtime != "c":  # a peer must compute our features before its time counts
        want = ours(batch)
        err = np.abs(got.astype(np.float64) - want).max(axis=1) / np.abs(want).max(axis=1)
        assert err.max() <= REL_TO_MAX, f"{runtime} fc7 differs: {err.max():.3g} of max"
    benchmark.group = f"alexnet to fc7, batch {batch}, {threads} thread(s)"
    benchmark.name = f"{runtime} {threads}t b{batch}"
    benchmark.extra_info.update(net.info())
    out = benchmark(net.fc7, blob)
    assert out.shape == (batch, 4096)
    stats = getattr(benchmark.stats, "stats", None) if benchmark.stats is not None else None
    if stats is not None:
        benchmark.extra_info["images_per_s"] = round(batch / stats.median, 2)
        if runtime == "c":
            _c_medians[(batch, threads)] = stats.median
        elif (batch, threads) in _c_medians:
            benchmark.extra_info["c_core_speedup"] = round(
                stats.median / _c_medians[(batch, threads)], 3)
