"""``StackedRNNCells``: a list of RNN cells run as one cell (``RNN([cell1, cell2])``)."""

from __future__ import annotations

import torch

from distkeras.layers.base import Layer, deserialize_layer
from distkeras.utils.serialization import serialize_object

__all__ = ["StackedRNNCells"]


def _sizes(cell) -> list[int]:
    size = cell.state_size
    return list(size) if isinstance(size, (list, tuple)) else [size]


class StackedRNNCells(Layer):
    """Runs cells one after the other at each time step; each feeds the next.

    ``state_size`` is the flat list of every cell's state sizes (the states ``RNN`` passes and
    returns with ``return_state=True``, in cell order, as Keras flattens them).

    Example:
        >>> cells = [distkeras.layers.LSTMCell(8), distkeras.layers.LSTMCell(4)]
        >>> layer = distkeras.layers.RNN(cells)   # the same as RNN(StackedRNNCells(cells))
        >>> layer(torch.ones(2, 5, 3)).shape
        torch.Size([2, 4])
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells)
        for cell in cells:
            if not isinstance(cell, Layer) or not hasattr(cell, "state_size"):
                raise ValueError(
                    "All cells must be layers with a `call` method and a `state_size` "
                    f"attribute. Received: {cell!r}"
                )
        if not cells:
            raise ValueError("StackedRNNCells needs at least one cell. Received: cells=[]")
        self.cells = torch.nn.ModuleList(cells)  # registered: the weights are the model's

    @property
    def state_size(self) -> list[int]:
        return [n for cell in self.cells for n in _sizes(cell)]

    @property
    def output_size(self) -> int:
        last = self.cells[-1]
        return getattr(last, "output_size", None) or _sizes(last)[0]

    def build(self, input_shape):
        batch = input_shape[0]
        for cell in self.cells:
            cell._build_if_needed(tuple(input_shape))
            input_shape = (batch, getattr(cell, "output_size", None) or _sizes(cell)[0])

    def call(self, inputs, states, training=None):
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        new_states, offset = [], 0
        for cell in self.cells:
            count = len(_sizes(cell))
            own = states[offset : offset + count]
            offset += count
            arg = own[0] if isinstance(cell.state_size, int) else own
            kwargs = {"training": training} if cell._call_takes_training else {}
            inputs, cell_states = cell(inputs, arg, **kwargs)
            if isinstance(cell_states, (list, tuple)):
                new_states.extend(cell_states)
            else:
                new_states.append(cell_states)
        return inputs, new_states

    def get_config(self) -> dict:
        config = super().get_config()
        config["cells"] = [serialize_object(cell, "keras.layers") for cell in self.cells]
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        cells = [deserialize_layer(c) for c in config.pop("cells")]
        return cls(cells, **config)
