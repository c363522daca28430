"""Weights: checksum, download (from a local HTTP server), synthetic AlexNet, CLI."""
import hashlib

import numpy as np
import pytest

from refimpl.network import caffemodel as cm
from refimpl.network import reference as N
from refimpl.network import weights
from refimpl.cli import main as cli_main

# SHA256 of `refimpl weights synth --seed 0` (recipe SYNTH_VERSION v1). Computed once;
# the same on every machine because the generator uses only exactly rounded operations.
SEED0_SHA256 = "61a72a70dd69db9529f528ca13ab42fe6a97b44e271f9c1fb8371b23ce7505df"


def test_manifest_constants():
    assert weights.ALEXNET_URL == "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel"
    assert weights.ALEXNET_SHA1 == "9116a64c0fbe4459d18f4bb6b56d647b63920377"
    assert weights.ALEXNET_SIZE == 243862414


def test_verify_sha1(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"deep spectrum")
    good = hashlib.sha1(b"deep spectrum").hexdigest()
    assert weights.verify_sha1(path, good.upper()) == good
    with pytest.raises(weights.ChecksumError, match=rf"f\.bin: SHA1 is {good}, expected 0+"):
        weights.verify_sha1(path, "0" * 40)
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        weights.verify_sha1(tmp_path / "missing.bin", good)


def test_fetch_downloads_and_checks(http_server, tmp_path, capsys):
    root, base = http_server
    payload = np.random.default_rng(0).bytes(3 * 1024 * 1024 + 17)
    (root / "model.caffemodel").write_bytes(payload)
    sha1 = hashlib.sha1(payload).hexdigest()
    dest = tmp_path / "out" / "model.caffemodel"
    got = weights.fetch_alexnet(dest, url=f"{base}/model.caffemodel", sha1=sha1)
    assert got == dest and dest.read_bytes() == payload
    assert not dest.with_name(dest.name + ".part").exists()
    # the progress bar counts the bytes: 3 MiB + 17 is 3.15 M (its rate, MB/s or GB/s,
    # depends on the machine's speed)
    assert "3.15M/3.15M" in capsys.readouterr().err
    # A second call keeps the verified file (no download: the server file is gone).
    (root / "model.caffemodel").unlink()
    assert weights.fetch_alexnet(dest, url=f"{base}/model.caffemodel", sha1=sha1) == dest


def test_fetch_checksum_mismatch_deletes_partial(http_server, tmp_path):
    root, base = http_server
    (root / "m").write_bytes(b"not the real model")
    dest = tmp_path / "m.caffemodel"
    with pytest.raises(weights.ChecksumError) as info:
        weights.fetch_alexnet(dest, url=f"{base}/m", progress=False)
    msg = str(info.value)
    assert hashlib.sha1(b"not the real model").hexdigest() in msg
    assert weights.ALEXNET_SHA1 in msg
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_fetch_http_error(http_server, tmp_path):
    _, base = http_server
    with pytest.raises(OSError, match="cannot download"):
        weights.fetch_alexnet(tmp_path / "x", url=f"{base}/absent", progress=False)
    assert not (tmp_path / "x.part").exists()


def test_cli_fetch_uses_url(http_server, tmp_path, monkeypatch, capsys):
    root, base = http_server
    (root / "bvlc_alexnet.caffemodel").write_bytes(b"fake")
    monkeypatch.setattr(weights, "ALEXNET_URL", f"{base}/bvlc_alexnet.caffemodel")
    assert cli_main(["weights", "fetch", "-o", str(tmp_path / "a.caffemodel")]) == 2
    err = capsys.readouterr().err
    assert "refimpl: error:" in err and "expected " + weights.ALEXNET_SHA1 in err


def test_synthetic_seed0_is_bit_identical(tmp_path):
    path = weights.synth_alexnet(0, tmp_path / "s0.caffemodel")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SEED0_SHA256
    # and the cached copy is the same file
    cached = weights.synthetic_weights_path(0)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == SEED0_SHA256


def test_synthetic_seeds_differ_and_shapes_are_alexnet():
    a = weights.synth_alexnet_params(0)
    b = weights.synth_alexnet_params(1)
    assert not np.array_equal(a["fc7"][0], b["fc7"][0])
    for name, shapes in cm.ALEXNET_PARAM_SHAPES.items():
        assert [x.shape for x in a[name]] == [tuple(s) for s in shapes]
        assert all(x.dtype == np.float32 for x in a[name])
        bound = np.sqrt(6 / np.prod(shapes[0][1:]))
        # float32 bound (6 / fan_in and its square root rounded: u) and u * 2b - b (two
        # roundings of at most u of b each): within 3u of the float64 bound
        assert np.abs(a[name][0]).max() <= bound * (1 + 3 * 2.0 ** -24)


def spectrogram_like_blob(n, seed):
    """BGR images with the structure of a colour-mapped spectrogram: smooth horizontal
    bands (harmonics) over a dark background, mapped through viridis."""
    from matplotlib import colormaps
    rng = np.random.default_rng(seed)
    freqs = np.linspace(0, 1, 227)[:, None]
    out = []
    for _ in range(n):
        f0 = rng.uniform(0.03, 0.1)
        energy = sum(np.exp(-((freqs - k * f0) / 0.006) ** 2) / k for k in range(1, 12))
        energy = energy * rng.uniform(0.3, 1.0, (1, 227)) + rng.uniform(0, 0.2, (227, 227))
        rgb = colormaps["viridis"](energy / energy.max())[::-1, :, :3]
        out.append((rgb[:, :, ::-1] * 255).round().transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize("kind", ["uint8", "spectrogram"])
def test_synthetic_net_is_realistic(kind):
    """fc7 (after ReLU) of the synthetic net is mostly non-zero and finite."""
    params = cm.load_alexnet_params(weights.synthetic_weights_path(0))
    if kind == "uint8":
        blob = np.random.default_rng(5).integers(0, 256, (2, 3, 227, 227)).astype(np.float32)
    else:
        blob = spectrogram_like_blob(2, 6)
    got = N.forward_blobs(params, blob, ["pool5", "fc7"])
    fc7 = got["fc7"]
    assert np.isfinite(fc7).all() and (fc7 >= 0).all()
    frac = (fc7 > 0).mean(axis=1)
    assert (frac > 0.5).all(), frac
    assert 1 < fc7.max() < 1e4  # neither vanished nor exploded
    assert (got["pool5"] > 0).mean() > 0.3
    # different inputs give different features
    assert np.abs(fc7[0] - fc7[1]).max() > 1e-3 * fc7.max()


def test_cli_synth_and_verify(tmp_path, capsys):
    out = tmp_path / "s.caffemodel"
    assert cli_main(["weights", "synth", "--seed", "0", "-o", str(out)]) == 0
    assert SEED0_SHA256 in capsys.readouterr().out
    sha1 = hashlib.sha1(out.read_bytes()).hexdigest()
    assert cli_main(["weights", "verify", str(out), "--sha1", sha1]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli_main(["weights", "verify", str(out), "--sha1", "1" * 40]) == 2
    assert "expected 1111" in capsys.readouterr().err
    broken = tmp_path / "broken.caffemodel"
    broken.write_bytes(out.read_bytes()[:1000])
    assert cli_main(["weights", "verify", str(broken)]) == 2
    assert "broken.caffemodel: truncated" in capsys.readouterr().err
