"""Model configs in Keras 3's layout: Sequential and functional graphs to JSON-able dicts and back.

A layer is stored as ``{"module", "class_name", "config", "registered_name", "build_config"}``;
a functional model lists its layers with their ``inbound_nodes`` (each call's arguments, with
symbolic tensors written as ``__keras_tensor__`` references ``[layer_name, node_index,
tensor_index]``) and names its ``input_layers``/``output_layers`` the same way. These are the
dicts Keras 3 writes into ``config.json``, so files can be exchanged with Keras.

Deserialization resolves classes only from distkeras's layer registry, registered custom objects
and ``custom_objects``: it never imports a module named in a file, and in safe mode it refuses
Python bytecode stored in a config (a ``lambda``).
"""

from __future__ import annotations

import numpy as np
import torch

from distkeras import backend
from distkeras.layers.base import Layer
from distkeras.layers.input import InputLayer, KerasTensor
from distkeras.layers.op_layer import OpLayer, is_op_spec, op_layer_from_spec
from distkeras.utils import serialization as serialization_utils
from distkeras.utils.tree import map_structure

# Keras 3 config keys our layers do not take; dropped when they hold their default.
_IGNORED_KERAS_KEYS = {"ragged": False, "optional": False, "quantization_config": None}


# ------------------------------------------------------------------------------ layers
def _registered_name(cls) -> str:
    """``"package>Name"`` if the class was registered, else its class name (as Keras)."""
    for key, obj in serialization_utils._GLOBAL_CUSTOM_OBJECTS.items():
        if obj is cls and ">" in key:
            return key
    return cls.__name__


def _module_and_registered_name(layer: Layer) -> tuple[str | None, str | None]:
    from distkeras.layers import LAYER_REGISTRY
    from distkeras.models.functional import Functional
    from distkeras.models.sequential import Sequential

    cls = type(layer)
    if cls is Functional:
        return "keras.src.models.functional", "Functional"
    if cls is Sequential:
        return "keras", None
    if LAYER_REGISTRY.get(cls.__name__) is cls and cls.__module__.startswith("distkeras."):
        return "keras.layers", None
    return cls.__module__, _registered_name(cls)


def _build_config(layer: Layer) -> dict | None:
    from distkeras.models.functional import Functional
    from distkeras.models.sequential import Sequential

    if isinstance(layer, Functional):
        return {"input_shape": None}
    if isinstance(layer, Sequential):
        if layer._input_layer is None or not layer.built:
            return None
        return {"input_shape": list(layer._input_layer.batch_shape)}
    return layer.get_build_config()


def serialize_layer(layer: Layer) -> dict:
    """A layer (or model) as Keras 3's ``{"module", "class_name", "config", ...}`` dict."""
    config = layer.get_config()
    if not isinstance(config, dict):
        raise TypeError(
            f"get_config() of layer '{layer.name}' ({type(layer).__name__}) must return a dict. "
            f"Received: {config!r}"
        )
    if type(layer).get_config is not Layer.get_config:  # a custom get_config may hold objects
        config = _jsonable(config)
    module, registered_name = _module_and_registered_name(layer)
    class_name = type(layer).__name__
    if isinstance(layer, OpLayer):  # an op node, saved as Keras saves its Operation
        module, class_name = layer.keras_module, layer.keras_class
        registered_name = class_name
    serialized = {
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": registered_name,
    }
    build_config = _build_config(layer)
    if build_config is not None:
        serialized["build_config"] = build_config
    if hasattr(layer, "compile") and hasattr(layer, "layers"):
        serialized["compile_config"] = _jsonable(getattr(layer, "_compile_config", None) or {})
    return serialized


def serialize_model(model) -> dict:
    """The whole model as Keras 3 writes it into ``config.json``."""
    return serialize_layer(model)


