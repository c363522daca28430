"""Speed of reading a 244 MB caffemodel with our own protobuf codec (pytest-benchmark).

The forward pass itself (Caffe vs NumPy vs C) is in test_bench_forward.py.
"""
from refimpl.network import caffemodel as cm
from refimpl.network import weights


def test_parse_caffemodel(benchmark):
    path = weights.synthetic_weights_path(0)
    model = benchmark.pedantic(cm.read_caffemodel, (path,), rounds=3)
    assert len(model.params) == 8
