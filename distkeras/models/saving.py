"""Model files in Keras 3's formats: ``.keras`` archives and ``.weights.h5`` weights files.

A ``.keras`` file is a zip holding ``config.json`` (the model's config, as
:func:`distkeras.models.serialization.serialize_model` writes it), ``metadata.json`` and
``model.weights.h5``. The weights file has one group per object that owns state, named by the
path Keras gives it: ``layers/dense/vars/0`` is the first variable of the first ``Dense`` in a
Sequential or functional model's ``layers``, numbered per class (``dense``, ``dense_1``, ...)
rather than by layer name; a subclassed model's layers sit under their attribute names; the
optimizer's state is ``optimizer/vars/N``. Each layer's variables are numbered in its own
``variables`` order (trainable first) and hold Keras layouts, so Keras can read the files.

Saves are atomic: the file is written next to the target and moved into place, so a failed
save leaves the previous file untouched. Loading never runs code from the file (see
``safe_mode``).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import tempfile
import warnings
import zipfile
import zlib

import h5py
import numpy as np
import torch

from distkeras import backend
from distkeras.layers.base import Layer
from distkeras.models.serialization import deserialize_layer, serialize_model
from distkeras.utils.serialization import custom_object_scope, safe_mode_scope

_CONFIG_FILENAME = "config.json"
_METADATA_FILENAME = "metadata.json"
_WEIGHTS_FILENAME = "model.weights.h5"
# The Keras release whose file layout these files follow (Keras reads the field as such).
KERAS_FORMAT_VERSION = "3.15.1"


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


def _children(obj, include_optimizer: bool):
    """(attribute, child) pairs in the order Keras visits them."""
    from distkeras.models.functional import Functional
    from distkeras.models.model import Model
    from distkeras.models.sequential import Sequential

    optimizer = getattr(obj, "optimizer", None) if include_optimizer else None
    # An unbuilt optimizer's state would not match the one compile() rebuilds at load.
    if not getattr(optimizer, "built", False) or not hasattr(optimizer, "variables"):
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
    if isinstance(obj, Model):
        named.setdefault("layers", obj.layers)
        if optimizer is not None:
            named.setdefault("optimizer", optimizer)
    for attr in sorted(named, key=_name_key):
        yield attr, named[attr]


def _saveables(model, include_optimizer: bool = True) -> list[tuple[str, object]]:
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
        for attr, child in _children(obj, include_optimizer):
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
                name = _snake_case(type(item).__name__)
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
        return [np.asarray(store[str(i)]) for i in range(len(store))]
    return [backend.to_numpy(spec.keras_value()) for spec in _own_specs(obj)]


def _as_tensor(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    return torch.as_tensor(np.asarray(value))


def _group_path(path: str) -> str:
    return f"{path}/vars" if path else "vars"


# ---------------------------------------------------------------------------- writing
def _weights_bytes(model, include_optimizer: bool) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        for path, obj in _saveables(model, include_optimizer):
            group = h5.create_group(_group_path(path))
            name = getattr(obj, "name", None)
            if isinstance(name, str):
                group.attrs["name"] = name
            arrays = _own_arrays(obj) if isinstance(obj, Layer) else _optimizer_arrays(model, obj)
            for i, value in enumerate(arrays):
                group.create_dataset(str(i), data=value)
    return buffer.getvalue()


def _check_overwrite(filepath: str, overwrite: bool) -> None:
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(
            f"{filepath} already exists and overwrite=False. Pass overwrite=True to replace it."
        )


def _atomic_write(filepath: str, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``filepath``, then moves it into place."""
    directory = os.path.dirname(os.path.abspath(filepath))
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(filepath)}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _config_json(model) -> str:
    config = serialize_model(model)
    try:
        return json.dumps(config)
    except (TypeError, ValueError) as err:
        culprit = _unserializable_layer(model)
        where = f" in the config of layer '{culprit}'" if culprit else ""
        raise TypeError(
            f"Cannot save model '{model.name}': a value{where} is not JSON-serializable ({err}). "
            "get_config() must return plain values (numbers, strings, lists, dicts) or "
            "objects that have get_config()."
        ) from err


def _unserializable_layer(model) -> str | None:
    from distkeras.models.serialization import serialize_layer

    for layer in getattr(model, "layers", []):
        try:
            json.dumps(serialize_layer(layer))
        except (TypeError, ValueError):
            return _unserializable_layer(layer) or layer.name
    return None


