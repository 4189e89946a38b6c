"""Functional models: a graph of layer calls from ``Input`` tensors to outputs."""

from __future__ import annotations

import numpy as np
import torch

from distkeras import backend
from distkeras.layers.input import InputLayer, KerasTensor, Node, _torch_dtype
from distkeras.layers.op_layer import OpLayer
from distkeras.models.model import Model
from distkeras.utils.tree import flatten, map_structure, pack_sequence_as


def _topological_nodes(outputs: list[KerasTensor]) -> list[Node]:
    """Nodes from inputs to outputs, each after every node it depends on."""
    ordered: list[Node] = []
    state: dict[int, str] = {}

    def visit(node: Node):
        key = id(node)
        if state.get(key) == "done":
            return
        if state.get(key) == "active":
            raise ValueError(f"The graph has a cycle through layer '{node.layer.name}'.")
        state[key] = "active"
        for parent in node.parent_nodes:
            visit(parent)
        state[key] = "done"
        ordered.append(node)

    for tensor in outputs:
        if not isinstance(tensor, KerasTensor) or tensor._keras_history is None:
            raise ValueError(
                "Model outputs must be symbolic tensors made by calling layers on Input(). "
                f"Received: {tensor!r}"
            )
        layer, node_index, _ = tensor._keras_history
        visit(layer._inbound_nodes[node_index])
    return ordered


