"""Atomic file writing: a crash, SIGKILL or Ctrl-C never leaves a half-written output or
cache entry at its final name.

The data goes to a temporary file beside the target, is flushed to disk (fsync), and is
renamed onto the target only when the block finished without error; rename within one
folder is atomic on POSIX, and the fsync makes sure the name never points at data the
kernel had not written yet when the machine goes down.
"""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_open", "atomic_dir", "fsync_path"]


def fsync_path(path):
    """Flush a file's data (or a folder's entries) to the disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; fsync it and rename it onto `path` only on
    success (the temporary file is removed on any failure)."""
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
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """open() whose result appears at `path` only once the block finished without error."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a new empty folder beside `path`; on success it replaces `path` (the old
    folder is renamed aside, the new one renamed in, then the old one deleted), on failure
    it is deleted and `path` is left as it was. Readers never see a half-written folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix="." + path.name + ".", suffix=".new", dir=path.parent))
    os.chmod(new, 0o777 & ~_umask())
    aside = None
    try:
        yield new
        if path.exists():
            aside = Path(tempfile.mkdtemp(prefix="." + path.name + ".", suffix=".old",
                                          dir=path.parent))
            os.rename(path, aside / path.name)
        os.rename(new, path)
    except BaseException:
        if aside is not None and not path.exists():   # the swap itself failed: put it back
            os.rename(aside / path.name, path)
        shutil.rmtree(new, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask
