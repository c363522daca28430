"""The C core's Winograd convolutions (F(4x4,3x3) for conv3-5, F(4x4,5x5) for conv2)
against the NumPy reference, against live Caffe, and inside the forward pass.

Winograd's result is not the direct sum reordered: each m x m output tile is computed from
transforms of the tile's whole n x n input patch (n = m + r - 1: 6 for 3x3, 8 for 5x5), so its rounding
error scales with that patch, not with the terms of one output's window. The bound follows
the C core's own steps (tests/support/tolerances.py, winograd_conv_variance): the input
transform's float32 sums of a few integer-weighted terms, the filter transform rounded once from double, the
channel sums of the products, the output transform's sums, the bias; compared with the
exact (float64) convolution. An index error or a wrong transform gives errors of the
terms' own size.
"""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tolerances as tol
from refimpl.network import cforward as C
from refimpl.network import weights
from refimpl.network import reference as N


SETTINGS = settings(max_examples=int(os.environ.get("REFIMPL_HYPOTHESIS_EXAMPLES", 40)),
                    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def restore_settings(c_core):
    old = C.configure()
    yield
    C.configure(**old)


def rand(rng, shape, scale=1.0, offset=0.0):
    return (rng.standard_normal(shape) * scale + offset).astype(np.float32)


def assert_close_to_winograd(got, x, wt, b, pad, group, relu=False, caffe=None, what=""):
    """got (the C core's Winograd conv of x) against the exact convolution, within one
    Winograd evaluation's bound; with caffe= (Caffe's float32 result) against that, within
    the bound of the two evaluations. A ReLU after both keeps the bound."""
    assert got.dtype == np.float32
    exact, var = tol.winograd_conv_variance(x, 0.0, wt, b, int(pad))   # groups: from x, wt
    if caffe is None:
        want, bound = exact, tol.statistical(var)
    else:
        _, gemm = tol.conv_variance(x, 0.0, wt, b, pad=pad, group=group)
        want, bound = caffe, tol.statistical(var, gemm)
    if relu:
        want = np.maximum(want, 0)
    return tol.assert_within(got, want, bound, what)


def draw_conv(data, max_size=19):
    """A random stride-1 convolution with a 3x3 or 5x5 kernel: groups, channel counts,
    pads up to the kernel size, odd sizes (partial tiles), 1-3 images."""
    r = data.draw(st.sampled_from([3, 5]), label="r")
    group = data.draw(st.sampled_from([1, 2, 3]), label="group")
    cg, mg = data.draw(st.integers(1, 9), label="cg"), data.draw(st.integers(1, 7), label="mg")
    pad = data.draw(st.integers(0, r), label="pad")
    h = data.draw(st.integers(max(1, r - 2 * pad), max_size), label="h")
    w = data.draw(st.integers(max(1, r - 2 * pad), max_size), label="w")
    n = data.draw(st.integers(1, 3), label="n")
    return r, group, cg, mg, pad, h, w, n


def draw_settings(data):
    """Threads and tiles per work item (1 and 3 cut through tile rows and images; 0 is the
    automatic size)."""
    C.configure(threads=data.draw(st.sampled_from([1, 2]), label="threads"),
                wino_tiles=data.draw(st.sampled_from([0, 1, 3, 8, 100]), label="wino_tiles"))


@SETTINGS
@given(st.data())
def test_winograd_conv_matches_numpy(data):
    draw_settings(data)
    r, group, cg, mg, pad, h, w, n = draw_conv(data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31), label="seed"))
    offset = data.draw(st.sampled_from([0.0, 30.0]), label="offset")
    x = rand(rng, (n, cg * group, h, w), 10.0, offset)
    wt = rand(rng, (mg * group, cg, r, r))
    b = rand(rng, (mg * group,)) if data.draw(st.booleans(), label="bias") else None
    relu = data.draw(st.booleans(), label="relu")
    got = C.conv2d(x, wt, b, pad=pad, group=group, relu=relu, winograd=True)
    m = C._ensure_configured().WINOGRAD_TILES[r]
    assert_close_to_winograd(got, x, wt, b, pad, group, relu, what=f"F({m}x{m},{r}x{r})")