def _keras_graph_order(inputs: list[KerasTensor], outputs: list[KerasTensor]):
    """Layers ordered as Keras orders them, and the graph's nodes grouped by depth.

    A node's depth is its longest distance to an output; layers come by decreasing depth, ties
    broken by the order a depth-first walk from the outputs first meets them.
    """
    input_ids = {id(t) for t in inputs}
    post_order: list[Node] = []
    first_seen: dict[int, int] = {}
    finished: set[int] = set()

    def visit(tensor: KerasTensor):
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if id(node) in finished:
            return
        first_seen.setdefault(id(layer), len(first_seen))
        if not isinstance(layer, InputLayer) and id(tensor) not in input_ids:
            for parent in node.input_tensors:
                visit(parent)
        finished.add(id(node))
        post_order.append(node)

    for tensor in outputs:
        visit(tensor)
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    layers_by_id: dict[int, object] = {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        layers_by_id[id(node.layer)] = node.layer
        node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    nodes = {id(node): node for node in post_order}
    for tensor in inputs:  # inputs that no output depends on still belong to the model
        layer = tensor._keras_history[0]
        if id(layer) not in layer_depth:
            layer_depth[id(layer)] = 0
            first_seen[id(layer)] = -1
            layers_by_id[id(layer)] = layer
            node = layer._inbound_nodes[0]
            nodes[id(node)] = node
            node_depth[id(node)] = 0
    nodes_by_depth: dict[int, list[Node]] = {}
    for key, depth in node_depth.items():
        if key in nodes:
            nodes_by_depth.setdefault(depth, []).append(nodes[key])
    ordered = sorted(layer_depth, key=lambda key: (-layer_depth[key], first_seen[key]))
    return [layers_by_id[key] for key in ordered], nodes_by_depth


class Functional(Model):
    """A model defined by ``Model(inputs, outputs)``: multi-input, multi-output, shared layers,
    nested models.

    Example:
        >>> a, b = distkeras.Input((8,)), distkeras.Input((8,))
        >>> shared = distkeras.layers.Dense(4)
        >>> merged = distkeras.layers.Concatenate()([shared(a), shared(b)])
        >>> model = distkeras.Model(inputs=[a, b], outputs=merged)
    """

    def __init__(self, inputs, outputs, name: str | None = None, trainable: bool = True, **kwargs):
        Model.__init__(self, name=name, trainable=trainable, **kwargs)
        self._input_structure = inputs
        self._output_structure = outputs
        self._inputs = flatten(inputs)
        self._outputs = flatten(outputs)
        # Text for string inputs stays numpy (conform_input checks it), as in Keras.
        self._convert_input_args = not any(t.dtype == "string" for t in self._inputs)
        for tensor in self._inputs:
            if not isinstance(tensor, KerasTensor) or not isinstance(
                tensor._keras_history[0], InputLayer
            ):
                raise ValueError(
                    f"Model '{self.name}': every input must come from distkeras.Input(). "
                    f"Received: {tensor!r}"
                )
        self._nodes = _topological_nodes(self._outputs)
        # An Input() left out of `inputs` must not count as reachable.
        reached = {
            id(t)
            for node in self._nodes
            if not isinstance(node.layer, InputLayer)
            for t in node.output_tensors
        }
        for tensor in self._inputs:
            reached.add(id(tensor))
        for node in self._nodes:
            for tensor in node.input_tensors:
                if id(tensor) not in reached:
                    raise ValueError(
                        f"Model '{self.name}': layer '{node.layer.name}' needs an input that is "
                        "not among the model's inputs. Pass every Input() to Model(inputs=...)."
                    )
        # Keras's layer order (by depth from the outputs, ties in traversal order): it fixes
        # model.layers, the summary rows, the config and the weights-file group names.
        ordered_layers, self._nodes_by_depth = _keras_graph_order(self._inputs, self._outputs)
        seen_names = {}
        for layer in ordered_layers:
            if layer.name in seen_names:
                raise ValueError(
                    f"Model '{self.name}': two different layers are named {layer.name!r}; "
                    "layer names in a model must be unique."
                )
            seen_names[layer.name] = layer
        # Registered as submodules so .to(), parameters() and state_dict() see them.
        self._graph_layers = torch.nn.ModuleList(ordered_layers)
        self.built = True

    @property
    def layers(self):
        # As Keras: op nodes (x + y, ops.sum(...)) are operations of the graph, not layers.
        return [layer for layer in self._graph_layers if not isinstance(layer, OpLayer)]

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[KerasTensor]:
        return list(self._outputs)

    @property
    def input(self):
        """The inputs in the structure given to the constructor (a tensor, list or dict)."""
        return self._input_structure

    @property
    def output(self):
        return self._output_structure

    @property
    def input_names(self) -> list[str]:
        return [t._keras_history[0].name for t in self._inputs]

    @property
    def output_names(self) -> list[str]:
        return [t._keras_history[0].name for t in self._outputs]

    def _sublayers(self):
        return [layer for layer in self._graph_layers if not isinstance(layer, InputLayer)]

    def _flatten_inputs(self, inputs) -> list:
        if isinstance(self._input_structure, dict):
            if not isinstance(inputs, dict):
                raise ValueError(
                    f"Model '{self.name}' expects a dict of inputs with keys "
                    f"{sorted(self._input_structure)}. Received: {type(inputs).__name__}"
                )
            missing = set(self._input_structure) - set(inputs)
            if missing:
                raise ValueError(f"Model '{self.name}': missing inputs {sorted(missing)}.")
            return [inputs[k] for k in sorted(self._input_structure)]
        if isinstance(inputs, dict):
            names = self.input_names
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(
                    f"Model '{self.name}': missing inputs {missing}. Expected keys {names}."
                )
            return [inputs[n] for n in names]
        flat = flatten(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(flat) != len(self._inputs):
            raise ValueError(
                f"Model '{self.name}' expects {len(self._inputs)} input(s), received {len(flat)}."
            )
        return flat

    def call(self, inputs, training=None, mask=None):
        values: dict[int, object] = {}
        for symbolic, value in zip(self._inputs, self._flatten_inputs(inputs)):
            values[id(symbolic)] = conform_input(self, symbolic, value)

        def lookup(x):
            return values[id(x)] if isinstance(x, KerasTensor) else x

        for node in self._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            args = map_structure(lookup, list(node.call_args))
            kwargs = map_structure(lookup, node.call_kwargs)
            outputs = node.layer(*args, **kwargs)
            for symbolic, value in zip(node.output_tensors, flatten(outputs)):
                values[id(symbolic)] = value
        return pack_sequence_as(self._output_structure, [values[id(t)] for t in self._outputs])

    def get_config(self) -> dict:
        from distkeras.models.serialization import functional_config

        return functional_config(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None):
        from distkeras.models.serialization import functional_from_config

        return functional_from_config(config, custom_objects, cls=cls)


def conform_input(model, symbolic: KerasTensor, value) -> torch.Tensor:
    """``value`` as a tensor of the Input's dtype (Keras casts inputs), shape-checked.

    Integer pixels feed a float model and float ids an Embedding; under autocast float data
    keeps its precision (autocast picks the compute dtype). A tensor of the dtype and shape
    last accepted as is for this Input (every step of a fit) skips the checks.
    """
    accepted = model.__dict__.get("_accepted_inputs")
    if type(value) is torch.Tensor and accepted is not None:
        last = accepted.get(id(symbolic))
        if last is not None and last[0] is symbolic and last[1:] == (value.dtype, value.shape):
            return value
    conformed = _conform(model, symbolic, value)
    if (
        conformed is value
        and type(value) is torch.Tensor
        and not torch.is_autocast_enabled(value.device.type)
    ):
        # Returned as is outside autocast: the Input's own dtype and an accepted shape.
        model.__dict__.setdefault("_accepted_inputs", {})[id(symbolic)] = (
            symbolic,
            value.dtype,
            value.shape,
        )
    return conformed


def _conform(model, symbolic: KerasTensor, value):
    if symbolic.dtype == "string":
        return _conform_strings(model, symbolic, value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "USO":
        raise TypeError(
            f"`x` must be numeric for input '{symbolic.name}' of model '{model.name}' (dtype "
            f"{symbolic.dtype}); received an array of dtype {value.dtype}. Encode strings as "
            "numbers first, or start the model with a string layer (TextVectorization, "
            "StringLookup) on Input(dtype='string')."
        )
    dtype = _torch_dtype(symbolic.dtype)  # complex inputs too, as keras.Input takes them
    if not isinstance(value, torch.Tensor):
        value = backend.convert_to_tensor(value, dtype=None if dtype.is_complex else dtype)
    _check_input_shape(model, symbolic, value)
    if value.dtype != dtype:
        if value.is_complex() and not dtype.is_complex:
            raise TypeError(
                f"Input '{symbolic.name}' of model '{model.name}' must hold real numbers; "
                f"received dtype {value.dtype}."
            )
        if not (
            value.is_floating_point()
            and dtype.is_floating_point
            and torch.is_autocast_enabled(value.device.type)
        ):
            value = value.to(dtype)
    return value


def _conform_strings(model, symbolic: KerasTensor, value) -> np.ndarray:
    """Text for an ``Input(dtype="string")`` stays a numpy array (no torch dtype holds it);
    data one rank short of a trailing 1 gains that axis, as Keras adjusts input ranks."""
    if isinstance(value, torch.Tensor):
        raise TypeError(
            f"Input '{symbolic.name}' of model '{model.name}' takes strings; received a tensor "
            f"of dtype {value.dtype}."
        )
    array = np.asarray(value)
    if array.ndim == len(symbolic.shape) - 1 and symbolic.shape and symbolic.shape[-1] == 1:
        array = array[..., None]
    _check_input_shape(model, symbolic, array)
    return array


def _check_input_shape(model, symbolic: KerasTensor, value: torch.Tensor) -> None:
    expected = symbolic.shape
    received = tuple(value.shape)
    if len(expected) != len(received) or any(
        e is not None and e != r for e, r in zip(expected, received)
    ):
        raise ValueError(
            f"Input '{symbolic.name}' of model '{model.name}' is incompatible: expected shape "
            f"{expected}, received shape {received}."
        )
