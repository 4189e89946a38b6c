"""The training engine mixed into ``Model``: compile, fit, evaluate, predict."""

from __future__ import annotations

import numpy as np
import torch

from distkeras import backend
from distkeras.utils.tree import flatten, map_structure


class Trainer:
    """compile/fit/evaluate/predict for ``Model``."""

    def __init__(self):
        self.compiled = False
        self.stop_training = False
        self.optimizer = None

    def predict(self, x, batch_size: int | None = None, verbose="auto", steps=None, callbacks=None):
        """Runs the model in inference mode over ``x`` in batches; returns numpy."""
        batch_size = 32 if batch_size is None else batch_size
        tensors = map_structure(backend.convert_to_tensor, x)
        flat = flatten(tensors)
        n = flat[0].shape[0]
        outputs = []
        with torch.no_grad():
            for start in range(0, n, batch_size):
                batch = map_structure(lambda t, s=start: t[s : s + batch_size], tensors)
                outputs.append(map_structure(backend.to_numpy, self(batch, training=False)))
        if not outputs:
            raise ValueError(f"Model '{self.name}': predict() received no samples.")
        return _concat_structures(outputs)


def _concat_structures(parts):
    first = parts[0]
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(np.concatenate([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate(parts)