def _jsonable(value):
    """Plain JSON values; objects with get_config become ``{"class_name", "config"}``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple):  # tuples stay tuples, as Keras's configs keep them
        return tuple(_jsonable(v) for v in value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, slice):  # op nodes' keys (x[:, 1:3]), written as Keras writes them
        config = {"start": value.start, "stop": value.stop, "step": value.step}
        return {"class_name": "__slice__", "config": _jsonable(config)}
    if value is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if isinstance(value, (np.ndarray, np.generic, torch.Tensor)):  # constants in op nodes
        array = backend.to_numpy(value)
        if array.ndim == 0 and not isinstance(value, torch.Tensor):
            return array.item()
        kind = "__tensor__" if isinstance(value, torch.Tensor) else "__numpy__"
        return {"class_name": kind, "config": {"value": array.tolist(), "dtype": array.dtype.name}}
    if hasattr(value, "get_config"):  # Keras objects inside a custom get_config(), as Keras
        from distkeras.saving import serialize_keras_object

        return _jsonable(serialize_keras_object(value))
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return value  # json.dumps reports what cannot be written


def _find_code(config, owner: str | None = None, path: str = ""):
    """(layer name, path) where a config stores Python bytecode, which Keras writes as a
    ``__lambda__`` object; None if it stores none."""
    if isinstance(config, dict):
        if config.get("class_name") == "__lambda__":
            return owner, path
        inner = config.get("config")
        if "class_name" in config and isinstance(inner, dict) and inner.get("name"):
            owner = inner["name"]
        for key, value in config.items():
            found = _find_code(value, owner, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(config, list):
        for i, value in enumerate(config):
            found = _find_code(value, owner, f"{path}[{i}]")
            if found:
                return found
    return None


def _resolve_class(spec: dict, custom_objects: dict | None):
    from distkeras.layers import LAYER_REGISTRY

    class_name = spec.get("class_name")
    registered_name = spec.get("registered_name") or class_name
    module = spec.get("module")
    custom_objects = custom_objects or {}
    for key in (registered_name, class_name):
        if key in custom_objects:
            return custom_objects[key]
    for key in (registered_name, class_name):
        obj = serialization_utils.get_custom_object(key)
        if obj is not None:
            return obj
    builtin = module is None or module == "keras" or module.startswith(("keras.", "distkeras"))
    if builtin and class_name in LAYER_REGISTRY:
        return LAYER_REGISTRY[class_name]
    where = f" (module {module!r})" if module else ""
    raise ValueError(
        f"Could not locate class {class_name!r}{where}. Register custom layers and models with "
        "@distkeras.utils.register_keras_serializable() or pass "
        f"custom_objects={{{class_name!r}: {class_name}}}. "
        "(Loading never imports modules named in a file.)"
    )


class RebuildError(TypeError):
    """A layer's from_config() failed (raised once, at the innermost layer)."""


