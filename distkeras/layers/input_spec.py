"""``InputSpec``: the rank, dtype and shape a layer accepts, checked on every call as in Keras.

A layer sets ``self.input_spec`` (an ``InputSpec``, or a list/dict of them, one per input
tensor of the first call argument); ``Layer.__call__`` then raises Keras's ``ValueError``
naming the input, the layer and what was expected before ``call`` runs. A ``None`` entry in a
shape matches any size. Symbolic inputs (``KerasTensor``) are checked with their ``None``
dimensions, never with the placeholders used for shape inference.
"""

from __future__ import annotations

from distkeras import backend
from distkeras.utils.tree import flatten

__all__ = ["InputSpec", "assert_input_compatibility"]


def _standardize_shape(shape) -> tuple:
    return tuple(None if d is None else int(d) for d in shape)


def _dtype_name(dtype) -> str:
    return backend.dtype_name(backend.standardize_dtype(dtype))


class InputSpec:
    """Specifies the rank, dtype and shape of every input to a layer.

    Args:
        dtype: expected dtype of the input.
        shape: expected shape, batch included (``None`` entries match any size).
        ndim: expected rank.
        max_ndim: maximum rank.
        min_ndim: minimum rank.
        axes: ``{axis: size}`` for specific axes (negative axes count from the end).
        allow_last_axis_squeeze: accept a rank off by one when the extra last axis is 1.
        name: the key of this input when inputs are passed as a dict.
        optional: whether the input may be ``None``.

    Example:
        >>> class MyLayer(distkeras.layers.Layer):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.input_spec = InputSpec(shape=(None, 28, 28, 1),
        ...                                     allow_last_axis_squeeze=True)
    """

    def __init__(
        self,
        dtype=None,
        shape=None,
        ndim: int | None = None,
        max_ndim: int | None = None,
        min_ndim: int | None = None,
        axes: dict | None = None,
        allow_last_axis_squeeze: bool = False,
        name: str | None = None,
        optional: bool = False,
    ):
        self.dtype = _dtype_name(dtype) if dtype is not None else None
        if shape is not None:
            self.shape = _standardize_shape(shape)
            self.ndim = len(self.shape)
        else:
            self.ndim = ndim
            self.shape = None
        self.max_ndim = max_ndim
        self.min_ndim = min_ndim
        self.name = name
        self.optional = optional
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        try:
            axes = axes or {}
            self.axes = {int(k): axes[k] for k in axes}
        except (ValueError, TypeError):
            raise TypeError(
                f"Argument `axes` must be a dict with integer keys. Received: axes={axes}"
            ) from None
        if self.axes and (self.ndim is not None or self.max_ndim is not None):
            max_dim = (self.ndim if self.ndim else self.max_ndim) - 1
            max_axis = max(self.axes)
            if max_axis > max_dim:
                raise ValueError(
                    f"Axis {max_axis} is greater than the maximum allowed value: {max_dim}"
                )

    def __repr__(self) -> str:
        parts = [
            f"dtype={self.dtype}" if self.dtype else "",
            f"shape={self.shape}" if self.shape else "",
            f"ndim={self.ndim}" if self.ndim else "",
            f"max_ndim={self.max_ndim}" if self.max_ndim else "",
            f"min_ndim={self.min_ndim}" if self.min_ndim else "",
            f"axes={self.axes}" if self.axes else "",
        ]
        return f"InputSpec({', '.join(p for p in parts if p)})"

    def get_config(self) -> dict:
        return {
            "dtype": self.dtype,
            "shape": self.shape,
            "ndim": self.ndim,
            "max_ndim": self.max_ndim,
            "min_ndim": self.min_ndim,
            "axes": self.axes,
            "optional": self.optional,
        }

    @classmethod
    def from_config(cls, config: dict) -> InputSpec:
        return cls(**config)


def _ordered_inputs(specs: list, inputs):
    """A dict of inputs ordered by the specs' names (when every spec has one)."""
    names = [spec.name if spec is not None else None for spec in specs]
    if not isinstance(inputs, dict) or not all(names):
        return flatten(inputs)
    for name in names:
        if name not in inputs:
            raise ValueError(
                f'Missing data for input "{name}". You passed a data dictionary with keys '
                f"{list(inputs.keys())}. Expected the following keys: {names}"
            )
    return [inputs[name] for name in names]


def assert_input_compatibility(input_spec, inputs, layer_name: str) -> None:
    """Raises Keras's ``ValueError`` when ``inputs`` do not satisfy ``input_spec``."""
    if not input_spec:
        return
    specs = flatten(input_spec)
    inputs = _ordered_inputs(specs, inputs)
    if len(inputs) != len(specs):
        names = [spec.name for spec in specs if spec is not None]
        if len(names) == len(specs) and all(names):
            keys = ", ".join(f"'{n}': ..." for n in names)
            raise ValueError(
                f'Layer "{layer_name}" expects {len(specs)} named input(s) with keys {names}, '
                f"but it received {len(inputs)} input tensors. Pass inputs as a dict, e.g. "
                f"`layer({{{keys}}})`."
            )
        raise ValueError(
            f'Layer "{layer_name}" expects {len(specs)} input(s), but it received '
            f"{len(inputs)} input tensors. Inputs received: {inputs}"
        )
    for index, (x, spec) in enumerate(zip(inputs, specs)):
        if spec is None or (x is None and spec.optional):
            continue
        _check_one(index, x, spec, layer_name)


def _check_one(index: int, x, spec: InputSpec, layer_name: str) -> None:
    if not hasattr(x, "shape"):
        raise ValueError(
            f"Inputs to a layer should be tensors. Got '{x}' (of type {type(x)}) as input for "
            f"layer '{layer_name}'."
        )
    shape = _standardize_shape(x.shape)
    ndim = len(shape)
    where = f"Input {index} with name '{spec.name}' of layer '{layer_name}' is incompatible "
    where += "with the layer:"
    if spec.ndim is not None and not spec.allow_last_axis_squeeze and ndim != spec.ndim:
        raise ValueError(
            f"{where} expected ndim={spec.ndim}, found ndim={ndim}. Full shape received: {shape}"
        )
    if spec.max_ndim is not None and ndim > spec.max_ndim:
        raise ValueError(f"{where} expected max_ndim={spec.max_ndim}, found ndim={ndim}")
    if spec.min_ndim is not None and ndim < spec.min_ndim:
        raise ValueError(
            f"{where} expected min_ndim={spec.min_ndim}, found ndim={ndim}. "
            f"Full shape received: {shape}"
        )
    if spec.dtype is not None:
        dtype = _dtype_name(x.dtype)
        if dtype != spec.dtype:
            raise ValueError(f"{where} expected dtype={spec.dtype}, found dtype={dtype}")
    for axis, value in spec.axes.items():
        if value is not None and shape[axis] not in (value, None):
            raise ValueError(
                f"{where} expected axis {axis} of input shape to have value {value}, but "
                f"received input with shape {shape}"
            )
    if spec.shape is not None:
        spec_shape = spec.shape
        if spec.allow_last_axis_squeeze:
            if shape and shape[-1] == 1:
                shape = shape[:-1]
            if spec_shape and spec_shape[-1] == 1:
                spec_shape = spec_shape[:-1]
        for spec_dim, dim in zip(spec_shape, shape):
            if spec_dim is not None and dim is not None and spec_dim != dim:
                raise ValueError(f"{where} expected shape={spec.shape}, found shape={shape}")
