"""Hashing preprocessing layers of ``keras.layers``: Hashing and HashedCrossing.

Bucket ids equal Keras's (which hashes on TensorFlow): strings, and integers as their decimal
text, go through FarmHash ``Fingerprint64`` (or SipHash-2-4 with a ``salt``); crosses chain
``FingerprintCat64`` as ``tf.sparse.cross_hashed`` does. The hashes run on the host, once
per distinct value in a batch; outputs are tensors on the backend's device.
"""

from __future__ import annotations

import numpy as np
import torch

from distkeras import backend
from distkeras.layers.base import Layer
from distkeras.layers.preprocessing_encoding import encode_ids, encoded_shape
from distkeras.layers.string_hashing import (
    DEFAULT_CROSS_KEY,
    cross_fingerprint,
    fingerprint_cat64,
    hash_buckets,
)

__all__ = ["Hashing", "HashedCrossing"]


def _host_array(values) -> np.ndarray:
    """Tensors, numpy arrays and (nested) lists as one numpy array on the host."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _encode(ids: np.ndarray, output_mode: str, depth: int, dtype: str) -> torch.Tensor:
    tensor = torch.as_tensor(ids.astype(np.int64), device=backend.get_device())
    if output_mode == "int":
        return tensor.to(backend.standardize_dtype(dtype))
    return encode_ids(tensor, output_mode, depth).to(backend.standardize_dtype(dtype))


class Hashing(Layer):
    """Hashes strings or integers into ``num_bins`` buckets (``mask_value`` gets bucket 0
    and the rest ``1..num_bins-1``), optionally keyed by ``salt``; Keras's bucket ids.

    Example:
        >>> Hashing(num_bins=3)([["A"], ["B"], ["C"], ["D"], ["E"]])
        tensor([[1],
                [0],
                [1],
                [1],
                [2]])
    """

    _convert_input_args = False  # strings stay numpy; the hash needs the host anyway

    def __init__(
        self,
        num_bins: int,
        mask_value=None,
        salt: int | list | tuple | None = None,
        output_mode: str = "int",
        sparse: bool = False,
        **kwargs,
    ):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64" if output_mode == "int" else backend.floatx()
        super().__init__(**kwargs)
        if num_bins is None or num_bins <= 0:
            raise ValueError(
                "The `num_bins` for `Hashing` cannot be `None` or non-positive values. "
                f"Received: num_bins={num_bins}."
            )
        if output_mode == "int" and self.dtype not in ("int32", "int64"):
            raise ValueError(
                "When `output_mode=\"int\"`, `dtype` should be an integer type, 'int32' or "
                f"'int64'. Received: dtype={kwargs['dtype']}"
            )
        modes = ("int", "one_hot", "multi_hot", "count")
        if output_mode not in modes:
            raise ValueError(
                f"Invalid value for argument `output_mode`. Expected one of {modes}. "
                f"Received: output_mode={output_mode}"
            )
        if sparse:
            raise ValueError("`sparse=True` can only be used with the TensorFlow backend.")
        self.num_bins = int(num_bins)
        self.mask_value = mask_value
        self.strong_hash = salt is not None
        self.output_mode = output_mode
        self.sparse = False
        self.salt = None
        if salt is not None:
            if isinstance(salt, (tuple, list)) and len(salt) == 2:
                self.salt = [int(s) for s in salt]
            elif isinstance(salt, int) and not isinstance(salt, bool):
                self.salt = [salt, salt]
            else:
                raise ValueError(
                    "The `salt` argument for `Hashing` can only be a tuple of size 2 "
                    f"integers, or a single integer. Received: salt={salt}."
                )
        self.built = True

    def _bins(self, values: np.ndarray) -> np.ndarray:
        bins, mask = self.num_bins, None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            mask = np.broadcast_to(np.asarray(values == self.mask_value), values.shape)
        ids = hash_buckets(values, bins, self.salt)
        if mask is not None:
            ids = np.where(mask, 0, ids + 1)
        return ids

    def call(self, inputs):
        values = _host_array(inputs)
        if values.dtype == object:
            values = (
                values.astype(str)
                if all(isinstance(v, str) for v in values.reshape(-1))
                else values
            )
        if self.output_mode == "one_hot" and values.ndim and values.shape[-1] == 1:
            values = values.squeeze(-1)
        return _encode(self._bins(values), self.output_mode, self.num_bins, self.dtype)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if not input_shape and self.output_mode != "int":
            return (self.num_bins,)
        # one_hot adds an axis unless the last is 1: the shape of the eager output (Keras's
        # symbolic shape drops the last axis instead).
        return encoded_shape(input_shape, self.output_mode, self.num_bins)

    def compute_output_spec(self, inputs):
        from distkeras.layers.input import KerasTensor

        return KerasTensor(self.compute_output_shape(inputs.shape), self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_bins=self.num_bins,
            salt=self.salt,
            mask_value=self.mask_value,
            output_mode=self.output_mode,
            sparse=False,
        )
        return config


class HashedCrossing(Layer):
    """Crosses two or more categorical features (strings or ints) into ``num_bins`` hashed
    buckets, as ``tf.sparse.cross_hashed`` does: Keras's bucket ids.

    Example:
        >>> layer = HashedCrossing(num_bins=5)
        >>> layer((np.array(["A", "B", "A", "B", "A"]), np.array([101, 101, 101, 102, 102])))
        tensor([1, 4, 1, 1, 3])
    """

    _convert_input_args = False

    def __init__(
        self,
        num_bins: int,
        output_mode: str = "int",
        sparse: bool = False,
        name: str | None = None,
        dtype=None,
        **kwargs,
    ):
        if output_mode == "int" and dtype is None:
            dtype = "int64"
        super().__init__(name=name, dtype=dtype, **kwargs)
        if sparse:
            raise ValueError("`sparse=True` can only be used with the TensorFlow backend.")
        if output_mode not in ("int", "one_hot"):
            raise ValueError(
                "Invalid value for argument `output_mode`. Expected one of ('int', "
                f"'one_hot'). Received: output_mode={output_mode}"
            )
        self.num_bins = int(num_bins)
        self.output_mode = output_mode
        self.sparse = False
        self.built = True

    def _features(self, inputs) -> list[np.ndarray]:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                "`HashedCrossing` should be called on a list or tuple of inputs. "
                f"Received: inputs={inputs}"
            )
        if len(inputs) < 2:
            raise ValueError(
                f"`HashedCrossing` should be called on at least two inputs. Received: "
                f"inputs={inputs}"
            )
        features = [_host_array(x) for x in inputs]
        shape = features[0].shape
        if len(shape) > 2 or (len(shape) == 2 and shape[-1] != 1):
            raise ValueError(
                "All `HashedCrossing` inputs should have shape `()`, `(batch_size)` or "
                f"`(batch_size, 1)`. Received: inputs={inputs}"
            )
        if any(f.shape != shape for f in features[1:]):
            raise ValueError(
                f"All `HashedCrossing` inputs should have equal shape. Received: inputs={inputs}"
            )
        for f in features:
            if f.dtype.kind not in "iuUSO":
                raise ValueError(
                    "All `HashedCrossing` inputs should have an integer or string dtype. "
                    f"Received: inputs={inputs}"
                )
        return features

    def call(self, inputs):
        features = self._features(inputs)
        shape = features[0].shape
        columns = []
        for feature in features:
            flat = feature.reshape(-1)
            uniques, inverse = np.unique(flat, return_inverse=True)
            prints = [cross_fingerprint(v) for v in uniques.tolist()]
            columns.append([prints[i] for i in inverse.reshape(-1)])
        ids = np.empty(len(columns[0]), dtype=np.int64)
        for b, row in enumerate(zip(*columns)):
            hashed = DEFAULT_CROSS_KEY
            for value in row:
                hashed = fingerprint_cat64(hashed, value)
            ids[b] = hashed % self.num_bins
        ids = ids.reshape(shape)
        dtype = self.dtype if self.output_mode == "int" else backend.floatx()
        return _encode(ids, self.output_mode, self.num_bins, dtype)

    def compute_output_shape(self, input_shape):
        if (
            len(input_shape) != 2
            or not isinstance(input_shape[0], (tuple, list))
            or not isinstance(input_shape[1], (tuple, list))
        ):
            raise ValueError(
                f"Expected as input a list/tuple of 2 tensors. Received input_shape={input_shape}"
            )
        first = tuple(input_shape[0])
        if first and tuple(input_shape[1]) and first[-1] != tuple(input_shape[1])[-1]:
            raise ValueError(
                "Expected the two input tensors to have identical shapes. Received "
                f"input_shape={input_shape}"
            )
        return encoded_shape(first, self.output_mode, self.num_bins)

    def compute_output_spec(self, inputs):
        from distkeras.layers.input import KerasTensor

        shape = encoded_shape(tuple(inputs[0].shape), self.output_mode, self.num_bins)
        dtype = self.dtype if self.output_mode == "int" else backend.floatx()
        return KerasTensor(shape, dtype)

    def get_config(self):
        return {
            "num_bins": self.num_bins,
            "output_mode": self.output_mode,
            "sparse": False,
            "name": self.name,
            "dtype": self.dtype,
        }
