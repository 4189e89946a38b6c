"""``Variable``: Keras's variable API on the ``torch.nn.Parameter`` a layer owns.

A ``Variable`` *is* the parameter (a ``torch.nn.Parameter`` subclass), not a wrapper around
it: ``Layer.add_weight`` and ``Metric.add_variable`` return one, the layer registers it as a
torch parameter, and torch optimizers, ``torch.compile``, the gradient reducer and every
kernel of the per-step path see a plain Parameter. Ops on it return plain tensors and cost
nothing extra, because ``Parameter`` disables ``__torch_function__`` dispatch.

On top of the tensor it adds Keras's methods and attributes: ``assign``, ``assign_add``,
``assign_sub`` (in place, outside autograd), ``numpy()`` (a copy, also for trainable weights),
``value`` (the Parameter itself, so ``v.value.grad`` works as in Keras's torch guides),
``name``, ``path``, ``trainable``, ``aggregation``, ``synchronization``.

Differences from Keras, by design: ``dtype`` is the torch dtype (``torch.float32``, which
``distkeras.ops`` accept wherever Keras takes ``"float32"``), and ``shape`` is the shape of
the stored tensor. Layers whose fast kernel wants another layout (Dense and Conv kernels,
attention and recurrent kernels) store that layout; ``get_weights``/``set_weights`` speak
Keras's layout, while the variable, its ``shape``, ``numpy()`` and ``assign`` speak the stored
one.

Example:
    >>> v = distkeras.Variable(np.ones((2, 2)), name="v")
    >>> v.assign_add(np.ones((2, 2)))
    >>> v.numpy()
    array([[2., 2.], [2., 2.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np
import torch

from distkeras import backend

_AGGREGATIONS = ("none", "mean", "sum", "only_first_replica")


class _Version:
    """A counter bumped whenever weights are created or change their trainable flag: caches
    of weight lists (``training/steps.py``) compare it instead of walking the layers."""

    value = 0

    def bump(self) -> None:
        self.value += 1


WEIGHTS_VERSION = _Version()
_SYNCHRONIZATIONS = ("auto", "on_read", "on_write", "none")


class Variable(torch.nn.Parameter):
    """A Keras variable: a ``torch.nn.Parameter`` with Keras's variable API.

    Args:
        initializer: an initial value (array, tensor, number) or an initializer (name,
            instance or callable taking ``shape`` and ``dtype``), as ``keras.Variable``.
        shape: required with an initializer, checked against an initial value.
        dtype: default: the initial value's dtype, or ``floatx()`` with an initializer.
        trainable: whether gradients flow to it (``requires_grad``).
        name: the variable's name; ``path`` is ``"<layer>/<name>"`` inside a layer.

    Example:
        >>> v = distkeras.Variable(initializer="zeros", shape=(3,), name="bias")
        >>> v.assign([1.0, 2.0, 3.0])
        >>> (v * 2).sum()
        tensor(12.)
    """

    def __new__(
        cls,
        initializer=None,
        shape=None,
        dtype=None,
        trainable: bool = True,
        autocast: bool = True,
        aggregation: str = "none",
        synchronization: str = "auto",
        name: str | None = None,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(
                f"Variable: unrecognized keyword arguments {sorted(kwargs)}. "
                f"Received: {', '.join(f'{k}={v!r}' for k, v in sorted(kwargs.items()))}"
            )
        if name is not None and (not isinstance(name, str) or "/" in name):
            raise ValueError(
                "Argument `name` must be a string and cannot contain character `/`. "
                f"Received: name={name!r}"
            )
        value = _initial_value(initializer, shape, dtype)
        return cls._wrap(
            value,
            trainable=trainable,
            name=name or "variable",
            path=name or "variable",
            autocast=autocast,
            aggregation=aggregation,
            synchronization=synchronization,
        )

    def __init__(self, *args, **kwargs):
        # All the work is in __new__ (a tensor's storage is fixed when it is created).
        pass

    @classmethod
    def _wrap(
        cls,
        value: torch.Tensor,
        *,
        trainable: bool,
        name: str,
        path: str,
        autocast: bool = True,
        aggregation: str = "none",
        synchronization: str = "auto",
    ) -> Variable:
        """A Variable sharing ``value``'s storage (what ``add_weight`` registers)."""
        if aggregation not in _AGGREGATIONS:
            raise ValueError(
                f"Invalid value for argument `aggregation`. Expected one of {_AGGREGATIONS}. "
                f"Received: aggregation={aggregation!r}"
            )
        if synchronization not in _SYNCHRONIZATIONS:
            raise ValueError(
                "Invalid value for argument `synchronization`. Expected one of "
                f"{_SYNCHRONIZATIONS}. Received: synchronization={synchronization!r}"
            )
        requires_grad = bool(trainable)
        if requires_grad and not (value.is_floating_point() or value.is_complex()):
            raise ValueError(
                f"Variable '{name}': only floating-point variables can be trainable. "
                f"Received: dtype={backend.dtype_name(value.dtype)}, trainable=True"
            )
        self = torch.Tensor._make_subclass(cls, value.detach(), requires_grad)
        self._keras_name = name
        self._keras_path = path
        self._autocast = bool(autocast)
        self._aggregation = aggregation
        self._synchronization = synchronization
        return self

    # ------------------------------------------------------------------ attributes
    @property
    def name(self) -> str:
        return self._keras_name

    @property
    def path(self) -> str:
        return self._keras_path

    @property
    def value(self) -> Variable:
        """The torch Parameter holding the value: the variable itself."""
        return self

    @property
    def trainable(self) -> bool:
        return self.requires_grad

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.requires_grad_(bool(value))
        WEIGHTS_VERSION.bump()

    @property
    def aggregation(self) -> str:
        return self._aggregation

    @property
    def synchronization(self) -> str:
        return self._synchronization

    @property
    def autocast(self) -> bool:
        return self._autocast

    # --------------------------------------------------------------------- methods
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """A numpy copy of the value (works on trainable variables, unlike a tensor's)."""
        return np.array(backend.to_numpy(self.detach()))

    def __array__(self, dtype=None, copy=None):
        value = self.numpy()
        return value.astype(dtype) if dtype is not None else value

    def _converted(self, value) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            return value.detach().to(device=self.device, dtype=self.dtype)
        return torch.as_tensor(np.asarray(value), device=self.device).to(self.dtype)

    def assign(self, value) -> torch.Tensor:
        """Sets the value in place, outside autograd; returns the value assigned."""
        value = self._converted(value)
        if tuple(value.shape) != tuple(self.shape):
            raise ValueError(
                "The shape of the target variable and the shape of the target value in "
                f"`variable.assign(value)` must match. variable.shape={tuple(self.shape)}, "
                f"Received: value.shape={tuple(value.shape)}. Target variable: {self!r}"
            )
        with torch.no_grad():
            self.copy_(value)
        return value

    def assign_add(self, value) -> Variable:
        """Adds ``value`` in place (broadcasting as Keras's ``assign(self + value)``)."""
        with torch.no_grad():
            self.add_(self._converted(value))
        return self

    def assign_sub(self, value) -> Variable:
        """Subtracts ``value`` in place."""
        with torch.no_grad():
            self.sub_(self._converted(value))
        return self

    # --------------------------------------------------------------- copy, pickle
    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)._wrap(
            self.detach().clone(memory_format=torch.preserve_format),
            trainable=self.requires_grad,
            name=self._keras_name,
            path=self._keras_path,
            autocast=self._autocast,
            aggregation=self._aggregation,
            synchronization=self._synchronization,
        )
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto):
        return (
            _rebuild_variable,
            (
                self.detach(),
                self.requires_grad,
                self._keras_name,
                self._keras_path,
                self._autocast,
                self._aggregation,
                self._synchronization,
            ),
        )

    def __repr__(self) -> str:
        try:
            value = f", value={self.numpy()}"
        except (RuntimeError, TypeError):  # e.g. a meta tensor
            value = ""
        return (
            f"<Variable path={self.path}, shape={tuple(self.shape)}, "
            f"dtype={backend.dtype_name(self.dtype)}{value}>"
        )


