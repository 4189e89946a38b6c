"""Wrappers: Bidirectional (an RNN both ways) and TimeDistributed (a layer on every step)."""

from __future__ import annotations

import torch

from distkeras.layers.base import Layer, deserialize_layer
from distkeras.utils.serialization import serialize_object

__all__ = ["Bidirectional", "TimeDistributed"]

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _serialize_layer(layer: Layer) -> dict:
    return serialize_object(layer, "keras.layers")


def _named_copy(layer: Layer, name: str, **overrides) -> Layer:
    """A fresh layer from ``layer``'s config (Keras rebuilds the wrapped RNN the same way)."""
    spec = _serialize_layer(layer)
    spec["config"].update(name=name, **overrides)
    return deserialize_layer(spec)


def _strip_prefix(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Runs an RNN forwards and a copy backwards over the inputs and merges the outputs.

    The wrapped layer is rebuilt from its config as ``forward_<name>``; the backward layer is
    another copy with ``go_backwards`` flipped (or ``backward_layer``). Weights are the forward
    layer's then the backward layer's. With ``return_sequences`` the backward outputs are
    flipped back to the input's time order and masked steps output zeros (Keras forces
    ``zero_output_for_mask``). With ``return_state`` the layer returns
    ``[output, *forward_states, *backward_states]``.

    Args:
        layer: an RNN layer (``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN``).
        merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or None (return
            both outputs in a list).
        backward_layer: optional layer for the backward direction; it must have
            ``go_backwards`` opposite to ``layer`` and the same ``return_sequences``,
            ``return_state`` and ``stateful``.

    Example:
        >>> layer = Bidirectional(LSTM(8, return_sequences=True))
        >>> layer(torch.ones(2, 5, 3)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Bidirectional: argument `layer` must be a distkeras layer. Received: {layer!r}"
            )
        for attr in ("go_backwards", "return_sequences", "return_state"):
            if not hasattr(layer, attr):
                raise ValueError(
                    f"Bidirectional: the wrapped layer needs a `{attr}` attribute (use an RNN "
                    f"layer such as LSTM). Received: layer={type(layer).__name__}"
                )
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(
                "Bidirectional: argument `backward_layer` must be a distkeras layer. "
                f"Received: backward_layer={backward_layer!r}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Bidirectional: argument `merge_mode` must be one of {list(_MERGE_MODES)}. "
                f"Received: merge_mode={merge_mode!r}"
            )
        super().__init__(**kwargs)
        self.forward_layer = _named_copy(layer, "forward_" + _strip_prefix(layer.name, "forward_"))
        if backward_layer is None:
            backward_layer = _named_copy(
                layer,
                "backward_" + _strip_prefix(layer.name, "backward_"),
                go_backwards=not layer.go_backwards,
            )
        self.backward_layer = backward_layer
        self._verify_pair()
        for direction in (self.forward_layer, self.backward_layer):
            if hasattr(direction, "zero_output_for_mask"):
                direction.zero_output_for_mask = direction.return_sequences
        self.merge_mode = merge_mode
        self._initial_weights = list(weights) if weights else None
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = getattr(layer, "stateful", False)
        self.supports_masking = True

    def _verify_pair(self):
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(
                "Bidirectional: the forward and backward layers need different `go_backwards`. "
                f"Received: go_backwards={forward.go_backwards} for both"
            )
        for attr in ("stateful", "return_sequences", "return_state"):
            ours, theirs = getattr(forward, attr, None), getattr(backward, attr, None)
            if ours != theirs:
                raise ValueError(
                    f"Bidirectional: the forward and backward layers need the same `{attr}`. "
                    f"Received: {ours} (forward) and {theirs} (backward)"
                )

    def build(self, input_shape, initial_state_shape=None):
        self.forward_layer._build_if_needed(input_shape)
        self.backward_layer._build_if_needed(input_shape)
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def call(self, sequences, initial_state=None, mask=None, training=None):
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        y = self.forward_layer(sequences, initial_state=forward_state, mask=mask, training=training)
        y_rev = self.backward_layer(
            sequences, initial_state=backward_state, mask=mask, training=training
        )
        states = ()
        if self.return_state:
            states = (*y[1:], *y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev.flip(1)
        if self.merge_mode == "concat":
            output = torch.cat([y, y_rev], dim=-1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) / 2
        elif self.merge_mode == "mul":
            output = y * y_rev
        else:
            output = (y, y_rev)
        if self.return_state:
            return (*output, *states) if self.merge_mode is None else (output, *states)
        return output

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        masks = [output_mask, output_mask] if self.merge_mode is None else [output_mask]
        if self.return_state:
            n_states = len(self.forward_layer.compute_mask(inputs, None)) - 1
            return masks + [None] * (2 * n_states)
        return masks if self.merge_mode is None else output_mask

    def reset_state(self) -> None:
        if not self.stateful:
            raise AttributeError(f"Bidirectional layer '{self.name}' is not stateful.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    def get_config(self):
        config = super().get_config()
        config.update(
            merge_mode=self.merge_mode,
            layer=_serialize_layer(self.forward_layer),
            backward_layer=_serialize_layer(self.backward_layer),
        )
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize_layer(config["backward_layer"])
        return super().from_config(config)


class TimeDistributed(Layer):
    """Applies a layer to every time step of ``(batch, time, ...)`` inputs.

    The time axis is folded into the batch, the layer runs once on ``(batch * time, ...)``,
    and the result is unfolded, so weights are shared across steps. (Keras loops over steps
    instead: the same numbers for every layer whose samples are independent; a
    BatchNormalization inside sees all steps as one batch here.)

    Example:
        >>> layer = TimeDistributed(Dense(8))
        >>> layer(torch.ones(2, 5, 3)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                "TimeDistributed: argument `layer` must be a distkeras layer. "
                f"Received: layer={layer!r}"
            )
        super().__init__(**kwargs)
        self.layer = layer
        self.supports_masking = True

    @staticmethod
    def _step_shape(input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 3:
            raise ValueError(
                "TimeDistributed expects inputs of rank 3 or more (batch, time, ...). "
                f"Received: input_shape={input_shape}"
            )
        return (None, *tuple(input_shape[2:]))

    def build(self, input_shape):
        self.layer._build_if_needed(self._step_shape(input_shape))

    def call(self, inputs, training=None, mask=None):
        batch, time = inputs.shape[:2]
        folded = inputs.reshape(batch * time, *inputs.shape[2:])
        kwargs = {"training": training}
        if self.layer._call_takes_mask:
            if mask is not None and tuple(mask.shape[:2]) != (batch, time):
                raise ValueError(
                    f"TimeDistributed '{self.name}' expects a mask of shape ({batch}, {time}, "
                    f"...). Received: mask.shape={tuple(mask.shape)}"
                )
            kwargs["mask"] = None if mask is None else mask.reshape(batch * time, *mask.shape[2:])
        outputs = self.layer(folded, **kwargs)
        return outputs.reshape(batch, time, *outputs.shape[1:])

    def compute_output_shape(self, input_shape):
        step = self.layer.compute_output_shape(self._step_shape(input_shape))
        return (input_shape[0], input_shape[1], *tuple(step)[1:])

    def get_config(self):
        config = super().get_config()
        config["layer"] = _serialize_layer(self.layer)
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        return super().from_config(config)
