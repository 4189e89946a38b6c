"""The weights file: Keras 3's HDF5 layout of a model's (and its optimizer's) state.

Every object that owns state gets a group ``<path>/vars`` holding datasets ``0, 1, ...`` (with
its name as an attribute), where ``<path>`` is the one Keras derives: a Sequential or functional
model's layers sit under ``layers/<class_in_snake_case>[_N]``, numbered per class in
``model.layers`` order; other layers and subclassed models put children under their attribute
names (visited alphabetically, private ones last, ``layers`` among them for a model); the
compiled model's optimizer is ``optimizer``. Values are in Keras layout, a layer's own
variables numbered trainable first. An object reached twice (a shared layer) is stored once.
"""

from __future__ import annotations

import functools
import io
import re
import warnings

import h5py
import numpy as np
import torch

from distkeras import backend
from distkeras.layers.base import Layer


# ------------------------------------------------------------------ walking saveables
def _snake_case(name: str) -> str:
    # Keras's own rule: the group names must equal the ones Keras derives.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _name_key(name: str) -> str:
    return "~" + name if name.startswith("_") else name  # private attributes last


def _container_items(value) -> list | None:
    """The items of a list/tuple/dict of layers (or torch's containers), else None."""
    if isinstance(value, (torch.nn.ModuleList, torch.nn.Sequential)) and not isinstance(
        value, Layer
    ):
        return list(value)
    if isinstance(value, torch.nn.ModuleDict):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, dict):
        items = list(value.values())
    else:
        return None
    return items if any(isinstance(v, Layer) for v in items) else None


# torch.nn.Module's own bookkeeping (``_modules`` holds the children we already walk).
_TORCH_INTERNALS = frozenset(vars(torch.nn.Module()))


@functools.cache
def _own_properties(cls) -> tuple[str, ...]:
    """Names of the properties a Layer subclass defines (the base classes' hold no layers)."""
    from distkeras.models.model import Model

    base = (Layer, Model, torch.nn.Module, object)
    names = set()
    for klass in cls.__mro__:
        if klass in base:
            continue
        names.update(k for k, v in vars(klass).items() if isinstance(v, property))
    return tuple(sorted(n for n in names if not n.startswith("__")))


def _children(obj, optimizer_mode: str):
    """(attribute, child) pairs in the order Keras visits them.

    ``optimizer_mode``: "skip", "built" (saving: an unbuilt optimizer's state would not match
    the one compile() rebuilds at load) or "any" (loading builds it when the file has state).
    """
    from distkeras.models.functional import Functional
    from distkeras.models.model import Model
    from distkeras.models.sequential import Sequential

    optimizer = getattr(obj, "optimizer", None) if optimizer_mode != "skip" else None
    unbuilt = optimizer_mode == "built" and not getattr(optimizer, "built", False)
    if unbuilt or not hasattr(optimizer, "variables"):
        optimizer = None
    if isinstance(obj, (Sequential, Functional)):
        yield "layers", obj.layers
        if optimizer is not None:
            yield "optimizer", optimizer
        return
    named = {}
    for attr, module in obj._modules.items():
        if isinstance(module, Layer) or _container_items(module) is not None:
            named[attr] = module
    for attr, value in vars(obj).items():
        if attr in _TORCH_INTERNALS or attr in named:
            continue
        if _container_items(value) is not None:
            named[attr] = value
    # Keras walks dir(), properties included: MultiHeadAttention's ``key_dense`` property
    # (reached before ``_key_dense``) is the path Keras uses for that sublayer.
    for attr in _own_properties(type(obj)):
        try:
            value = getattr(obj, attr)
        except Exception:  # a property that cannot be read now holds no saveable
            continue
        if isinstance(value, Layer) or _container_items(value) is not None:
            named.setdefault(attr, value)
    if isinstance(obj, Model):
        named.setdefault("layers", obj.layers)
        if optimizer is not None:
            named.setdefault("optimizer", optimizer)
    for attr in sorted(named, key=_name_key):
        yield attr, named[attr]


def _saveables(model, optimizer_mode: str = "built") -> list[tuple[str, object]]:
    """(path, object) for the model, every layer inside it and its optimizer, each once."""
    out: list[tuple[str, object]] = []
    visited: set[int] = set()

    def visit(obj, path: str) -> None:
        if id(obj) in visited:
            return
        visited.add(id(obj))
        out.append((path, obj))
        if not isinstance(obj, Layer):
            return
        for attr, child in _children(obj, optimizer_mode):
            child_path = f"{path}/{attr}" if path else attr
            items = _container_items(child) if not isinstance(child, Layer) else None
            if items is None:
                if isinstance(child, Layer) or attr == "optimizer":
                    visit(child, child_path)
                continue
            used: dict[str, int] = {}
            for item in items:
                if not isinstance(item, Layer):
                    continue
                # Keras names the group after the class; a few of its classes are exported
                # under another name (GroupQueryAttention is GroupedQueryAttention).
                name = _snake_case(getattr(item, "_keras_class_name", type(item).__name__))
                if name in used:
                    used[name] += 1
                    name = f"{name}_{used[name]}"
                else:
                    used[name] = 0
                visit(item, f"{child_path}/{name}")

    visit(model, "")
    return out


