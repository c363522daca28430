"""AlexNet to fc7 on the CPU runtimes a user would pick instead of our C core, for the
benchmarks (test_bench_peers.py) and their correctness tests (test_peers.py): ONNX Runtime
on the ONNX graph that refimpl.network.onnx_graph builds from the caffemodel, and OpenVINO
through the "openvino" backend (refimpl.network.openvino_backend), which runs that same
graph. PyTorch, the third peer, is refimpl.network.torch_backend.

Each runtime is configured for plain float32 on the CPU with an explicit thread count:
ONNX Runtime's CPUExecutionProvider with intra_op_num_threads = threads and one inter-op
thread; OpenVINO as its backend does (INFERENCE_NUM_THREADS = threads, one stream, the
LATENCY hint, INFERENCE_PRECISION_HINT f32, compiled once per batch size).

A plain module beside the benchmarks (`from peers import ...`), not part of the package.
"""
from refimpl.network import cforward
from refimpl.network import spec as _ref
from refimpl.network.onnx_graph import check_blob, missing_packages, onnx_alexnet, require
from refimpl.network.openvino_backend import OpenVinoNetwork as _OpenVinoBackend

__all__ = ["onnx_alexnet", "OnnxRuntimeNetwork", "OpenVinoNetwork", "onnxruntime_fc7",
           "missing_packages", "default_threads"]


def default_threads():
    """The C core's default thread count ($REFIMPL_THREADS, else the CPUs this process may
    use): the peers get the same unless told otherwise."""
    return cforward.default_threads()


class _Network:
    """What both runtimes share: the blobs to output, the NumPy interface."""

    def __init__(self, threads, outputs):
        self.threads = int(threads or default_threads())
        self.outputs = [outputs] if isinstance(outputs, str) else list(outputs)

    def fc7(self, blob):
        if "fc7" not in self.outputs:
            raise ValueError(f"this network outputs {self.outputs}, not fc7")
        return self.forward(blob)["fc7"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class OnnxRuntimeNetwork(_Network):
    """The ONNX graph on ONNX Runtime's CPU provider, `threads` intra-op threads (default:
    the C core's default), one inter-op thread."""

    def __init__(self, weights, threads=None, outputs=_ref.FEATURE_BLOB):
        user = "the ONNX Runtime benchmark"
        ort = require("onnxruntime", user)
        require("onnx", user)
        super().__init__(threads, outputs)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        model = onnx_alexnet(weights, self.outputs).SerializeToString()
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def forward(self, blob):
        """{blob name: float32 array} for the blobs in self.outputs."""
        if self.session is None:
            raise RuntimeError("OnnxRuntimeNetwork is closed")
        got = self.session.run(self.outputs, {"data": check_blob(blob)})
        return dict(zip(self.outputs, got))

    def close(self):
        self.session = None


class OpenVinoNetwork(_Network):
    """The "openvino" backend with the harness's interface (forward -> every blob asked
    for)."""

    def __init__(self, weights, threads=None, outputs=_ref.FEATURE_BLOB):
        super().__init__(threads, outputs)
        self.backend = _OpenVinoBackend(weights, threads=self.threads)

    def forward(self, blob):
        return self.backend.blobs(blob, self.outputs)

    def settings(self, n=1):
        return self.backend.settings(n)

    def close(self):
        self.backend.close()


def onnxruntime_fc7(blob, weights):
    """fc7 by ONNX Runtime in `refimpl golden verify`'s signature."""
    with OnnxRuntimeNetwork(weights) as net:
        return net.fc7(blob)
