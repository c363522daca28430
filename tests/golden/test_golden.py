"""golden/ against its oracles: the signal generators, matplotlib, and real Caffe."""

import numpy as np
import pytest

from refimpl import golden
from refimpl._util import locations
from refimpl.golden import make as golden_make
from refimpl.golden import signals
from refimpl.network.blob import image_to_blob
from refimpl.network import caffe_client, reference
from refimpl.errors import GoldenError
from refimpl.image import DEFAULT_OPTIONS, matplotlib_pixel_rule, spectrogram_image

CASES = golden.load_cases()
MANIFEST = golden.load_manifest()


def test_manifest_lists_every_case_and_the_versions_that_made_it():
    assert [c["name"] for c in MANIFEST["cases"]] == list(signals.CASES)
    # the images are 2017's: drawn by matplotlib 2.0.2 itself, and the installed
    # matplotlib draws by the same rule (3.10.x), so test_matplotlib_still_draws... holds
    assert MANIFEST["versions"]["matplotlib"] == "2.0.2"
    assert MANIFEST["image_options"]["pixels"] == "2017" == matplotlib_pixel_rule()
    assert all(e["image_drawn_by"].startswith("matplotlib 2.0.2 (Python 3.6")
               for e in MANIFEST["cases"])
    assert MANIFEST["tolerances"] == golden.TOLERANCES
    for case, entry in zip(CASES, MANIFEST["cases"]):
        assert golden.array_sha256(case.samples) == entry["signal_sha256"]
        assert golden.array_sha256(case.image) == entry["image_sha256"]
        assert case.fc7.shape == (4096,) and case.fc7.dtype == np.float32
        assert (case.fc7 >= 0).all() and 0.3 < np.mean(case.fc7 > 0) < 1.0


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_generators_still_make_the_stored_signals(case):
    samples, rate = signals.make_case(case.name)
    assert rate == case.rate
    # int16 quantisation absorbs libm differences; allow one step at a rounding edge
    assert np.max(np.abs(samples.astype(np.int32) - case.samples)) <= 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matplotlib_still_draws_the_stored_images(case):
    np.testing.assert_array_equal(spectrogram_image(case.signal, case.rate), case.image)


def test_the_2017_matplotlib_still_draws_the_stored_images():
    """matplotlib 2.0.2 on Python 3.6 (the oracle that drew them, `make oracles`)."""
    from oracles import unavailable
    from refimpl.errors import MissingDependency
    from refimpl.image import oracles
    try:
        drawn = oracles.draw_images(oracles.MPL_2017, [(c.signal, c.rate, DEFAULT_OPTIONS)
                                                       for c in CASES])
    except MissingDependency as e:
        unavailable("mpl2017", str(e))
    for case, drawing in zip(CASES, drawn):
        np.testing.assert_array_equal(drawing.image, case.image, err_msg=case.name)


def test_cases_are_distinct_so_a_constant_output_cannot_pass():
    fc7 = np.stack([c.fc7 for c in CASES])
    worst_match = min(np.abs(fc7[i] - fc7[j]).max() / fc7[i].max()
                      for i in range(len(CASES)) for j in range(len(CASES)) if i != j)
    assert worst_match > 100 * golden.TOLERANCES["fc7_max_error_rel_to_max"]


def test_fc7_tolerance_is_the_derived_rounding_bound():
    """TOLERANCES' fc7 figure is not a number that passed once: it is the bound of two
    float32 evaluations of the network (tests/support/tolerances.py) on the golden blobs, the
    largest over the cases of the largest element bound over the vector's maximum,
    rounded up by less than half."""
    import tolerances as tol
    from refimpl.network import caffemodel, weights
    seed = MANIFEST["weights"]["seed"]
    params = caffemodel.load_alexnet_params(weights.synthetic_weights_path(seed))
    blobs = np.concatenate([image_to_blob(c.image) for c in CASES])
    fc7 = np.stack([c.fc7 for c in CASES])
    _, bound = tol.alexnet_bound(params, blobs, ["fc7"])["fc7"]
    derived = float(tol.fc7_rel_to_max(bound, fc7).max())
    print(f"derived fc7 bound: {derived:.3g} of the max")
    assert derived <= golden.TOLERANCES["fc7_max_error_rel_to_max"] <= 1.5 * derived


