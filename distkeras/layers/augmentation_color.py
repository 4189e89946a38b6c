"""Colour augmentation layers of ``keras.layers``: RandomContrast, RandomBrightness,
RandomGrayscale, RandomInvert, RandomColorDegeneration, RandomSaturation, RandomHue and
RandomColorJitter.

Each keeps Keras 3.15's parameter rules, including its quirks (RandomContrast(0.2) draws
factors in [1, 1.2]; RandomSaturation clips the saturation channel to ``value_range``), so a
ported model augments as it did. Every image's parameters are drawn per sample.
"""

from __future__ import annotations

import torch

from distkeras.layers.augmentation_base import (
    AugmentationLayer,
    factor_pair,
    to_range,
    value_range_pair,
    where_batch,
)
from distkeras.ops import image as image_ops

__all__ = [
    "RandomContrast",
    "RandomBrightness",
    "RandomGrayscale",
    "RandomInvert",
    "RandomColorDegeneration",
    "RandomSaturation",
    "RandomHue",
    "RandomColorJitter",
]

_EPSILON = 1e-7  # keras.config.epsilon()


class _ColorLayer(AugmentationLayer):
    """A colour layer: ``factor`` (Keras's base rule with ``_BOUNDS``) and ``value_range``."""

    _BOUNDS = (-1, 1)
    _SORT_RANGE = True

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        name = type(self).__name__
        self.factor = factor_pair(name, factor, self._BOUNDS)
        checked = value_range_pair(name, value_range)
        self.value_range = checked if self._SORT_RANGE else tuple(value_range)

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, value_range=self.value_range, seed=self.seed)
        return config


class RandomContrast(_ColorLayer):
    """Scales each image's deviation from its per-channel mean by a random factor.

    As in Keras 3.15, ``factor=f`` draws contrast factors in ``[1 - 0, 1 + f]`` (a pair
    ``(lower, upper)`` in [0, 1] draws in ``[1 - lower, 1 + upper]``); results are clipped to
    ``value_range``.

    Example:
        >>> RandomContrast(0.5, seed=1)(torch.rand(2, 4, 4, 3) * 255).shape
        torch.Size([2, 4, 4, 3])
    """

    _BOUNDS = (0, 1)
    _SORT_RANGE = False

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(factor, value_range, seed, **kwargs)

    def get_random_transformation(self, images, training=True, seed=None):
        shape = (images.shape[0], 1, 1, 1)
        if not training:
            return {"contrast_factor": torch.zeros(shape, device=images.device)}
        factor = self._uniform(shape, 1.0 - self.factor[0], 1.0 + self.factor[1])
        return {"contrast_factor": factor}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        factor = transformation["contrast_factor"].to(images)
        mean = images.mean(dim=self._hw_axes(), keepdim=True)
        outputs = (images - mean) * factor + mean
        return outputs.clamp(self.value_range[0], self.value_range[1])


