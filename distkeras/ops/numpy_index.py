"""Indexing and selection ops of ``keras.ops.numpy`` (take, where, nonzero, ...).

Re-exported by :mod:`distkeras.ops.numpy_shape`. ``nonzero`` and one-argument ``where`` have
a data-dependent output shape: they run eagerly only (no static symbolic shape exists).
"""

from __future__ import annotations

import numpy as np
import torch

from distkeras.ops.dispatch import keras_op
from distkeras.ops.dtypes import cast, convert_all, convert_to_tensor, result_type

__all__ = [
    "get_item",
    "isin",
    "nonzero",
    "select",
    "take",
    "take_along_axis",
    "unravel_index",
    "where",
]


def _index_key(key):
    """Arrays inside an indexing key become tensors (torch indexes with tensors, not numpy)."""
    if isinstance(key, tuple):
        return tuple(_index_key(k) for k in key)
    if isinstance(key, np.ndarray):
        return torch.from_numpy(key)
    return key


@keras_op("numpy")
def get_item(x, key):
    return convert_to_tensor(x)[_index_key(key)]


def _wrap_negative(indices: torch.Tensor, dim: int) -> torch.Tensor:
    # Negative indices count from the end, as in numpy; out-of-range ones raise in torch.
    return torch.where(indices < 0, indices + dim, indices)


def _long_indices(indices, device) -> torch.Tensor:
    indices = convert_to_tensor(indices, device=device)
    if indices.is_floating_point() or indices.dtype == torch.bool:
        raise TypeError(f"Indices must be integers. Received: indices.dtype={indices.dtype}")
    return indices.long()


@keras_op("numpy")
def take(x, indices, axis: int | None = None) -> torch.Tensor:
    x = convert_to_tensor(x)
    indices = _long_indices(indices, x.device)
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = axis % x.ndim if x.ndim else axis
    indices = _wrap_negative(indices, x.shape[axis])
    out = torch.index_select(x, axis, indices.reshape(-1))
    return out.reshape(x.shape[:axis] + indices.shape + x.shape[axis + 1 :])


@keras_op("numpy")
def take_along_axis(x, indices, axis: int | None = None) -> torch.Tensor:
    x = convert_to_tensor(x)
    indices = _long_indices(indices, x.device)
    dim = x.numel() if axis is None else x.shape[axis]
    return torch.take_along_dim(x, _wrap_negative(indices, dim), dim=axis)


@keras_op("numpy")
def where(condition, x1=None, x2=None):
    if (x1 is None) != (x2 is None):
        raise ValueError(
            "`x1` and `x2` either both should be `None` or both should have non-None value."
        )
    condition = convert_to_tensor(condition, "bool")
    if x1 is None:
        # numpy's one-argument form (nonzero); Keras's torch backend stacks the index arrays.
        return torch.stack(torch.where(condition), dim=0)
    x1, x2 = convert_all(x1, x2)
    return torch.where(condition, x1, x2)


@keras_op("numpy")
def select(condlist, choicelist, default=0) -> torch.Tensor:
    if not isinstance(condlist, (list, tuple)) or not isinstance(choicelist, (list, tuple)):
        raise ValueError(
            "condlist and choicelist must be lists. Received: "
            f"type(condlist) = {type(condlist)}, type(choicelist) = {type(choicelist)}"
        )
    if not condlist or not choicelist:
        raise ValueError(
            "condlist and choicelist must not be empty. Received: "
            f"condlist = {condlist}, choicelist = {choicelist}"
        )
    if len(condlist) != len(choicelist):
        raise ValueError(
            "condlist and choicelist must have the same length. Received: "
            f"len(condlist)={len(condlist)}, len(choicelist)={len(choicelist)}"
        )
    out = convert_to_tensor(default)
    # The first true condition wins, so apply them from the last to the first.
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        out = torch.where(convert_to_tensor(cond, "bool"), convert_to_tensor(choice), out)
    return out


@keras_op("numpy")
def nonzero(x) -> torch.Tensor:
    # As Keras's torch backend: one int32 row of indices per axis, (ndim, count), where numpy
    # gives a tuple of rows; unpacking (``rows, cols = nonzero(x)``) works the same.
    return cast(torch.nonzero(convert_to_tensor(x)).T, "int32")


@keras_op("numpy")
def isin(x1, x2, assume_unique: bool = False, invert: bool = False) -> torch.Tensor:
    x1, x2 = convert_all(x1, x2)
    dtype = result_type(x1.dtype, x2.dtype)
    if dtype == "bool":  # torch.isin has no bool kernel
        dtype = "int32"
    return torch.isin(cast(x1, dtype), cast(x2, dtype), assume_unique=assume_unique, invert=invert)


@keras_op("numpy")
def unravel_index(indices, shape) -> tuple[torch.Tensor, ...]:
    indices = convert_to_tensor(indices)
    dtype = result_type(indices.dtype)
    return tuple(cast(i, dtype) for i in torch.unravel_index(indices, tuple(shape)))
