"""AlexNet on OpenVINO's CPU plugin: the network backend "openvino", for the machines where
it runs faster than the C core (docs/performance.md, tests/benchmarks/test_bench_peers.py).

The caffemodel becomes an ONNX graph in memory (refimpl.network.onnx_graph), which
OpenVINO reads and compiles for the CPU in plain float32 (INFERENCE_PRECISION_HINT f32:
its default on CPUs with bf16 or AMX is bf16, not the features' arithmetic), one stream,
the LATENCY hint, `threads` inference threads (default: the C core's default,
$REFIMPL_THREADS or the CPUs this process may use), once per batch size and set of
output blobs, with a static shape.

Its features agree with real Caffe within the golden tolerance
(`refimpl golden verify --stage fc7 --impl refimpl.network.openvino_backend:golden_fc7`,
tests/network/test_openvino_backend.py). Unlike the C core's, their last bits are not
promised to be independent of the batch and the thread count: OpenVINO documents no such
property and picks its kernels by shape, instruction set and thread count (on a 2-core
AMD EPYC with AVX2, OpenVINO 2026.4's fc7 and inner blobs were bit-identical across
batches of 1, 7 and 32 and 1 to 3 threads; AVX-512 machines were not checked). So the
backend says batch_invariant = False (extraction sends each file's images on their own)
and the cache key names the thread count and OpenVINO's version (arithmetic_id).

openvino and onnx are optional (requirements-bench.txt, `make bench-deps`, or
pip install -e '.[bench]').
"""
import numpy as np

from refimpl.network import cforward
from refimpl.network.caffemodel import alexnet_params
from refimpl.network.onnx_graph import check_blob, onnx_alexnet, require
from refimpl.network.spec import BLOB_NAMES, FEATURE_BLOB, INPUT_SHAPE

__all__ = ["OpenVinoNetwork", "golden_fc7", "arithmetic_id", "default_threads"]


def _openvino():
    return require("openvino", "the openvino backend")


def default_threads():
    """The C core's default thread count: $REFIMPL_THREADS, else the CPUs this process may
    use."""
    return cforward.default_threads()


def arithmetic_id(threads=None):
    """What decides the last bits of this backend's features, for cache keys: OpenVINO's
    version, its precision and the thread count (the batch size is kept fixed by the
    engine, which extracts a file's images on their own for this backend)."""
    ov = _openvino()
    return (f"openvino={ov.__version__} precision=f32 "
            f"threads={int(threads or default_threads())}")


class OpenVinoNetwork:
    """The network backend "openvino" (refimpl.network.open_backend): forward(blob, until)
    as the other backends, and blobs() for several blobs at once."""
    name = "openvino"
    # OpenVINO's sums depend on the batch size and the thread count
    batch_invariant = False
    # what moves its last bits (version, precision, threads), for cache keys
    arithmetic_id = staticmethod(arithmetic_id)

    def __init__(self, weights, threads=None):
        ov = _openvino()
        require("onnx", "the openvino backend")
        self.threads = int(threads or default_threads())
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self._params = alexnet_params(weights)  # read (and checked) once
        self._core = ov.Core()
        self._models = {}    # output blobs -> the model read from the ONNX graph
        self._requests = {}  # (output blobs, batch size) -> its infer request
        self.config = {"INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1,
                       "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}

    def _request(self, outputs, n):
        if self._params is None:
            raise RuntimeError("OpenVinoNetwork is closed")
        key = (outputs, n)
        if key not in self._requests:
            if outputs not in self._models:
                graph = onnx_alexnet(self._params, list(outputs)).SerializeToString()
                self._models[outputs] = self._core.read_model(graph)
            model = self._models[outputs].clone()
            model.reshape({"data": [n, *INPUT_SHAPE]})
            compiled = self._core.compile_model(model, "CPU", self.config)
            self._requests[key] = compiled.create_infer_request()
        return self._requests[key]

    def blobs(self, blob, names):
        """{name: float32 array} for the AlexNet blobs `names` of `blob` (N, 3, 227, 227)."""
        names = tuple(names)
        for name in names:
            if name not in BLOB_NAMES:
                raise ValueError(f"unknown AlexNet blob {name!r}; one of {', '.join(BLOB_NAMES)}")
        blob = check_blob(blob)
        request = self._request(names, len(blob))
        request.infer({"data": blob})
        return {name: np.array(request.get_tensor(name).data, dtype=np.float32, copy=True)
                for name in names}

    def forward(self, blob, until=FEATURE_BLOB):
        return self.blobs(blob, [until])[until]

    def fc7(self, blob):
        return self.forward(blob, "fc7")

    def settings(self, n=1, until=FEATURE_BLOB):
        """What the model compiled for batch `n` really runs with: its thread count,
        precision and streams (for the benchmarks' report and the tests)."""
        compiled = self._request((until,), n).get_compiled_model()
        return {key: str(compiled.get_property(key)) for key in
                ("INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT", "NUM_STREAMS")}

    def close(self):
        self._requests = {}
        self._models = {}
        self._params = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def golden_fc7(blob, weights):
    """`refimpl golden verify --stage fc7 --impl refimpl.network.openvino_backend:golden_fc7`."""
    with OpenVinoNetwork(weights) as net:
        return net.fc7(blob)
