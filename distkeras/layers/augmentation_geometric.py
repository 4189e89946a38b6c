"""Geometric augmentation layers of ``keras.layers``: RandomFlip, RandomRotation, RandomZoom,
RandomTranslation, RandomShear and RandomCrop.

The warps go through ``distkeras.ops.image.affine_transform`` with the 8-entry projective
transforms Keras builds (output pixel (x, y) reads the input at ``(a0 x + a1 y + a2) / k,
(b0 x + b1 y + b2) / k``); each sample's parameters are drawn per sample (see
``augmentation_base``).
"""

from __future__ import annotations

import math

import torch

from distkeras.layers.augmentation_base import (
    FILL_MODES,
    INTERPOLATIONS,
    AugmentationLayer,
    check_choice,
    factor_pair,
    symmetric_pair,
)
from distkeras.ops import image as image_ops

__all__ = [
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomShear",
    "RandomCrop",
]

HORIZONTAL, VERTICAL = "horizontal", "vertical"
HORIZONTAL_AND_VERTICAL = "horizontal_and_vertical"


def affine_matrix(angle, translate_x, translate_y, scale, shear_x, shear_y, height, width):
    """Keras's ``_compute_affine_matrix`` about the image centre; angles in degrees."""
    rad = math.pi / 180.0
    angle, shear_x, shear_y = angle * rad, torch.tan(shear_x * rad), torch.tan(shear_y * rad)
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    a0 = scale * (cos + shear_x * sin)
    a1 = scale * (-sin + shear_x * cos)
    a2 = translate_x + cx - cx * a0 - cy * a1
    b0 = scale * (shear_y * cos + sin)
    b1 = scale * (shear_y * -sin + cos)
    b2 = translate_y + cy - cx * b0 - cy * b1
    zeros = torch.zeros_like(a0)
    return torch.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], dim=1)