def _own_specs(layer: Layer) -> list:
    specs = layer._weight_specs
    return [s for s in specs if s.trainable] + [s for s in specs if not s.trainable]


def _slot_specs(model, optimizer) -> dict:
    """id(optimizer state tensor) -> WeightSpec of the weight it shadows.

    Slots (momentums, ...) are shaped like the stored weights; files hold them in the weights'
    Keras layout, as Keras writes them.
    """
    slots = getattr(optimizer, "_slots", None)
    params = getattr(optimizer, "_trainable_variables", None)
    if not slots or not params:
        return {}
    specs = {id(s.param): s for s in model._weight_spec_list()}
    out = {}
    for tensors in slots.values():
        for param, tensor in zip(params, tensors):
            spec = specs.get(id(param))
            if spec is not None and spec.to_keras is not None and tensor.shape == param.shape:
                out[id(tensor)] = spec
    return out


def _optimizer_arrays(model, optimizer) -> list[np.ndarray]:
    layout = _slot_specs(model, optimizer)
    arrays = []
    for var in optimizer.variables:
        tensor = _as_tensor(var)
        spec = layout.get(id(var))
        arrays.append(backend.to_numpy(spec.to_keras(tensor) if spec is not None else tensor))
    return arrays


def _own_arrays(obj) -> list[np.ndarray]:
    hook = getattr(obj, "save_own_variables", None)
    if hook is not None:  # a layer that lays out its variables itself, as in Keras
        store: dict = {}
        hook(store)
        if not all(str(k).isdigit() for k in store):  # named datasets (TorchModuleWrapper)
            return {str(k): np.asarray(v) for k, v in store.items()}
        return [np.asarray(store[str(i)]) for i in range(len(store))]
    return [backend.to_numpy(spec.keras_value()) for spec in _own_specs(obj)]