def deserialize_layer(spec: dict, custom_objects: dict | None = None) -> Layer:
    """Rebuilds a layer or model from a :func:`serialize_layer` dict (or Keras 3's)."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"Expected a layer config with a 'class_name'. Received: {spec!r}")
    if is_op_spec(spec):
        return op_layer_from_spec(spec)
    inner = dict(spec.get("config") or {})
    found = _find_code(spec) if serialization_utils.in_safe_mode() else None
    if found:
        owner, where = found
        raise ValueError(
            f"The config of layer {owner!r} stores Python bytecode (a `lambda`, at {where}). "
            "Loading it would run code from the file, so it is refused in safe mode. If you "
            "trust the file, pass safe_mode=False to load_model() (or deserialize inside "
            "distkeras.utils.serialization.safe_mode_scope(False)); better, replace the "
            "lambda by a named function registered with register_keras_serializable."
        )
    cls = _resolve_class(spec, custom_objects)
    if cls is InputLayer or spec.get("class_name") == "InputLayer":
        for key, default in _IGNORED_KERAS_KEYS.items():
            if key in inner and inner[key] == default:
                inner.pop(key)
    elif inner.get("quantization_config", 0) is None:
        inner.pop("quantization_config")
    with serialization_utils.custom_object_scope(custom_objects):
        try:
            if _takes_custom_objects(cls):
                layer = cls.from_config(inner, custom_objects=custom_objects)
            else:
                layer = cls.from_config(inner)
        except RebuildError:
            raise
        except TypeError as err:
            raise RebuildError(
                f"Could not rebuild {spec['class_name']!r} from its config: {err}. A custom "
                "layer or model must define get_config() returning its constructor's "
                "arguments (and from_config() when cls(**config) does not fit)."
            ) from err
    if not isinstance(layer, Layer):
        raise TypeError(
            f"from_config() of {spec['class_name']!r} returned {type(layer).__name__}, not a layer."
        )
    build_config = spec.get("build_config")
    if build_config and not layer.built:
        layer.build_from_config(build_config)
    return layer


def _takes_custom_objects(cls) -> bool:
    import inspect

    try:
        return "custom_objects" in inspect.signature(cls.from_config).parameters
    except (TypeError, ValueError):
        return False


# -------------------------------------------------------------------------- Sequential
def sequential_config(model) -> dict:
    """``Sequential.get_config()``: an InputLayer entry first (when known), then each layer."""
    config = Layer.get_config(model)
    config.pop("batch_input_shape", None)
    layers = []
    if model._input_layer is not None:
        layers.append(serialize_layer(model._input_layer))
    layers.extend(serialize_layer(layer) for layer in model.layers)
    config["layers"] = layers
    if model._input_layer is not None and model.built:
        config["build_input_shape"] = list(model._input_layer.batch_shape)
    return config


def sequential_from_config(config, custom_objects: dict | None = None, cls=None):
    """``Sequential.from_config()``: adds each layer in turn, then builds if the shape is known."""
    from distkeras.models.sequential import Sequential

    if isinstance(config, list):  # Keras 2 wrote a bare list of layers
        config = {"layers": config}
    model = (cls or Sequential)(name=config.get("name"))
    for layer_spec in config.get("layers", []):
        model.add(deserialize_layer(layer_spec, custom_objects))
    build_input_shape = config.get("build_input_shape")
    if not model.built and build_input_shape and model.layers:
        model.build(tuple(build_input_shape))
    if config.get("trainable") is False:
        model.trainable = False
    return model


# -------------------------------------------------------------------------- Functional
def _own_node_indices(model) -> dict[int, int]:
    """id(node) -> the node's index among its layer's nodes that belong to ``model``.

    Keras counts a nested functional model's calls from 1 (its node 0 is its own graph).
    """
    from distkeras.models.functional import Functional

    own = {id(node) for nodes in model._nodes_by_depth.values() for node in nodes}
    indices = {}
    for layer in model._graph_layers:  # op nodes included
        kept = 1 if isinstance(layer, Functional) else 0
        for node in layer._inbound_nodes:
            if id(node) in own:
                indices[id(node)] = kept
                kept += 1
    return indices


def functional_config(model) -> dict:
    """``Functional.get_config()``: layers with inbound nodes, input and output layers."""
    indices = _own_node_indices(model)
    own = set(indices)

    def tensor_ref(tensor: KerasTensor) -> list:
        layer, node_index, tensor_index = tensor._keras_history
        return [layer.name, indices[id(layer._inbound_nodes[node_index])], tensor_index]

    def encode(value):
        if isinstance(value, KerasTensor):
            return {
                "class_name": "__keras_tensor__",
                "config": {
                    "shape": list(value.shape),
                    "dtype": value.dtype,
                    "keras_history": tensor_ref(value),
                },
            }
        return _jsonable(value)

    layer_configs = []
    for layer in model._graph_layers:  # layers and op nodes, as Keras's config lists them
        spec = serialize_layer(layer)
        spec["name"] = layer.name
        nodes = []
        for node in layer._inbound_nodes:
            if id(node) in own and node.input_tensors:
                nodes.append(
                    {
                        "args": map_structure(encode, list(node.call_args)),
                        "kwargs": map_structure(encode, dict(node.call_kwargs)),
                    }
                )
        spec["inbound_nodes"] = nodes
        layer_configs.append(spec)

    def refs(structure):
        if isinstance(structure, KerasTensor):
            return tensor_ref(structure)
        if isinstance(structure, dict):
            return {k: refs(v) for k, v in structure.items()}
        return [refs(v) for v in structure]

    return {
        "name": model.name,
        "trainable": model.trainable,
        "layers": layer_configs,
        "input_layers": refs(model._input_structure),
        "output_layers": refs(model._output_structure),
    }


class _NodeNotReady(Exception):
    """A node's input comes from a layer call not rebuilt yet."""


