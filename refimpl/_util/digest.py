"""Digests: of files (the one helper every checksum in the package goes through), of
arrays, and of text used as cache keys."""
import hashlib
import os

import numpy as np

from refimpl._util.files import check_regular

__all__ = ["file_digest", "content_digest", "array_digest", "arrays_digest", "text_digest"]


def file_digest(path, algorithm="sha256", chunk=1 << 22):
    """Hex digest of a file's bytes, read in chunks (weights files are 244 MB). Only a
    regular file has one (an OSError naming the path otherwise): /dev/zero never ends."""
    check_regular(path)
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


_CONTENT = {}


def content_digest(path):
    """SHA-256 of a file's bytes, memoised within the process on (path, size, mtime):
    the key of every per-file cache entry, so a cache follows the content, not the name."""
    st = check_regular(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _CONTENT:
        _CONTENT[key] = file_digest(path)
    return _CONTENT[key]


def array_digest(a):
    """SHA-256 of an array's values, dtype and shape (C order)."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def arrays_digest(arrays):
    """SHA-256 of a sequence of arrays' shapes and bytes, in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def text_digest(text, length=16):
    """The first `length` hex digits of SHA-256 of a text (a short, stable cache key)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]
