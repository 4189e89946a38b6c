"""InceptionResNetV2: Inception branches whose concatenation is added back, scaled, as a residual.

Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual Connections on
Learning" (AAAI 2017). Default input 299x299, at least 75x75; inputs scaled to [-1, 1].
"""

from __future__ import annotations

from distkeras import layers
from distkeras.applications import _base, imagenet_utils
from distkeras.layers.base import Layer

__all__ = ["InceptionResNetV2", "preprocess_input", "decode_predictions"]

_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/"


class CustomScaleLayer(Layer):
    """``inputs[0] + inputs[1] * scale``: the scaled residual sum (Keras's layer of this name)."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        return inputs[0] + inputs[1] * self.scale

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


def conv2d_bn(x, filters, kernel_size, strides=1, padding="same", activation="relu", name=None):
    """Conv without bias, BatchNormalization without scale, then ``activation``."""
    names = (None, None, None) if name is None else (name, f"{name}_bn", f"{name}_ac")
    return _base.conv_bn(x, filters, kernel_size, strides, padding, activation, names)


def inception_resnet_block(x, scale: float, block_type: str, block_idx: int, activation="relu"):
    """Branches by ``block_type`` (block35, block17, block8), a 1x1 conv back to the input's
    channels (with bias, no BN), added to the input times ``scale``."""
    if block_type == "block35":
        branches = [
            conv2d_bn(x, 32, 1),
            conv2d_bn(conv2d_bn(x, 32, 1), 32, 3),
            conv2d_bn(conv2d_bn(conv2d_bn(x, 32, 1), 48, 3), 64, 3),
        ]
    elif block_type == "block17":
        # Built in Keras's order, so the automatic layer names come out the same.
        b0 = conv2d_bn(x, 192, 1)
        branches = [b0, conv2d_bn(conv2d_bn(conv2d_bn(x, 128, 1), 160, [1, 7]), 192, [7, 1])]
    elif block_type == "block8":
        b0 = conv2d_bn(x, 192, 1)
        branches = [b0, conv2d_bn(conv2d_bn(conv2d_bn(x, 192, 1), 224, [1, 3]), 256, [3, 1])]
    else:
        raise ValueError(
            "Unknown Inception-ResNet block type. Valid block types are 'block35', 'block17' "
            f"or 'block8'. Received: block_type={block_type}"
        )
    block_name = f"{block_type}_{block_idx}"
    mixed = layers.Concatenate(axis=3, name=f"{block_name}_mixed")(branches)
    up = layers.Conv2D(x.shape[3], 1, use_bias=True, name=f"{block_name}_conv")(mixed)
    x = CustomScaleLayer(scale)([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{block_name}_ac")(x)
    return x


def _inception_resnet_v2(
    include_top, weights, input_tensor, input_shape, pooling, classes,
    classifier_activation, name,
):  # fmt: skip
    """The body of :func:`InceptionResNetV2` (Keras's standard arguments, in order)."""
    file_name = _base.h5_file_name("inception_resnet_v2" + _base.TF_KERNELS, include_top)
    img_input, weights_path = _base.start(
        weights, include_top, classes, pooling, classifier_activation, input_tensor,
        input_shape, 299, 75, file_name, _URL + file_name,
    )  # fmt: skip
    x = conv2d_bn(img_input, 32, 3, strides=2, padding="valid")
    x = conv2d_bn(x, 32, 3, padding="valid")
    x = conv2d_bn(x, 64, 3)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = conv2d_bn(x, 80, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, padding="valid")
    x = layers.MaxPooling2D(3, strides=2)(x)
    branches = [
        conv2d_bn(x, 96, 1),
        conv2d_bn(conv2d_bn(x, 48, 1), 64, 5),
        conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1), 96, 3), 96, 3),
        conv2d_bn(layers.AveragePooling2D(3, strides=1, padding="same")(x), 64, 1),
    ]
    x = layers.Concatenate(axis=3, name="mixed_5b")(branches)
    for block_idx in range(1, 11):
        x = inception_resnet_block(x, 0.17, "block35", block_idx)
    branches = [
        conv2d_bn(x, 384, 3, strides=2, padding="valid"),
        conv2d_bn(conv2d_bn(conv2d_bn(x, 256, 1), 256, 3), 384, 3, strides=2, padding="valid"),
        layers.MaxPooling2D(3, strides=2, padding="valid")(x),
    ]
    x = layers.Concatenate(axis=3, name="mixed_6a")(branches)
    for block_idx in range(1, 21):
        x = inception_resnet_block(x, 0.1, "block17", block_idx)
    branches = [
        conv2d_bn(conv2d_bn(x, 256, 1), 384, 3, strides=2, padding="valid"),
        conv2d_bn(conv2d_bn(x, 256, 1), 288, 3, strides=2, padding="valid"),
        conv2d_bn(conv2d_bn(conv2d_bn(x, 256, 1), 288, 3), 320, 3, strides=2, padding="valid"),
        layers.MaxPooling2D(3, strides=2, padding="valid")(x),
    ]
    x = layers.Concatenate(axis=3, name="mixed_7a")(branches)
    for block_idx in range(1, 10):
        x = inception_resnet_block(x, 0.2, "block8", block_idx)
    x = inception_resnet_block(x, 1.0, "block8", 10, activation=None)
    x = conv2d_bn(x, 1536, 1, name="conv_7b")
    x = _base.classifier_head(x, include_top, pooling, classes, classifier_activation)
    return _base.finish(img_input, input_tensor, x, name, weights_path)


InceptionResNetV2 = _base.constructor(
    _inception_resnet_v2, "InceptionResNetV2", "inception_resnet_v2",
    """InceptionResNetV2, as ``keras.applications.InceptionResNetV2``.

    Example:
        >>> model = InceptionResNetV2(weights=None, include_top=False, input_shape=(75, 75, 3))
    """,
    __name__,
)  # fmt: skip


preprocess_input, decode_predictions = imagenet_utils.family_functions(
    "InceptionResNetV2", "tf", __name__
)
