"""Command line: `refimpl COMMAND ...` (also `python -m refimpl`).

    program    main and build_parser: the parser of every command, and where an error
               becomes an exit status (see its docstring)
    messages   how errors, warnings and skipped files are printed
    options    argument types and option groups shared by several commands
    one module per command noun (extract, image, golden, demo, efficientnet, weights,
    corpus, denoiser, baselines, reproduce), each with register(subparsers)
"""
from refimpl.cli.program import build_parser, main

__all__ = ["main", "build_parser"]