class _WarpLayer(AugmentationLayer):
    """A layer warping images with ``affine_transform``: fill_mode, interpolation, fill_value."""

    def __init__(
        self,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        data_format=None,
        **kwargs,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        name = type(self).__name__
        check_choice(name, "fill_mode", fill_mode, FILL_MODES)
        check_choice(name, "interpolation", interpolation, INTERPOLATIONS)
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, fill_value

    def _warp(self, images, matrix, interpolation=None):
        return image_ops.affine_transform(
            images,
            matrix.to(torch.float32),
            interpolation=interpolation or self.interpolation,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
            data_format=self.data_format,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            fill_mode=self.fill_mode,
            interpolation=self.interpolation,
            seed=self.seed,
            fill_value=self.fill_value,
        )
        return config


class RandomFlip(AugmentationLayer):
    """Flips each image horizontally and/or vertically with probability 0.5 while training.

    With ``mode="horizontal_and_vertical"`` one draw per image decides both flips, as in Keras.

    Example:
        >>> RandomFlip("horizontal", seed=1)(torch.ones(2, 4, 4, 3)).shape
        torch.Size([2, 4, 4, 3])
    """

    def __init__(self, mode=HORIZONTAL_AND_VERTICAL, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if mode not in (HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL):
            raise ValueError(
                "RandomFlip: `mode` must be 'horizontal', 'vertical' or "
                f"'horizontal_and_vertical'. Received: mode={mode!r}"
            )
        self.mode = mode

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        flips = self._uniform((images.shape[0], 1, 1, 1)) <= 0.5
        return {"flips": flips, "input_shape": tuple(images.shape)}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        flips = transformation["flips"].reshape(-1, 1, 1, 1)
        h_axis, w_axis = self._hw_axes()
        if self.mode in (HORIZONTAL, HORIZONTAL_AND_VERTICAL):
            images = torch.where(flips, images.flip(w_axis), images)
        if self.mode in (VERTICAL, HORIZONTAL_AND_VERTICAL):
            images = torch.where(flips, images.flip(h_axis), images)
        return images

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed, mode=self.mode)
        return config


class RandomRotation(_WarpLayer):
    """Rotates each image by a random angle in ``factor * 360`` degrees while training.

    Args:
        factor: a float ``f`` (angles in ``[-f, f] * 360``) or a pair ``(lower, upper)``.
        fill_mode: "reflect", "wrap", "constant" or "nearest" for points outside the image.
        interpolation: "bilinear" or "nearest".

    Example:
        >>> RandomRotation(0.1, seed=1)(torch.ones(2, 5, 5, 1)).shape
        torch.Size([2, 5, 5, 1])
    """

    def __init__(
        self,
        factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        data_format=None,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = factor_pair("RandomRotation", factor)

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch = images.shape[0]
        height, width = self._hw(images)
        angle = self._uniform((batch,), self.factor[0] * 360.0, self.factor[1] * 360.0)
        zeros, ones = torch.zeros_like(angle), torch.ones_like(angle)
        matrix = affine_matrix(angle, zeros, zeros, ones, zeros, zeros, height, width)
        return {
            "angle": angle,
            "rotation_matrix": matrix,
            "image_height": height,
            "image_width": width,
            "batch_size": batch,
        }

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        return self._warp(images, transformation["rotation_matrix"])

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config


class RandomZoom(_WarpLayer):
    """Zooms each image in or out by a random factor while training.

    ``height_factor=0.2`` zooms the height by a factor in ``[0.8, 1.2]`` (negative values zoom
    in); ``width_factor=None`` keeps the aspect ratio (the height's factor for both).

    Example:
        >>> RandomZoom(0.2, seed=1)(torch.ones(2, 5, 5, 1)).shape
        torch.Size([2, 5, 5, 1])
    """

    def __init__(
        self,
        height_factor,
        width_factor=None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        data_format=None,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_lower, self.height_upper = symmetric_pair(
            "RandomZoom", height_factor, "height_factor", low_open=True
        )
        if width_factor is not None:
            self.width_lower, self.width_upper = symmetric_pair(
                "RandomZoom", width_factor, "width_factor", low_open=True
            )

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        shape = (images.shape[0], 1)
        height_zoom = self._uniform(shape, 1.0 + self.height_lower, 1.0 + self.height_upper)
        if self.width_factor is not None:
            width_zoom = self._uniform(shape, 1.0 + self.width_lower, 1.0 + self.width_upper)
        else:
            width_zoom = height_zoom
        return {
            "height_zoom": height_zoom,
            "width_zoom": width_zoom,
            "input_shape": tuple(images.shape),
        }

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        height, width = self._hw(images)
        zx = transformation["width_zoom"].reshape(-1, 1).float()
        zy = transformation["height_zoom"].reshape(-1, 1).float()
        x_offset = (width - 1.0) / 2.0 * (1.0 - zx)
        y_offset = (height - 1.0) / 2.0 * (1.0 - zy)
        zeros = torch.zeros_like(zx)
        matrix = torch.cat([zx, zeros, x_offset, zeros, zy, y_offset, zeros, zeros], dim=1)
        return self._warp(images, matrix)

    def get_config(self):
        config = super().get_config()
        config.update(height_factor=self.height_factor, width_factor=self.width_factor)
        return config


class RandomTranslation(_WarpLayer):
    """Shifts each image by a random fraction of its height and width while training.

    Example:
        >>> RandomTranslation(0.1, 0.1, seed=1)(torch.ones(2, 5, 5, 1)).shape
        torch.Size([2, 5, 5, 1])
    """

    def __init__(
        self,
        height_factor,
        width_factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        data_format=None,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        name = "RandomTranslation"
        self.height_lower, self.height_upper = symmetric_pair(name, height_factor, "height_factor")
        self.width_lower, self.width_upper = symmetric_pair(name, width_factor, "width_factor")

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch = images.shape[0]
        height, width = self._hw(images)
        dy = self._uniform((batch, 1), self.height_lower, self.height_upper) * height
        dx = self._uniform((batch, 1), self.width_lower, self.width_upper) * width
        return {"translations": torch.cat([dx, dy], 1).float(), "input_shape": tuple(images.shape)}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        t = transformation["translations"].float()
        ones, zeros = torch.ones_like(t[:, :1]), torch.zeros_like(t[:, :1])
        matrix = torch.cat([ones, zeros, -t[:, :1], zeros, ones, -t[:, 1:], zeros, zeros], 1)
        return self._warp(images, matrix)

    def get_config(self):
        config = super().get_config()
        config.update(height_factor=self.height_factor, width_factor=self.width_factor)
        return config


def _shear_pair(factor, name: str) -> tuple:
    if isinstance(factor, (tuple, list)):
        return symmetric_pair("RandomShear", factor, name)
    return symmetric_pair("RandomShear", factor, name, low=0.0)


class RandomShear(_WarpLayer):
    """Shears each image along x and/or y by a random factor while training.

    Example:
        >>> RandomShear(x_factor=0.2, seed=1)(torch.ones(2, 5, 5, 1)).shape
        torch.Size([2, 5, 5, 1])
    """

    def __init__(
        self,
        x_factor=0.0,
        y_factor=0.0,
        interpolation="bilinear",
        fill_mode="reflect",
        fill_value=0.0,
        data_format=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        # Keras checks pair entries against [0, 1], so its own config (x_factor=(-f, f)) does
        # not load back; here a pair's entries may lie in [-1, 1].
        self.x_factor = _shear_pair(x_factor, "x_factor")
        self.y_factor = _shear_pair(y_factor, "y_factor")

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        shape = (images.shape[0], 1)
        invert = torch.where(self._uniform(shape) > 0.5, -1.0, 1.0)
        shear_y = self._uniform(shape, self.y_factor[0], self.y_factor[1])
        shear_x = self._uniform(shape, self.x_factor[0], self.x_factor[1])
        shear = torch.cat([shear_x, shear_y], dim=1) * invert
        return {"shear_factor": shear, "input_shape": tuple(images.shape)}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        s = transformation["shear_factor"].float()
        ones, zeros = torch.ones_like(s[:, 0]), torch.zeros_like(s[:, 0])
        matrix = torch.stack([ones, s[:, 0], zeros, s[:, 1], ones, zeros, zeros, zeros], 1)
        return self._warp(images, matrix)

    def get_config(self):
        config = super().get_config()
        config.update(x_factor=self.x_factor, y_factor=self.y_factor)
        return config


class RandomCrop(AugmentationLayer):
    """Crops a random ``(height, width)`` window while training; one window per batch, as in
    Keras. Images smaller than the window are centre-cropped to its aspect ratio and resized.

    At inference (``training=False``) the images are centre-cropped to the window's aspect
    ratio and resized to it, as Keras documents (Keras 3.15 returns them unchanged).

    Example:
        >>> RandomCrop(2, 3, seed=1)(torch.ones(2, 4, 5, 1)).shape
        torch.Size([2, 2, 3, 1])
    """

    def __init__(self, height, width, seed=None, data_format=None, name=None, **kwargs):
        from distkeras.random.seed_generator import make_default_seed

        super().__init__(seed=seed, data_format=data_format, name=name, **kwargs)
        for arg, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"RandomCrop: `{arg}` must be a positive int. Received: {value!r}")
        self.height, self.width = height, width
        # Keras keeps a random seed in the config of an unseeded RandomCrop.
        self.seed = seed if seed is not None else make_default_seed()
        self.supports_masking = False

    def inference(self, images):
        # Keras documents a centre crop at inference (3.15's code returns the images
        # uncropped, against its own compute_output_shape): the documented behaviour, so a
        # model's predict, and fit's first build pass, see the shape the layers were built on.
        unbatched = images.ndim == 3
        batch = images.unsqueeze(0) if unbatched else images
        window = self.get_random_transformation(batch, training=False)
        out = self.transform_images(batch, window, training=True)
        return out[0] if unbatched else out

    def get_random_transformation(self, images, training=True, seed=None):
        in_h, in_w = self._hw(images)
        if training and in_h > self.height and in_w > self.width:
            # One window for the whole batch: a batch-level draw, the same on every worker.
            h_start = int(self._uniform((), 0.0, float(in_h - self.height + 1), per_sample=False))
            w_start = int(self._uniform((), 0.0, float(in_w - self.width + 1), per_sample=False))
        else:
            crop_h = max(min(in_h, int(float(in_w * self.height) / self.width)), 1)
            crop_w = max(min(in_w, int(float(in_h * self.width) / self.height)), 1)
            h_start, w_start = int((in_h - crop_h) / 2), int((in_w - crop_w) / 2)
        return (h_start, w_start)

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        h0, w0 = (int(v) for v in transformation)
        if self.data_format == "channels_last":
            images = images[..., h0 : h0 + self.height, w0 : w0 + self.width, :]
        else:
            images = images[..., h0 : h0 + self.height, w0 : w0 + self.width]
        if self._hw(images) != (self.height, self.width):
            images = image_ops.resize(
                images, (self.height, self.width), data_format=self.data_format
            )
        return images

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        h_axis, w_axis = self._hw_axes()
        shape[h_axis], shape[w_axis] = self.height, self.width
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, seed=self.seed)
        return config
