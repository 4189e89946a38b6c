"""Utilities, mirroring ``keras.utils``."""

from __future__ import annotations

import numpy as np

from distkeras.backend import set_random_seed
from distkeras.utils.dataset_utils import split_dataset, timeseries_dataset_from_array
from distkeras.utils.directory_datasets import (
    audio_dataset_from_directory,
    image_dataset_from_directory,
    text_dataset_from_directory,
)
from distkeras.utils.file_utils import get_file
from distkeras.utils.general import (
    Config,
    clear_session,
    get_source_inputs,
    is_keras_tensor,
    pack_x_y_sample_weight,
    standardize_dtype,
    unpack_x_y_sample_weight,
)
from distkeras.utils.image_utils import array_to_img, img_to_array, load_img, save_img
from distkeras.utils.io_utils import (
    disable_interactive_logging,
    enable_interactive_logging,
    is_interactive_logging_enabled,
)
from distkeras.utils.model_visualization import model_to_dot, plot_model
from distkeras.utils.progbar import Progbar
from distkeras.utils.py_dataset import PyDataset, Sequence
from distkeras.utils.sequences import pad_sequences
from distkeras.utils.serialization import (
    CustomObjectScope,
    custom_object_scope,
    register_keras_serializable,
)


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """One-hot encodes integer class labels, as ``keras.utils.to_categorical``.

    Example:
        >>> to_categorical([0, 2], num_classes=3)
        array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    x = np.asarray(x)
    if x.size and not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.equal(np.mod(x, 1), 0)):
            raise ValueError(f"to_categorical expects integer class labels. Received: {x[:5]}")
        x = x.astype("int64")
    input_shape = x.shape
    if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
        input_shape = input_shape[:-1]
    x = x.reshape(-1)
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical expects non-negative labels. Received min {x.min()}")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(f"Label {int(x.max())} is out of range for num_classes={num_classes}.")
    out = np.zeros((x.shape[0], num_classes), dtype="float32")
    out[np.arange(x.shape[0]), x] = 1.0
    return out.reshape((*input_shape, num_classes))


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """Divides ``x`` by its ``order``-norm along ``axis`` (zero norms left as 1), as
    ``keras.utils.normalize``; float numpy arrays keep their dtype, other input becomes
    float32.

    Example:
        >>> normalize([[3.0, 4.0]])
        array([[0.6, 0.8]], dtype=float32)
    """
    if not (isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)):
        x = np.asarray(x, dtype="float32")
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm).astype(x.dtype)


__all__ = [
    "pad_sequences",
    "to_categorical",
    "normalize",
    "set_random_seed",
    "register_keras_serializable",
    "custom_object_scope",
    "CustomObjectScope",
    "PyDataset",
    "Sequence",
    "split_dataset",
    "timeseries_dataset_from_array",
    "image_dataset_from_directory",
    "text_dataset_from_directory",
    "audio_dataset_from_directory",
    "get_file",
    "Config",
    "clear_session",
    "get_source_inputs",
    "is_keras_tensor",
    "pack_x_y_sample_weight",
    "unpack_x_y_sample_weight",
    "standardize_dtype",
    "array_to_img",
    "img_to_array",
    "load_img",
    "save_img",
    "model_to_dot",
    "plot_model",
    "Progbar",
    "enable_interactive_logging",
    "disable_interactive_logging",
    "is_interactive_logging_enabled",
]

# Keras also exposes the saving helpers here; they live in distkeras.saving, which imports
# layers and models, so they are looked up on first use to keep this module import-light.
_FROM_SAVING = (
    "serialize_keras_object",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
)


def __getattr__(name: str):
    if name in _FROM_SAVING:
        from distkeras import saving

        return getattr(saving, name)
    raise AttributeError(f"module 'distkeras.utils' has no attribute {name!r}")
