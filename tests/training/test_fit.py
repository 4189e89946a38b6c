"""fit() against a hand-written torch loop that applies Keras's formulas step by step.

The reference owns its own copy of the weights (from ``get_weights``), computes each batch's
loss with Keras's definitions (crossentropy on probabilities: rows normalised, clipped to
[1e-7, 1 - 1e-7]; "sum_over_batch_size" reduction) and updates with Keras's SGD/Adam formulas.
"""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers, optimizers

EPS = 1e-7


# ------------------------------------------------------------------ the torch reference
def forward(weights, x):
    """Dense(relu) -> Dense(softmax) with Keras-layout weights [k1, b1, k2, b2]."""
    k1, b1, k2, b2 = weights
    hidden = torch.relu(x @ k1 + b1)
    return torch.softmax(hidden @ k2 + b2, dim=-1)


def per_sample_loss(name, y, p):
    if name == "categorical_crossentropy":
        p = p / p.sum(dim=-1, keepdim=True)
        p = p.clamp(EPS, 1 - EPS)
        return -(y * torch.log(p)).sum(dim=-1)
    if name == "mse":
        return ((y - p) ** 2).mean(dim=-1)
    raise AssertionError(name)


class ReferenceSGD:
    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum, self.m = lr, momentum, None

    def step(self, weights, grads):
        if self.m is None:
            self.m = [torch.zeros_like(w) for w in weights]
        for w, g, m in zip(weights, grads, self.m):
            if self.momentum:
                m.mul_(self.momentum).sub_(self.lr * g)
                w.add_(m)
            else:
                w.sub_(self.lr * g)


class ReferenceAdam:
    def __init__(self, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.t, self.m, self.v = 0, None, None

    def step(self, weights, grads):
        if self.m is None:
            self.m = [torch.zeros_like(w) for w in weights]
            self.v = [torch.zeros_like(w) for w in weights]
        self.t += 1
        alpha = self.lr * np.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        for w, g, m, v in zip(weights, grads, self.m, self.v):
            m.mul_(self.b1).add_((1 - self.b1) * g)
            v.mul_(self.b2).add_((1 - self.b2) * g * g)
            w.sub_(alpha * m / (torch.sqrt(v) + self.eps))


def reference_fit(initial, x, y, loss, optimizer, batch_size, sample_weight=None, order=None):
    """One epoch in ``order``; returns (weights, [(batch_len, batch_loss, batch_correct)])."""
    weights = [torch.tensor(w, dtype=torch.float64) for w in initial]
    x = torch.tensor(x, dtype=torch.float64)
    y = torch.tensor(y, dtype=torch.float64)
    sw = None if sample_weight is None else torch.tensor(sample_weight, dtype=torch.float64)
    order = np.arange(len(x)) if order is None else np.asarray(order)
    records = []
    for start in range(0, len(x), batch_size):
        idx = torch.as_tensor(order[start : start + batch_size])
        params = [w.clone().requires_grad_(True) for w in weights]
        p = forward(params, x[idx])
        values = per_sample_loss(loss, y[idx], p)
        if sw is not None:
            values = values * sw[idx]
        batch_loss = values.sum() / len(idx)  # sum_over_batch_size: count, not weight sum
        grads = torch.autograd.grad(batch_loss, params)
        correct = (p.argmax(-1) == y[idx].argmax(-1)).sum().item()
        records.append((len(idx), batch_loss.item(), correct))
        with torch.no_grad():
            optimizer.step(weights, grads)
    return [w.numpy() for w in weights], records


def make_model(optimizer, loss="categorical_crossentropy", metrics=None):
    model = distkeras.Sequential(
        [layers.Dense(6, activation="relu", input_dim=4), layers.Dense(3, activation="softmax")]
    )
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def make_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype("float32")
    labels = rng.integers(0, 3, n)
    return x, np.eye(3, dtype="float32")[labels], labels


def assert_weights_close(model, expected, atol=2e-6):
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol)


