"""The .caffemodel codec: round trips, both layouts, every wire type, broken files.

The oracles are Caffe's own protobuf definitions (caffe_pb2 under the Caffe install's
Python, tests marked `caffe`) and real Caffe loading our files (test_caffe_backend.py).
"""
import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from oracles import unavailable
from refimpl.network import caffemodel as cm
from refimpl.network.caffemodel import CaffeModelError, _enc_varint, _key, _Message

RNG = np.random.default_rng(7)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
import binary_seeds  # noqa: E402  (tests/fuzz: the fuzzers' seeds and findings)


def small_params():
    return {
        "conv": [RNG.standard_normal((4, 3, 2, 2)).astype(np.float32),
                 RNG.standard_normal(4).astype(np.float32)],
        "ip": [RNG.standard_normal((5, 16)).astype(np.float32),
               RNG.standard_normal(5).astype(np.float32)],
    }


TYPES = {"data": "Input", "conv": "Convolution", "relu": "ReLU", "ip": "InnerProduct"}


@pytest.mark.parametrize("v1", [False, True])
def test_round_trip(tmp_path, v1):
    params = small_params()
    types = {k: v for k, v in TYPES.items() if not (v1 and v == "Input")}  # no V1 enum
    path = cm.write_caffemodel(tmp_path / "m.caffemodel", params, types, v1=v1, name="tiny")
    model = cm.read_caffemodel(path)
    assert model.format == ("V1" if v1 else "V2")
    assert model.name == "tiny"
    assert model.order == list(types)
    assert model.types == types
    assert set(model.params) == {"conv", "ip"}
    for name, blobs in params.items():
        for ours, orig in zip(model.params[name], blobs):
            assert ours.dtype == np.float32
            if v1:  # legacy 4-D dims, leading 1s
                assert ours.shape == (1,) * (4 - orig.ndim) + orig.shape
            else:
                assert ours.shape == orig.shape
            np.testing.assert_array_equal(ours.reshape(orig.shape), orig)


def test_v1_rejects_type_without_enum(tmp_path):
    with pytest.raises(ValueError, match="no V1 enum"):
        cm.write_caffemodel(tmp_path / "m", {}, {"x": "Input"}, v1=True)


def test_v1_types_translated(tmp_path):
    types = {"conv": "Convolution", "relu": "ReLU", "ip": "InnerProduct", "n": "LRN",
             "p": "Pooling", "d": "Dropout", "s": "Softmax"}
    path = cm.write_caffemodel(tmp_path / "m", small_params(), types, v1=True)
    assert cm.read_caffemodel(path).types == types


def _blob_bytes(fields):
    m = _Message()
    for f in fields:
        f(m)
    return m


def _net_bytes(layer_msgs, v1=False, extra=b""):
    net = _Message()
    for layer in layer_msgs:
        net.message(2 if v1 else 100, layer)
    return extra + b"".join(bytes(c) for c in net.chunks)


def _unknown_fields():
    """One unknown field of every wire type, including a group with nested content."""
    return (_key(901, 0) + _enc_varint(2 ** 63 + 5)            # varint, 10 bytes
            + _key(902, 1) + struct.pack("<d", 1.5)              # fixed64
            + _key(903, 2) + _enc_varint(3) + b"abc"             # length-delimited
            + _key(904, 3) + _key(1, 0) + b"\x01" + _key(2, 2) + b"\x01x"
            + _key(5, 3) + _key(6, 5) + b"\0\0\0\0" + _key(5, 4)  # nested group
            + _key(904, 4)                                       # group end
            + _key(905, 5) + struct.pack("<f", 2.5))             # fixed32


def _raw(m):
    return b"".join(bytes(c) for c in m.chunks)


def test_unknown_fields_of_every_wire_type_are_skipped(tmp_path):
    data = np.arange(6, dtype=np.float32) - 2.5
    blob = _Message()
    blob._add(_unknown_fields())
    shape = _Message()
    shape.bytes_(1, _enc_varint(2) + _enc_varint(3))
    blob.message(7, shape)
    blob._add(_unknown_fields())
    blob.bytes_(5, data.tobytes())
    blob.bytes_(6, np.ones(6, np.float32).tobytes())  # diff: ignored
    layer = _Message()
    layer._add(_unknown_fields())
    layer.string(1, "fc")
    layer.string(3, "bottom")
    layer.string(2, "InnerProduct")
    layer.message(7, blob)
    layer._add(_unknown_fields())
    raw = _unknown_fields() + _raw(_with_name("net")) + _net_bytes([layer]) + _unknown_fields()
    path = tmp_path / "u.caffemodel"
    path.write_bytes(raw)
    model = cm.read_caffemodel(path)
    assert model.name == "net"
    assert model.types == {"fc": "InnerProduct"}
    np.testing.assert_array_equal(model.params["fc"][0], data.reshape(2, 3))


