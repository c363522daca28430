"""How the command line talks about problems: one line each on stderr, prefixed `refimpl:`.

    refimpl: error: MESSAGE      the command stopped (exit status 2)
    refimpl: skipped MESSAGE     one file failed; the others' results came out (exit 1)
    refimpl: warning: MESSAGE    a RefimplWarning: the work went on

Every MESSAGE begins with the file (or option) it is about.
"""
import sys
import warnings

from refimpl.errors import RefimplWarning

__all__ = ["error", "skipped", "report_skipped", "one_line_warnings"]


def _one_line(message):
    return " ".join(str(message).split("\n")) if "\n" in str(message) else str(message)


def error(message):
    # A CorpusError lists one offending row per line: keep those lines as they are.
    print(f"refimpl: error: {message}", file=sys.stderr)


def skipped(message):
    print(f"refimpl: skipped {_one_line(message)}", file=sys.stderr)


def report_skipped(failed):
    """Print one line per (file, message) that failed; 1 (some failed) or 0."""
    for _, message in failed:
        skipped(message)
    return 1 if failed else 0


def _show(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, RefimplWarning):
        print(f"refimpl: warning: {_one_line(message)}", file=file or sys.stderr)
    else:
        _default_show(message, category, filename, lineno, file, line)


_default_show = warnings.showwarning


def one_line_warnings():
    """Print every RefimplWarning as one `refimpl: warning:` line, each time it occurs."""
    warnings.simplefilter("always", RefimplWarning)
    warnings.showwarning = _show
