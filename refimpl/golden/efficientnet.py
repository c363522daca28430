"""Golden files of EfficientNet-Lite0, made by real PyTorch (test extra:
requirements-torch.txt), and the check of our NumPy network against them.

The expected outputs come from the weights' authors' model (efficientnet_lite_pytorch)
under PyTorch, never from refimpl.network.efficientnet; the inputs (two of scikit-image's
photographs and our own spectrogram images) are rebuilt, not stored: the manifest keeps
their SHA-256.
"""
import contextlib
import hashlib
import io
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
from PIL import Image

from refimpl._util import locations
from refimpl._util.atomic import atomic_open, atomic_path
from refimpl.golden import signals
from refimpl.image import render_image
from refimpl.network.efficientnet import (FEATURE_DIM, FEATURE_LAYER, INPUT_SIZE, MEAN_RGB, NAME,
                                          STDDEV_RGB, WEIGHTS_FILE, WEIGHTS_SHA256,
                                          WHEEL_PACKAGE, WHEEL_VERSION, as_image_batch,
                                          efficientnet_features, fetch_weights, network)

__all__ = ["golden_dir", "torch_oracle", "torch_pipeline", "golden_inputs",
           "make_golden_cases", "load_golden_inputs", "verify_golden", "GOLDEN_TOLERANCE"]


GOLDEN_SUBDIR = NAME


def golden_dir():
    return locations.golden_dir() / GOLDEN_SUBDIR


def torch_oracle():
    """The model of the weights' authors (`efficientnet_lite_pytorch`), loaded by torch.load.

    Independent of everything here: their PyTorch code, PyTorch's own checkpoint reader, PyTorch's
    convolutions and batch norm. Needs `pip install -r requirements-torch.txt`.
    """
    # the test extra (requirements-torch.txt): imported only by the paths that need it
    from efficientnet_lite_pytorch import EfficientNet
    path = fetch_weights()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        model = EfficientNet.from_pretrained(NAME, weights_path=str(path))
    model.eval()
    return model


def torch_pipeline(images, model):
    """Reference features and logits for uint8 RGB images, all in PyTorch.

    The resize is done by torch's grid_sample (bicubic a = -0.75, border clamping) at the
    sample positions of TF1's legacy resize, so that our matrix formulation is checked too.
    """
    import torch  # the test extra (requirements-torch.txt)
    images = as_image_batch(images)
    x = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2)

    def grid_axis(size_in, size_out):
        scale = np.float32(size_in) / np.float32(size_out)
        pos = np.arange(size_out, dtype=np.float32) * scale
        base = np.floor(pos)
        pos = base + np.rint((pos - base) * 1024) / 1024  # TF's weight-table quantisation
        return torch.from_numpy(2.0 * pos.astype(np.float64) / (size_in - 1) - 1.0)

    gy = grid_axis(images.shape[1], INPUT_SIZE)
    gx = grid_axis(images.shape[2], INPUT_SIZE)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).float()
    grid = grid.unsqueeze(0).expand(len(images), -1, -1, -1)
    with torch.no_grad():
        return _torch_forward(x, grid, model)


def _torch_forward(x, grid, model):
    import torch.nn.functional as F  # the test extra (requirements-torch.txt)
    x = F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=True)
    x = (x - MEAN_RGB) / STDDEV_RGB
    head = model.extract_features(x)
    features = head.mean(dim=(2, 3))
    logits = model(x)
    return features.numpy().astype(np.float32), logits.numpy().astype(np.float32)


GOLDEN_SIGNAL_CASES = ("speechlike_male_16k", "speechlike_female_48k", "chirp_100_7000_16k",
                       "noise_bursts_16k")


def golden_inputs():
    """-> (names, (N, 227, 227, 3) uint8 RGB): two photographs and our own spectrogram images.

    The photographs are scikit-image's bundled chelsea and coffee (centre square, PIL bicubic to
    227); the spectrograms are refimpl.image's images of refimpl.golden.signals' synthetic cases.
    """
    import skimage.data  # the test extra (requirements-torch.txt)

    names, images = [], []
    for name in ("chelsea", "coffee"):
        photo = getattr(skimage.data, name)()
        side = min(photo.shape[:2])
        top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        square = Image.fromarray(photo[top:top + side, left:left + side])
        names.append("photo_" + name)
        images.append(np.asarray(square.resize((227, 227), Image.BICUBIC)))
    for name in GOLDEN_SIGNAL_CASES:
        samples, rate = signals.make_case(name)
        names.append(name)
        images.append(render_image(signals.pcm16_to_float(samples), rate, name=name))
    return names, np.stack(images).astype(np.uint8)


