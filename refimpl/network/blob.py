"""Stage 3 — blob: the image as Caffe's input array.

The 2017 code fed the PNG's pixels to Caffe as they were: float32 values 0..255, channels
reversed RGB -> BGR (Caffe's convention, from OpenCV), layout HWC -> CHW, and NO mean
subtraction. That is the default here because it is what produced the paper's features.

For users who want the ImageNet training statistics instead, `subtract_mean=True` removes
the BVLC per-channel BGR mean (104.007, 116.669, 122.679) — the mean of
ilsvrc_2012_mean.npy over its pixels. It changes every feature, so it is never implied.
"""
import numpy as np

__all__ = ["image_to_blob", "IMAGENET_BGR_MEAN"]

IMAGENET_BGR_MEAN = np.array([104.007, 116.669, 122.679], dtype=np.float32)


def image_to_blob(images, subtract_mean=False):
    """RGB uint8 image(s), H x W x 3 or N x H x W x 3 -> float32 blob N x 3 x H x W (BGR)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected RGB images of shape (N,) H x W x 3, got {images.shape}")
    blob = images[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)
    if subtract_mean:
        blob -= IMAGENET_BGR_MEAN[None, :, None, None]
    return np.ascontiguousarray(blob)
