"""``keras.preprocessing.image``: the image file helpers and ``smart_resize``."""

from __future__ import annotations

import numpy as np

from distkeras.utils import array_to_img, img_to_array, load_img, save_img

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img", "smart_resize"]


def smart_resize(x, size, interpolation: str = "bilinear", data_format: str = "channels_last"):
    """Resizes images to ``size`` without distorting them, as Keras does: the largest centred
    crop with the target's aspect ratio is resized to ``(height, width)``.

    Args:
        x: an image ``(height, width, channels)`` or a batch of them (numpy or a tensor).
        size: ``(height, width)``.
        interpolation: as ``ops.image.resize``.
        data_format: "channels_last" or "channels_first".

    Returns:
        numpy for numpy input, else a tensor.

    Example:
        >>> smart_resize(np.zeros((340, 500, 3)), (200, 200)).shape
        (200, 200, 3)
    """
    from distkeras import ops  # ops sit below layers; importing lazily keeps this module light

    if len(size) != 2:
        raise ValueError(f"Expected `size` to be a tuple of 2 integers, but got: {size}.")
    image = ops.convert_to_tensor(x)
    if image.ndim not in (3, 4):
        raise ValueError(
            "Expected an image array with shape `(height, width, channels)`, or `(batch_size, "
            f"height, width, channels)`, but got input with incorrect rank, of shape "
            f"{tuple(image.shape)}."
        )
    # ops.image.resize's crop_to_aspect_ratio takes the same centred crop Keras computes here.
    resized = ops.image.resize(
        image, size, interpolation=interpolation, crop_to_aspect_ratio=True,
        data_format=data_format,
    )  # fmt: skip
    return np.array(ops.convert_to_numpy(resized)) if isinstance(x, np.ndarray) else resized
