"""Regularizers and constraints against Keras's formulas, alone and inside fit()."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import constraints as C
from distkeras import layers, optimizers
from distkeras import regularizers as R

W = np.array([[0.5, -1.0, 2.0], [-0.25, 3.0, 0.0], [1.5, -0.5, -2.0], [0.1, 0.2, 0.3]])


def _value(reg, w=W):
    return float(reg(torch.tensor(w, dtype=torch.float64)))


# ---------------------------------------------------------------------------- regularizers
def test_l1_l2_formulas_and_defaults():
    np.testing.assert_allclose(_value(R.L1()), 0.01 * np.abs(W).sum())
    np.testing.assert_allclose(_value(R.L1(0.3)), 0.3 * np.abs(W).sum())
    # No 1/2 factor: l2 * sum(w^2).
    np.testing.assert_allclose(_value(R.L2()), 0.01 * np.square(W).sum())
    np.testing.assert_allclose(_value(R.L2(2.0), np.ones((5, 5))), 50.0)
    np.testing.assert_allclose(
        _value(R.L1L2(l1=0.2, l2=0.1)), 0.2 * np.abs(W).sum() + 0.1 * np.square(W).sum()
    )
    assert R.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}
    assert _value(R.L1L2()) == 0.0
    np.testing.assert_allclose(_value(R.L1L2(l2=0.1)), 0.1 * np.square(W).sum())


def test_lowercase_shortcuts_follow_keras3():
    # Keras 3 exports l1/l2/l1_l2 as the classes themselves.
    assert R.l1 is R.L1 and R.l2 is R.L2 and R.l1_l2 is R.L1L2
    assert R.l1_l2().get_config() == {"l1": 0.0, "l2": 0.0}
    assert R.l2(0.5).get_config() == {"l2": 0.5}
    # By name: "l1", "l2" default to 0.01; "l1_l2" to 0.01 each (Keras's documented value).
    assert R.get("l1").get_config() == {"l1": 0.01}
    assert R.get("l2").get_config() == {"l2": 0.01}
    assert R.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert R.get("l1l2").get_config() == {"l1": 0.0, "l2": 0.0}


def _orthogonal_reference(w, factor, mode):
    v = w if mode == "rows" else w.T
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-7)
    product = v @ v.T
    n = product.shape[0]
    off = np.abs(product - np.diag(np.diag(product))).sum()
    # factor * 0.5 * sum|off-diagonal| / (n (n-1) / 2), as Keras writes it.
    return factor * 0.5 * off / (n * (n - 1) / 2)


@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer(mode):
    reg = R.OrthogonalRegularizer(factor=0.2, mode=mode)
    np.testing.assert_allclose(_value(reg), _orthogonal_reference(W, 0.2, mode), rtol=1e-10)
    assert _value(R.OrthogonalRegularizer(), np.eye(4)) == 0.0
    with pytest.raises(ValueError, match="rank-2"):
        reg(torch.ones(2, 2, 2))


@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer_sees_keras_layout_kernel(mode):
    """The Dense kernel is stored transposed; the penalty must use Keras's (in, out) rows."""
    layer = layers.Dense(3, kernel_regularizer=R.OrthogonalRegularizer(0.1, mode=mode))
    layer(torch.zeros(2, 4))
    kernel = layer.get_weights()[0].astype("float64")
    (penalty,) = layer.losses
    want = _orthogonal_reference(kernel, 0.1, mode)
    assert abs(want - _orthogonal_reference(kernel.T, 0.1, mode)) > 1e-4  # layouts differ
    np.testing.assert_allclose(float(penalty.detach()), want, rtol=1e-5)


def test_regularizer_errors_and_config():
    for bad in (-1, float("inf"), float("nan"), "0.1"):
        with pytest.raises(ValueError, match="l2="):
            R.L2(bad)
    with pytest.raises(ValueError, match="l1=-0.5"):
        R.L1L2(l1=-0.5)
    with pytest.raises(ValueError, match="mode='diag'"):
        R.OrthogonalRegularizer(mode="diag")
    with pytest.raises(ValueError, match="regularizer='l3'"):
        R.get("l3")
    for reg in (R.L1(0.2), R.L2(0.3), R.L1L2(0.1, 0.4), R.OrthogonalRegularizer(0.5, "columns")):
        spec = R.serialize(reg)
        assert spec["class_name"] == type(reg).__name__
        clone = R.get(spec)
        assert type(clone) is type(reg) and clone.get_config() == reg.get_config()
        assert _value(clone) == _value(reg)
    assert isinstance(R.get(R.L2), R.L2)  # a class is instantiated with its defaults


