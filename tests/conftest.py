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
