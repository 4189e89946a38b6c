"""The base of the image augmentation layers (``keras.layers.RandomFlip`` and its family).

Each layer is split as Keras splits it: ``get_random_transformation(images)`` draws the
parameters (a dict with Keras's keys), ``transform_images(images, transformation)`` applies
them and is deterministic. So a layer can be checked against Keras's ``transform_images``
given the same parameters, and the draws can be checked on their own.

Every draw goes through ``distkeras.random`` on the layer's own ``SeedGenerator``
(``self.generator``, Keras's attribute name). Inside a fit training step a draw whose first
dimension is the batch is made per sample (``random/streams.py``): each sample's parameters
are a pure function of (seed, layer, step, global sample index), so 1 worker and N workers
augment every sample alike. Draws for the whole batch (RandomCrop's offsets, a blur's sigma)
are one value per step, the same on every worker.

As in Keras, ``call`` defaults to ``training=True`` when nothing outside says otherwise
(``layer(images)`` augments), a model's ``predict``/``evaluate`` runs them as the identity,
and the deterministic AutoContrast applies always.
"""

from __future__ import annotations

import torch

from distkeras import backend
from distkeras.layers.base import CALL_CONTEXT, Layer
from distkeras.layers.conv_base import standardize_data_format
from distkeras.random import random as random_ops
from distkeras.random.seed_generator import SeedGenerator

__all__: list[str] = []

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("nearest", "bilinear")


def check_choice(layer: str, name: str, value, choices) -> None:
    """Keras raises NotImplementedError for an unknown fill_mode/interpolation."""
    if value not in choices:
        raise NotImplementedError(
            f"{layer}: unknown `{name}` {value!r}. Expected one of {choices}. "
            f"Received: {name}={value!r}"
        )


def factor_pair(layer: str, factor, bounds=(-1, 1), name: str = "factor") -> tuple:
    """Keras's base-layer factor rule: a number f gives (max(-f, low), f), a pair is sorted."""
    msg = (
        f"{layer}: the `{name}` argument should be a number (or a list of two numbers) in the "
        f"range [{bounds[0]}, {bounds[1]}]. Received: {name}={factor!r}"
    )
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(msg)
        lower, upper = sorted(factor)
    elif isinstance(factor, (int, float)) and not isinstance(factor, bool):
        if factor < bounds[0] or factor > bounds[1]:
            raise ValueError(msg)
        factor = abs(factor)
        lower, upper = max(-factor, bounds[0]), factor
    else:
        raise ValueError(msg)
    return (lower, upper)


def symmetric_pair(layer: str, factor, name: str, low_open: bool = False, low: float = -1.0):
    """RandomZoom/RandomTranslation/RandomShear: f gives (-f, f); entries checked in range."""

    def check(value):
        bad = value <= low if low_open else value < low
        if bad or value > 1.0:
            raise ValueError(
                f"{layer}: the `{name}` argument should be a number (or a list of two numbers) "
                f"in the range {'(' if low_open else '['}{low}, 1.0]. Received: {name}={factor!r}"
            )

    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ValueError(f"{layer}: `{name}` must have two entries. Received: {factor!r}")
        check(factor[0])
        check(factor[1])
        return tuple(sorted(factor))
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        check(factor)
        return (-abs(factor), abs(factor))
    raise ValueError(f"{layer}: `{name}` must be a number or a pair. Received: {factor!r}")


def value_range_pair(layer: str, value_range) -> list:
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise ValueError(
            f"{layer}: the `value_range` argument should be a list of two numbers. "
            f"Received: value_range={value_range!r}"
        )
    return sorted(value_range)


def to_range(images: torch.Tensor, source, target) -> torch.Tensor:
    """Keras's ``_transform_value_range``: a linear map from ``source`` to ``target``."""
    if source[0] == target[0] and source[1] == target[1]:
        return images
    images = (images - source[0]) / (source[1] - source[0])
    return images * (target[1] - target[0]) + target[0]


