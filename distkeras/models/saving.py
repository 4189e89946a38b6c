"""Model files in Keras 3's formats: ``.keras`` archives and ``.weights.h5`` weights files.

A ``.keras`` file is a zip holding ``config.json`` (the model's config, as
:func:`distkeras.models.serialization.serialize_model` writes it), ``metadata.json`` and
``model.weights.h5`` (Keras's HDF5 weights layout, see :mod:`distkeras.models.weights_io`:
``layers/dense/vars/0`` is the kernel of the first ``Dense``), so Keras can read the files and
we can read Keras's.

Saves are atomic: the file is written next to the target and moved into place, so a failed
save leaves the previous file untouched. Loading never runs code from the file (see
``safe_mode``).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import uuid
import warnings
import zipfile

import numpy as np

from distkeras.models.assets_io import read_assets, write_assets
from distkeras.models.serialization import deserialize_layer, serialize_model
from distkeras.models.weights_io import load_weights_from_h5, open_h5, weights_bytes
from distkeras.utils.serialization import custom_object_scope, safe_mode_scope

_CONFIG_FILENAME = "config.json"
_METADATA_FILENAME = "metadata.json"
_WEIGHTS_FILENAME = "model.weights.h5"
# The Keras release whose file layout these files follow (Keras reads the field as such).
KERAS_FORMAT_VERSION = "3.15.1"


# ---------------------------------------------------------------------------- writing
def _check_overwrite(filepath: str, overwrite: bool) -> None:
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(
            f"{filepath} already exists and overwrite=False. Pass overwrite=True to replace it."
        )


def _atomic_write(filepath: str, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``filepath``, then moves it into place."""
    directory = os.path.dirname(os.path.abspath(filepath))
    if not os.path.isdir(directory):
        error = NotADirectoryError if os.path.exists(directory) else FileNotFoundError
        state = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise error(f"Cannot save {filepath}: the directory {directory} {state}.")
    if os.path.isdir(filepath):
        raise IsADirectoryError(f"Cannot save {filepath}: that path is a directory.")
    tmp = os.path.join(
        directory, f".{os.path.basename(filepath)}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    )
    # os.open applies the process umask, so the file gets the permissions a plain open() gives.
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise type(err)(
            f"Cannot save {filepath}: cannot create a file in {directory} ({err.strerror or err})."
        ) from err
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _config_json(model) -> str:
    config = serialize_model(model)
    try:
        return json.dumps(config, default=_json_default)
    except (TypeError, ValueError) as err:
        culprit = _unserializable_layer(model)
        where = f" in the config of layer '{culprit}'" if culprit else ""
        raise TypeError(
            f"Cannot save model '{model.name}': a value{where} is not JSON-serializable ({err}). "
            "get_config() must return plain values (numbers, strings, lists, dicts) or "
            "objects that have get_config()."
        ) from err


def _json_default(value):
    if isinstance(value, np.generic):  # numpy scalars in a config are plain numbers
        return value.item()
    raise TypeError(f"{type(value).__name__} object {value!r} is not JSON-serializable")


def _unserializable_layer(model) -> str | None:
    from distkeras.models.serialization import serialize_layer

    for layer in getattr(model, "layers", []):
        try:
            json.dumps(serialize_layer(layer), default=_json_default)
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
    weights = weights_bytes(model, include_optimizer)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(_METADATA_FILENAME, metadata_json)
        zf.writestr(_CONFIG_FILENAME, config_json)
        zf.writestr(_WEIGHTS_FILENAME, weights)
        write_assets(model, zf)  # adapted vocabularies (StringLookup...), as Keras writes them
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
    _atomic_write(filepath, weights_bytes(model, include_optimizer=True))


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
    except ValueError as err:
        if filepath in str(err):  # one of ours, above
            raise
        raise _not_a_keras_file(filepath, err) from err
    # A damaged zip makes zipfile raise almost anything (BadZipFile, zlib.error, EOFError,
    # struct.error, NotImplementedError for a flipped compression flag, ...).
    except Exception as err:  # noqa: BLE001
        raise _not_a_keras_file(filepath, err) from err
    try:
        config = json.loads(config_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{filepath}: config.json is not valid JSON ({err}).") from err
    if not isinstance(config, dict):
        raise ValueError(
            f"{filepath}: config.json must hold a model config (a JSON object). "
            f"Received: {type(config).__name__}"
        )
    return config, weights


def _not_a_keras_file(filepath: str, err: Exception) -> ValueError:
    return ValueError(
        f"Cannot read {filepath}: it is not a valid .keras file (a zip archive); it may be "
        f"corrupt or truncated. ({type(err).__name__}: {err})"
    )


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
    with open_h5(data, filepath) as h5:
        load_weights_from_h5(model, h5, skip_mismatch, filepath)


def _revive_compile_config(config: dict) -> dict:
    """Loss, metric and optimizer objects stored as ``{"class_name", "config", ...}`` dicts
    (by distkeras or Keras) rebuilt, so compile() does not read them as per-output dicts."""
    from distkeras import losses, metrics, optimizers

    def is_spec(value) -> bool:
        return isinstance(value, dict) and "class_name" in value

    def revive(value, get):
        if is_spec(value):
            return get(value)
        if isinstance(value, list):
            return [revive(v, get) for v in value]
        if isinstance(value, dict):
            return {k: revive(v, get) for k, v in value.items()}
        return value

    revived = dict(config)
    revived["loss"] = revive(config.get("loss"), losses.get)
    for key in ("metrics", "weighted_metrics"):
        if key in config:
            revived[key] = revive(config[key], metrics.get)
    if is_spec(config.get("optimizer")):
        revived["optimizer"] = optimizers.get(config["optimizer"])
    return revived


def _compile_from_config(model, config: dict) -> None:
    try:
        model.compile(**_revive_compile_config(config))
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
            f"File format not supported: filepath={filepath}. Keras 3 model files end in `.keras`."
        )
    config, weights = _read_archive(filepath)
    try:
        with safe_mode_scope(safe_mode), custom_object_scope(custom_objects):
            model = deserialize_layer(config, custom_objects)
    except (ValueError, TypeError) as err:
        if filepath in str(err):
            raise
        raise type(err)(f"Cannot load {filepath}: {err}") from err
    except (KeyError, AttributeError, IndexError) as err:  # a malformed config.json
        raise ValueError(
            f"Cannot load {filepath}: config.json is malformed ({type(err).__name__}: {err})."
        ) from err
    compile_config = config.get("compile_config")
    if compile and compile_config and hasattr(model, "compile"):
        _compile_from_config(model, compile_config)
    with open_h5(weights, filepath) as h5:
        load_weights_from_h5(model, h5, skip_mismatch=False, source=filepath)
    read_assets(model, filepath)
    return model


def model_from_json(json_string: str, custom_objects=None):
    """Builds a model (new weights) from ``model.to_json()``'s string."""
    try:
        config = json.loads(json_string)
    except json.JSONDecodeError as err:
        raise ValueError(f"model_from_json received invalid JSON: {err}") from err
    with custom_object_scope(custom_objects):
        return deserialize_layer(config, custom_objects)
