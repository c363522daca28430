import http.server
import threading

import pytest

from refimpl._util import locations as paths


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
    from refimpl.network import caffe_client as cb
    if not cb.caffe_available():
        pytest.skip("real Caffe not installed (make caffe)")
    with cb.CaffeWorker() as w:
        yield w


@pytest.fixture(scope="session")
def emodb_lld_csvs(shared_data, tmp_path_factory):
    """make(n) -> one openXBOW input CSV with the MFCC LLDs (refimpl.baselines.opensmile) of the first n
    EmoDB files (n=None: all 535, else skip); each is written once per session."""
    made = {}

    def make(n=None):
        if n not in made:
            from refimpl.baselines import opensmile as lld
            files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
            if n is None and len(files) != 535:
                pytest.skip(f"expected 535 EmoDB files, found {len(files)}")
            files = files[:n]
            if not files:
                pytest.skip("no EmoDB wav files")
            out = tmp_path_factory.mktemp("emodb_llds") / f"emodb{len(files)}.csv"
            lld.write_lld_csv_files(files, out)
            made[n] = out
        return made[n]
    return make


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server serving tmp_path/www on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