def _array_operator(name: str):
    """``Variable.<name>``: numpy/list operands become tensors of the variable's dtype (as
    Keras converts them); tensors and Python numbers go straight to torch's operator."""
    tensor_op = getattr(torch.Tensor, name)

    def operator(self, other):
        if isinstance(other, (np.ndarray, list, tuple)):
            other = torch.as_tensor(np.asarray(other), device=self.device).to(self.dtype)
        return tensor_op(self, other)

    operator.__name__ = name
    return operator


_ARRAY_OPERATORS = (
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
    "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__",
    "__rpow__", "__matmul__", "__rmatmul__", "__lt__", "__le__", "__gt__", "__ge__",
    "__eq__", "__ne__", "__and__", "__or__", "__xor__",
)  # fmt: skip
for _name in _ARRAY_OPERATORS:
    setattr(Variable, _name, _array_operator(_name))
# A Tensor subclass that defines __eq__ must say how it hashes: by identity, as tensors do.
Variable.__hash__ = torch.Tensor.__hash__


def _rebuild_variable(data, requires_grad, name, path, autocast, aggregation, synchronization):
    return Variable._wrap(
        data,
        trainable=requires_grad,
        name=name,
        path=path,
        autocast=autocast,
        aggregation=aggregation,
        synchronization=synchronization,
    )


def _initial_value(initializer, shape, dtype) -> torch.Tensor:
    """The first value from an initial value or an initializer, on the default device."""
    from distkeras import initializers

    if initializer is None:
        raise ValueError("Variable needs an `initializer` (an initial value or an initializer).")
    torch_dtype = None if dtype is None else backend.standardize_dtype(dtype)
    is_initializer = isinstance(initializer, str) or (
        callable(initializer) and not isinstance(initializer, (torch.Tensor, np.ndarray))
    )
    if is_initializer:
        if shape is None:
            raise ValueError(
                "When creating a Variable from an initializer, the `shape` argument should be "
                f"specified. Received: initializer={initializer!r} and shape={shape}"
            )
        shape = tuple(int(d) for d in shape)
        value = initializers.get(initializer)(shape, dtype=dtype or backend.floatx())
        value = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
        torch_dtype = torch_dtype or backend.standardize_dtype(backend.floatx())
    else:
        if isinstance(initializer, torch.Tensor):
            value = initializer.detach().clone()
        else:
            array = np.asarray(initializer)
            if array.dtype == np.float64 and not isinstance(initializer, np.ndarray):
                array = array.astype(backend.floatx())  # Python floats: floatx, as Keras
            value = torch.as_tensor(array.copy())
        if shape is not None and tuple(value.shape) != tuple(int(d) for d in shape):
            raise ValueError(
                f"Initial value has shape {tuple(value.shape)}, but the variable's `shape` is "
                f"{tuple(shape)}."
            )
    if torch_dtype is not None:
        value = value.to(torch_dtype)
    return value.to(backend.get_device())


__all__ = ["Variable"]
