"""Single-head attention on ``[query, value(, key)]`` lists: Attention (Luong, dot product)
and AdditiveAttention (Bahdanau), with Keras's masks and weights."""

from __future__ import annotations

import torch

from distkeras.layers.base import Layer
from distkeras.random import random as random_ops
from distkeras.random.seed_generator import SeedGenerator

__all__ = ["Attention", "AdditiveAttention"]


def _check_inputs(layer: Layer, inputs, mask=None) -> None:
    if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}' must be called on a list of inputs, "
            f"namely [query, value] or [query, value, key]. Received: inputs={inputs!r:.200}"
        )
    if mask is not None and (not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3):
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}': the mask must be a list "
            f"[query_mask, value_mask]. Received: mask={mask!r:.200}"
        )


class Attention(Layer):
    """Dot-product (Luong-style) attention: ``softmax(query @ key^T) @ value``.

    Called on ``[query (B, Tq, dim), value (B, Tv, dim)]`` or ``[query, value, key]``. With
    ``use_scale=True`` a learned scalar ``scale`` multiplies the scores; ``score_mode="concat"``
    scores with ``concat_score_weight * sum(tanh(scale * (query + key)))``. A value mask keeps
    padded positions out of the softmax; a query mask zeroes the masked outputs.

    Example:
        >>> q, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
        >>> Attention()([q, v]).shape
        torch.Size([2, 3, 4])
    """

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f"{type(self).__name__}: argument `score_mode` must be one of 'dot', 'concat'. "
                f"Received: score_mode={score_mode!r}"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ValueError(
                f"{type(self).__name__}: argument `dropout` must be a float in [0, 1). "
                f"Received: dropout={dropout!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"{type(self).__name__}: argument `dropout` must be in [0, 1). "
                f"Received: dropout={dropout!r}"
            )
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = seed
        # Keras creates it only when dropout is active (an unseeded one reads Python's random).
        self.seed_generator = SeedGenerator(seed) if self.dropout > 0 else None
        self.supports_masking = True

    def build(self, input_shape):
        if self.use_scale:
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        else:
            self.scale = None
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(
                shape=(), initializer="ones", name="concat_score_weight"
            )
        else:
            self.concat_score_weight = None
        self.built = True

    def _calculate_scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        if self.score_mode == "dot":
            scores = torch.matmul(query, key.transpose(-1, -2))
            return scores * self.scale if self.scale is not None else scores
        summed = query.unsqueeze(-2) + key.unsqueeze(-3)
        if self.scale is not None:
            summed = self.scale * summed
        return self.concat_score_weight * torch.tanh(summed).sum(-1)

    def call(
        self,
        inputs,
        mask=None,
        training=None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ):
        _check_inputs(self, inputs, mask)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        query_mask = mask[0] if mask else None
        value_mask = mask[1] if mask else None
        scores = self._calculate_scores(query, key)
        keep = None
        if value_mask is not None:
            keep = value_mask.bool().unsqueeze(-2)  # (B, 1, Tv)
        if use_causal_mask:
            causal = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
            keep = causal if keep is None else keep & causal
        if keep is not None:
            # Keras subtracts a large number (float16's max in half precision).
            large = 65504.0 if scores.dtype == torch.float16 else 1.0e9
            scores = scores - large * (~keep).to(scores.dtype)
        weights = torch.softmax(scores, dim=-1)
        if training and self.dropout > 0:
            # Per sample inside fit (worker-count independent); torch's fused kernel otherwise.
            weights = random_ops.dropout(weights, self.dropout, seed=self.seed_generator)
        result = torch.matmul(weights, value)
        if query_mask is not None:
            result = result * query_mask.unsqueeze(-1).to(result.dtype)
        if return_attention_scores:
            return result, weights
        return result

    def compute_mask(self, inputs, mask=None):
        if not mask or mask[0] is None:
            return None
        return mask[0]

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape[0][:-1]), input_shape[1][-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            use_scale=self.use_scale,
            score_mode=self.score_mode,
            dropout=self.dropout,
            seed=self.seed,
        )
        return config


class AdditiveAttention(Attention):
    """Additive (Bahdanau-style) attention: scores ``sum(scale * tanh(query + key))``.

    ``scale`` is a learned ``(dim,)`` vector (glorot_uniform) when ``use_scale=True``.

    Example:
        >>> q, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
        >>> AdditiveAttention()([q, v]).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        dim = input_shape[0][-1]
        if self.use_scale:
            self.scale = self.add_weight(shape=(dim,), initializer="glorot_uniform", name="scale")
        else:
            self.scale = None
        self.built = True

    def _calculate_scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        summed = torch.tanh(query.unsqueeze(-2) + key.unsqueeze(-3))
        if self.scale is not None:
            return torch.matmul(summed, self.scale)  # sum over dim of scale * tanh(...)
        return summed.sum(-1)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config
