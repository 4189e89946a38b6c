"""GroupQueryAttention against Keras 3 on the same weights: every mask source, causal and
sliding-window masks, scores, gates; `.keras` files both ways; per-sample dropout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from distkeras.random import streams
from tests.ops.keras_reference import import_keras


@pytest.fixture(scope="module")
def keras():
    return import_keras()


BASE = dict(head_dim=4, num_query_heads=4, num_key_value_heads=2)
CASES = [
    (BASE, {}, False, False),
    (BASE, {}, True, False),
    (BASE, {"return_attention_scores": True}, False, False),
    (BASE, {"return_attention_scores": True}, True, True),
    (BASE, {"use_causal_mask": True}, False, False),
    (BASE, {"use_causal_mask": True}, True, False),
    (BASE, {"use_causal_mask": True, "return_attention_scores": True}, False, True),
    ({**BASE, "use_gate": True}, {}, False, False),
    ({**BASE, "sliding_window": 2}, {}, False, False),
    ({**BASE, "sliding_window": 2}, {"use_causal_mask": True}, True, False),
    ({**BASE, "use_bias": False, "dropout": 0.3}, {}, False, False),
    (dict(head_dim=3, num_query_heads=6, num_key_value_heads=1), {}, True, True),
    (dict(head_dim=2, num_query_heads=2, num_key_value_heads=2), {"use_causal_mask": True}, 0, 0),
]


@pytest.mark.parametrize(("kwargs", "call_kwargs", "masks", "with_key"), CASES)
def test_matches_keras_on_the_same_weights(keras, kwargs, call_kwargs, masks, with_key):
    rng = np.random.default_rng(0)
    t_len, s_len = (5, 5) if call_kwargs.get("use_causal_mask") else (3, 6)
    q = rng.standard_normal((2, t_len, 6)).astype("float32")
    v = rng.standard_normal((2, s_len, 6)).astype("float32")
    k = rng.standard_normal((2, s_len, 5)).astype("float32") if with_key else None
    theirs = keras.layers.GroupQueryAttention(**kwargs)
    ours = layers.GroupQueryAttention(**kwargs)
    theirs(q, v, key=k)
    ours(torch.as_tensor(q), torch.as_tensor(v), key=None if k is None else torch.as_tensor(k))
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    weights = [rng.standard_normal(w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    theirs_kwargs, ours_kwargs = dict(call_kwargs), dict(call_kwargs)
    if masks:
        query_mask = rng.random((2, t_len)) > 0.3
        value_mask = rng.random((2, s_len)) > 0.3
        value_mask[:, 0] = True
        attention_mask = rng.random((2, t_len, s_len)) > 0.2
        theirs_kwargs.update(query_mask=query_mask, value_mask=value_mask)
        theirs_kwargs["attention_mask"] = attention_mask
        ours_kwargs.update(
            query_mask=torch.as_tensor(query_mask),
            value_mask=torch.as_tensor(value_mask),
            attention_mask=torch.as_tensor(attention_mask),
        )
    expected = theirs(q, v, key=k, **theirs_kwargs)
    tk = None if k is None else torch.as_tensor(k)
    got = ours(torch.as_tensor(q), torch.as_tensor(v), key=tk, **ours_kwargs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, tuple) else (got,)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.detach().numpy(), np.asarray(b.detach().cpu()), atol=1e-5)
    assert set(ours.get_config()) == set(theirs.get_config())
    assert tuple(ours.compute_output_shape(q.shape, v.shape)) == tuple(expected[0].shape)


def test_keras_masks_of_the_inputs_are_used(keras):
    ids = np.array([[3, 4, 0, 0], [5, 0, 0, 0]])
    rng = np.random.default_rng(1)
    embed = layers.Embedding(10, 6, mask_zero=True)
    x = embed(torch.as_tensor(ids))
    layer = layers.GroupQueryAttention(**BASE)
    out = layer(x, x)
    torch.testing.assert_close(out._keras_mask, torch.as_tensor(ids != 0))
    explicit = layer(
        x, x, query_mask=torch.as_tensor(ids != 0), value_mask=torch.as_tensor(ids != 0)
    )
    torch.testing.assert_close(out, explicit)
    del rng


def test_errors_match_keras(keras):
    with pytest.raises(ValueError, match="divisible"):
        layers.GroupQueryAttention(4, 3, 2)
    with pytest.raises(ValueError, match="sliding_window"):
        layers.GroupQueryAttention(4, 4, 2, sliding_window=0)
    with pytest.raises(ValueError, match="flash attention"):
        layers.GroupQueryAttention(4, 4, 2, dropout=0.1, flash_attention=True)


def test_dropout_is_per_sample_whatever_the_worker():
    layer = layers.GroupQueryAttention(**BASE, dropout=0.5, seed=3)
    x = torch.rand(6, 3, 6)
    layer(x, x)

    def step(lo, hi):
        streams.SAMPLES.begin(lo, hi - lo, 6, 5, 17)
        try:
            return layer(x[lo:hi], x[lo:hi], training=True)
        finally:
            streams.SAMPLES.end()

    whole = step(0, 6)
    assert not torch.allclose(whole, layer(x, x, training=False))
    for lo, hi in [(0, 3), (3, 6)]:
        torch.testing.assert_close(step(lo, hi), whole[lo:hi])


def test_functional_model_trains_and_keras_files_move_both_ways(keras, tmp_path):
    rng = np.random.default_rng(2)
    xq = rng.standard_normal((8, 3, 6)).astype("float32")
    xv = rng.standard_normal((8, 5, 6)).astype("float32")
    y = rng.standard_normal((8, 3, 6)).astype("float32")
    q, v = distkeras.Input((3, 6)), distkeras.Input((5, 6))
    out = layers.GroupQueryAttention(**BASE, use_gate=True)(q, v)
    model = distkeras.Model([q, v], out)
    model.compile(optimizer="adam", loss="mse")
    before = model.get_weights()
    model.fit([xq, xv], y, epochs=2, batch_size=4, verbose=0)
    assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / "ours.keras"
    model.save(path)
    theirs = keras.models.load_model(path)
    ours_pred = model.predict([xq, xv], verbose=0)
    np.testing.assert_allclose(
        np.asarray(theirs.predict([xq, xv], verbose=0)), ours_pred, atol=1e-5
    )
    back = tmp_path / "theirs.keras"
    theirs.save(back)
    loaded = distkeras.models.load_model(back)
    np.testing.assert_allclose(loaded.predict([xq, xv], verbose=0), ours_pred, atol=1e-5)
