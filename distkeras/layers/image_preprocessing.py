"""Deterministic image preprocessing layers of ``keras.layers``: Resizing and CenterCrop.

They take image batches ``(batch, height, width, channels)`` or single images (rank 3), in
either data format, and run the same in training and inference. Keras's dict inputs with
bounding boxes or segmentation masks are not supported and raise an error saying so.
"""

from __future__ import annotations

import torch

from distkeras import backend
from distkeras.layers.base import Layer
from distkeras.layers.conv_base import standardize_data_format
from distkeras.ops import image as image_ops

__all__ = ["Resizing", "CenterCrop"]


def _check_images(layer: Layer, images) -> None:
    if isinstance(images, dict):
        raise NotImplementedError(
            f"{type(layer).__name__} layer '{layer.name}': dict inputs (images with bounding "
            "boxes, labels or segmentation masks) are not supported; pass the image tensor."
        )
    if images.ndim not in (3, 4):
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}' expects images of rank 3 or 4. "
            f"Received: shape={tuple(images.shape)}"
        )


def _spatial_axes(data_format: str, ndim: int) -> tuple[int, int]:
    return (ndim - 2, ndim - 1) if data_format == "channels_first" else (ndim - 3, ndim - 2)


def _cast_back(resized: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Integer images come back rounded and clipped to their dtype's range, as in Keras."""
    if resized.dtype == dtype:
        return resized
    if not dtype.is_floating_point and dtype != torch.bool:
        info = torch.iinfo(dtype)
        return torch.round(resized).clamp(info.min, info.max).to(dtype)
    return resized.to(dtype)


def _output_shape(layer, input_shape):
    shape = list(input_shape)
    h, w = _spatial_axes(layer.data_format, len(shape))
    shape[h], shape[w] = layer.height, layer.width
    return tuple(shape)


class Resizing(Layer):
    """Resizes images to ``(height, width)`` with ``ops.image.resize``'s interpolations,
    optionally cropping or padding to the target aspect ratio first.

    Example:
        >>> Resizing(2, 2)(torch.ones(1, 4, 4, 3)).shape
        torch.Size([1, 2, 2, 3])
    """

    def __init__(
        self,
        height,
        width,
        interpolation="bilinear",
        crop_to_aspect_ratio=False,
        pad_to_aspect_ratio=False,
        fill_mode="constant",
        fill_value=0.0,
        antialias=False,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError(
                "Resizing: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True."
            )
        self.height = int(height)
        self.width = int(width)
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode = fill_mode
        self.fill_value = fill_value
        self.antialias = bool(antialias)
        self.data_format = standardize_data_format("Resizing", data_format)

    def call(self, inputs):
        _check_images(self, inputs)
        resized = image_ops.resize(
            inputs,
            (self.height, self.width),
            interpolation=self.interpolation,
            antialias=self.antialias,
            crop_to_aspect_ratio=self.crop_to_aspect_ratio,
            pad_to_aspect_ratio=self.pad_to_aspect_ratio,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
            data_format=self.data_format,
        )
        return _cast_back(resized, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return _output_shape(self, input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            height=self.height,
            width=self.width,
            interpolation=self.interpolation,
            crop_to_aspect_ratio=self.crop_to_aspect_ratio,
            pad_to_aspect_ratio=self.pad_to_aspect_ratio,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
            antialias=self.antialias,
            data_format=self.data_format,
        )
        return config


class CenterCrop(Layer):
    """Crops the central ``(height, width)`` region; an image smaller than that is first
    cropped to the target aspect ratio and resized up (bilinear), as Keras does.

    Example:
        >>> CenterCrop(2, 2)(torch.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0]
        tensor([[ 5.,  6.],
                [ 9., 10.]])
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)
        self.data_format = standardize_data_format("CenterCrop", data_format)

    def call(self, inputs):
        _check_images(self, inputs)
        inputs = inputs.to(backend.standardize_dtype(self.dtype))
        h_axis, w_axis = _spatial_axes(self.data_format, inputs.ndim)
        h_diff = inputs.shape[h_axis] - self.height
        w_diff = inputs.shape[w_axis] - self.width
        if h_diff >= 0 and w_diff >= 0:
            cropped = inputs.narrow(h_axis, h_diff // 2, self.height)
            return cropped.narrow(w_axis, w_diff // 2, self.width)
        return image_ops.resize(
            inputs,
            (self.height, self.width),
            crop_to_aspect_ratio=True,
            data_format=self.data_format,
        )

    def compute_output_shape(self, input_shape):
        return _output_shape(self, input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, data_format=self.data_format)
        return config
