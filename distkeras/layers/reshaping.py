"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector, UpSampling, ZeroPadding, Cropping.

Shapes and arguments exclude the batch dimension, and ``Permute`` counts axes from 1, as in
Keras. Images are channels_last unless ``data_format="channels_first"``.
"""

from __future__ import annotations

import math

import torch.nn.functional as F

from distkeras.layers.base import Layer
from distkeras.layers.conv_base import standardize_data_format, standardize_tuple
from distkeras.layers.core import check_positive_int

__all__ = [
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
]


def _check_rank(layer: Layer, shape, rank: int) -> None:
    if len(shape) != rank:
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}' expects inputs of rank {rank} "
            f"(batch included). Received: input_shape={tuple(shape)}"
        )


class Flatten(Layer):
    """Flattens each sample to one dimension: ``(batch, ...) -> (batch, prod(...))``.

    channels_last data flattens in (H, W, C) order; channels_first data is first transposed to
    channels_last, so both orders give the same vector as Keras. A ``(batch,)`` input becomes
    ``(batch, 1)``.

    Example:
        >>> Flatten()(torch.zeros(2, 3, 4, 5)).shape
        torch.Size([2, 60])
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format("Flatten", data_format)

    def call(self, inputs):
        if inputs.ndim == 1:
            return inputs.unsqueeze(-1)
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = inputs.movedim(1, -1)
        return inputs.flatten(1)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """Reshapes each sample to ``target_shape``; one entry may be -1 (inferred).

    Example:
        >>> Reshape((3, -1))(torch.zeros(2, 12)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            target_shape = tuple(target_shape)
        except TypeError:
            target_shape = None
        if not target_shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and (d > 0 or d == -1)
            for d in target_shape
        ):
            raise ValueError(
                "Reshape: argument `target_shape` must be a tuple of positive ints (one may be "
                f"-1), without the batch dimension. Received: target_shape={target_shape!r}"
            )
        if target_shape.count(-1) > 1:
            raise ValueError(
                "Reshape: argument `target_shape` may contain at most one -1. "
                f"Received: target_shape={target_shape}"
            )
        self.target_shape = target_shape

    def _resolve(self, input_shape) -> tuple:
        """``target_shape`` with -1 resolved for ``input_shape`` (None when unknown)."""
        rest = tuple(input_shape)[1:]
        if any(d is None for d in rest):
            return tuple(None if d == -1 else d for d in self.target_shape)
        size, known = math.prod(rest), math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(self._mismatch(input_shape))
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if size != known:
            raise ValueError(self._mismatch(input_shape))
        return self.target_shape

    def _mismatch(self, input_shape) -> str:
        return (
            f"Reshape layer '{self.name}': cannot reshape samples of shape "
            f"{tuple(input_shape)[1:]} to target_shape={self.target_shape}: the total size "
            "must stay the same."
        )

    def build(self, input_shape):
        self._resolve(input_shape)

    def call(self, inputs):
        # -1 is resolved here so that an empty batch reshapes too.
        return inputs.reshape(inputs.shape[0], *self._resolve(inputs.shape))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._resolve(input_shape))

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config


class Permute(Layer):
    """Permutes the non-batch dimensions; ``dims`` counts from 1, as in Keras.

    Example:
        >>> Permute((2, 1))(torch.zeros(4, 10, 64)).shape
        torch.Size([4, 64, 10])
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            dims = tuple(dims)
        except TypeError:
            dims = None
        if not dims or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                "Permute: argument `dims` must be a permutation of 1..n (the batch axis 0 is not "
                f"included). Received: dims={dims!r}"
            )
        self.dims = dims

    def build(self, input_shape):
        _check_rank(self, input_shape, len(self.dims) + 1)

    def call(self, inputs):
        return inputs.permute(0, *self.dims)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self):
        config = super().get_config()
        config["dims"] = list(self.dims)
        return config


