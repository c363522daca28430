"""Read and write Caffe's `.caffemodel` files without Caffe and without protobuf.

A `.caffemodel` is one serialized protobuf `NetParameter` message (caffe.proto). Only a
small part of it matters for running a trained net: each layer's name, its type and its
parameter blobs. This module carries a minimal protobuf wire-format codec for exactly that
subset; every other field is skipped, whatever its wire type, so files written by any Caffe
version (or any other protobuf writer) are read.

Long because: one codec, reader and writer sharing the field tables below, with the
checks a file from anywhere needs (each one a bug the fuzzer found or a layout seen in the
wild); split, each half would need the other's tables.

Two layouts exist in the wild and both are read:

* V2 (Caffe >= 2015): `NetParameter.layer` (field 100) holds `LayerParameter`s whose type is
  a string ("Convolution") and whose blobs carry a `BlobShape` of any rank.
* V1 (e.g. the 2014 `bvlc_alexnet.caffemodel`): `NetParameter.layers` (field 2) holds
  `V1LayerParameter`s whose type is an enum (CONVOLUTION = 4) and whose blobs carry the
  legacy 4-D `num, channels, height, width` dims (an fc weight is 1x1x4096x9216).

The float payload of a blob is a packed repeated float field; it is turned into an array
with one `np.frombuffer`, so a 244 MB file parses in well under a second.

Field numbers (from Caffe's caffe.proto):
    NetParameter:      name=1 layers=2 input=3 input_dim=4 input_shape=8 layer=100
    LayerParameter:    name=1 type=2 bottom=3 top=4 param=6 blobs=7 include=8 phase=10
    V1LayerParameter:  layer=1 (V0) bottom=2 top=3 name=4 type=5 (enum) blobs=6
    BlobProto:         num=1 channels=2 height=3 width=4 data=5 diff=6 shape=7 double_data=8
    BlobShape:         dim=1 (packed int64)
"""
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refimpl._util.atomic import atomic_open
from refimpl._util.files import check_regular
from refimpl.errors import CaffeModelError
from refimpl.network.spec import LAYER_TYPES, PARAM_SHAPES

__all__ = [
    "CaffeModelError", "CaffeModel", "read_caffemodel", "write_caffemodel",
    "load_alexnet_params", "alexnet_params", "check_complete", "ALEXNET_PARAM_SHAPES",
    "V1_LAYER_TYPES",
]


# V1LayerParameter.LayerType enum values and the V2 type strings Caffe upgrades them to
# (caffe/src/caffe/util/upgrade_proto.cpp, UpgradeV1LayerType).
V1_LAYER_TYPES = {
    0: "", 35: "AbsVal", 1: "Accuracy", 30: "ArgMax", 2: "BNLL", 3: "Concat",
    37: "ContrastiveLoss", 4: "Convolution", 5: "Data", 39: "Deconvolution", 6: "Dropout",
    32: "DummyData", 7: "EuclideanLoss", 25: "Eltwise", 38: "Exp", 8: "Flatten",
    9: "HDF5Data", 10: "HDF5Output", 28: "HingeLoss", 11: "Im2col", 12: "ImageData",
    13: "InfogainLoss", 14: "InnerProduct", 15: "LRN", 29: "MemoryData",
    16: "MultinomialLogisticLoss", 34: "MVN", 17: "Pooling", 26: "Power", 18: "ReLU",
    19: "Sigmoid", 27: "SigmoidCrossEntropyLoss", 36: "Silence", 20: "Softmax",
    21: "SoftmaxWithLoss", 22: "Split", 33: "Slice", 23: "TanH", 24: "WindowData",
    31: "Threshold",
}
_V1_ENUM_OF_TYPE = {name: num for num, name in V1_LAYER_TYPES.items() if name}

# The parameter blobs of BVLC AlexNet (refimpl.network.spec), as (weights, bias) shapes.
ALEXNET_PARAM_SHAPES = {name: [tuple(shape) for shape in shapes]
                        for name, shapes in PARAM_SHAPES.items()}
ALEXNET_LAYER_TYPES = {name: LAYER_TYPES[name] for name in ALEXNET_PARAM_SHAPES}

# Protobuf wire types.
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


@dataclass
class CaffeModel:
    """What a .caffemodel holds that a forward pass needs.

    params: layer name -> its blobs (float32 arrays in the stored shape; legacy V1 blobs
            keep their 4-D num x channels x height x width shape), only layers with blobs.
    types:  layer name -> type string ("Convolution"; V1 enums are translated), all layers.
    order:  layer names in file order.
    """
    name: str = ""
    params: dict = field(default_factory=dict)
    types: dict = field(default_factory=dict)
    order: list = field(default_factory=list)
    format: str = "V2"


