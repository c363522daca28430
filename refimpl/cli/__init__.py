"""Command line: `refimpl SUBCOMMAND ...` (also `python -m refimpl`).

Each stage module that offers commands has a `register(subparsers)` function adding its
subcommands, each with `func(args) -> exit code` set as a default. COMMAND_MODULES lists
them; importing is lazy per module so a missing optional dependency of one stage does not
break the others.
"""
import argparse
import importlib
import sys

COMMAND_MODULES = [
    "refimpl.features",
    "refimpl.golden",
    "refimpl.demo",
    "refimpl.efficientnet",
    "refimpl.weights",
    "refimpl.corpus",
    "refimpl.denoise",
    "refimpl.boaw",
    "refimpl.lld",
    "refimpl.functionals",
    "refimpl.reproduce",
]


class UserError(Exception):
    """A problem with the user's input: printed as one clear line, exit status 2."""


def build_parser():
    parser = argparse.ArgumentParser(prog="refimpl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserError as e:
        print(f"refimpl: error: {e}", file=sys.stderr)
        return 2
