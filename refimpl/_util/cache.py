"""THE per-file feature cache: results of one extractor configuration, keyed by the
content of the file they were computed from.

    cache = FeatureCache("mfcc12_e", config_id)      # config_id names every setting
    value = cache.get(path)                          # None when absent (or damaged)
    cache.put(path, value)                           # an array, or a dict of arrays
    value = read_entry(path, load, check)            # any other cache's entries

Layout: <cache_dir>/features/<name>/<digest of config_id>/<SHA-256 of the file>.npy (.npz
for a dict), with config.txt naming the configuration in full. Keying on the content, not
the name, means a regenerated or moved file is never mistaken for another, and the same
audio under two names is computed once. Entries are written atomically; an entry that
cannot be read back (an empty or truncated file, a wrong shape) is reported with a
CacheWarning, removed and recomputed. Two processes may share one cache: an entry is only
ever replaced whole (refimpl._util.atomic), and both write the same values for one key.
So entries are renamed into place without an fsync each (atomic_path(durable=False)): on
the usual journalling filesystems (ext4's default data=ordered, XFS) a crash can leave an
entry empty or absent, which is then recomputed, and at the paper's scale (over 250 000
entries) the fsyncs alone would cost most of an hour.

A keyed cache (keyed=True) also stores each entry's key inside it (the SHA-256 of the
audio and the configuration, in a `_key` array) and serves an entry only when that key is
the one asked for: an entry copied over another of the same size, or left by another
configuration, is a miss with a CacheWarning, never another file's features.

A cache that cannot be written (a full disk, no permission) is not a reason to stop: the
first failed write is warned about once and the cache is read-only from then on.
"""
import warnings
import zipfile
from pathlib import Path

import numpy as np

from refimpl._util import locations
from refimpl._util.atomic import atomic_open, atomic_path
from refimpl._util.digest import content_digest, text_digest
from refimpl.errors import CacheWarning

__all__ = ["FeatureCache", "CacheWarning", "read_entry"]


_KEY = "_key"    # the array of a keyed entry that holds its key


class FeatureCache:
    def __init__(self, name, config_id, root=None, enabled=True, keyed=False):
        self.name = name
        self.config_id = config_id
        self.enabled = enabled
        self.keyed = keyed
        self.writable = True
        base = Path(root) if root is not None else locations.cache_dir()
        self.folder = base / "features" / name / text_digest(config_id)

    def _entry(self, path, suffix):
        return self.folder / (content_digest(path) + suffix)

    def get(self, path, check=None):
        """The cached value for the file at `path`, or None. `check(value)` may return a
        reason why a value read back is unusable (e.g. a wrong shape); such an entry, like
        one that cannot be read, is removed with a CacheWarning."""
        if not self.enabled:
            return None
        try:
            key = content_digest(path)
        except OSError:
            return None   # a file that cannot be read has no entry; computing it says why
        if self.keyed:       # its own key first, then the caller's check, on the value
            expected = self._key_text(key)
            inner = check

            def check(value):
                return _key_problem(value, expected) or (inner(value) if inner else None)
        for suffix, load in ((".npy", _load_npy), (".npz", _load_npz)):
            value = read_entry(self.folder / (key + suffix), load, check, about=f" for {path}")
            if value is not None:
                if self.keyed:
                    value.pop(_KEY)
                return value
        return None

    def _key_text(self, digest):
        return f"audio-sha256={digest} {self.config_id}"

    def put(self, path, value):
        """Store `value` (an array, or a dict of arrays) for the file at `path`."""
        if not (self.enabled and self.writable):
            return
        if self.keyed:
            if not isinstance(value, dict):
                raise TypeError("a keyed cache stores dicts of arrays")
            value = {**value, _KEY: np.array(self._key_text(content_digest(path)))}
        try:
            self._write(path, value)
        except OSError as e:
            self.writable = False
            warnings.warn(f"{e.filename or self.folder}: {e.strerror or e}; going on "
                          f"without writing the feature cache", CacheWarning, stacklevel=2)

    def _write(self, path, value):
        self._write_config()
        if isinstance(value, dict):
            with atomic_path(self._entry(path, ".npz"), durable=False) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, **value)
        else:
            with atomic_path(self._entry(path, ".npy"), durable=False) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, np.asarray(value))

    def _write_config(self):
        config = self.folder / "config.txt"
        if not config.exists():
            with atomic_open(config) as f:
                f.write(self.config_id + "\n")

    def __repr__(self):
        return f"FeatureCache({self.name!r}, {str(self.folder)!r})"


def _key_problem(value, expected):
    """Why a keyed entry is not the one asked for (None when it is)."""
    if not isinstance(value, dict) or _KEY not in value:
        return "it records no key"
    stored = str(value[_KEY])
    if stored == expected:
        return None
    audio, _, config = stored.partition(" ")
    want_audio = expected.partition(" ")[0]
    if audio != want_audio:
        return (f"it was made from other audio ({audio[:25]}..., this file has "
                f"{want_audio[13:25]}...)")
    return f"it was made with another configuration ({config[:60]}...)"


def _load_npy(entry):
    return np.load(entry, allow_pickle=False)


def _load_npz(entry):
    with np.load(entry, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# what reading back a damaged entry raises: a short or empty file (EOFError, ValueError),
# a zip cut short (BadZipFile), text that is not JSON (ValueError), JSON of another shape
# (TypeError, KeyError), a file that vanished or cannot be read (OSError)
_DAMAGED = (OSError, EOFError, ValueError, TypeError, KeyError, zipfile.BadZipFile)


def read_entry(entry, load, check=None, about=""):
    """THE way a cache entry is read back: load(entry), or None when it is absent. An
    entry that cannot be loaded, or whose value check(value) finds a reason against, is
    removed with a CacheWarning naming it (the caller recomputes it)."""
    entry = Path(entry)
    if not entry.is_file():
        return None
    try:
        value = load(entry)
        problem = check(value) if check else None
    except _DAMAGED as e:
        problem = f"unreadable ({type(e).__name__}: {e})"
    if problem is None:
        return value
    warnings.warn(f"{entry}: damaged cache entry{about}: {problem}; removed, recomputing",
                  CacheWarning, stacklevel=3)
    entry.unlink(missing_ok=True)
    return None
