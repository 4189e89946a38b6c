"""InceptionV3: parallel 1x1 / factorised nxn / pooling branches, concatenated ("mixed").

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision" (CVPR 2016).
Default input 299x299, at least 75x75; inputs scaled to [-1, 1] ("tf" mode). Keras leaves
the convolutions unnamed (only the ``mixedN`` concatenations are named); weight files load by
place, so the automatic names never have to agree.
"""

from __future__ import annotations

from distkeras import layers
from distkeras.applications import _base, imagenet_utils

__all__ = ["InceptionV3", "preprocess_input", "decode_predictions"]

_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"


def conv2d_bn(x, filters, num_row, num_col, padding="same", strides=(1, 1), name=None):
    """Conv (no bias), BatchNormalization without scale (ReLU follows), ReLU."""
    names = (None, None, None) if name is None else (f"{name}_conv", f"{name}_bn", name)
    return _base.conv_bn(x, filters, (num_row, num_col), strides, padding, "relu", names)


def _avg_pool_branch(x, filters):
    x = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    return conv2d_bn(x, filters, 1, 1)


def _block_a(x, pool_filters, name):
    """35x35: 1x1, 1x1-5x5, 1x1-3x3-3x3, avgpool-1x1."""
    b1 = conv2d_bn(x, 64, 1, 1)
    b5 = conv2d_bn(conv2d_bn(x, 48, 1, 1), 64, 5, 5)
    b3 = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
    return layers.concatenate([b1, b5, b3, _avg_pool_branch(x, pool_filters)], axis=3, name=name)


def _block_b(x, width, name):
    """17x17: 1x1, 1x7-7x1, two 7x1-1x7 pairs, avgpool-1x1 (``width`` inner channels)."""
    b1 = conv2d_bn(x, 192, 1, 1)
    b7 = conv2d_bn(x, width, 1, 1)
    b7 = conv2d_bn(conv2d_bn(b7, width, 1, 7), 192, 7, 1)
    d7 = conv2d_bn(x, width, 1, 1)
    d7 = conv2d_bn(conv2d_bn(d7, width, 7, 1), width, 1, 7)
    d7 = conv2d_bn(conv2d_bn(d7, width, 7, 1), 192, 1, 7)
    return layers.concatenate([b1, b7, d7, _avg_pool_branch(x, 192)], axis=3, name=name)


def _block_c(x, i):
    """8x8: 1x1, 1x1 then 1x3 | 3x1, 1x1-3x3 then 1x3 | 3x1, avgpool-1x1."""
    b1 = conv2d_bn(x, 320, 1, 1)
    b3 = conv2d_bn(x, 384, 1, 1)
    b3 = layers.concatenate(
        [conv2d_bn(b3, 384, 1, 3), conv2d_bn(b3, 384, 3, 1)], axis=3, name=f"mixed9_{i}"
    )
    d3 = conv2d_bn(conv2d_bn(x, 448, 1, 1), 384, 3, 3)
    d3 = layers.concatenate([conv2d_bn(d3, 384, 1, 3), conv2d_bn(d3, 384, 3, 1)], axis=3)
    return layers.concatenate([b1, b3, d3, _avg_pool_branch(x, 192)], axis=3, name=f"mixed{9 + i}")


def _inception_v3(
    include_top, weights, input_tensor, input_shape, pooling, classes,
    classifier_activation, name,
):  # fmt: skip
    """The body of :func:`InceptionV3` (Keras's standard arguments, in order)."""
    file_name = _base.h5_file_name("inception_v3" + _base.TF_KERNELS, include_top)
    img_input, weights_path = _base.start(
        weights, include_top, classes, pooling, classifier_activation, input_tensor,
        input_shape, 299, 75, file_name, _URL + file_name,
    )  # fmt: skip
    x = conv2d_bn(img_input, 32, 3, 3, strides=(2, 2), padding="valid")
    x = conv2d_bn(x, 32, 3, 3, padding="valid")
    x = conv2d_bn(x, 64, 3, 3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv2d_bn(x, 80, 1, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = _block_a(x, 32, "mixed0")
    x = _block_a(x, 64, "mixed1")
    x = _block_a(x, 64, "mixed2")
    # mixed3: reduction to 17x17.
    b3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="valid")
    d3 = conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3)
    d3 = conv2d_bn(d3, 96, 3, 3, strides=(2, 2), padding="valid")
    pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = layers.concatenate([b3, d3, pool], axis=3, name="mixed3")
    for width, block_name in ((128, "mixed4"), (160, "mixed5"), (160, "mixed6"), (192, "mixed7")):
        x = _block_b(x, width, block_name)
    # mixed8: reduction to 8x8.
    b3 = conv2d_bn(conv2d_bn(x, 192, 1, 1), 320, 3, 3, strides=(2, 2), padding="valid")
    b7 = conv2d_bn(conv2d_bn(conv2d_bn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
    b7 = conv2d_bn(b7, 192, 3, 3, strides=(2, 2), padding="valid")
    pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = layers.concatenate([b3, b7, pool], axis=3, name="mixed8")
    x = _block_c(x, 0)
    x = _block_c(x, 1)
    x = _base.classifier_head(x, include_top, pooling, classes, classifier_activation)
    return _base.finish(img_input, input_tensor, x, name, weights_path)


InceptionV3 = _base.constructor(
    _inception_v3, "InceptionV3", "inception_v3",
    """InceptionV3, as ``keras.applications.InceptionV3``.

    Example:
        >>> model = InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3))
    """,
    __name__,
)  # fmt: skip


preprocess_input, decode_predictions = imagenet_utils.family_functions(
    "InceptionV3", "tf", __name__
)