class RepeatVector(Layer):
    """Repeats a ``(batch, features)`` input ``n`` times: ``(batch, n, features)``.

    Example:
        >>> RepeatVector(3)(torch.zeros(2, 5)).shape
        torch.Size([2, 3, 5])
    """

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = check_positive_int("RepeatVector", "n", n)

    def build(self, input_shape):
        _check_rank(self, input_shape, 2)

    def call(self, inputs):
        # A broadcast view: no copy until a later op needs one.
        return inputs.unsqueeze(1).expand(-1, self.n, -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config


# ------------------------------------------------------------------ spatial base classes
class _Spatial(Layer):
    """A layer acting on the ``_rank`` spatial axes of ``(batch, *spatial, channels)`` data."""

    _rank = 1

    def _spatial_axes(self) -> range:
        first = 2 if getattr(self, "data_format", "channels_last") == "channels_first" else 1
        return range(first, first + self._rank)

    def build(self, input_shape):
        _check_rank(self, input_shape, self._rank + 2)


class _UpSampling(_Spatial):
    def __init__(self, size, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.size = standardize_tuple(name, "size", size, self._rank)
        self.data_format = standardize_data_format(name, data_format)
        value = interpolation.lower() if isinstance(interpolation, str) else interpolation
        allowed = ("nearest", "bilinear") if self._rank == 2 else ("nearest",)
        if value not in allowed:
            raise ValueError(
                f"{name}: argument `interpolation` must be one of {allowed} in distkeras. "
                f"Received: interpolation={interpolation!r}"
            )
        self.interpolation = value

    def call(self, inputs):
        if self.interpolation == "bilinear":
            x = inputs.movedim(-1, 1) if self.data_format == "channels_last" else inputs
            out_size = [x.shape[2] * self.size[0], x.shape[3] * self.size[1]]
            # align_corners=False is the half-pixel sampling of Keras's image.resize.
            y = F.interpolate(x, size=out_size, mode="bilinear", align_corners=False)
            return y.movedim(1, -1) if self.data_format == "channels_last" else y
        # Nearest upsampling by an integer factor repeats each entry: one broadcast copy.
        axes = self._spatial_axes()
        view, target, out_shape = [], [], []
        for axis, n in enumerate(inputs.shape):
            if axis in axes:
                factor = self.size[axis - axes[0]]
                view += [n, 1]
                target += [n, factor]
                out_shape.append(n * factor)
            else:
                view.append(n)
                target.append(n)
                out_shape.append(n)
        return inputs.reshape(view).expand(target).reshape(out_shape)

    def compute_output_shape(self, input_shape):
        shape, axes = list(input_shape), self._spatial_axes()
        for i, axis in enumerate(axes):
            if shape[axis] is not None:
                shape[axis] *= self.size[i]
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(size=list(self.size), data_format=self.data_format)
        if self._rank == 2:
            config["interpolation"] = self.interpolation
        return config


class UpSampling1D(_UpSampling):
    """Repeats each timestep ``size`` times: ``(batch, steps, features)`` ->
    ``(batch, steps * size, features)``.

    Example:
        >>> UpSampling1D(2)(torch.tensor([[[1.0], [2.0]]]))[0, :, 0]
        tensor([1., 1., 2., 2.])
    """

    _rank = 1

    def __init__(self, size: int = 2, **kwargs):
        super().__init__(size, data_format="channels_last", **kwargs)

    def get_config(self):
        config = super().get_config()
        config["size"] = self.size[0]
        del config["data_format"]
        return config


class UpSampling2D(_UpSampling):
    """Upsamples images by ``size`` (rows, cols), repeating pixels (``"nearest"``) or
    interpolating (``"bilinear"``, half-pixel centres as Keras's ``image.resize``).

    Example:
        >>> UpSampling2D((2, 3))(torch.zeros(1, 4, 4, 3)).shape
        torch.Size([1, 8, 12, 3])
    """

    _rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation: str = "nearest", **kwargs):
        super().__init__(size, data_format=data_format, interpolation=interpolation, **kwargs)


class UpSampling3D(_UpSampling):
    """Repeats each voxel ``size`` (dim1, dim2, dim3) times.

    Example:
        >>> UpSampling3D(2)(torch.zeros(1, 2, 2, 2, 3)).shape
        torch.Size([1, 4, 4, 4, 3])
    """

    _rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size, data_format=data_format, **kwargs)


