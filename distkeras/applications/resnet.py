"""ResNet50/101/152 (v1, post-activation) and the residual stacks ResNetV2 shares.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2015). Layer names are
Keras's (``conv2_block1_0_conv``...), so Keras's weight files load.
"""

from __future__ import annotations

from distkeras import layers
from distkeras.applications import _base, imagenet_utils

__all__ = ["ResNet50", "ResNet101", "ResNet152", "preprocess_input", "decode_predictions"]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
_BN_EPSILON = 1.001e-5


def _bn(x, name):
    return layers.BatchNormalization(axis=3, epsilon=_BN_EPSILON, name=name)(x)


def residual_block_v1(x, filters, kernel_size=3, stride=1, conv_shortcut=True, name=None):
    """Bottleneck block, post-activation: 1x1 (stride), kxk, 1x1 x4, added to the shortcut."""
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_2_conv")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(_bn(x, f"{name}_2_bn"))
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = _bn(x, f"{name}_3_bn")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def stack_residual_blocks_v1(x, filters, blocks, stride1=2, name=None):
    x = residual_block_v1(x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = residual_block_v1(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def residual_block_v2(x, filters, kernel_size=3, stride=1, conv_shortcut=False, name=None):
    """Pre-activation bottleneck: BN-ReLU first; the stride sits on the kxk conv."""
    preact = _bn(x, f"{name}_preact_bn")
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    else:
        # A 1x1 max pool with a stride is how Keras subsamples the identity shortcut.
        shortcut = layers.MaxPooling2D(1, strides=stride)(x) if stride > 1 else x
    x = layers.Conv2D(filters, 1, strides=1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, kernel_size, strides=stride, use_bias=False, name=f"{name}_2_conv")(
        x
    )
    x = layers.Activation("relu", name=f"{name}_2_relu")(_bn(x, f"{name}_2_bn"))
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return layers.Add(name=f"{name}_out")([shortcut, x])


def stack_residual_blocks_v2(x, filters, blocks, stride1=2, name=None):
    x = residual_block_v2(x, filters, conv_shortcut=True, name=f"{name}_block1")
    for i in range(2, blocks):
        x = residual_block_v2(x, filters, name=f"{name}_block{i}")
    return residual_block_v2(x, filters, stride=stride1, name=f"{name}_block{blocks}")


def ResNet(
    stack_fn,
    preact: bool,
    use_bias: bool,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet",
    weights_name=None,
):
    """The network around ``stack_fn``'s residual stages (v1 when ``preact`` is False)."""
    file_name = _base.h5_file_name(f"{weights_name}{_base.TF_KERNELS}", include_top)
    img_input, weights_path = _base.start(
        weights, include_top, classes, pooling, classifier_activation, input_tensor,
        input_shape, 224, 32, file_name if weights_name else None, BASE_WEIGHTS_URL + file_name,
    )  # fmt: skip
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
    if not preact:
        x = layers.Activation("relu", name="conv1_relu")(_bn(x, "conv1_bn"))
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = stack_fn(x)
    if preact:
        x = layers.Activation("relu", name="post_relu")(_bn(x, "post_bn"))
    x = _base.classifier_head(
        x, include_top, pooling, classes, classifier_activation,
        pool_names=("avg_pool", "max_pool"),
    )  # fmt: skip
    return _base.finish(img_input, input_tensor, x, name, weights_path)


def _v1_stacks(blocks3: int, blocks4: int):
    def stack_fn(x):
        x = stack_residual_blocks_v1(x, 64, 3, stride1=1, name="conv2")
        x = stack_residual_blocks_v1(x, 128, blocks3, name="conv3")
        x = stack_residual_blocks_v1(x, 256, blocks4, name="conv4")
        return stack_residual_blocks_v1(x, 512, 3, name="conv5")

    return stack_fn


def variant(stacks, preact: bool, func_name: str, weights_name: str, doc: str, module=__name__):
    """The public ``ResNet...`` function for one depth (``weights_name``: its default model
    name and its ImageNet file's stem)."""

    def build(*args):
        return ResNet(stacks, preact, True, *args, weights_name)

    return _base.constructor(build, func_name, weights_name, doc, module)


ResNet50 = variant(
    _v1_stacks(4, 6), False, "ResNet50", "resnet50",
    """ResNet50, as ``keras.applications.ResNet50``.

    Example:
        >>> model = ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    """,
)  # fmt: skip
ResNet101 = variant(
    _v1_stacks(4, 23), False, "ResNet101", "resnet101",
    """ResNet101, as ``keras.applications.ResNet101``.""",
)  # fmt: skip
ResNet152 = variant(
    _v1_stacks(8, 36), False, "ResNet152", "resnet152",
    """ResNet152, as ``keras.applications.ResNet152``.""",
)  # fmt: skip


preprocess_input, decode_predictions = imagenet_utils.family_functions("ResNet", "caffe", __name__)
