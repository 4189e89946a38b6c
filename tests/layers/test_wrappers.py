"""Bidirectional and TimeDistributed against numpy references."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test
from tests.layers.test_recurrent import (
    MASKS,
    U,
    gru_step,
    lstm_step,
    random_weights,
    run_reference,
    shapes_for,
)

B, T, F = 3, 5, 4

MERGE = {
    "concat": lambda a, b: np.concatenate([a, b], axis=-1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
}


def bidirectional_reference(x, weights, return_sequences, mask=None, step=lstm_step, n=2):
    half = len(weights) // 2
    kwargs = dict(
        mask=mask, return_sequences=return_sequences, zero_output_for_mask=return_sequences
    )
    fwd, fwd_states = run_reference(step(weights[:half]), x, n, **kwargs)
    bwd, bwd_states = run_reference(step(weights[half:]), x, n, go_backwards=True, **kwargs)
    if return_sequences:
        bwd = bwd[:, ::-1]
    return fwd, bwd, fwd_states + bwd_states


@pytest.mark.parametrize("merge_mode", list(MERGE))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_merge_modes(merge_mode, return_sequences):
    shapes = shapes_for("LSTM") * 2  # forward weights, then backward weights
    weights = random_weights(shapes[:3], seed=1) + random_weights(shapes[3:], seed=2)

    def reference(x, w):
        fwd, bwd, _ = bidirectional_reference(x, w, return_sequences)
        return MERGE[merge_mode](fwd, bwd)

    width = 2 * U if merge_mode == "concat" else U
    run_layer_test(
        layers.Bidirectional,
        {"layer": layers.LSTM(U, return_sequences=return_sequences), "merge_mode": merge_mode},
        (B, T, F),
        expected_output_shape=(B, T, width) if return_sequences else (B, width),
        expected_weight_shapes=shapes,
        reference=reference,
        weights=weights,
    )


@pytest.mark.parametrize("mask_name", ["right_padded", "holes"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_masks_zero_masked_outputs(mask_name, return_sequences):
    weights = random_weights(shapes_for("GRU"), seed=3) + random_weights(shapes_for("GRU"), 4)
    layer = layers.Bidirectional(layers.GRU(U, return_sequences=return_sequences))
    layer.build((None, T, F))
    layer.set_weights(weights)
    x = np.random.default_rng(0).standard_normal((B, T, F)).astype("float32")
    mask = np.array(MASKS[mask_name], bool)
    out = layer(torch.as_tensor(x), mask=torch.as_tensor(mask))
    fwd, bwd, _ = bidirectional_reference(
        x, weights, return_sequences, mask=mask, step=gru_step, n=1
    )
    np.testing.assert_allclose(out.detach().numpy(), np.concatenate([fwd, bwd], -1), atol=1e-5)
    if return_sequences:
        assert not out.detach().numpy()[~mask].any()
        assert torch.equal(out._keras_mask, torch.as_tensor(mask))


def test_bidirectional_return_state_none_merge_and_initial_state():
    weights = random_weights(shapes_for("LSTM"), seed=5) + random_weights(shapes_for("LSTM"), 6)
    layer = layers.Bidirectional(
        layers.LSTM(U, return_sequences=True, return_state=True), merge_mode=None
    )
    layer.build((None, T, F))
    layer.set_weights(weights)
    x = np.random.default_rng(1).standard_normal((B, T, F)).astype("float32")
    initial = [np.random.default_rng(10 + i).standard_normal((B, U)) for i in range(4)]
    out = layer(torch.as_tensor(x), initial_state=[torch.as_tensor(s).float() for s in initial])
    assert len(out) == 6  # forward output, backward output, h_f, c_f, h_b, c_b
    half = 3
    fwd, fwd_states = run_reference(
        lstm_step(weights[:half]), x, 2, return_sequences=True, initial=initial[:2]
    )
    bwd, bwd_states = run_reference(
        lstm_step(weights[half:]),
        x,
        2,
        return_sequences=True,
        go_backwards=True,
        initial=initial[2:],
    )
    for got, want in zip(out, [fwd, bwd[:, ::-1], *fwd_states, *bwd_states]):
        np.testing.assert_allclose(got.detach().numpy(), want, atol=1e-5)


def test_bidirectional_names_config_and_errors():
    layer = layers.Bidirectional(layers.LSTM(U, name="enc"))
    assert layer.forward_layer.name == "forward_enc"
    assert layer.backward_layer.name == "backward_enc"
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    clone = layers.Bidirectional.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    custom = layers.Bidirectional(
        layers.LSTM(U), backward_layer=layers.GRU(U, go_backwards=True), merge_mode="sum"
    )
    assert isinstance(custom.backward_layer, layers.GRU)
    assert tuple(custom(torch.randn(2, T, F)).shape) == (2, U)
    with pytest.raises(ValueError, match="merge_mode"):
        layers.Bidirectional(layers.LSTM(U), merge_mode="max")
    with pytest.raises(ValueError, match="go_backwards"):
        layers.Bidirectional(layers.LSTM(U), backward_layer=layers.LSTM(U))
    with pytest.raises(ValueError, match="return_sequences"):
        layers.Bidirectional(
            layers.LSTM(U), backward_layer=layers.LSTM(U, go_backwards=True, return_sequences=True)
        )


def test_bidirectional_in_functional_model():
    inputs = distkeras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(12, F, mask_zero=True)(inputs)
    x = layers.Bidirectional(layers.LSTM(U, return_sequences=True))(x)
    x = layers.Bidirectional(layers.GRU(U))(x)
    outputs = layers.Dense(2)(x)
    model = distkeras.Model(inputs, outputs)
    ids = torch.tensor([[3, 4, 5, 0], [7, 0, 0, 0]])
    out = model(ids)
    assert tuple(out.shape) == (2, 2)
    torch.testing.assert_close(model(ids[1:, :1]), out[1:])


def test_time_distributed_dense_equals_dense_on_flattened_input():
    dense_weights = random_weights([(F, 7), (7,)], seed=8)

    def reference(x, w):
        flat = x.reshape(-1, F) @ w[0] + w[1]
        return flat.reshape(B, T, 7)

    layer = run_layer_test(
        layers.TimeDistributed,
        {"layer": layers.Dense(7)},
        (B, T, F),
        expected_output_shape=(B, T, 7),
        expected_weight_shapes=[(F, 7), (7,)],
        reference=reference,
        weights=dense_weights,
    )
    x = torch.randn(B, T, F)
    dense = layers.Dense(7)
    dense(x[0])
    dense.set_weights(dense_weights)
    torch.testing.assert_close(layer(x), dense(x.reshape(-1, F)).reshape(B, T, 7))


def test_time_distributed_keeps_mask_and_needs_rank_three():
    layer = layers.TimeDistributed(layers.Dense(2))
    x = torch.randn(B, T, F)
    mask = torch.as_tensor(np.array(MASKS["holes"], bool))
    out = layer(x, mask=mask)
    assert torch.equal(out._keras_mask, mask)
    symbolic = layers.TimeDistributed(layers.Dense(3))(distkeras.Input(shape=(None, F)))
    assert symbolic.shape == (None, None, 3)
    with pytest.raises(ValueError, match="rank 3"):
        layers.TimeDistributed(layers.Dense(2))(torch.randn(B, F))
    with pytest.raises(ValueError, match="layer"):
        layers.TimeDistributed("dense")
