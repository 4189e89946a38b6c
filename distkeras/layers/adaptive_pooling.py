"""Adaptive pooling layers: average or max pooling to a fixed output size.

Each output cell pools the input cells ``floor(i * L / n) .. ceil((i + 1) * L / n)``, the
windows torch's ``adaptive_*_pool`` kernels use and Keras 3 computes.
"""

from __future__ import annotations

import torch.nn.functional as F

from distkeras.layers.base import Layer
from distkeras.layers.conv_base import (
    check_input_rank,
    from_channels_first,
    standardize_data_format,
    standardize_tuple,
    to_channels_first,
)

__all__ = [
    "AdaptiveAveragePooling1D",
    "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D",
    "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D",
]

_KERNELS = {
    ("average", 2): F.adaptive_avg_pool2d,
    ("average", 3): F.adaptive_avg_pool3d,
    ("max", 2): F.adaptive_max_pool2d,
    ("max", 3): F.adaptive_max_pool3d,
}


class _AdaptivePooling(Layer):
    rank: int
    mode: str

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.output_size = standardize_tuple(name, "output_size", output_size, self.rank)
        self.data_format = standardize_data_format(name, data_format)

    def build(self, input_shape):
        check_input_rank(self, input_shape, self.rank)

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format)
        size = (1, *self.output_size) if self.rank == 1 else self.output_size
        y = _KERNELS[(self.mode, max(self.rank, 2))](x, size)
        return from_channels_first(y, self.rank, self.data_format)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.data_format == "channels_last":
            return (input_shape[0], *self.output_size, input_shape[-1])
        return (input_shape[0], input_shape[1], *self.output_size)

    def get_config(self):
        config = super().get_config()
        config.update(output_size=self.output_size, data_format=self.data_format)
        return config


def _pooling(name: str, mode: str, rank: int, doc: str) -> type:
    return type(name, (_AdaptivePooling,), {"rank": rank, "mode": mode, "__doc__": doc})


AdaptiveAveragePooling1D = _pooling(
    "AdaptiveAveragePooling1D", "average", 1, "Average pooling of steps to `output_size`."
)
AdaptiveAveragePooling2D = _pooling(
    "AdaptiveAveragePooling2D", "average", 2, "Average pooling of (rows, cols) to `output_size`."
)
AdaptiveAveragePooling3D = _pooling(
    "AdaptiveAveragePooling3D", "average", 3, "Average pooling of 3D volumes to `output_size`."
)
AdaptiveMaxPooling1D = _pooling(
    "AdaptiveMaxPooling1D", "max", 1, "Max pooling of steps to `output_size`."
)
AdaptiveMaxPooling2D = _pooling(
    "AdaptiveMaxPooling2D", "max", 2, "Max pooling of (rows, cols) to `output_size`."
)
AdaptiveMaxPooling3D = _pooling(
    "AdaptiveMaxPooling3D", "max", 3, "Max pooling of 3D volumes to `output_size`."
)
for _cls in (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
):
    _cls.__module__ = __name__
