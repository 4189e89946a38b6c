"""The MBConv pieces EfficientNet and EfficientNetV2 share (Keras's layer names and
initializers, so both families' weight files load): the 1x1/kxk convolution, the
squeeze-and-excitation gate and the stochastic-depth residual."""

from __future__ import annotations

from distkeras import layers

CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}


def conv(filters: int, kernel_size, strides=1, activation=None, name: str | None = None):
    """A "same" Conv2D; it has a bias only when an activation follows inside it (the SE
    convs), since a BatchNormalization follows the others."""
    return layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=activation is not None,
        activation=activation, kernel_initializer=CONV_KERNEL_INITIALIZER, name=name,
    )  # fmt: skip


def squeeze_excite(x, filters: int, filters_in: int, se_ratio: float, activation, name: str):
    """Scales each of ``x``'s ``filters`` channels by a gate computed from their means."""
    se = layers.GlobalAveragePooling2D(name=f"{name}se_squeeze")(x)
    se = layers.Reshape((1, 1, filters), name=f"{name}se_reshape")(se)
    filters_se = max(1, int(filters_in * se_ratio))
    se = conv(filters_se, 1, activation=activation, name=f"{name}se_reduce")(se)
    se = conv(filters, 1, activation="sigmoid", name=f"{name}se_expand")(se)
    return layers.multiply([x, se], name=f"{name}se_excite")


def residual(x, inputs, strides, filters_in: int, filters_out: int, drop_rate: float, name: str):
    """Adds the block's input back when the shapes allow, dropping whole samples' branches
    at ``drop_rate`` (stochastic depth)."""
    if strides == 1 and filters_in == filters_out:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
        x = layers.add([x, inputs], name=f"{name}add")
    return x
