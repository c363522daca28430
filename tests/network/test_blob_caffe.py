"""The blob stage against pycaffe's own input path (the outside check of refimpl.network.blob).

The 2017 toolkit fed Caffe through caffe.io: load_image (skimage: the PNG as float in
[0, 1], RGB) and a Transformer with set_transpose('data', (2, 0, 1)), set_raw_scale('data',
255) and set_channel_swap('data', (2, 1, 0)). The Caffe worker runs exactly that in the
Caffe install's own Python (refimpl/network/caffe_worker.py, command "transform"), on the PNG file
itself, so the PNG decoder is skimage's (through imageio), not ours.

Equality is exact: img_as_float gives v / 255 in float64, rounded once to float32, and the
Transformer multiplies that by 255 in float32. For every 8-bit v that product rounds back
to v exactly (checked here over all 256 values, in every channel), so pycaffe's blob and
refimpl.network.blob's cast of the integers are the same floats.
"""
import numpy as np
import pytest

from refimpl import golden
from refimpl._util import locations as paths
from refimpl.network.blob import image_to_blob
from refimpl.image import save_png

pytestmark = pytest.mark.caffe


def caffe_io_blob(worker, png_paths):
    return worker.call({"cmd": "transform", "paths": [str(p) for p in png_paths]})[1][0]


def test_every_8bit_value_survives_the_transformers_scale(worker, tmp_path):
    """All 256 values in each channel (R ascending, G descending, B shifted), one PNG row:
    pycaffe's float32 v / 255 * 255 is v again, and the channels come out B, G, R."""
    values = np.arange(256, dtype=np.uint8)
    image = np.stack([values, values[::-1], np.roll(values, 100)], axis=-1)[None]  # 1 x 256 x 3
    save_png(image, tmp_path / "all_values.png")
    theirs = caffe_io_blob(worker, [tmp_path / "all_values.png"])
    assert theirs.shape == (1, 3, 1, 256) and theirs.dtype == np.float32
    np.testing.assert_array_equal(theirs[0, :, 0], image[0, :, ::-1].T.astype(np.float32))
    np.testing.assert_array_equal(theirs, image_to_blob(image))


def test_golden_blobs_equal_pycaffes_transformer(worker):
    """Every golden image: our blob (the one golden/ hashes and fc7 was computed from) is
    pycaffe's blob of the same PNG file, bit for bit."""
    manifest = golden.load_manifest()
    cases = golden.load_cases()
    pngs = [paths.golden_dir() / "cases" / c.name / "image.png" for c in cases]
    theirs = caffe_io_blob(worker, pngs)
    ours = image_to_blob(np.stack([c.image for c in cases]))
    assert theirs.shape == ours.shape == (len(cases), 3, 227, 227)
    assert theirs.dtype == np.float32
    np.testing.assert_array_equal(theirs, ours)
    for blob, entry in zip(theirs, manifest["cases"]):
        assert golden.array_sha256(blob) == entry["blob_sha256"], entry["name"]