def functional_from_config(config: dict, custom_objects: dict | None = None, cls=None):
    """``Functional.from_config()``: rebuilds the layers, replays their calls, wires the model."""
    from distkeras.models.functional import Functional

    config = dict(config)
    created: dict[str, Layer] = {}
    pending: dict[str, list] = {}
    for layer_spec in config["layers"]:
        name = layer_spec.get("name") or layer_spec.get("config", {}).get("name")
        if name in created:
            raise ValueError(f"Model config lists two layers named {name!r}.")
        created[name] = deserialize_layer(layer_spec, custom_objects)
        pending[name] = list(layer_spec.get("inbound_nodes", []))

    def tensor(layer_name: str, node_index: int, tensor_index: int) -> KerasTensor:
        if layer_name not in created:
            raise ValueError(f"Model config refers to an unknown layer {layer_name!r}.")
        layer = created[layer_name]
        if isinstance(layer, Functional):
            node_index -= 1
        if node_index >= len(layer._inbound_nodes):
            raise _NodeNotReady
        return layer._inbound_nodes[node_index].output_tensors[tensor_index]

    def decode(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                return tensor(*value["config"]["keras_history"])
            if value.get("class_name") == "__slice__":
                return slice(*(decode(value["config"].get(k)) for k in ("start", "stop", "step")))
            if value.get("class_name") == "__ellipsis__":
                return Ellipsis
            if value.get("class_name") in ("__numpy__", "__tensor__"):
                array = np.array(value["config"]["value"], dtype=value["config"]["dtype"])
                return array if value["class_name"] == "__numpy__" else torch.as_tensor(array)
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    # Shared layers may be called at different depths: replay nodes until all are done.
    while any(pending.values()):
        progressed = False
        for name, nodes in pending.items():
            while nodes:
                node = nodes[0]
                try:
                    if isinstance(node, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
                        inputs = [tensor(*entry[:3]) for entry in node]
                        args = [inputs[0] if len(inputs) == 1 else inputs]
                        kwargs = node[0][3] if node and len(node[0]) > 3 else {}
                    else:
                        args = decode(node.get("args", []))
                        kwargs = decode(node.get("kwargs", {}))
                except _NodeNotReady:
                    break
                created[name](*args, **kwargs)
                nodes.pop(0)
                progressed = True
        if not progressed:
            stuck = sorted(name for name, nodes in pending.items() if nodes)
            raise ValueError(f"Model config has layer calls whose inputs never appear: {stuck}.")

    def structure(refs):
        if isinstance(refs, list) and len(refs) == 3 and isinstance(refs[0], str):
            return tensor(*refs)
        if isinstance(refs, dict):
            return {k: structure(v) for k, v in refs.items()}
        return [structure(v) for v in refs]

    inputs = structure(config["input_layers"])
    outputs = structure(config["output_layers"])
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    if isinstance(outputs, list) and len(outputs) == 1:
        outputs = outputs[0]
    model = (cls or Functional)(inputs=inputs, outputs=outputs, name=config.get("name"))
    if config.get("trainable") is False:
        model.trainable = False
    return model
