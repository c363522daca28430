"""Command line: `refimpl COMMAND ...` (also `python -m refimpl`).

The only place that parses arguments and the only place where an error becomes an exit
status: a RefimplError (a problem the user can act on: a file, an option, a missing
install) is printed as one line, `refimpl: error: ...`, with exit status 2; so is an
OSError (a file or folder the command cannot write or read: permission, disk full); a
command that finished but had some files fail returns 1 (each failed file named on its own
`refimpl: skipped` line); Ctrl-C ends with status 130 and no traceback. Warnings of the
package (refimpl.errors.RefimplWarning) are `refimpl: warning: ...` lines (cli.messages).

One module per command noun; each has register(subparsers), adding its subcommands with
`func(args) -> exit status` set as a default.
"""
import argparse
import sys

from refimpl.cli import (baselines, corpus, demo, denoiser, efficientnet, extract, golden, image,
                         messages, reproduce, weights)
from refimpl.errors import RefimplError

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

COMMAND_MODULES = [extract, image, golden, demo, efficientnet, weights, corpus, denoiser,
                   baselines, reproduce]


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line like every other error (the usage is
    one --help away)."""

    def error(self, message):
        self.exit(2, f"refimpl: error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = _Parser(prog="refimpl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    messages.one_line_warnings()
    try:
        return args.func(args) or 0
    except RefimplError as e:
        messages.error(e)
    except OSError as e:
        # what the package does not check itself: an output folder without write
        # permission, a full disk, an input that vanished; the OS names file and reason
        where = f"{e.filename}: " if e.filename else ""
        messages.error(f"{where}{e.strerror or e}")
    except KeyboardInterrupt:
        print("refimpl: interrupted (outputs are written atomically: nothing half-written "
              "was left)", file=sys.stderr)
        return 130
    return 2
