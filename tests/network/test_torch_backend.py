"""The PyTorch backend (refimpl.network.torch_backend) against the NumPy reference and real Caffe.

Oracles: refimpl.network (Caffe's semantics, itself checked against live Caffe) for every
layer and blob, on the seed-0 synthetic AlexNet; the golden fc7, computed by real Caffe
(`refimpl golden verify --stage fc7`).

Tolerances, with u = 2^-24 the unit roundoff of float32:
* Each layer on its own, from the reference's input: a convolution or inner product output
  is a sum of K+1 terms (K products and the bias) that each side may add in any order, with
  or without fused multiply-adds; each is then within gamma(K+1) * T of the exact sum,
  gamma(m) = m u / (1 - m u) and T the sum of the terms' absolute values (Higham, Accuracy
  and Stability of Numerical Algorithms, 2nd ed., section 3.1), so the two differ by at most
  2 gamma(K+1) T. The ReLU after it is 1-Lipschitz and exact. Pooling is a max: exact.
  LRN: see lrn_bound.
* A blob from the image (errors of all earlier layers carried): the worst-case bound above
  carried through the layers grows with |W|'s products, not with the results (it passes the
  blobs' own size by conv3), so it cannot catch anything there. Those tests use the
  project's fc7 measure and tolerance (golden.TOLERANCES: worst |diff| of an image's vector
  at most 1e-5 of its largest value), which the per-layer bounds above make safe: each
  layer adds rounding of relative size far below it (measured 1e-6 at every blob), whereas
  a wiring error (a layer skipped or repeated, in-place blobs read at the wrong step, a
  transposed flattening) changes a blob by a good part of its size.
"""
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from refimpl import golden
from refimpl.network import reference as N

