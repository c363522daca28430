import os

import pytest

from refimpl._util.atomic import atomic_open


def test_atomic_open_leaves_nothing_on_failure_and_a_normal_file_on_success(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and os.listdir(target.parent) == []
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target) as f:
            f.write("new")
            raise KeyboardInterrupt
    assert target.read_text() == "old"  # what was there before is not lost
    with atomic_open(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_outputs_are_flushed_to_disk_and_cache_entries_only_renamed(tmp_path, monkeypatch):
    import numpy as np
    from refimpl._util import atomic
    from refimpl._util.cache import FeatureCache
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with atomic_open(tmp_path / "out.csv") as f:
        f.write("x")
    assert len(synced) == 1
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"some audio")
    cache = FeatureCache("t", "config", root=tmp_path)
    cache.put(audio, np.arange(3.0))       # the first entry also writes config.txt (durable)
    cache.put(audio, {"x": np.arange(2)})
    assert len(synced) == 2 and np.array_equal(cache.get(audio), np.arange(3.0))
    # still atomic: an entry whose writing fails leaves nothing under its name
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(tmp_path / "e.npy", durable=False) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert not (tmp_path / "e.npy").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".e.npy")]
