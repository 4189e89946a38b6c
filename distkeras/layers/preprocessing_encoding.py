"""Array helpers shared by the string and lookup preprocessing layers: text as numpy string
arrays, integer ids as tensors, and Keras's categorical encodings of ids."""

from __future__ import annotations

import numpy as np
import torch

from distkeras import backend


def to_string_array(inputs, encoding: str = "utf-8", layer: str = "StringLookup") -> np.ndarray:
    """Strings (numpy str/bytes/object arrays, nested lists, a str) as a numpy str array."""
    if isinstance(inputs, torch.Tensor):
        raise TypeError(
            f"{layer} takes strings: a numpy array or a list of str. Received a torch tensor "
            f"of dtype {inputs.dtype}."
        )
    arr = np.asarray(inputs)
    if arr.size == 0:  # np.asarray([[]]) is float64: no values, any dtype is text
        return arr.astype(str)
    if arr.dtype.kind == "S":
        return np.char.decode(arr, encoding)
    if arr.dtype.kind == "O":
        flat = [v.decode(encoding) if isinstance(v, bytes) else v for v in arr.reshape(-1)]
        if not all(isinstance(v, str) for v in flat):
            bad = next(v for v in flat if not isinstance(v, str))
            raise TypeError(f"{layer} takes strings; received an element {bad!r}.")
        return np.array(flat, dtype=str).reshape(arr.shape)
    if arr.dtype.kind != "U":
        raise TypeError(f"{layer} takes strings; received an array of dtype {arr.dtype}.")
    return arr


def to_int_tensor(inputs, layer: str) -> torch.Tensor:
    """Integer ids (tensors stay on their device; arrays and lists go to the backend's)."""
    if not isinstance(inputs, torch.Tensor):
        arr = np.asarray(inputs)
        if arr.dtype.kind not in "iub" and arr.size:
            raise TypeError(f"{layer} takes integers; received an array of dtype {arr.dtype}.")
        inputs = torch.as_tensor(arr.astype(np.int64), device=backend.get_device())
    elif inputs.is_floating_point() or inputs.is_complex():
        raise TypeError(f"{layer} takes integers; received a tensor of dtype {inputs.dtype}.")
    return inputs.long()


def encode_ids(ids: torch.Tensor, output_mode: str, depth: int, weights=None) -> torch.Tensor:
    """Keras's one_hot / multi_hot / count encodings of int ids; ids outside ``[0, depth)``
    (masked tokens) count for nothing, as TensorFlow's bincount and one_hot drop them.

    multi_hot and count reduce the last axis (a rank-1 input is one sample); one_hot adds an
    axis, replacing a trailing axis of size 1.
    """
    dtype = backend.standardize_dtype(backend.floatx())
    if ids.ndim == 0:
        ids = ids.reshape(1)
    valid = (ids >= 0) & (ids < depth)
    safe = torch.where(valid, ids, torch.zeros_like(ids))
    if output_mode == "one_hot":
        if ids.ndim > 1 and ids.shape[-1] == 1:
            safe, valid = safe.squeeze(-1), valid.squeeze(-1)
        out = torch.zeros((*safe.shape, depth), dtype=dtype, device=ids.device)
        return out.scatter_(-1, safe.unsqueeze(-1), valid.unsqueeze(-1).to(dtype))
    out = torch.zeros((*safe.shape[:-1], depth), dtype=dtype, device=ids.device)
    out.scatter_add_(-1, safe, valid.to(dtype))
    if output_mode == "multi_hot":
        out = out.clamp_(max=1)
    if weights is not None:  # tf_idf: counts times the idf weights
        out = out * weights.to(out.device, dtype)
    return out


def encoded_shape(input_shape, output_mode: str, depth) -> tuple:
    """The output shape of :func:`encode_ids` (Keras's ``compute_output_shape``)."""
    input_shape = tuple(input_shape)
    if output_mode == "int":
        return input_shape
    if output_mode == "one_hot":
        if len(input_shape) > 1 and input_shape[-1] == 1:
            return (*input_shape[:-1], depth)
        return (*input_shape, depth)
    return (*input_shape[:-1], depth)


def _listify(value):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return value


def batch_features(batch):
    """The ``x`` of an ``(x, y[, sample_weight])`` batch (a PyDataset's or a generator's, as
    ``text_dataset_from_directory`` yields them), so ``adapt`` reads datasets of labeled
    batches; any other batch as given."""
    if (
        isinstance(batch, tuple)
        and len(batch) in (2, 3)
        and isinstance(batch[0], (np.ndarray, torch.Tensor))
    ):
        return batch[0]
    return batch
