"""What ``Layer.__call__`` does to its inputs and outputs besides calling ``call``.

Eager inputs that are not tensors become tensors as Keras converts them (numpy arrays,
Python lists and scalars: floats to the layer's dtype, integer and boolean ids unchanged),
and masks travel on tensors as ``_keras_mask``, read from the inputs and attached to the
outputs. Kept apart from ``base.py`` so the Layer class reads as its lifecycle.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from distkeras import backend
from distkeras.utils.tree import flatten, map_structure


def has_symbolic(args, kwargs) -> bool:
    from distkeras.layers.input import KerasTensor

    return any(isinstance(x, KerasTensor) for x in flatten([list(args), kwargs]))


def convert_eager(args: tuple, kwargs: dict, dtype: str) -> tuple[tuple, dict]:
    """numpy arrays (anywhere) and Python numbers or lists of them (positional inputs) as
    tensors on the default device; floating values in ``dtype``, as Keras's ``convert_input``.
    """
    floating = backend.standardize_dtype(dtype)
    if not floating.is_floating_point:
        floating = backend.standardize_dtype(backend.floatx())

    def convert(value):
        if isinstance(value, (np.ndarray, np.generic)):
            return _as_tensor(np.asarray(value), floating)
        return value

    def convert_input(value):
        if _is_number_list(value):
            return _as_tensor(np.asarray(value), floating)
        if isinstance(value, (list, tuple, dict)):
            return map_structure(convert, value)
        return convert(value)

    return tuple(convert_input(a) for a in args), {
        k: (v if k in ("training",) else map_structure(convert, v)) for k, v in kwargs.items()
    }


def needs_conversion(args, kwargs) -> bool:
    leaves = flatten([list(args), kwargs])
    if any(isinstance(x, (np.ndarray, np.generic)) for x in leaves):
        return True
    return any(_is_number_list(a) for a in args)


def _is_number_list(value) -> bool:
    if isinstance(value, numbers.Number):  # bool is one too
        return True
    if isinstance(value, (list, tuple)) and value:
        return all(_is_number_list(v) for v in value)
    return False


def _as_tensor(array: np.ndarray, floating: torch.dtype) -> torch.Tensor:
    if array.dtype.kind == "f":
        return torch.as_tensor(array, device=backend.get_device()).to(floating)
    if array.dtype.kind in "iub":  # ids and flags keep their dtype, as in Keras
        return torch.as_tensor(array, device=backend.get_device())
    raise TypeError(f"Cannot convert an array of dtype {array.dtype} to a tensor.")


def shapes_of(x):
    if isinstance(x, torch.Tensor):
        return tuple(x.shape)
    if isinstance(x, (list, tuple)):
        return [shapes_of(v) for v in x]
    if isinstance(x, dict):
        return {k: shapes_of(v) for k, v in x.items()}
    if hasattr(x, "shape"):
        return tuple(x.shape)
    return None


def mask_of(x):
    if isinstance(x, torch.Tensor):
        return getattr(x, "_keras_mask", None)
    if isinstance(x, (list, tuple)):
        masks = [getattr(v, "_keras_mask", None) for v in x]
        return None if all(m is None for m in masks) else masks
    return None


def flat_tensors(outputs):
    return [t for t in flatten(outputs) if isinstance(t, torch.Tensor)]


def attach_mask(outputs, mask) -> None:
    if isinstance(outputs, torch.Tensor):
        outputs._keras_mask = mask
    elif isinstance(outputs, (list, tuple)):
        masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(outputs)
        for out, m in zip(outputs, masks):
            if isinstance(out, torch.Tensor) and m is not None:
                out._keras_mask = m
