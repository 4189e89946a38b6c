"""``distkeras.ops.image``: Keras's image ops on torch tensors (``keras.ops.image``)."""

from distkeras.ops.image_impl import *  # noqa: F403
