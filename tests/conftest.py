import pytest

from refimpl import paths


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long suites (all EmoDB files, big configurations)")
    config.addinivalue_line("markers", "caffe: needs the real Caffe install (make caffe)")


@pytest.fixture(scope="session")
def shared_data():
    root = paths.shared_data()
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (set REFIMPL_SHARED_DATA)")
    return root


@pytest.fixture(scope="module")
def worker():
    """A real-Caffe worker process for the module's tests (skips when Caffe is absent)."""
    from refimpl import caffe_backend as cb
    if not cb.caffe_available():
        pytest.skip("real Caffe not installed (make caffe)")
    with cb.CaffeWorker() as w:
        yield w
