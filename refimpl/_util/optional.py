"""THE way the package reaches what is not always installed: a Python package imported
on first use (optional_import), or anything else that must be there (missing: the error
naming what needs it and how to install it).

    pyarrow = optional_import("pyarrow", "Parquet output")
    raise missing("java", "openXBOW", "apt-get install openjdk-17-jre-headless")

Either way the user reads one line: `WHY needs WHAT, which is not installed here: HOW`.
"""
import importlib
from types import ModuleType

from refimpl.errors import MissingDependency

__all__ = ["optional_import", "missing", "INSTALL"]

# how to install a module that is not part of the core requirements (by top-level name)
INSTALL = {
    "pyarrow": "pip install pyarrow",
    "dask": "pip install refimpl[dask]",
    "distributed": "pip install refimpl[dask]",
    "torch": "pip install -r requirements-torch.txt (or pip install -e '.[torch]')",
}


def missing(what: str, why: str, install: str, detail: str = "") -> MissingDependency:
    """The MissingDependency for `what`, absent here.

    Parameters
    ----------
    what : str
        The thing that is missing (a package, a program, a prepared environment).
    why : str
        What needs it (a feature, an output format, a module).
    install : str
        How to install it (a command).
    detail : str, optional
        The underlying error, appended in parentheses.

    Returns
    -------
    MissingDependency
        To be raised by the caller.
    """
    tail = f" ({detail})" if detail else ""
    return MissingDependency(f"{why} needs {what}, which is not installed here: {install}{tail}")


def optional_import(module: str, why: str, install: str | None = None) -> ModuleType:
    """Import `module`, or raise MissingDependency saying what needs it and how to
    install it.

    Parameters
    ----------
    module : str
        The dotted module name (e.g. "pyarrow.parquet").
    why : str
        What needs it, for the message (e.g. "Parquet output").
    install : str, optional
        How to install it; default: INSTALL's entry for the top-level package, else
        `pip install PACKAGE`.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingDependency
        The module (or something it needs) cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.partition(".")[0]
        how = install or INSTALL.get(top, f"pip install {top}")
        raise missing(top, why, how, str(e)) from e
