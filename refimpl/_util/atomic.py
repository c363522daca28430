"""Atomic file writing: a crash, SIGKILL or Ctrl-C never leaves a half-written output or
cache entry at its final name.

The data goes to a temporary file beside the target, is flushed to disk (fsync), and is
renamed onto the target only when the block finished without error; rename within one
folder is atomic on POSIX, and the fsync makes sure the name never points at data the
kernel had not written yet when the machine goes down.
"""
import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_open", "fsync_path"]


def fsync_path(path):
    """Flush a file's data (or a folder's entries) to the disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, durable=True):
    """Yield a temporary path beside `path`; fsync it and rename it onto `path` only on
    success (the temporary file is removed on any failure). durable=False skips the fsync,
    for data that is checked when read back and can be made again (cache entries): an
    interrupted program still never leaves a half-written file under the name, only a crash
    of the machine can leave it empty; and the fsync is most of the cost of writing a small
    file (10.6 ms against 1.7 ms per 16 kB file, measured once on a 2-core VM)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the mode a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        if durable:
            fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode="w", durable=True, **kwargs):
    """open() whose result appears at `path` only once the block finished without error
    (durable: as atomic_path)."""
    with atomic_path(path, durable) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
