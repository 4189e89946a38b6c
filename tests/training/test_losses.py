"""Losses against explicit numpy formulas: values, reductions, sample weights, masks, configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distkeras import losses

EPS = 1e-7
RNG = np.random.default_rng(0)


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _l2n(x, axis=-1):
    return x / np.sqrt(np.maximum((x**2).sum(axis, keepdims=True), EPS**2))


# Per-sample numpy references written from the Keras formulas.
def ref_mse(t, p):
    return ((t - p) ** 2).mean(-1)


def ref_mae(t, p):
    return np.abs(t - p).mean(-1)


def ref_mape(t, p):
    return 100.0 * np.abs((t - p) / np.maximum(np.abs(t), EPS)).mean(-1)


def ref_msle(t, p):
    return ((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2).mean(-1)


def ref_huber(t, p, delta=1.0):
    e = np.abs(p - t)
    return np.where(e <= delta, 0.5 * e**2, delta * e - 0.5 * delta**2).mean(-1)


def ref_logcosh(t, p):
    return np.log(np.cosh(p - t)).mean(-1)


def ref_cosine(t, p):
    return -(_l2n(t) * _l2n(p)).sum(-1)


def ref_poisson(t, p):
    return (p - t * np.log(p + EPS)).mean(-1)


def ref_kld(t, p):
    t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
    return (t * np.log(t / p)).sum(-1)


def _pm1(t):
    return 2 * t - 1 if np.isin(t, [0, 1]).all() else t


def ref_hinge(t, p):
    return np.maximum(1 - _pm1(t) * p, 0).mean(-1)


def ref_squared_hinge(t, p):
    return (np.maximum(1 - _pm1(t) * p, 0) ** 2).mean(-1)


def ref_categorical_hinge(t, p):
    pos = (t * p).sum(-1)
    neg = ((1 - t) * p).max(-1)
    return np.maximum(neg - pos + 1, 0)


def ref_bce_probs(t, p, ls=0.0):
    t = t * (1 - ls) + 0.5 * ls
    p = np.clip(p, EPS, 1 - EPS)
    return (-(t * np.log(p) + (1 - t) * np.log(1 - p))).mean(-1)


def ref_bce_logits(t, z, ls=0.0):
    t = t * (1 - ls) + 0.5 * ls
    # Stable form: max(z, 0) - z t + log(1 + exp(-|z|)).
    return (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean(-1)


def ref_cce_probs(t, p, ls=0.0):
    t = t * (1 - ls) + ls / t.shape[-1]
    q = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(t * np.log(q)).sum(-1)


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def ref_cce_logits(t, z, ls=0.0):
    t = t * (1 - ls) + ls / t.shape[-1]
    return -(t * _log_softmax(z)).sum(-1)


def _normal(shape):
    return RNG.normal(size=shape).astype("float32")


def _pos(shape):
    return RNG.uniform(0.1, 2.0, size=shape).astype("float32")


def _probs(shape):
    p = RNG.uniform(0.05, 1.0, size=shape).astype("float32")
    return p / p.sum(-1, keepdims=True)


def _binary(shape):
    return RNG.integers(0, 2, size=shape).astype("float32")


def _onehot(n, c):
    return np.eye(c, dtype="float32")[RNG.integers(0, c, size=n)]


REGRESSION = [
    (losses.MeanSquaredError, {}, ref_mse, _normal, _normal),
    (losses.MeanAbsoluteError, {}, ref_mae, _normal, _normal),
    (losses.MeanAbsolutePercentageError, {}, ref_mape, _normal, _normal),
    (losses.MeanSquaredLogarithmicError, {}, ref_msle, _pos, _normal),
    (losses.Huber, {"delta": 0.7}, lambda t, p: ref_huber(t, p, 0.7), _normal, _normal),
    (losses.LogCosh, {}, ref_logcosh, _normal, _normal),
    (losses.CosineSimilarity, {}, ref_cosine, _normal, _normal),
    (losses.Poisson, {}, ref_poisson, _pos, _pos),
    (losses.KLDivergence, {}, ref_kld, _probs, _probs),
    (losses.Hinge, {}, ref_hinge, _binary, _normal),
    (losses.SquaredHinge, {}, ref_squared_hinge, _binary, _normal),
    (losses.CategoricalHinge, {}, ref_categorical_hinge, lambda s: _onehot(s[0], s[1]), _normal),
    (losses.BinaryCrossentropy, {}, ref_bce_probs, _binary, lambda s: RNG.uniform(0, 1, size=s)),
    (losses.CategoricalCrossentropy, {}, ref_cce_probs, lambda s: _onehot(s[0], s[1]), _probs),
]


@pytest.mark.parametrize("cls, kwargs, ref, make_true, make_pred", REGRESSION)
def test_loss_matches_numpy_with_every_reduction(cls, kwargs, ref, make_true, make_pred):
    shape = (5, 3)
    t = np.asarray(make_true(shape), dtype="float32")
    p = np.asarray(make_pred(shape), dtype="float32")
    w = RNG.uniform(0, 2, size=5).astype("float32")
    per_sample = ref(t.astype("float64"), p.astype("float64"))
    tol = {"rtol": 1e-4, "atol": 1e-5}
    np.testing.assert_allclose(_np(cls(**kwargs, reduction=None)(t, p)), per_sample, **tol)
    np.testing.assert_allclose(_np(cls(**kwargs, reduction="none")(t, p)), per_sample, **tol)
    np.testing.assert_allclose(_np(cls(**kwargs)(t, p)), per_sample.mean(), **tol)
    np.testing.assert_allclose(_np(cls(**kwargs, reduction="sum")(t, p)), per_sample.sum(), **tol)
    # sum_over_batch_size divides the weighted sum by the sample count, not the weight sum.
    np.testing.assert_allclose(_np(cls(**kwargs)(t, p, w)), (per_sample * w).sum() / 5, **tol)
    np.testing.assert_allclose(
        _np(cls(**kwargs)(t, p, w.reshape(5, 1))), (per_sample * w).sum() / 5, **tol
    )
    np.testing.assert_allclose(
        _np(cls(**kwargs, reduction="mean_with_sample_weight")(t, p, w)),
        (per_sample * w).sum() / w.sum(),
        **tol,
    )


def test_sum_over_batch_size_ignores_weight_sum():
    loss = losses.MeanSquaredError()
    t = np.zeros((4, 1), "float32")
    p = np.array([[1.0], [2.0], [3.0], [4.0]], "float32")
    assert float(loss(t, p, sample_weight=[1, 0, 0, 0])) == pytest.approx(1.0 / 4)
    assert float(loss(t, p, sample_weight=[2, 0, 0, 0])) == pytest.approx(2.0 / 4)
    mean_w = losses.MeanSquaredError(reduction="mean_with_sample_weight")
    assert float(mean_w(t, p, sample_weight=[1, 0, 0, 1])) == pytest.approx(17.0 / 2)
    assert float(losses.MeanSquaredError(reduction="mean")(t, p)) == pytest.approx(7.5)


def test_invalid_reduction_raises():
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="auto")


def test_per_timestep_losses_with_sample_weights():
    t = RNG.normal(size=(3, 4, 2)).astype("float32")
    p = RNG.normal(size=(3, 4, 2)).astype("float32")
    per = ref_mse(t, p)  # (3, 4)
    w_steps = RNG.uniform(size=(3, 4)).astype("float32")
    w_samples = RNG.uniform(size=3).astype("float32")
    loss = losses.MeanSquaredError()
    np.testing.assert_allclose(_np(loss(t, p)), per.mean(), rtol=1e-5)
    np.testing.assert_allclose(_np(loss(t, p, w_steps)), (per * w_steps).sum() / 12, rtol=1e-5)
    np.testing.assert_allclose(
        _np(loss(t, p, w_samples)), (per * w_samples[:, None]).sum() / 12, rtol=1e-5
    )


def test_categorical_crossentropy_normalises_and_clips_probabilities():
    t = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], "float32")
    # Rows that do not sum to 1, and exact zeros that must be clipped, not give inf.
    p = np.array([[0.2, 0.6, 0.2], [0.5, 0.5, 0.0], [2.0, 1.0, 1.0]], "float32")
    got = _np(losses.CategoricalCrossentropy(reduction=None)(t, p))
    np.testing.assert_allclose(got, ref_cce_probs(t, p), rtol=1e-5)
    assert got[1] == pytest.approx(-np.log(1e-7), rel=1e-5)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_categorical_crossentropy_logits_and_label_smoothing(ls):
    t = _onehot(6, 4)
    z = RNG.normal(scale=3, size=(6, 4)).astype("float32")
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls, reduction=None)
    np.testing.assert_allclose(_np(loss(t, z)), ref_cce_logits(t, z, ls), rtol=1e-5)
    sm = np.exp(_log_softmax(z))
    probs = losses.CategoricalCrossentropy(label_smoothing=ls, reduction=None)(t, sm)
    np.testing.assert_allclose(_np(probs), ref_cce_probs(t, sm, ls), rtol=1e-5)
    np.testing.assert_allclose(_np(probs), ref_cce_logits(t, z, ls), rtol=1e-4)


def test_crossentropy_from_logits_is_stable_for_extreme_logits():
    z = torch.tensor([[1000.0, -1000.0, 0.0]], requires_grad=True)
    loss = losses.CategoricalCrossentropy(from_logits=True)([[0.0, 1.0, 0.0]], z)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(2000.0)
    assert torch.isfinite(z.grad).all()
    zb = torch.tensor([[80.0], [-80.0]], requires_grad=True)
    bce = losses.BinaryCrossentropy(from_logits=True)([[0.0], [1.0]], zb)
    bce.backward()
    assert float(bce.detach()) == pytest.approx(80.0)
    assert torch.isfinite(zb.grad).all()


@pytest.mark.parametrize(
    "labels", ["int_n", "int_n1", "float_n", "float_n1"], ids=lambda s: s.replace("_", "-")
)
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_crossentropy_label_shapes(labels, from_logits):
    idx = RNG.integers(0, 4, size=5)
    z = RNG.normal(size=(5, 4)).astype("float32")
    p = z if from_logits else np.exp(_log_softmax(z)).astype("float32")
    y = {
        "int_n": idx,
        "int_n1": idx.reshape(5, 1),
        "float_n": idx.astype("float32"),
        "float_n1": idx.astype("float32").reshape(5, 1),
    }[labels]
    onehot = np.eye(4, dtype="float32")[idx]
    expected = ref_cce_logits(onehot, z) if from_logits else ref_cce_probs(onehot, p)
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits, reduction=None)
    np.testing.assert_allclose(_np(loss(y, p)), expected, rtol=1e-5)
    sw = RNG.uniform(size=5).astype("float32")
    full = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    np.testing.assert_allclose(_np(full(y, p, sw)), (expected * sw).sum() / 5, rtol=1e-5)
    fn = losses.sparse_categorical_crossentropy(y, p, from_logits=from_logits)
    np.testing.assert_allclose(_np(fn), expected, rtol=1e-5)


def test_sparse_categorical_crossentropy_sequences_and_ignore_class():
    idx = RNG.integers(0, 3, size=(2, 4))
    z = RNG.normal(size=(2, 4, 3)).astype("float32")
    per = ref_cce_logits(np.eye(3, dtype="float32")[idx], z)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    np.testing.assert_allclose(_np(loss(idx, z)), per, rtol=1e-5)
    labels = idx.copy()
    labels[0, 1] = labels[1, 3] = -1
    valid = labels != -1
    ignoring = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    # Ignored entries give 0 and the average runs over the valid entries only.
    np.testing.assert_allclose(_np(ignoring(labels, z)), per[valid].mean(), rtol=1e-5)
    none = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1, reduction=None)
    np.testing.assert_allclose(_np(none(labels, z)), np.where(valid, per, 0.0), rtol=1e-5)


@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_binary_crossentropy_probabilities_logits_and_smoothing(ls):
    t = _binary((6, 3))
    z = RNG.normal(scale=4, size=(6, 3)).astype("float32")
    p = (1 / (1 + np.exp(-z))).astype("float32")
    p[0, 0], p[1, 1] = 0.0, 1.0  # clipped to [eps, 1 - eps]
    probs = losses.BinaryCrossentropy(label_smoothing=ls, reduction=None)(t, p)
    np.testing.assert_allclose(_np(probs), ref_bce_probs(t, p, ls), rtol=1e-4)
    logits = losses.BinaryCrossentropy(from_logits=True, label_smoothing=ls, reduction=None)(t, z)
    np.testing.assert_allclose(_np(logits), ref_bce_logits(t, z, ls), rtol=1e-5)


def test_binary_crossentropy_label_rank_alignment():
    t = _binary(6)
    p = RNG.uniform(0.05, 0.95, size=(6, 1)).astype("float32")
    expected = ref_bce_probs(t[:, None], p)
    # Labels (N,) against predictions (N, 1): expanded, one value per sample.
    np.testing.assert_allclose(
        _np(losses.BinaryCrossentropy(reduction=None)(t, p)), expected, rtol=1e-5
    )
    np.testing.assert_allclose(_np(losses.BinaryCrossentropy()(t, p)), expected.mean(), rtol=1e-5)


@pytest.mark.parametrize("balance", [False, True])
@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_focal_crossentropy(balance, from_logits):
    t = _binary((5, 2))
    z = RNG.normal(size=(5, 2)).astype("float32")
    p = 1 / (1 + np.exp(-z.astype("float64")))
    alpha, gamma = 0.3, 1.5
    bce = -(t * np.log(np.clip(p, EPS, 1 - EPS)) + (1 - t) * np.log(np.clip(1 - p, EPS, 1)))
    p_t = t * p + (1 - t) * (1 - p)
    focal = (1 - p_t) ** gamma * bce
    if balance:
        focal = (t * alpha + (1 - t) * (1 - alpha)) * focal
    loss = losses.BinaryFocalCrossentropy(
        apply_class_balancing=balance,
        alpha=alpha,
        gamma=gamma,
        from_logits=from_logits,
        reduction=None,
    )
    got = loss(t, z if from_logits else p.astype("float32"))
    np.testing.assert_allclose(_np(got), focal.mean(-1), rtol=1e-4)


def test_keras_documented_values():
    # Numbers printed in Keras 3's own docstrings.
    bce = losses.BinaryCrossentropy(from_logits=True)
    yt, yp = [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]]
    assert float(bce(yt, yp)) == pytest.approx(0.8654, abs=1e-3)
    assert float(bce(yt, yp, sample_weight=[0.8, 0.2])) == pytest.approx(0.243, abs=1e-3)
    cce = losses.CategoricalCrossentropy()
    yt, yp = [[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
    assert float(cce(yt, yp)) == pytest.approx(1.177, abs=1e-3)
    assert float(cce(yt, yp, sample_weight=np.array([0.3, 0.7]))) == pytest.approx(0.814, abs=1e-3)
    scce = losses.SparseCategoricalCrossentropy()
    assert float(scce([1, 2], yp)) == pytest.approx(1.177, abs=1e-3)
    focal = losses.BinaryFocalCrossentropy(gamma=3, from_logits=True)
    yt, yp = [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]]
    assert float(focal(yt, yp)) == pytest.approx(0.647, abs=1e-3)


def test_mask_on_predictions_averages_over_valid_entries():
    t = RNG.normal(size=(2, 3, 1)).astype("float32")
    p = torch.tensor(RNG.normal(size=(2, 3, 1)).astype("float32"))
    mask = torch.tensor([[True, True, False], [True, False, False]])
    p._keras_mask = mask
    per = ref_mse(t, p.numpy())
    got = losses.MeanSquaredError()(t, p)
    np.testing.assert_allclose(_np(got), per[mask.numpy()].mean(), rtol=1e-5)
    summed = losses.MeanSquaredError(reduction="sum")(t, p)
    np.testing.assert_allclose(_np(summed), per[mask.numpy()].sum(), rtol=1e-5)


def test_gradients_stay_finite_at_edge_cases():
    p = torch.zeros(2, 3, requires_grad=True)
    losses.CosineSimilarity()(torch.zeros(2, 3), p).backward()
    assert torch.isfinite(p.grad).all()
    q = torch.tensor([[0.5], [0.5]], requires_grad=True)
    out = losses.MeanSquaredError(reduction="mean_with_sample_weight")([[0.0], [1.0]], q, [0, 0])
    out.backward()
    assert float(out.detach()) == 0.0 and torch.isfinite(q.grad).all()


def test_functions_and_aliases():
    t, p = RNG.normal(size=(3, 2)), RNG.normal(size=(3, 2))
    for fn in (losses.mse, losses.MSE, losses.mean_squared_error, losses.get("mse")):
        np.testing.assert_allclose(_np(fn(t, p)), ref_mse(t, p), rtol=1e-5)
    assert losses.mae is losses.mean_absolute_error
    assert losses.mape is losses.mean_absolute_percentage_error
    assert losses.msle is losses.mean_squared_logarithmic_error
    assert losses.kld is losses.kl_divergence
    assert losses.get("categorical_crossentropy") is losses.categorical_crossentropy


def test_get_serialize_deserialize():
    assert isinstance(losses.get("CategoricalCrossentropy"), losses.CategoricalCrossentropy)
    loss = losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)
    assert losses.get(loss) is loss
    rebuilt = losses.get({"class_name": "BinaryCrossentropy", "config": loss.get_config()})
    assert rebuilt.get_config() == loss.get_config()
    assert losses.deserialize(losses.serialize(loss)).get_config() == loss.get_config()
    assert losses.deserialize(losses.serialize(losses.mse)) is losses.mean_squared_error
    fn_dict = {"class_name": "function", "config": "mean_absolute_error"}
    assert losses.deserialize(fn_dict) is losses.mean_absolute_error

    def custom(y_true, y_pred):
        return (y_true - y_pred).abs().sum(-1)

    assert losses.get(custom) is custom
    with pytest.raises(ValueError, match="Unknown loss"):
        losses.get("not_a_loss")


ALL_CLASSES = [
    (losses.MeanSquaredError, {}),
    (losses.MeanAbsoluteError, {}),
    (losses.MeanAbsolutePercentageError, {}),
    (losses.MeanSquaredLogarithmicError, {}),
    (losses.CosineSimilarity, {"axis": 1}),
    (losses.Huber, {"delta": 2.0}),
    (losses.LogCosh, {}),
    (losses.Hinge, {}),
    (losses.SquaredHinge, {}),
    (losses.CategoricalHinge, {}),
    (losses.KLDivergence, {}),
    (losses.Poisson, {}),
    (losses.BinaryCrossentropy, {"from_logits": True, "label_smoothing": 0.2}),
    (losses.BinaryFocalCrossentropy, {"apply_class_balancing": True, "gamma": 3.0}),
    (losses.CategoricalCrossentropy, {"from_logits": True, "axis": 1}),
    (losses.CategoricalFocalCrossentropy, {"alpha": 0.5}),
    (losses.SparseCategoricalCrossentropy, {"from_logits": True, "ignore_class": 3}),
]


@pytest.mark.parametrize("cls, kwargs", ALL_CLASSES, ids=lambda x: getattr(x, "__name__", ""))
def test_config_round_trip(cls, kwargs):
    loss = cls(**kwargs, reduction="sum", name="custom_name")
    config = loss.get_config()
    assert config["name"] == "custom_name" and config["reduction"] == "sum"
    for key, value in kwargs.items():
        assert config[key] == value
    rebuilt = cls.from_config(config)
    assert type(rebuilt) is cls and rebuilt.get_config() == config


def test_default_names_match_keras():
    assert losses.MeanSquaredError().name == "mean_squared_error"
    assert losses.Huber().name == "huber_loss"
    assert losses.LogCosh().name == "log_cosh"
    assert losses.KLDivergence().name == "kl_divergence"
    assert losses.SparseCategoricalCrossentropy().name == "sparse_categorical_crossentropy"


def test_resolve_loss_crossentropy_by_shape():
    binary = losses.resolve_loss("crossentropy", (8, 1), (8, 1))
    sparse = losses.resolve_loss("ce", (8,), (8, 5))
    sparse1 = losses.resolve_loss("crossentropy", (8, 1), (8, 5))
    categorical = losses.resolve_loss("crossentropy", (8, 5), (8, 5))
    assert binary.fn is losses.binary_crossentropy and binary.name == "crossentropy"
    assert sparse.fn is losses.sparse_categorical_crossentropy and sparse.name == "ce"
    assert sparse1.fn is losses.sparse_categorical_crossentropy
    assert categorical.fn is losses.categorical_crossentropy
    mse = losses.resolve_loss("mse", (8, 1), (8, 1))
    assert isinstance(mse, losses.Loss) and mse.name == "mse"
    obj = losses.Huber()
    assert losses.resolve_loss(obj, (8, 1), (8, 1)) is obj
    # The wrapped sparse loss accepts integer labels end to end.
    z = RNG.normal(size=(4, 3)).astype("float32")
    idx = RNG.integers(0, 3, size=4)
    expected = ref_cce_probs(np.eye(3, dtype="float32")[idx], np.abs(z) + 0.1)
    np.testing.assert_allclose(_np(sparse(idx, np.abs(z) + 0.1)), expected.mean(), rtol=1e-5)


def test_loss_follows_prediction_device_and_dtype():
    p = torch.rand(4, 3, dtype=torch.float64)
    out = losses.MeanSquaredError()(np.zeros((4, 3)), p)
    assert out.dtype == torch.float32 and out.shape == ()
    half = losses.MeanSquaredError(dtype="float64")(np.zeros((4, 3)), p.float())
    assert half.dtype == torch.float64
