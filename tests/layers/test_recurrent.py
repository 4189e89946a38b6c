"""SimpleRNN, LSTM, GRU, RNN(cell): Keras formulas step by step in numpy as references."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test

B, T, F, U = 3, 5, 4, 6


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------- numpy references (Keras)
def simple_step(weights, activation=np.tanh):
    kernel, recurrent, bias = weights

    def step(x, states):
        h = activation(x @ kernel + states[0] @ recurrent + bias)
        return h, [h]

    return step


def lstm_step(weights, activation=np.tanh, recurrent_activation=sigmoid):
    kernel, recurrent, bias = weights

    def step(x, states):
        h, c = states
        z = x @ kernel + h @ recurrent + bias
        i, f, cc, o = np.split(z, 4, axis=-1)  # Keras gate order i, f, c, o
        c = recurrent_activation(f) * c + recurrent_activation(i) * activation(cc)
        h = recurrent_activation(o) * activation(c)
        return h, [h, c]

    return step


def gru_step(weights, reset_after=True):
    kernel, recurrent, bias = weights
    u = recurrent.shape[0]

    def step(x, states):
        h = states[0]
        input_bias = bias[0] if reset_after else bias
        x_z, x_r, x_h = np.split(x @ kernel + input_bias, 3, axis=-1)  # Keras z, r, h
        if reset_after:
            r_z, r_r, r_h = np.split(h @ recurrent + bias[1], 3, axis=-1)
            z, r = sigmoid(x_z + r_z), sigmoid(x_r + r_r)
            hh = np.tanh(x_h + r * r_h)
        else:
            r_z, r_r = np.split(h @ recurrent[:, : 2 * u], 2, axis=-1)
            z, r = sigmoid(x_z + r_z), sigmoid(x_r + r_r)
            hh = np.tanh(x_h + (r * h) @ recurrent[:, 2 * u :])
        h = z * h + (1 - z) * hh
        return h, [h]

    return step


def run_reference(
    step,
    x,
    n_states,
    mask=None,
    go_backwards=False,
    return_sequences=False,
    zero_output_for_mask=False,
    initial=None,
):
    """Keras's RNN loop: masked steps keep the states and repeat the previous output."""
    x = np.asarray(x, dtype=np.float64)
    batch, time = x.shape[:2]
    mask = np.ones((batch, time), bool) if mask is None else np.asarray(mask, bool)
    if go_backwards:
        x, mask = x[:, ::-1], mask[:, ::-1]
    states = [np.zeros((batch, U))] * n_states if initial is None else list(initial)
    previous = np.zeros((batch, U))
    outputs = []
    for t in range(time):
        out, new = step(x[:, t], states)
        m = mask[:, t : t + 1]
        states = [np.where(m, n, s) for n, s in zip(new, states)]
        out = np.where(m, out, 0.0 if zero_output_for_mask else previous)
        previous = out
        outputs.append(out)
    seq = np.stack(outputs, 1)
    return (seq if return_sequences else seq[:, -1]), states


def random_weights(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.6, 0.6, size=s).astype("float32") for s in shapes]


def shapes_for(name, reset_after=True):
    gates = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}[name]
    bias = (2, 3 * U) if name == "GRU" and reset_after else (gates * U,)
    return [(F, gates * U), (U, gates * U), bias]


def step_for(name, weights, reset_after=True):
    if name == "SimpleRNN":
        return simple_step(weights)
    if name == "LSTM":
        return lstm_step(weights)
    return gru_step(weights, reset_after)


N_STATES = {"SimpleRNN": 1, "LSTM": 2, "GRU": 1}


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_keras_formula(name, return_sequences, go_backwards):
    shapes = shapes_for(name)
    weights = random_weights(shapes)

    def reference(x, w):
        step = step_for(name, w)
        out, _ = run_reference(
            step, x, N_STATES[name], go_backwards=go_backwards, return_sequences=return_sequences
        )
        return out

    run_layer_test(
        getattr(layers, name),
        {"units": U, "return_sequences": return_sequences, "go_backwards": go_backwards},
        (B, T, F),
        expected_output_shape=(B, T, U) if return_sequences else (B, U),
        expected_weight_shapes=shapes,
        reference=reference,
        weights=weights,
    )


def test_gru_reset_after_false_runs_python_loop_with_keras_formula():
    shapes = shapes_for("GRU", reset_after=False)
    weights = random_weights(shapes, seed=3)

    def reference(x, w):
        return run_reference(gru_step(w, reset_after=False), x, 1, return_sequences=True)[0]

    layer = run_layer_test(
        layers.GRU,
        {"units": U, "reset_after": False, "return_sequences": True},
        (B, T, F),
        expected_weight_shapes=shapes,
        reference=reference,
        weights=weights,
    )
    assert layer.cell.fused_op() is None


