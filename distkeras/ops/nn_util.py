"""Helpers shared by the nn, image and math ops: conversion, data formats, "same" padding.

Conversion is ``ops.dtypes.convert_to_tensor`` (Keras's torch backend rules: numpy arrays keep
their dtype, Python floats become floatx, Python ints int32).
"""

from __future__ import annotations

import torch

from distkeras import backend
from distkeras.ops import dtypes

__all__: list[str] = []


def to_tensor(x, dtype=None) -> torch.Tensor:
    """``x`` as a torch tensor, as ``keras.ops.convert_to_tensor`` makes it."""
    return dtypes.convert_to_tensor(x, dtype)


def result_float(*kinds: torch.dtype) -> torch.dtype:
    """The promoted float dtype of ``kinds`` (floatx when none of them is a float)."""
    floats = [d for d in kinds if d.is_floating_point]
    if not floats:
        return backend.standardize_dtype(backend.floatx())
    out = floats[0]
    for d in floats[1:]:
        out = torch.promote_types(out, d)
    return out


def standardize_data_format(data_format) -> str:
    if data_format is None:
        getter = getattr(backend, "image_data_format", None)
        return getter() if getter is not None else "channels_last"
    value = str(data_format).lower()
    if value not in ("channels_first", "channels_last"):
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format!r}"
        )
    return value


def standardize_padding(padding) -> str:
    value = str(padding).lower()
    if value not in ("valid", "same"):
        raise ValueError(
            f"The `padding` argument must be one of 'valid', 'same'. Received: padding={padding!r}"
        )
    return value


def standardize_tuple(value, n: int, name: str) -> tuple[int, ...]:
    """An int or an n-sequence of ints, as a tuple of n ints."""
    if isinstance(value, int):
        return (value,) * n
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise ValueError(
            f"The `{name}` argument must be an int or a tuple of {n} ints. "
            f"Received: {name}={value!r}"
        ) from None
    if len(out) != n:
        raise ValueError(
            f"The `{name}` argument must be a tuple of {n} integers. Received: {name}={value!r}"
        )
    return out


def spatial_rank(x: torch.Tensor, op: str) -> int:
    rank = x.ndim - 2
    if rank not in (1, 2, 3):
        raise ValueError(
            f"Inputs to `{op}` must have ndim=3, 4 or 5 (1D, 2D or 3D data with batch and "
            f"channel axes). Received input shape: {tuple(x.shape)}"
        )
    return rank


def channels_first(x: torch.Tensor, data_format: str) -> torch.Tensor:
    """(N, *spatial, C) -> (N, C, *spatial) as a view; channels_first data is returned as is."""
    return x.movedim(-1, 1) if data_format == "channels_last" else x


def restore_format(y: torch.Tensor, data_format: str) -> torch.Tensor:
    return y.movedim(1, -1) if data_format == "channels_last" else y


def same_pads(sizes, kernel, strides, dilation) -> list[tuple[int, int]]:
    """TensorFlow's "same" padding per spatial dim: (before, after), the odd cell after."""
    pads = []
    for size, k, s, d in zip(sizes, kernel, strides, dilation):
        effective = (k - 1) * d + 1
        out = -(-size // s)
        total = max(0, (out - 1) * s + effective - size)
        pads.append((total // 2, total - total // 2))
    return pads


def flat_pads(pads) -> list[int]:
    """[(before, after) per dim] -> F.pad's order (last dim first)."""
    out: list[int] = []
    for before, after in reversed(pads):
        out.extend((before, after))
    return out