# ------------------------------------------------------------------------ one step
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "mse"])
@pytest.mark.parametrize(
    "name, make, make_ref",
    [
        ("sgd", lambda: optimizers.SGD(0.1), lambda: ReferenceSGD(0.1)),
        (
            "sgd_momentum",
            lambda: optimizers.SGD(0.05, momentum=0.9),
            lambda: ReferenceSGD(0.05, momentum=0.9),
        ),
        ("adam", lambda: "adam", lambda: ReferenceAdam()),
        ("adam_fast", lambda: optimizers.Adam(0.05), lambda: ReferenceAdam(0.05)),
    ],
)
@pytest.mark.parametrize("steps", [1, 3])
def test_fit_steps_equal_hand_written_torch(loss, name, make, make_ref, steps):
    x, y, _ = make_data(8 * steps)
    model = make_model(make(), loss)
    model.build((None, 4))
    initial = model.get_weights()
    expected, _ = reference_fit(initial, x, y, loss, make_ref(), batch_size=8)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert_weights_close(model, expected)
    # float32 only: weights stay as they were made.
    assert all(w.dtype == np.float32 for w in model.get_weights())


def test_second_fit_continues_optimizer_state():
    x, y, _ = make_data(16)
    model = make_model("adam")
    model.build((None, 4))
    ref = ReferenceAdam()
    expected, _ = reference_fit(model.get_weights(), x, y, "categorical_crossentropy", ref, 8)
    expected, _ = reference_fit(expected, x, y, "categorical_crossentropy", ref, 8)
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    assert_weights_close(model, expected)


# -------------------------------------------------------------------------- History
def test_history_epoch_values_are_batch_size_weighted_means():
    x, y, _ = make_data(20)  # batches of 8, 8 and 4
    model = make_model(optimizers.SGD(0.2), metrics=["accuracy"])
    model.build((None, 4))
    weights, ref = model.get_weights(), ReferenceSGD(0.2)
    expected_loss, expected_acc = [], []
    for _ in range(2):
        weights, records = reference_fit(weights, x, y, "categorical_crossentropy", ref, 8)
        sizes = np.array([r[0] for r in records])
        expected_loss.append(float((sizes * np.array([r[1] for r in records])).sum() / 20))
        expected_acc.append(sum(r[2] for r in records) / 20)
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert list(history.history) == ["accuracy", "loss"]
    assert history.epoch == [0, 1]
    np.testing.assert_allclose(history.history["loss"], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(history.history["accuracy"], expected_acc, rtol=1e-6)
    assert all(isinstance(v, float) for v in history.history["loss"])
    assert model.history is history


def test_history_keys_as_given_sorted_and_val_prefixed():
    x, y, labels = make_data(24)
    model = make_model("adam", metrics=["mae", "acc"])
    history = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x[:8], y[:8]), verbose=0)
    assert list(history.history) == ["acc", "loss", "mae", "val_acc", "val_loss", "val_mae"]
    assert all(len(v) == 2 for v in history.history.values())
    assert model.metrics_names == ["loss", "mae", "acc"]
    # The last epoch's val_ values are evaluate() on the validation data with final weights.
    logs = model.evaluate(x[:8], y[:8], verbose=0, return_dict=True)
    for key, value in logs.items():
        np.testing.assert_allclose(history.history[f"val_{key}"][-1], value, rtol=1e-6)


# ------------------------------------------------------------------ validation_split
def test_validation_split_holds_out_the_last_fraction_before_shuffling():
    x, y, _ = make_data(20)
    model = make_model(optimizers.SGD(0.1))
    model.build((None, 4))
    expected, _ = reference_fit(
        model.get_weights(), x[:15], y[:15], "categorical_crossentropy", ReferenceSGD(0.1), 5
    )
    history = model.fit(x, y, batch_size=5, validation_split=0.25, shuffle=False, verbose=0)
    assert_weights_close(model, expected)
    val = model.evaluate(x[15:], y[15:], verbose=0)
    np.testing.assert_allclose(history.history["val_loss"], [val], rtol=1e-6)


