"""Atomic file writing: a crash, SIGKILL or Ctrl-C never leaves a half-written output or
cache entry at its final name.

The data goes to a temporary file beside the target, is flushed to disk (fsync), and is
renamed onto the target only when the block finished without error; rename within one
folder is atomic on POSIX, and the fsync before it makes sure the name never points at
data the kernel had not written yet when the machine goes down: after a crash the target
holds the old content or the new, never a part.

A process killed while writing leaves its temporary file (`.NAME.XXXX.part`) behind. The
writer holds a lock (flock) on it for as long as it lives, so the next write of the same
target removes such leftovers that nobody holds (the kernel drops the lock of a dead
process), and a folder rewritten after a kill ends up with the same files as one written
without. A temporary file gets its `.part` name only once it is locked (it is made as
`.NAME.XXXX.new`, locked, then renamed; the lock stays with the file), so an unlocked
`.part` is always a dead writer's, however young: a rerun a moment after a kill cleans up
too. Only a `.new` file, unlocked for the microseconds between its creation and its lock,
is left alone until it is _LEFTOVER_AGE_S old.

The target must be a regular file or absent: a folder, device, FIFO or socket is refused
(a rename would replace a FIFO's reader or /dev/stdout by a plain file), and a symlink is
written through, atomically beside its target, so the link stays a link. An error while
writing (a full disk, a file-size limit) names the target, never the temporary file.
"""
import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

from refimpl._util.files import check_regular

__all__ = ["atomic_path", "atomic_open", "atomic_dir", "fsync_path"]

# A `.new` file (not yet locked) is a leftover once it is this old: a live writer locks and
# renames it within microseconds of its creation.
_LEFTOVER_AGE_S = 2.0


def fsync_path(path):
    """Flush a file's data (or a folder's entries) to the disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_folder(path):
    """Make the folder `path` goes in; an OSError naming `path` when a file is in the way
    (mkdir alone would say 'File exists' about that file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise NotADirectoryError(errno.ENOTDIR, f"cannot be written: {blocking} is a file, "
                                 "not a folder", str(path)) from None


def _target(path):
    """Where an output at `path` really goes: `path`, or a symlink's final target; an
    OSError naming `path` when that is a folder, device, FIFO or socket."""
    try:
        check_regular(path)
    except (FileNotFoundError, NotADirectoryError):
        pass                   # a new file (or a link to one), or a folder to be made
    except OSError as e:
        raise OSError(e.errno, f"cannot be written: {e.strerror}", str(path)) from None
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


# what writing a file's data raises without naming it (write() on a full disk, past the
# file-size limit or the quota, on a filesystem gone read-only)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO}


def _naming(error, path, tmp):
    """`error` (an OSError while writing `tmp`) as one that names the output `path`; an
    error about something else (another file, a socket) is left as it is."""
    if not (error.filename == str(tmp) or
            (error.filename is None and error.errno in _WRITE_ERRNOS)):
        return error
    return OSError(error.errno, f"cannot be written ({error.strerror or error})", str(path))


def _remove_leftovers(path):
    """Remove the temporary files of earlier writes of `path` whose writer is gone."""
    prefix = "." + path.name + "."
    now = time.time()
    try:
        candidates = [e for e in os.scandir(path.parent) if e.name.startswith(prefix)
                      and (e.name.endswith(".part") or e.name.endswith(".new"))]
    except OSError:
        return
    for entry in candidates:
        try:
            if entry.name.endswith(".new") and now - entry.stat().st_mtime < _LEFTOVER_AGE_S:
                continue        # maybe a live writer's, between its creation and its lock
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # fails while its writer lives
            os.unlink(entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)


def _locked_part(path):
    """(fd, name) of a new temporary file beside `path`, locked (flock, held until this
    process ends or closes fd) before it carries the `.part` name."""
    fd, new = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".new", dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        part = new[:-len(".new")] + ".part"
        if os.path.lexists(part):          # the same random name from an earlier writer
            raise FileExistsError(errno.EEXIST, "temporary name taken", part)
        os.rename(new, part)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(new)
        os.close(fd)
        raise
    return fd, part


@contextlib.contextmanager
def atomic_path(path, durable=True):
    """Yield a temporary path beside `path`; fsync it and rename it onto `path` only on
    success (the temporary file is removed on any failure). durable=False skips the fsync,
    for data that is checked when read back and can be made again (cache entries): an
    interrupted program still never leaves a half-written file under the name, only a crash
    of the machine can leave it empty; and the fsync is most of the cost of writing a small
    file (the benchmark tests/benchmarks/test_bench_cache.py compares the two)."""
    path = _target(Path(path))
    _make_folder(path)
    _remove_leftovers(path)
    fd, tmp = _locked_part(path)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield Path(tmp)
        if durable:
            fsync_path(tmp)
        _target(path)          # what was checked at the start may have changed since
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and (named := _naming(e, path, tmp)) is not e:
            raise named from e
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path, mode="w", durable=True, **kwargs):
    """open() whose result appears at `path` only once the block finished without error
    (durable: as atomic_path)."""
    with atomic_path(path, durable) as tmp:
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