def test_numpy_forward_agrees_with_the_caffe_golden_fc7():
    results = golden.verify("fc7", reference.golden_fc7)
    worst = max(r.error for r in results)
    print(f"NumPy vs Caffe golden fc7: worst error {worst:.3g} of the vector max")
    assert all(r.passed for r in results)


@pytest.mark.caffe
def test_live_caffe_still_produces_the_golden_fc7(caffe_installed):
    """Real Caffe, now, on this machine: the golden files cannot drift from it."""
    results = golden.verify("fc7", caffe_client.golden_fc7)
    assert all(r.passed for r in results), [(r.name, r.error) for r in results if not r.passed]


def test_verify_cli_fails_a_wrong_port(capsys):
    from refimpl.cli import main
    assert main(["golden", "verify", "--stage", "blob"]) == 0
    # an RGB blob (forgetting Caffe's BGR order) must be caught
    assert main(["golden", "verify", "--stage", "blob",
                 "--impl", "test_golden:rgb_blob_port"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "0/10 cases pass" in out


def rgb_blob_port(image):
    return image_to_blob(image[..., ::-1])


def test_verify_cli_for_efficientnet(capsys, efficientnet_weights):
    from refimpl.cli import main
    assert main(["golden", "verify", "--net", "efficientnet-lite0"]) == 0
    assert "vs PyTorch golden: ok" in capsys.readouterr().out


# ------------------------------------------------------- the files themselves: hashes, atomic make

def test_each_case_file_is_hashed_and_checked_on_load(tmp_path):
    import shutil
    root = tmp_path / "golden"
    shutil.copytree(locations.golden_dir(), root)
    assert len(golden.load_cases(root)) == len(CASES)
    for entry in MANIFEST["cases"]:
        assert set(entry["files"]) == set(golden.CASE_FILES)
    fc7 = root / "cases" / CASES[0].name / "fc7.npy"
    data = bytearray(fc7.read_bytes())
    data[-1] ^= 1                                   # one bit of the last fc7 value
    fc7.write_bytes(bytes(data))
    with pytest.raises(GoldenError, match=rf"{CASES[0].name}/fc7\.npy: sha256"):
        golden.load_cases(root)
    fc7.unlink()
    with pytest.raises(GoldenError, match="fc7.npy: golden file missing"):
        golden.load_cases(root)


class _FakeCaffeNet:
    """Stands in for Caffe where only the file handling of `golden make` is tested."""
    info = {"caffe": "fake"}

    def __init__(self, *a, **k):
        self.worker = self

    def forward(self, blob, outputs):
        return {"fc7": np.full((len(blob), 4096), 1.5, np.float32)}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def test_make_writes_beside_and_swaps_in_only_when_complete(tmp_path, monkeypatch):
    monkeypatch.setattr(golden_make, "CaffeNet", _FakeCaffeNet)
    monkeypatch.setattr(golden_make, "blas_of_caffe", lambda: "fake")
    root = tmp_path / "golden"
    (root / "efficientnet-lite0").mkdir(parents=True)
    (root / "efficientnet-lite0" / "keep.txt").write_text("not golden make's")
    (root / golden.MANIFEST).write_text('{"old": true}')
    weights = tmp_path / "w.caffemodel"
    weights.write_bytes(b"weights")
    real_make_case, calls = signals.make_case, []

    def failing_make_case(name):
        calls.append(name)
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return real_make_case(name)

    monkeypatch.setattr(signals, "make_case", failing_make_case)
    with pytest.raises(RuntimeError, match="interrupted"):
        golden.make_golden(root, weights, log=lambda *_: None)
    assert (root / golden.MANIFEST).read_text() == '{"old": true}'   # untouched
    assert not (root / "cases").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden", "w.caffemodel"]

    monkeypatch.setattr(signals, "make_case", real_make_case)
    manifest = golden.make_golden(root, weights, log=lambda *_: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden", "w.caffemodel"]
    assert (root / "efficientnet-lite0" / "keep.txt").read_text() == "not golden make's"
    assert golden.load_manifest(root) == manifest and manifest["format"] == 2
    cases = golden.load_cases(root)                # every file checked against its hash
    assert [c.name for c in cases] == list(signals.CASES)