# --------------------------------------------------------------------------- decoding

class _Truncated(Exception):
    pass


class _Malformed(Exception):
    pass


def _varint(buf, pos, end):
    """Decode a base-128 varint at buf[pos:]; return (value, new position)."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _Truncated("varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("varint longer than 10 bytes")


def _fields(buf, pos, end):
    """Iterate (field number, wire type, value, value end) over one message's fields.

    For length-delimited fields `value` is the start offset of the payload (its end is the
    4th item); for varints the integer; for fixed32/64 the start offset. Groups (deprecated
    but legal) are skipped including their nested content.
    """
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wtype = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wtype == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wtype, value, pos
        elif wtype == _LEN:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise _Truncated(f"field {number} claims {length} bytes, "
                                 f"only {end - pos} remain")
            yield number, wtype, pos, pos + length
            pos += length
        elif wtype == _I32:
            if pos + 4 > end:
                raise _Truncated("fixed32 runs past the end")
            yield number, wtype, pos, pos + 4
            pos += 4
        elif wtype == _I64:
            if pos + 8 > end:
                raise _Truncated("fixed64 runs past the end")
            yield number, wtype, pos, pos + 8
            pos += 8
        elif wtype == _SGROUP:
            pos = _skip_group(buf, pos, end, number)
        else:  # 4 (an end-group without a start) or the undefined 6 and 7
            raise _Malformed(f"invalid wire type {wtype} for field {number}")


def _skip_group(buf, pos, end, number):
    """Skip a group's content up to and including its matching end-group tag."""
    while True:
        if pos >= end:
            raise _Truncated(f"group {number} is not closed")
        key, pos = _varint(buf, pos, end)
        n, wtype = key >> 3, key & 7
        if wtype == _EGROUP:
            if n != number:
                raise _Malformed(f"group {number} closed by end-group {n}")
            return pos
        if wtype == _VARINT:
            _, pos = _varint(buf, pos, end)
        elif wtype == _LEN:
            length, pos = _varint(buf, pos, end)
            pos += length
        elif wtype == _I32:
            pos += 4
        elif wtype == _I64:
            pos += 8
        elif wtype == _SGROUP:
            pos = _skip_group(buf, pos, end, n)
        else:
            raise _Malformed(f"invalid wire type {wtype} inside group {number}")
        if pos > end:
            raise _Truncated(f"group {number} runs past the end")


def _string(buf, start, stop):
    try:
        return bytes(buf[start:stop]).decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed("a string field is not UTF-8") from None