def golden_inputs_sha256(images) -> str:
    """SHA-256 of the golden input batch's bytes: the manifest stores it instead of the images,
    which golden_inputs() rebuilds from scikit-image's photographs and our own signals."""
    return hashlib.sha256(np.ascontiguousarray(images, np.uint8).tobytes()).hexdigest()


def make_golden_cases(out_dir=None):
    """Write golden/efficientnet-lite0/: features.npy, logits.npy, manifest.json.

    The expected outputs come from PyTorch running the weights' authors' model (torch_pipeline),
    never from this module. The inputs are not stored (photographs, and images we can
    rebuild): the manifest names them and holds their SHA-256.
    """
    import torch  # the test extra (requirements-torch.txt)
    out_dir = Path(out_dir) if out_dir else golden_dir()
    names, images = golden_inputs()
    features, logits = torch_pipeline(images, torch_oracle())
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, array in (("features", features), ("logits", logits)):
        with atomic_path(out_dir / f"{name}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array)
    manifest = {
        "network": NAME,
        "made_by": "refimpl.network.efficientnet.make_golden_cases: PyTorch running efficientnet_lite_pytorch "
                   "on torch.load of the checkpoint; resize by torch grid_sample at TF1's sample points",
        "torch": torch.__version__,
        "efficientnet_lite_pytorch": version("efficientnet-lite-pytorch"),
        "weights": {"package": f"{WHEEL_PACKAGE}=={WHEEL_VERSION}", "file": WEIGHTS_FILE,
                    "sha256": WEIGHTS_SHA256},
        "inputs": "refimpl.network.efficientnet.golden_inputs(): (N, 227, 227, 3) uint8 RGB; photo_chelsea, "
                  "photo_coffee (scikit-image's bundled photos, centre square, PIL bicubic to 227) and "
                  "refimpl.image spectrograms of refimpl.golden.signals cases",
        "inputs_sha256": golden_inputs_sha256(images),
        "cases": list(names),
        "outputs": {"features.npy": f"(N, {FEATURE_DIM}) float32, {FEATURE_LAYER}",
                    "logits.npy": "(N, 1000) float32 ImageNet logits"},
        "tolerance": GOLDEN_TOLERANCE,
        "n_cases": int(len(images)),
    }
    with atomic_open(out_dir / "manifest.json") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return out_dir


def load_golden_inputs(golden=None):
    """The golden input batch, rebuilt and checked against the manifest's SHA-256."""
    golden = Path(golden) if golden else golden_dir()
    manifest_path = golden / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no EfficientNet golden manifest")
    manifest = json.loads(manifest_path.read_text())
    try:
        names, images = golden_inputs()
    except ImportError as e:
        raise ImportError(f"the EfficientNet golden inputs need {e.name} "
                          "(pip install -r requirements-torch.txt)") from None
    if names != manifest["cases"] or golden_inputs_sha256(images) != manifest["inputs_sha256"]:
        raise ValueError(f"{manifest_path}: the rebuilt golden inputs differ from those the golden "
                         "outputs were made from (other scikit-image photos, Pillow or matplotlib?)")
    return manifest, images


# Max |ours - torch| relative to the largest |torch| value of the same array: the float32
# rounding bound of two evaluations of the network (ours, PyTorch's) carried through its
# layers, largest element over the largest value on the golden inputs (features 2.0e-5,
# logits 1.1e-5), rounded up; tests/tolerances.py derives it, tests/network/test_efficientnet.py
# checks it still is that. Measured 5.1e-6 and 2.6e-6 (our resize included; the resize is
# checked on its own against torch's, tests/network/test_efficientnet_torch.py).
GOLDEN_TOLERANCE = {"features_max_abs_rel": 3e-5, "logits_max_abs_rel": 1.5e-5}


def verify_golden(golden=None, net=None):
    """Recompute the golden cases with NumPy; return {name: relative max error, 'ok': bool}."""
    golden = Path(golden) if golden else golden_dir()
    manifest, images = load_golden_inputs(golden)
    if manifest["weights"]["sha256"] != WEIGHTS_SHA256:
        raise ValueError(f"{golden / 'manifest.json'}: golden files were made with other weights")
    expected_features = np.load(golden / "features.npy")
    expected_logits = np.load(golden / "logits.npy")
    net = net or network()
    features = efficientnet_features(images, net=net)
    logits = net.logits(features=features)
    report = {
        "features_max_abs_rel": float(np.abs(features - expected_features).max()
                                      / np.abs(expected_features).max()),
        "logits_max_abs_rel": float(np.abs(logits - expected_logits).max()
                                    / np.abs(expected_logits).max()),
        "top1_agree": bool((logits.argmax(1) == expected_logits.argmax(1)).all()),
    }
    tolerance = manifest["tolerance"]
    report["ok"] = report["top1_agree"] and all(report[k] <= tolerance[k] for k in tolerance)
    return report