def where_batch(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``where`` with a per-image boolean mask of shape (batch,)."""
    return torch.where(mask.reshape(-1, 1, 1, 1), a, b)


def _symbolic(value) -> bool:
    from distkeras.layers.input import KerasTensor  # (input imports layers.base)

    return isinstance(value, KerasTensor)


class AugmentationLayer(Layer):
    """A layer drawing per-image transformation parameters, then applying them.

    Subclasses define ``get_random_transformation(images, training=True)`` and
    ``transform_images(images, transformation, training=True)`` on batched images; ``call``
    adds the batch dimension for single images, as Keras does.
    """

    _ALWAYS = False  # applies at inference too (Keras's AutoContrast)
    _RANDOM = True  # owns a SeedGenerator

    def __init__(self, seed: int | None = None, data_format=None, **kwargs):
        self.bounding_box_format = kwargs.pop("bounding_box_format", None)
        super().__init__(**kwargs)
        name = type(self).__name__
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"{name}: argument `seed` must be an int or None. Received: {seed!r}")
        self.seed = seed
        self.data_format = standardize_data_format(name, data_format)
        self.generator = SeedGenerator(seed) if self._RANDOM else None

    # ----------------------------------------------------------------------------- draws
    def _uniform(self, shape, minval=0.0, maxval=1.0, per_sample: bool = True) -> torch.Tensor:
        """Uniform draws; ``per_sample`` says dimension 0 is the batch (drawn per sample)."""
        return random_ops.draw_uniform(
            tuple(shape), minval, maxval, seed=self.generator, batch_aligned=per_sample
        )

    def _normal(self, shape, per_sample: bool = True) -> torch.Tensor:
        return random_ops.draw_normal(tuple(shape), seed=self.generator, batch_aligned=per_sample)

    def _sample(self, shape, make_distribution, per_sample: bool = True) -> torch.Tensor:
        """A ``torch.distributions`` draw (Beta, Gamma) of ``shape``, per sample or for the
        batch. Those samplers take no generator: a seed drawn from this layer's stream seeds
        the global one, restored afterwards."""
        device = backend.get_device()

        def fill(gen, size):
            # The seed comes from a CPU generator (no device read); the draw is on the device.
            seed = int(torch.randint(0, 2**62, (1,), generator=gen))
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                return make_distribution(size, device).sample()

        cpu = torch.device("cpu")
        return random_ops._draw(self.generator, tuple(shape), cpu, fill, per_sample)

    def _beta(self, shape, alpha, beta, per_sample: bool = True) -> torch.Tensor:
        def make(size, device):
            a = torch.as_tensor(alpha, dtype=torch.float32, device=device).expand(size)
            b = torch.as_tensor(beta, dtype=torch.float32, device=device).expand(size)
            return torch.distributions.Beta(a, b)

        return self._sample(shape, make, per_sample)

    def _gamma(self, shape, alpha, per_sample: bool = True) -> torch.Tensor:
        def make(size, device):
            a = torch.as_tensor(float(alpha), device=device).expand(size)
            return torch.distributions.Gamma(a, torch.ones_like(a))

        return self._sample(shape, make, per_sample)

    # ------------------------------------------------------------------------------ call
    def __call__(self, *args, **kwargs):
        first = args[0] if args else kwargs.get("inputs")
        if isinstance(first, dict):
            raise NotImplementedError(
                f"{type(self).__name__} layer '{self.name}': dict inputs (images with "
                f"{sorted(k for k in first if k != 'images')}: bounding boxes, labels or "
                "segmentation masks) are not supported; pass the image tensor."
            )
        # Keras's call signature default: training=True when nothing outside says otherwise.
        # Not on a symbolic call: the node it records must inherit the model's flag.
        if "training" not in kwargs and CALL_CONTEXT.depth == 0 and not _symbolic(first):
            kwargs["training"] = True
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=None):
        images = inputs
        if images.ndim not in (3, 4):
            raise ValueError(
                f"{type(self).__name__} layer '{self.name}' expects images of rank 3 (single "
                f"image) or 4 (batch). Received: inputs.shape={tuple(images.shape)}"
            )
        name = str(self.dtype)
        # A mixed policy ("mixed_float16") computes in its second half, as Keras's does.
        dtype = backend.standardize_dtype(
            name.split("_", 1)[1] if name.startswith("mixed_") else name
        )
        if images.dtype != dtype:
            images = images.to(dtype)
        if not (training or self._ALWAYS):
            return self.inference(images)
        unbatched = images.ndim == 3
        if unbatched:
            images = images.unsqueeze(0)
        transformation = self.get_random_transformation(images, training=True)
        outputs = self.transform_images(images, transformation, training=True)
        return outputs[0] if unbatched else outputs

    def inference(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def get_random_transformation(self, images, training=True, seed=None):
        return None

    def transform_images(self, images, transformation, training=True):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    # -------------------------------------------------------------------------- helpers
    def _hw(self, images: torch.Tensor) -> tuple[int, int]:
        if self.data_format == "channels_first":
            return int(images.shape[-2]), int(images.shape[-1])
        return int(images.shape[-3]), int(images.shape[-2])

    def _hw_axes(self) -> tuple[int, int]:
        return (-2, -1) if self.data_format == "channels_first" else (-3, -2)

    def _channel_axis(self) -> int:
        return -3 if self.data_format == "channels_first" else -1

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        if self.bounding_box_format is not None:
            config["bounding_box_format"] = self.bounding_box_format
        return config
