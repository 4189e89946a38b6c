"""The ``Layer`` base class: Keras's lifecycle on a ``torch.nn.Module``.

``__init__`` stores and validates arguments, ``build(input_shape)`` creates every weight with
:meth:`Layer.add_weight`, ``call(inputs, training=None)`` only computes, and ``__call__`` builds
on first use. Weights are ``torch.nn.Parameter`` objects (non-trainable ones with
``requires_grad=False``), so a model moves with ``.to(device)`` and works with torch code.

Weights may be *stored* in the layout the fast torch kernel wants (a Conv2D kernel as
``(out, in, kh, kw)``) while ``get_weights``/``set_weights`` and initializers speak Keras's
layout (``(kh, kw, in, out)``): ``add_weight(to_storage=..., to_keras=...)`` converts at that
boundary only.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from distkeras import backend, constraints, initializers, regularizers
from distkeras.layers.call_inputs import attach_mask as _attach_mask
from distkeras.layers.call_inputs import convert_eager, needs_conversion
from distkeras.layers.call_inputs import flat_tensors as _flat_tensors
from distkeras.layers.call_inputs import has_symbolic as _has_symbolic
from distkeras.layers.call_inputs import mask_of as _mask_of
from distkeras.layers.call_inputs import shapes_of as _shapes_of
from distkeras.layers.input_spec import assert_input_compatibility
from distkeras.utils import naming
from distkeras.utils.serialization import get_custom_object
from distkeras.variables import WEIGHTS_VERSION, Variable


class _CallContext:
    """Process-wide state of the layer call in progress (plain attributes: cheap per step)."""

    def __init__(self):
        self.depth = 0
        self.training = False
        # Layers that recorded activity/add_loss losses during the current outermost call.
        self.loss_layers: list[Layer] = []
        # True while a functional graph runs placeholders to infer shapes.
        self.symbolic = False


CALL_CONTEXT = _CallContext()


@dataclass
class WeightSpec:
    """How one weight is named, regularized, constrained and laid out for Keras."""

    name: str
    param: torch.nn.Parameter
    trainable: bool
    regularizer: Callable | None = None
    constraint: Callable | None = None
    to_keras: Callable | None = None
    to_storage: Callable | None = None

    def keras_value(self) -> torch.Tensor:
        value = self.param.detach()
        return self.to_keras(value) if self.to_keras else value

    def keras_shape(self) -> tuple:
        return tuple(self.keras_value().shape)


class KerasLayoutFn:
    """Applies a regularizer or constraint to a weight in its Keras layout.

    A Dense kernel is stored ``(out, in)`` for ``F.linear`` but ``MaxNorm(axis=0)`` or an
    ``OrthogonalRegularizer`` must see Keras's ``(in, out)``; the result of a constraint goes
    back to the stored layout.
    """

    def __init__(self, fn: Callable, to_keras: Callable, to_storage: Callable | None = None):
        self.fn, self.to_keras, self.to_storage = fn, to_keras, to_storage

    def __call__(self, stored: torch.Tensor):
        out = self.fn(self.to_keras(stored))
        return out if self.to_storage is None else self.to_storage(out)


def _in_keras_layout(fn, to_keras, to_storage=None):
    if fn is None or to_keras is None:
        return fn
    return KerasLayoutFn(fn, to_keras, to_storage)


_BASE_KWARGS = ("input_shape", "input_dim", "batch_input_shape", "batch_size", "input_length")


def _dtype_from_config(dtype) -> str | None:
    if isinstance(dtype, dict):  # Keras 3 writes a DTypePolicy config.
        dtype = dtype.get("config", {}).get("name")
    if dtype in ("mixed_float16", "mixed_bfloat16"):
        return "float32"
    return dtype


class Layer(torch.nn.Module):
    """Base class of every layer.

    Subclasses override ``build(input_shape)`` (create weights with :meth:`add_weight`),
    ``call(inputs, training=None)`` and ``get_config()``.

    Example:
        >>> class Scale(distkeras.layers.Layer):
        ...     def build(self, input_shape):
        ...         self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones",
        ...                                      name="scale")
        ...     def call(self, inputs):
        ...         return inputs * self.scale
    """

    # Filled per subclass by __init_subclass__: whether call() takes these arguments.
    _call_takes_training = False
    _call_takes_mask = False
    input_spec = None  # an InputSpec (or list of them) checked on every call, as in Keras

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            cls.build = _marks_built(cls.__dict__["build"])
        params = inspect.signature(cls.call).parameters
        has_var_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())
        cls._call_takes_training = "training" in params or has_var_kw
        cls._call_takes_mask = "mask" in params

    def __init__(
        self,
        *,
        trainable: bool = True,
        name: str | None = None,
        dtype=None,
        activity_regularizer=None,
        **kwargs,
    ):
        torch.nn.Module.__init__(self)
        unknown = set(kwargs) - set(_BASE_KWARGS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unrecognized keyword arguments {sorted(unknown)}. "
                f"Received: {', '.join(f'{k}={kwargs[k]!r}' for k in sorted(unknown))}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: `name` must be a string. Received: {name!r}")
        self.name = name or naming.uniquify(naming.to_snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype = _dtype_from_config(dtype) or backend.floatx()
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.built = False
        self.supports_masking = False
        self._weight_specs: list[WeightSpec] = []
        self._call_losses: list[torch.Tensor] = []
        self._inbound_nodes: list = []
        self._build_shapes = None
        self._batch_input_shape = self._batch_input_shape_from(kwargs)
        self._input_dtype = None

    # ----------------------------------------------------------------- input shape kwargs
    def _batch_input_shape_from(self, kwargs) -> tuple | None:
        if kwargs.get("batch_input_shape") is not None:
            return tuple(kwargs["batch_input_shape"])
        shape = kwargs.get("input_shape")
        if shape is None and kwargs.get("input_dim") is not None:
            shape = (kwargs["input_dim"],)
            if kwargs.get("input_length") is not None:
                shape = (kwargs["input_length"], kwargs["input_dim"])
        if shape is None and kwargs.get("input_length") is not None:
            shape = (kwargs["input_length"],)
        if shape is None:
            return None
        if isinstance(shape, int):
            shape = (shape,)
        return (kwargs.get("batch_size"), *tuple(shape))

    # ------------------------------------------------------------------------- weights
    def add_weight(
        self,
        shape=None,
        initializer=None,
        dtype=None,
        trainable: bool = True,
        regularizer=None,
        constraint=None,
        name: str | None = None,
        *,
        to_storage: Callable | None = None,
        to_keras: Callable | None = None,
    ) -> Variable:
        """Creates a weight, registers it, and returns it: a :class:`distkeras.Variable`, which
        is the ``torch.nn.Parameter`` the layer owns.

        Args:
            shape: the weight's shape in Keras layout.
            initializer: name, instance or callable; default glorot_uniform for floats.
            trainable: non-trainable weights get ``requires_grad=False``.
            regularizer: adds its penalty to ``layer.losses``.
            constraint: applied after every optimizer step.
            name: also the attribute name torch uses (``state_dict`` keys).
            to_storage: maps a Keras-layout tensor to the stored layout.
            to_keras: maps the stored tensor back to Keras layout.
        """
        shape = tuple(int(d) for d in (shape or ()))
        name = name or f"weight_{len(self._weight_specs)}"
        if any(spec.name == name for spec in self._weight_specs):
            raise ValueError(f"Layer '{self.name}' already has a weight named {name!r}.")
        init = initializers.get(initializer if initializer is not None else "glorot_uniform")
        value = init(shape, dtype=dtype or self.dtype)
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(np.asarray(value), dtype=backend.standardize_dtype(dtype))
        if to_storage is not None:
            value = to_storage(value).contiguous()
        param = Variable._wrap(
            value.to(backend.get_device()),
            trainable=bool(trainable) and self._trainable,
            name=name,
            path=f"{self.name}/{name}",
        )
        self.register_parameter(name, param)
        WEIGHTS_VERSION.bump()
        self._weight_specs.append(
            WeightSpec(
                name=name,
                param=param,
                trainable=bool(trainable),
                regularizer=_in_keras_layout(regularizers.get(regularizer), to_keras),
                constraint=_in_keras_layout(constraints.get(constraint), to_keras, to_storage),
                to_keras=to_keras,
                to_storage=to_storage,
            )
        )
        return param

    def _sublayers(self) -> list[Layer]:
        """Direct child layers, in the order they were assigned (also inside torch containers
        such as ``torch.nn.ModuleList``, as Keras tracks layers in lists)."""
        return _layers_in(self.children())

    def _weight_spec_list(self) -> list[WeightSpec]:
        """Every weight of this layer and its sublayers, in Keras's ``weights`` order."""
        own = [s for s in self._weight_specs if s.trainable]
        own += [s for s in self._weight_specs if not s.trainable]
        specs, seen = [], set()
        for spec in own:
            if id(spec.param) not in seen:
                seen.add(id(spec.param))
                specs.append(spec)
        for layer in self._sublayers():
            for spec in layer._weight_spec_list():
                if id(spec.param) not in seen:
                    seen.add(id(spec.param))
                    specs.append(spec)
        return specs

    @property
    def weights(self) -> list[torch.nn.Parameter]:
        return [s.param for s in self._weight_spec_list()]

    @property
    def trainable_weights(self) -> list[torch.nn.Parameter]:
        return [s.param for s in self._weight_spec_list() if s.param.requires_grad]

    @property
    def non_trainable_weights(self) -> list[torch.nn.Parameter]:
        return [s.param for s in self._weight_spec_list() if not s.param.requires_grad]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights
    variables = weights

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet: call it on data or build(input_shape) "
                "before count_params()."
            )
        return int(sum(p.numel() for p in self.weights))

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        WEIGHTS_VERSION.bump()
        for spec in self._weight_specs:
            spec.param.requires_grad_(spec.trainable and self._trainable)
        for layer in self._sublayers():
            layer.trainable = value

    def get_weights(self) -> list[np.ndarray]:
        """Weights as numpy arrays in Keras layout and ``weights`` order."""
        # Copies: on CPU a tensor's numpy() shares its memory, and training would change
        # arrays the caller holds (``w0 = get_weights(); fit(); set_weights(w0)``).
        return [np.array(backend.to_numpy(s.keras_value())) for s in self._weight_spec_list()]

    def set_weights(self, weights) -> None:
        """Sets weights from numpy arrays in Keras layout (as ``get_weights`` returns)."""
        specs = self._weight_spec_list()
        weights = list(weights)
        if len(weights) != len(specs):
            raise ValueError(
                f"Layer '{self.name}' expects {len(specs)} weights "
                f"({[s.name for s in specs]}), but received {len(weights)}."
            )
        for spec, value in zip(specs, weights):
            value = np.asarray(value)
            if tuple(value.shape) != spec.keras_shape():
                raise ValueError(
                    f"Layer '{self.name}' weight '{spec.name}' has shape {spec.keras_shape()}; "
                    f"received a value of shape {tuple(value.shape)}."
                )
            tensor = torch.as_tensor(value, dtype=spec.param.dtype)
            if spec.to_storage is not None:
                tensor = spec.to_storage(tensor)
            with torch.no_grad():
                spec.param.copy_(tensor.reshape(spec.param.shape))

    # -------------------------------------------------------------------------- losses
    def add_loss(self, loss) -> None:
        """Adds a scalar loss tensor for the current call (collected in ``losses``); a list
        or tuple adds each of its losses, as Keras flattens them."""
        if CALL_CONTEXT.symbolic:
            return
        if isinstance(loss, (list, tuple)):
            for item in loss:
                self.add_loss(item)
            return
        if not isinstance(loss, torch.Tensor):
            from distkeras.utils.general import is_keras_tensor

            if is_keras_tensor(loss):  # a symbolic tensor, outside any call()
                raise NotImplementedError(
                    f"Layer '{self.name}': add_loss() received a symbolic tensor outside "
                    "call(). Like Keras 3, distkeras takes no symbolic losses on a functional "
                    "model: add the loss from a layer's call() (a layer that calls "
                    "self.add_loss(...)), or override compute_loss()."
                )
            loss = torch.as_tensor(loss, dtype=torch.float32, device=backend.get_device())
        if not self._call_losses:
            CALL_CONTEXT.loss_layers.append(self)
        self._call_losses.append(loss)

    def regularization_terms(self) -> list[tuple[Callable, torch.nn.Parameter]]:
        """(regularizer, weight) pairs of this layer and its sublayers' trainable weights
        (Keras counts no penalty for frozen weights)."""
        return [
            (s.regularizer, s.param)
            for s in self._weight_spec_list()
            if s.regularizer and s.param.requires_grad
        ]

    def _call_losses_tree(self) -> list[torch.Tensor]:
        losses = list(self._call_losses)
        for layer in self._sublayers():
            losses.extend(layer._call_losses_tree())
        return losses

    @property
    def losses(self) -> list[torch.Tensor]:
        """Weight-regularization penalties (computed now) plus losses of the last call."""
        penalties = [reg(param) for reg, param in self.regularization_terms()]
        return penalties + self._call_losses_tree()

    # ---------------------------------------------------------------------------- build
    def build(self, input_shape) -> None:
        """Creates the layer's weights. The default has none."""
        self.built = True

    def _build_if_needed(self, input_shape) -> None:
        if self.built:
            return
        self._build_shapes = input_shape
        self.build(input_shape)
        self.built = True

    def compute_mask(self, inputs, mask=None):
        """The mask of this layer's output; layers that support masking pass it through."""
        return mask if self.supports_masking else None

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape``; the default runs the layer on placeholders."""
        from distkeras.layers.input import infer_output_shape

        return infer_output_shape(self, input_shape)

    def call(self, inputs, *args, **kwargs):
        return inputs

    # ----------------------------------------------------------------------------- call
    def __call__(self, *args, **kwargs):
        first = args[0] if args else kwargs.get("inputs")
        if type(first) is not torch.Tensor:
            if _has_symbolic(args, kwargs):
                from distkeras.layers.input import symbolic_call

                if self.input_spec is not None:  # KerasTensor shapes, None dims included
                    assert_input_compatibility(self.input_spec, first, self.name)
                return symbolic_call(self, args, kwargs)
            # numpy, lists, scalars: tensors, as Keras; string layers opt out, as in Keras.
            if getattr(self, "_convert_input_args", True) and needs_conversion(args, kwargs):
                args, kwargs = convert_eager(args, kwargs, self.dtype)
                first = args[0] if args else kwargs.get("inputs")
        if self.input_spec is not None and not CALL_CONTEXT.symbolic:  # not placeholders
            assert_input_compatibility(self.input_spec, first, self.name)

        ctx = CALL_CONTEXT
        training = kwargs.pop("training", None)
        if training is None:
            training = ctx.training
        outermost = ctx.depth == 0
        if outermost and ctx.loss_layers:
            for layer in ctx.loss_layers:
                layer._call_losses = []
            ctx.loss_layers = []

        if not self.built:
            self._build_if_needed(_shapes_of(first))
        mask = kwargs.pop("mask", None) if "mask" in kwargs else _mask_of(first)
        if self._call_takes_mask:
            kwargs["mask"] = mask
        if self._call_takes_training:
            kwargs["training"] = training

        previous_training = ctx.training
        ctx.training = training
        ctx.depth += 1
        try:
            outputs = self.call(*args, **kwargs)
        finally:
            ctx.depth -= 1
            ctx.training = previous_training

        if self.activity_regularizer is not None:
            for out in _flat_tensors(outputs):
                penalty = self.activity_regularizer(out)
                if out.ndim > 0 and out.shape[0] > 0:
                    # Keras 3 divides by the batch size, so the strength does not depend on it.
                    penalty = penalty / out.shape[0]
                self.add_loss(penalty)
        # As Keras, a masking layer may create a mask from no incoming one (compute_mask).
        if mask is not None or self.supports_masking or self._call_takes_mask:
            out_mask = self.compute_mask(first, mask)
            if out_mask is not None:
                _attach_mask(outputs, out_mask)
        return outputs

    def forward(self, *args, **kwargs):
        """torch's entry point (``torch.compile``, hooks): the same as calling the layer."""
        return Layer.__call__(self, *args, **kwargs)

    # --------------------------------------------------------------------------- config
    def get_config(self) -> dict:
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": self.dtype},
                "registered_name": None,
            },
        }
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        if "batch_shape" in config:  # Keras 3's name for batch_input_shape.
            config["batch_input_shape"] = config.pop("batch_shape")
        return cls(**config)

    def get_build_config(self) -> dict | None:
        if self._build_shapes is None:
            return None
        return {"input_shape": _jsonable_shape(self._build_shapes)}

    def build_from_config(self, config: dict | None) -> None:
        if config and config.get("input_shape") is not None and not self.built:
            self._build_if_needed(_tuple_shape(config["input_shape"]))

    # ------------------------------------------------------------------------ symbolic
    @property
    def input(self):
        return self._node_tensor("input_tensors")

    @property
    def output(self):
        return self._node_tensor("output_tensors")

    def _node_tensor(self, attr):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has never been called on a symbolic input.")
        values = getattr(self._inbound_nodes[0], attr)
        return values[0] if len(values) == 1 else values

    @property
    def input_shape(self):
        return _first_shape(self.input)

    @property
    def output_shape(self):
        return _first_shape(self.output)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


