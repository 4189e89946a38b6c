"""Images as arrays and files: ``array_to_img``, ``img_to_array``, ``load_img``, ``save_img``.

They use Pillow, as Keras does; it is imported on first use, with an error saying how to get it.
"""

from __future__ import annotations

import io
import pathlib
import warnings

import numpy as np

from distkeras import backend

_RESAMPLING = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def _pil():
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError("Image loading and saving need Pillow: pip install pillow") from err
    return Image


def _data_format(data_format) -> str:
    from distkeras.layers.conv_base import standardize_data_format

    return standardize_data_format("image utils", data_format)


def array_to_img(x, data_format=None, scale: bool = True, dtype=None):
    """A rank-3 array ``(height, width, channels)`` (or channels first) as a PIL image.

    ``scale`` maps the array's range onto 0..255 first; 1, 3 and 4 channels give "L", "RGB"
    and "RGBA" images (a 1-channel image above 255 gives 32-bit "I").
    """
    image = _pil()
    x = np.asarray(x, dtype=dtype or backend.floatx())
    if x.ndim != 3:
        raise ValueError(
            f"Expected image array to have rank 3 (single image). Got array with shape: {x.shape}"
        )
    if _data_format(data_format) == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        peak = np.max(x)
        if peak != 0:
            x = x / peak
        x = x * 255
    channels = x.shape[2]
    if channels == 4:
        return image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:
            return image.fromarray(x[:, :, 0].astype("int32"), "I")
        return image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {channels}")


def img_to_array(img, data_format=None, dtype=None) -> np.ndarray:
    """A PIL image as a float array ``(height, width, channels)`` (or channels first)."""
    x = np.asarray(img, dtype=dtype or backend.floatx())
    channels_first = _data_format(data_format) == "channels_first"
    if x.ndim == 3:
        return x.transpose(2, 0, 1) if channels_first else x
    if x.ndim == 2:
        return x[None] if channels_first else x[:, :, None]
    raise ValueError(f"Unsupported image shape: {x.shape}")


def _resize(img, target_size, interpolation: str, keep_aspect_ratio: bool):
    image = _pil()
    size = (target_size[1], target_size[0])  # PIL takes (width, height)
    if img.size == size:
        return img
    if interpolation not in _RESAMPLING:
        raise ValueError(
            f"Invalid interpolation method {interpolation!r}. Supported methods are "
            f"{', '.join(_RESAMPLING)}"
        )
    resample = getattr(image.Resampling, interpolation.upper())
    box = None
    if keep_aspect_ratio:  # resample only the centre box with the target's aspect ratio
        width, height = img.size
        crop_height = min(height, (width * size[1]) // size[0])
        crop_width = min(width, (height * size[0]) // size[1])
        left = (width - crop_width) // 2
        top = (height - crop_height) // 2
        box = (left, top, left + crop_width, top + crop_height)
    return img.resize(size, resample, box=box)


def load_img(
    path,
    color_mode: str = "rgb",
    target_size=None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
):
    """Reads an image file (a path or a ``BytesIO``) as a PIL image, converted to
    ``color_mode`` ("grayscale", "rgb" or "rgba") and resized to ``target_size=(h, w)``."""
    image = _pil()
    if isinstance(path, io.BytesIO):
        img = image.open(path)
    elif isinstance(path, (pathlib.Path, bytes, str)):
        with open(path, "rb") as handle:
            img = image.open(io.BytesIO(handle.read()))
    else:
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")
    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode in ("rgb", "rgba"):
        if img.mode != color_mode.upper():
            img = img.convert(color_mode.upper())
    else:
        raise ValueError(
            f'color_mode must be "grayscale", "rgb", or "rgba". Received: {color_mode!r}'
        )
    if target_size is not None:
        img = _resize(img, target_size, interpolation, keep_aspect_ratio)
    return img


def save_img(path, x, data_format=None, file_format=None, scale: bool = True, **kwargs):
    """Writes a rank-3 array as an image file; the format comes from the file name unless
    ``file_format`` says; RGBA is converted to RGB for JPEG (with a warning)."""
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn(
            "The JPEG format does not support RGBA images, converting to RGB.", stacklevel=2
        )
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)
