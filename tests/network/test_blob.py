import numpy as np

from refimpl.network.blob import IMAGENET_BGR_MEAN, image_to_blob


def test_blob_is_bgr_chw_float_pixels_without_mean():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (227, 227, 3), dtype=np.uint8)
    blob = image_to_blob(img)
    assert blob.shape == (1, 3, 227, 227) and blob.dtype == np.float32
    assert blob.flags.c_contiguous
    for c_bgr, c_rgb in ((0, 2), (1, 1), (2, 0)):
        np.testing.assert_array_equal(blob[0, c_bgr], img[:, :, c_rgb].astype(np.float32))
    assert blob.max() == 255.0 and blob.min() == 0.0


def test_batch_and_optional_imagenet_mean():
    img = np.full((2, 5, 7, 3), 200, dtype=np.uint8)
    img[1, :, :, 0] = 10
    blob = image_to_blob(img, subtract_mean=True)
    assert blob.shape == (2, 3, 5, 7)
    np.testing.assert_allclose(blob[0, :, 0, 0], 200 - IMAGENET_BGR_MEAN, rtol=0, atol=1e-5)
    np.testing.assert_allclose(blob[1, 2, 0, 0], 10 - 122.679, rtol=0, atol=1e-5)
