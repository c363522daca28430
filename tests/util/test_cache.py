"""refimpl._util.cache: an entry that cannot be right (truncated, garbled, another file's
or another configuration's) is removed with a CacheWarning and recomputed, never served."""
import json
import shutil

import numpy as np
import pytest

from refimpl._util.cache import FeatureCache, read_entry
from refimpl._util.digest import content_digest
from refimpl.errors import CacheWarning

VALUE = np.arange(12, dtype=np.float32).reshape(3, 4)


def features_of(path):
    """What the stand-in extractor computes for a file: its bytes as float32 (3 x 4)."""
    return np.frombuffer(path.read_bytes()[:48].ljust(48, b"\0"), np.float32).reshape(3, 4)


def through(cache, path, calls):
    """The way every extractor uses the cache: a miss is computed and stored."""
    value = cache.get(path)
    if value is None:
        calls.append(path)
        value = features_of(path)
        cache.put(path, value)
    return value


@pytest.fixture
def audio(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(bytes(range(48)))
    return path


def entry_of(cache, path, suffix=".npy"):
    return cache.folder / (content_digest(path) + suffix)


def test_a_stored_entry_is_served_without_computing(tmp_path, audio):
    cache, calls = FeatureCache("demo", "cfg 1", root=tmp_path / "c"), []
    first = through(cache, audio, calls)
    again = through(cache, audio, calls)
    assert calls == [audio] and np.array_equal(first, again)
    assert (cache.folder / "config.txt").read_text() == "cfg 1\n"


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbled"])
def test_a_damaged_entry_is_recomputed_not_served(tmp_path, audio, damage):
    cache, calls = FeatureCache("demo", "cfg 1", root=tmp_path / "c"), []
    through(cache, audio, calls)
    entry = entry_of(cache, audio)
    data = entry.read_bytes()
    entry.write_bytes({"truncated": data[:len(data) - 10], "empty": b"",
                       "garbled": bytes(255 - b for b in data)}[damage])
    with pytest.warns(CacheWarning, match="damaged cache entry"):
        value = through(cache, audio, calls)
    assert calls == [audio, audio]                      # computed again
    assert np.array_equal(value, features_of(audio))
    assert np.array_equal(np.load(entry), features_of(audio))   # and stored whole again


def test_a_damaged_npz_entry_is_recomputed(tmp_path, audio):
    cache = FeatureCache("demo", "cfg 1", root=tmp_path / "c")
    cache.put(audio, {"times": np.arange(3.0), "features": VALUE})
    entry = entry_of(cache, audio, ".npz")
    entry.write_bytes(entry.read_bytes()[:40])          # a zip cut short
    with pytest.warns(CacheWarning, match="unreadable"):
        assert cache.get(audio) is None
    assert not entry.exists()


def test_a_value_the_check_refuses_is_removed(tmp_path, audio):
    cache = FeatureCache("demo", "cfg 1", root=tmp_path / "c")
    cache.put(audio, VALUE[:2])                          # a wrong shape, as from a bug

    def check(value):
        return None if value.shape == (3, 4) else f"shape {value.shape}"
    with pytest.warns(CacheWarning, match=r"shape \(2, 4\)"):
        assert cache.get(audio, check=check) is None
    assert not entry_of(cache, audio).exists()


def test_a_keyed_cache_refuses_another_files_entry(tmp_path, audio):
    """An entry copied over another's name (same size, readable) is a miss, not another
    file's features."""
    other = tmp_path / "b.wav"
    other.write_bytes(bytes(range(100, 148)))
    cache, calls = FeatureCache("demo", "cfg 1", root=tmp_path / "c", keyed=True), []
    cache.put(audio, {"features": features_of(audio)})
    cache.put(other, {"features": features_of(other)})
    shutil.copyfile(entry_of(cache, other, ".npz"), entry_of(cache, audio, ".npz"))
    with pytest.warns(CacheWarning, match="made from other audio"):
        assert cache.get(audio) is None
    got = cache.get(other)
    assert np.array_equal(got["features"], features_of(other)) and "_key" not in got


def test_a_keyed_cache_refuses_another_configurations_entry(tmp_path, audio):
    old = FeatureCache("demo", "cfg 1", root=tmp_path / "c", keyed=True)
    new = FeatureCache("demo", "cfg 2", root=tmp_path / "c", keyed=True)
    old.put(audio, {"features": VALUE})
    new.folder.mkdir(parents=True)
    shutil.copyfile(entry_of(old, audio, ".npz"), entry_of(new, audio, ".npz"))
    with pytest.warns(CacheWarning, match="another configuration"):
        assert new.get(audio) is None


def test_read_entry_reports_a_load_error_and_removes_the_entry(tmp_path):
    entry = tmp_path / "x.json"
    entry.write_text("{not json")

    def load(path):
        return json.loads(path.read_text())
    with pytest.warns(CacheWarning, match="x.json: damaged cache entry"):
        assert read_entry(entry, load) is None
    assert not entry.exists()
    assert read_entry(entry, load) is None              # absent: a plain miss, no warning


def test_a_cache_that_cannot_be_written_warns_once_and_goes_on(tmp_path, audio):
    blocker = tmp_path / "c"
    blocker.write_text("a file where the cache folder should be")
    cache, calls = FeatureCache("demo", "cfg 1", root=blocker), []
    with pytest.warns(CacheWarning, match="without writing the feature cache"):
        first = through(cache, audio, calls)
    assert np.array_equal(first, features_of(audio)) and not cache.writable
