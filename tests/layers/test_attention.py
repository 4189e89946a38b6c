"""MultiHeadAttention against an explicit numpy einsum computation with Keras's weights."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras.layers import AdditiveAttention, Attention, Dense, MultiHeadAttention
from tests.harness import run_layer_test


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mha_reference(query, value, weights, key=None, mask=None, key_dim=None):
    """Keras's formula: per-head projections, query scaled by 1/sqrt(key_dim), masked softmax
    (masked logits -> -1e9, probabilities times the mask), combine, output projection.

    ``mask`` is a boolean (B, T, S) array, True = attend. Returns (output, scores).
    """
    key = value if key is None else key
    wq, bq, wk, bk, wv, bv, wo, bo = weights
    key_dim = wq.shape[-1]
    q = np.einsum("btd,dhk->bthk", query, wq) + bq
    k = np.einsum("bsd,dhk->bshk", key, wk) + bk
    v = np.einsum("bsd,dhv->bshv", value, wv) + bv
    logits = np.einsum("bthk,bshk->bhts", q / np.sqrt(key_dim), k)
    if mask is not None:
        m = mask[:, None, :, :]
        logits = np.where(m, logits, -1e9)
        scores = _softmax(logits) * m
    else:
        scores = _softmax(logits)
    attended = np.einsum("bhts,bshv->bthv", scores, v)
    out = np.einsum("bthv,hvo->bto", attended, wo) + bo
    return out, scores


def _random_weights(rng, dims, heads, key_dim, value_dim, out_dim):
    q_dim, k_dim, v_dim = dims
    shapes = [
        (q_dim, heads, key_dim),
        (heads, key_dim),
        (k_dim, heads, key_dim),
        (heads, key_dim),
        (v_dim, heads, value_dim),
        (heads, value_dim),
        (heads, value_dim, out_dim),
        (out_dim,),
    ]
    return [rng.normal(scale=0.5, size=s).astype("float32") for s in shapes]


def test_harness_cross_attention_keras_layout():
    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 4, 6)).astype("float32")
    value = rng.normal(size=(2, 5, 3)).astype("float32")
    weights = _random_weights(rng, (6, 3, 3), 2, 4, 4, 6)
    layer = run_layer_test(
        MultiHeadAttention,
        {"num_heads": 2, "key_dim": 4},
        input_data=[query, value],
        expected_output_shape=(2, 4, 6),
        expected_weight_shapes=[w.shape for w in weights],
        weights=weights,
        reference=lambda x, w: mha_reference(x[0], x[1], w)[0],
    )
    names = [f"{s.name}" for s in layer._weight_spec_list()]
    assert names == ["kernel", "bias"] * 4
    assert [sub.name for sub in layer._sublayers()] == ["query", "key", "value", "attention_output"]


def test_value_dim_output_shape_and_separate_key():
    rng = np.random.default_rng(1)
    query = rng.normal(size=(2, 3, 4)).astype("float32")
    value = rng.normal(size=(2, 5, 6)).astype("float32")
    key = rng.normal(size=(2, 5, 2)).astype("float32")
    layer = MultiHeadAttention(num_heads=3, key_dim=2, value_dim=5, output_shape=7)
    out = layer(torch.as_tensor(query), torch.as_tensor(value), key=torch.as_tensor(key))
    assert tuple(out.shape) == (2, 3, 7)
    weights = _random_weights(rng, (4, 2, 6), 3, 2, 5, 7)
    layer.set_weights(weights)
    out = layer(torch.as_tensor(query), torch.as_tensor(value), key=torch.as_tensor(key))
    expected, _ = mha_reference(query, value, weights, key=key)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-5)

    wide = MultiHeadAttention(num_heads=2, key_dim=2, output_shape=(3, 2))
    out = wide(torch.as_tensor(query), torch.as_tensor(query))
    assert tuple(out.shape) == (2, 3, 3, 2)
    assert wide.get_weights()[-2].shape == (2, 2, 3, 2)
    assert wide.get_weights()[-1].shape == (3, 2)


def _masked_case(seed=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    layer = MultiHeadAttention(num_heads=2, key_dim=3)
    layer(torch.as_tensor(x), torch.as_tensor(x))
    weights = _random_weights(rng, (4, 4, 4), 2, 3, 3, 4)
    layer.set_weights(weights)
    return rng, x, layer, weights


@pytest.mark.parametrize("scores", [False, True])
def test_causal_mask(scores):
    _, x, layer, weights = _masked_case()
    xt = torch.as_tensor(x)
    result = layer(xt, xt, use_causal_mask=True, return_attention_scores=scores)
    causal = np.tril(np.ones((5, 5), bool))[None].repeat(2, 0)
    expected, expected_scores = mha_reference(x, x, weights, mask=causal)
    out = result[0] if scores else result
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    if scores:
        assert tuple(result[1].shape) == (2, 2, 5, 5)
        np.testing.assert_allclose(result[1].detach().numpy(), expected_scores, atol=1e-6)
        assert np.all(result[1].detach().numpy()[:, :, 0, 1:] == 0)


def test_causal_mask_cross_attention_is_top_left_aligned():
    rng = np.random.default_rng(11)
    q = rng.normal(size=(2, 3, 4)).astype("float32")
    v = rng.normal(size=(2, 5, 4)).astype("float32")
    layer = MultiHeadAttention(num_heads=2, key_dim=2)
    out = layer(torch.as_tensor(q), torch.as_tensor(v), use_causal_mask=True)
    causal = np.broadcast_to(np.tril(np.ones((3, 5), bool)), (2, 3, 5))
    expected, _ = mha_reference(q, v, layer.get_weights(), mask=causal)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scores", [False, True])
def test_padding_masks_from_keras_mask_and_attention_mask(scores):
    rng, x, layer, weights = _masked_case(3)
    query_mask = np.array([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], bool)
    value_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    attention_mask = rng.random((2, 5, 5)) > 0.3
    attention_mask[0, 2] = False  # a query row with nothing to attend to
    q = torch.as_tensor(x)
    q._keras_mask = torch.as_tensor(query_mask)
    v = torch.as_tensor(x).clone()
    v._keras_mask = torch.as_tensor(value_mask)
    result = layer(
        q,
        v,
        attention_mask=torch.as_tensor(attention_mask),
        use_causal_mask=True,
        return_attention_scores=scores,
    )
    out = result[0] if scores else result
    combined = (
        query_mask[:, :, None]
        & value_mask[:, None, :]
        & attention_mask
        & np.tril(np.ones((5, 5), bool))
    )
    expected, expected_scores = mha_reference(x, x, weights, mask=combined)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    # Fully masked rows (masked queries, the emptied row) output just the output bias.
    np.testing.assert_allclose(out.detach().numpy()[1, 3], weights[-1], atol=1e-6)
    np.testing.assert_allclose(out.detach().numpy()[0, 2], weights[-1], atol=1e-6)
    # The query's Keras mask is the output's mask.
    np.testing.assert_array_equal(out._keras_mask.numpy(), query_mask)
    if scores:
        np.testing.assert_allclose(result[1].detach().numpy(), expected_scores, atol=1e-6)


def test_explicit_mask_arguments_and_integer_attention_mask():
    _, x, layer, weights = _masked_case(4)
    value_mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], bool)
    key_mask = np.array([[1, 0, 1, 1, 1], [1, 1, 1, 1, 1]], bool)
    attention_mask = np.ones((2, 5, 5), "int32")
    attention_mask[:, :, 4] = 0
    xt = torch.as_tensor(x)
    out = layer(
        xt,
        xt,
        key=xt,
        value_mask=torch.as_tensor(value_mask),
        key_mask=torch.as_tensor(key_mask),
        attention_mask=torch.as_tensor(attention_mask),
    )
    combined = value_mask[:, None, :] & key_mask[:, None, :] & attention_mask.astype(bool)
    expected, _ = mha_reference(x, x, weights, mask=np.broadcast_to(combined, (2, 5, 5)))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    # A (T, S) mask broadcasts over the batch, as in Keras.
    two_d = np.tril(np.ones((5, 5), bool))
    out = layer(xt, xt, attention_mask=torch.as_tensor(two_d))
    expected, _ = mha_reference(x, x, weights, mask=np.broadcast_to(two_d, (2, 5, 5)))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_higher_rank_inputs_attend_over_all_positions():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 2, 3, 4)).astype("float32")
    layer = MultiHeadAttention(num_heads=2, key_dim=2)
    out, scores = layer(torch.as_tensor(x), torch.as_tensor(x), return_attention_scores=True)
    assert tuple(out.shape) == (2, 2, 3, 4)
    assert tuple(scores.shape) == (2, 2, 2, 3, 2, 3)
    flat = x.reshape(2, 6, 4)
    expected, expected_scores = mha_reference(flat, flat, layer.get_weights())
    np.testing.assert_allclose(out.detach().numpy().reshape(2, 6, 4), expected, atol=1e-5)
    np.testing.assert_allclose(
        scores.detach().numpy().reshape(2, 2, 6, 6), expected_scores, atol=1e-6
    )
    # attention_axes naming the sequence axis is the default; other axes are not supported.
    MultiHeadAttention(num_heads=1, key_dim=2, attention_axes=1)(
        torch.ones(1, 3, 2), torch.ones(1, 3, 2)
    )
    with pytest.raises(NotImplementedError, match="attention_axes"):
        MultiHeadAttention(num_heads=1, key_dim=2, attention_axes=(2,))(
            torch.as_tensor(x), torch.as_tensor(x)
        )


def test_dropout_only_in_training_and_keyword_call():
    rng = np.random.default_rng(6)
    x = torch.as_tensor(rng.normal(size=(2, 6, 4)).astype("float32"))
    layer = MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.5)
    inference = layer(query=x, value=x)
    torch.testing.assert_close(layer(x, x, training=False), inference)
    expected, _ = mha_reference(x.numpy(), x.numpy(), layer.get_weights())
    np.testing.assert_allclose(inference.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(layer(x, x, training=True), inference)
    _, scores = layer(x, x, training=True, return_attention_scores=True)
    # Scores are the probabilities before dropout, as Keras returns them.
    torch.testing.assert_close(scores.sum(-1), torch.ones(2, 2, 6))


def test_config_build_config_regularizers_and_errors():
    layer = MultiHeadAttention(
        num_heads=2,
        key_dim=3,
        kernel_regularizer=distkeras.regularizers.l2(0.01),
        activity_regularizer=distkeras.regularizers.l1(0.1),
        seed=3,
    )
    q, v = torch.randn(2, 4, 5), torch.randn(2, 6, 7)
    layer(q, v)
    config = layer.get_config()
    for key, want in [("num_heads", 2), ("key_dim", 3), ("value_dim", 3), ("dropout", 0.0)]:
        assert config[key] == want
    assert config["output_shape"] is None and config["attention_axes"] is None
    assert config["seed"] == 3
    clone = MultiHeadAttention.from_config(config)
    clone.build_from_config(layer.get_build_config())
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in layer.get_weights()]
    clone.set_weights(layer.get_weights())
    torch.testing.assert_close(clone(q, v), layer(q, v))
    # Four kernel penalties plus the activity penalty of the four projection outputs.
    assert len(layer.losses) == 8
    kernels = [w for w in layer.get_weights() if w.ndim == 3]
    want = sum(0.01 * float((k.astype("float64") ** 2).sum()) for k in kernels)
    np.testing.assert_allclose(sum(float(t.detach()) for t in layer.losses[:4]), want, rtol=1e-5)

    with pytest.raises(ValueError, match="num_heads=0"):
        MultiHeadAttention(num_heads=0, key_dim=2)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(num_heads=1, key_dim=2, dropout=1.5)
    with pytest.raises(ValueError, match="key"):
        MultiHeadAttention(num_heads=1, key_dim=2)(q, v, key=torch.randn(2, 3, 7))


def test_functional_self_attention_model_training_step():
    rng = np.random.default_rng(7)
    inputs = distkeras.Input(shape=(6, 8))
    attended = MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(inputs, inputs)
    outputs = Dense(3)(attended)
    model = distkeras.Model(inputs, outputs)
    assert [tuple(w.shape) for w in model.get_weights()][:8] == [
        (8, 2, 4),
        (2, 4),
        (8, 2, 4),
        (2, 4),
        (8, 2, 4),
        (2, 4),
        (2, 4, 8),
        (8,),
    ]
    x = torch.as_tensor(rng.normal(size=(4, 6, 8)).astype("float32"))
    y = torch.as_tensor(rng.normal(size=(4, 6, 3)).astype("float32"))
    mha_weights = model.get_layer("mha").get_weights()
    dense_kernel, dense_bias = model.get_weights()[8:]
    expected = mha_reference(x.numpy(), x.numpy(), mha_weights)[0] @ dense_kernel + dense_bias
    np.testing.assert_allclose(model(x).detach().numpy(), expected, rtol=1e-4, atol=1e-5)

    before = [w.copy() for w in model.get_weights()]
    params = model.trainable_weights
    assert len(params) == 10
    optimizer = torch.optim.SGD(params, lr=0.1)
    loss = ((model(x, training=True) - y) ** 2).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    optimizer.step()
    new_loss = ((model(x) - y) ** 2).mean()
    assert float(new_loss.detach()) < float(loss.detach())
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# ---------------------------------------------------------------- Attention / AdditiveAttention
def _luong_reference(q, v, k=None, scale=1.0, q_mask=None, v_mask=None, causal=False):
    k = v if k is None else k
    scores = np.einsum("btd,bsd->bts", q, k) * scale
    keep = np.ones(scores.shape, bool)
    if v_mask is not None:
        keep &= v_mask[:, None, :]
    if causal:
        keep &= np.tril(np.ones(scores.shape[1:], bool))
    weights = _softmax(scores - 1e9 * (~keep))
    out = weights @ v
    if q_mask is not None:
        out = out * q_mask[:, :, None]
    return out, weights


def test_attention_dot_matches_formula():
    rng = np.random.default_rng(8)
    q = rng.normal(size=(2, 3, 4)).astype("float32")
    v = rng.normal(size=(2, 5, 4)).astype("float32")
    run_layer_test(
        Attention,
        {"use_scale": True},
        input_data=[q, v],
        expected_output_shape=(2, 3, 4),
        expected_weight_shapes=[()],
        weights=[np.array(0.7, "float32")],
        reference=lambda x, w: _luong_reference(x[0], x[1], scale=0.7)[0],
    )
    k = rng.normal(size=(2, 5, 4)).astype("float32")
    out = Attention()([torch.as_tensor(q), torch.as_tensor(v), torch.as_tensor(k)])
    np.testing.assert_allclose(out.numpy(), _luong_reference(q, v, k)[0], rtol=1e-5, atol=1e-6)


def test_attention_masks_causal_and_scores():
    rng = np.random.default_rng(9)
    q = rng.normal(size=(2, 4, 3)).astype("float32")
    v = rng.normal(size=(2, 4, 3)).astype("float32")
    q_mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    v_mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    qt, vt = torch.as_tensor(q), torch.as_tensor(v)
    qt._keras_mask = torch.as_tensor(q_mask)
    vt._keras_mask = torch.as_tensor(v_mask)
    out, scores = Attention()([qt, vt], return_attention_scores=True, use_causal_mask=True)
    ref_out, ref_scores = _luong_reference(q, v, q_mask=q_mask, v_mask=v_mask, causal=True)
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores.numpy(), ref_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out._keras_mask.numpy(), q_mask)
    with pytest.raises(ValueError, match="list of inputs"):
        Attention()(qt)
    with pytest.raises(ValueError, match="score_mode"):
        Attention(score_mode="cosine")


def test_attention_concat_and_additive_match_formula():
    rng = np.random.default_rng(10)
    q = rng.normal(size=(2, 3, 4)).astype("float32")
    v = rng.normal(size=(2, 5, 4)).astype("float32")
    summed = q[:, :, None, :] + v[:, None, :, :]

    def concat_reference(x, w):
        scale, concat_weight = w
        scores = concat_weight * np.tanh(scale * summed).sum(-1)
        return _softmax(scores) @ v

    run_layer_test(
        Attention,
        {"use_scale": True, "score_mode": "concat"},
        input_data=[q, v],
        expected_weight_shapes=[(), ()],
        weights=[np.array(0.5, "float32"), np.array(1.5, "float32")],
        reference=concat_reference,
    )
    scale = rng.normal(size=4).astype("float32")
    layer = run_layer_test(
        AdditiveAttention,
        {},
        input_data=[q, v],
        expected_output_shape=(2, 3, 4),
        expected_weight_shapes=[(4,)],
        weights=[scale],
        reference=lambda x, w: _softmax((w[0] * np.tanh(summed)).sum(-1)) @ v,
    )
    assert "score_mode" not in layer.get_config()
    out = AdditiveAttention(use_scale=False)([torch.as_tensor(q), torch.as_tensor(v)])
    np.testing.assert_allclose(out.numpy(), _softmax(np.tanh(summed).sum(-1)) @ v, atol=1e-5)
