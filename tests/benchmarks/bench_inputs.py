"""Inputs of the forward-pass benchmarks."""
import numpy as np


def random_blob(n):
    """n AlexNet input blobs (N, 3, 227, 227) of pixel values 0..255, the same every run."""
    return np.random.default_rng(0).integers(0, 256, (n, 3, 227, 227)).astype(np.float32)