# ------------------------------------------------------------------------------ helpers
def _marks_built(build):
    """Wraps a subclass's build so that calling it directly also marks the layer built."""

    @functools.wraps(build)
    def wrapper(self, *args, **kwargs):
        result = build(self, *args, **kwargs)
        self.built = True
        return result

    return wrapper


def _layers_in(modules) -> list[Layer]:
    layers = []
    for module in modules:
        if isinstance(module, Layer):
            layers.append(module)
        elif isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict, torch.nn.Sequential)):
            layers.extend(_layers_in(module.children()))
    return layers


def _jsonable_shape(shape):
    if isinstance(shape, dict):
        return {k: _jsonable_shape(v) for k, v in shape.items()}
    if isinstance(shape, list):
        return [_jsonable_shape(s) for s in shape]
    if isinstance(shape, tuple):
        return [None if d is None else int(d) for d in shape]
    return shape


def _tuple_shape(shape):
    if isinstance(shape, dict):
        return {k: _tuple_shape(v) for k, v in shape.items()}
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_tuple_shape(s) for s in shape]
    return tuple(shape)


def _first_shape(x):
    if isinstance(x, (list, tuple)):
        return [tuple(t.shape) for t in x]
    return tuple(x.shape)


def deserialize_layer(config: dict, custom_objects: dict | None = None) -> Layer:
    """Builds a layer from ``{"class_name", "config"}``, looking in the layer registry."""
    from distkeras.layers import LAYER_REGISTRY

    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or LAYER_REGISTRY.get(name) or get_custom_object(name)
    if cls is None:
        raise ValueError(
            f"Unknown layer class {name!r}: distkeras does not support it. "
            "Pass custom layers with custom_objects={...}."
        )
    layer = cls.from_config(config.get("config", {}))
    return layer
