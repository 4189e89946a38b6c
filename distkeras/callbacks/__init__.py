"""Callbacks, mirroring ``keras.callbacks``."""

from distkeras.callbacks.base import Callback, CallbackList
from distkeras.callbacks.history import History
from distkeras.callbacks.progbar import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]
