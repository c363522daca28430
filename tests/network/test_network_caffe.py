"""The NumPy layers and the whole AlexNet forward pass against real Caffe.

Random single-layer nets (hypothesis) run in Caffe with weights written by our codec;
then the full AlexNet on the seed-0 synthetic weights. Marked `caffe`.

Bounds (tests/support/tolerances.py): every float result is compared element-wise with the bound
of its own operation, two float32 evaluations that round differently (Caffe's OpenBLAS
kernels, picked at run time, against numpy's): sums by their length and terms, LRN by its
running window sum, the whole AlexNet by the rounding errors carried through its layers.
Max pooling and ReLU select or clamp values, so they are exact.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tolerances as tol
from oracles import unavailable
from refimpl.network import caffe_client as cb
from refimpl.network import caffemodel as cm
from refimpl.network import reference as N
from refimpl.network import weights

pytestmark = pytest.mark.caffe
# REFIMPL_HYPOTHESIS_EXAMPLES raises the number of random cases for a thorough run.
SETTINGS = settings(max_examples=int(os.environ.get("REFIMPL_HYPOTHESIS_EXAMPLES", 25)),
                    deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("nets")


def run_in_caffe(worker, scratch, layer_text, ltype, x, params=None):
    """One-layer net `data -> out` in Caffe; returns blob out."""
    proto = ('layer { name: "data" type: "Input" top: "data" input_param { shape: { '
             + " ".join(f"dim: {d}" for d in x.shape) + " } } }\n"
             + f'layer {{ name: "out" type: "{ltype}" bottom: "data" top: "out" '
             + layer_text + " }\n")
    wpath = None
    if params is not None:
        wpath = cm.write_caffemodel(scratch / "layer.caffemodel", {"out": params},
                                    {"out": ltype})
    net = cb.CaffeNet(proto, wpath, worker=worker)
    try:
        return net.forward(x, outputs=("out",))["out"]
    finally:
        net.close()




@SETTINGS
@given(st.data())
def test_conv_vs_caffe(worker, scratch, data):
    group = data.draw(st.sampled_from([1, 2, 3]))
    cg, mg = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    kh, kw = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    sh, sw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    ph, pw = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
    h = data.draw(st.integers(max(1, kh - 2 * ph), 13))
    w = data.draw(st.integers(max(1, kw - 2 * pw), 13))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31)))
    x = rng.uniform(0, 255, (data.draw(st.integers(1, 3)), group * cg, h, w)).astype("f4")
    wt = rng.standard_normal((group * mg, cg, kh, kw)).astype("f4")
    b = rng.standard_normal(group * mg).astype("f4")
    text = (f"convolution_param {{ num_output: {group * mg} kernel_h: {kh} kernel_w: {kw} "
            f"stride_h: {sh} stride_w: {sw} pad_h: {ph} pad_w: {pw} group: {group} }}")
    ref = run_in_caffe(worker, scratch, text, "Convolution", x, [wt, b])
    ours = N.conv2d(x, wt, b, stride=(sh, sw), pad=(ph, pw), group=group)
    assert ours.shape == ref.shape
    tol.assert_within(ours, ref, tol.conv_bound(x, wt, b, stride=(sh, sw), pad=(ph, pw),
                                                group=group), "conv vs Caffe")


@SETTINGS
@given(st.data())
def test_lrn_vs_caffe(worker, scratch, data):
    size = data.draw(st.sampled_from([1, 3, 5, 7]))
    alpha = data.draw(st.sampled_from([1e-4, 1e-2, 0.3]))
    beta = data.draw(st.sampled_from([0.75, 0.5, 1.25]))
    k = data.draw(st.sampled_from([1.0, 2.0, 0.5]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31)))
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 10)),
             data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    x = (rng.standard_normal(shape) * data.draw(st.sampled_from([1.0, 100.0]))).astype("f4")
    text = f"lrn_param {{ local_size: {size} alpha: {alpha} beta: {beta} k: {k} }}"
    ref = run_in_caffe(worker, scratch, text, "LRN", x)
    ours = N.lrn(x, size, alpha, beta, k)
    # Not bit-identical in general: Caffe's running sum is an OpenBLAS saxpy whose
    # rounding depends on the kernel picked at run time (equal to ours with the Zen
    # kernels, not with Haswell, SandyBridge, Nehalem or Prescott ones).
    tol.assert_within(ours, ref, tol.lrn_bound(x, size, alpha, beta, k), "LRN vs Caffe")


@SETTINGS
@given(st.data())
def test_max_pool_vs_caffe(worker, scratch, data):
    kernel, stride = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    pad = data.draw(st.integers(0, kernel - 1))
    h = data.draw(st.integers(max(1, kernel - 2 * pad), 12))
    w = data.draw(st.integers(max(1, kernel - 2 * pad), 12))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31)))
    x = (rng.standard_normal((data.draw(st.integers(1, 2)), 2, h, w)) - 4).astype("f4")
    text = f"pooling_param {{ pool: MAX kernel_size: {kernel} stride: {stride} pad: {pad} }}"
    ref = run_in_caffe(worker, scratch, text, "Pooling", x)
    ours = N.max_pool(x, kernel, stride, pad)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


@SETTINGS
@given(st.data())
def test_inner_product_and_relu_vs_caffe(worker, scratch, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31)))
    shape = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5)),
             data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    m = data.draw(st.integers(1, 9))
    x = rng.standard_normal(shape).astype("f4")
    wt = rng.standard_normal((m, int(np.prod(shape[1:])))).astype("f4")
    b = rng.standard_normal(m).astype("f4")
    ref = run_in_caffe(worker, scratch, f"inner_product_param {{ num_output: {m} }}",
                       "InnerProduct", x, [wt, b])
    ours = N.inner_product(x, wt, b)
    tol.assert_within(ours, ref, tol.inner_product_bound(x, wt, b), "inner product vs Caffe")
    np.testing.assert_array_equal(N.relu(x), run_in_caffe(worker, scratch, "", "ReLU", x))


# ---------------------------------------------------------------- the whole AlexNet

@pytest.fixture(scope="module")
def alexnet(worker):
    path = weights.synthetic_weights_path(0)
    net = cb.CaffeNet(cb.ALEXNET_PROTOTXT, path, worker=worker)
    yield path, cm.load_alexnet_params(path), net
    net.close()


def uint8_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 227, 227)).astype(np.float32)


@pytest.mark.parametrize("n,seed", [(1, 11), (5, 12)])
def test_alexnet_fc7_vs_caffe(alexnet, n, seed):
    _, params, net = alexnet
    blob = uint8_images(n, seed)
    blobs = ("conv1", "norm1", "pool2", "conv5", "pool5", "fc6", "fc7")
    ref = net.forward(blob, outputs=blobs)
    all_ours = N.forward_blobs(params, blob, blobs)
    bounds = tol.alexnet_bound(params, blob, blobs)
    for name in blobs:
        ours = all_ours[name]
        assert ours.shape == ref[name].shape
        used = tol.assert_within(ours, ref[name], bounds[name][1].reshape(ours.shape), name)
        print(f"{name}: worst |ours - caffe| = {used:.3f} of its bound")
    fc7 = ref["fc7"]
    assert (fc7 >= 0).all() and np.isfinite(fc7).all()
    assert (fc7 > 0).mean() > 0.5  # the synthetic net is not degenerate


def test_extract_fc7_matches_forward(alexnet):
    _, params, net = alexnet
    blob = uint8_images(2, 13)
    fc7 = net.extract_fc7(blob)
    assert fc7.shape == (2, 4096) and fc7.dtype == np.float32
    tol.assert_within(N.forward_numpy(params, blob), fc7,
                      tol.alexnet_bound(params, blob, ["fc7"])["fc7"][1], "fc7")


def test_caffe_save_of_alexnet_read_identically(alexnet, tmp_path):
    path, params, net = alexnet
    net.save(tmp_path / "saved.caffemodel")
    model = cm.read_caffemodel(tmp_path / "saved.caffemodel")
    assert model.types["conv1"] == "Convolution" and model.types["relu7"] == "ReLU"
    again = cm.load_alexnet_params(model)
    for name, (w, b) in params.items():
        np.testing.assert_array_equal(again[name][0], w)
        np.testing.assert_array_equal(again[name][1], b)


@pytest.mark.slow
def test_v1_alexnet_like_the_official_file_loads_in_caffe(worker, tmp_path):
    """The official file is V1 with legacy dims; our V1 writer's output must load too."""
    path = weights.synth_alexnet(0, tmp_path / "v1.caffemodel", v1=True)
    params = cm.load_alexnet_params(path)
    assert cm.read_caffemodel(path).format == "V1"
    with cb.CaffeNet(cb.ALEXNET_PROTOTXT, path, worker=worker) as net:
        for name, (w, b) in params.items():
            cw, cbias = net.params(name)
            np.testing.assert_array_equal(cw, w)
            np.testing.assert_array_equal(cbias, b)


