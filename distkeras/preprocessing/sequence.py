"""``keras.preprocessing.sequence``."""

from distkeras.utils import pad_sequences

__all__ = ["pad_sequences"]