def _with_name(name):
    m = _Message()
    m.string(1, name)
    return m


def test_unpacked_floats_doubles_and_legacy_dims(tmp_path):
    """Parsers must accept repeated floats written one field each, and double_data."""
    data = RNG.standard_normal(24).astype(np.float32)
    blob = _Message()
    for number, d in zip((1, 2, 3, 4), (1, 2, 3, 4)):
        blob.varint(number, d)
    for v in data[:10]:
        blob._add(_key(5, 5) + struct.pack("<f", v))
    blob.bytes_(5, data[10:20].tobytes())  # a packed chunk in between: concatenated
    for v in data[20:]:
        blob._add(_key(5, 5) + struct.pack("<f", v))
    dbl = RNG.standard_normal(6)
    blob2 = _Message()
    shape = _Message()
    shape.bytes_(1, _enc_varint(6))
    blob2.message(7, shape)
    blob2.bytes_(5, np.zeros(6, np.float32).tobytes())  # ignored: double_data wins
    for v in dbl:
        blob2._add(_key(8, 1) + struct.pack("<d", v))
    layer = _Message()
    layer.string(4, "conv")
    layer.varint(5, 4)
    layer.message(6, blob)
    layer.message(6, blob2)
    path = tmp_path / "v1.caffemodel"
    path.write_bytes(_net_bytes([layer], v1=True))
    model = cm.read_caffemodel(path)
    assert model.format == "V1" and model.types == {"conv": "Convolution"}
    a, b = model.params["conv"]
    assert a.shape == (1, 2, 3, 4)
    np.testing.assert_array_equal(a.ravel(), data)
    np.testing.assert_array_equal(b, dbl.astype(np.float32))


def test_a_blob_shape_whose_product_wraps_around_is_refused(tmp_path):
    """Found by the fuzzer (tests/fuzz, issue 21): dims 2**32 x 2**32 multiply to 0 in
    int64, which matched the 0 values stored, and reshape raised a bare ValueError."""
    dims = _Message()
    dims.bytes_(1, _enc_varint(1 << 32) + _enc_varint(1 << 32))
    blob = _Message()
    blob.message(7, dims)
    layer = _Message()
    layer.string(1, "conv1")
    layer.string(2, "Convolution")
    layer.message(7, blob)
    path = tmp_path / "wraps.caffemodel"
    path.write_bytes(_net_bytes([layer], v1=False))
    with pytest.raises(CaffeModelError, match=r"larger than Caffe allows"):
        cm.read_caffemodel(path)
    found = binary_seeds.FOUND_SHAPE_PRODUCT_WRAPS   # the fuzzer's own input
    with pytest.raises(CaffeModelError, match="larger than Caffe allows"):
        cm.parse_caffemodel_bytes(memoryview(found))


def test_a_blob_that_ends_in_a_group_is_read_without_a_stray_stopiteration():
    """Found by tests/fuzz (slow suite): a BlobProto whose last field is a group (wire
    type 3, skipped as proto2 allows) left the field iterator empty, and next() raised a
    bare StopIteration out of the reader. Field 10 start-group 'S', end-group 'T'."""
    layer = _Message()
    layer.string(1, "conv1")
    layer.string(2, "Convolution")
    layer.bytes_(7, b"\x53\x54")            # blob = one empty group, nothing after it
    model = cm.parse_caffemodel_bytes(memoryview(_net_bytes([layer], v1=False)))
    assert [b.shape for b in model.params["conv1"]] == [(0,)]


def write_alexnet_like(path, v1=False, drop=None, bad=None):
    params = {n: [np.zeros(s, np.float32) for s in shapes]
              for n, shapes in cm.ALEXNET_PARAM_SHAPES.items()}
    if drop:
        del params[drop]
    if bad:
        params[bad][0] = np.zeros((3, 3), np.float32)
    return cm.write_caffemodel(path, params, v1=v1)


@pytest.mark.parametrize("v1", [False, True])
def test_load_alexnet_params_canonical_shapes(tmp_path, v1):
    p = cm.load_alexnet_params(write_alexnet_like(tmp_path / "a.caffemodel", v1=v1))
    assert {k: [a.shape for a in v] for k, v in p.items()} == \
        {k: [tuple(s) for s in v] for k, v in cm.ALEXNET_PARAM_SHAPES.items()}


def test_missing_layer_is_named(tmp_path):
    path = write_alexnet_like(tmp_path / "a.caffemodel", drop="fc7")
    with pytest.raises(CaffeModelError, match=r"a\.caffemodel.*fc7 missing"):
        cm.load_alexnet_params(path)