def emodb_spectrogram_blob(shared_data, count):
    """Quick 227x227 viridis spectrograms of real EmoDB files as BGR float blobs (a
    stand-in for the image stage: realistic inputs for the network comparison)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[:count]
    if len(files) < count:
        unavailable("emodb", "EmoDB recordings not found")
    out = []
    for f in files:
        x, sr = sf.read(f)
        fig = plt.figure(figsize=(2.27, 2.27), dpi=100)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.axis("off")
        ax.specgram(x, NFFT=256, Fs=sr, noverlap=128, cmap="viridis")
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[:, :, :3]
        plt.close(fig)
        out.append(rgb[:, :, ::-1].transpose(2, 0, 1).astype(np.float32))
    return np.stack(out)


def test_alexnet_fc7_vs_caffe_on_real_spectrograms(alexnet, shared_data):
    _, params, net = alexnet
    blob = emodb_spectrogram_blob(shared_data, 3)
    assert blob.shape == (3, 3, 227, 227)
    ref = net.extract_fc7(blob)
    ours = N.forward_numpy(params, blob)
    used = tol.assert_within(ours, ref, tol.alexnet_bound(params, blob, ["fc7"])["fc7"][1],
                             "EmoDB spectrograms fc7")
    print(f"EmoDB spectrograms fc7: worst |ours - caffe| = {used:.3f} of its bound, "
          f"non-zero {np.mean(ref > 0):.2f}")
    assert (ref > 0).mean() > 0.5
