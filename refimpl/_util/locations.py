"""Where things live: caches, the Caffe install, the shared data and the files that ship
with the package (network definitions, golden files, tables).

Each location can be moved with an environment variable, so a user can point the project
at their own copy of a corpus or keep caches elsewhere:

    REFIMPL_CACHE         regenerable data: weights, jars, feature caches, conditions
    REFIMPL_CAFFE_PREFIX  the folder `make caffe` (tools/install_caffe.sh) fills
    REFIMPL_ORACLES       the folder `make oracles` (tools/install_mpl_oracles.sh) fills
    REFIMPL_SHARED_DATA   real recordings (EmoDB, noise) provided beside the checkout

Run from a checkout (an editable install, or PYTHONPATH), the defaults are folders of the
checkout (.cache/, .caffe/prefix, ../shared/data) and weights/ and golden/ are read where
they are. Installed from a wheel, weights/ and golden/ travel inside the package
(refimpl/_assets/, put there by setup.py), the cache defaults to ~/.cache/refimpl and
Caffe's prefix to a folder inside it.
"""
import importlib.resources
import os
from pathlib import Path

__all__ = ["PACKAGE_DIR", "in_checkout", "cache_dir", "caffe_prefix", "oracles_dir", "shared_data",
           "conditions_dir", "weights_dir", "golden_dir", "package_data"]

PACKAGE_DIR = Path(__file__).resolve().parent.parent
_CHECKOUT = PACKAGE_DIR.parent


def in_checkout():
    """True when the package runs from the repository (its setup.py beside the package)."""
    return (_CHECKOUT / "setup.py").is_file() and (_CHECKOUT / "weights").is_dir()


def _env_path(name, default):
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def cache_dir():
    """Regenerable data: synthetic and downloaded weights, jars, feature caches."""
    if in_checkout():
        default = _CHECKOUT / ".cache"
    else:
        default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "refimpl"
    return _env_path("REFIMPL_CACHE", default)


def caffe_prefix():
    """Folder made by `make caffe` (tools/install_caffe.sh)."""
    default = (_CHECKOUT / ".caffe" / "prefix" if in_checkout()
               else cache_dir() / "caffe" / "prefix")
    return _env_path("REFIMPL_CAFFE_PREFIX", default)


def oracles_dir():
    """Folder made by `make oracles` (tools/install_mpl_oracles.sh): the matplotlib
    versions the image stage is checked against, each in its own environment."""
    default = _CHECKOUT / ".oracles" if in_checkout() else cache_dir() / "oracles"
    return _env_path("REFIMPL_ORACLES", default)


def shared_data():
    """Real recordings (EmoDB, noise) provided beside the checkout; never copied into git."""
    return _env_path("REFIMPL_SHARED_DATA", _CHECKOUT.parent / "shared" / "data")


def conditions_dir(corpus_name, seed=0):
    """Where the generated noisy and denoised audio of a corpus lives."""
    return cache_dir() / "conditions" / corpus_name / f"seed{int(seed)}"


def _asset_dir(name):
    """A folder of the repository's top level that the wheel carries as package data."""
    packaged = importlib.resources.files("refimpl") / "_assets" / name
    if packaged.is_dir():
        return Path(str(packaged))
    return _CHECKOUT / name


def weights_dir():
    """Network definitions and checksums (the repository's weights/)."""
    return _asset_dir("weights")


def golden_dir():
    """Golden outputs and their manifest (the repository's golden/)."""
    return _asset_dir("golden")


def package_data(name):
    """A table or config file of refimpl/data/."""
    return PACKAGE_DIR / "data" / name
