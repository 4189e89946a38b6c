"""Conversion, casting, control flow and scatter/slice ops of ``keras.ops``."""

__all__: list[str] = []
