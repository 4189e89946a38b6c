"""Attention dropout against Keras 3: a seeded layer draws Keras's masks, call after call.

Attention, AdditiveAttention and MultiHeadAttention drop attention probabilities through
``distkeras.random.dropout`` on the layer's SeedGenerator (per sample inside fit; see
tests/distributed/test_dropout_equivalence.py for 1 = N workers). Outside fit a seeded layer
gives the numbers Keras gives, and inference never drops.
"""

import numpy as np
import pytest
import torch

import distkeras
from tests.ops.keras_reference import assert_same, import_keras

keras = import_keras()

RNG = np.random.default_rng(0)
Q = RNG.normal(size=(2, 3, 4)).astype("float32")
V = RNG.normal(size=(2, 5, 4)).astype("float32")


def _pair(name: str, **kwargs):
    theirs = getattr(keras.layers, name)(**kwargs)
    ours = getattr(distkeras.layers, name)(**kwargs)
    if name == "MultiHeadAttention":
        theirs(Q, V)
        ours(torch.tensor(Q), torch.tensor(V))
    else:
        theirs([Q, V])
        ours([torch.tensor(Q), torch.tensor(V)])
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def _call(layer, q, v, **kwargs):
    if isinstance(layer, (keras.layers.MultiHeadAttention, distkeras.layers.MultiHeadAttention)):
        return layer(q, v, **kwargs)
    return layer([q, v], **kwargs)


CASES = {
    "Attention": {"dropout": 0.5, "seed": 7},
    "Attention-concat-scale": {
        "dropout": 0.3,
        "seed": 2,
        "score_mode": "concat",
        "use_scale": True,
    },
    "AdditiveAttention": {"dropout": 0.5, "seed": 7},
    "MultiHeadAttention": {"num_heads": 2, "key_dim": 3, "dropout": 0.5, "seed": 7},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_seeded_dropout_matches_keras(case):
    ours, theirs = _pair(case.split("-")[0], **CASES[case])
    q, v = torch.tensor(Q), torch.tensor(V)
    # Two training calls: the layer's SeedGenerator advances as Keras's does.
    for _ in range(2):
        got = _call(ours, q, v, training=True, return_attention_scores=True)
        want = _call(theirs, Q, V, training=True, return_attention_scores=True)
        assert_same(got, want)
    assert_same(_call(ours, q, v, training=False), _call(theirs, Q, V, training=False))


def test_multi_head_attention_dropout_with_masks_and_causal_matches_keras():
    ours, theirs = _pair("MultiHeadAttention", num_heads=2, key_dim=3, dropout=0.4, seed=1)
    x = RNG.normal(size=(2, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    got = ours(torch.tensor(x), torch.tensor(x), value_mask=torch.tensor(mask),
               use_causal_mask=True, training=True)  # fmt: skip
    want = theirs(x, x, value_mask=mask, use_causal_mask=True, training=True)
    assert_same(got, want)


def test_flash_attention_with_dropout_is_refused_as_in_keras():
    with pytest.raises(ValueError, match="flash attention"):
        keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.1, flash_attention=True)
    with pytest.raises(ValueError, match="flash attention"):
        distkeras.layers.MultiHeadAttention(
            num_heads=2, key_dim=3, dropout=0.1, flash_attention=True
        )


def test_unseeded_layers_draw_fresh_masks():
    layer = distkeras.layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.5)
    q = torch.tensor(Q)
    a = layer(q, q, training=True)
    b = layer(q, q, training=True)
    assert not torch.equal(a, b)
    assert torch.equal(layer(q, q, training=False), layer(q, q))
