"""Mixing and policy augmentation layers of ``keras.layers``: MixUp, CutMix, RandomErasing,
RandAugment and AugMix.

MixUp and CutMix pair each image with another of its batch. Under N workers the partner comes
from the worker's own part of the global batch (no images cross workers): each sample's
weights and boxes are still its own per-sample draws, but the pairing differs from one
worker's, so these two are the layers whose training depends on the worker count. Their
labels are not mixed: Keras mixes labels only for dict inputs, which raise
NotImplementedError here.
"""

from __future__ import annotations

import torch

from distkeras.layers.augmentation_base import (
    AugmentationLayer,
    factor_pair,
    where_batch,
)
from distkeras.layers.augmentation_color import (
    RandomBrightness,
    RandomColorDegeneration,
    RandomContrast,
)
from distkeras.layers.augmentation_geometric import (
    RandomRotation,
    RandomShear,
    RandomTranslation,
)
from distkeras.layers.augmentation_tone import (
    AutoContrast,
    Equalization,
    RandomPosterization,
    RandomSharpness,
    Solarization,
)

__all__ = ["MixUp", "CutMix", "RandomErasing", "RandAugment", "AugMix"]


def _box_mask(layer: AugmentationLayer, images, x0, x1, y0, y1) -> torch.Tensor:
    """Keras's ``_generate_batch_mask``: True inside each image's box, every channel."""
    height, width = layer._hw(images)
    ys = torch.arange(height, dtype=images.dtype, device=images.device)
    xs = torch.arange(width, dtype=images.dtype, device=images.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    grid_y, grid_x = grid_y[None, :, :, None], grid_x[None, :, :, None]
    if layer.data_format == "channels_first":
        grid_y, grid_x = grid_y.permute(0, 3, 1, 2), grid_x.permute(0, 3, 1, 2)
    x0, x1, y0, y1 = (v.reshape(-1, 1, 1, 1) for v in (x0, x1, y0, y1))
    mask = (grid_x >= x0) & (grid_x < x1) & (grid_y >= y0) & (grid_y < y1)
    return mask.expand_as(images) if mask.shape[0] == images.shape[0] else mask


def _crop_bounds(layer, batch: int, length: int, ratio) -> tuple:
    crop = ratio * length
    start = layer._uniform((batch,)) * (length - crop)
    return start, start + crop


def _permutation(layer: AugmentationLayer, batch: int) -> torch.Tensor:
    # A batch-level draw: the same pairing pattern in every worker's part of the batch.
    return layer._uniform((batch,), per_sample=False).argsort()


class MixUp(AugmentationLayer):
    """Blends each image with another of the batch, weight ~ Beta(alpha, alpha).

    Example:
        >>> MixUp(seed=1)(torch.rand(4, 5, 5, 3)).shape
        torch.Size([4, 5, 5, 3])
    """

    def __init__(self, alpha=0.2, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.alpha = alpha

    def get_random_transformation(self, images, training=True, seed=None):
        batch = images.shape[0]
        order = _permutation(self, batch)
        mix_weight = self._beta((batch,), self.alpha, self.alpha)
        return {"mix_weight": mix_weight, "permutation_order": order}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        weight = transformation["mix_weight"].to(images).reshape(-1, 1, 1, 1)
        partner = images[transformation["permutation_order"].long()]
        return weight * images + (1.0 - weight) * partner

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, seed=self.seed)
        return config


class CutMix(AugmentationLayer):
    """Pastes a random box of another image of the batch into each image.

    Example:
        >>> CutMix(seed=1)(torch.rand(4, 5, 5, 3)).shape
        torch.Size([4, 5, 5, 3])
    """

    def __init__(self, factor=1.0, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = factor_pair("CutMix", factor, (0, 1))

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch = images.shape[0]
        height, width = self._hw(images)
        # One concentration for the batch (as Keras), kept on the device: no host read.
        alpha = self._uniform((), self.factor[0], self.factor[1], per_sample=False) + 1e-6
        mix_weight = self._beta((batch,), alpha, alpha)
        ratio = torch.sqrt(1.0 - mix_weight)
        x0, x1 = _crop_bounds(self, batch, width, ratio)
        y0, y1 = _crop_bounds(self, batch, height, ratio)
        masks = _box_mask(self, images, x0, x1, y0, y1)
        mix_weight = 1.0 - (x1 - x0) * (y1 - y0) / (width * height)
        order = _permutation(self, batch)
        return {"permutation_order": order, "batch_masks": masks, "mix_weight": mix_weight}

    def transform_images(self, images, transformation=None, training=True):
        if not training or transformation is None:
            return images
        partner = images[transformation["permutation_order"].long()]
        return torch.where(transformation["batch_masks"], partner, images)

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, seed=self.seed)
        return config


class RandomErasing(AugmentationLayer):
    """Replaces a random box of each image (with probability drawn in ``factor``) by
    ``fill_value``, or by Gaussian noise scaled to ``value_range`` when it is None.

    Example:
        >>> RandomErasing(seed=1)(torch.rand(2, 6, 6, 3) * 255).shape
        torch.Size([2, 6, 6, 3])
    """

    def __init__(
        self,
        factor=1.0,
        scale=(0.02, 0.33),
        fill_value=None,
        value_range=(0, 255),
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = factor_pair("RandomErasing", factor, (0, 1))
        self.scale = factor_pair("RandomErasing", scale, (0, 1), name="scale")
        if fill_value is not None and not (
            isinstance(fill_value, (int, float))
            or (isinstance(fill_value, (tuple, list)) and len(fill_value) == 3)
        ):
            raise ValueError(
                "The `fill_value` argument should be a number (or a list of three numbers). "
                f"Received: fill_value={fill_value!r}"
            )
        self.fill_value, self.value_range = fill_value, tuple(value_range)

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch = images.shape[0]
        height, width = self._hw(images)
        sizes = torch.sqrt(self._uniform((batch, 2), self.scale[0], self.scale[1]))
        x0, x1 = _crop_bounds(self, batch, width, sizes[:, 0])
        y0, y1 = _crop_bounds(self, batch, height, sizes[:, 1])
        masks = _box_mask(self, images, x0, x1, y0, y1)
        probability = self._uniform((batch,), self.factor[0], self.factor[1])
        apply = self._uniform((batch,)) < probability
        if self.fill_value is None:
            fill = self._normal(tuple(images.shape)).to(images) * self.value_range[1]
        else:
            fill = torch.full_like(images, 0.0) + torch.as_tensor(self.fill_value).to(images)
        fill = fill.clamp(self.value_range[0], self.value_range[1])
        return {"apply_erasing": apply, "batch_masks": masks, "fill_value": fill}

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        erased = torch.where(transformation["batch_masks"], transformation["fill_value"], images)
        return where_batch(transformation["apply_erasing"], erased, images)

    def get_config(self):
        config = super().get_config()
        config.update(
            factor=self.factor,
            scale=self.scale,
            fill_value=self.fill_value,
            value_range=self.value_range,
            seed=self.seed,
        )
        return config


def _policy_layers(layer, names, factor, value_range, interpolation, seed, data_format):
    """The sub-layers RandAugment and AugMix choose from, built as Keras builds them."""
    geo = {"interpolation": interpolation, "seed": seed, "data_format": data_format}
    col = {"value_range": value_range, "seed": seed, "data_format": data_format}
    makers = {
        "random_shear": lambda: RandomShear(x_factor=factor, y_factor=factor, **geo),
        "random_translation": lambda: RandomTranslation(factor, factor, **geo),
        "random_rotation": lambda: RandomRotation(factor, **geo),
        "random_brightness": lambda: RandomBrightness(factor, **col),
        "random_color_degeneration": lambda: RandomColorDegeneration(factor, **col),
        "random_contrast": lambda: RandomContrast(factor, **col),
        "random_sharpness": lambda: RandomSharpness(factor, **col),
        "solarization": lambda: Solarization(factor, factor, **col),
        "random_posterization": lambda: RandomPosterization(max(1, int(8 * factor[1])), **col),
        "auto_contrast": lambda: AutoContrast(value_range, data_format=data_format),
        "equalization": lambda: Equalization(value_range, data_format=data_format),
    }
    for name in names:
        layer.add_module(name, makers[name]())  # submodules: their generators join the model's


class RandAugment(AugmentationLayer):
    """Applies ``num_ops`` operations chosen at random (one choice per batch, as in Keras)
    from eleven geometric and colour layers, each with strength ``factor``.

    Example:
        >>> RandAugment(seed=1)(torch.rand(2, 8, 8, 3) * 255).shape
        torch.Size([2, 8, 8, 3])
    """

    _AUGMENT_LAYERS = [
        "random_shear",
        "random_translation",
        "random_rotation",
        "random_brightness",
        "random_color_degeneration",
        "random_contrast",
        "random_sharpness",
        "random_posterization",
        "solarization",
        "auto_contrast",
        "equalization",
    ]

    def __init__(
        self,
        value_range=(0, 255),
        num_ops=2,
        factor=0.5,
        interpolation="bilinear",
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.value_range, self.num_ops = tuple(value_range), num_ops
        self.interpolation = interpolation
        self.factor = factor_pair("RandAugment", factor, (0, 1))
        _policy_layers(
            self, self._AUGMENT_LAYERS, self.factor, value_range, interpolation, seed,
            self.data_format,
        )  # fmt: skip

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        count = len(self._AUGMENT_LAYERS)
        draws = self._uniform((self.num_ops,), per_sample=False)
        layer_idxes = (draws * count).floor().clamp(max=count - 1).long()
        transforms = {
            name: getattr(self, name).get_random_transformation(images)
            for name in self._AUGMENT_LAYERS
        }
        return {"transforms": transforms, "layer_idxes": layer_idxes}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        chosen = [int(i) for i in transformation["layer_idxes"]]  # one host read per batch
        names = list(transformation["transforms"])
        for index in chosen:
            name = names[index]
            images = getattr(self, name).transform_images(
                images, transformation["transforms"][name]
            )
        return images

    def get_config(self):
        config = super().get_config()
        config.update(
            value_range=self.value_range,
            num_ops=self.num_ops,
            factor=self.factor,
            interpolation=self.interpolation,
            seed=self.seed,
        )
        return config


_AUGMIX_ALL = [
    "random_shear",
    "random_translation",
    "random_rotation",
    "random_posterization",
    "solarization",
    "auto_contrast",
    "equalization",
    "random_brightness",
    "random_color_degeneration",
    "random_contrast",
    "random_sharpness",
]
_AUGMIX_BASIC = _AUGMIX_ALL[:7]


class AugMix(AugmentationLayer):
    """AugMix: ``num_chains`` chains of up to ``chain_depth`` random operations, mixed with
    Dirichlet weights and blended with the original by a Beta weight.

    The chains' operations are chosen from this layer's random stream (Keras uses Python's
    ``random``), one choice per batch, so every worker chooses alike.

    Example:
        >>> AugMix(seed=1)(torch.rand(2, 8, 8, 3) * 255).shape
        torch.Size([2, 8, 8, 3])
    """

    def __init__(
        self,
        value_range=(0, 255),
        num_chains=3,
        chain_depth=3,
        factor=0.3,
        alpha=1.0,
        all_ops=True,
        interpolation="bilinear",
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.value_range, self.num_chains = tuple(value_range), num_chains
        self.chain_depth = chain_depth
        self.factor = factor_pair("AugMix", factor, (0, 1))
        self.alpha, self.all_ops, self.interpolation = alpha, all_ops, interpolation
        self._augment_layers = _AUGMIX_ALL if all_ops else _AUGMIX_BASIC
        _policy_layers(
            self, self._augment_layers, self.factor, value_range, interpolation, seed,
            self.data_format,
        )  # fmt: skip

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        gamma = self._gamma((self.num_chains,), self.alpha, per_sample=False)
        weight = self._beta((), self.alpha, self.alpha, per_sample=False)
        options = len(self._augment_layers) + 1  # the last option: no operation
        picks = self._uniform((self.num_chains, self.chain_depth), per_sample=False)
        picks = (picks * options).floor().clamp(max=options - 1).long().tolist()
        chains = []
        for chain in picks:
            steps = []
            for pick in chain:
                if pick < len(self._augment_layers):
                    name = self._augment_layers[pick]
                    transform = getattr(self, name).get_random_transformation(images)
                    steps.append({"layer_name": name, "transformation": transform})
            chains.append(steps)
        return {
            "chain_mixing_weights": gamma / gamma.sum(-1, keepdim=True),
            "weight_sample": weight,
            "chain_transforms": chains,
        }

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        weights = transformation["chain_mixing_weights"].to(images)
        weight = transformation["weight_sample"].to(images)
        mixed = torch.zeros_like(images)
        for index, chain in enumerate(transformation["chain_transforms"]):
            chained = images
            for step in chain:
                layer = getattr(self, step["layer_name"])
                chained = layer.transform_images(chained, step["transformation"])
            mixed = mixed + chained * weights[index]
        images = weight * images + (1 - weight) * mixed
        return images.clamp(self.value_range[0], self.value_range[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            value_range=self.value_range,
            num_chains=self.num_chains,
            chain_depth=self.chain_depth,
            factor=self.factor,
            alpha=self.alpha,
            all_ops=self.all_ops,
            interpolation=self.interpolation,
            seed=self.seed,
        )
        return config
