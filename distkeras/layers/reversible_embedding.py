"""``ReversibleEmbedding``: an Embedding that can also project hidden states back to logits.

``layer(ids)`` looks ids up as ``Embedding`` does; ``layer(hidden, reverse=True)`` returns
``hidden @ embeddings.T`` (tied weights, the default) or ``hidden @ reverse_embeddings``
(``tie_weights=False``: a separate ``(output_dim, input_dim)`` weight), optionally soft-capped
as ``tanh(logits / cap) * cap``. Keras 3.15's names, defaults and weight layout.
"""

from __future__ import annotations

import torch

from distkeras.layers.core import Embedding

__all__ = ["ReversibleEmbedding"]


class ReversibleEmbedding(Embedding):
    """An embedding layer which can project backwards to the input dim.

    Args:
        input_dim: vocabulary size.
        output_dim: embedding size.
        tie_weights: reuse the transposed ``embeddings`` for the reverse projection; if
            False a separate trainable ``reverse_embeddings`` weight is created.
        embeddings_initializer, embeddings_regularizer, embeddings_constraint, mask_zero: as
            in ``Embedding``.
        reverse_dtype: stored in the config; as in Keras 3.15 on torch, the projection still
            runs in the layer's dtype.
        logit_soft_cap: when set, reverse logits become ``tanh(logits / cap) * cap``.

    Call arguments: ``inputs``, ``reverse`` (bool, default False).

    Example:
        >>> embedding = ReversibleEmbedding(100, 32)
        >>> hidden = embedding(torch.randint(0, 100, (4, 10)))
        >>> embedding(hidden, reverse=True).shape
        torch.Size([4, 10, 100])
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        tie_weights: bool = True,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero: bool = False,
        reverse_dtype=None,
        logit_soft_cap=None,
        **kwargs,
    ):
        quantization = kwargs.pop("quantization_config", None)
        if quantization is not None:
            raise NotImplementedError(
                "ReversibleEmbedding: `quantization_config` is not supported by distkeras. "
                f"Received: quantization_config={quantization!r}"
            )
        super().__init__(
            input_dim,
            output_dim,
            embeddings_initializer=embeddings_initializer,
            embeddings_regularizer=embeddings_regularizer,
            embeddings_constraint=embeddings_constraint,
            mask_zero=mask_zero,
            **kwargs,
        )
        self.tie_weights = bool(tie_weights)
        self.reverse_dtype = reverse_dtype
        if logit_soft_cap is not None and (
            isinstance(logit_soft_cap, bool) or not isinstance(logit_soft_cap, (int, float))
        ):
            raise ValueError(
                "ReversibleEmbedding: `logit_soft_cap` must be a number or None. Received: "
                f"logit_soft_cap={logit_soft_cap!r}"
            )
        self.logit_soft_cap = logit_soft_cap

    def build(self, input_shape=None):
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                shape=(self.output_dim, self.input_dim),
                initializer=self.embeddings_initializer,
                name="reverse_embeddings",
            )

    def __call__(self, *args, reverse: bool = False, **kwargs):
        # compute_mask must know the direction: a reverse call carries no mask.
        self._reversing = bool(reverse)
        if reverse:
            kwargs["reverse"] = True
        return super().__call__(*args, **kwargs)

    def forward(self, *args, **kwargs):
        return self.__call__(*args, **kwargs)

    def call(self, inputs, reverse: bool = False, mask=None):
        if not reverse:
            return super().call(inputs)
        kernel = self.embeddings.t() if self.tie_weights else self.reverse_embeddings
        # Keras 3.15 on torch casts to `reverse_dtype` inside the layer's autocast scope, which
        # turns the cast back into the layer's dtype: the projection runs in that dtype.
        if inputs.dtype != kernel.dtype:
            inputs = inputs.to(kernel.dtype)
        logits = torch.matmul(inputs, kernel)
        if self.logit_soft_cap is not None:
            cap = self.logit_soft_cap
            logits = torch.tanh(logits / cap) * cap
        return logits

    def compute_mask(self, inputs, mask=None):
        if getattr(self, "_reversing", False):
            return None
        return super().compute_mask(inputs, mask)

    def compute_output_shape(self, input_shape, reverse: bool = False):
        shape = list(input_shape)
        if reverse:
            shape[-1] = self.input_dim
        else:
            shape.append(self.output_dim)
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            quantization_config=None,
            tie_weights=self.tie_weights,
            reverse_dtype=self.reverse_dtype,
            logit_soft_cap=self.logit_soft_cap,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("quantization_config") is None:
            config.pop("quantization_config", None)
        return super().from_config(config)
