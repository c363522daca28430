"""refimpl.__version__: the installed distribution's, or, from a source tree that is not
installed, the one pyproject.toml names (read here by tomllib, the oracle)."""
import importlib
import tomllib
from importlib import metadata
from pathlib import Path

import refimpl
from refimpl._util import version

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())


def test_the_distribution_is_the_one_pyproject_names():
    assert version.DISTRIBUTION == PYPROJECT["project"]["name"]


def test_the_version_is_the_installed_distributions():
    assert refimpl.__version__ == metadata.version(PYPROJECT["project"]["name"])


def test_an_uninstalled_source_tree_reads_pyproject(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(metadata, "version", not_installed)
    try:
        assert importlib.reload(version).__version__ == PYPROJECT["project"]["version"]
    finally:
        monkeypatch.undo()
        importlib.reload(version)
