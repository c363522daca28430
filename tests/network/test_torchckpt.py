"""refimpl.network.torchckpt against PyTorch itself: files written by torch.save, read back without torch.

Oracle: torch.save (both its layouts) and torch.load. torch comes from requirements-torch.txt.
"""
import io
import os
import pickle
import struct

import numpy as np

from refimpl._util.digest import file_digest
import pytest

from oracles import import_or_unavailable
from refimpl.network import torchckpt
from refimpl.network.torchckpt import CheckpointError, load_state_dict


def _tricky_state(torch):
    """Tensors whose storage is not simply their contiguous bytes."""
    base = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5) / 7
    shared = torch.arange(100, dtype=torch.float64) * 0.5
    return {
        "contiguous": torch.randn(4, 6),
        "permuted": base.permute(3, 1, 0, 2),  # TF-style transposed kernel: strides not sorted
        "sliced_offset": shared[17:41],  # storage offset 17, shares storage
        "strided_view": shared[3:90:7],  # offset and stride 7
        "same_storage_2d": shared[10:70].view(6, 10).t(),  # transposed view of the same storage
        "expanded": torch.ones(3, 1).expand(3, 4),  # stride 0
        "scalar_long": torch.tensor(12345678901, dtype=torch.int64),
        "int32": torch.arange(-5, 5, dtype=torch.int32),
        "uint8": torch.arange(250, 256, dtype=torch.uint8),
        "int8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "int16": torch.tensor([-3, 300], dtype=torch.int16),
        "float16": torch.tensor([0.5, -1.25, 65504.0], dtype=torch.float16),
        "bfloat16": torch.tensor([1.5, -2.0, 3.0e38], dtype=torch.bfloat16),
        "bool": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
    }


def _expected(tensor, torch):
    if tensor.dtype == torch.bfloat16:
        return tensor.float().numpy()
    return tensor.contiguous().numpy()


@pytest.mark.parametrize("zip_layout", [False, True], ids=["legacy", "zip"])
def test_reads_what_torch_save_wrote(tmp_path, zip_layout):
    torch = import_or_unavailable("torch", "torch")
    torch.manual_seed(0)
    state = _tricky_state(torch)
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_layout)
    with open(path, "rb") as f:
        assert (f.read(2) == b"PK") == zip_layout
    got = load_state_dict(path)
    assert list(got) == list(state)
    for name, tensor in state.items():
        expected = _expected(tensor, torch)
        assert got[name].dtype == expected.dtype, name
        assert got[name].shape == expected.shape, name
        np.testing.assert_array_equal(got[name], expected, err_msg=name)
        assert got[name].flags["C_CONTIGUOUS"] and got[name].flags["WRITEABLE"], name  # a copy, not the file buffer