@pytest.mark.parametrize(
    "name, kwargs, np_kwargs",
    [
        ("SimpleRNN", {"activation": "relu"}, {"activation": lambda v: np.maximum(v, 0)}),
        ("SimpleRNN", {"activation": "sigmoid"}, {"activation": sigmoid}),
        ("LSTM", {"activation": "relu"}, {"activation": lambda v: np.maximum(v, 0)}),
        (
            "LSTM",
            {"recurrent_activation": "hard_sigmoid"},
            {"recurrent_activation": lambda v: np.clip(v / 6 + 0.5, 0, 1)},
        ),
    ],
)
def test_other_activations(name, kwargs, np_kwargs):
    weights = random_weights(shapes_for(name), seed=5)
    make_step = simple_step if name == "SimpleRNN" else lstm_step

    def reference(x, w):
        return run_reference(make_step(w, **np_kwargs), x, N_STATES[name])[0]

    run_layer_test(
        getattr(layers, name),
        {"units": U, **kwargs},
        (B, T, F),
        reference=reference,
        weights=weights,
    )


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_return_state_and_initial_state(name):
    weights = random_weights(shapes_for(name), seed=7)
    layer = getattr(layers, name)(U, return_sequences=True, return_state=True)
    x = np.random.default_rng(1).standard_normal((B, T, F)).astype("float32")
    initial = [np.random.default_rng(2 + i).standard_normal((B, U)) for i in range(N_STATES[name])]
    layer(torch.as_tensor(x))
    layer.set_weights(weights)
    out = layer(torch.as_tensor(x), initial_state=[torch.as_tensor(s).float() for s in initial])
    assert isinstance(out, (list, tuple)) and len(out) == 1 + N_STATES[name]
    seq, states = run_reference(
        step_for(name, weights), x, N_STATES[name], return_sequences=True, initial=initial
    )
    np.testing.assert_allclose(out[0].detach().numpy(), seq, atol=1e-5)
    for got, want in zip(out[1:], states):
        np.testing.assert_allclose(got.detach().numpy(), want, atol=1e-5)
    np.testing.assert_allclose(out[1].detach().numpy(), seq[:, -1], atol=1e-5)


MASKS = {
    "right_padded": [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]],
    "holes": [[1, 0, 1, 1, 0], [0, 0, 1, 0, 1], [1, 1, 0, 1, 1]],
    "empty_row": [[0, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 1, 1, 1, 1]],
}


def _tanh(v):  # a callable activation forces the Python time loop
    return torch.tanh(v)


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("path", ["fused", "loop"])
@pytest.mark.parametrize(
    "return_sequences, go_backwards, zero_output",
    [
        (True, False, False),
        (False, False, False),
        (True, True, False),
        (True, False, True),
        (False, True, True),
    ],
)
def test_masks_follow_keras(name, mask_name, path, return_sequences, go_backwards, zero_output):
    weights = random_weights(shapes_for(name), seed=11)
    kwargs = {"activation": _tanh} if path == "loop" else {}
    layer = getattr(layers, name)(
        U,
        return_sequences=return_sequences,
        return_state=True,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output,
        **kwargs,
    )
    rng = np.random.default_rng(4)
    x = rng.standard_normal((B, T, F)).astype("float32")
    initial = [rng.standard_normal((B, U)) for _ in range(N_STATES[name])]
    mask = np.array(MASKS[mask_name], bool)
    layer.build((B, T, F))
    layer.set_weights(weights)
    assert (layer.cell.fused_op() is not None) == (path == "fused")
    out = layer(
        torch.as_tensor(x),
        mask=torch.as_tensor(mask),
        initial_state=[torch.as_tensor(s).float() for s in initial],
    )
    want, states = run_reference(
        step_for(name, weights),
        x,
        N_STATES[name],
        mask=mask,
        go_backwards=go_backwards,
        return_sequences=return_sequences,
        zero_output_for_mask=zero_output,
        initial=initial,
    )
    np.testing.assert_allclose(out[0].detach().numpy(), want, atol=1e-5)
    for got, ref in zip(out[1:], states):
        np.testing.assert_allclose(got.detach().numpy(), ref, atol=1e-5)


