"""scikit-learn's real handwritten digit scans (1,797 images, 8x8, 16 grey levels).

``load_data(upscale=True)`` resizes them to MNIST's 28x28 uint8 format with a bilinear
resampling, so programs written for MNIST (``input_shape=(28, 28, 1)`` or 784 inputs after a
reshape) run unchanged.
"""

from __future__ import annotations

import numpy as np


def _bilinear_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix resampling a 1-D signal with align-corners bilinear weights."""
    positions = np.linspace(0, src - 1, dst)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, src - 1)
    frac = positions - low
    matrix = np.zeros((dst, src))
    matrix[np.arange(dst), low] += 1 - frac
    matrix[np.arange(dst), high] += frac
    return matrix


def load_data(upscale: bool = True, test_split: float = 0.2, seed: int = 0):
    """Returns ``(x_train, y_train), (x_test, y_test)`` like ``mnist.load_data``.

    Args:
        upscale: 28x28 uint8 images (0-255) as MNIST; else the original 8x8 (0-16).
        test_split: fraction held out for testing, after a seeded shuffle.
        seed: the shuffle's seed.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = distkeras.datasets.digits.load_data()
        >>> x_train.shape
        (1438, 28, 28)
    """
    if not 0.0 < test_split < 1.0:
        raise ValueError(f"test_split must be in (0, 1). Received: test_split={test_split}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(
            "distkeras.datasets.digits needs scikit-learn: pip install scikit-learn"
        ) from err
    bunch = load_digits()
    images = bunch.images.astype("float64")  # (n, 8, 8), values 0..16
    labels = bunch.target.astype("uint8")
    if upscale:
        # Pad one pixel so strokes do not touch the border, as in MNIST's centred digits.
        padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
        resample = _bilinear_matrix(padded.shape[1], 28)
        images = np.einsum("ij,njk,lk->nil", resample, padded, resample)
        images = np.clip(np.rint(images * (255.0 / 16.0)), 0, 255).astype("uint8")
    else:
        images = images.astype("uint8")
    order = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[order], labels[order]
    n_test = int(round(len(labels) * test_split))
    return (images[n_test:], labels[n_test:]), (images[:n_test], labels[:n_test])
