"""Pooling layers: max/average pooling over windows, and global pooling.

"same" padding is TensorFlow's (``ceil(size / stride)`` outputs, the odd padded cell at the
end), and padded cells never take part: max pooling pads with -inf, average pooling divides
each window by its count of real cells. Channels_last inputs are pooled through a zero-copy
channels-first view (see ``conv_base.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras.layers.base import Layer
from distkeras.layers.conv_base import (
    check_input_rank,
    check_window_fits,
    flat_pad,
    from_channels_first,
    lift,
    same_padding,
    standardize_data_format,
    standardize_padding,
    standardize_tuple,
    to_channels_first,
)

__all__ = [
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    # Keras's aliases.
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
]

_MAX_POOL = {2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {2: F.avg_pool2d, 3: F.avg_pool3d}


class BasePooling(Layer):
    """Max or average pooling over ``pool_size`` windows; subclasses set rank and mode."""

    rank = 2
    mode = "max"

    def __init__(
        self,
        pool_size=2,
        strides=None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = standardize_tuple(cls, "pool_size", pool_size, self.rank)
        self.strides = (
            self.pool_size
            if strides is None
            else standardize_tuple(cls, "strides", strides, self.rank)
        )
        self.padding = standardize_padding(cls, padding)
        self.data_format = standardize_data_format(cls, data_format)
        self._op_pool = lift(self.pool_size, 1)
        self._op_strides = lift(self.strides, 1)
        # (spatial shape, device, dtype) -> real-cell count of each "same" window.
        self._counts: dict = {}

    def build(self, input_shape):
        check_input_rank(self, input_shape, self.rank)
        check_window_fits(self, input_shape, self.pool_size, "pool size")

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format)
        pads = None
        if self.padding == "same":
            pads = same_padding(x.shape[2:], self._op_pool, self._op_strides, (1,) * (x.ndim - 2))
        y = self._max(x, pads) if self.mode == "max" else self._average(x, pads)
        return from_channels_first(y, self.rank, self.data_format)

    def _max(self, x, pads):
        pool = _MAX_POOL[x.ndim - 2]
        if pads is None:
            return pool(x, self._op_pool, self._op_strides)
        if all(a == b for a, b in pads):  # torch's own padding is -inf, which max ignores
            return pool(x, self._op_pool, self._op_strides, tuple(a for a, _ in pads))
        x = F.pad(x, flat_pad(pads), value=float("-inf"))
        return pool(x, self._op_pool, self._op_strides)

    def _average(self, x, pads):
        pool = _AVG_POOL[x.ndim - 2]
        if pads is None:
            return pool(x, self._op_pool, self._op_strides)
        if all(a == b for a, b in pads):
            return pool(
                x,
                self._op_pool,
                self._op_strides,
                tuple(a for a, _ in pads),
                count_include_pad=False,
            )
        # torch pads symmetrically only: pool zero-padded data, then rescale each window's
        # mean from "over the whole window" to "over its real cells".
        y = pool(F.pad(x, flat_pad(pads)), self._op_pool, self._op_strides)
        return y * self._window_scale(x, pads)

    def _window_scale(self, x, pads) -> torch.Tensor:
        key = (tuple(x.shape[2:]), x.device, x.dtype)
        scale = self._counts.get(key)
        if scale is None:
            # A plain tensor even under inference_mode, so later training steps may use it.
            with torch.inference_mode(False), torch.no_grad():
                ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
                pool = _AVG_POOL[x.ndim - 2]
                fraction = pool(F.pad(ones, flat_pad(pads)), self._op_pool, self._op_strides)
                scale = self._counts[key] = 1.0 / fraction
        return scale

    def get_config(self):
        config = super().get_config()
        config.update(
            pool_size=self.pool_size,
            padding=self.padding,
            strides=self.strides,
            data_format=self.data_format,
        )
        return config


class MaxPooling1D(BasePooling):
    """Max over windows of ``pool_size`` steps of ``(batch, steps, channels)`` inputs.

    Args:
        pool_size: window length (default 2).
        strides: step between windows; None means ``pool_size``.
        padding: "valid" or "same" (padded cells are ignored).
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> MaxPooling1D(2)(torch.ones(4, 10, 3)).shape
        torch.Size([4, 5, 3])
    """

    rank, mode = 1, "max"


class MaxPooling2D(BasePooling):
    """Max over ``pool_size`` windows of ``(batch, h, w, channels)`` images.

    Args:
        pool_size: int or tuple of 2 ints (default ``(2, 2)``).
        strides: int or tuple of 2 ints; None means ``pool_size``.
        padding: "valid" or "same" (TensorFlow's padding; padded cells are ignored).
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> MaxPooling2D()(torch.ones(4, 26, 26, 32)).shape
        torch.Size([4, 13, 13, 32])
    """

    rank, mode = 2, "max"


class MaxPooling3D(BasePooling):
    """Max over ``pool_size`` windows of ``(batch, d, h, w, channels)`` volumes.

    Example:
        >>> MaxPooling3D()(torch.ones(2, 4, 4, 4, 3)).shape
        torch.Size([2, 2, 2, 2, 3])
    """

    rank, mode = 3, "max"


class AveragePooling1D(BasePooling):
    """Mean over windows of ``pool_size`` steps; "same" windows average real cells only.

    Example:
        >>> AveragePooling1D(2, padding="same")(torch.ones(4, 5, 3)).shape
        torch.Size([4, 3, 3])
    """

    rank, mode = 1, "average"


class AveragePooling2D(BasePooling):
    """Mean over ``pool_size`` windows of images; "same" windows average real cells only.

    Arguments as :class:`MaxPooling2D`.

    Example:
        >>> AveragePooling2D(3, strides=2, padding="same")(torch.ones(4, 8, 8, 3)).shape
        torch.Size([4, 4, 4, 3])
    """

    rank, mode = 2, "average"


class AveragePooling3D(BasePooling):
    """Mean over ``pool_size`` windows of volumes; "same" windows average real cells only.

    Example:
        >>> AveragePooling3D()(torch.ones(2, 4, 4, 4, 3)).shape
        torch.Size([2, 2, 2, 2, 3])
    """

    rank, mode = 3, "average"


class BaseGlobalPooling(Layer):
    """Max or mean over every spatial dimension; subclasses set rank and mode."""

    rank = 2
    mode = "max"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(type(self).__name__, data_format)
        self.keepdims = bool(keepdims)
        first = 1 if self.data_format == "channels_last" else 2
        self._axes = tuple(range(first, first + self.rank))

    def build(self, input_shape):
        check_input_rank(self, input_shape, self.rank)

    def call(self, inputs):
        if self.mode == "max":
            return inputs.amax(dim=self._axes, keepdim=self.keepdims)
        return inputs.mean(dim=self._axes, keepdim=self.keepdims)

    def get_config(self):
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config


class GlobalMaxPooling1D(BaseGlobalPooling):
    """Max over the steps of ``(batch, steps, channels)`` inputs -> ``(batch, channels)``.

    Args:
        data_format: "channels_last" (default) or "channels_first".
        keepdims: keep the steps dimension with length 1.

    Example:
        >>> GlobalMaxPooling1D()(torch.ones(4, 10, 3)).shape
        torch.Size([4, 3])
    """

    rank, mode = 1, "max"


class GlobalMaxPooling2D(BaseGlobalPooling):
    """Max over height and width -> ``(batch, channels)`` (``keepdims`` keeps 1s).

    Example:
        >>> GlobalMaxPooling2D(keepdims=True)(torch.ones(4, 5, 5, 3)).shape
        torch.Size([4, 1, 1, 3])
    """

    rank, mode = 2, "max"


class GlobalMaxPooling3D(BaseGlobalPooling):
    """Max over the three spatial dimensions -> ``(batch, channels)``.

    Example:
        >>> GlobalMaxPooling3D()(torch.ones(2, 3, 3, 3, 4)).shape
        torch.Size([2, 4])
    """

    rank, mode = 3, "max"


class GlobalAveragePooling1D(BaseGlobalPooling):
    """Mean over the steps of ``(batch, steps, channels)`` inputs -> ``(batch, channels)``.

    With a mask (e.g. from ``Embedding(mask_zero=True)``) the mean is over unmasked steps
    only; the output carries no mask.

    Args:
        data_format: "channels_last" (default) or "channels_first".
        keepdims: keep the steps dimension with length 1.

    Example:
        >>> GlobalAveragePooling1D()(torch.ones(4, 10, 3)).shape
        torch.Size([4, 3])
    """

    rank, mode = 1, "average"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs):
        super().__init__(data_format=data_format, keepdims=keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return inputs.mean(dim=self._axes, keepdim=self.keepdims)
        keep = mask.to(torch.bool).unsqueeze(2 if self.data_format == "channels_last" else 1)
        # where(), not a product: masked steps holding inf/nan must not leak into the mean.
        total = torch.where(keep, inputs, 0).sum(dim=self._axes, keepdim=self.keepdims)
        count = keep.to(inputs.dtype).sum(dim=self._axes, keepdim=self.keepdims)
        return total / count

    def compute_mask(self, inputs, mask=None):
        return None


class GlobalAveragePooling2D(BaseGlobalPooling):
    """Mean over height and width -> ``(batch, channels)`` (``keepdims`` keeps 1s).

    Example:
        >>> GlobalAveragePooling2D()(torch.ones(4, 5, 5, 3)).shape
        torch.Size([4, 3])
    """

    rank, mode = 2, "average"


class GlobalAveragePooling3D(BaseGlobalPooling):
    """Mean over the three spatial dimensions -> ``(batch, channels)``.

    Example:
        >>> GlobalAveragePooling3D()(torch.ones(2, 3, 3, 3, 4)).shape
        torch.Size([2, 4])
    """

    rank, mode = 3, "average"


MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalMaxPool3D = GlobalMaxPooling3D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalAvgPool3D = GlobalAveragePooling3D