def test_validation_split_with_shuffle_never_trains_on_the_held_out_part():
    x, y, _ = make_data(20)
    x[:, 0] = np.arange(20)  # sample ids, recorded during training
    model = RecordingModel()
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=3, validation_split=0.2, shuffle=True, verbose=0)
    for epoch in model.seen_by_epoch(3, 4):
        assert sorted(epoch) == list(range(16))
    val = model.evaluate(x[16:], y[16:], verbose=0)
    np.testing.assert_allclose(history.history["val_loss"], [val] * 3, rtol=1e-6)


class RecordingModel(distkeras.Model):
    """A subclassed model that records the sample ids (column 0) of training batches."""

    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(3, activation="softmax")
        self.batches = []

    def call(self, inputs, training=None):
        if training:
            self.batches.append(inputs[:, 0].detach().long().tolist())
        return self.dense(inputs)

    def seen_by_epoch(self, epochs, steps):
        assert len(self.batches) == epochs * steps
        return [sum(self.batches[e * steps : (e + 1) * steps], []) for e in range(epochs)]


def test_shuffle_reshuffles_every_epoch_over_the_same_set():
    x, y, _ = make_data(24)
    x[:, 0] = np.arange(24)
    model = RecordingModel()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=6, epochs=3, verbose=0)
    epochs = model.seen_by_epoch(3, 4)
    for order in epochs:
        assert sorted(order) == list(range(24))
    assert epochs[0] != list(range(24))
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]


def test_shuffle_false_keeps_order_and_training_follows_the_shuffled_order():
    x, y, _ = make_data(12)
    x[:, 0] = np.arange(12)
    model = RecordingModel()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    assert model.batches == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]] * 2


def test_shuffled_fit_equals_reference_in_the_recorded_order():
    x, y, _ = make_data(16)
    recorder = RecordingModel()
    recorder.compile(optimizer="sgd", loss="mse")
    ids = x.copy()
    ids[:, 0] = np.arange(16)
    recorder.fit(ids, y, batch_size=4, verbose=0)  # same seed -> same permutation
    order = sum(recorder.batches, [])
    distkeras.utils.set_random_seed(1234)
    model = make_model(optimizers.SGD(0.1))
    model.build((None, 4))
    expected, _ = reference_fit(
        model.get_weights(), x, y, "categorical_crossentropy", ReferenceSGD(0.1), 4, order=order
    )
    model.fit(x, y, batch_size=4, verbose=0)
    assert_weights_close(model, expected)


# ------------------------------------------------------- epochs, steps and frequencies
def test_initial_epoch_runs_the_remaining_epochs():
    x, y, _ = make_data(12)
    x[:, 0] = np.arange(12)
    model = RecordingModel()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=4, initial_epoch=2, verbose=0)
    assert history.epoch == [2, 3]
    assert len(history.history["loss"]) == 2
    assert len(model.batches) == 2 * 3


def test_steps_per_epoch_limits_the_batches_of_each_epoch():
    x, y, _ = make_data(20)
    x[:, 0] = np.arange(20)
    model = RecordingModel()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=2, steps_per_epoch=2, shuffle=False, verbose=0)
    assert len(model.batches) == 4
    assert all(len(b) == 4 for b in model.batches)
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize("freq, validated", [(2, [1, 3]), ([1, 4], [0, 3]), (1, [0, 1, 2, 3])])
def test_validation_freq(freq, validated):
    x, y, _ = make_data(16)
    model = make_model("adam")
    values = []

    class Spy(distkeras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if "val_loss" in logs:
                values.append(epoch)

    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=4,
        validation_data=(x, y),
        validation_freq=freq,
        callbacks=[Spy()],
        verbose=0,
    )
    assert values == validated
    assert len(history.history["val_loss"]) == len(validated)
    assert len(history.history["loss"]) == 4


