"""The generic recurrent layer ``RNN(cell)``: Keras 3's time loop, masks and states.

Inputs are ``(batch, time, features)``. The default configurations (tanh/sigmoid, GRU
``reset_after=True``, no recurrent dropout while training) run the whole sequence in one of
torch's fused kernels; other configurations loop over time in Python with the inputs of every
step projected by one matmul up front.

Masks follow Keras: a masked step keeps every state unchanged, and its output repeats the
previous output (zeros before the first unmasked step, or zeros everywhere masked with
``zero_output_for_mask=True``, which ``Bidirectional`` sets when returning sequences). On the
fused path any mask runs without a host sync: each sequence's unmasked steps are gathered to the
front (right padding), the fused kernel runs once, and outputs are gathered back to the original
steps; trailing LSTM steps saturate their gates so the carry passes through unchanged.
"""

from __future__ import annotations

import torch

from distkeras import backend
from distkeras.layers.base import CALL_CONTEXT, Layer, deserialize_layer
from distkeras.layers.rnn_cells import _RNNCell
from distkeras.utils.serialization import serialize_object

__all__ = ["RNN"]


def _state_sizes(cell) -> list:
    size = cell.state_size
    return list(size) if isinstance(size, (list, tuple)) else [size]


class RNN(Layer):
    """Runs a cell over the time axis of ``(batch, time, features)`` inputs.

    Args:
        cell: a layer with ``call(inputs, states)`` returning ``(output, new_states)`` and a
            ``state_size`` (int or list of ints), such as ``LSTMCell``.
        return_sequences: return the output of every step ``(batch, time, units)`` instead of
            the last one ``(batch, units)``.
        return_state: also return the final states: ``[output, *states]``.
        go_backwards: process the sequence in reverse (and return the reversed sequence).
        stateful: reuse each batch's final states as the next batch's initial states (the
            batch size must stay fixed; ``reset_state()`` zeroes them).
        unroll: accepted for compatibility; the fused kernels make it unnecessary.
        zero_output_for_mask: output zeros (instead of the previous output) at masked steps.

    Call arguments: ``inputs``, ``initial_state`` (a tensor or list, one per state),
    ``mask`` ``(batch, time)`` booleans, ``training``.

    Example:
        >>> layer = RNN(LSTMCell(8), return_sequences=True)
        >>> layer(torch.ones(2, 5, 3)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(
        self,
        cell,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs,
    ):
        if kwargs.pop("time_major", False):
            raise ValueError(
                f"{type(self).__name__}: time-major inputs are not supported (Keras 3 dropped "
                "them too); transpose to (batch, time, features). Received: time_major=True"
            )
        if isinstance(cell, (list, tuple)):  # RNN([cell1, cell2]) stacks them, as Keras
            from distkeras.layers.stacked_cells import StackedRNNCells

            cell = StackedRNNCells(cell)
        if not isinstance(cell, Layer) or not hasattr(cell, "state_size"):
            raise ValueError(
                f"{type(self).__name__}: argument `cell` must be a layer with a `call(inputs, "
                f"states)` method and a `state_size` attribute. Received: cell={cell!r}"
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.states: list[torch.Tensor] | None = None

    # -------------------------------------------------------------------------- build
    def build(self, input_shape, initial_state_shape=None):
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects inputs of shape "
                f"(batch, time, features). Received: input_shape={tuple(input_shape)}"
            )
        self.cell._build_if_needed((input_shape[0], *tuple(input_shape[2:])))

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        batch, time = input_shape[0], input_shape[1]
        units = getattr(self.cell, "output_size", None) or _state_sizes(self.cell)[0]
        output = (batch, time, units) if self.return_sequences else (batch, units)
        if self.return_state:
            return (output, *[(batch, n) for n in _state_sizes(self.cell)])
        return output

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(_state_sizes(self.cell))
        return output_mask

    # ---------------------------------------------------------------------- states
    def get_initial_state(self, batch_size: int, like: torch.Tensor | None = None) -> list:
        """Zero states (or the cell's ``get_initial_state``) on ``like``'s device and dtype."""
        if isinstance(self.cell, _RNNCell):
            return self.cell.get_initial_state(batch_size, like)
        if like is None:
            like = torch.zeros((), dtype=backend.standardize_dtype(self.dtype))
        if hasattr(self.cell, "get_initial_state"):
            states = self.cell.get_initial_state(batch_size=batch_size)
            states = [states] if isinstance(states, torch.Tensor) else list(states)
            return [torch.as_tensor(s, dtype=like.dtype, device=like.device) for s in states]
        return [like.new_zeros(batch_size, n) for n in _state_sizes(self.cell)]

    def reset_state(self) -> None:
        """Zeroes the states a ``stateful`` layer carries between batches."""
        if self.states is not None:
            self.states = [torch.zeros_like(s) for s in self.states]

    reset_states = reset_state

    def _initial_states(self, initial_state, x: torch.Tensor) -> list:
        batch = x.shape[0]
        expected = len(_state_sizes(self.cell))
        if initial_state is not None:
            states = [initial_state] if isinstance(initial_state, torch.Tensor) else initial_state
            if len(states) != expected:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}' expects {expected} initial state "
                    f"tensor(s). Received: {len(states)}"
                )
            return [torch.as_tensor(s, dtype=x.dtype, device=x.device) for s in states]
        if not self.stateful or CALL_CONTEXT.symbolic:
            return self.get_initial_state(batch, x)
        if self.states is None:
            self.states = self.get_initial_state(batch, x)
        if self.states[0].shape[0] != batch:
            raise ValueError(
                f"Stateful layer '{self.name}' was first called with batch size "
                f"{self.states[0].shape[0]} and now with {batch}: a stateful RNN needs a fixed "
                "batch size (pass batch_size= to Input and fit with a multiple of it)."
            )
        return [s.to(x.device) for s in self.states]

    # --------------------------------------------------------------------------- call
    def call(self, sequences, initial_state=None, mask=None, training=None):
        x = sequences
        if x.ndim != 3:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects inputs of shape (batch, time, "
                f"features). Received: shape={tuple(x.shape)}"
            )
        if x.shape[1] == 0:
            raise ValueError(f"{type(self).__name__} '{self.name}' received an empty sequence.")
        cell = self.cell
        builtin = isinstance(cell, _RNNCell)
        if builtin and x.dtype != cell.kernel.dtype:
            x = x.to(cell.kernel.dtype)
        elif not x.is_floating_point():
            x = x.to(backend.standardize_dtype(self.dtype))
        states = self._initial_states(initial_state, x)
        mask = self._standardize_mask(mask, x)

        recurrent_mask = None
        if training and builtin:
            input_mask = cell.dropout_mask(x[:, 0], cell.dropout)
            if input_mask is not None:  # one mask for every step, as Keras does
                x = x * input_mask.unsqueeze(1)
            recurrent_mask = cell.dropout_mask(states[0], cell.recurrent_dropout)
        if self.go_backwards:
            x = x.flip(1)
            mask = None if mask is None else mask.flip(1)

        if builtin and recurrent_mask is None and cell.fused_op() is not None:
            outputs, last, final = self._run_fused(x, states, mask)
        else:
            _reset_dropout_masks(cell)  # cells called per step draw one mask per sequence
            outputs, last, final = self._run_loop(x, states, mask, recurrent_mask, training)
            _reset_dropout_masks(cell)

        if self.stateful and not CALL_CONTEXT.symbolic:
            self.states = [s.detach() for s in final]
        output = outputs if self.return_sequences else last
        return (output, *final) if self.return_state else output

    def _standardize_mask(self, mask, x):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is None:
            return None
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects a mask of shape (batch, time) = "
                f"{tuple(x.shape[:2])}. Received: mask.shape={tuple(mask.shape)}"
            )
        return mask.to(device=x.device, dtype=torch.bool)

    def _run_fused(self, x, states, mask):
        """The whole sequence in one fused kernel call; any mask via compaction."""
        cell = self.cell
        if mask is None:
            hseq, final = cell.fused_forward(x, states)
            return hseq, hseq[:, -1], final

        batch, time = mask.shape
        counts = mask.cumsum(1)  # unmasked steps seen so far, per step
        lengths = counts[:, -1]
        # Stable sort puts each sequence's unmasked steps first, in order.
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        packed = x.gather(1, order.unsqueeze(-1).expand_as(x))
        need_carry = len(states) > 1 and (self.return_state or self.stateful)
        freeze = torch.arange(time, device=x.device) >= lengths.unsqueeze(1) if need_carry else None
        hseq, kernel_final = cell.fused_forward(packed, states, freeze)

        rows = torch.arange(batch, device=x.device)
        last_index = (lengths - 1).clamp(min=0)
        h_last = hseq[rows, last_index]
        seen_any = (lengths > 0).unsqueeze(1)
        final = [torch.where(seen_any, h_last, states[0]), *kernel_final[1:]]
        if self.return_sequences:
            index = (counts - 1).clamp(min=0).unsqueeze(-1).expand(batch, time, hseq.shape[-1])
            keep = mask if self.zero_output_for_mask else counts > 0
            outputs = torch.where(keep.unsqueeze(-1), hseq.gather(1, index), 0.0)
            return outputs, outputs[:, -1], final
        keep_last = mask[:, -1:] if self.zero_output_for_mask else seen_any
        return None, torch.where(keep_last, h_last, 0.0), final

    def _run_loop(self, x, states, mask, recurrent_mask, training):
        """A Python loop over time: for custom cells and non-fused configurations."""
        cell = self.cell
        builtin = isinstance(cell, _RNNCell)
        steps = (cell.project_inputs(x) if builtin else x).unbind(1)
        step_masks = None if mask is None else mask.unbind(1)
        outputs, previous, last = [], None, None
        for t, inputs in enumerate(steps):
            if builtin:
                out, new_states = cell.step(inputs, states, recurrent_mask)
            else:
                out, new_states = self._call_cell(inputs, states, training)
            if step_masks is not None:
                keep = step_masks[t]
                new_states = [
                    torch.where(keep.view(-1, *[1] * (n.ndim - 1)), n, s)
                    for n, s in zip(new_states, states)
                ]
                if previous is None or self.zero_output_for_mask:
                    previous = torch.zeros_like(out)
                out = torch.where(keep.view(-1, *[1] * (out.ndim - 1)), out, previous)
                previous = out
            states = list(new_states)
            if self.return_sequences:
                outputs.append(out)
            last = out
        sequence = torch.stack(outputs, dim=1) if self.return_sequences else None
        return sequence, last, states

    def _call_cell(self, inputs, states, training):
        state_arg = states[0] if isinstance(self.cell.state_size, int) else states
        kwargs = {"training": training} if self.cell._call_takes_training else {}
        out, new_states = self.cell(inputs, state_arg, **kwargs)
        new_states = [new_states] if isinstance(new_states, torch.Tensor) else list(new_states)
        return out, new_states

    # ------------------------------------------------------------------------- config
    def _rnn_config(self) -> dict:
        config = Layer.get_config(self)
        config.update(
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            stateful=self.stateful,
            unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        return config

    def get_config(self):
        config = self._rnn_config()
        config["cell"] = serialize_object(self.cell, "keras.layers")
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["cell"] = deserialize_layer(config["cell"])
        return super().from_config(config)


def _reset_dropout_masks(cell) -> None:
    """Clears the per-sequence dropout masks of ``cell`` (and of stacked cells), as Keras's
    RNN does after each call."""
    if isinstance(cell, _RNNCell):
        cell.reset_dropout_mask()
        cell.reset_recurrent_dropout_mask()
    inner = getattr(cell, "cells", None)
    if isinstance(inner, (list, tuple, torch.nn.ModuleList)):
        for sub in inner:
            _reset_dropout_masks(sub)