SETTINGS = settings(max_examples=int(os.environ.get("REFIMPL_HYPOTHESIS_EXAMPLES", 40)),
                    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
U = 2.0 ** -24  # unit roundoff of float32
REL_TO_MAX = golden.TOLERANCES["fc7_max_error_rel_to_max"]
# The blob each blob is computed from: "data" is the image.
PREVIOUS = dict(zip(N.BLOB_NAMES, ["data"] + N.BLOB_NAMES[:-1]))
LAYER = {name: (kind, cfg) for name, kind, cfg in N.ALEXNET_LAYERS}


def gamma(m):
    return m * U / (1 - m * U)


@pytest.fixture(scope="module")
def TB():
    pytest.importorskip("torch", reason="PyTorch not installed (requirements-torch.txt)")
    from refimpl.network import torch_backend
    return torch_backend


def devices():
    """cpu always; cuda too where this PyTorch sees a GPU (tools/gpu_check.sh)."""
    out = ["cpu"]
    try:
        import torch
        if torch.cuda.is_available():
            out.append("cuda")
    except ImportError:
        pass
    return out


@pytest.fixture(scope="module")
def reference(params, blob):
    out = N.forward_blobs(params, blob, N.BLOB_NAMES)
    out["data"] = blob
    return out


@pytest.fixture(scope="module")
def cpu_net(TB, params):
    with TB.TorchNetwork(params, device="cpu") as net:
        yield net


def rel_to_max(got, want):
    """Worst |diff| of each image's blob relative to that blob's largest |value|."""
    n = len(want)
    err = np.abs(got.astype(np.float64) - want).reshape(n, -1).max(axis=1)
    return float((err / np.abs(want).reshape(n, -1).max(axis=1)).max())


# ------------------------------------------------------------------ without PyTorch

def test_missing_torch_names_what_to_install(monkeypatch, params):
    from refimpl.network import torch_backend
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    assert not torch_backend.available()
    with pytest.raises(ImportError, match=r"requirements-torch\.txt.*\.\[torch\]"):
        torch_backend.TorchNetwork(params)


# ----------------------------------------------------------- each layer on its own

def conv_terms(x, w, b, cfg):
    """T = |W| * |x| + |b| per output, in float64 (same im2col sums as the reference)."""
    x = np.abs(x.astype(np.float64))
    c, n, h, wd = x.shape[1], x.shape[0], x.shape[2], x.shape[3]
    m, cg, kh, kw = w.shape
    s, p, g = cfg["stride"], cfg["pad"], cfg["group"]
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    oh, ow = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
    fields = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    fields = fields[:, :, ::s, ::s][:, :, :oh, :ow]  # (n, c, oh, ow, kh, kw)
    wa = np.abs(w.astype(np.float64))
    out = np.empty((n, m, oh, ow))
    for gi in range(g):
        f = fields[:, gi * cg:(gi + 1) * cg]
        ws = wa[gi * (m // g):(gi + 1) * (m // g)]
        out[:, gi * (m // g):(gi + 1) * (m // g)] = np.einsum("ncyxij,mcij->nmyx", f, ws,
                                                              optimize=True)
    return out + np.abs(b.astype(np.float64)).reshape(1, m, 1, 1)


def lrn_bound(x, size, alpha, beta, k):
    """Bound on |ours - reference| for LRN, elementwise, derived from float32 rounding.

    s = k + alpha/size * (sum of x^2 over the window), y = x * s^-beta.
    Reference (Caffe's order, network.lrn): a running sum over the channels, one rounding
    per step (2C + size steps at most), each of at most u times the running value, which
    never exceeds twice the largest s of the pixel (S_max); plus u each for x^2 and
    alpha/size on the window's own terms: |ds| <= (2 (2C + size) + 2) u S_max. The power
    is taken in double and rounded (u), the product rounded (u).
    PyTorch (F.local_response_norm): x^2 (u), a sum of `size` terms (gamma(size - 1)),
    / size, * alpha and its cast (3u), + k (u of s): |ds| <= (size + 4) u s; pow within
    1 ulp (2u), the division (u).
    A relative error d of s changes s^-beta by at most (1 - d)^-beta - 1.
    """
    x = x.astype(np.float64)
    c = x.shape[1]
    pre = (size - 1) // 2
    sq = np.pad(x * x, ((0, 0), (pre, size - 1 - pre), (0, 0), (0, 0)))
    s = k + alpha / size * sum(sq[:, i:i + c] for i in range(size))
    y = np.abs(x) * s ** -beta
    d_ref = (2 * (2 * c + size) + 2) * U * s.max(axis=1, keepdims=True) / s
    d_ours = (size + 4) * U
    e_ref = (1 - d_ref) ** -beta * (1 + U) ** 2 - 1
    e_ours = (1 - d_ours) ** -beta * (1 + 2 * U) * (1 + U) - 1
    return y * (e_ref + e_ours)


def assert_within(got, want, bound, what):
    assert got.shape == want.shape and got.dtype == np.float32, (what, got.shape, want.shape)
    err = np.abs(got.astype(np.float64) - want)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (f"{what}: |diff| {err[worst]:.3g} at {worst}, bound "
                                  f"{bound[worst]:.3g}")


@pytest.mark.parametrize("name", N.BLOB_NAMES)
def test_each_layer_from_the_reference_input(cpu_net, params, reference, name):
    prev = PREVIOUS[name]
    x = reference[prev]
    got = cpu_net.forward(x, until=name, from_blob=None if prev == "data" else prev)
    want = reference[name]
    kind, cfg = LAYER[name]
    if kind == "conv":
        w, b = params[name]
        bound = 2 * gamma(w[0].size + 1) * conv_terms(x, w, b, cfg)
    elif kind == "fc":
        w, b = params[name]
        xa = np.abs(x.reshape(len(x), -1).astype(np.float64))
        terms = xa @ np.abs(w.astype(np.float64)).T + np.abs(b.astype(np.float64))
        bound = 2 * gamma(w.shape[1] + 1) * terms
    elif kind == "lrn":
        bound = lrn_bound(x, **cfg)
        # the normalisation must matter here, or a wrong window could pass unseen
        assert np.abs(want - x).max() > 1e3 * bound.max()
    else:  # pool: a max is exact
        bound = np.zeros(want.shape)
    assert_within(got, want, bound, name)


@SETTINGS
@given(st.data())
def test_lrn_matches_reference(TB, data):
    size = data.draw(st.sampled_from([1, 3, 5, 7]))
    c = data.draw(st.integers(1, 11))
    shape = (data.draw(st.integers(1, 2)), c, data.draw(st.integers(1, 4)),
             data.draw(st.integers(1, 4)))
    alpha = data.draw(st.sampled_from([1e-4, 1e-3, 0.5]))
    beta = data.draw(st.sampled_from([0.75, 0.5, 1.0]))  # exact in float32
    k = data.draw(st.sampled_from([1.0, 2.0]))
    scale = data.draw(st.sampled_from([1.0, 30.0, 300.0]))
    x = (np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal(shape)
         * scale).astype(np.float32)
    ours = TB.lrn(x, size, alpha, beta, k)
    assert_within(ours, N.lrn(x, size, alpha, beta, k).astype(np.float64),
                  lrn_bound(x, size, alpha, beta, k), f"lrn size {size} C {c}")


def test_lrn_refuses_even_sizes_as_caffe_does(TB):
    with pytest.raises(ValueError, match="even"):
        TB.lrn(np.ones((1, 4, 2, 2), np.float32), size=4)


@SETTINGS
@given(st.data())
def test_max_pool_matches_caffe_ceil_rule(TB, data):
    kernel = data.draw(st.integers(1, 4))
    stride = data.draw(st.integers(1, 4))
    pad = data.draw(st.integers(0, kernel // 2))  # PyTorch: pad <= kernel / 2
    h = data.draw(st.integers(max(1, kernel - 2 * pad), 12))
    w = data.draw(st.integers(max(1, kernel - 2 * pad), 12))
    x = (np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
         .standard_normal((data.draw(st.integers(1, 2)), 3, h, w)) - 3).astype(np.float32)
    want = N.max_pool(x, kernel, stride, pad)  # negative values: padding must never win
    empty_last = pad == 0 and any((n - 1) * stride >= size
                                  for n, size in zip(want.shape[2:], (h, w)))
    if empty_last:  # Caffe keeps a window that lies wholly outside; PyTorch drops it
        with pytest.raises(ValueError, match="differs from Caffe"):
            TB.max_pool(x, kernel, stride, pad)
    else:
        np.testing.assert_array_equal(TB.max_pool(x, kernel, stride, pad), want)


# --------------------------------------------------------- every blob from the image

@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", N.BLOB_NAMES)
def test_every_blob_from_the_image_matches_numpy(TB, params, blob, reference, device, name):
    with TB.TorchNetwork(params, device=device) as net:
        got = net.forward(blob, until=name)
    want = reference[name]
    assert got.shape == want.shape and got.dtype == np.float32
    err = rel_to_max(got, want)
    assert err <= REL_TO_MAX, f"{name} on {device}: worst error {err:.3g} of max"


def test_fc7_is_a_live_vector(reference):
    # so that a backend returning zeros (or a dead network) cannot pass the tests above
    assert (reference["fc7"] > 0).mean() > 0.3


def test_batching_in_pieces_gives_the_same_features(TB, params, blob, reference):
    with TB.TorchNetwork(params, batch_size=2) as net:
        got = net.fc7(blob)
    assert rel_to_max(got, reference["fc7"]) <= REL_TO_MAX
    with TB.TorchNetwork(params) as net:
        assert net.fc7(blob[:0]).shape == (0, 4096)


@pytest.mark.parametrize("device", devices())
def test_golden_verify_fc7_passes(TB, monkeypatch, device):
    """What `refimpl golden verify --stage fc7 --impl refimpl.network.torch_backend:golden_fc7`
    runs (with REFIMPL_TORCH_DEVICE=device): the golden fc7 came from real Caffe. Through
    golden.verify rather than the CLI, whose other commands need packages (soundfile) that
    a GPU machine may lack."""
    monkeypatch.setenv(TB.DEVICE_ENV, device)
    results = golden.verify("fc7", golden.load_callable("refimpl.network.torch_backend:golden_fc7"))
    assert len(results) == 10
    assert all(r.passed for r in results), [(r.name, r.error) for r in results if not r.passed]


def test_golden_verify_cli_on_cpu(TB, monkeypatch, capsys):
    from refimpl.cli import main
    monkeypatch.setenv(TB.DEVICE_ENV, "cpu")
    assert main(["golden", "verify", "--stage", "fc7",
                 "--impl", "refimpl.network.torch_backend:golden_fc7"]) == 0
    assert "10/10 cases pass" in capsys.readouterr().out


def test_forward_leaves_pytorchs_precision_settings_alone(TB, cpu_net, blob):
    import torch
    before = torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    cpu_net.fc7(blob[:1])
    assert (torch.backends.cudnn.conv.fp32_precision,
            torch.backends.cuda.matmul.fp32_precision) == before


def test_bad_input_and_devices_are_refused(TB, cpu_net, params, blob):
    with pytest.raises(ValueError, match=r"\(N, 3, 227, 227\)"):
        cpu_net.fc7(blob[:, :, :200])
    with pytest.raises(ValueError, match="unknown AlexNet blob 'fc9'"):
        cpu_net.forward(blob, until="fc9")
    with pytest.raises(ValueError, match="comes before"):
        cpu_net.forward(blob, until="conv1", from_blob="pool5")
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'cuda:N'"):
        TB.TorchNetwork(params, device="gpu0")
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no CUDA device"):
            TB.TorchNetwork(params, device="cuda:0")
