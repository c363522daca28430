"""Per-layer time of AlexNet to fc7: the C core (refimpl.network.cforward) beside OpenVINO's
own per-layer counters (PERF_COUNT, get_profiling_info), same input, same thread count.

    python tools/bench_layers.py --batch 1 --threads 1 --repeat 7 [--no-openvino]

Prints one table per run: per layer, the median over `repeat` forwards of the C core's
time in that layer's kernel (a ReLU fused into its convolution or inner product is
counted there, as OpenVINO fuses it too) and OpenVINO's real_time summed over the nodes
it ran for that layer (its node names keep the ONNX graph's layer names; nodes it added,
reorders and the like, are listed under their own names). "(python)" is what the C
core's forward spends outside its kernels (the CNHW -> NCHW transpose before fc6, array
checks). The synthetic seed-0 weights (refimpl.network.weights) are used: the time does
not depend on the values.
"""
import argparse
import collections
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "benchmarks"))

from refimpl.network import cforward as C  # noqa: E402
from refimpl.network import weights  # noqa: E402
from refimpl.network.spec import ALEXNET_LAYERS  # noqa: E402

# the C core's kernel functions, and the layers they run in order
KERNEL_KINDS = {"conv2d_layout": "conv", "lrn_layout": "lrn", "max_pool_layout": "pool",
                "inner_product_packed": "fc", "relu": "relu"}


class _TimedCore:
    """The compiled module with its kernels timed; each call is charged to the next layer
    of its kind in ALEXNET_LAYERS."""

    def __init__(self, core):
        self._core = core
        self.times = []

    def start(self):
        self.times = []
        self._next = {kind: iter([name for name, k, _ in ALEXNET_LAYERS if k == kind])
                      for kind in set(KERNEL_KINDS.values())}

    def __getattr__(self, attr):
        fn = getattr(self._core, attr)
        if attr not in KERNEL_KINDS:
            return fn

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.times.append((next(self._next[KERNEL_KINDS[attr]]), time.perf_counter() - t0))
            return out
        return timed


def profile_core(params, blob, threads, repeat):
    core = C._ensure_configured()
    old = C.configure(threads=threads)
    timed = _TimedCore(core)
    per_layer = collections.defaultdict(list)
    try:
        C._forward_layers(core, params, blob, "relu7")  # warm up
        for _ in range(repeat):
            timed.start()
            t0 = time.perf_counter()
            C._forward_layers(timed, params, blob, "relu7")
            total = time.perf_counter() - t0
            for name, seconds in timed.times:
                per_layer[name].append(seconds)
            per_layer["(python)"].append(total - sum(s for _, s in timed.times))
            per_layer["total"].append(total)
    finally:
        C.configure(**old)
    return {name: statistics.median(v) for name, v in per_layer.items()}


def profile_openvino(weights_path, blob, threads, repeat):
    import openvino as ov

    from refimpl.network.onnx_graph import onnx_alexnet

    core = ov.Core()
    model = core.read_model(onnx_alexnet(weights_path, "fc7").SerializeToString())
    model.reshape({"data": list(blob.shape)})
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": True})
    request = compiled.create_infer_request()
    request.infer({"data": blob})  # warm up
    layer_names = {name for name, _, _ in ALEXNET_LAYERS}
    per_layer = collections.defaultdict(list)
    for _ in range(repeat):
        t0 = time.perf_counter()
        request.infer({"data": blob})
        total = time.perf_counter() - t0
        sums, kinds = collections.defaultdict(float), {}
        for info in request.get_profiling_info():
            if info.status != info.Status.EXECUTED:
                continue
            name = info.node_name
            # OpenVINO names what it derives from a node after it (conv1/WithoutBiases ...)
            base = next((n for n in layer_names if name == n or name.startswith(n + "/")
                         or name.startswith(n + "_")), name)
            sums[base] += info.real_time.total_seconds()
            kinds.setdefault(base, info.exec_type)
        for name, seconds in sums.items():
            per_layer[name].append(seconds)
        per_layer["total"].append(total)
    return {name: statistics.median(v) for name, v in per_layer.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-openvino", action="store_true")
    args = ap.parse_args(argv)
    from bench_inputs import random_blob

    path = weights.synthetic_weights_path(0)
    blob = random_blob(args.batch)
    ours = profile_core(C.prepare_params(path), blob, args.threads, args.repeat)
    theirs = {} if args.no_openvino else profile_openvino(path, blob, args.threads,
                                                          args.repeat)
    print(f"batch {args.batch}, {args.threads} thread(s), median of {args.repeat}, ms")
    print(f"{'layer':<24}{'C core':>10}{'OpenVINO':>10}")
    names = [n for n, _, _ in ALEXNET_LAYERS if n in ours or n in theirs]
    names += sorted(n for n in set(ours) | set(theirs) if n not in names and n != "total")
    for name in names + ["total"]:
        a, b = ours.get(name), theirs.get(name)
        fmt = lambda v: f"{v * 1e3:10.2f}" if v is not None else f"{'':>10}"  # noqa: E731
        print(f"{name:<24}{fmt(a)}{fmt(b)}")


if __name__ == "__main__":
    main()
