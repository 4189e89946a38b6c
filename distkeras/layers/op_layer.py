"""The generic operation layer: an op called on KerasTensors becomes one node of the graph.

``distkeras.ops`` hands any op call that sees a ``KerasTensor`` to :func:`symbolic_op_call`
(registered below). It splits the arguments as Keras 3 does for the op's Operation class
(``distkeras.ops.op_classes``): the non-tensor constructor arguments (``axis``, ``keepdims``,
``dtype``...) become the layer's config, the call arguments (tensors, and constants such as the
``1`` of ``x + 1``) the node's args. The node then saves exactly as Keras writes an op node
(``{"module": "keras.src.ops.numpy", "class_name": "Sum", "config": {"name": "sum", "axis": -1,
...}}``), so files move between Keras and distkeras in both directions.

Output shapes and dtypes come from the placeholder runs every symbolic layer call uses; each op
runs first on "meta" tensors (no data, no arithmetic), so ops that reject zero matrices
(cholesky, inv) still infer, and falls back to the real placeholders when an op cannot run on
meta tensors.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from distkeras import backend
from distkeras.layers.base import CALL_CONTEXT, Layer
from distkeras.layers.input import KerasTensor
from distkeras.ops import dispatch
from distkeras.ops.op_classes import OP_CLASSES
from distkeras.utils import naming
from distkeras.utils.tree import flatten, map_structure


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _has_symbolic(value) -> bool:
    return any(isinstance(v, KerasTensor) for v in flatten(value))


def _layout(op) -> tuple[str, str, tuple, tuple]:
    """(Keras module, class name, constructor args, call args) the op is saved as."""
    found = OP_CLASSES.get(op.op_name)
    if found is not None:
        return found
    # An op Keras does not have: every argument travels with the node.
    params = inspect.signature(op.eager).parameters.values()
    prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    call = tuple(prefix.get(p.kind, "") + p.name for p in params)
    return f"distkeras.ops.{op.op_module}", _camel(op.op_name), (), call


def _data_dependent(name: str, bound: dict) -> bool:
    """Ops whose output shape depends on the values, so no placeholder run can tell it."""
    if name == "nonzero":
        return True
    if name == "unique":
        return bound.get("size") is None
    if name == "where":
        return bound.get("x1") is None and bound.get("x2") is None
    return False


class OpLayer(Layer):
    """One op as a graph layer: ``config`` holds the op's constructor arguments (Keras's split),
    the node's call arguments hold the rest. Built by the ops dispatch, not by users."""

    def __init__(self, op, name: str | None = None, **config):
        module, class_name, _, _ = _layout(op)
        super().__init__(name=name or naming.uniquify(naming.to_snake_case(class_name)))
        self.op = op
        self.op_config = config
        self.keras_module, self.keras_class = module, class_name
        self.built = True

    def call(self, *args, **kwargs):
        if CALL_CONTEXT.symbolic:
            try:  # shapes and dtypes only: no arithmetic, no failure on zero placeholders
                meta_args = map_structure(_to_meta, list(args))
                return self._run(*meta_args, **map_structure(_to_meta, kwargs))
            except Exception:  # noqa: BLE001  (any op that meta tensors cannot run)
                pass
        return self._run(*args, **kwargs)

    def _run(self, *args, **kwargs):
        _, _, _, call_names = _layout(self.op)
        named = dict(self.op_config)
        varargs: list = []
        for i, pname in enumerate(call_names):
            if pname.startswith("**"):
                break
            if pname.startswith("*"):
                varargs = list(args[i:])
                break
            if i < len(args):
                named[pname] = args[i]
        named.update(kwargs)
        return _invoke(self.op.eager, named, varargs)

    def get_config(self) -> dict:
        self._check_serializable()
        return {"name": self.name, **{k: _encode(v) for k, v in self.op_config.items()}}

    def _check_serializable(self) -> None:
        values = list(self.op_config.values())
        for node in self._inbound_nodes:
            values.extend(flatten([list(node.call_args), node.call_kwargs]))
        for value in flatten(values):
            if callable(value) and not isinstance(value, (KerasTensor, type)):
                raise ValueError(
                    f"Op node '{self.name}' (ops.{self.op.op_name}) takes a Python function "
                    f"({getattr(value, '__name__', value)!r}), which a model file cannot store. "
                    "Wrap the computation in a custom layer registered with "
                    "@distkeras.utils.register_keras_serializable to save this model."
                )

    @classmethod
    def from_config(cls, config: dict):
        raise TypeError("OpLayer configs are read by op_layer_from_spec (they name the op).")


