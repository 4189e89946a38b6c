"""Multi-input, multi-output functional models: losses, loss_weights, metrics and targets
given as lists or dicts keyed by output layer names, against a hand-written torch loop."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers, optimizers

EPS = 1e-7
LR = 0.1


def make_model():
    a = distkeras.Input((3,), name="a")
    b = distkeras.Input((2,), name="b")
    hidden = layers.Dense(4, activation="tanh", name="hidden")(layers.Concatenate()([a, b]))
    reg = layers.Dense(2, name="reg")(hidden)
    cls = layers.Dense(3, activation="softmax", name="cls")(hidden)
    return distkeras.Model([a, b], [reg, cls])


def make_data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    xa = rng.standard_normal((n, 3)).astype("float32")
    xb = rng.standard_normal((n, 2)).astype("float32")
    y_reg = rng.standard_normal((n, 2)).astype("float32")
    labels = rng.integers(0, 3, n)
    return xa, xb, y_reg, np.eye(3, dtype="float32")[labels], labels


def reference_losses(weights, xa, xb, y_reg, y_cls):
    """(mse per sample, crossentropy per sample, class predictions) in float64 torch."""
    kh, bh, kr, br, kc, bc = weights
    x = torch.cat(
        [torch.as_tensor(xa, dtype=torch.float64), torch.as_tensor(xb, dtype=torch.float64)], 1
    )
    h = torch.tanh(x @ kh + bh)
    pred_reg = h @ kr + br
    p = torch.softmax(h @ kc + bc, -1).clamp(EPS, 1 - EPS)
    mse = ((pred_reg - torch.as_tensor(y_reg, dtype=torch.float64)) ** 2).mean(-1)
    cce = -(torch.as_tensor(y_cls, dtype=torch.float64) * torch.log(p)).sum(-1)
    return mse, cce, p.argmax(-1)


def reference_fit(model, data, batch_size, w_reg, w_cls):
    """SGD on w_reg * mse + w_cls * cce; returns final weights and per-batch records."""
    xa, xb, y_reg, y_cls, labels = data
    weights = [torch.tensor(w, dtype=torch.float64) for w in model.get_weights()]
    records = []
    for i in range(0, len(xa), batch_size):
        s = slice(i, i + batch_size)
        params = [w.clone().requires_grad_(True) for w in weights]
        mse, cce, pred = reference_losses(params, xa[s], xb[s], y_reg[s], y_cls[s])
        total = w_reg * mse.mean() + w_cls * cce.mean()
        grads = torch.autograd.grad(total, params)
        records.append(
            {
                "n": len(xa[s]),
                "loss": total.item(),
                "reg_loss": mse.mean().item(),
                "cls_loss": cce.mean().item(),
                "cls_accuracy": (pred.numpy() == labels[s]).mean(),
            }
        )
        weights = [(w - LR * g).detach() for w, g in zip(weights, grads)]
    return [w.numpy() for w in weights], records


def epoch_mean(records, key, n):
    return sum(r["n"] * r[key] for r in records) / n


SPECS = {
    "lists": dict(
        loss=["mse", "categorical_crossentropy"],
        loss_weights=[0.5, 2.0],
        metrics=[None, ["accuracy"]],
    ),
    "dicts": dict(
        loss={"reg": "mse", "cls": "categorical_crossentropy"},
        loss_weights={"cls": 2.0, "reg": 0.5},
        metrics={"cls": "accuracy"},
    ),
}


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("targets", ["list", "dict"])
def test_losses_weights_and_metrics_per_output(spec, targets):
    data = make_data(12)
    xa, xb, y_reg, y_cls, _ = data
    model = make_model()
    model.compile(optimizer=optimizers.SGD(LR), **SPECS[spec])
    expected, records = reference_fit(model, data, 5, w_reg=0.5, w_cls=2.0)
    y = [y_reg, y_cls] if targets == "list" else {"cls": y_cls, "reg": y_reg}
    history = model.fit([xa, xb], y, batch_size=5, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert list(history.history) == ["cls_accuracy", "cls_loss", "loss", "reg_loss"]
    for key in history.history:
        np.testing.assert_allclose(history.history[key], [epoch_mean(records, key, 12)], rtol=1e-5)


def test_evaluate_multi_output_values_and_names():
    xa, xb, y_reg, y_cls, labels = make_data(10)
    model = make_model()
    model.compile(
        optimizer="sgd",
        loss=["mse", "categorical_crossentropy"],
        loss_weights=[1.0, 0.25],
        metrics={"reg": ["mae"], "cls": ["accuracy"]},
    )
    weights = [torch.tensor(w, dtype=torch.float64) for w in model.get_weights()]
    mse, cce, pred = reference_losses(weights, xa, xb, y_reg, y_cls)
    h = torch.tanh(
        torch.cat([torch.tensor(xa), torch.tensor(xb)], 1).double() @ weights[0] + weights[1]
    )
    mae = (h @ weights[2] + weights[3] - torch.tensor(y_reg)).abs().mean().item()
    logs = model.evaluate([xa, xb], [y_reg, y_cls], batch_size=4, verbose=0, return_dict=True)
    expected = {
        "loss": mse.mean().item() + 0.25 * cce.mean().item(),
        "reg_loss": mse.mean().item(),
        "cls_loss": cce.mean().item(),
        "reg_mae": mae,
        "cls_accuracy": (pred.numpy() == labels).mean(),
    }
    assert sorted(logs) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(logs[key], value, rtol=1e-5, err_msg=key)
    values = model.evaluate([xa, xb], [y_reg, y_cls], verbose=0)
    assert len(values) == 5
    np.testing.assert_allclose(values[0], expected["loss"], rtol=1e-5)
    assert model.metrics_names[0] == "loss"
    assert set(model.metrics_names) == set(expected)
    for name, value in zip(model.metrics_names, values):
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, err_msg=name)


def test_metric_list_is_one_entry_per_output_and_val_keys():
    xa, xb, y_reg, y_cls, _ = make_data(12)
    model = make_model()
    with pytest.raises(ValueError, match="2 outputs"):  # Keras 3: one entry per output
        model.compile(optimizer="adam", loss=["mse", "mse"], metrics=["mae"])
    model.compile(optimizer="adam", loss=["mse", "mse"], metrics=["mae", ["mse", "mae"]])
    history = model.fit(
        [xa, xb],
        [y_reg, y_cls],
        batch_size=6,
        epochs=2,
        verbose=0,
        validation_data=([xa, xb], [y_reg, y_cls]),
    )
    keys = ["cls_loss", "cls_mae", "cls_mse", "loss", "reg_loss", "reg_mae"]
    assert list(history.history) == keys + [f"val_{k}" for k in keys]
    assert model.metrics_names == ["loss", "reg_mae", "cls_mse", "cls_mae", "reg_loss", "cls_loss"]
    # The per-output mse metric equals the per-output mse loss.
    np.testing.assert_allclose(history.history["cls_mse"], history.history["cls_loss"], rtol=1e-5)


def test_output_without_loss_is_not_trained_on():
    xa, xb, y_reg, y_cls, _ = make_data(8)
    model = make_model()
    model.compile(optimizer=optimizers.SGD(LR), loss={"reg": "mse"})
    expected, _ = reference_fit(model, make_data(8), 8, w_reg=1.0, w_cls=0.0)
    history = model.fit([xa, xb], {"reg": y_reg, "cls": y_cls}, batch_size=8, verbose=0)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert "loss" in history.history and "cls_loss" not in history.history


def test_misnamed_or_miscounted_specs_are_errors():
    xa, xb, y_reg, y_cls, _ = make_data(4)
    model = make_model()
    with pytest.raises(ValueError, match="'out'|out"):
        model.compile(optimizer="sgd", loss={"out": "mse"})
    with pytest.raises(ValueError, match="2 outputs"):
        model.compile(optimizer="sgd", loss=["mse", "mse", "mse"])
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    with pytest.raises(ValueError, match="output"):
        model.fit([xa, xb], y_reg, verbose=0)
    with pytest.raises(ValueError, match="cls"):
        model.fit([xa, xb], {"reg": y_reg}, verbose=0)
