"""``distkeras.ops.nn``: Keras's neural-network ops on torch tensors (``keras.ops.nn``)."""

from distkeras.ops.nn_impl import *  # noqa: F403