@SETTINGS
@given(st.data())
def test_winograd_conv_channel_major_layouts(data):
    """Every combination of NCHW / CNHW input and output gives the NCHW result."""
    draw_settings(data)
    r, group, cg, mg, pad, h, w, n = draw_conv(data, max_size=15)
    x_cnhw, out_cnhw = data.draw(st.booleans()), data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31)))
    x = rand(rng, (n, cg * group, h, w), 5.0)
    wt, b = rand(rng, (mg * group, cg, r, r)), rand(rng, (mg * group,))
    core = C._ensure_configured()
    xin = np.ascontiguousarray(x.transpose(1, 0, 2, 3)) if x_cnhw else x
    got = core.conv2d_layout(xin, wt, b, 1, 1, pad, pad, group, True, x_cnhw=x_cnhw,
                             out_cnhw=out_cnhw, wino_filters=core.winograd_filters(wt, group))
    if out_cnhw:
        got = np.ascontiguousarray(got.transpose(1, 0, 2, 3))
    assert_close_to_winograd(got, x, wt, b, pad, group, relu=True, what="layouts")


def test_winograd_alexnet_shapes():
    """conv2 (5x5, pad 2, group 2, 27x27) and conv4 (3x3, pad 1, group 2, 13x13) at their
    real sizes, two images (tiles of a work item run across the image boundary)."""
    rng = np.random.default_rng(5)
    for (c, m, r, pad, size) in [(96, 256, 5, 2, 27), (384, 384, 3, 1, 13)]:
        x = np.abs(rand(rng, (2, c, size, size), 20.0))
        wt, b = rand(rng, (m, c // 2, r, r), 0.03), rand(rng, (m,))
        got = C.conv2d(x, wt, b, pad=pad, group=2, relu=True, winograd=True)
        assert got.shape == (2, m, size, size)
        assert_close_to_winograd(got, x, wt, b, pad, 2, relu=True, what=f"{r}x{r} AlexNet size")


def test_winograd_work_items_do_not_change_the_result():
    """Threads and tiles per work item only change who computes which tile
    and how wide each product is; every output is still the same FMA chain: bit for bit
    (tests/network/test_determinism.py checks the same through the whole network)."""
    rng = np.random.default_rng(6)
    x, wt, b = rand(rng, (3, 8, 11, 9), 4.0), rand(rng, (6, 4, 5, 5)), rand(rng, (6,))
    C.configure(threads=1, wino_tiles=0)
    whole = C.conv2d(x, wt, b, pad=2, group=2, winograd=True)
    for threads, tiles in [(2, 0), (2, 1), (3, 7), (2, 5)]:
        C.configure(threads=threads, wino_tiles=tiles)
        np.testing.assert_array_equal(C.conv2d(x, wt, b, pad=2, group=2, winograd=True),
                                      whole, f"{threads} threads, {tiles} tiles")


def test_winograd_rejects_what_it_cannot_do():
    x, core = np.zeros((1, 2, 9, 9), np.float32), C._ensure_configured()
    with pytest.raises(ValueError, match="Winograd"):
        C.conv2d(x, np.zeros((2, 2, 3, 3), np.float32), stride=2, winograd=True)
    with pytest.raises(ValueError, match="Winograd"):
        C.conv2d(x, np.zeros((2, 2, 4, 4), np.float32), winograd=True)
    with pytest.raises(ValueError, match="Winograd"):
        core.winograd_filters(np.zeros((2, 2, 3, 5), np.float32))
    # filters of weights of another shape (the panels of PANEL rows hide counts that
    # round to the same number of panels: 2 and 4 filters give the same shape)
    for other, group in [((8, 2, 3, 3), 1), ((2, 2, 5, 5), 1), ((2, 1, 3, 3), 2)]:
        with pytest.raises(ValueError, match="wino_filters"):
            core.conv2d_layout(x, np.zeros((2, 2, 3, 3), np.float32), None, 1, 1, 1, 1, 1,
                               False, wino_filters=core.winograd_filters(
                                   np.zeros(other, np.float32), group))


def test_winograd_filters_are_g_g_gt():
    """U = G g G^T for F(4x4,3x3) (Lavin's G, with the signs of rows 1 and 2 flipped as
    tools/winograd_matrices.py's scaling of B^T's rows gives them); then the layout the
    products read: per position and group, the group's filters in zero-padded panels of
    PANEL rows, value-major (a group of 7 filters: panels of 6 and 1 + 5 zero rows)."""
    core = C._ensure_configured()
    assert core.WINOGRAD_TILES == {3: 4, 5: 4}
    g_mat = np.array([[1 / 4, 0, 0], [1 / 6, 1 / 6, 1 / 6], [1 / 6, -1 / 6, 1 / 6],
                      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
    wt = rand(np.random.default_rng(7), (14, 2, 3, 3))
    want = np.einsum("ij,mcjk,lk->ilmc", g_mat, wt.astype(np.float64), g_mat).reshape(36, 14, 2)
    for group in (1, 2):
        u = core.winograd_filters(wt, group)
        panels = -(-14 // group // core.PANEL)
        assert u.shape == (36, group, panels, 2, core.PANEL)
        rows = core.winograd_filters_rows(u, 14)
        # computed in double (error ~1e-16 relative), rounded once to float32: half an ulp
        tol.assert_within(rows, want, tol.ulps(want, 0.5 + 1e-6), f"U = G g G^T, group {group}")
        for gi in range(group):  # filter gi * mg + o is row o % PANEL of panel o // PANEL
            for o in range(14 // group):
                np.testing.assert_array_equal(u[:, gi, o // core.PANEL, :, o % core.PANEL],
                                              rows[:, gi * (14 // group) + o])
        padded = u.transpose(0, 1, 2, 4, 3).reshape(36, group, -1, 2)[:, :, 14 // group:]
        assert padded.size and not padded.any()


def test_generated_header_is_current_and_exact():
    """csrc/_forward_winograd.h is what tools/winograd_matrices.py writes now, and its
    matrices pass the tool's check: A^T[(G g G^T) .* (B^T d B)]A equals direct correlation
    exactly in rational arithmetic (and to 1e-13 in float64) on random tiles."""
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("winograd_matrices",
                                                  root / "tools" / "winograd_matrices.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for r in (3, 5):
        tool.check(r, *tool.matrices(r), trials=20)
    assert (root / "csrc" / "_forward_winograd.h").read_text() == tool.header(), \
        "csrc/_forward_winograd.h is stale: run python tools/winograd_matrices.py --write"


# ---------------------------------------------------------------------- the forward

@pytest.fixture(scope="module")
def params():
    """The shared synthetic AlexNet, prepared once for the C core."""
    return C.prepare_params(weights.synthetic_weights_path(0))


@pytest.fixture(scope="module")
def blob():
    return np.random.default_rng(21).integers(0, 256, (2, 3, 227, 227)).astype(np.float32)


@pytest.fixture(scope="module")
def rounding(params, blob):
    """sigma^2 of one float32 evaluation: im2col + SGEMM, and conv2-5 by Winograd."""
    names = ["conv2", "conv3", "conv4", "conv5", "fc7"]
    return (tol.alexnet_variance(params, blob, names),
            tol.alexnet_variance(params, blob, names, winograd=True))


def test_forward_takes_the_winograd_path_for_conv2_to_conv5(params, blob, rounding):
    """A silent fallback to im2col cannot pass: the forward must make exactly four
    Winograd convolutions (conv2-5), and with winograd off none."""
    assert sorted(params.winograd) == ["conv2", "conv3", "conv4", "conv5"]
    core = C._ensure_configured()
    C.configure(winograd=True)
    before = core.winograd_calls()
    on = C.forward_c(params, blob)
    assert core.winograd_calls() - before == 4
    C.configure(winograd=False)
    before = core.winograd_calls()
    off = C.forward_c(params, blob)
    assert core.winograd_calls() == before
    assert not np.array_equal(on, off)  # two different computations ...
    gemm, wino = rounding                # ... of the same features
    tol.assert_within(on, off, tol.statistical(wino["fc7"][1], gemm["fc7"][1]), "fc7 on/off")


def test_plain_parameter_dict_takes_the_winograd_path_too(params, blob):
    """forward_c on a plain dict (not prepare_params'): prepared at the call, Winograd
    for conv2-5, the same result as the prepared dict."""
    core = C._ensure_configured()
    C.configure(winograd=True)
    plain = {name: tuple(np.array(a) for a in params[name]) for name in params}
    before = core.winograd_calls()
    first = C.forward_c(plain, blob[:1])
    assert core.winograd_calls() - before == 4
    np.testing.assert_array_equal(first, C.forward_c(params, blob[:1]))


@pytest.mark.parametrize("name", ["conv2", "conv3", "conv4", "conv5"])
def test_forward_winograd_layers_match_numpy(params, blob, rounding, name):
    """Layer by layer, the Winograd forward against the NumPy reference (im2col)."""
    C.configure(winograd=True)
    got = C.forward_c(params, blob, until=name)
    want = N.forward_blobs(params, blob, [name])[name]
    gemm, wino = rounding
    tol.assert_within(got, want, tol.statistical(wino[name][1], gemm[name][1]), name)


# --------------------------------------------------------------------- live Caffe

@pytest.mark.caffe
@pytest.mark.parametrize("winograd", [True, False])
def test_fc7_both_paths_match_real_caffe(winograd, caffe_installed):
    """fc7 with conv2-5 by Winograd and by im2col, each against real Caffe."""
    from refimpl.network import caffe_client as cb
    from refimpl.network import caffemodel as cm
    from refimpl.network import weights
    path = weights.synthetic_weights_path(0)
    blob = np.random.default_rng(22).integers(0, 256, (2, 3, 227, 227)).astype(np.float32)
    with cb.CaffeNet(cb.ALEXNET_PROTOTXT, path) as net:
        want = net.extract_fc7(blob)
    C.configure(winograd=winograd)
    got = C.forward_c(path, blob)
    bound = tol.alexnet_bound(cm.load_alexnet_params(path), blob, ["fc7"], winograd=winograd)
    used = tol.assert_within(got, want, bound["fc7"][1], f"fc7 winograd={winograd} vs Caffe")
    print(f"winograd={winograd}: fc7 worst |diff| vs Caffe = {used:.3f} of its bound")


@pytest.mark.caffe
@settings(max_examples=int(os.environ.get("REFIMPL_HYPOTHESIS_EXAMPLES", 15)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_winograd_conv_vs_caffe(worker, tmp_path_factory, data):
    """Random stride-1 3x3 / 5x5 convolutions in real Caffe (weights written by our
    codec) against the Winograd kernel, image-like inputs (0..255)."""
    from refimpl.network import caffe_client as cb
    from refimpl.network import caffemodel as cm
    r, group, cg, mg, pad, h, w, n = draw_conv(data, max_size=15)
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31)))
    x = rng.uniform(0, 255, (n, group * cg, h, w)).astype(np.float32)
    wt = rand(rng, (group * mg, cg, r, r))
    b = rand(rng, (group * mg,))
    proto = ('layer { name: "data" type: "Input" top: "data" input_param { shape: { '
             + " ".join(f"dim: {d}" for d in x.shape) + " } } }\n"
             'layer { name: "out" type: "Convolution" bottom: "data" top: "out" '
             f"convolution_param {{ num_output: {group * mg} kernel_size: {r} pad: {pad} "
             f"group: {group} }} }}\n")
    path = cm.write_caffemodel(tmp_path_factory.mktemp("wino") / "conv.caffemodel",
                               {"out": [wt, b]}, {"out": "Convolution"})
    net = cb.CaffeNet(proto, path, worker=worker)
    try:
        want = net.forward(x, outputs=("out",))["out"]
    finally:
        net.close()
    got = C.conv2d(x, wt, b, pad=pad, group=group, winograd=True)
    assert got.shape == want.shape
    assert_close_to_winograd(got, x, wt, b, pad, group, caffe=want, what="vs Caffe")