# ------------------------------------------------------------- sample and class weights
def test_sample_weight_scales_loss_by_count_not_weight_sum():
    x, y, _ = make_data(20)
    sw = np.random.default_rng(3).uniform(0.0, 3.0, 20).astype("float32")
    model = make_model(optimizers.SGD(0.1))
    model.build((None, 4))
    initial = model.get_weights()
    expected, records = reference_fit(
        initial, x, y, "categorical_crossentropy", ReferenceSGD(0.1), 8, sample_weight=sw
    )
    history = model.fit(x, y, sample_weight=sw, batch_size=8, shuffle=False, verbose=0)
    assert_weights_close(model, expected)
    weighted = sum(n * loss for n, loss, _ in records) / 20
    np.testing.assert_allclose(history.history["loss"], [weighted], rtol=1e-5)
    # evaluate: sum(w * l) / N over the whole set.
    p = forward([torch.tensor(w) for w in model.get_weights()], torch.tensor(x))
    per_sample = per_sample_loss("categorical_crossentropy", torch.tensor(y), p).numpy()
    np.testing.assert_allclose(
        model.evaluate(x, y, sample_weight=sw, batch_size=20, verbose=0),
        (per_sample * sw).sum() / 20,
        rtol=1e-5,
    )


@pytest.mark.parametrize("one_hot", [True, False])
def test_class_weight_is_a_per_sample_weight_of_the_label(one_hot):
    x, y, labels = make_data(16)
    class_weight = {0: 0.5, 1: 2.0, 2: 1.5}
    sw = np.array([class_weight[c] for c in labels], dtype="float32")
    loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    model = make_model(optimizers.SGD(0.1), loss=loss)
    model.build((None, 4))
    expected, records = reference_fit(
        model.get_weights(),
        x,
        y,
        "categorical_crossentropy",
        ReferenceSGD(0.1),
        16,
        sample_weight=sw,
    )
    history = model.fit(
        x, y if one_hot else labels, class_weight=class_weight, batch_size=16, verbose=0
    )
    assert_weights_close(model, expected)
    np.testing.assert_allclose(history.history["loss"], [records[0][1]], rtol=1e-5)


def test_class_weight_missing_class_is_an_error():
    x, y, labels = make_data(8)
    model = make_model("sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="class"):
        model.fit(x, labels, class_weight={0: 1.0, 1: 1.0}, verbose=0)


def test_regularization_loss_is_added_to_the_reported_loss():
    x, y, _ = make_data(8)
    model = distkeras.Sequential(
        [layers.Dense(3, activation="softmax", input_dim=4, kernel_regularizer="l2")]
    )
    model.compile(optimizer=optimizers.SGD(0.0), loss="categorical_crossentropy")
    model.build((None, 4))
    k, b = model.get_weights()
    p = torch.softmax(torch.tensor(x) @ torch.tensor(k) + torch.tensor(b), -1)
    expected = per_sample_loss("categorical_crossentropy", torch.tensor(y), p).mean().item()
    expected += 0.01 * float((k**2).sum())
    history = model.fit(x, y, batch_size=8, verbose=0)
    np.testing.assert_allclose(history.history["loss"], [expected], rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), expected, rtol=1e-5)


# ------------------------------------------------------------------------ progress
def test_verbose_2_prints_one_line_per_epoch_with_the_epoch_logs(capsys):
    x, y, _ = make_data(20)
    model = make_model("adam", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    for epoch, line in ((0, lines[1]), (1, lines[3])):
        assert line.startswith("3/3 - ")
        fields = dict(part.split(": ") for part in line.split(" - ") if ": " in part)
        assert list(fields) == ["accuracy", "loss", "val_accuracy", "val_loss"]
        for key, text in fields.items():
            assert text == f"{history.history[key][epoch]:.4f}"


def test_verbose_0_prints_nothing(capsys):
    x, y, _ = make_data(8)
    model = make_model("adam", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""
