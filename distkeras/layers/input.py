"""Symbolic tensors, graph nodes and ``Input``: what the functional API is built from.

Calling a layer on a :class:`KerasTensor` builds the layer from the symbolic shape, infers the
output shape by running the layer once (twice when the input has unknown dimensions) on small
placeholder tensors without gradients, and records a :class:`Node` linking inputs to outputs.
Running the real model later replays the nodes on real tensors.
"""

from __future__ import annotations

import torch

from distkeras import backend
from distkeras.layers.base import CALL_CONTEXT, Layer
from distkeras.utils.tree import flatten, map_structure

# Placeholder sizes for unknown dimensions. Two runs with different sizes tell which output
# dimensions depend on them; the sizes are large enough for kernels and 32x downsampling.
_PLACEHOLDER_SIZES = ((2, 64), (3, 96))


class KerasTensor:
    """A symbolic tensor: shape (None for unknown dims), dtype and the node that made it."""

    def __init__(self, shape, dtype="float32", name=None, history=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = _dtype_name(dtype)
        self.name = name
        self._keras_history = history  # (layer, node_index, tensor_index)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    # As in Keras 3, `==` stays identity (graph code keeps tensors in dicts and sets) while
    # `!=` and the other operators record op nodes, e.g. `x + inputs` a residual connection.
    # numpy defers to our reflected operators (np_array @ x records a matmul node).
    __array_ufunc__ = None

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __iter__(self):
        raise NotImplementedError("Iterating over a symbolic KerasTensor is not supported.")

    def __bool__(self):
        # As Keras: `if x != y:` on symbols would otherwise be silently always true.
        raise TypeError("A symbolic KerasTensor cannot be used as a boolean.")

    def __getitem__(self, key):
        return _op("get_item")(self, key)

    def __neg__(self):
        return _op("negative")(self)

    def __abs__(self):
        return _op("absolute")(self)

    def __invert__(self):
        return _op("logical_not")(self)

    def __round__(self, ndigits=None):
        return _op("round")(self, decimals=ndigits or 0)

    def reshape(self, newshape):
        return _op("reshape")(self, newshape)

    def squeeze(self, axis=None):
        return _op("squeeze")(self, axis)


def _op(name: str):
    from distkeras import ops
    from distkeras.ops import core

    return getattr(core, name) if name == "get_item" else getattr(ops, name)


def _binary_operator(op_name: str, reflected: bool):
    def operator(self, other):
        fn = _op(op_name)
        return fn(other, self) if reflected else fn(self, other)

    operator.__name__ = f"{'r' if reflected else ''}{op_name}"
    return operator


for _dunder, _op_name in {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "matmul": "matmul",
    "truediv": "true_divide",
    "floordiv": "floor_divide",
    "mod": "mod",
    "pow": "power",
    "and": "logical_and",
    "or": "logical_or",
    "xor": "logical_xor",
}.items():
    setattr(KerasTensor, f"__{_dunder}__", _binary_operator(_op_name, reflected=False))
    setattr(KerasTensor, f"__r{_dunder}__", _binary_operator(_op_name, reflected=True))
for _dunder, _op_name in {
    "lt": "less",
    "le": "less_equal",
    "gt": "greater",
    "ge": "greater_equal",
    "ne": "not_equal",
}.items():
    setattr(KerasTensor, f"__{_dunder}__", _binary_operator(_op_name, reflected=False))


def _dtype_name(dtype) -> str:
    """Keras's name for ``dtype``; op outputs may also be complex, which layers never take."""
    try:
        return backend.dtype_name(backend.standardize_dtype(dtype))
    except ValueError:
        from distkeras.ops import dtypes

        return dtypes.standardize_dtype(dtype)


def _torch_dtype(name: str) -> torch.dtype:
    try:
        return backend.standardize_dtype(name)
    except ValueError:
        from distkeras.ops import dtypes

        return dtypes.to_torch_dtype(name)


class Node:
    """One call of a layer inside a functional graph."""

    def __init__(self, layer: Layer, call_args, call_kwargs, outputs):
        self.layer = layer
        self.call_args = call_args
        self.call_kwargs = call_kwargs
        self.outputs = outputs
        self.input_tensors = [
            t for t in flatten([list(call_args), call_kwargs]) if isinstance(t, KerasTensor)
        ]
        self.output_tensors = [t for t in flatten(outputs) if isinstance(t, KerasTensor)]
        self.index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        for i, tensor in enumerate(self.output_tensors):
            tensor._keras_history = (layer, self.index, i)

    @property
    def parent_nodes(self) -> list[Node]:
        parents = []
        for tensor in self.input_tensors:
            layer, node_index, _ = tensor._keras_history
            parents.append(layer._inbound_nodes[node_index])
        return parents


def _input_dtype_name(dtype) -> str:
    # Strings have no torch dtype: Input(dtype="string") feeds string layers (StringLookup,
    # TextVectorization), which take numpy string arrays, as in Keras.
    if dtype in ("string", "str", str):
        return "string"
    # Complex inputs feed complex ops (view_as_real, fft...), as keras.Input(dtype="complex64").
    name = _dtype_name(dtype)
    if name not in ("complex64", "complex128"):
        name = backend.dtype_name(backend.standardize_dtype(dtype))
    return name


class InputLayer(Layer):
    """The layer behind :func:`Input`; it only holds the batch shape and dtype."""

    def __init__(
        self,
        shape=None,
        batch_size=None,
        dtype=None,
        batch_shape=None,
        name=None,
        sparse=False,
        **kwargs,
    ):
        kwargs.pop("input_shape", None)
        if "batch_input_shape" in kwargs:
            batch_shape = kwargs.pop("batch_input_shape")
        super().__init__(name=name, **kwargs)
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input needs `shape` or `batch_shape`. Received neither.")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size, *tuple(shape))
        self.batch_shape = tuple(None if d is None else int(d) for d in batch_shape)
        self.input_dtype = _input_dtype_name(dtype or backend.floatx())
        self.sparse = sparse
        self.built = True
        tensor = KerasTensor(self.batch_shape, self.input_dtype, name=self.name)
        Node(self, (), {}, tensor)

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {
            "batch_shape": list(self.batch_shape),
            "dtype": self.input_dtype,
            "sparse": self.sparse,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "batch_input_shape" in config:
            config["batch_shape"] = config.pop("batch_input_shape")
        return cls(**config)


def Input(
    shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None
) -> KerasTensor:
    """A symbolic input for functional models.

    Example:
        >>> inputs = distkeras.Input(shape=(784,))
        >>> outputs = distkeras.layers.Dense(10, activation="softmax")(inputs)
        >>> model = distkeras.Model(inputs, outputs)
    """
    if tensor is not None:
        raise ValueError("Input(tensor=...) is not supported: pass shape= and dtype= instead.")
    layer = InputLayer(
        shape=shape,
        batch_size=batch_size,
        dtype=dtype,
        batch_shape=batch_shape,
        name=name,
        sparse=bool(sparse),
    )
    return layer._inbound_nodes[0].outputs


# ------------------------------------------------------------------ placeholder inference
def _placeholder(shape, dtype, sizes) -> torch.Tensor:
    batch_size, other_size = sizes
    if dtype == "string":  # a layer without compute_output_spec called on strings
        import numpy as np

        return np.full([batch_size if d is None else d for d in shape], "", dtype=str)
    concrete = [
        (batch_size if i == 0 else other_size) if d is None else d for i, d in enumerate(shape)
    ]
    return torch.zeros(concrete, dtype=_torch_dtype(dtype), device=_device_for())


def _device_for() -> torch.device:
    return backend.get_device()


def _run_placeholders(layer: Layer, args, kwargs, sizes):
    def to_placeholder(x):
        if not isinstance(x, KerasTensor):
            return x
        placeholder = _placeholder(x.shape, x.dtype, sizes)
        mask = getattr(x, "_keras_mask", None)
        if isinstance(mask, KerasTensor):  # an all-True mask: compute_mask and call(mask=) run
            placeholder._keras_mask = torch.ones_like(_placeholder(mask.shape, "bool", sizes))
        return placeholder

    ph_args = map_structure(to_placeholder, list(args))
    ph_kwargs = map_structure(to_placeholder, dict(kwargs))
    ph_kwargs["training"] = False  # shape inference must not update statistics
    if not layer._call_takes_training:
        ph_kwargs.pop("training")
    ctx = CALL_CONTEXT
    previous_symbolic, previous_depth = ctx.symbolic, ctx.depth
    ctx.symbolic = True
    ctx.depth = max(ctx.depth, 1)  # never clear other layers' losses from a shape run
    try:
        with torch.no_grad():
            return layer(*ph_args, **ph_kwargs)
    finally:
        ctx.symbolic, ctx.depth = previous_symbolic, previous_depth


def _spec_from_runs(first, second, input_batch_unknown: bool):
    """Shape with None where the two placeholder runs disagree."""
    shape = []
    for i, (a, b) in enumerate(zip(first.shape, second.shape)):
        unknown = a != b or (i == 0 and input_batch_unknown and a == _PLACEHOLDER_SIZES[0][0])
        shape.append(None if unknown else int(a))
    return tuple(shape), backend.dtype_name(first.dtype)


def _infer_outputs(layer: Layer, args, kwargs):
    symbolic_inputs = [t for t in flatten([list(args), kwargs]) if isinstance(t, KerasTensor)]
    needs_two_runs = any(d is None for t in symbolic_inputs for d in t.shape)
    first = _run_placeholders(layer, args, kwargs, _PLACEHOLDER_SIZES[0])
    second = (
        _run_placeholders(layer, args, kwargs, _PLACEHOLDER_SIZES[1]) if needs_two_runs else first
    )
    batch_unknown = any(t.shape and t.shape[0] is None for t in symbolic_inputs)
    flat_first, flat_second = flatten(first), flatten(second)
    specs = [
        _spec_from_runs(a, b, batch_unknown) if isinstance(a, torch.Tensor) else None
        for a, b in zip(flat_first, flat_second)
    ]
    return first, specs


def _symbolic_shapes(x):
    if isinstance(x, KerasTensor):
        return x.shape
    if isinstance(x, (list, tuple)):
        return [_symbolic_shapes(v) for v in x]
    if isinstance(x, dict):
        return {k: _symbolic_shapes(v) for k, v in x.items()}
    return None


def symbolic_call(layer: Layer, args, kwargs):
    """Calls ``layer`` on KerasTensors: builds it, infers outputs, records a Node."""
    args = tuple(args)
    kwargs = dict(kwargs)
    first = args[0] if args else kwargs.get("inputs")
    try:
        if not layer.built:
            layer._build_if_needed(_symbolic_shapes(first))
        if hasattr(layer, "compute_output_spec"):
            # Keras's hook, for layers whose outputs no placeholder run can tell (string
            # layers: their output length depends on the text).
            symbolic_outputs = layer.compute_output_spec(*args, **kwargs)
            Node(layer, args, kwargs, symbolic_outputs)
            return symbolic_outputs
        outputs, specs = _infer_outputs(layer, args, kwargs)
    except (ValueError, TypeError) as err:
        raise type(err)(
            f"Layer '{layer.name}' ({type(layer).__name__}) cannot be called on inputs of shape "
            f"{_symbolic_shapes(first)}: {err}"
        ) from err
    flat_outputs = flatten(outputs)
    symbolic = []
    for tensor, spec in zip(flat_outputs, specs):
        if spec is None:
            symbolic.append(tensor)
        else:
            symbolic.append(KerasTensor(spec[0], spec[1]))
            _symbolic_mask(symbolic[-1], getattr(tensor, "_keras_mask", None))
    from distkeras.utils.tree import pack_sequence_as

    symbolic_outputs = pack_sequence_as(outputs, symbolic)
    Node(layer, args, kwargs, symbolic_outputs)
    return symbolic_outputs


def _symbolic_mask(output: KerasTensor, mask) -> None:
    """The placeholder output's mask, as a symbolic ``_keras_mask`` (Keras's attribute)."""
    if isinstance(mask, torch.Tensor):
        known = output.shape
        dims = enumerate(mask.shape)
        shape = [None if i < len(known) and known[i] is None else d for i, d in dims]
        output._keras_mask = KerasTensor(shape, "bool")


def infer_output_shape(layer: Layer, input_shape):
    """``compute_output_shape`` by placeholder runs (used when a layer defines none)."""

    def to_symbolic(shape):
        if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
            return [to_symbolic(s) for s in shape]
        return KerasTensor(tuple(shape), layer._input_dtype or backend.floatx())

    inputs = to_symbolic(input_shape)
    if not layer.built:
        layer._build_if_needed(input_shape)
    _, specs = _infer_outputs(layer, (inputs,), {})
    shapes = [spec[0] for spec in specs if spec is not None]
    return shapes[0] if len(shapes) == 1 else shapes