def save_model(model, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
    """Saves ``model`` as a Keras 3 ``.keras`` archive (config, metadata and weights).

    Example:
        >>> model.save("model.keras")
        >>> restored = distkeras.models.load_model("model.keras")
    """
    filepath = os.fspath(filepath)
    if not str(filepath).endswith(".keras"):
        raise ValueError(
            "Invalid filepath extension for saving: Keras 3 model files end in `.keras` "
            "(legacy `.h5` model files are not written; use model.save_weights() with a "
            f"`.weights.h5` name to save only weights). Received: filepath={filepath}"
        )
    _check_overwrite(filepath, overwrite)
    if not model.built:
        warnings.warn(
            f"Saving model '{model.name}', which has not been built: it has no weights yet.",
            stacklevel=2,
        )
    config_json = _config_json(model)
    from distkeras import __version__

    metadata_json = json.dumps(
        {
            "keras_version": KERAS_FORMAT_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "distkeras_version": __version__,
        }
    )
    weights = _weights_bytes(model, include_optimizer)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(_METADATA_FILENAME, metadata_json)
        zf.writestr(_CONFIG_FILENAME, config_json)
        zf.writestr(_WEIGHTS_FILENAME, weights)
    _atomic_write(filepath, buffer.getvalue())


def save_weights(model, filepath, overwrite: bool = True) -> None:
    """Saves the weights (and a built optimizer's state) to a Keras 3 ``.weights.h5`` file."""
    filepath = os.fspath(filepath)
    if not str(filepath).endswith(".weights.h5"):
        raise ValueError(
            "The filename must end in `.weights.h5` (Keras 3's weights files). "
            f"Received: filepath={filepath}"
        )
    _check_overwrite(filepath, overwrite)
    _atomic_write(filepath, _weights_bytes(model, include_optimizer=True))


# ---------------------------------------------------------------------------- reading
def _require_file(filepath: str, kind: str) -> None:
    if not os.path.exists(filepath):
        raise ValueError(f"File not found: filepath={filepath}. Expected an existing {kind}.")
    if os.path.isdir(filepath):
        raise ValueError(f"Expected a {kind} file, but {filepath} is a directory.")


def _read_archive(filepath: str) -> tuple[dict, bytes]:
    """(config dict, weights h5 bytes) from a ``.keras`` zip, with errors that name the file."""
    try:
        with zipfile.ZipFile(filepath, "r") as zf:
            names = zf.namelist()
            if _CONFIG_FILENAME not in names:
                raise ValueError(
                    f"{filepath} is a zip file but not a .keras model: it has no "
                    f"{_CONFIG_FILENAME} (entries: {names[:10]})."
                )
            config_bytes = zf.read(_CONFIG_FILENAME)
            if _WEIGHTS_FILENAME in names:
                weights = zf.read(_WEIGHTS_FILENAME)
            elif "model.weights.npz" in names:
                raise ValueError(
                    f"{filepath} stores its weights as model.weights.npz; only the h5 "
                    "weights format is supported."
                )
            else:
                raise ValueError(f"{filepath} has no {_WEIGHTS_FILENAME}: it is incomplete.")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise ValueError(
            f"Cannot read {filepath}: it is not a valid .keras file (a zip archive); it may be "
            f"corrupt or truncated. ({type(err).__name__}: {err})"
        ) from err
    try:
        config = json.loads(config_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{filepath}: config.json is not valid JSON ({err}).") from err
    return config, weights


def _open_h5(data: bytes, source: str) -> h5py.File:
    try:
        return h5py.File(io.BytesIO(data), "r")
    except OSError as err:
        raise ValueError(
            f"Cannot read the weights in {source}: not a valid HDF5 file; it may be corrupt "
            f"or truncated. ({err})"
        ) from err


def _stored_arrays(h5: h5py.File, group_path: str) -> list[np.ndarray] | None:
    group = h5.get(group_path)
    if group is None:
        return None
    keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else 1 << 30)
    return [np.asarray(group[k][()]) for k in keys]


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
        warnings.warn(
            f"Skipping loading the state of optimizer '{name}': {problem}.", stacklevel=3
        )
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


def _load_weights_from_h5(model, h5: h5py.File, skip_mismatch: bool, source: str) -> None:
    assignments = []
    problems = []
    expected_groups = set()
    for path, obj in _saveables(model, include_optimizer=True):
        group_path = _group_path(path)
        expected_groups.add(group_path)
        values = _stored_arrays(h5, group_path) or []
        if not isinstance(obj, Layer):
            if values and getattr(model, "optimizer", None) is obj:
                assignments.append((obj, values))
            continue
        hook = getattr(obj, "load_own_variables", None)
        if hook is not None:
            assignments.append((obj, {str(i): v for i, v in enumerate(values)}))
            continue
        specs = _own_specs(obj)
        problem = _layer_mismatch(obj, path, specs, values)
        if problem:
            problems.append(problem)
        elif specs:
            assignments.append((obj, list(zip(specs, values))))
    extra = []
    h5.visititems(
        lambda name, item: extra.append(name)
        if isinstance(item, h5py.Group)
        and name.split("/")[-1] == "vars"
        and len(item)
        and name not in expected_groups
        and "/optimizer/" not in f"/{name}"
        else None
    )
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


def load_weights(model, filepath, skip_mismatch: bool = False) -> None:
    """Loads weights from a ``.weights.h5`` file or a ``.keras`` archive into ``model``.

    Layers are matched by their place in the model (Keras's paths), not by name; every
    mismatch is reported with the layer and the shapes unless ``skip_mismatch=True``.
    """
    filepath = os.fspath(filepath)
    if filepath.endswith(".keras"):
        _require_file(filepath, ".keras file")
        _, data = _read_archive(filepath)
    elif filepath.endswith(".weights.h5"):
        _require_file(filepath, ".weights.h5 file")
        with open(filepath, "rb") as f:
            data = f.read()
    else:
        raise ValueError(
            "load_weights() reads Keras 3 weights files (`.weights.h5`) and `.keras` archives; "
            f"legacy `.h5` weights are not supported. Received: filepath={filepath}"
        )
    with _open_h5(data, filepath) as h5:
        _load_weights_from_h5(model, h5, skip_mismatch, filepath)


def _compile_from_config(model, config: dict) -> None:
    try:
        model.compile(**config)
    except (TypeError, ValueError) as err:
        warnings.warn(
            f"Model '{model.name}' was loaded without compiling: compile() with the saved "
            f"settings failed ({err}). Call model.compile() yourself.",
            stacklevel=3,
        )
        return
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not getattr(optimizer, "built", True):
        build = getattr(optimizer, "build", None)
        if build is not None:
            build(model.trainable_weights)


def load_model(filepath, custom_objects=None, compile: bool = True, safe_mode: bool = True):
    """Loads a model saved by ``model.save("....keras")`` (or by Keras 3).

    Args:
        filepath: path of the ``.keras`` file.
        custom_objects: ``{"ClassName": cls}`` for custom layers/models not registered with
            ``register_keras_serializable``.
        compile: whether to compile the model with the saved compile settings.
        safe_mode: refuse configs that store Python bytecode (``lambda``); pass False only
            for files you trust.

    Example:
        >>> model = distkeras.models.load_model("model.keras")
    """
    filepath = os.fspath(filepath)
    _require_file(filepath, ".keras file")
    if filepath.endswith((".h5", ".hdf5")):
        raise ValueError(
            f"{filepath} is an HDF5 file: legacy `.h5` model files are not supported, and a "
            "`.weights.h5` file holds only weights (rebuild the model and call "
            "model.load_weights()). Save models with model.save('name.keras')."
        )
    if not filepath.endswith(".keras"):
        raise ValueError(
            f"File format not supported: filepath={filepath}. Keras 3 model files end in "
            "`.keras`."
        )
    config, weights = _read_archive(filepath)
    with safe_mode_scope(safe_mode), custom_object_scope(custom_objects):
        model = deserialize_layer(config, custom_objects)
    compile_config = config.get("compile_config")
    if compile and compile_config and hasattr(model, "compile"):
        _compile_from_config(model, compile_config)
    with _open_h5(weights, filepath) as h5:
        _load_weights_from_h5(model, h5, skip_mismatch=False, source=filepath)
    return model


def model_from_json(json_string: str, custom_objects=None):
    """Builds a model (new weights) from ``model.to_json()``'s string."""
    try:
        config = json.loads(json_string)
    except json.JSONDecodeError as err:
        raise ValueError(f"model_from_json received invalid JSON: {err}") from err
    with custom_object_scope(custom_objects):
        return deserialize_layer(config, custom_objects)