def test_nested_checkpoint_and_ordered_dict(tmp_path):
    torch = import_or_unavailable("torch", "torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    obj = {"epoch": 3, "state_dict": model.state_dict(), "names": ["a", "b"]}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    got = load_state_dict(path)
    assert got["epoch"] == 3 and got["names"] == ["a", "b"]
    assert list(got["state_dict"]) == list(model.state_dict())
    for name, tensor in model.state_dict().items():
        np.testing.assert_array_equal(got["state_dict"][name], tensor.numpy())


def _legacy_stream(payload_pickle, keys=(), storages=b""):
    out = io.BytesIO()
    for obj in (torchckpt.LEGACY_MAGIC_NUMBER, torchckpt.LEGACY_PROTOCOL_VERSION,
                {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(obj, out, protocol=2)
    out.write(payload_pickle)
    pickle.dump(list(keys), out, protocol=2)
    out.write(storages)
    return out.getvalue()


def test_refuses_foreign_globals_without_running_them(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_stream(pickle.dumps({"w": Evil()}, protocol=2)))
    with pytest.raises(CheckpointError, match=r"evil\.pth.*refusing to unpickle global (posix|os)\.system"):
        load_state_dict(path)
    assert not marker.exists()


# A tiny encoder of the pickle opcodes torch.save emits, to write legacy files by hand.
def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(n):
    return b"J" + struct.pack("<i", n)


def _tuple(*items):
    return b"(" + b"".join(items) + b"t"


def _tensor(key, numel, offset, size, stride, view=None):
    view_bytes = b"N" if view is None else _tuple(_str(view[0]), _int(view[1]), _int(view[2]))
    pid = _tuple(_str("storage"), _global("torch", "FloatStorage"), _str(key), _str("cpu"),
                 _int(numel), view_bytes) + b"Q"
    args = _tuple(pid, _int(offset), _tuple(*map(_int, size)), _tuple(*map(_int, stride)),
                  b"\x89", _global("collections", "OrderedDict") + b")R")
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state_pickle(**tensors):
    items = b"".join(_str(name) + t for name, t in tensors.items())
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + items + b"u."


def _storage_bytes(values):
    return struct.pack("<q", len(values)) + np.float32(values).tobytes()


def test_storage_count_mismatch_and_truncation(tmp_path):
    payload = _state_pickle(w=_tensor("0", 3, 0, [3], [1]))
    good = _legacy_stream(payload, ["0"], _storage_bytes([1, 2, 3]))
    path = tmp_path / "hand.pth"
    path.write_bytes(good)
    np.testing.assert_array_equal(load_state_dict(path)["w"], np.float32([1, 2, 3]))
    path.write_bytes(good[:-4])
    with pytest.raises(CheckpointError, match=r"hand\.pth: truncated inside storage"):
        load_state_dict(path)
    path.write_bytes(_legacy_stream(payload, ["0"], _storage_bytes([1, 2, 3, 4])))
    with pytest.raises(CheckpointError, match="holds 4 elements, the pickle says 3"):
        load_state_dict(path)
    path.write_bytes(good + b"junk")
    with pytest.raises(CheckpointError, match="4 unexpected bytes after the storages"):
        load_state_dict(path)


def test_legacy_storage_views_offsets_and_bounds(tmp_path):
    # Old torch.save wrote storage views as ('storage', type, root, location, root numel,
    # (view key, element offset, view numel)); the tensor's own offset applies inside the view.
    values = np.arange(10, dtype=np.float32)
    payload = _state_pickle(
        a=_tensor("root", 10, 1, [2, 2], [1, 2], view=("v", 3, 5)),  # view = values[3:8]
        b=_tensor("root", 10, 2, [3], [3]),  # values[2], values[5], values[8]
    )
    path = tmp_path / "views.pth"
    path.write_bytes(_legacy_stream(payload, ["root"], _storage_bytes(values)))
    state = load_state_dict(path)
    np.testing.assert_array_equal(state["a"], values[3:8][1:][np.array([[0, 2], [1, 3]])])
    np.testing.assert_array_equal(state["b"], values[[2, 5, 8]])
    bad = _state_pickle(c=_tensor("root", 10, 4, [3], [3]))  # would read element 10
    path.write_bytes(_legacy_stream(bad, ["root"], _storage_bytes(values)))
    with pytest.raises(CheckpointError, match=r"views\.pth: tensor .* reaches past its storage of 10"):
        load_state_dict(path)


def test_rejects_wrong_checksum_and_non_checkpoints(tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(b"hello world")
    with pytest.raises(CheckpointError, match=r"x\.pth: sha256 .* does not match"):
        load_state_dict(path, sha256="0" * 64)
    with pytest.raises(CheckpointError, match=r"x\.pth: not a PyTorch checkpoint"):
        load_state_dict(path)
    with pytest.raises(CheckpointError, match=r"missing\.pth: cannot read"):
        load_state_dict(tmp_path / "missing.pth")


def test_real_efficientnet_checkpoint_equals_torch_load(efficientnet_weights):
    torch = import_or_unavailable("torch", "torch")
    ours = load_state_dict(efficientnet_weights, sha256=file_digest(efficientnet_weights))
    theirs = torch.load(efficientnet_weights, map_location="cpu", weights_only=True)
    assert list(ours) == list(theirs) and len(ours) == 296
    for name, tensor in theirs.items():
        assert ours[name].shape == tuple(tensor.shape), name
        np.testing.assert_array_equal(ours[name], tensor.numpy(), err_msg=name)
    # The stored kernels really are non-contiguous views (TF HWIO transposed without a copy).
    assert not theirs["_conv_stem.weight"].is_contiguous()
