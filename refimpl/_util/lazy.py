"""THE lazy-attribute mechanism of the package: a module names the attributes it offers
and the modules that hold them; each is imported when it is first asked for.

    __getattr__, __dir__ = lazy_attributes(__name__, {"DeepSpectrum": "refimpl.features.api"})

What it is for: keeping `import refimpl` (and the command line) from importing what only
some callers need, scikit-learn above all (seconds to import).
"""
import importlib
import sys
from typing import Callable, Mapping

__all__ = ["lazy_attributes"]


def lazy_attributes(module_name: str, attributes: Mapping[str, str],
                    importer: Callable[[str], object] = importlib.import_module):
    """A module-level (__getattr__, __dir__) pair for `module_name`.

    Parameters
    ----------
    module_name : str
        The module that offers the attributes (pass ``__name__``).
    attributes : mapping of str to str
        Attribute name -> the dotted name of the module that defines it.
    importer : callable, optional
        How a module is imported (default importlib.import_module;
        refimpl._util.native.import_kernel for a compiled kernel).

    Returns
    -------
    (__getattr__, __dir__)
        __getattr__ imports the attribute's module on first use and keeps the value in
        the module's namespace, so it runs once per name; __dir__ lists the module's own
        names and the lazy ones.
    """
    attributes = dict(attributes)

    def __getattr__(name):
        if name not in attributes:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importer(attributes[name]), name)
        setattr(sys.modules[module_name], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[module_name])) | set(attributes))

    return __getattr__, __dir__