def _pairs(layer: str, name: str, value, rank: int) -> tuple:
    """int | tuple of ``rank`` ints | tuple of ``rank`` pairs -> ``rank`` (before, after)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * rank
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if rank == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
        items = (items,)  # the 1D form is a single (before, after) pair
    if len(items) != rank:
        raise ValueError(
            f"{layer}: argument `{name}` must be an int, a tuple of {rank} ints or a tuple of "
            f"{rank} (before, after) pairs. Received: {name}={value!r}"
        )
    return tuple(standardize_tuple(layer, name, item, 2, allow_zero=True) for item in items)


class _ZeroPadding(_Spatial):
    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.padding = _pairs(name, "padding", padding, self._rank)
        self.data_format = standardize_data_format(name, data_format)

    def call(self, inputs):
        # F.pad lists (before, after) from the last axis backwards.
        pads = []
        for axis in reversed(range(1, inputs.ndim)):
            axes = self._spatial_axes()
            pads += list(self.padding[axis - axes[0]]) if axis in axes else [0, 0]
        return F.pad(inputs, pads)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for (before, after), axis in zip(self.padding, self._spatial_axes()):
            if shape[axis] is not None:
                shape[axis] += before + after
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(padding=[list(p) for p in self.padding], data_format=self.data_format)
        return config


class ZeroPadding1D(_ZeroPadding):
    """Adds zeros at the start and end of the steps axis; ``padding`` is an int or
    ``(before, after)``.

    Example:
        >>> ZeroPadding1D((1, 2))(torch.ones(1, 3, 2)).shape
        torch.Size([1, 6, 2])
    """

    _rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["padding"] = list(self.padding[0])
        return config


class ZeroPadding2D(_ZeroPadding):
    """Adds rows and columns of zeros around images.

    ``padding``: an int, ``(sym_rows, sym_cols)`` or ``((top, bottom), (left, right))``.

    Example:
        >>> ZeroPadding2D(((1, 0), (2, 2)))(torch.ones(1, 3, 3, 1)).shape
        torch.Size([1, 4, 7, 1])
    """

    _rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Adds zeros around volumes; ``padding`` as in :class:`ZeroPadding2D`, with 3 axes.

    Example:
        >>> ZeroPadding3D(1)(torch.ones(1, 2, 2, 2, 1)).shape
        torch.Size([1, 4, 4, 4, 1])
    """

    _rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


class _Cropping(_Spatial):
    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.cropping = _pairs(name, "cropping", cropping, self._rank)
        self.data_format = standardize_data_format(name, data_format)

    def _check_fits(self, shape) -> None:
        for (before, after), axis in zip(self.cropping, self._spatial_axes()):
            if shape[axis] is not None and before + after >= shape[axis]:
                raise ValueError(
                    f"{type(self).__name__} layer '{self.name}': `cropping` {self.cropping} "
                    "must be smaller than the cropped dimensions. "
                    f"Received: input_shape={tuple(shape)}"
                )

    def build(self, input_shape):
        super().build(input_shape)
        self._check_fits(input_shape)

    def call(self, inputs):
        self._check_fits(inputs.shape)
        index = [slice(None)] * inputs.ndim
        for (before, after), axis in zip(self.cropping, self._spatial_axes()):
            index[axis] = slice(before, inputs.shape[axis] - after)
        return inputs[tuple(index)]

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for (before, after), axis in zip(self.cropping, self._spatial_axes()):
            if shape[axis] is not None:
                shape[axis] -= before + after
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(cropping=[list(c) for c in self.cropping], data_format=self.data_format)
        return config


class Cropping1D(_Cropping):
    """Crops the steps axis of ``(batch, steps, features)``; ``cropping`` is an int or
    ``(start, end)``.

    Example:
        >>> Cropping1D((1, 2))(torch.ones(1, 6, 2)).shape
        torch.Size([1, 3, 2])
    """

    _rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, data_format="channels_last", **kwargs)

    def get_config(self):
        config = super().get_config()
        config["cropping"] = list(self.cropping[0])
        del config["data_format"]
        return config


class Cropping2D(_Cropping):
    """Crops rows and columns of images.

    ``cropping``: an int, ``(sym_rows, sym_cols)`` or ``((top, bottom), (left, right))``.

    Example:
        >>> Cropping2D(((2, 2), (4, 4)))(torch.zeros(2, 28, 28, 3)).shape
        torch.Size([2, 24, 20, 3])
    """

    _rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)


class Cropping3D(_Cropping):
    """Crops the three spatial axes of volumes; ``cropping`` as in :class:`Cropping2D`.

    Example:
        >>> Cropping3D(1)(torch.zeros(1, 4, 4, 4, 2)).shape
        torch.Size([1, 2, 2, 2, 2])
    """

    _rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)
