"""Numeric preprocessing layers of ``keras.layers``: Normalization, Rescaling, Discretization,
CategoryEncoding.

Layers with state learned by ``adapt()`` keep it in non-trainable weights named as Keras names
them, so ``.weights.h5`` and ``.keras`` files move between the two libraries.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from distkeras import backend
from distkeras.layers.base import Layer

__all__ = ["Normalization", "Rescaling", "Discretization", "CategoryEncoding"]


def _as_tensor(data, dtype=None) -> torch.Tensor:
    if isinstance(data, torch.Tensor):
        return data if dtype is None else data.to(dtype)
    return torch.as_tensor(np.asarray(data), dtype=dtype)


def _batches(data, layer: str):
    """``data`` as a list of array batches: one array/tensor, or an iterable of batches (of
    ``x`` or ``(x, y, ...)`` tuples, whose first element is used)."""
    if isinstance(data, (np.ndarray, torch.Tensor)):
        return [data]
    if not hasattr(data, "__iter__"):
        raise TypeError(
            f"{layer}.adapt() expects a numpy array, a tensor or an iterable of batches. "
            f"Received: {type(data).__name__}"
        )
    batches = [
        b[0] if isinstance(b, (tuple, list)) and len(b) and hasattr(b[0], "shape") else b
        for b in data
    ]
    if not batches:
        raise ValueError(f"{layer}.adapt() received an empty iterable: no batches.")
    return batches


class Normalization(Layer):
    """Shifts and scales inputs to zero mean and unit variance: ``(x - mean) / sqrt(var)``.

    ``mean`` and ``variance`` are given, or learned with :meth:`adapt` over the axes not in
    ``axis`` (the kept axes; ``axis=None`` learns one scalar). ``invert=True`` maps normalized
    values back.

    Example:
        >>> layer = Normalization()
        >>> layer.adapt(np.array([[0.0], [2.0]]))
        >>> layer(torch.tensor([[2.0]]))
        tensor([[1.]])
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        self.axis = (int(axis),) if isinstance(axis, int) else tuple(int(a) for a in axis)
        if (mean is None) != (variance is None):
            raise ValueError(
                f"Normalization: when setting values directly, both `mean` and `variance` must "
                f"be set. Received: mean={mean} and variance={variance}"
            )
        if mean is not None and np.shape(mean) != np.shape(variance):
            raise ValueError(
                f"Normalization: `mean` and `variance` must have the same shape. Received: "
                f"mean shape {np.shape(mean)} and variance shape {np.shape(variance)}"
            )
        if mean is not None and np.ndim(mean) > len(self.axis):
            raise ValueError(
                f"Normalization: the rank of `mean` must be at most the number of axes "
                f"({len(self.axis)}). Received: mean shape {np.shape(mean)} for axis {self.axis}"
            )
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self.supports_masking = True
        self._build_shape = None

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(
                f"Normalization layer '{self.name}': every `axis` must be in [-{ndim}, {ndim}). "
                f"Received: inputs with ndim={ndim} and axis={self.axis}"
            )
        self._build_shape = tuple(input_shape)
        self._keep = tuple(sorted(a % ndim for a in self.axis))
        for d in self._keep:
            if input_shape[d] is None:
                raise ValueError(
                    f"Normalization layer '{self.name}': kept axis {d} must have a known size. "
                    f"Received: input_shape={tuple(input_shape)}, axis={self.axis}"
                )
        self._reduce = tuple(d for d in range(ndim) if d not in self._keep)
        self._broadcast = [input_shape[d] if d in self._keep else 1 for d in range(ndim)]
        stat_shape = tuple(input_shape[d] for d in self._keep)
        if self.input_mean is None:
            self.mean = self.add_weight(stat_shape, "zeros", trainable=False, name="mean")
            self.variance = self.add_weight(stat_shape, "ones", trainable=False, name="variance")
            # Kept at 0, as Keras keeps it: only for files of older Keras versions.
            self.count = self.add_weight((), "zeros", "int64", trainable=False, name="count")
        else:
            self.register_buffer("_fixed_mean", self._broadcast_given(self.input_mean), False)
            self.register_buffer(
                "_fixed_variance", self._broadcast_given(self.input_variance), False
            )

    def _broadcast_given(self, value) -> torch.Tensor:
        # Given statistics line up with the kept axes from the right, as in Keras.
        value = _as_tensor(value, backend.standardize_dtype(self.dtype))
        shape = [1] * len(self._broadcast)
        for i in range(1, value.ndim + 1):
            shape[self._keep[-i]] = value.shape[-i]
        return value.reshape(shape).expand(self._broadcast).to(backend.get_device())

    def adapt(self, data) -> None:
        """Learns the mean and variance of ``data`` (an array, a tensor, or an iterable of
        batches) over the reduced axes, merging batches exactly."""
        batches = _batches(data, "Normalization")
        first_shape = tuple(batches[0].shape)
        if not self.built:
            self._build_if_needed(first_shape)
        if self.input_mean is not None:
            raise ValueError(
                f"Normalization layer '{self.name}' was given mean and variance; adapt() "
                "would be ignored."
            )
        total_mean = total_var = None
        total_count = 0
        for batch in batches:
            x = _as_tensor(batch, torch.float64)
            for d in self._keep:
                if x.shape[d] != self._build_shape[d]:
                    raise ValueError(
                        f"Normalization layer '{self.name}' was built for input_shape="
                        f"{self._build_shape}; adapt() got a batch of shape {tuple(x.shape)}."
                    )
            count = math.prod(x.shape[d] for d in self._reduce) if self._reduce else 1
            mean = x.mean(dim=self._reduce) if self._reduce else x
            var = x.var(dim=self._reduce, unbiased=False) if self._reduce else torch.zeros_like(x)
            if total_mean is None:
                total_mean, total_var, total_count = mean, var, count
                continue
            # Merging two groups' moments exactly (parallel variance formula).
            new_count = total_count + count
            delta = mean - total_mean
            new_mean = total_mean + delta * (count / new_count)
            total_var = (
                total_var * total_count + var * count + delta**2 * (total_count * count / new_count)
            ) / new_count
            total_mean, total_count = new_mean, new_count
        with torch.no_grad():
            self.mean.copy_(total_mean.reshape(self.mean.shape).to(self.mean.dtype))
            self.variance.copy_(total_var.reshape(self.variance.shape).to(self.variance.dtype))

    def _statistics(self):
        if self.input_mean is not None:
            return self._fixed_mean, self._fixed_variance
        return self.mean.reshape(self._broadcast), self.variance.reshape(self._broadcast)

    def call(self, inputs):
        inputs = inputs.to(backend.standardize_dtype(self.dtype))
        mean, variance = self._statistics()
        scale = torch.clamp(torch.sqrt(variance), min=backend.epsilon())
        if self.invert:
            return mean + inputs * scale
        return (inputs - mean) / scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_build_config(self):
        return {"input_shape": list(self._build_shape)} if self._build_shape else None

    def get_config(self):
        config = super().get_config()
        config.update(
            axis=list(self.axis),
            invert=self.invert,
            mean=np.array(self.input_mean).tolist(),
            variance=np.array(self.input_variance).tolist(),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("mean", "variance"):  # Keras writes np.array(None).tolist(): None
            if config.get(key) is None:
                config[key] = None
        return cls(**config)


class Rescaling(Layer):
    """``inputs * scale + offset``, in the layer's float dtype (integer images included).

    Example:
        >>> Rescaling(1.0 / 255)(torch.tensor([255, 0], dtype=torch.uint8))
        tensor([1., 0.])
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.supports_masking = True

    def call(self, inputs):
        dtype = backend.standardize_dtype(self.dtype)
        inputs = inputs.to(dtype)
        scale = _as_tensor(self.scale, dtype).to(inputs.device)
        offset = _as_tensor(self.offset, dtype).to(inputs.device)
        return inputs * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()

        def plain(value):
            return np.asarray(value).tolist() if not isinstance(value, (int, float)) else value

        config.update(scale=plain(self.scale), offset=plain(self.offset))
        return config


_ENCODINGS = ("one_hot", "multi_hot", "count")


def encode_categories(indices, output_mode: str, depth: int, dtype, count_weights=None):
    """Keras's categorical encodings of integer ``indices`` in ``[0, depth)``.

    ``one_hot`` adds a last axis of size ``depth`` (replacing a trailing axis of size 1);
    ``multi_hot`` and ``count`` reduce the last axis of a batch (or a rank-1 input, a single
    sample) to ``depth`` flags or counts.
    """
    indices = indices.long()
    if indices.ndim == 0:
        indices = indices.reshape(1)
    if output_mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices.squeeze(-1)
        return torch.nn.functional.one_hot(indices, depth).to(dtype)
    one_hot = torch.nn.functional.one_hot(indices, depth)
    if output_mode == "multi_hot":
        return one_hot.amax(dim=-2).to(dtype)
    if count_weights is not None:
        weights = _as_tensor(count_weights).to(indices.device)
        return (one_hot.to(weights.dtype) * weights.unsqueeze(-1)).sum(dim=-2)
    return one_hot.sum(dim=-2).to(dtype)


def _check_output_mode(layer: str, output_mode: str, allowed: tuple[str, ...]) -> str:
    if output_mode not in allowed:
        raise ValueError(
            f"{layer}: unknown output_mode {output_mode!r}; expected one of {allowed}."
        )
    return output_mode


def _check_not_sparse(layer: str, sparse) -> None:
    if sparse:
        raise ValueError(f"{layer}: sparse=True is not supported on the torch backend.")


class CategoryEncoding(Layer):
    """Encodes integer category ids in ``[0, num_tokens)`` as one-hot, multi-hot or count
    vectors (``count_weights`` weigh the counts).

    Example:
        >>> CategoryEncoding(num_tokens=4, output_mode="multi_hot")(torch.tensor([[0, 3]]))
        tensor([[1., 0., 0., 1.]])
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if output_mode == "binary":  # Keras's deprecated name
            output_mode = "multi_hot"
        self.output_mode = _check_output_mode("CategoryEncoding", output_mode, _ENCODINGS)
        if num_tokens is None:
            raise ValueError(
                "CategoryEncoding: num_tokens must be set. If the number of tokens is not "
                "known beforehand, use the IntegerLookup layer instead."
            )
        if num_tokens < 1:
            raise ValueError(f"CategoryEncoding: num_tokens must be >= 1. Received: {num_tokens}")
        _check_not_sparse("CategoryEncoding", sparse)
        self.num_tokens = int(num_tokens)
        self.sparse = False

    def call(self, inputs, count_weights=None):
        if count_weights is not None and self.output_mode != "count":
            raise ValueError(
                "CategoryEncoding: count_weights is only used with output_mode='count'. "
                f"Received: output_mode={self.output_mode!r}"
            )
        return encode_categories(
            inputs,
            self.output_mode,
            self.num_tokens,
            backend.standardize_dtype(self.dtype),
            count_weights,
        )

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if not input_shape:
            return (self.num_tokens,)
        if self.output_mode == "one_hot":
            if len(input_shape) > 1 and input_shape[-1] == 1:
                input_shape = input_shape[:-1]
            return (*input_shape, self.num_tokens)
        return (*input_shape[:-1], self.num_tokens)

    def get_config(self):
        config = super().get_config()
        config.update(num_tokens=self.num_tokens, output_mode=self.output_mode)
        return config


class Discretization(Layer):
    """Buckets values by ``bin_boundaries`` (``bins[i-1] <= x < bins[i]`` maps to ``i``), or by
    ``num_bins`` quantile boundaries learned with :meth:`adapt`.

    Example:
        >>> Discretization(bin_boundaries=[0.0, 1.0])(torch.tensor([-1.0, 0.5, 2.0]))
        tensor([0, 1, 2], dtype=torch.int32)
    """

    def __init__(
        self,
        bin_boundaries=None,
        num_bins=None,
        epsilon=0.01,
        output_mode="int",
        sparse=False,
        dtype=None,
        name=None,
    ):
        super().__init__(dtype=dtype, name=name)
        self.output_mode = _check_output_mode("Discretization", output_mode, ("int", *_ENCODINGS))
        _check_not_sparse("Discretization", sparse)
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"Discretization: num_bins must be >= 0. Received: {num_bins}")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError(
                "Discretization: set either num_bins or bin_boundaries, not both. Received: "
                f"num_bins={num_bins} and bin_boundaries={bin_boundaries}"
            )
        if num_bins is None and bin_boundaries is None:
            raise ValueError("Discretization: set either num_bins or bin_boundaries.")
        self.bin_boundaries = None if bin_boundaries is None else list(bin_boundaries)
        self.num_bins = num_bins
        self.epsilon = epsilon
        self.sparse = False

    def adapt(self, data, steps=None) -> None:
        """Sets ``num_bins - 1`` boundaries at the quantiles ``i / num_bins`` of ``data``."""
        if self.num_bins is None:
            raise ValueError(
                "Discretization: cannot adapt a layer made with bin_boundaries; use num_bins."
            )
        batches = _batches(data, "Discretization")
        if steps is not None:
            batches = batches[:steps]
        values = np.concatenate([np.asarray(b, dtype="float32").reshape(-1) for b in batches])
        quantiles = np.arange(1, self.num_bins) / self.num_bins
        self.bin_boundaries = np.quantile(values, quantiles).astype("float32").tolist()

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError(
                f"Discretization layer '{self.name}': pass bin_boundaries or call adapt() "
                "before using it."
            )
        boundaries = torch.tensor(self.bin_boundaries, dtype=torch.float32, device=inputs.device)
        indices = torch.bucketize(inputs.to(torch.float32).contiguous(), boundaries, right=True)
        if self.output_mode == "int":
            return indices.to(torch.int32)
        depth = len(self.bin_boundaries) + 1
        return encode_categories(
            indices, self.output_mode, depth, backend.standardize_dtype(self.dtype)
        )

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return input_shape
        depth = len(self.bin_boundaries) + 1 if self.bin_boundaries is not None else self.num_bins
        return CategoryEncoding(depth, self.output_mode).compute_output_shape(input_shape)

    def get_config(self):
        return {
            "bin_boundaries": self.bin_boundaries,
            "num_bins": self.num_bins,
            "epsilon": self.epsilon,
            "output_mode": self.output_mode,
            "sparse": False,
            "name": self.name,
            "dtype": self.dtype,  # a plain name here, as Keras writes it for this layer
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # After adapt() both are set, which the constructor refuses: restore boundaries after.
        boundaries = config.pop("bin_boundaries", None) if config.get("num_bins") else None
        layer = cls(**config)
        if boundaries is not None:
            layer.bin_boundaries = list(boundaries)
        return layer