def _as_tensor(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    return torch.as_tensor(np.asarray(value))


def _group_path(path: str) -> str:
    return f"{path}/vars" if path else "vars"


def weights_bytes(model, include_optimizer: bool) -> bytes:
    buffer = io.BytesIO()
    # HDF5 1.10's format: its metadata carries checksums, so damage to the file structure is
    # detected too (the older default format can read a damaged chunk index as zeros). Any
    # h5py >= 3 (HDF5 >= 1.10), Keras's included, reads it; it is also a third the size.
    with h5py.File(buffer, "w", libver=("v110", "v110")) as h5:
        for path, obj in _saveables(model, "built" if include_optimizer else "skip"):
            group = h5.create_group(_group_path(path))
            name = getattr(obj, "name", None)
            if isinstance(name, str):
                group.attrs["name"] = name
            arrays = _own_arrays(obj) if isinstance(obj, Layer) else _optimizer_arrays(model, obj)
            for i, value in arrays.items() if isinstance(arrays, dict) else enumerate(arrays):
                # A Fletcher-32 checksum per array (HDF5's built-in filter, which Keras and
                # h5py read transparently): a damaged file fails to load instead of loading
                # different weights. Scalars cannot be chunked, so they go without.
                group.create_dataset(
                    str(i), data=value, fletcher32=value.ndim > 0 and value.size > 0
                )
    return buffer.getvalue()


# What h5py and the HDF5 library raise on damaged structure (bad addresses, heaps, sizes).
_CORRUPT_H5_ERRORS = (
    RuntimeError,
    OSError,
    OverflowError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    MemoryError,
)


def open_h5(data: bytes, source: str) -> h5py.File:
    try:
        return h5py.File(io.BytesIO(data), "r")
    except _CORRUPT_H5_ERRORS as err:
        raise ValueError(
            f"Cannot read the weights in {source}: not a valid HDF5 file; it may be corrupt "
            f"or truncated. ({err})"
        ) from err


def _corrupt_file_error(source: str, err: Exception) -> ValueError:
    return ValueError(
        f"Cannot read the weights in {source}: the file is corrupt or truncated "
        f"({type(err).__name__}: {err})."
    )


def _dataset_order(key: str) -> int:
    return int(key) if key.isdigit() else 1 << 30  # numbered first; named ones as h5 lists them


def _hook_store(h5: h5py.File, group_path: str, values: list) -> dict:
    """What a ``load_own_variables`` hook receives: dataset name -> array."""
    group = h5.get(group_path)
    keys = sorted(group.keys(), key=_dataset_order) if group is not None else []
    return dict(zip(keys, values))


def _stored_arrays(h5: h5py.File, group_path: str, source: str) -> list[np.ndarray] | None:
    try:
        group = h5.get(group_path)
        if group is None:
            return None
        keys = sorted(group.keys(), key=_dataset_order)
        # A damaged size field must not make numpy allocate terabytes.
        limit = h5.id.get_filesize() + (1 << 20)
        arrays = []
        for key in keys:
            dataset = group[key]
            if dataset.compression is None and dataset.size * dataset.dtype.itemsize > limit:
                raise ValueError(f"dataset '{dataset.name}' claims more bytes than the file has")
            arrays.append(np.asarray(dataset[()]))
        return arrays
    except _CORRUPT_H5_ERRORS as err:
        raise _corrupt_file_error(source, err) from err


def _load_optimizer(model, optimizer, values: list[np.ndarray]) -> None:
    if not getattr(optimizer, "built", True) and hasattr(optimizer, "build"):
        optimizer.build(model.trainable_weights)
    variables = list(optimizer.variables)
    name = getattr(optimizer, "name", type(optimizer).__name__)
    problem = None
    if len(variables) != len(values):
        problem = f"it has {len(variables)} variables, the file has {len(values)}"
    else:
        layout = _slot_specs(model, optimizer)
        converted = []
        for i, (var, value) in enumerate(zip(variables, values)):
            spec = layout.get(id(var))
            if spec is not None:
                if tuple(value.shape) != spec.keras_shape():
                    problem = f"variable {i} has shape {spec.keras_shape()}, the file has "
                    problem += str(tuple(value.shape))
                    break
                value = spec.to_storage(torch.as_tensor(value, dtype=var.dtype))
            elif tuple(value.shape) != tuple(var.shape):
                problem = f"variable {i} has shape {tuple(var.shape)}, the file has "
                problem += str(tuple(value.shape))
                break
            converted.append(value)
    if problem:
        warnings.warn(f"Skipping loading the state of optimizer '{name}': {problem}.", stacklevel=3)
        return
    if hasattr(optimizer, "set_variables"):  # also refreshes its host-side step count and lr
        optimizer.set_variables(converted)
        return
    with torch.no_grad():
        for var, value in zip(variables, converted):
            var.copy_(torch.as_tensor(value, dtype=var.dtype))


def _layer_mismatch(layer: Layer, path: str, specs, values) -> str | None:
    expected = [(s.name, s.keras_shape()) for s in specs]
    received = [tuple(v.shape) for v in values]
    if not specs and values and not layer.built:
        return (
            f"Layer '{layer.name}' ({path}) was never built, so it has no weights, but the file "
            f"has {len(values)} for it: build the model (call it on data or build()) first."
        )
    if len(specs) != len(values) or any(e[1] != r for e, r in zip(expected, received)):
        return (
            f"Layer '{layer.name}' ({type(layer).__name__}, weights '{_group_path(path)}') "
            f"expects weights {expected}; the file has shapes {received}."
        )
    return None


def load_weights_from_h5(model, h5: h5py.File, skip_mismatch: bool, source: str) -> None:
    assignments = []
    problems = []
    expected_groups = set()
    for path, obj in _saveables(model, "any"):
        group_path = _group_path(path)
        expected_groups.add(group_path)
        values = _stored_arrays(h5, group_path, source) or []
        if not isinstance(obj, Layer):
            if values and getattr(model, "optimizer", None) is obj:
                assignments.append((obj, values))
            continue
        hook = getattr(obj, "load_own_variables", None)
        if hook is not None:
            assignments.append((obj, _hook_store(h5, group_path, values)))
            continue
        specs = _own_specs(obj)
        problem = _layer_mismatch(obj, path, specs, values)
        if problem:
            problems.append(problem)
        elif specs:
            assignments.append((obj, list(zip(specs, values))))
    extra = []

    def unexpected(name: str, item) -> None:
        stateful = isinstance(item, h5py.Group) and name.rsplit("/", 1)[-1] == "vars" and len(item)
        if stateful and name not in expected_groups and "/optimizer/" not in f"/{name}":
            extra.append(name)

    try:
        h5.visititems(unexpected)
    except _CORRUPT_H5_ERRORS as err:
        raise _corrupt_file_error(source, err) from err
    if extra:
        problems.append(
            f"The file has weights for {sorted(extra)}, which model '{model.name}' does not "
            "have: it was saved from a different architecture."
        )
    if problems:
        message = f"Cannot load the weights in {source} into model '{model.name}':\n  " + (
            "\n  ".join(problems)
        )
        if not skip_mismatch:
            raise ValueError(message)
        warnings.warn(message + "\nThese were skipped (skip_mismatch=True).", stacklevel=3)
    for obj, payload in assignments:
        if not isinstance(obj, Layer):
            _load_optimizer(model, obj, payload)
        elif isinstance(payload, dict):
            obj.load_own_variables(payload)
        else:
            _assign(payload)


def _assign(pairs) -> None:
    with torch.no_grad():
        for spec, value in pairs:
            tensor = torch.as_tensor(np.asarray(value), dtype=spec.param.dtype)
            if spec.to_storage is not None:
                tensor = spec.to_storage(tensor)
            spec.param.copy_(tensor.reshape(spec.param.shape))
