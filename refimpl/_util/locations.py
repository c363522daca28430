"""Where things live: the repository, caches, the Caffe install and the shared data.

Each location can be moved with an environment variable, so a user can point the project
at their own copy of a corpus or keep caches outside the checkout.
"""
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
WEIGHTS_DIR = REPO_ROOT / "weights"
GOLDEN_DIR = REPO_ROOT / "golden"


def _env_path(name, default):
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def cache_dir():
    """Regenerable data: synthetic weights, downloaded jars, feature caches."""
    return _env_path("REFIMPL_CACHE", REPO_ROOT / ".cache")


def caffe_prefix():
    """Folder made by `make caffe` (tools/install_caffe.sh)."""
    return _env_path("REFIMPL_CAFFE_PREFIX", REPO_ROOT / ".caffe" / "prefix")


def shared_data():
    """Real recordings (EmoDB, noise) provided beside the checkout; never copied into git."""
    return _env_path("REFIMPL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
