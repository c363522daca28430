"""Importing a compiled kernel of csrc/ (built by setup.py into the stage's package)."""
import importlib
import os

from refimpl._util.optional import missing

__all__ = ["import_kernel"]


def import_kernel(module):
    """Import the extension `module` (e.g. "refimpl.network._forward") with OpenMP's idle
    threads sleeping instead of spinning, or raise MissingDependency (refimpl._util.optional)
    saying how to build it.

    libgomp reads OMP_WAIT_POLICY once, when it is loaded. Its default lets an idle thread
    spin for a while before it sleeps; on a loaded machine (other processes on the same two
    cores) a spinning thread burns the time slice its partner needs, and batch 1 of the
    forward pass runs several times slower (benchmark: tests/benchmarks/test_bench_forward.py
    run beside another busy process). PASSIVE costs a few microseconds per parallel region
    on an idle machine. A policy the user set is kept; the variable is removed again
    afterwards so that child processes (the Caffe worker) do not inherit it."""
    user_set = "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ
    if not user_set:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise missing(f"{module} (a compiled kernel of csrc/)", "refimpl",
                      "run `make build` (or `python setup.py build_ext --inplace`) in the "
                      "repository, or reinstall with `pip install .`", f"import error: {e}") from e
    finally:
        if not user_set:
            os.environ.pop("OMP_WAIT_POLICY", None)