def test_wrong_shape_is_named(tmp_path):
    path = write_alexnet_like(tmp_path / "a.caffemodel", bad="conv2")
    with pytest.raises(CaffeModelError, match=r"a\.caffemodel: layer conv2 weights have "
                                              r"shape \(3, 3\)"):
        cm.load_alexnet_params(path)


def test_truncated_file(tmp_path):
    path = cm.write_caffemodel(tmp_path / "t.caffemodel", small_params(), TYPES)
    raw = path.read_bytes()
    for cut in (len(raw) - 1, len(raw) // 2, 7):
        path.write_bytes(raw[:cut])
        with pytest.raises(CaffeModelError, match=r"t\.caffemodel: truncated"):
            cm.read_caffemodel(path)


@pytest.mark.parametrize("content", [
    b"", b"name: \"AlexNet\"\nlayer {\n  name: \"conv1\"\n}\n",
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, bytes([0x0f] * 64), b"\xff" * 40])
def test_not_a_caffemodel(tmp_path, content):
    path = tmp_path / "x.bin"
    path.write_bytes(content)
    with pytest.raises(CaffeModelError, match=r"x\.bin: (not a|truncated)"):
        cm.read_caffemodel(path)


def test_random_garbage_never_crashes_uncleanly(tmp_path):
    """Garbled bytes: either parsed or a CaffeModelError, never another exception."""
    good = cm.write_caffemodel(tmp_path / "g", small_params(), TYPES).read_bytes()
    rng = np.random.default_rng(3)
    for _ in range(300):
        raw = bytearray(good)
        for i in rng.integers(0, len(raw), size=rng.integers(1, 6)):
            raw[i] = rng.integers(0, 256)
        try:
            cm.parse_caffemodel_bytes(memoryview(bytes(raw)), "garbled")
        except CaffeModelError as e:
            assert "garbled" in str(e)


def test_blob_shape_mismatch_with_data(tmp_path):
    blob = _Message()
    shape = _Message()
    shape.bytes_(1, _enc_varint(4))
    blob.message(7, shape)
    blob.bytes_(5, np.zeros(3, np.float32).tobytes())
    layer = _Message()
    layer.string(1, "x")
    layer.message(7, blob)
    path = tmp_path / "s.caffemodel"
    path.write_bytes(_net_bytes([layer]))
    with pytest.raises(CaffeModelError, match=r"s\.caffemodel.*needs 4 values but 3"):
        cm.read_caffemodel(path)


def test_v0_layer_rejected(tmp_path):
    layer = _Message()
    layer.string(4, "old")
    layer.message(1, _with_name("old"))
    path = tmp_path / "v0.caffemodel"
    path.write_bytes(_net_bytes([layer], v1=True))
    with pytest.raises(CaffeModelError, match="V0 format"):
        cm.read_caffemodel(path)


def test_missing_file():
    with pytest.raises(CaffeModelError, match="nope.caffemodel: cannot read"):
        cm.read_caffemodel("/nonexistent/nope.caffemodel")


# ------------------------------------------------------------ oracle: Caffe's caffe_pb2

def _caffe_python_or_skip():
    from refimpl.network import caffe_client as caffe_backend
    try:
        return str(caffe_backend.caffe_python())
    except caffe_backend.CaffeNotInstalled as e:
        unavailable("caffe", str(e))


def _run_caffe_pb2(script, *args):
    from refimpl.network.caffe_client import caffe_env
    exe = _caffe_python_or_skip()
    res = subprocess.run([exe, "-c", textwrap.dedent(script), *map(str, args)],
                         capture_output=True, text=True, env=caffe_env(), timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.caffe
@pytest.mark.parametrize("v1", [False, True])
def test_caffe_pb2_reads_what_we_write(tmp_path, v1):
    params = small_params()
    path = cm.write_caffemodel(tmp_path / "w.caffemodel", params, TYPES if not v1 else
                               {k: v for k, v in TYPES.items() if k != "data"}, v1=v1)
    out = _run_caffe_pb2("""
        import sys, json
        from caffe.proto import caffe_pb2
        net = caffe_pb2.NetParameter()
        net.ParseFromString(open(sys.argv[1], "rb").read())
        layers = net.layers if len(net.layers) else net.layer
        res = {}
        for l in layers:
            blobs = [[list(b.shape.dim) or [b.num, b.channels, b.height, b.width],
                      [float(x) for x in b.data]] for b in l.blobs]
            res[l.name] = [str(l.type), blobs]
        print(json.dumps(res))
    """, path)
    res = json.loads(out)
    for name, blobs in params.items():
        _, theirs = res[name]
        for (shape, data), orig in zip(theirs, blobs):
            assert int(np.prod(shape)) == orig.size
            np.testing.assert_array_equal(np.array(data, np.float32), orig.ravel())
    if v1:
        assert res["conv"][0] == "4" or res["conv"][0] == "CONVOLUTION"


@pytest.mark.caffe
def test_we_read_what_caffe_pb2_writes(tmp_path):
    """caffe_pb2 writes V1 and V2 nets with extra fields (params, include rules, ...)."""
    path = tmp_path / "pb2.caffemodel"
    _run_caffe_pb2("""
        import sys, numpy as np
        from caffe.proto import caffe_pb2
        net = caffe_pb2.NetParameter(name="pb2")
        net.input.append("data"); net.input_dim.extend([1, 3, 5, 5])
        l = net.layer.add(name="conv", type="Convolution", bottom=["data"], top=["conv"])
        l.convolution_param.num_output = 2; l.convolution_param.kernel_size.append(3)
        l.param.add(lr_mult=1.0); l.include.add(phase=caffe_pb2.TEST)
        b = l.blobs.add(); b.shape.dim.extend([2, 3, 3, 3])
        b.data.extend(np.arange(54, dtype=np.float32) * 0.25 - 3)
        b = l.blobs.add(); b.shape.dim.extend([2]); b.double_data.extend([1.0e-3, -7.5])
        l2 = net.layer.add(name="relu", type="ReLU", bottom=["conv"], top=["conv"])
        l2.relu_param.negative_slope = 0.0
        open(sys.argv[1], "wb").write(net.SerializeToString())
    """, path)
    model = cm.read_caffemodel(path)
    assert model.name == "pb2" and model.types == {"conv": "Convolution", "relu": "ReLU"}
    w, b = model.params["conv"]
    np.testing.assert_array_equal(w, (np.arange(54, dtype=np.float32) * 0.25 - 3)
                                  .reshape(2, 3, 3, 3))
    np.testing.assert_array_equal(b, np.array([1.0e-3, -7.5], np.float32))


@pytest.mark.caffe
def test_we_read_a_v1_net_like_bvlc_alexnet_2014(tmp_path):
    """The official file's layout: V1 `layers` with type enums, blobs_lr/weight_decay
    (fixed32 floats), layer params, include rules, a DATA layer, legacy 4-D blobs."""
    path = tmp_path / "v1.caffemodel"
    _run_caffe_pb2("""
        import sys, numpy as np
        from caffe.proto import caffe_pb2
        V1 = caffe_pb2.V1LayerParameter
        net = caffe_pb2.NetParameter(name="CaffeNet")
        d = net.layers.add(name="data", type=V1.DATA, top=["data", "label"])
        d.data_param.source = "ilsvrc12_train_leveldb"; d.data_param.batch_size = 256
        d.transform_param.crop_size = 227; d.transform_param.mirror = True
        d.include.add(phase=caffe_pb2.TRAIN)
        c = net.layers.add(name="conv1", type=V1.CONVOLUTION, bottom=["data"], top=["conv1"])
        c.blobs_lr.extend([1.0, 2.0]); c.weight_decay.extend([1.0, 0.0])
        c.convolution_param.num_output = 2; c.convolution_param.kernel_size.append(2)
        c.convolution_param.weight_filler.type = "gaussian"
        b = c.blobs.add(num=2, channels=3, height=2, width=2)
        b.data.extend(np.arange(24, dtype=np.float32) / 7)
        b = c.blobs.add(num=1, channels=1, height=1, width=2); b.data.extend([0.5, -1])
        net.layers.add(name="relu1", type=V1.RELU, bottom=["conv1"], top=["conv1"])
        f = net.layers.add(name="fc6", type=V1.INNER_PRODUCT, bottom=["conv1"], top=["fc6"])
        b = f.blobs.add(num=1, channels=1, height=3, width=8)
        b.data.extend(np.linspace(-1, 1, 24, dtype=np.float32))
        b = f.blobs.add(num=1, channels=1, height=1, width=3); b.data.extend([1, 2, 3])
        net.layers.add(name="loss", type=V1.SOFTMAX_LOSS, bottom=["fc6", "label"])
        open(sys.argv[1], "wb").write(net.SerializeToString())
    """, path)
    model = cm.read_caffemodel(path)
    assert model.format == "V1" and model.name == "CaffeNet"
    assert model.types == {"data": "Data", "conv1": "Convolution", "relu1": "ReLU",
                           "fc6": "InnerProduct", "loss": "SoftmaxWithLoss"}
    w, b = model.params["conv1"]
    np.testing.assert_array_equal(w, (np.arange(24, dtype=np.float32) / 7).reshape(2, 3, 2, 2))
    assert b.shape == (1, 1, 1, 2)
    w6, b6 = model.params["fc6"]
    assert w6.shape == (1, 1, 3, 8)  # legacy; load_alexnet_params reshapes such blobs
    assert cm._shape_fits(w6.shape, (3, 8)) and not cm._shape_fits(w6.shape, (8, 3))
    np.testing.assert_array_equal(b6.ravel(), [1, 2, 3])
