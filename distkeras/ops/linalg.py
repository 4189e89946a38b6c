"""``distkeras.ops.linalg``: Keras's linear-algebra ops on torch tensors (``keras.ops.linalg``)."""

from distkeras.ops.linalg_impl import *  # noqa: F403