def _dense_model(units=3, input_dim=4, **kwargs):
    model = distkeras.Sequential([layers.Dense(units, input_shape=(input_dim,), **kwargs)])
    return model


def test_dense_kernel_regularizer_in_losses_and_reported_loss():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4)).astype("float32")
    y = rng.standard_normal((8, 3)).astype("float32")
    model = _dense_model(kernel_regularizer=R.L2(0.05), bias_regularizer=R.L1(0.02))
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    model(torch.as_tensor(x))
    kernel, bias = model.get_weights()
    penalty = 0.05 * np.square(kernel.astype("float64")).sum() + 0.02 * np.abs(bias).sum()
    np.testing.assert_allclose(sum(float(t.detach()) for t in model.losses), penalty, rtol=1e-5)
    assert len(model.losses) == 2

    # The reported loss of a one-batch epoch: data loss at the initial weights + penalty.
    data_loss = np.mean(np.square(x @ kernel + bias - y))
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], data_loss + penalty, rtol=1e-5)

    # The step followed the penalised gradient: grad(mse) + 2*0.05*W (+ 0.02*sign(b)).
    err = x @ kernel + bias - y
    grad_k = 2 * x.T @ err / err.size + 2 * 0.05 * kernel
    grad_b = 2 * err.sum(0) / err.size + 0.02 * np.sign(bias)
    new_kernel, new_bias = model.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - 0.1 * grad_k, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias - 0.1 * grad_b, rtol=1e-4, atol=1e-6)


def test_evaluate_adds_penalty_and_frozen_weights_have_none():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4)).astype("float32")
    y = rng.standard_normal((6, 3)).astype("float32")
    model = _dense_model(kernel_regularizer="l2")
    model.compile(optimizer="sgd", loss="mse")
    model(torch.as_tensor(x))
    kernel, bias = model.get_weights()
    data_loss = np.mean(np.square(x @ kernel + bias - y))
    penalty = 0.01 * np.square(kernel.astype("float64")).sum()
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), data_loss + penalty, rtol=1e-5)
    # Keras counts no penalty for non-trainable weights.
    model.layers[0].trainable = False
    assert model.losses == []


def test_activity_regularizer_adds_to_losses():
    layer = layers.Dense(
        5,
        kernel_initializer="ones",
        kernel_regularizer=R.L1(0.01),
        activity_regularizer=R.L2(0.01),
    )
    x = torch.ones(5, 5) * 2.0
    out = layer(x)
    # Keras 3's docstring example: kernel term 0.25, activity term (divided by batch 5) 5.0.
    values = sorted(float(t.detach()) for t in layer.losses)
    np.testing.assert_allclose(values, [0.25, 5.0], rtol=1e-6)
    np.testing.assert_allclose(
        values[1], 0.01 * float(out.detach().double().square().sum()) / 5, rtol=1e-6
    )
    # Losses from a call are replaced, not accumulated, by the next outermost call.
    layer(x[:2])
    assert len(layer.losses) == 2
    assert layer.get_config()["activity_regularizer"]["class_name"] == "L2"


def test_activity_regularizer_counts_in_fit_loss():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3)).astype("float32")
    y = rng.standard_normal((4, 2)).astype("float32")
    model = _dense_model(2, 3, activity_regularizer=R.L1(0.1))
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    model(torch.as_tensor(x))
    kernel, bias = model.get_weights()
    out = x @ kernel + bias
    want = np.mean(np.square(out - y)) + 0.1 * np.abs(out).sum() / len(x)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], want, rtol=1e-5)


# ----------------------------------------------------------------------------- constraints
def _col_norms(w, axis=0):
    return np.sqrt(np.square(w).sum(axis=axis, keepdims=True))


def _apply(constraint, w=W):
    return constraint(torch.tensor(w, dtype=torch.float64)).numpy()


