"""Activations, convolutions, pooling, normalization and losses of ``keras.ops.nn``."""

__all__: list[str] = []
