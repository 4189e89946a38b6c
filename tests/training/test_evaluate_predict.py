"""evaluate/predict, the *_on_batch methods, compute_loss and jit_compile, against numpy."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers, optimizers

EPS = 1e-7


def make_model(metrics=None, loss="categorical_crossentropy", optimizer="adam"):
    model = distkeras.Sequential(
        [layers.Dense(5, activation="tanh", input_dim=4), layers.Dense(3, activation="softmax")]
    )
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    model.build((None, 4))
    return model


def make_data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype("float32")
    labels = rng.integers(0, 3, n)
    return x, np.eye(3, dtype="float32")[labels], labels


def np_forward(model, x):
    k1, b1, k2, b2 = (w.astype("float64") for w in model.get_weights())
    z = np.tanh(x @ k1 + b1) @ k2 + b2
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_cce(y, p):
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(y * np.log(p)).sum(-1)


# ------------------------------------------------------------------------- evaluate
def test_evaluate_returns_loss_then_metrics_in_compile_order():
    x, y, labels = make_data()
    model = make_model(metrics=["mse", "accuracy"])
    p = np_forward(model, x)
    result = model.evaluate(x, y, batch_size=7, verbose=0)  # 7 does not divide 30
    assert isinstance(result, list) and len(result) == 3
    np.testing.assert_allclose(result[0], np_cce(y, p).mean(), rtol=1e-5)
    np.testing.assert_allclose(result[1], ((y - p) ** 2).mean(), rtol=1e-5)
    np.testing.assert_allclose(result[2], (p.argmax(-1) == labels).mean(), rtol=1e-6)


def test_evaluate_without_metrics_is_a_float_and_return_dict_a_dict():
    x, y, _ = make_data()
    model = make_model()
    loss = model.evaluate(x, y, verbose=0)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, np_cce(y, np_forward(model, x)).mean(), rtol=1e-5)
    model = make_model(metrics=["accuracy"])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert isinstance(logs, dict) and list(logs) == ["accuracy", "loss"]


def test_evaluate_does_not_change_the_weights_and_is_repeatable():
    x, y, _ = make_data()
    model = make_model(metrics=["accuracy"])
    before = model.get_weights()
    first = model.evaluate(x, y, verbose=0)
    second = model.evaluate(x, y, batch_size=4, verbose=0)
    np.testing.assert_allclose(first, second, rtol=1e-6)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_sparse_labels_resolve_accuracy_to_sparse_categorical():
    x, _, labels = make_data()
    model = make_model(metrics=["accuracy"], loss="sparse_categorical_crossentropy")
    p = np_forward(model, x)
    loss, acc = model.evaluate(x, labels, verbose=0)
    np.testing.assert_allclose(loss, -np.log(p[np.arange(30), labels]).mean(), rtol=1e-5)
    np.testing.assert_allclose(acc, (p.argmax(-1) == labels).mean())


def test_binary_accuracy_from_one_unit_output():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((25, 3)).astype("float32")
    y = (rng.uniform(size=(25, 1)) > 0.5).astype("float32")
    model = distkeras.Sequential([layers.Dense(1, activation="sigmoid", input_dim=3)])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    model.build((None, 3))
    k, b = model.get_weights()
    p = np.clip(1 / (1 + np.exp(-(x @ k + b))), EPS, 1 - EPS)
    loss, acc = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(), rtol=1e-5)
    np.testing.assert_allclose(acc, ((p > 0.5) == y).mean())


# -------------------------------------------------------------------------- predict
@pytest.mark.parametrize("batch_size", [None, 4, 30, 64])
def test_predict_is_numpy_in_order(batch_size):
    x, _, _ = make_data(30)
    model = make_model()
    out = model.predict(x, batch_size=batch_size, verbose=0)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (30, 3)
    np.testing.assert_allclose(out, np_forward(model, x), rtol=1e-5, atol=1e-6)


def test_predict_needs_no_compile_and_accepts_tensors():
    model = distkeras.Sequential([layers.Dense(2, input_dim=4)])
    x = torch.randn(9, 4)
    out = model.predict(x, verbose=0)
    k, b = model.get_weights()
    np.testing.assert_allclose(out, x.numpy() @ k + b, rtol=1e-5, atol=1e-6)


def test_predict_on_a_multi_output_model_returns_a_list():
    inputs = distkeras.Input((4,))
    a = layers.Dense(2, name="a")(inputs)
    b = layers.Dense(3, activation="softmax", name="b")(inputs)
    model = distkeras.Model(inputs, [a, b])
    x, _, _ = make_data(11)
    out = model.predict(x, batch_size=4, verbose=0)
    assert isinstance(out, list) and len(out) == 2
    ka, ba, kb, bb = model.get_weights()
    np.testing.assert_allclose(out[0], x @ ka + ba, rtol=1e-5, atol=1e-6)
    z = x @ kb + bb
    np.testing.assert_allclose(
        out[1], np.exp(z) / np.exp(z).sum(-1, keepdims=True), rtol=1e-5, atol=1e-6
    )


def test_predict_on_a_dict_output_model_returns_a_dict():
    inputs = distkeras.Input((4,))
    model = distkeras.Model(inputs, {"p": layers.Dense(2)(inputs), "q": layers.Dense(1)(inputs)})
    x, _, _ = make_data(5)
    out = model.predict(x, verbose=0)
    assert isinstance(out, dict) and sorted(out) == ["p", "q"]
    assert out["p"].shape == (5, 2) and out["q"].shape == (5, 1)


def test_predict_does_not_run_dropout():
    model = distkeras.Sequential([layers.Dropout(0.5, input_shape=(50,))])
    x = np.ones((4, 50), "float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


# ------------------------------------------------------------------------ on_batch
def test_train_on_batch_is_one_step_on_the_whole_batch():
    x, y, labels = make_data(10)
    model = make_model(metrics=["accuracy"], optimizer=optimizers.SGD(0.5))
    k1, b1, k2, b2 = (torch.tensor(w, requires_grad=True) for w in model.get_weights())
    p = torch.softmax(torch.tanh(torch.tensor(x) @ k1 + b1) @ k2 + b2, -1)
    loss = -(torch.tensor(y) * torch.log(p.clamp(EPS, 1 - EPS))).sum(-1).mean()
    loss.backward()
    loss_value, acc = model.train_on_batch(x, y)
    np.testing.assert_allclose(loss_value, loss.item(), rtol=1e-5)
    np.testing.assert_allclose(acc, (p.argmax(-1).numpy() == labels).mean())
    for got, w in zip(model.get_weights(), (k1, b1, k2, b2)):
        np.testing.assert_allclose(got, (w - 0.5 * w.grad).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_test_and_predict_on_batch():
    x, y, labels = make_data(10)
    model = make_model(metrics=["accuracy"])
    p = np_forward(model, x)
    loss, acc = model.test_on_batch(x, y)
    np.testing.assert_allclose(loss, np_cce(y, p).mean(), rtol=1e-5)
    np.testing.assert_allclose(acc, (p.argmax(-1) == labels).mean())
    logs = model.test_on_batch(x, y, return_dict=True)
    assert sorted(logs) == ["accuracy", "loss"]
    out = model.predict_on_batch(x)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, p, rtol=1e-5, atol=1e-6)


def test_on_batch_sample_weight_and_return_dict():
    x, y, _ = make_data(6)
    sw = np.array([0.0, 1.0, 2.0, 0.5, 0.0, 3.0], "float32")
    model = make_model()
    p = np_forward(model, x)
    np.testing.assert_allclose(
        model.test_on_batch(x, y, sample_weight=sw), (np_cce(y, p) * sw).sum() / 6, rtol=1e-5
    )
    logs = model.train_on_batch(x, y, sample_weight=sw, return_dict=True)
    np.testing.assert_allclose(logs["loss"], (np_cce(y, p) * sw).sum() / 6, rtol=1e-5)


def test_compute_loss_is_the_compiled_loss_plus_layer_losses():
    x, y, _ = make_data(8)
    model = distkeras.Sequential(
        [layers.Dense(3, activation="softmax", input_dim=4, kernel_regularizer="l2")]
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    y_pred = model(torch.tensor(x))
    loss = model.compute_loss(x=torch.tensor(x), y=torch.tensor(y), y_pred=y_pred)
    k, b = model.get_weights()
    z = x @ k + b
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    expected = np_cce(y, p).mean() + 0.01 * (k**2).sum()
    np.testing.assert_allclose(float(loss.detach()), expected, rtol=1e-5)
    loss.backward()  # differentiable
    assert model.layers[0].kernel.grad is not None


def test_crossentropy_on_unnormalised_outputs_normalises_rows_then_clips():
    x, y, _ = make_data(12)
    model = distkeras.Sequential([layers.Dense(3, activation="sigmoid", input_dim=4)])
    model.compile(optimizer=optimizers.SGD(0.5), loss="categorical_crossentropy")
    model.build((None, 4))
    k, b = model.get_weights()
    b[0] = -30.0  # class 0 probability ~1e-13: below the clip
    model.set_weights([k, b])
    p = 1 / (1 + np.exp(-(x.astype("float64") @ k + b)))
    assert (p[:, 0] / p.sum(-1) < EPS).all()
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), np_cce(y, p).mean(), rtol=1e-5)
    # The training step follows the same definition (gradient through normalise and clip).
    kt, bt = (torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in (k, b))
    q = torch.sigmoid(torch.tensor(x, dtype=torch.float64) @ kt + bt)
    q = (q / q.sum(-1, keepdim=True)).clamp(EPS, 1 - EPS)
    (-(torch.tensor(y, dtype=torch.float64) * torch.log(q)).sum(-1).mean()).backward()
    model.train_on_batch(x, y)
    for got, w in zip(model.get_weights(), (kt, bt)):
        np.testing.assert_allclose(got, (w - 0.5 * w.grad).detach().numpy(), rtol=1e-5, atol=1e-6)
