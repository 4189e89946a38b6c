"""ConvNeXt Tiny/Small/Base/Large/XLarge: a ResNet modernised along the lines of a transformer.

Liu et al., "A ConvNet for the 2020s" (CVPR 2022). Each block: a 7x7 depthwise conv, layer
normalization, an inverted MLP (Dense 4x, GELU, Dense) scaled per channel (LayerScale), added
to its input. With ``include_preprocessing=True`` (the default) the model normalises [0, 255]
pixels itself, so :func:`preprocess_input` is the identity, as in Keras.
"""

from __future__ import annotations

from distkeras import initializers, layers
from distkeras.applications import _base, imagenet_utils
from distkeras.layers.base import Layer
from distkeras.models import Sequential

__all__ = [
    "ConvNeXtTiny",
    "ConvNeXtSmall",
    "ConvNeXtBase",
    "ConvNeXtLarge",
    "ConvNeXtXLarge",
    "preprocess_input",
    "decode_predictions",
]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/convnext/"
# variant -> (blocks per stage, channels per stage)
MODEL_CONFIGS = {
    "tiny": ([3, 3, 9, 3], [96, 192, 384, 768]),
    "small": ([3, 3, 27, 3], [96, 192, 384, 768]),
    "base": ([3, 3, 27, 3], [128, 256, 512, 1024]),
    "large": ([3, 3, 27, 3], [192, 384, 768, 1536]),
    "xlarge": ([3, 3, 27, 3], [256, 512, 1024, 2048]),
}


class LayerScale(Layer):
    """Multiplies each channel by a learnt ``gamma``, initialised to ``init_values``."""

    def __init__(self, init_values: float, projection_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def build(self, _):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(self.projection_dim,),
            initializer=initializers.Constant(self.init_values),
            trainable=True,
        )

    def call(self, x):
        return x * self.gamma

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"init_values": self.init_values, "projection_dim": self.projection_dim})
        return config


def _block(x, projection_dim: int, layer_scale_init_value, name: str):
    inputs = x
    x = layers.Conv2D(
        projection_dim, 7, padding="same", groups=projection_dim, name=f"{name}_depthwise_conv"
    )(x)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_layernorm")(x)
    x = layers.Dense(4 * projection_dim, name=f"{name}_pointwise_conv_1")(x)
    x = layers.Activation("gelu", name=f"{name}_gelu")(x)
    x = layers.Dense(projection_dim, name=f"{name}_pointwise_conv_2")(x)
    if layer_scale_init_value is not None:
        x = LayerScale(layer_scale_init_value, projection_dim, name=f"{name}_layer_scale")(x)
    # The released models have no stochastic depth (drop_path_rate 0): an identity here.
    return inputs + layers.Activation("linear", name=f"{name}_identity")(x)


def ConvNeXt(
    variant: str,
    include_top=True,
    include_preprocessing=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="convnext",
    layer_scale_init_value=1e-6,
):
    """ConvNeXt-``variant``: a patchify stem, four stages of blocks, three downsamplings."""
    depths, dims = MODEL_CONFIGS[variant]
    _base.check_arguments(weights, include_top, classes, pooling, classifier_activation)
    input_shape = _base.obtain_input_shape(input_shape, 224, 32, include_top, weights)
    weights_path = None
    if weights == "imagenet":
        weights_name = f"convnext_{variant}"
        if weights_name not in name:
            raise ValueError(
                f'Model name "{name}" does not match weights variant "{weights_name}". When '
                f"using imagenet weights, model name must contain the weights variant (e.g., "
                f'"{weights_name}").'
            )
        file_name = _base.h5_file_name(name, include_top)
        weights_path = _base.resolve_weights(weights, file_name, BASE_WEIGHTS_URL + file_name)
    elif weights is not None:
        weights_path = _base.resolve_weights(weights, None, None)
    img_input = _base.image_input(input_tensor, input_shape)
    x = img_input
    if include_preprocessing and input_shape[-1] == 3:
        x = layers.Normalization(
            mean=[0.485 * 255, 0.456 * 255, 0.406 * 255],
            variance=[(0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2],
            name=f"{name}_prestem_normalization",
        )(x)
    # The stem and the downsamplings are small Sequential models, as in Keras (their weights
    # sit under those models in the weight files).
    stem = Sequential(
        [
            layers.Conv2D(dims[0], 4, strides=4, name=f"{name}_stem_conv"),
            layers.LayerNormalization(epsilon=1e-6, name=f"{name}_stem_layernorm"),
        ],
        name=f"{name}_stem",
    )
    downsampling = [stem] + [
        Sequential(
            [
                layers.LayerNormalization(epsilon=1e-6, name=f"{name}_downsampling_layernorm_{i}"),
                layers.Conv2D(dims[i + 1], 2, strides=2, name=f"{name}_downsampling_conv_{i}"),
            ],
            name=f"{name}_downsampling_block_{i}",
        )
        for i in range(3)
    ]
    for i in range(4):
        x = downsampling[i](x)
        for j in range(depths[i]):
            x = _block(x, dims[i], layer_scale_init_value, f"{name}_stage_{i}_block_{j}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name=f"{name}_head_gap")(x)
        x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_head_layernorm")(x)
        x = layers.Dense(classes, activation=classifier_activation, name=f"{name}_head_dense")(x)
    else:
        x = _base.pool_features(x, pooling)
        x = layers.LayerNormalization(epsilon=1e-6)(x)
    return _base.finish(img_input, input_tensor, x, name, weights_path)


def _variant(variant: str, title: str):
    def constructor(
        include_top: bool = True,
        include_preprocessing: bool = True,
        weights="imagenet",
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes: int = 1000,
        classifier_activation="softmax",
        name: str = f"convnext_{variant}",
    ):
        return ConvNeXt(
            variant, include_top, include_preprocessing, weights, input_tensor, input_shape,
            pooling, classes, classifier_activation, name,
        )  # fmt: skip

    constructor.__name__ = constructor.__qualname__ = f"ConvNeXt{title}"
    depths, dims = MODEL_CONFIGS[variant]
    constructor.__doc__ = (
        f"ConvNeXt{title} (blocks {depths}, channels {dims}), as "
        f"``keras.applications.ConvNeXt{title}``.\n\n"
        "    Example:\n"
        f"        >>> model = ConvNeXt{title}(weights=None, input_shape=(32, 32, 3))\n"
    )
    return constructor


ConvNeXtTiny = _variant("tiny", "Tiny")
ConvNeXtSmall = _variant("small", "Small")
ConvNeXtBase = _variant("base", "Base")
ConvNeXtLarge = _variant("large", "Large")
ConvNeXtXLarge = _variant("xlarge", "XLarge")


def preprocess_input(x, data_format: str | None = None):
    """The identity: ConvNeXt models normalise their inputs themselves (a Keras no-op)."""
    imagenet_utils._check_data_format(data_format)
    return x


def decode_predictions(preds, top: int = 5):
    """See :func:`distkeras.applications.imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
