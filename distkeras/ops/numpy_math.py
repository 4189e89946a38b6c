"""Elementwise math, comparisons, logic and bit ops of ``keras.ops.numpy`` on torch tensors."""

__all__: list[str] = []
