"""Shape, joining, splitting, flipping and diagonal ops of ``keras.ops.numpy``.

Each op converts its inputs as Keras's torch backend does (:mod:`distkeras.ops.dtypes`) and keeps
the input dtype unless Keras says otherwise. The indexing ops (take, where, nonzero, ...) live in
:mod:`distkeras.ops.numpy_index`, ``pad`` in :mod:`distkeras.ops.numpy_pad`; both are
re-exported here.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import torch

from distkeras.ops import numpy_index, numpy_pad
from distkeras.ops.dispatch import keras_op
from distkeras.ops.dtypes import convert_all, convert_to_tensor, standardize_dtype, to_torch_dtype
from distkeras.ops.numpy_index import *  # noqa: F403
from distkeras.ops.numpy_pad import *  # noqa: F403

__all__ = [
    "append",
    "array_split",
    "broadcast_to",
    "concatenate",
    "diag",
    "diagflat",
    "diagonal",
    "diff",
    "dsplit",
    "dstack",
    "expand_dims",
    "flip",
    "fliplr",
    "flipud",
    "hsplit",
    "hstack",
    "meshgrid",
    "moveaxis",
    "ndim",
    "ravel",
    "repeat",
    "reshape",
    "roll",
    "rot90",
    "size",
    "split",
    "squeeze",
    "stack",
    "swapaxes",
    "tile",
    "trace",
    "transpose",
    "tril",
    "triu",
    "vsplit",
    "vstack",
    "view",
    *numpy_index.__all__,
    *numpy_pad.__all__,
]


def _canonicalize_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for a tensor of rank {ndim}")
    return axis % ndim


def _axes(axis) -> tuple[int, ...]:
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _indices(indices_or_sections):
    """An int stays an int; a list/array/tensor of split points becomes a list of ints."""
    if isinstance(indices_or_sections, int):
        return indices_or_sections
    return [int(i) for i in convert_to_tensor(indices_or_sections).reshape(-1).tolist()]


# ---------------------------------------------------------------- shape queries and reshaping
@keras_op("numpy")
def ndim(x) -> int:
    return convert_to_tensor(x).ndim


@keras_op("numpy")
def size(x) -> torch.Tensor:
    # Keras's torch backend returns the element count as a 0-d int64 tensor.
    x = convert_to_tensor(x)
    return torch.tensor(x.numel(), dtype=torch.int64, device=x.device)


@keras_op("numpy")
def reshape(x, newshape) -> torch.Tensor:
    newshape = (newshape,) if isinstance(newshape, int) else tuple(int(d) for d in newshape)
    if builtins.sum(d == -1 for d in newshape) > 1:
        raise ValueError(f"There must be at most one -1 in newshape. Received: newshape={newshape}")
    return torch.reshape(convert_to_tensor(x), newshape)


@keras_op("numpy")
def ravel(x) -> torch.Tensor:
    return torch.ravel(convert_to_tensor(x))


@keras_op("numpy")
def expand_dims(x, axis) -> torch.Tensor:
    x = convert_to_tensor(x)
    axes = _axes(axis)
    out_ndim = x.ndim + len(axes)
    for a in sorted(_canonicalize_axis(a, out_ndim) for a in axes):
        x = torch.unsqueeze(x, a)
    return x


@keras_op("numpy")
def squeeze(x, axis=None) -> torch.Tensor:
    x = convert_to_tensor(x)
    if axis is None:
        return torch.squeeze(x)
    axes = tuple(_canonicalize_axis(a, x.ndim) for a in _axes(axis))
    # torch.squeeze silently keeps a dimension that is not 1; numpy (and Keras's docs) refuse.
    bad = [a for a in axes if x.shape[a] != 1]
    if bad:
        raise ValueError(
            f"Cannot squeeze axis {bad[0]} of size {x.shape[bad[0]]}. Received: axis={axis}, "
            f"x.shape={tuple(x.shape)}"
        )
    return torch.squeeze(x, dim=axes)


@keras_op("numpy")
def broadcast_to(x, shape) -> torch.Tensor:
    return torch.broadcast_to(convert_to_tensor(x), tuple(shape))


@keras_op("numpy")
def transpose(x, axes=None) -> torch.Tensor:
    x = convert_to_tensor(x)
    if axes is None:
        axes = tuple(range(x.ndim))[::-1]
    return torch.permute(x, tuple(axes))


@keras_op("numpy")
def swapaxes(x, axis1: int, axis2: int) -> torch.Tensor:
    return torch.swapaxes(convert_to_tensor(x), axis1, axis2)


@keras_op("numpy")
def moveaxis(x, source, destination) -> torch.Tensor:
    return torch.moveaxis(convert_to_tensor(x), _axes(source), _axes(destination))


@keras_op("numpy")
def view(x, dtype=None) -> torch.Tensor:
    return convert_to_tensor(x).view(to_torch_dtype(dtype))


# ---------------------------------------------------------------- joining
def _join(xs) -> list[torch.Tensor]:
    if isinstance(xs, torch.Tensor):
        return list(xs.unbind(0))
    return convert_all(*xs)


@keras_op("numpy")
def concatenate(xs, axis: int | None = 0) -> torch.Tensor:
    xs = _join(xs)
    if axis is None:  # numpy's axis=None: join the flattened inputs
        return torch.cat([x.reshape(-1) for x in xs])
    return torch.cat(xs, dim=axis)


@keras_op("numpy")
def append(x1, x2, axis: int | None = None) -> torch.Tensor:
    x1, x2 = convert_all(x1, x2)
    if axis is None:
        return torch.cat((x1.reshape(-1), x2.reshape(-1)))
    return torch.cat((x1, x2), dim=axis)


@keras_op("numpy")
def stack(x, axis: int = 0) -> torch.Tensor:
    return torch.stack(_join(x), dim=axis)


@keras_op("numpy")
def hstack(xs) -> torch.Tensor:
    return torch.hstack(_join(xs))


@keras_op("numpy")
def vstack(xs) -> torch.Tensor:
    return torch.vstack(_join(xs))


@keras_op("numpy")
def dstack(xs) -> torch.Tensor:
    return torch.dstack(_join(xs))


@keras_op("numpy")
def meshgrid(*x, indexing: str = "xy") -> tuple[torch.Tensor, ...]:
    if indexing not in ("xy", "ij"):
        raise ValueError(f"Valid values for `indexing` are 'xy' and 'ij'. Received: {indexing}")
    return tuple(torch.meshgrid(*convert_all(*x), indexing=indexing))


# ---------------------------------------------------------------- splitting
@keras_op("numpy")
def split(x, indices_or_sections, axis: int = 0) -> list[torch.Tensor]:
    x = convert_to_tensor(x)
    indices_or_sections = _indices(indices_or_sections)
    if isinstance(indices_or_sections, int) and x.shape[axis] % indices_or_sections:
        raise ValueError(
            f"Received indices_or_sections={indices_or_sections} (interpreted as a number of "
            f"sections) and axis={axis}, but input dimension x.shape[{axis}]={x.shape[axis]} "
            f"is not divisible by {indices_or_sections}."
        )
    return list(torch.tensor_split(x, indices_or_sections, dim=axis))


@keras_op("numpy")
def array_split(x, indices_or_sections: int, axis: int = 0) -> list[torch.Tensor]:
    if not isinstance(indices_or_sections, int) or isinstance(indices_or_sections, bool):
        raise TypeError(
            "Argument `indices_or_sections` must be of type `int`. "
            f"Received: indices_or_sections={indices_or_sections}"
        )
    if indices_or_sections <= 0:
        raise ValueError(
            "Argument `indices_or_sections` must be a positive integer. "
            f"Received: indices_or_sections={indices_or_sections}"
        )
    return list(torch.tensor_split(convert_to_tensor(x), indices_or_sections, dim=axis))


@keras_op("numpy")
def hsplit(x, indices_or_sections) -> list[torch.Tensor]:
    return list(torch.hsplit(convert_to_tensor(x), _indices(indices_or_sections)))


@keras_op("numpy")
def vsplit(x, indices_or_sections) -> list[torch.Tensor]:
    return list(torch.vsplit(convert_to_tensor(x), _indices(indices_or_sections)))


@keras_op("numpy")
def dsplit(x, indices_or_sections) -> list[torch.Tensor]:
    return list(torch.dsplit(convert_to_tensor(x), _indices(indices_or_sections)))


# ---------------------------------------------------------------- repeating and rearranging
@keras_op("numpy")
def repeat(x, repeats, axis: int | None = None) -> torch.Tensor:
    x = convert_to_tensor(x)
    if not isinstance(repeats, int):
        repeats = convert_to_tensor(repeats, "int64", x.device)
    return torch.repeat_interleave(x, repeats, dim=axis)


@keras_op("numpy")
def tile(x, repeats) -> torch.Tensor:
    repeats = _indices(repeats)
    return torch.tile(convert_to_tensor(x), (repeats,) if isinstance(repeats, int) else repeats)


@keras_op("numpy")
def roll(x, shift, axis=None) -> torch.Tensor:
    x = convert_to_tensor(x)
    shift = _indices(shift)
    if axis is None:
        return torch.roll(x, shift)
    return torch.roll(x, shift, dims=axis)


@keras_op("numpy")
def flip(x, axis=None) -> torch.Tensor:
    x = convert_to_tensor(x)
    return torch.flip(x, dims=tuple(range(x.ndim)) if axis is None else _axes(axis))


@keras_op("numpy")
def fliplr(x) -> torch.Tensor:
    return torch.fliplr(convert_to_tensor(x))


@keras_op("numpy")
def flipud(x) -> torch.Tensor:
    return torch.flipud(convert_to_tensor(x))


@keras_op("numpy")
def rot90(array, k: int = 1, axes: Sequence[int] = (0, 1)) -> torch.Tensor:
    array = convert_to_tensor(array)
    if array.ndim < 2:
        raise ValueError(
            f"Input array must have at least 2 dimensions. Received: array.ndim={array.ndim}"
        )
    axes = tuple(axes)
    if len(axes) != 2 or _canonicalize_axis(axes[0], array.ndim) == _canonicalize_axis(
        axes[1], array.ndim
    ):
        raise ValueError(f"Axes must be a tuple of two different dimensions. Received: {axes}")
    return torch.rot90(array, k=k, dims=axes)


@keras_op("numpy")
def diff(a, n: int = 1, axis: int = -1) -> torch.Tensor:
    return torch.diff(convert_to_tensor(a), n=n, dim=axis)


# ---------------------------------------------------------------- diagonals and triangles
@keras_op("numpy")
def diag(x, k: int = 0) -> torch.Tensor:
    x = convert_to_tensor(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"`diag` expects a 1-D or 2-D input. Received: x.shape={tuple(x.shape)}")
    return torch.diag(x, diagonal=k)


@keras_op("numpy")
def diagflat(x, k: int = 0) -> torch.Tensor:
    return torch.diagflat(convert_to_tensor(x), offset=k)


@keras_op("numpy")
def diagonal(x, offset: int = 0, axis1: int = 0, axis2: int = 1) -> torch.Tensor:
    x = convert_to_tensor(x)
    if _canonicalize_axis(axis1, x.ndim) == _canonicalize_axis(axis2, x.ndim):
        raise ValueError(
            f"`axis1` and `axis2` cannot be the same. Received: axis1={axis1}, axis2={axis2}"
        )
    return torch.diagonal(x, offset=offset, dim1=axis1, dim2=axis2)


@keras_op("numpy")
def trace(x, offset: int = 0, axis1: int = 0, axis2: int = 1) -> torch.Tensor:
    x = convert_to_tensor(x)
    dtype = standardize_dtype(x.dtype)
    # Keras sums small integer types (and bool) in int32, as JAX does; others keep their dtype.
    if dtype in ("bool", "int8", "int16", "uint8"):
        dtype = "int32"
    return torch.diagonal(x, offset, axis1, axis2).sum(dim=-1, dtype=to_torch_dtype(dtype))


@keras_op("numpy")
def tril(x, k: int = 0) -> torch.Tensor:
    return torch.tril(convert_to_tensor(x), diagonal=k)


@keras_op("numpy")
def triu(x, k: int = 0) -> torch.Tensor:
    return torch.triu(convert_to_tensor(x), diagonal=k)