def test_masked_gradients_of_fused_path_match_python_loop():
    weights = random_weights(shapes_for("LSTM"), seed=2)
    x = torch.randn(B, T, F)
    mask = torch.as_tensor(np.array(MASKS["holes"], bool))
    grads = []
    for kwargs in ({}, {"activation": _tanh}):
        layer = layers.LSTM(U, return_sequences=True, return_state=True, **kwargs)
        layer.build((B, T, F))
        layer.set_weights(weights)
        xi = x.clone().requires_grad_(True)
        seq, h, c = layer(xi, mask=mask)
        (seq.square().sum() + (h * c).sum() + c.sum()).backward()
        grads.append([xi.grad] + [p.grad for p in layer.trainable_weights])
    for fused, loop in zip(*grads):
        torch.testing.assert_close(fused, loop, atol=1e-5, rtol=1e-4)


def test_mask_from_embedding_and_masking_layers():
    ids = torch.tensor([[3, 5, 2, 0, 0], [7, 0, 0, 0, 0]])
    emb = layers.Embedding(10, F, mask_zero=True)
    lstm = layers.LSTM(U, return_sequences=True)
    out = lstm(emb(ids))
    assert torch.equal(out._keras_mask, ids != 0)
    last = layers.LSTM(U)
    last.build((None, None, F))
    short = last(emb(ids[:1, :3]))
    full = last(emb(ids[:1]))
    torch.testing.assert_close(full, short)
    x = torch.randn(2, 4, F)
    x[0, 2:] = 0.0
    masked = layers.Masking()(x)
    torch.testing.assert_close(last(masked)[:1], last(x[:1, :2]))


def test_initial_weights_follow_keras():
    layer = layers.LSTM(U)
    layer.build((None, T, F))
    kernel, recurrent, bias = layer.get_weights()
    np.testing.assert_array_equal(bias, np.r_[np.zeros(U), np.ones(U), np.zeros(2 * U)])
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(U), atol=1e-5)
    limit = np.sqrt(6 / (F + 4 * U))
    assert np.abs(kernel).max() <= limit
    no_forget = layers.LSTM(U, unit_forget_bias=False)
    no_forget.build((None, T, F))
    assert not no_forget.get_weights()[2].any()
    gru = layers.GRU(U, use_bias=False)
    gru.build((None, T, F))
    assert [w.shape for w in gru.get_weights()] == [(F, 3 * U), (U, 3 * U)]


def test_storage_is_torch_fused_layout():
    """The stored weights are what torch.nn.GRU/LSTM hold (gates r,z,n / i,f,g,o)."""
    weights = random_weights(shapes_for("GRU"), seed=9)
    layer = layers.GRU(U, return_sequences=True)
    layer.build((None, T, F))
    layer.set_weights(weights)
    ref = torch.nn.GRU(F, U, batch_first=True)
    kernel, recurrent, bias = weights

    def rzn(w):  # Keras z, r, h columns -> torch r, z, n rows
        z, r, h = np.split(w, 3, axis=-1)
        return torch.as_tensor(np.concatenate([r, z, h], axis=-1))

    with torch.no_grad():
        ref.weight_ih_l0.copy_(rzn(kernel).T)
        ref.weight_hh_l0.copy_(rzn(recurrent).T)
        ref.bias_ih_l0.copy_(rzn(bias[0]))
        ref.bias_hh_l0.copy_(rzn(bias[1]))
    x = torch.randn(B, T, F)
    torch.testing.assert_close(layer(x), ref(x)[0])
    torch.testing.assert_close(layer.cell.kernel, ref.weight_ih_l0)


def test_dropout_only_while_training():
    weights = random_weights(shapes_for("LSTM"), seed=1)
    x = torch.randn(B, T, F)
    for kwargs in ({"dropout": 0.5}, {"recurrent_dropout": 0.5}):
        layer = layers.LSTM(U, seed=3, **kwargs)
        layer.build((None, T, F))
        layer.set_weights(weights)
        plain = layers.LSTM(U)
        plain.build((None, T, F))
        plain.set_weights(weights)
        torch.testing.assert_close(layer(x, training=False), plain(x))
        dropped = layer(x, training=True)
        assert torch.isfinite(dropped).all()
        assert not torch.allclose(dropped, plain(x))
    with pytest.raises(ValueError, match="dropout"):
        layers.GRU(U, dropout=1.5)


def test_input_dropout_mask_is_shared_by_all_steps():
    layer = layers.SimpleRNN(U, activation="relu", dropout=0.5, return_sequences=True)
    layer.build((None, T, F))
    kernel = random_weights([(F, U)], seed=2)[0]
    layer.set_weights([kernel, np.zeros((U, U)), np.zeros(U)])
    x = torch.ones(B, T, F)  # the same input at every step
    out = layer(x, training=True).detach().numpy()
    np.testing.assert_allclose(out, np.repeat(out[:, :1], T, axis=1))
    assert not np.allclose(out, layer(x, training=False).detach().numpy())


