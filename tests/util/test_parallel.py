"""refimpl._util.parallel.map_files: results in order whatever the number of processes,
and an exception raised for one item reaches the caller, type and message (which names
the item) intact, from one process or from a worker."""
import os

import pytest

from refimpl._util.parallel import map_files


class ItemError(ValueError):
    """Raised by `square` for the item it cannot take."""


def square(item):
    if item == 5:
        raise ItemError(f"item {item}: cannot be squared here")
    return item * item, os.getpid()


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_come_back_in_order(jobs):
    out = map_files(square, [1, 2, 3, 4, 6, 7], jobs=jobs, progress=False)
    assert [v for v, _ in out] == [1, 4, 9, 16, 36, 49]
    if jobs == 2:
        assert os.getpid() not in {pid for _, pid in out}      # computed in workers


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_error_in_a_worker_reaches_the_caller_naming_the_item(jobs):
    with pytest.raises(ItemError, match="item 5: cannot be squared here"):
        map_files(square, range(10), jobs=jobs, progress=False)


def test_the_initializer_runs_in_every_worker(tmp_path):
    out = map_files(_read_marker, [str(tmp_path)] * 4, jobs=2, progress=False,
                    initializer=_write_marker, initargs=(str(tmp_path),))
    assert set(out) == {"ready"}


def _write_marker(folder):
    os.environ["REFIMPL_TEST_MARKER"] = "ready"


def _read_marker(folder):
    return os.environ.get("REFIMPL_TEST_MARKER")
