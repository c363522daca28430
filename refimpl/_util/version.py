"""The package's version: the installed distribution's (pyproject.toml's [project]
version, as pip recorded it), or, in a source tree that is not installed, the one its
pyproject.toml names."""
import re
from importlib import metadata
from pathlib import Path

__all__ = ["__version__", "DISTRIBUTION"]

DISTRIBUTION = "refimpl"     # [project] name in pyproject.toml


def _source_tree_version():
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return "0+unknown"
    project = text.partition("[project]")[2]
    found = re.search(r'^version\s*=\s*"([^"]+)"', project, re.MULTILINE)
    return found[1] if found else "0+unknown"


try:
    __version__ = metadata.version(DISTRIBUTION)
except metadata.PackageNotFoundError:     # run from a checkout, not installed
    __version__ = _source_tree_version()
