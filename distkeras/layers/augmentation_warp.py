"""Non-affine warps of ``keras.layers``: RandomPerspective and RandomElasticTransform.

RandomElasticTransform draws its two displacement fields per sample from the layer's stream
(Keras draws them inside ``ops.image.elastic_transform`` for the whole batch), so every
sample's distortion is its own whichever worker holds it. A transformation dict carrying a
``seed`` instead of ``fields`` (what Keras's ``get_random_transformation`` returns) goes
through ``ops.image.elastic_transform`` with that seed, as Keras does.
"""

from __future__ import annotations

import torch

from distkeras.layers.augmentation_base import (
    INTERPOLATIONS,
    AugmentationLayer,
    check_choice,
    factor_pair,
    where_batch,
)
from distkeras.ops import image as image_ops
from distkeras.ops.image_util import gaussian_blur_nchw
from distkeras.ops.image_warp import _grid, _interpolation, _warp

__all__ = ["RandomPerspective", "RandomElasticTransform"]


class RandomPerspective(AugmentationLayer):
    """Moves each image's corners by random amounts up to ``scale / 2`` of the image (with
    probability drawn in ``factor``) and warps it accordingly.

    Example:
        >>> RandomPerspective(seed=1)(torch.rand(2, 6, 6, 3)).shape
        torch.Size([2, 6, 6, 3])
    """

    def __init__(
        self,
        factor=1.0,
        scale=1.0,
        interpolation="bilinear",
        fill_value=0.0,
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = factor_pair("RandomPerspective", factor, (0, 1))
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 1:
            raise ValueError(
                "The `scale` argument should be a number in the range [0,1]. "
                f"Received: scale={scale}"
            )
        check_choice("RandomPerspective", "interpolation", interpolation, INTERPOLATIONS)
        self.scale, self.fill_value, self.interpolation = scale, fill_value, interpolation

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch = images.shape[0]
        height, width = self._hw(images)
        probability = self._uniform((batch,), self.factor[0], self.factor[1])
        apply = self._uniform((batch,)) < probability
        offsets = self._uniform((batch, 4, 2), -0.5 * self.scale, 0.5 * self.scale)
        corners = [[0.0, 0.0], [width - 1, 0.0], [0.0, height - 1], [width - 1, height - 1]]
        start = torch.tensor([corners], dtype=offsets.dtype, device=offsets.device)
        start = start.expand(batch, 4, 2)
        return {
            "apply_perspective": apply,
            "start_points": start,
            "end_points": start + start * offsets,
            "input_shape": tuple(images.shape),
        }

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        warped = image_ops.perspective_transform(
            images,
            transformation["start_points"],
            transformation["end_points"],
            interpolation=self.interpolation,
            fill_value=self.fill_value,
            data_format=self.data_format,
        )
        return where_batch(transformation["apply_perspective"], warped, images)

    def get_config(self):
        config = super().get_config()
        config.update(
            factor=self.factor,
            scale=self.scale,
            interpolation=self.interpolation,
            fill_value=self.fill_value,
            seed=self.seed,
        )
        return config


class RandomElasticTransform(AugmentationLayer):
    """Distorts each image (with probability drawn in ``factor``) by smoothed random
    displacement fields; ``scale`` sets their strength (alpha = 0.1 * scale * max(h, w),
    sigma = 0.05 * scale * min(h, w), as in Keras).

    Example:
        >>> RandomElasticTransform(seed=1)(torch.rand(2, 8, 8, 3) * 255).shape
        torch.Size([2, 8, 8, 3])
    """

    _FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")

    def __init__(
        self,
        factor=1.0,
        scale=1.0,
        interpolation="bilinear",
        fill_mode="reflect",
        fill_value=0.0,
        value_range=(0, 255),
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        name = "RandomElasticTransform"
        self.factor = factor_pair(name, factor, (0, 1))
        self.scale = factor_pair(name, scale, (0, 1), name="scale")
        check_choice(name, "interpolation", interpolation, INTERPOLATIONS)
        check_choice(name, "fill_mode", fill_mode, self._FILL_MODES)
        self.interpolation, self.fill_mode, self.fill_value = interpolation, fill_mode, fill_value
        self.value_range = tuple(value_range)

    def _params(self, height: int, width: int, factor) -> tuple[float, float]:
        factor = float(factor)
        return max(height, width) * 0.1 * factor, min(height, width) * 0.05 * factor

    def get_random_transformation(self, images, training=True, seed=None):
        if not training or self.scale[1] == 0 or self.factor[1] == 0:
            return None
        batch = images.shape[0]
        height, width = self._hw(images)
        probability = self._uniform((batch,), self.factor[0], self.factor[1])
        apply = self._uniform((batch,)) < probability
        # One strength for the batch, as Keras: a batch-level draw.
        distortion = self._uniform((), self.scale[0], self.scale[1], per_sample=False)
        fields = self._normal((batch, 2, height, width))
        return {"apply_transform": apply, "distortion_factor": distortion, "fields": fields}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        height, width = self._hw(images)
        alpha, sigma = self._params(height, width, transformation["distortion_factor"])
        if "fields" in transformation:
            warped = self._elastic(images, transformation["fields"].to(images), alpha, sigma)
        else:
            warped = image_ops.elastic_transform(
                images,
                alpha=alpha,
                sigma=sigma,
                interpolation=self.interpolation,
                fill_mode=self.fill_mode,
                fill_value=self.fill_value,
                seed=transformation["seed"],
                data_format=self.data_format,
            )
        images = where_batch(transformation["apply_transform"], warped, images)
        return images.clamp(self.value_range[0], self.value_range[1])

    def _elastic(self, images, noise, alpha: float, sigma: float) -> torch.Tensor:
        """``ops.image.elastic_transform`` on given unit-normal fields (batch, 2, h, w)."""
        x = images if self.data_format == "channels_last" else images.permute(0, 2, 3, 1)
        size = int(6 * sigma) | 1
        fields = gaussian_blur_nchw(noise * sigma, (size, size), (sigma, sigma))
        ys, xs = _grid(x.shape[1], x.shape[2], x.dtype, x.device)
        y_in, x_in = ys + alpha * fields[:, 1], xs + alpha * fields[:, 0]
        out = _warp(
            x, y_in, x_in, _interpolation(self.interpolation), self.fill_mode, self.fill_value
        )
        return out if self.data_format == "channels_last" else out.permute(0, 3, 1, 2)

    def get_config(self):
        config = super().get_config()
        config.update(
            factor=self.factor,
            scale=self.scale,
            interpolation=self.interpolation,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
            value_range=self.value_range,
            seed=self.seed,
        )
        return config