def test_constraint_formulas():
    norms = _col_norms(W)
    want = W * np.clip(norms, 0, 2.0) / (1e-7 + norms)
    np.testing.assert_allclose(_apply(C.MaxNorm()), want, rtol=1e-12)
    norms1 = _col_norms(W, 1)
    want = W * np.clip(norms1, 0, 1.0) / (1e-7 + norms1)
    np.testing.assert_allclose(_apply(C.MaxNorm(1.0, axis=1)), want, rtol=1e-12)
    np.testing.assert_allclose(_apply(C.NonNeg()), np.maximum(W, 0))
    np.testing.assert_allclose(_apply(C.UnitNorm()), W / (1e-7 + norms), rtol=1e-12)
    desired = 0.7 * np.clip(norms, 1.0, 2.5) + 0.3 * norms
    np.testing.assert_allclose(
        _apply(C.MinMaxNorm(1.0, 2.5, rate=0.7)), W * desired / (1e-7 + norms), rtol=1e-12
    )
    # Defaults match Keras: MaxNorm(2, axis=0), MinMaxNorm(0, 1, rate=1, axis=0).
    assert C.MaxNorm().get_config() == {"max_value": 2.0, "axis": 0}
    assert C.MinMaxNorm().get_config() == {
        "min_value": 0.0,
        "max_value": 1.0,
        "rate": 1.0,
        "axis": 0,
    }


def test_constraint_get_and_round_trip():
    for name, cls in (
        ("max_norm", C.MaxNorm),
        ("non_neg", C.NonNeg),
        ("unit_norm", C.UnitNorm),
        ("min_max_norm", C.MinMaxNorm),
        ("MaxNorm", C.MaxNorm),
    ):
        assert isinstance(C.get(name), cls)
    assert isinstance(C.get(C.UnitNorm), C.UnitNorm)
    for c in (C.MaxNorm(3.0, axis=1), C.NonNeg(), C.UnitNorm(axis=1), C.MinMaxNorm(0.5, 2, 0.5)):
        clone = C.get(C.serialize(c))
        assert type(clone) is type(c) and clone.get_config() == c.get_config()
        np.testing.assert_allclose(_apply(clone), _apply(c))
    with pytest.raises(ValueError, match="constraint='max'"):
        C.get("max")


def test_fit_applies_constraints_after_each_step():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((16, 4)) * 3).astype("float32")
    y = (rng.standard_normal((16, 3)) * 5).astype("float32")
    model = _dense_model(
        kernel_initializer="ones",
        kernel_constraint=C.MaxNorm(0.5),
        bias_constraint=C.NonNeg(),
    )
    model.compile(optimizer=optimizers.SGD(0.05), loss="mse")
    model(torch.as_tensor(x[:8]))
    kernel, bias = model.get_weights()

    # One step by hand: SGD on the mse gradient, then the projections.
    err = x[:8] @ kernel + bias - y[:8]
    k1 = kernel - 0.05 * 2 * x[:8].T @ err / err.size
    b1 = bias - 0.05 * 2 * err.sum(0) / err.size
    k1 = k1 * np.clip(_col_norms(k1), 0, 0.5) / (1e-7 + _col_norms(k1))
    b1 = np.maximum(b1, 0)
    model.fit(x[:8], y[:8], batch_size=8, epochs=1, shuffle=False, verbose=0)
    got_k, got_b = model.get_weights()
    np.testing.assert_allclose(got_k, k1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_b, b1, atol=1e-6)

    model.fit(x, y, batch_size=4, epochs=3, verbose=0)
    kernel, bias = model.get_weights()
    assert (_col_norms(kernel) <= 0.5 + 1e-5).all()
    assert (bias >= 0).all()


def test_unit_norm_holds_after_fit_on_conv_kernel():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5, 5, 2)).astype("float32")
    y = rng.standard_normal((6, 3, 3, 4)).astype("float32")
    # Keras's UnitNorm on a conv kernel (kh, kw, in, out): norms over axes (0, 1, 2).
    model = distkeras.Sequential(
        [layers.Conv2D(4, 3, input_shape=(5, 5, 2), kernel_constraint=C.UnitNorm(axis=[0, 1, 2]))]
    )
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, batch_size=3, epochs=2, verbose=0)
    kernel = model.get_weights()[0]
    np.testing.assert_allclose(
        np.sqrt(np.square(kernel).sum(axis=(0, 1, 2))), np.ones(4), rtol=1e-5
    )
