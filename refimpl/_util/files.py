"""What kind of file a path is, checked before anything reads or writes it.

Only regular files are read: a character device (/dev/zero), a FIFO or a socket would
make a reader block or run for ever (a digest of /dev/zero never ends), so such a path,
or a symlink to one, is refused with an OSError naming it and saying what it is (the
command line prints it as one line; a per-file reader skips just that file).

An output is refused before any work when it is one of the run's inputs (or the other
output): writing it would destroy the data the run reads.
"""
import errno
import os
import stat
from pathlib import Path

__all__ = ["file_kind", "check_regular", "same_file", "check_outputs"]

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


def file_kind(mode):
    """'a FIFO', 'a folder', ... for an st_mode that is not a regular file; None for one."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def check_regular(path, stat_result=None):
    """Refuse (OSError naming `path`) a path that is not a regular file, following
    symlinks; a missing path raises FileNotFoundError as open() would. Returns the
    os.stat result. Never opens the file (opening a FIFO blocks)."""
    st = stat_result if stat_result is not None else os.stat(path)
    kind = file_kind(st.st_mode)
    if kind == "a folder":
        raise IsADirectoryError(errno.EISDIR, "a folder, not a file", str(path))
    if kind is not None:
        raise OSError(errno.EINVAL, f"{kind}, not a regular file",
                      str(path))
    return st


def same_file(a, b):
    """Whether paths `a` and `b` name one file (through links, '..' or hard links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:      # one does not exist (yet): compare where the names lead
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs, inputs, error=ValueError):
    """Refuse, before any work, an output that is one of the inputs or another output.

    outputs: {what: path} (e.g. {"-o": out, "--reduced": red}); inputs: {what: [paths]}
    (e.g. {"input": files, "--labels": [labels]}). Raises `error` with one line naming
    the output, the option and the input it would destroy."""
    outs = [(what, Path(p)) for what, p in outputs.items() if p is not None]
    for i, (what, out) in enumerate(outs):
        for other_what, other in outs[i + 1:]:
            if same_file(out, other):
                raise error(f"{out}: {what} and {other_what} name the same file; "
                            "give them different paths")
        if not os.path.lexists(out):
            continue          # a new file cannot be one of the inputs
        for in_what, paths in inputs.items():
            for p in paths:
                if p is not None and same_file(out, p):
                    raise error(f"{out}: {what} is the same file as {in_what} ({p}); "
                                "writing it would destroy that: give another path")
