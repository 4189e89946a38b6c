"""The ``Metric`` base class and its state contract.

State contract (the distributed trainer relies on it): a metric keeps all its state in device
tensors created with :meth:`Metric.add_variable` and listed, in a fixed order, by
``metric.variables``; every state is SUM-reducible, so summing each tensor across processes
(in place, e.g. ``all_reduce`` on ``metric.variables``) and calling ``result()`` gives the exact
global value. Updates are pure tensor math (no host syncs) and run without autograd. States
follow the data: they move, in place, to the device of the first tensor they are updated with.
"""

from __future__ import annotations

import torch

from distkeras import backend
from distkeras.losses.base import to_tensor
from distkeras.utils.naming import to_snake_case, uniquify
from distkeras.variables import Variable


class Metric:
    """Encapsulates metric logic and state: ``update_state`` accumulates, ``result`` reads.

    Subclasses create their state in ``__init__`` with ``self.x = self.add_variable(...)``,
    update it in place in ``update_state`` and compute the value in ``result``.

    Args:
        name: name of the metric (the key in the training logs).
        dtype: dtype of the state and result, default ``floatx()``.

    Example:
        >>> class Total(Metric):
        ...     def __init__(self, name="total", dtype=None):
        ...         super().__init__(name=name, dtype=dtype)
        ...         self.total = self.add_variable(shape=(), name="total")
        ...     def update_state(self, values, sample_weight=None):
        ...         self.total.add_(torch.as_tensor(values, dtype=self.total.dtype).sum())
        ...     def result(self):
        ...         return self.total.clone()
        >>> m = Total()
        >>> m([1.0, 2.0])
        tensor(3.)
    """

    def __init__(self, name: str | None = None, dtype=None):
        self._variables: list[torch.Tensor] = []
        self._metrics: list[Metric] = []
        self.name = name or uniquify(to_snake_case(type(self).__name__))
        self._dtype_name = backend.floatx() if dtype is None else _dtype_name(dtype)
        self._torch_dtype = backend.standardize_dtype(self._dtype_name)
        self._device: torch.device | None = None

    def __setattr__(self, key, value):
        # Metrics held as attributes contribute their states to ``variables``.
        if isinstance(value, Metric) and key != "_metrics" and "_metrics" in self.__dict__:
            self._metrics.append(value)
        super().__setattr__(key, value)

    @property
    def dtype(self) -> str:
        return self._dtype_name

    # ------------------------------------------------------------------------------ state
    def add_variable(
        self, shape=(), initializer="zeros", dtype=None, aggregation: str = "sum", name=None
    ) -> Variable:
        """Creates a state variable (zeros unless ``initializer`` says otherwise)."""
        if "_variables" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before add_variable()."
            )
        if aggregation not in ("sum", "none", None):
            raise ValueError(
                f"Metric '{self.name}': state '{name}' must be sum-reducible across processes. "
                f"Received: aggregation={aggregation!r}"
            )
        dtype = self._torch_dtype if dtype is None else backend.standardize_dtype(dtype)
        device = self._device or backend.get_device()
        shape = tuple(shape or ())
        if initializer in ("zeros", None):
            value = torch.zeros(shape, dtype=dtype, device=device)
        elif initializer == "ones":
            value = torch.ones(shape, dtype=dtype, device=device)
        elif isinstance(initializer, (int, float)):
            value = torch.full(shape, float(initializer), dtype=dtype, device=device)
        else:  # a Keras initializer (name, instance or callable)
            from distkeras import initializers

            value = initializers.get(initializer)(shape, dtype=dtype)
            value = torch.as_tensor(value).to(device=device, dtype=dtype)
        name = name or f"variable_{len(self._variables)}"
        # A Keras variable (assign_add, numpy, path), still a plain tensor to every kernel.
        value = Variable._wrap(value, trainable=False, name=name, path=f"{self.name}/{name}")
        self._variables.append(value)
        return value

    def add_weight(self, shape=(), initializer="zeros", dtype=None, name=None) -> torch.Tensor:
        """Alias of :meth:`add_variable`, as in Keras."""
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, name=name)

    @property
    def variables(self) -> list[torch.Tensor]:
        """The state tensors, in a fixed order (own first, then those of child metrics)."""
        out = list(self._variables)
        for metric in self._metrics:
            out.extend(metric.variables)
        return out

    def reset_state(self) -> None:
        """Zeroes every state in place (the tensors keep their identity)."""
        for v in self.variables:
            v.zero_()

    def _follow(self, device: torch.device) -> None:
        # Moves the states in place (``.data``), so references held elsewhere stay valid.
        if self._device == device:
            return
        for v in self._variables:
            if v.device != device:
                v.data = v.data.to(device)
        for metric in self._metrics:
            metric._follow(device)
        self._device = device

    def _tensor(self, x, dtype=None) -> torch.Tensor:
        """Converts an input and makes the states follow its device."""
        t = to_tensor(x, dtype=dtype, device=self._device if not torch.is_tensor(x) else None)
        self._follow(t.device)
        return t

    # ------------------------------------------------------------------------------ API
    def update_state(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement update_state().")

    def result(self) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement result().")

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        """Updates the state, then returns the result (as ``keras.metrics.Metric``)."""
        with torch.no_grad():
            self.update_state(*args, **kwargs)
            return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def _dtype_name(dtype) -> str:
    if isinstance(dtype, str):
        backend.standardize_dtype(dtype)  # validates
        return dtype
    return backend.dtype_name(backend.standardize_dtype(dtype))
