"""Activations, convolutions, pooling, normalization and losses of ``keras.ops.nn``.

The ops live in family modules (``nn_activations``, ``nn_conv``, ``nn_norm``, ``nn_losses``);
this module gathers them for ``distkeras.ops.nn`` and the flat ``distkeras.ops``.
"""

from distkeras.ops import nn_activations, nn_conv, nn_losses, nn_norm
from distkeras.ops.nn_activations import *  # noqa: F403
from distkeras.ops.nn_conv import *  # noqa: F403
from distkeras.ops.nn_losses import *  # noqa: F403
from distkeras.ops.nn_norm import *  # noqa: F403

__all__: list[str] = sorted(
    nn_activations.__all__ + nn_conv.__all__ + nn_losses.__all__ + nn_norm.__all__
)