def _packed_or_single(buf, wtype, start, stop, dtype, fixed_wtype, size):
    """A repeated fixed-width field occurrence: packed (one LEN field) or a single value."""
    if wtype == _LEN:
        if (stop - start) % size:
            raise _Malformed("packed float data length is not a multiple of the item size")
        return np.frombuffer(buf, dtype=dtype, count=(stop - start) // size, offset=start)
    if wtype == fixed_wtype:
        return np.frombuffer(buf, dtype=dtype, count=1, offset=start)
    raise _Malformed(f"unexpected wire type {wtype} for a float field")


def _unpacked_run(buf, pos, end, tag, size, dtype):
    """Fast path for a long run of unpacked repeated fixed-width fields.

    Protobuf parsers must accept `repeated float data = 5` written unpacked (tag byte, then
    4 bytes, again and again). Reading them one by one in Python would take minutes for an
    fc layer, so read the whole run with a strided NumPy view. Returns (values, new pos).
    """
    step = 1 + size
    n = (end - pos) // step
    rows = np.frombuffer(buf, dtype=np.uint8, count=n * step, offset=pos).reshape(n, step)
    not_tag = np.flatnonzero(rows[:, 0] != tag)
    k = int(not_tag[0]) if not_tag.size else n
    values = rows[:k, 1:].copy().view(dtype).reshape(-1)
    return values, pos + k * step


def _decode_blob(buf, start, stop):
    """BlobProto -> float32 array in its stored shape (legacy dims give 4-D)."""
    shape = None
    legacy = {}
    data_parts = []
    double_parts = []
    pos = start
    while pos < stop:
        # Peek for runs of unpacked floats/doubles (single-byte tags 0x2d and 0x41).
        tag = buf[pos]
        if tag == (5 << 3 | _I32) and stop - pos >= 10 and buf[pos + 5] == tag:
            values, pos = _unpacked_run(buf, pos, stop, tag, 4, "<f4")
            data_parts.append(values)
            continue
        if tag == (8 << 3 | _I64) and stop - pos >= 18 and buf[pos + 9] == tag:
            values, pos = _unpacked_run(buf, pos, stop, tag, 8, "<f8")
            double_parts.append(values)
            continue
        field = next(_fields(buf, pos, stop), None)
        if field is None:   # a group (skipped) ran to the end: no field left (tests/fuzz)
            break
        number, wtype, value, pos = field
        if number == 5:
            data_parts.append(_packed_or_single(buf, wtype, value, pos, "<f4", _I32, 4))
        elif number == 8:
            double_parts.append(_packed_or_single(buf, wtype, value, pos, "<f8", _I64, 8))
        elif number == 7 and wtype == _LEN:
            shape = _decode_blob_shape(buf, value, pos)
        elif number in (1, 2, 3, 4) and wtype == _VARINT:
            legacy[number] = _int32(value)
    # Caffe's Blob::FromProto prefers double_data when present.
    parts = double_parts if double_parts else data_parts
    data = (np.concatenate(parts) if len(parts) > 1 else parts[0]) if parts else \
        np.zeros(0, np.float32)
    data = data.astype(np.float32, copy=True)  # own, aligned, native float32
    if shape is None:
        # Legacy dims default to 0 in proto2 when absent; Caffe treats a blob with none of
        # them as 0-sized. An all-legacy blob keeps its 4-D shape.
        if legacy:
            shape = tuple(legacy.get(i, 0) for i in (1, 2, 3, 4))
        else:
            shape = (data.size,) if data.size else (0,)
    # Python's integers: int64's product wraps around, and a shape whose product wraps to
    # the number of stored values would pass (found by tests/fuzz, issue 21)
    count = math.prod(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise _Malformed(f"negative blob dimension in shape {shape}")
    # (0, 2**62) holds no values, but numpy cannot make its shape either
    if math.prod(int(d) for d in shape if d) > _MAX_COUNT:
        raise _Malformed(f"blob shape {tuple(shape)} is larger than Caffe allows "
                         f"({_MAX_COUNT} values)")
    if count != data.size:
        raise _Malformed(f"blob shape {tuple(shape)} needs {count} values "
                         f"but {data.size} are stored")
    return data.reshape(shape)


# Caffe's Blob refuses more values than an int holds (CHECK_LE(count_, INT_MAX))
_MAX_COUNT = 2**31 - 1


def _int32(v):
    """A varint-encoded int32 (negative values are sign-extended to 64 bits)."""
    return v - (1 << 64) if v >= 1 << 63 else v


def _decode_blob_shape(buf, start, stop):
    dims = []
    for number, wtype, value, end in _fields(buf, start, stop):
        if number != 1:
            continue
        if wtype == _VARINT:
            dims.append(_int32(value))
        elif wtype == _LEN:
            pos = value
            while pos < end:
                d, pos = _varint(buf, pos, end)
                dims.append(_int32(d))
        else:
            raise _Malformed("BlobShape.dim has a wrong wire type")
    return tuple(dims)


def _decode_layer(buf, start, stop, v1):
    """One LayerParameter (v1=False) or V1LayerParameter -> (name, type, [blobs])."""
    name_field, type_field, blobs_field = (4, 5, 6) if v1 else (1, 2, 7)
    name, ltype, blobs = "", "", []
    for number, wtype, value, end in _fields(buf, start, stop):
        if number == name_field and wtype == _LEN:
            name = _string(buf, value, end)
        elif number == type_field:
            if v1 and wtype == _VARINT:
                ltype = V1_LAYER_TYPES.get(value, f"V1_ENUM_{value}")
            elif not v1 and wtype == _LEN:
                ltype = _string(buf, value, end)
        elif number == blobs_field and wtype == _LEN:
            blobs.append(_decode_blob(buf, value, end))
        elif v1 and number == 1 and wtype == _LEN:
            raise _Malformed(f"layer {name or '?'} is in the V0 format (before 2014); "
                             "upgrade it with Caffe's upgrade_net_proto_binary")
    return name, ltype, blobs


def parse_caffemodel_bytes(buf, source="<bytes>"):
    """Parse the bytes of a serialized NetParameter into a CaffeModel."""
    model = CaffeModel()
    end = len(buf)
    seen_v1 = seen_v2 = False
    try:
        for number, wtype, value, stop in _fields(buf, 0, end):
            if number == 1 and wtype == _LEN:
                model.name = _string(buf, value, stop)
            elif number in (2, 100) and wtype == _LEN:
                v1 = number == 2
                seen_v1 |= v1
                seen_v2 |= not v1
                name, ltype, blobs = _decode_layer(buf, value, stop, v1)
                if name in model.types and (blobs or model.params.get(name)):
                    raise _Malformed(f"layer name {name!r} occurs twice")
                model.types[name] = ltype
                model.order.append(name)
                if blobs:
                    model.params[name] = blobs
            elif number in (2, 100):
                raise _Malformed(f"field {number} (layers) has wire type {wtype}")
    except _Truncated as e:
        raise CaffeModelError(f"{source}: truncated or not a caffemodel ({e})") from None
    except _Malformed as e:
        raise CaffeModelError(f"{source}: not a valid caffemodel ({e})") from None
    if not model.order:
        raise CaffeModelError(f"{source}: not a caffemodel (no layers found in "
                              f"{end} bytes)")
    if seen_v1 and seen_v2:
        raise CaffeModelError(f"{source}: mixes V1 'layers' and V2 'layer' fields")
    model.format = "V1" if seen_v1 else "V2"
    return model


def read_caffemodel(path):
    """Read a .caffemodel (V1 or V2) -> CaffeModel(name, params, types, order, format).

    Raises CaffeModelError (a ValueError) naming the file when it is missing, truncated or
    not a NetParameter.
    """
    path = Path(path)
    try:
        check_regular(path)      # /dev/zero would be read until memory runs out
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise CaffeModelError(f"{path}: cannot read ({e.strerror})") from None
    return parse_caffemodel_bytes(memoryview(buf), source=str(path))


def check_complete(path):
    """Raise CaffeModelError unless `path` is a whole NetParameter with layers: its
    top-level fields are walked through a memory map without decoding the blobs (a
    quick test for a file cut short, e.g. a cached copy)."""
    import mmap
    path = Path(path)
    try:
        check_regular(path)
        with open(path, "rb") as f:
            if f.seek(0, 2) == 0:
                raise CaffeModelError(f"{path}: empty file")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                view = memoryview(m)
                try:
                    layers = sum(number in (2, 100) for number, *_ in _fields(view, 0, len(m)))
                except _Truncated as e:
                    raise CaffeModelError(f"{path}: truncated or not a caffemodel ({e})") \
                        from None
                except _Malformed as e:
                    raise CaffeModelError(f"{path}: not a valid caffemodel ({e})") from None
                finally:
                    view.release()
    except OSError as e:
        raise CaffeModelError(f"{path}: cannot read ({e.strerror})") from None
    if not layers:
        raise CaffeModelError(f"{path}: not a caffemodel (no layers)")


# --------------------------------------------------------------------------- encoding

def _enc_varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(number, wtype):
    return _enc_varint(number << 3 | wtype)


class _Message:
    """An encoded message as a list of byte chunks (large payloads are not copied)."""

    def __init__(self):
        self.chunks = []
        self.size = 0

    def _add(self, b):
        self.chunks.append(b)
        self.size += len(b)

    def varint(self, number, value):
        self._add(_key(number, _VARINT) + _enc_varint(value))

    def bytes_(self, number, payload):
        self._add(_key(number, _LEN) + _enc_varint(len(payload)))
        self._add(payload)

    def string(self, number, text):
        self.bytes_(number, text.encode("utf-8"))

    def message(self, number, sub):
        self._add(_key(number, _LEN) + _enc_varint(sub.size))
        self.chunks.extend(sub.chunks)
        self.size += sub.size


def _encode_blob(array, legacy):
    a = np.ascontiguousarray(array, dtype="<f4")
    blob = _Message()
    if legacy:
        if a.ndim > 4:
            raise ValueError(f"a V1 blob has at most 4 dims, got shape {a.shape}")
        dims = (1,) * (4 - a.ndim) + a.shape
        for number, d in zip((1, 2, 3, 4), dims):
            blob.varint(number, d)
    else:
        shape = _Message()
        shape.bytes_(1, b"".join(_enc_varint(d) for d in a.shape))
        blob.message(7, shape)
    blob.bytes_(5, memoryview(a).cast("B"))
    return blob


def write_caffemodel(path, params, layer_types=None, v1=False, name="", order=None):
    """Write `params` (layer name -> list of arrays) as a .caffemodel Caffe can load.

    layer_types: layer name -> type string ("Convolution"); defaults to AlexNet's types for
    AlexNet's layer names. v1=True writes the 2014 layout (V1 `layers`, type enums, legacy
    4-D dims) like the original bvlc_alexnet.caffemodel. Layers without blobs may be
    listed in layer_types/order and are written without blobs. The file appears atomically.
    """
    layer_types = dict(layer_types or {})
    names = list(order) if order is not None else list(
        dict.fromkeys(list(layer_types) + list(params)))
    net = _Message()
    if name:
        net.string(1, name)
    for lname in names:
        ltype = layer_types.get(lname) or ALEXNET_LAYER_TYPES.get(lname)
        if not ltype:
            raise ValueError(f"no layer type given for layer {lname!r}")
        layer = _Message()
        if v1:
            if ltype not in _V1_ENUM_OF_TYPE:
                raise ValueError(f"layer type {ltype!r} has no V1 enum value")
            layer.string(4, lname)
            layer.varint(5, _V1_ENUM_OF_TYPE[ltype])
            for arr in params.get(lname, []):
                layer.message(6, _encode_blob(arr, legacy=True))
            net.message(2, layer)
        else:
            layer.string(1, lname)
            layer.string(2, ltype)
            for arr in params.get(lname, []):
                layer.message(7, _encode_blob(arr, legacy=False))
            net.message(100, layer)
    with atomic_open(path, "wb") as f:
        for chunk in net.chunks:
            f.write(chunk)
    return Path(path)


# --------------------------------------------------------------------------- AlexNet

def _shape_fits(stored, expected):
    """Caffe's Blob::ShapeEquals: a legacy 4-D blob matches when padded with leading 1s."""
    stored, expected = tuple(stored), tuple(expected)
    if stored == expected:
        return True
    if len(stored) == 4 and len(expected) <= 4:
        return stored == (1,) * (4 - len(expected)) + expected
    return False


def load_alexnet_params(path_or_model):
    """The AlexNet parameters from a .caffemodel, checked and in canonical shapes.

    Returns layer name -> (weights, bias) as float32 arrays with the shapes of
    ALEXNET_PARAM_SHAPES (legacy 1x1xMxK blobs are reshaped). Raises CaffeModelError naming
    the file and the layer when a layer is missing, a blob has the wrong shape or holds
    NaN or infinite values.
    """
    if isinstance(path_or_model, CaffeModel):
        model, source = path_or_model, "<model>"
    else:
        model, source = read_caffemodel(path_or_model), str(path_or_model)
    missing = [n for n in ALEXNET_PARAM_SHAPES if n not in model.params]
    if missing:
        have = ", ".join(model.params) or "none"
        raise CaffeModelError(f"{source}: not an AlexNet caffemodel: layer(s) "
                              f"{', '.join(missing)} missing (layers with weights: {have})")
    out = {}
    for lname, shapes in ALEXNET_PARAM_SHAPES.items():
        blobs = model.params[lname]
        if len(blobs) != len(shapes):
            raise CaffeModelError(f"{source}: layer {lname} has {len(blobs)} blobs, "
                                  f"AlexNet needs {len(shapes)} (weights and bias)")
        arrays = []
        for i, (blob, shape) in enumerate(zip(blobs, shapes)):
            if not _shape_fits(blob.shape, shape):
                what = "weights" if i == 0 else "bias"
                raise CaffeModelError(f"{source}: layer {lname} {what} have shape "
                                      f"{tuple(blob.shape)}, AlexNet needs {shape}")
            # NaN or inf in a layer would come out as NaN features (or be turned into 0
            # without a word by a ReLU); such weights are refused, naming the layer
            bad = blob.size - np.count_nonzero(np.isfinite(blob))
            if bad:
                what = "weights" if i == 0 else "bias"
                raise CaffeModelError(f"{source}: layer {lname} {what} hold {bad} NaN or "
                                      f"infinite value(s)")
            arrays.append(blob.reshape(shape))
        out[lname] = tuple(arrays)
    return out


def alexnet_params(weights):
    """A caffemodel path, a CaffeModel, or load_alexnet_params' dict -> {layer: (weights,
    bias)} as float32 C-contiguous arrays: what every forward pass takes. A dict lacking a
    layer is refused with a ValueError naming it."""
    if not isinstance(weights, dict):
        weights = load_alexnet_params(weights)
    missing = [name for name in ALEXNET_PARAM_SHAPES if name not in weights]
    if missing:
        raise ValueError(f"AlexNet parameters lack layer(s) {', '.join(missing)}")
    return {name: tuple(np.ascontiguousarray(a, dtype=np.float32) for a in weights[name])
            for name in ALEXNET_PARAM_SHAPES}