class RandomBrightness(_ColorLayer):
    """Adds a random offset, ``factor * (value_range width)``, to each image; clipped to
    ``value_range``.

    Example:
        >>> RandomBrightness(0.2, seed=1)(torch.rand(2, 4, 4, 3) * 255).shape
        torch.Size([2, 4, 4, 3])
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(factor, value_range, seed, **kwargs)

    def get_random_transformation(self, images, training=True, seed=None):
        shape = (images.shape[0], 1, 1, 1)
        if not training:
            return {"rgb_delta": torch.zeros(shape, device=images.device)}
        delta = self._uniform(shape, self.factor[0], self.factor[1])
        return {"rgb_delta": delta * (self.value_range[1] - self.value_range[0])}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        images = images + transformation["rgb_delta"].to(images)
        return images.clamp(self.value_range[0], self.value_range[1])


class RandomGrayscale(AugmentationLayer):
    """Turns each image to grayscale (kept with its channel count) with probability
    ``factor``.

    Example:
        >>> RandomGrayscale(0.5, seed=1)(torch.rand(2, 4, 4, 3)).shape
        torch.Size([2, 4, 4, 3])
    """

    def __init__(self, factor=0.5, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 1:
            raise ValueError(f"`factor` should be between 0 and 1. Received: factor={factor!r}")
        self.factor = factor

    def get_random_transformation(self, images, training=True, seed=None):
        return (self._uniform((images.shape[0],)) < self.factor).reshape(-1, 1, 1, 1)

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        gray = image_ops.rgb_to_grayscale(images, data_format=self.data_format)
        return torch.where(transformation, gray, images)

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config


class RandomInvert(_ColorLayer):
    """Inverts each image (``value_range[1] - x``) with a probability drawn in ``factor``.

    Example:
        >>> RandomInvert(seed=1)(torch.rand(2, 4, 4, 3) * 255).shape
        torch.Size([2, 4, 4, 3])
    """

    _BOUNDS = (0, 1)
    _SORT_RANGE = False

    def __init__(self, factor=1.0, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(factor, value_range, seed, data_format, **kwargs)

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch = images.shape[0]
        probability = self._uniform((batch,), self.factor[0], self.factor[1])
        threshold = self._uniform((batch,))
        return {"apply_inversion": threshold < probability}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        return where_batch(transformation["apply_inversion"], self.value_range[1] - images, images)


class RandomColorDegeneration(_ColorLayer):
    """Blends each image towards its grayscale version by a random factor.

    Example:
        >>> RandomColorDegeneration(0.5, seed=1)(torch.rand(2, 4, 4, 3) * 255).shape
        torch.Size([2, 4, 4, 3])
    """

    def get_random_transformation(self, images, training=True, seed=None):
        shape = (images.shape[0], 1, 1, 1)
        return {"factor": self._uniform(shape, self.factor[0], self.factor[1])}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        factor = transformation["factor"].to(images)
        gray = image_ops.rgb_to_grayscale(images, data_format=self.data_format)
        images = images + factor * (gray - images)
        return images.clamp(self.value_range[0], self.value_range[1])

    def compute_output_shape(self, input_shape):
        channels = input_shape[self._channel_axis()]
        if channels is not None and channels != 3:
            raise ValueError(
                f"Input images must have 3 channels, but received images with {channels} channels."
            )
        return input_shape


def _hsv_channels(images: torch.Tensor, data_format: str) -> tuple[torch.Tensor, ...]:
    axis = -3 if data_format == "channels_first" else -1
    return tuple(images.unbind(axis))


def _stack_hsv(h, s, v, data_format: str) -> torch.Tensor:
    return torch.stack([h, s, v], dim=-3 if data_format == "channels_first" else -1)


class RandomSaturation(_ColorLayer):
    """Scales each image's saturation by a random factor (0 gives grayscale, 1 the most
    saturated), through HSV.

    Example:
        >>> RandomSaturation(0.5, seed=1)(torch.rand(2, 4, 4, 3)).shape
        torch.Size([2, 4, 4, 3])
    """

    def get_random_transformation(self, images, training=True, seed=None):
        factor = self._uniform((images.shape[0],), self.factor[0], self.factor[1])
        return {"factor": factor / (1 - factor + _EPSILON)}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        factor = transformation["factor"].to(images).reshape(-1, 1, 1)
        hsv = image_ops.rgb_to_hsv(images, data_format=self.data_format)
        h, s, v = _hsv_channels(hsv, self.data_format)
        s = (s * factor).clamp(self.value_range[0], self.value_range[1])
        return image_ops.hsv_to_rgb(_stack_hsv(h, s, v, self.data_format), self.data_format)


class RandomHue(_ColorLayer):
    """Rotates each image's hue by a random amount up to ``factor`` half-turns, through HSV.

    Example:
        >>> RandomHue(0.5, seed=1)(torch.rand(2, 4, 4, 3) * 255).shape
        torch.Size([2, 4, 4, 3])
    """

    _BOUNDS = (0, 1)
    _SORT_RANGE = False

    def get_random_transformation(self, images, training=True, seed=None):
        batch = images.shape[0]
        invert = torch.where(self._uniform((batch,)) > 0.5, -1.0, 1.0)
        factor = self._uniform((batch,), self.factor[0], self.factor[1])
        return {"factor": invert * factor * 0.5}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        images = to_range(images, self.value_range, (0, 1))
        factor = transformation["factor"].to(images).reshape(-1, 1, 1)
        hsv = image_ops.rgb_to_hsv(images, data_format=self.data_format)
        h, s, v = _hsv_channels(hsv, self.data_format)
        h = h + factor
        h = torch.where(h > 1.0, h - 1.0, h)
        h = torch.where(h < 0.0, h + 1.0, h)
        rgb = image_ops.hsv_to_rgb(_stack_hsv(h, s, v, self.data_format), self.data_format)
        return to_range(rgb.clamp(0, 1), (0, 1), self.value_range)


class RandomColorJitter(AugmentationLayer):
    """RandomBrightness, RandomContrast, RandomSaturation and RandomHue in that order, each
    present when its factor is given.

    Example:
        >>> RandomColorJitter(brightness_factor=0.2, seed=1)(torch.rand(2, 4, 4, 3)).shape
        torch.Size([2, 4, 4, 3])
    """

    def __init__(
        self,
        value_range=(0, 255),
        brightness_factor=None,
        contrast_factor=None,
        saturation_factor=None,
        hue_factor=None,
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.value_range = tuple(value_range)
        self.brightness_factor, self.contrast_factor = brightness_factor, contrast_factor
        self.saturation_factor, self.hue_factor = saturation_factor, hue_factor
        common = {"value_range": value_range, "seed": seed}
        fmt = {"data_format": self.data_format}
        stages = [
            cls(factor, **common, **extra)
            for cls, factor, extra in (
                (RandomBrightness, brightness_factor, {}),
                (RandomContrast, contrast_factor, {}),
                (RandomSaturation, saturation_factor, fmt),
                (RandomHue, hue_factor, fmt),
            )
            if factor is not None
        ]
        self._stage_names = []
        for stage in stages:  # registered submodules: their generators join the model's
            self._stage_names.append(type(stage).__name__.lower())
            self.add_module(self._stage_names[-1], stage)

    def get_random_transformation(self, images, training=True, seed=None):
        return None  # each stage draws on the output of the one before, as in Keras

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        for stage in (getattr(self, name) for name in self._stage_names):
            images = stage.transform_images(images, stage.get_random_transformation(images))
        return images

    def get_config(self):
        config = super().get_config()
        config.update(
            value_range=self.value_range,
            brightness_factor=self.brightness_factor,
            contrast_factor=self.contrast_factor,
            saturation_factor=self.saturation_factor,
            hue_factor=self.hue_factor,
            seed=self.seed,
        )
        return config
