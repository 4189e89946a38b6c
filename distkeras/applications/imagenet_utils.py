"""ImageNet helpers shared by every application, as ``keras.applications.imagenet_utils``.

``preprocess_input`` scales images the way each family's pretrained weights expect ("caffe":
RGB to BGR minus the ImageNet channel means; "tf": to [-1, 1]; "torch": to [0, 1], then the
ImageNet mean and std per channel). ``decode_predictions`` names the top classes; it reads the
class index from the Keras cache folder, as nothing is downloaded here.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from distkeras import ops

__all__ = ["preprocess_input", "decode_predictions"]

CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
_CAFFE_MEAN = (103.939, 116.779, 123.68)  # BGR
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_class_index: dict | None = None


def keras_cache_dir() -> str:
    """Keras's cache folder for application files: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def _check_data_format(data_format) -> str:
    if data_format is None:
        return "channels_last"
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            "Expected data_format to be one of `channels_first` or `channels_last`. "
            f"Received: data_format={data_format}"
        )
    return data_format


def preprocess_input(x, data_format: str | None = None, mode: str = "caffe"):
    """Preprocesses a batch of images (values in [0, 255]) for an ImageNet model.

    Args:
        x: a numpy array or a tensor (real or symbolic), 3D or 4D with 3 color channels.
            A float numpy array is modified in place, as in Keras (pass ``np.copy(x)`` to
            keep it).
        data_format: "channels_last" (the default) or "channels_first".
        mode: "caffe", "tf" or "torch" (see the module docstring).

    Returns:
        The preprocessed array or tensor (float32 for integer numpy input).

    Example:
        >>> x = preprocess_input(np.full((1, 32, 32, 3), 255.0), mode="tf")  # all ones
    """
    if mode not in ("caffe", "tf", "torch"):
        raise ValueError(
            f"Expected mode to be one of `caffe`, `tf` or `torch`. Received: mode={mode}"
        )
    data_format = _check_data_format(data_format)
    if isinstance(x, np.ndarray):
        return _preprocess_numpy(x, data_format, mode)
    return _preprocess_tensor(x, data_format, mode)


def _channel_view(x, data_format: str, channel: int):
    if data_format == "channels_last":
        return x[..., channel]
    return x[channel] if x.ndim == 3 else x[:, channel]


def _preprocess_numpy(x: np.ndarray, data_format: str, mode: str) -> np.ndarray:
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype("float32")
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    if mode == "torch":
        x /= 255.0
        mean, std = _TORCH_MEAN, _TORCH_STD
    else:
        # RGB -> BGR is a reversed view of the channel axis (no copy), as in Keras.
        if data_format == "channels_last":
            x = x[..., ::-1]
        else:
            x = x[::-1] if x.ndim == 3 else x[:, ::-1]
        mean, std = _CAFFE_MEAN, None
    for c in range(3):
        view = _channel_view(x, data_format, c)
        view -= mean[c]
        if std is not None:
            view /= std[c]
    return x


def _preprocess_tensor(x, data_format: str, mode: str):
    if mode == "tf":
        return x / 127.5 - 1.0
    ndim = len(x.shape)
    if data_format == "channels_last":
        shape = (1,) * (ndim - 1) + (3,)
        axis = -1
    else:
        shape = (3, 1, 1) if ndim == 3 else (1, 3) + (1,) * (ndim - 2)
        axis = 0 if ndim == 3 else 1
    if mode == "torch":
        mean, std = _TORCH_MEAN, _TORCH_STD
        x = x / 255.0
    else:
        mean, std = _CAFFE_MEAN, None
        x = ops.stack([_channel_view(x, data_format, c) for c in (2, 1, 0)], axis=axis)
    dtype = x.dtype if isinstance(x, torch.Tensor) else "float32"
    x = x + ops.reshape(ops.convert_to_tensor(-np.array(mean), dtype=dtype), shape)
    if std is not None:
        x = x / ops.reshape(ops.convert_to_tensor(np.array(std), dtype=dtype), shape)
    return x


def _load_class_index() -> dict:
    global _class_index
    if _class_index is None:
        path = os.path.join(keras_cache_dir(), "imagenet_class_index.json")
        if not os.path.exists(path):
            raise FileNotFoundError(
                "decode_predictions needs ImageNet's class index, imagenet_class_index.json, "
                f"expected at {path}. Nothing is downloaded here: fetch it from "
                f"{CLASS_INDEX_URL} (where Keras downloads it from) and put it there, or set "
                "KERAS_HOME to the folder whose models/ holds it."
            )
        with open(path) as f:
            _class_index = json.load(f)
    return _class_index


def decode_predictions(preds, top: int = 5) -> list[list[tuple]]:
    """The ``top`` ImageNet classes of each prediction: ``(class_name, description, score)``.

    Args:
        preds: a batch of predictions of shape (samples, 1000).
        top: how many classes to return per sample.
    """
    if len(preds.shape) != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "`decode_predictions` expects a batch of predictions (i.e. a 2D array of shape "
            f"(samples, 1000)). Received array with shape: {tuple(preds.shape)}"
        )
    index = _load_class_index()
    if isinstance(preds, torch.Tensor):
        preds = preds.detach().cpu().numpy()
    preds = np.asarray(preds)
    results = []
    for pred in preds:
        best = pred.argsort()[-top:][::-1]
        result = [(*index[str(i)], pred[i]) for i in best]
        result.sort(key=lambda item: item[2], reverse=True)
        results.append(result)
    return results


_MODE_TEXT = {
    "caffe": "RGB to BGR, minus the ImageNet means",
    "tf": "pixels scaled to [-1, 1]",
    "torch": "[0, 1], then ImageNet mean and std",
}


def family_functions(family: str, mode: str, module: str):
    """A family module's ``preprocess_input`` (fixed to ``mode``) and ``decode_predictions``,
    as Keras gives every application module both."""

    def preprocess_input_for_family(x, data_format: str | None = None):
        return preprocess_input(x, data_format=data_format, mode=mode)

    def decode_predictions_for_family(preds, top: int = 5):
        return decode_predictions(preds, top=top)

    preprocess_input_for_family.__doc__ = (
        f'{family}\'s preprocessing: "{mode}" mode ({_MODE_TEXT[mode]}).'
    )
    decode_predictions_for_family.__doc__ = (
        "See :func:`distkeras.applications.imagenet_utils.decode_predictions`."
    )
    for fn, name in (
        (preprocess_input_for_family, "preprocess_input"),
        (decode_predictions_for_family, "decode_predictions"),
    ):
        fn.__name__ = fn.__qualname__ = name
        fn.__module__ = module
    return preprocess_input_for_family, decode_predictions_for_family
