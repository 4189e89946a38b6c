"""DenseNet121/169/201: each layer's output is concatenated to everything before it.

Huang et al., "Densely Connected Convolutional Networks" (CVPR 2017). Inputs are
preprocessed in "torch" mode (scaled to [0, 1], then the ImageNet mean and std).
"""

from __future__ import annotations

from distkeras import layers
from distkeras.applications import _base, imagenet_utils

__all__ = ["DenseNet121", "DenseNet169", "DenseNet201", "preprocess_input", "decode_predictions"]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
_EPSILON = 1.001e-5
_FILE_NAMES = {(6, 12, 24, 16): "densenet121", (6, 12, 32, 32): "densenet169"}
_FILE_NAMES[(6, 12, 48, 32)] = "densenet201"


def _bn_relu(x, name):
    x = layers.BatchNormalization(axis=3, epsilon=_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def conv_block(x, growth_rate: int, name: str):
    """BN-ReLU-1x1 (4 x growth), BN-ReLU-3x3 (growth), concatenated onto the input."""
    x1 = _bn_relu(x, f"{name}_0")
    x1 = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(x1)
    x1 = _bn_relu(x1, f"{name}_1")
    x1 = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x1)
    return layers.Concatenate(axis=3, name=f"{name}_concat")([x, x1])


def dense_block(x, blocks: int, name: str):
    for i in range(blocks):
        x = conv_block(x, 32, name=f"{name}_block{i + 1}")
    return x


def transition_block(x, reduction: float, name: str):
    """Halves the channels (``reduction``) and the resolution between dense blocks."""
    x = _bn_relu(x, name)
    x = layers.Conv2D(int(x.shape[3] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def DenseNet(
    blocks,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="densenet",
):
    """A DenseNet with ``blocks[i]`` conv blocks in each of its four dense blocks."""
    family = _FILE_NAMES.get(tuple(blocks))
    file_name = family and _base.h5_file_name(family + _base.TF_KERNELS, include_top)
    img_input, weights_path = _base.start(
        weights, include_top, classes, pooling, classifier_activation, input_tensor,
        input_shape, 224, 32, file_name, BASE_WEIGHTS_URL + (file_name or ""),
    )  # fmt: skip
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)))(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, count in enumerate(blocks, 2):
        x = dense_block(x, count, name=f"conv{stage}")
        if stage < 5:
            x = transition_block(x, 0.5, name=f"pool{stage}")
    x = layers.BatchNormalization(axis=3, epsilon=_EPSILON, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = _base.classifier_head(
        x, include_top, pooling, classes, classifier_activation,
        pool_names=("avg_pool", "max_pool"),
    )  # fmt: skip
    return _base.finish(img_input, input_tensor, x, name, weights_path)


def _variant(blocks: list, func_name: str, doc: str):
    def build(*args):
        return DenseNet(blocks, *args)

    return _base.constructor(build, func_name, func_name.lower(), doc, __name__)


DenseNet121 = _variant(
    [6, 12, 24, 16], "DenseNet121",
    """DenseNet121, as ``keras.applications.DenseNet121``.

    Example:
        >>> model = DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3))
    """,
)  # fmt: skip
DenseNet169 = _variant(
    [6, 12, 32, 32], "DenseNet169", """DenseNet169, as ``keras.applications.DenseNet169``."""
)
DenseNet201 = _variant(
    [6, 12, 48, 32], "DenseNet201", """DenseNet201, as ``keras.applications.DenseNet201``."""
)


preprocess_input, decode_predictions = imagenet_utils.family_functions(
    "DenseNet", "torch", __name__
)