# call() takes *args, **kwargs for the op's own arguments: `training` and `mask` are not ours.
OpLayer._call_takes_training = False
OpLayer._call_takes_mask = False


def _same_for_each_dim(value, rank: int):
    return (value,) * rank if isinstance(value, int) else value


# What Keras's op functions do to some arguments before building the Operation, so the saved
# config is the one Keras writes (and Keras's constructors, which skip these steps, load it).
_NN_DATA_FORMAT = {name for name, spec in OP_CLASSES.items() if spec[0] == "keras.src.ops.nn"}
_NN_DATA_FORMAT |= {"extract_patches", "extract_patches_3d"}


def _as_keras_constructs(name: str, config: dict) -> None:
    if name in _NN_DATA_FORMAT and "data_format" in config and config["data_format"] is None:
        config["data_format"] = "channels_last"
    if name in ("one_hot", "multi_hot") and config.get("dtype") is None:
        config["dtype"] = backend.floatx()
    if name in ("extract_patches", "extract_patches_3d"):
        rank = 3 if name == "extract_patches_3d" else 2
        config["size"] = _same_for_each_dim(config.get("size"), rank)
        if config.get("strides") is None:
            config["strides"] = config["size"]
        config["strides"] = _same_for_each_dim(config["strides"], rank)
    if name == "layer_normalization":
        config.setdefault("rms_scaling", False)


def _encode(value):
    """Constants in a config as Keras writes them (arrays as ``__numpy__``/``__tensor__``)."""
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        kind = "__tensor__" if isinstance(value, torch.Tensor) else "__numpy__"
        return {"class_name": kind, "config": {"value": array.tolist(), "dtype": array.dtype.name}}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value):
    """The inverse of :func:`_encode`; JSON lists come back as tuples (shapes, ranges)."""
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tensor__"):
        array = np.array(value["config"]["value"], dtype=value["config"]["dtype"])
        return array if value["class_name"] == "__numpy__" else torch.as_tensor(array)
    return value


def _to_meta(x):
    if isinstance(x, torch.Tensor) and x.device.type != "meta":
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    return x


def _invoke(fn, named: dict, varargs: list):
    """``fn`` called with ``named`` by keyword, except the parameters before a ``*args``."""
    if not varargs:
        return fn(**named)
    positional = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            break
        positional.append(named.pop(p.name) if p.name in named else p.default)
    return fn(*positional, *varargs, **named)


# Window functions: the window length is the tensor's value, so Keras refuses symbolic input.
_WINDOWS = ("bartlett", "blackman", "hamming", "hanning", "kaiser")
_SEGMENT_OPS = ("segment_sum", "segment_max", "segment_min", "segment_prod")


def symbolic_op_call(op, args, kwargs):
    """The dispatch's symbolic handler: records ``op(*args, **kwargs)`` as an OpLayer node."""
    if op.op_name in ("convert_to_numpy",):
        raise ValueError(f"ops.{op.op_name} cannot run on a symbolic tensor: it has no value.")
    if op.op_name in _WINDOWS:
        received = args[0] if args else kwargs.get("x")
        raise TypeError(
            f"{_camel(op.op_name)} operation does not support symbolic tensors. "
            f"Received input x = {received} of type {type(received)}"
        )
    try:
        bound = inspect.signature(op.eager).bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"ops.{op.op_name}: {err}") from None
    bound.apply_defaults()
    values = {}
    params = inspect.signature(op.eager).parameters
    for pname, value in bound.arguments.items():
        if params[pname].kind == inspect.Parameter.VAR_KEYWORD:
            values.update(value)  # our **kwargs: Keras names some of them (rms_scaling)
        else:
            values[pname] = value
    if op.op_name == "multi_hot" and values.get("num_classes") is None and "num_tokens" in values:
        values["num_classes"] = values.pop("num_tokens")  # Keras's legacy name, mapped as Keras
    if _data_dependent(op.op_name, values):
        raise ValueError(
            f"ops.{op.op_name} on a symbolic tensor: its output shape depends on the tensor's "
            "values, so a functional graph cannot hold it. Call it inside a layer's call()."
        )
    _, _, init_names, call_names = _layout(op)
    config = {}
    for pname in init_names:
        if pname in values and not _has_symbolic(values[pname]):
            config[pname] = values.pop(pname)
    _as_keras_constructs(op.op_name, config)
    call_args, call_kwargs = [], {}
    for pname in call_names:
        if pname.startswith("**"):
            call_kwargs.update(values.pop(pname[2:], {}))
        elif pname.startswith("*"):
            call_args.extend(values.pop(pname[1:], ()))
        elif pname in values:
            call_args.append(values.pop(pname))
    # A tensor where Keras expects a constant (e.g. a symbolic `axis`) still reaches the op.
    for pname, value in values.items():
        kind = params[pname].kind if pname in params else inspect.Parameter.KEYWORD_ONLY
        if kind == inspect.Parameter.VAR_POSITIONAL:
            if value:
                raise TypeError(f"ops.{op.op_name}: extra positional arguments {value!r}.")
        else:
            call_kwargs[pname] = value
    outputs = OpLayer(op, **config)(*call_args, **call_kwargs)
    unknown_axes = _VALUE_DEPENDENT_AXES.get(op.op_name, ())
    if op.op_name in _SEGMENT_OPS and _segment_count_unknown(config, call_args, call_kwargs):
        unknown_axes = (0,)
    for axis in unknown_axes:
        for tensor in flatten(outputs):
            unknown = axis % len(tensor.shape)
            tensor.shape = tuple(None if i == unknown else d for i, d in enumerate(tensor.shape))
    return outputs


