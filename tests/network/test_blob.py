import numpy as np

import tolerances as tol
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
    # the float32 subtraction of the float32 mean (exact when Sterbenz's lemma applies, as
    # for 200) from the pixel, against the decimal means: the mean's own rounding (half an
    # ulp of it) plus the subtraction's (half an ulp of the result)
    mean = np.array([104.007, 116.669, 122.679])
    want = 200 - mean
    tol.assert_within(blob[0, :, 0, 0], want, tol.ulps(mean, 0.5) + tol.ulps(want, 0.5),
                      "200 - mean")
    tol.assert_within(blob[1, 2, 0, 0], 10 - 122.679,
                      tol.ulps(122.679, 0.5) + tol.ulps(10 - 122.679, 0.5), "10 - mean")
    np.testing.assert_array_equal(blob[0, :, 0, 0], np.float32(200) - IMAGENET_BGR_MEAN)
