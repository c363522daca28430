"""refimpl._util.lazy (the one lazy-attribute mechanism) and refimpl._util.optional (the
one way to reach what may not be installed), and what they are for: `import refimpl` and
the command line do not import scikit-learn or pandas."""
import subprocess
import sys
import types

import pytest

import refimpl
from refimpl._util.lazy import lazy_attributes
from refimpl._util.optional import missing, optional_import
from refimpl.errors import MissingDependency


@pytest.fixture
def offering_module(monkeypatch):
    """A module `offering` whose `sqrt` is math.sqrt, imported on first use."""
    module = types.ModuleType("offering")
    module.__getattr__, module.__dir__ = lazy_attributes("offering", {"sqrt": "math"})
    monkeypatch.setitem(sys.modules, "offering", module)
    return module


def test_a_lazy_attribute_is_imported_once_and_kept(offering_module):
    import math
    assert "sqrt" not in vars(offering_module) and "sqrt" in dir(offering_module)
    assert offering_module.sqrt is math.sqrt
    assert vars(offering_module)["sqrt"] is math.sqrt       # kept: __getattr__ runs once


def test_an_unknown_attribute_is_an_attribute_error(offering_module):
    with pytest.raises(AttributeError, match="module 'offering' has no attribute 'cbrt'"):
        offering_module.cbrt


def test_the_public_api_resolves_every_name():
    for name in refimpl.__all__:
        assert getattr(refimpl, name) is not None, name
    assert set(refimpl.__all__) <= set(dir(refimpl))


@pytest.mark.parametrize("statement", ["import refimpl", "import refimpl.cli",
                                       "import refimpl.features",
                                       "import refimpl.baselines.boaw, refimpl.baselines.opensmile"])
def test_scikit_learn_and_pandas_are_imported_only_where_used(statement):
    code = (f"{statement}; import sys; "
            f"print(sorted(m for m in ('sklearn', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", f"{statement} imports {out.strip()}"


def test_optional_import_returns_the_module():
    import json
    assert optional_import("json", "a test") is json


def test_a_missing_module_names_what_needs_it_and_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)      # `import pyarrow` now fails
    with pytest.raises(MissingDependency) as caught:
        optional_import("pyarrow", "Parquet output")
    assert str(caught.value).startswith(
        "Parquet output needs pyarrow, which is not installed here: pip install pyarrow (")
    assert isinstance(caught.value, ImportError)             # what callers used to catch


def test_a_module_without_an_entry_is_installed_by_its_name():
    with pytest.raises(MissingDependency, match="pip install refimpl_no_such_module"):
        optional_import("refimpl_no_such_module.sub", "a test")


def test_missing_says_the_same_for_what_is_not_a_module():
    error = missing("java", "openXBOW", "apt-get install openjdk-17-jre-headless")
    assert str(error) == ("openXBOW needs java, which is not installed here: apt-get install "
                          "openjdk-17-jre-headless")