# Output axes whose length depends on the values (the placeholder run cannot tell): unknown.
_VALUE_DEPENDENT_AXES = {"bincount": (-1,)}  # max(x) + 1 when that exceeds minlength


def _segment_count_unknown(config: dict, call_args: list, call_kwargs: dict) -> bool:
    """Without ``num_segments`` the count is max(segment_ids) + 1: a value, unknown when the
    ids are symbolic (the placeholder's zeros would say 1). Keras records it as None too."""
    if config.get("num_segments", call_kwargs.get("num_segments")) is not None:
        return False
    ids = call_args[1] if len(call_args) > 1 else call_kwargs.get("segment_ids")
    return _has_symbolic(ids)


# ---------------------------------------------------------------------- loading op nodes
def _reverse_table() -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {}
    for name, (module, class_name, _, _) in sorted(OP_CLASSES.items()):
        key = (module, class_name)
        # Several names share a class (abs/absolute): the one the class is named after wins.
        if key not in table or naming.to_snake_case(class_name) == name:
            table[key] = name
    return table


_BY_CLASS = _reverse_table()


def is_op_spec(spec: dict) -> bool:
    module = spec.get("module") or ""
    return module.startswith(("keras.src.ops.", "distkeras.ops."))


def op_layer_from_spec(spec: dict) -> OpLayer:
    """An OpLayer from a saved op node (Keras's layout or ours)."""
    module, class_name = spec.get("module"), spec.get("class_name")
    name = _BY_CLASS.get((module, class_name))
    op = None
    if name is not None:
        op = _find_op(name)
    elif module.startswith("distkeras.ops."):
        key = (module.rsplit(".", 1)[-1], naming.to_snake_case(class_name))
        op = dispatch.OPS_REGISTRY.get(key)
    if op is None:
        raise ValueError(
            f"The file holds an op node {class_name!r} (module {module!r}) that distkeras.ops "
            "does not provide."
        )
    config = {k: _decode(v) for k, v in (spec.get("config") or {}).items()}
    layer_name = config.pop("name", None)
    if (module, class_name) == ("keras.src.ops.image", "ExtractPatches") and _is_3d(config):
        op = _find_op("extract_patches_3d")  # Keras saves both under one class
    params = inspect.signature(op.eager).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in config if k not in params]
    if unknown and not takes_any:
        raise ValueError(
            f"Op node {layer_name!r} ({class_name}) stores arguments {unknown} that "
            f"distkeras.ops.{op.op_name} does not take."
        )
    return OpLayer(op, name=layer_name, **config)


def _is_3d(config: dict) -> bool:
    return any(
        isinstance(config.get(k), tuple) and len(config[k]) == 3 for k in ("size", "strides")
    )


def _find_op(name: str):
    for (_, op_name), op in dispatch.OPS_REGISTRY.items():
        if op_name == name:
            return op
    return None


dispatch.register_symbolic_handler((KerasTensor,), symbolic_op_call)
