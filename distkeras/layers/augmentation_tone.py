"""Tone and filter layers of ``keras.layers``: AutoContrast, Equalization, Solarization,
RandomPosterization, RandomSharpness, RandomGaussianBlur, MaxNumBoundingBoxes and
ContrastLimitedAdaptiveHistogramEqualization.

As in Keras 3.15: AutoContrast and ContrastLimitedAdaptiveHistogramEqualization apply in
training and inference; Equalization and Solarization only while training. Equalization's
histogram is Keras's, one per channel over the whole batch, so under N workers it is taken over
each worker's part of the batch (the only layer here whose result depends on its batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras.layers.augmentation_base import (
    AugmentationLayer,
    factor_pair,
    to_range,
    value_range_pair,
    where_batch,
)
from distkeras.ops import image as image_ops

__all__ = [
    "AutoContrast",
    "Equalization",
    "Solarization",
    "RandomPosterization",
    "RandomSharpness",
    "RandomGaussianBlur",
    "MaxNumBoundingBoxes",
    "ContrastLimitedAdaptiveHistogramEqualization",
]


class AutoContrast(AugmentationLayer):
    """Stretches each image's values, per channel, to fill ``value_range``; always applied.

    Example:
        >>> AutoContrast()(torch.arange(4.0).reshape(1, 2, 2, 1)).flatten()
        tensor([  0.,  85., 170., 255.])
    """

    _ALWAYS, _RANDOM = True, False

    def __init__(self, value_range=(0, 255), **kwargs):
        super().__init__(**kwargs)
        self.value_range = value_range_pair("AutoContrast", value_range)

    def transform_images(self, images, transformation=None, training=True):
        original = images
        images = to_range(images, self.value_range, (0, 255))
        # Keras reduces over axes 1 and 2 whatever the data format.
        low = images.amin(dim=(1, 2), keepdim=True)
        high = images.amax(dim=(1, 2), keepdim=True)
        scale = 255.0 / (high - low)
        results = (images * scale - low * scale).clamp(0.0, 255.0)
        results = to_range(results, (0, 255), self.value_range)
        return torch.where(torch.isnan(results), original, results)

    def get_config(self):
        config = super().get_config()
        config["value_range"] = self.value_range
        return config


class Equalization(AugmentationLayer):
    """Histogram equalization per channel (``bins`` bins over ``value_range``) while
    training, as in Keras: one histogram per channel over the whole batch.

    Example:
        >>> Equalization()(torch.rand(2, 4, 4, 3) * 255, training=True).shape
        torch.Size([2, 4, 4, 3])
    """

    _RANDOM = False

    def __init__(self, value_range=(0, 255), bins=256, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.bins = bins
        self.value_range = value_range_pair("Equalization", value_range)

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        axis = self._channel_axis()
        channels = images.movedim(axis, 0).reshape(images.shape[axis], -1)  # (C, pixels)
        scaled = tuple(self.value_range) != (0, 255)
        if scaled:
            channels = to_range(channels, self.value_range, (0, 255))
        bins = self.bins
        index = (channels * (bins - 1) / 255.0).to(torch.int32).clamp(0, bins - 1).long()
        offsets = torch.arange(channels.shape[0], device=images.device).unsqueeze(1) * bins
        hist = torch.bincount((index + offsets).flatten(), minlength=channels.shape[0] * bins)
        hist = hist.reshape(channels.shape[0], bins)
        cdf = hist.cumsum(1)
        # The first non-zero entry of each channel's cdf.
        cdf_min = cdf.gather(1, (cdf > 0).to(torch.int8).argmax(1, keepdim=True))
        denominator = cdf[:, -1:] - cdf_min
        denominator = torch.where(denominator == 0, torch.ones_like(denominator), denominator)
        table = torch.round((cdf - cdf_min) * 255 / denominator).clamp(0, 255).to(images.dtype)
        lookup = (channels / 255.0 * (bins - 1)).clamp(0, bins - 1).to(torch.int32).long()
        equalized = table.gather(1, lookup)
        keep = (hist > 0).sum(1, keepdim=True) <= 1
        equalized = torch.where(keep, channels, equalized)
        if scaled:
            equalized = to_range(equalized, (0, 255), self.value_range)
        moved = images.movedim(axis, 0).shape
        return equalized.reshape(moved).movedim(0, axis)

    def get_config(self):
        config = super().get_config()
        config.update(bins=self.bins, value_range=self.value_range)
        return config


def _zero_one_pair(layer: str, factor, name: str) -> tuple:
    msg = (
        f"{layer}: the `addition_factor` and `threshold_factor` arguments should be a number "
        f"(or a list of two numbers) in the range [0, 1]. Received: {name}={factor!r}"
    )
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(0 <= f <= 1 for f in factor):
            raise ValueError(msg)
        return tuple(sorted(factor))
    if isinstance(factor, (int, float)) and not isinstance(factor, bool) and 0 <= factor <= 1:
        return (0, factor)
    raise ValueError(msg)


class Solarization(AugmentationLayer):
    """Inverts the values above a random threshold, after adding a random amount, while
    training. With the defaults every value is inverted (``255 - x`` in ``[0, 255]`` units).

    As in Keras, the draws are ``uniform(lower, upper * 255)`` for both factors.

    Example:
        >>> Solarization()(torch.zeros(1, 2, 2, 1), training=True).flatten()
        tensor([255., 255., 255., 255.])
    """

    def __init__(
        self, addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255), seed=None, **kwargs
    ):
        super().__init__(seed=seed, **kwargs)
        self.addition_factor = _zero_one_pair("Solarization", addition_factor, "addition_factor")
        self.threshold_factor = _zero_one_pair("Solarization", threshold_factor, "threshold_factor")
        self.value_range = value_range_pair("Solarization", value_range)

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        shape = (images.shape[0], 1, 1, 1)
        add, thr = self.addition_factor, self.threshold_factor
        return {
            "additions": self._uniform(shape, add[0], add[1] * 255),
            "thresholds": self._uniform(shape, thr[0], thr[1] * 255),
        }

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        images = to_range(images, self.value_range, (0, 255))
        results = (images + transformation["additions"].to(images)).clamp(0, 255)
        results = torch.where(
            results < transformation["thresholds"].to(images), results, 255 - results
        )
        return to_range(results, (0, 255), self.value_range)

    def get_config(self):
        config = super().get_config()
        config.update(
            value_range=self.value_range,
            addition_factor=self.addition_factor,
            threshold_factor=self.threshold_factor,
            seed=self.seed,
        )
        return config


class RandomPosterization(AugmentationLayer):
    """Keeps a random number of high bits (in ``factor``'s range, 1..8) of each image's
    8-bit values while training.

    Example:
        >>> RandomPosterization(4, seed=1)(torch.rand(2, 4, 4, 3) * 255).shape
        torch.Size([2, 4, 4, 3])
    """

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = factor_pair("RandomPosterization", factor, (1, 8))
        self.value_range = value_range_pair("RandomPosterization", value_range)

    def get_random_transformation(self, images, training=True, seed=None):
        batch = images.shape[0]
        low, high = self.factor
        if low != high:  # randint(low, high): high excluded, as in Keras
            bits = low + (self._uniform((batch,)) * (high - low)).floor().clamp(max=high - low - 1)
        else:
            bits = torch.full((batch,), float(low), device=images.device)
        return {"shift_factor": (8 - bits).to(torch.uint8)}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        dtype = images.dtype
        shift = transformation["shift_factor"].to(torch.uint8).reshape(-1, 1, 1, 1)
        values = to_range(images, self.value_range, (0, 255)).to(torch.uint8)
        values = (values >> shift) << shift
        return to_range(values.to(dtype), (0, 255), self.value_range)

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, value_range=self.value_range, seed=self.seed)
        return config


class RandomSharpness(AugmentationLayer):
    """Sharpens (factor > 0.5) or blurs each image by a random factor while training.

    Example:
        >>> RandomSharpness(0.5, seed=1)(torch.rand(2, 4, 4, 3) * 255).shape
        torch.Size([2, 4, 4, 3])
    """

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = factor_pair("RandomSharpness", factor, (0, 1))
        self.value_range = value_range_pair("RandomSharpness", value_range)

    def get_random_transformation(self, images, training=True, seed=None):
        return {"factor": self._uniform((images.shape[0],), self.factor[0], self.factor[1])}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        x = images if self.data_format == "channels_first" else images.permute(0, 3, 1, 2)
        factor = (transformation["factor"] * 2).to(images).reshape(-1, 1, 1, 1)
        a, b = 1.0 / 13.0, 5.0 / 13.0
        kernel = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], dtype=x.dtype, device=x.device)
        channels = x.shape[1]
        smoothed = F.conv2d(x, kernel.expand(channels, 1, 3, 3), padding=1, groups=channels)
        x = (x + (1.0 - factor) * (smoothed - x)).clamp(self.value_range[0], self.value_range[1])
        return x if self.data_format == "channels_first" else x.permute(0, 2, 3, 1)

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, value_range=self.value_range, seed=self.seed)
        return config


def _odd_pair(value, name: str) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"The `{name}` argument should be a number (or a list of two numbers) "
                f"Received: {name}={value}"
            )
        pair = tuple(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        pair = (value, value)
    else:
        raise ValueError(f"{name} must be an odd number. Received: {name}={value}")
    if pair[0] % 2 == 0 or pair[1] % 2 == 0:
        raise ValueError(f"{name} must be an odd number. Received: {name}={value}")
    return pair


class RandomGaussianBlur(AugmentationLayer):
    """Blurs each image, with probability drawn in ``factor``, by a Gaussian kernel whose
    sigma is drawn (once per batch, as in Keras) in ``sigma``.

    Example:
        >>> RandomGaussianBlur(seed=1)(torch.rand(2, 5, 5, 3) * 255).shape
        torch.Size([2, 5, 5, 3])
    """

    def __init__(
        self,
        factor=1.0,
        kernel_size=3,
        sigma=1.0,
        value_range=(0, 255),
        data_format=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = factor_pair("RandomGaussianBlur", factor, (0, 1))
        self.kernel_size = _odd_pair(kernel_size, "kernel_size")
        self.sigma = factor_pair("RandomGaussianBlur", sigma, (0, 1), name="sigma")
        self.value_range = tuple(value_range)

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch = images.shape[0]
        probability = self._uniform((batch,), self.factor[0], self.factor[1])
        threshold = self._uniform((batch,))
        # One sigma pair for the batch: a batch-level draw, the same on every worker.
        sigma = self._uniform((2,), self.sigma[0], self.sigma[1], per_sample=False) + 1e-6
        return {"should_apply_blur": threshold < probability, "blur_factor": sigma}

    def transform_images(self, images, transformation=None, training=True):
        if not training or transformation is None:
            return images
        blurred = image_ops.gaussian_blur(
            images,
            kernel_size=self.kernel_size,
            sigma=transformation["blur_factor"],
            data_format=self.data_format,
        )
        images = where_batch(transformation["should_apply_blur"], blurred, images)
        return images.clamp(self.value_range[0], self.value_range[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            factor=self.factor,
            kernel_size=self.kernel_size,
            sigma=self.sigma,
            value_range=self.value_range,
            seed=self.seed,
        )
        return config


class MaxNumBoundingBoxes(AugmentationLayer):
    """Pads or clips bounding boxes to ``max_number`` per image; images pass unchanged.

    Bounding-box dict inputs are not supported here (NotImplementedError), so on images this
    layer is the identity, as Keras's is.
    """

    _ALWAYS, _RANDOM = True, False

    def __init__(self, max_number, fill_value=-1, **kwargs):
        super().__init__(**kwargs)
        self.max_number, self.fill_value = int(max_number), int(fill_value)

    def transform_images(self, images, transformation=None, training=True):
        return images

    def get_config(self):
        config = super().get_config()
        config["max_number"] = self.max_number
        return config


class ContrastLimitedAdaptiveHistogramEqualization(AugmentationLayer):
    """CLAHE: histogram equalization per tile of a ``tile_grid_size`` grid, each tile's
    histogram clipped at ``clip_limit`` times the mean bin count, the tiles' mappings
    interpolated bilinearly. Applied in training and inference, as in Keras.

    Example:
        >>> ContrastLimitedAdaptiveHistogramEqualization()(torch.rand(1, 16, 16, 1) * 255).shape
        torch.Size([1, 16, 16, 1])
    """

    _ALWAYS, _RANDOM = True, False

    def __init__(
        self,
        value_range=(0, 255),
        clip_limit=4.0,
        tile_grid_size=(8, 8),
        data_format=None,
        **kwargs,
    ):
        super().__init__(data_format=data_format, **kwargs)
        self.value_range, self.clip_limit = tuple(value_range), clip_limit
        self.tile_grid_size = tuple(tile_grid_size)

    def transform_images(self, images, transformation=None, training=True):
        dtype = images.dtype
        x = images.permute(0, 2, 3, 1) if self.data_format == "channels_first" else images
        x = to_range(x.float(), self.value_range, (0, 255))
        x = to_range(self._clahe(x), (0, 255), self.value_range).to(dtype)
        return x.permute(0, 3, 1, 2) if self.data_format == "channels_first" else x

    def _clahe(self, images: torch.Tensor) -> torch.Tensor:
        n, height, width, c = images.shape
        gh, gw = self.tile_grid_size
        th, tw = -(-height // gh), -(-width // gw)
        ph, pw = th * gh - height, tw * gw - width
        padded = images
        if ph or pw:  # numpy's "symmetric" padding (edge repeated) at the bottom and right
            rows = torch.cat([torch.arange(height), height - 1 - torch.arange(ph) % height])
            cols = torch.cat([torch.arange(width), width - 1 - torch.arange(pw) % width])
            padded = images[:, rows.to(images.device)][:, :, cols.to(images.device)]
        tiles = padded.reshape(n, gh, th, gw, tw, c).permute(0, 1, 3, 5, 2, 4)
        tiles = tiles.reshape(n, gh, gw, c, th * tw).to(torch.int32).clamp(0, 255).long()
        hists = torch.zeros(n, gh, gw, c, 256, dtype=torch.float32, device=images.device)
        hists.scatter_add_(-1, tiles, torch.ones_like(tiles, dtype=torch.float32))
        if self.clip_limit > 0:
            # Keras counts in int32 and casts the limit to it: the limit is truncated.
            limit = float(int(self.clip_limit * (th * tw) / 256.0))
            clipped = hists.clamp(0, limit)
            hists = clipped + (hists - clipped).sum(-1, keepdim=True) / 256.0
        cdf = hists.cumsum(-1)
        cdf_min = cdf.amin(-1, keepdim=True)
        denominator = th * tw - cdf_min
        denominator = torch.where(denominator == 0, torch.ones_like(denominator), denominator)
        cdf = ((cdf - cdf_min) * 255.0 / denominator).clamp(0, 255)
        # Edge tiles repeated once on every side, so interpolation reaches the borders.
        cdf = torch.cat([cdf[:, :1], cdf, cdf[:, -1:]], 1)
        cdf = torch.cat([cdf[:, :, :1], cdf, cdf[:, :, -1:]], 2)  # (n, gh+2, gw+2, c, 256)

        def axis(length, tile, grid):
            pos = torch.arange(length, dtype=torch.float32, device=images.device) - tile / 2.0
            pos = pos / tile + 1.0
            low = pos.floor()
            weight = pos - low
            return low.clamp(0, grid + 1).long(), (low + 1).clamp(0, grid + 1).long(), weight

        y0, y1, wy = axis(th * gh, th, gh)
        x0, x1, wx = axis(tw * gw, tw, gw)
        pixels = padded.clamp(0, 255).to(torch.int32).long()  # (n, H, W, c)
        b = torch.arange(n, device=images.device)[:, None, None, None]
        ch = torch.arange(c, device=images.device)[None, None, None, :]

        def look(yi, xi):
            return cdf[b, yi[None, :, None, None], xi[None, None, :, None], ch, pixels]

        wy, wx = wy[None, :, None, None], wx[None, None, :, None]
        top = look(y0, x0) * (1.0 - wx) + look(y0, x1) * wx
        bottom = look(y1, x0) * (1.0 - wx) + look(y1, x1) * wx
        return (top * (1.0 - wy) + bottom * wy)[:, :height, :width, :]

    def get_config(self):
        config = super().get_config()
        config.update(
            value_range=self.value_range,
            clip_limit=self.clip_limit,
            tile_grid_size=self.tile_grid_size,
        )
        return config
