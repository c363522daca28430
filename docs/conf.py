"""Sphinx configuration of the documentation (`make docs`).

Pages are MyST Markdown (the generated tables of bad-input.md and performance.md are
Markdown tables their generators rewrite in place); the API reference is generated from
the docstrings of the names in `refimpl.__all__` (api.md, autosummary); code examples are
doctests (`make docs` runs sphinx.ext.doctest after the HTML build).
"""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))           # the checkout's refimpl, with its built C core

import refimpl  # noqa: E402

project = "Deep Spectrum reference implementation"
author = "the refimpl developers"
copyright = "2026, " + author
release = version = refimpl.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "numpydoc",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
templates_path = ["_templates"]
root_doc = "index"

# MyST: `{doctest}` and `{eval-rst}` fences, anchors for `page.md#section` links
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# The API reference: exactly the names of refimpl.__all__ (the public API), one page each.
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = True
autodoc_typehints = "none"             # the signature line shows the defaults
autodoc_default_options = {"members": False}

# numpydoc renders the docstrings; its validation is off (numpydoc_validation_checks is
# empty) while the public docstrings predate numpydoc's sections. Once they have
# Parameters / Returns, e.g. {"PR01", "PR02", "PR10", "RT01", "YD01"} makes a missing or
# misspelt parameter a build error (only documented objects are checked: the public API).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()


def _is_numpydoc(lines):
    """Whether a docstring has numpydoc sections (a title underlined with dashes)."""
    return any(title.strip() and set(rule.strip()) == {"-"} and len(rule.strip()) >= 3
               for title, rule in zip(lines, lines[1:]))


def show_plain_docstrings_as_written(app, what, name, obj, options, lines):
    """A docstring written as plain text, not as numpydoc or reST: its first paragraph
    (the summary) with reST's markup characters escaped, the rest as a literal block,
    so its aligned columns and `a -> b` lines read as they were written instead of
    failing as reST. Runs before numpydoc; a docstring with numpydoc sections is left
    to numpydoc."""
    if not lines or _is_numpydoc(lines):
        return
    blank = lines.index("") if "" in lines else len(lines)
    summary, body = lines[:blank], lines[blank + 1:]
    while body and not body[-1].strip():
        body.pop()
    escaped = [line.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`")
               .replace("|", "\\|").replace("_", "\\_") for line in summary]
    lines[:] = escaped + (["", "::", ""] + ["    " + line for line in body] + [""]
                          if body else [])


def setup(app):
    app.connect("autodoc-process-docstring", show_plain_docstrings_as_written, priority=100)

# Doctests: the cache (synthetic weights, per-file features) is the checkout's .cache/,
# as for `make run` and the tests; no network is used.
# the public API's docstrings are rendered on the API page, so their examples run here
# too: they are written as a user of `import refimpl` would, with the public names at hand
doctest_global_setup = """
import os, tempfile, pathlib
import numpy as np
import soundfile
from refimpl import *
"""

html_theme = "pydata_sphinx_theme"
html_title = "Deep Spectrum reference implementation"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []

# Without network access there is no intersphinx inventory of NumPy: the one NumPy type
# that reaches a signature (a dataclass's generated docstring, refimpl.Audio) stays text.
nitpick_ignore = [("py:class", "numpy.ndarray")]
