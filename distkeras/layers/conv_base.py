"""Shared machinery of the convolution and pooling layers.

Keras lays images out channels_last, ``(N, *spatial, C)``; torch's kernels want
``(N, C, *spatial)``. A permute between the two is a zero-copy view whose strides are torch's
``channels_last`` memory format, which its convolution and pooling kernels run natively, so
inputs are permuted in, and results permuted back, without copies. 1D layers run as 2D ops on
a ``(N, C, 1, L)`` view for the same reason (torch's conv1d would copy a permuted input).

"same" padding follows TensorFlow: ``out = ceil(n / stride)`` and the total padding
``max((out - 1) * stride + dilated_kernel - n, 0)`` is split with the odd pixel at the end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras import activations, backend, constraints, initializers, regularizers
from distkeras.layers.base import Layer
from distkeras.layers.core import check_positive_int

_CONV_FNS = {2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE_FNS = {2: F.conv_transpose2d, 3: F.conv_transpose3d}
# Keras 3 configs carry these LoRA/DoRA keys; they are accepted when unset.
_UNSUPPORTED_KERAS_KEYS = ("lora_rank", "lora_alpha", "dora_rank", "dora_alpha")


# ------------------------------------------------------------------------ validation
def standardize_tuple(layer: str, name: str, value, rank: int, allow_zero: bool = False):
    """An int or a sequence of ``rank`` ints -> a tuple; every entry positive (or >= 0)."""
    items = (value,) * rank if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    lowest = 0 if allow_zero else 1
    if len(items) != rank or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= lowest for v in items
    ):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(
            f"{layer}: argument `{name}` must be a {kind} integer or a tuple of {rank} {kind} "
            f"integers. Received: {name}={value!r}"
        )
    return items


def standardize_padding(layer: str, padding, allow_causal: bool = False) -> str:
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    value = padding.lower() if isinstance(padding, str) else padding
    if value not in allowed:
        raise ValueError(
            f"{layer}: argument `padding` must be one of {allowed}. Received: padding={padding!r}"
        )
    return value


def standardize_data_format(layer: str, data_format) -> str:
    if data_format is None:  # Keras's global image_data_format, when the backend has one
        getter = getattr(backend, "image_data_format", None)
        return getter() if getter is not None else "channels_last"
    value = data_format.lower() if isinstance(data_format, str) else data_format
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            f"{layer}: argument `data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return value


def check_input_rank(layer: Layer, input_shape, rank: int) -> None:
    if len(input_shape) != rank + 2:
        spatial = ("steps",) if rank == 1 else ("dim",) * rank
        channels_last = layer.data_format == "channels_last"
        dims = ("batch", *spatial, "channels") if channels_last else ("batch", "channels", *spatial)
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}' expects inputs of rank {rank + 2} "
            f"{dims} ({layer.data_format}). Received: input_shape={tuple(input_shape)}"
        )
    if 0 in tuple(input_shape)[1:]:  # torch's conv/pool kernels reject empty dimensions
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}' needs non-empty spatial and channel "
            f"dimensions. Received: input_shape={tuple(input_shape)}"
        )


def channel_dim(layer: Layer, input_shape) -> int:
    channels = input_shape[-1] if layer.data_format == "channels_last" else input_shape[1]
    if channels is None:
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}' needs a known channel dimension. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    return int(channels)


def spatial_dims(layer: Layer, input_shape) -> tuple:
    shape = tuple(input_shape)
    return shape[1:-1] if layer.data_format == "channels_last" else shape[2:]


def check_window_fits(layer: Layer, input_shape, window, what: str) -> None:
    """'valid' windows larger than the input would give an empty output: say so early."""
    if layer.padding != "valid":
        return
    for size, w in zip(spatial_dims(layer, input_shape), window):
        if size is not None and size < w:
            raise ValueError(
                f"{type(layer).__name__} layer '{layer.name}': with padding='valid' the input's "
                f"spatial shape {spatial_dims(layer, input_shape)} must be at least the {what} "
                f"{tuple(window)}. Received: input_shape={tuple(input_shape)}"
            )


# ------------------------------------------------------------------------- layouts
def lift(values: tuple, fill: int) -> tuple:
    """1D arguments become 2D ones with a dummy leading dimension."""
    return (fill, *values) if len(values) == 1 else tuple(values)


def to_channels_first(x: torch.Tensor, rank: int, data_format: str) -> torch.Tensor:
    """A ``(N, C, *spatial)`` view of ``x`` (``(N, C, 1, L)`` for 1D data)."""
    if data_format == "channels_last":
        if rank == 1:
            x = x.unsqueeze(1)
        return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))
    return x.unsqueeze(2) if rank == 1 else x


def from_channels_first(y: torch.Tensor, rank: int, data_format: str) -> torch.Tensor:
    """Inverse of :func:`to_channels_first`."""
    if data_format == "channels_last":
        y = y.permute(0, *range(2, y.ndim), 1)
        return y.squeeze(1) if rank == 1 else y
    return y.squeeze(2) if rank == 1 else y


def kernel_to_torch(kernel: torch.Tensor) -> torch.Tensor:
    """Keras ``(k..., in, out)`` -> torch ``(out, in, k...)`` (also transposed kernels)."""
    r = kernel.ndim - 2
    return kernel.permute(r + 1, r, *range(r))


def kernel_to_keras(kernel: torch.Tensor) -> torch.Tensor:
    """torch ``(out, in, k...)`` -> Keras ``(k..., in, out)``."""
    return kernel.permute(*range(2, kernel.ndim), 1, 0)


def same_padding(sizes, kernel, strides, dilation) -> list[tuple[int, int]]:
    """TensorFlow's (before, after) "same" padding per spatial dimension."""
    pads = []
    for n, k, s, d in zip(sizes, kernel, strides, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def flat_pad(pads) -> list[int]:
    """(before, after) pairs in dimension order -> ``F.pad``'s last-dimension-first list."""
    return [p for pair in reversed(pads) for p in pair]


def convolve(x, weight, bias, kernel, strides, dilation, padding, groups):
    """``F.conv2d/3d`` on a channels-first view with Keras's padding modes."""
    if padding == "valid":
        torch_padding = 0
    elif padding == "causal":
        x = F.pad(x, ((kernel[-1] - 1) * dilation[-1], 0))
        torch_padding = 0
    else:
        pads = same_padding(x.shape[2:], kernel, strides, dilation)
        if all(a == b for a, b in pads):
            torch_padding = tuple(a for a, _ in pads)
        else:  # torch pads symmetrically only; the odd pixel goes at the end, as in TF
            x = F.pad(x, flat_pad(pads))
            torch_padding = 0
    return _CONV_FNS[x.ndim - 2](x, weight, bias, strides, torch_padding, dilation, groups)


class BaseConv(Layer):
    """N-D convolution; subclasses set ``rank``. See :class:`distkeras.layers.Conv2D`."""

    rank = 2

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate=1,
        groups: int = 1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        cls, rank = type(self).__name__, self.rank
        self.filters = check_positive_int(cls, "filters", filters)
        self.groups = check_positive_int(cls, "groups", groups)
        if filters % groups:
            raise ValueError(
                f"{cls}: `filters` must be divisible by `groups`. "
                f"Received: filters={filters}, groups={groups}"
            )
        self.kernel_size = standardize_tuple(cls, "kernel_size", kernel_size, rank)
        self.strides = standardize_tuple(cls, "strides", strides, rank)
        self.dilation_rate = standardize_tuple(cls, "dilation_rate", dilation_rate, rank)
        check_strides_and_dilation(cls, self.strides, self.dilation_rate)
        self.padding = standardize_padding(cls, padding, allow_causal=rank == 1)
        self.data_format = standardize_data_format(cls, data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self._op_kernel = lift(self.kernel_size, 1)
        self._op_strides = lift(self.strides, 1)
        self._op_dilation = lift(self.dilation_rate, 1)

    def build(self, input_shape):
        check_input_rank(self, input_shape, self.rank)
        channels = channel_dim(self, input_shape)
        if channels % self.groups:
            raise ValueError(
                f"{type(self).__name__} layer '{self.name}': the input's {channels} channels "
                f"must be divisible by groups={self.groups}. Received: input_shape="
                f"{tuple(input_shape)}"
            )
        dilated = [(k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate)]
        check_window_fits(self, input_shape, dilated, "dilated kernel")
        self.kernel = self.add_weight(
            shape=(*self.kernel_size, channels // self.groups, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
            to_storage=kernel_to_torch,
            to_keras=kernel_to_keras,
        )
        self.bias = add_bias(self, self.filters)

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format)
        kernel = self.kernel.unsqueeze(2) if self.rank == 1 else self.kernel
        y = convolve(
            x,
            kernel,
            self.bias,
            self._op_kernel,
            self._op_strides,
            self._op_dilation,
            self.padding,
            self.groups,
        )
        return self.activation(from_channels_first(y, self.rank, self.data_format))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
            groups=self.groups,
        )
        config.update(common_config(self, "kernel"))
        return config

    @classmethod
    def from_config(cls, config: dict):
        return super().from_config(drop_unset_keras_keys(cls.__name__, config))


class BaseConvTranspose(Layer):
    """N-D transposed convolution; see :class:`distkeras.layers.Conv2DTranspose`."""

    rank = 2

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        output_padding=None,
        data_format: str | None = None,
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        cls, rank = type(self).__name__, self.rank
        self.filters = check_positive_int(cls, "filters", filters)
        self.kernel_size = standardize_tuple(cls, "kernel_size", kernel_size, rank)
        self.strides = standardize_tuple(cls, "strides", strides, rank)
        self.dilation_rate = standardize_tuple(cls, "dilation_rate", dilation_rate, rank)
        check_strides_and_dilation(cls, self.strides, self.dilation_rate)
        self.padding = standardize_padding(cls, padding)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = standardize_tuple(
                cls, "output_padding", output_padding, rank, allow_zero=True
            )
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ValueError(
                    f"{cls}: every `output_padding` must be smaller than its stride. "
                    f"Received: output_padding={output_padding!r}, strides={strides!r}"
                )
        self.data_format = standardize_data_format(cls, data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self._op_kernel = lift(self.kernel_size, 1)
        self._op_strides = lift(self.strides, 1)
        self._op_dilation = lift(self.dilation_rate, 1)
        self._op_output_padding = None if output_padding is None else lift(self.output_padding, 0)

    def build(self, input_shape):
        check_input_rank(self, input_shape, self.rank)
        channels = channel_dim(self, input_shape)
        # Keras's (k..., filters, in) maps to torch's (in, filters, k...) by kernel_to_torch.
        self.kernel = self.add_weight(
            shape=(*self.kernel_size, self.filters, channels),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
            to_storage=kernel_to_torch,
            to_keras=kernel_to_keras,
        )
        self.bias = add_bias(self, self.filters)

    def _output_lengths(self, sizes) -> list[int]:
        """Keras's transposed-convolution output length per spatial dimension."""
        lengths = []
        output_padding = self._op_output_padding or (None,) * len(sizes)
        for n, k, s, d, p in zip(
            sizes, self._op_kernel, self._op_strides, self._op_dilation, output_padding
        ):
            k = (k - 1) * d + 1
            if p is None:
                lengths.append(n * s + max(k - s, 0) if self.padding == "valid" else n * s)
            else:
                crop = k // 2 if self.padding == "same" else 0
                lengths.append((n - 1) * s + k - 2 * crop + p)
        return lengths

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format)
        kernel = self.kernel.unsqueeze(2) if self.rank == 1 else self.kernel
        sizes = x.shape[2:]
        lengths = self._output_lengths(sizes)
        # The result is the adjoint of a TF-padded convolution: the full transposed output
        # cropped by that convolution's leading pad, then cut (or zero-extended) to length.
        crops, extras = [], []
        for n, k, s, d, length in zip(
            sizes, self._op_kernel, self._op_strides, self._op_dilation, lengths
        ):
            full = (n - 1) * s + (k - 1) * d + 1
            crop = max(full - length, 0) // 2 if self.padding == "same" else 0
            crops.append(crop)
            extras.append(length - (full - 2 * crop))
        y = _CONV_TRANSPOSE_FNS[x.ndim - 2](
            x,
            kernel,
            self.bias,
            self._op_strides,
            tuple(crops),
            tuple(max(e, 0) for e in extras),
            1,
            self._op_dilation,
        )
        if any(e < 0 for e in extras):  # the odd cropped pixel is at the end, as in TF
            y = y[(Ellipsis, *(slice(0, length) for length in lengths))]
        return self.activation(from_channels_first(y, self.rank, self.data_format))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            output_padding=self.output_padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        config.update(common_config(self, "kernel"))
        return config

    @classmethod
    def from_config(cls, config: dict):
        return super().from_config(drop_unset_keras_keys(cls.__name__, config))


# -------------------------------------------------------------------------- helpers
def check_strides_and_dilation(layer: str, strides: tuple, dilation: tuple) -> None:
    if max(strides) > 1 and max(dilation) > 1:
        raise ValueError(
            f"{layer}: `strides` > 1 cannot be combined with `dilation_rate` > 1. "
            f"Received: strides={strides}, dilation_rate={dilation}"
        )


def add_bias(layer: Layer, size: int):
    if not layer.use_bias:
        return None
    return layer.add_weight(
        shape=(size,),
        initializer=layer.bias_initializer,
        regularizer=layer.bias_regularizer,
        constraint=layer.bias_constraint,
        name="bias",
    )


def common_config(layer: Layer, *kernels: str) -> dict:
    """activation, use_bias and the initializer/regularizer/constraint of each weight."""
    config = {"activation": activations.serialize(layer.activation), "use_bias": layer.use_bias}
    for prefix in (*kernels, "bias"):
        config[f"{prefix}_initializer"] = initializers.serialize(
            getattr(layer, f"{prefix}_initializer")
        )
    for prefix in (*kernels, "bias"):
        config[f"{prefix}_regularizer"] = regularizers.serialize(
            getattr(layer, f"{prefix}_regularizer")
        )
    for prefix in (*kernels, "bias"):
        config[f"{prefix}_constraint"] = constraints.serialize(
            getattr(layer, f"{prefix}_constraint")
        )
    return config


def drop_unset_keras_keys(layer: str, config: dict) -> dict:
    """Accepts Keras 3 configs, which name LoRA options this library does not implement."""
    config = dict(config)
    for key in _UNSUPPORTED_KERAS_KEYS:
        if config.pop(key, None) is not None:
            raise ValueError(f"{layer}: `{key}` (LoRA/DoRA) is not supported by distkeras.")
    return config