def test_symbolic_unknown_time_and_functional_encoder_decoder():
    inputs = distkeras.Input(shape=(None, F))
    seq, h, c = layers.LSTM(U, return_sequences=True, return_state=True)(inputs)
    assert seq.shape == (None, None, U) and h.shape == (None, U) and c.shape == (None, U)
    decoded = layers.LSTM(U)(seq, initial_state=[h, c])
    assert decoded.shape == (None, U)
    model = distkeras.Model(inputs, decoded)
    assert tuple(model(torch.randn(2, 7, F)).shape) == (2, U)


def test_rnn_with_cells_matches_layers_and_config_round_trips():
    weights = random_weights(shapes_for("GRU"), seed=4)
    x = torch.randn(B, T, F)
    gru = layers.GRU(U, return_sequences=True)
    gru.build((None, T, F))
    gru.set_weights(weights)
    rnn = layers.RNN(layers.GRUCell(U), return_sequences=True)
    rnn.build((None, T, F))
    rnn.set_weights(weights)
    torch.testing.assert_close(rnn(x), gru(x))
    clone = layers.RNN.from_config(rnn.get_config())
    assert isinstance(clone.cell, layers.GRUCell) and clone.return_sequences
    cell = layers.LSTMCell(U)
    h, (h2, c) = cell(x[:, 0], [torch.zeros(B, U), torch.zeros(B, U)])
    ref_h, _ = lstm_step(cell.get_weights())(x[:, 0].numpy(), [np.zeros((B, U))] * 2)
    np.testing.assert_allclose(h.detach().numpy(), ref_h, atol=1e-5)


def test_custom_cell_in_rnn():
    class MinimalCell(layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

        def call(self, inputs, states):
            out = inputs @ self.kernel + states
            return out, out

    layer = layers.RNN(MinimalCell(U), return_sequences=True)
    x = torch.randn(B, T, F)
    mask = torch.as_tensor(np.array(MASKS["holes"], bool))
    out = layer(x, mask=mask)
    kernel = layer.get_weights()[0]

    def step(xt, states):
        h = xt @ kernel + states[0]
        return h, [h]

    want, _ = run_reference(step, x.numpy(), 1, mask=mask.numpy(), return_sequences=True)
    np.testing.assert_allclose(out.detach().numpy(), want, atol=1e-5)


def test_stateful_carries_states_between_calls():
    weights = random_weights(shapes_for("GRU"), seed=6)
    x = torch.randn(2, 6, F)
    whole = layers.GRU(U)
    whole.build((None, 6, F))
    whole.set_weights(weights)
    stateful = layers.GRU(U, stateful=True)
    stateful.build((2, 3, F))
    stateful.set_weights(weights)
    stateful(x[:, :3])
    torch.testing.assert_close(stateful(x[:, 3:]), whole(x))
    stateful.reset_state()
    torch.testing.assert_close(stateful(x[:, :3]), whole(x[:, :3]))
    with pytest.raises(ValueError, match="batch size"):
        stateful(x[:1, :3])


def test_argument_errors_name_the_value():
    with pytest.raises(ValueError, match="units=0"):
        layers.LSTM(0)
    with pytest.raises(ValueError, match="use_cudnn"):
        layers.GRU(U, use_cudnn="yes")
    layer = layers.LSTM(U)
    with pytest.raises(ValueError, match="initial state"):
        layer(torch.randn(B, T, F), initial_state=[torch.zeros(B, U)])
    with pytest.raises(ValueError, match="time"):
        layers.SimpleRNN(U)(torch.randn(B, F))


def test_embedding_lstm_dense_model_trains_a_step():
    distkeras.utils.set_random_seed(0)
    model = distkeras.Sequential(
        [
            distkeras.Input(shape=(None,), dtype="int32"),
            layers.Embedding(20, 8, mask_zero=True),
            layers.LSTM(U),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    ids = np.array([[4, 9, 3, 0, 0], [1, 2, 0, 0, 0], [5, 6, 7, 8, 9]])
    target = np.array([[1.0], [0.0], [1.0]], dtype="float32")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(ids, target, epochs=3, batch_size=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    # Padding is invisible: the sequences without their padding give the same outputs.
    full = model.predict(ids, verbose=0)
    np.testing.assert_allclose(model.predict(ids[1:2, :2], verbose=0), full[1:2], atol=1e-6)
    np.testing.assert_allclose(model.predict(ids[:1, :3], verbose=0), full[:1], atol=1e-6)
