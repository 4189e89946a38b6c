"""Mixed precision on CPU: float32 weights, low-precision layer math, dynamic loss scaling."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers, mixed_precision, optimizers


@pytest.fixture
def policy():
    """Sets a global policy for one test and always restores float32."""

    def set_policy(name):
        mixed_precision.set_global_policy(name)

    yield set_policy
    mixed_precision.set_global_policy("float32")


class DtypeSpy(layers.Layer):
    """Identity that records the dtype of what reaches it during training."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = set()

    def call(self, inputs, training=None):
        if training:
            self.seen.add(inputs.dtype)
        return inputs


def make_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype("float32")
    labels = rng.integers(0, 3, n)
    return x, np.eye(3, dtype="float32")[labels]


def make_model(optimizer="adam"):
    distkeras.utils.set_random_seed(7)
    spy = DtypeSpy()
    model = distkeras.Sequential(
        [
            layers.Dense(16, activation="relu", input_dim=8),
            spy,
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model, spy


def train(optimizer="adam", epochs=3):
    x, y = make_data()
    model, spy = make_model(optimizer)
    history = model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    return model, spy, history, model.predict(x, verbose=0)


def test_policy_names_and_errors(policy):
    assert mixed_precision.global_policy().name == "float32"
    policy("mixed_bfloat16")
    current = mixed_precision.global_policy()
    assert (current.compute_dtype, current.variable_dtype) == ("bfloat16", "float32")
    assert current.get_config() == {"name": "mixed_bfloat16"}
    with pytest.raises(ValueError, match="mixed_float64"):
        mixed_precision.set_global_policy("mixed_float64")
    assert mixed_precision.global_policy().name == "mixed_bfloat16"


@pytest.mark.parametrize(
    "name, dtype, tolerance",
    [
        ("mixed_bfloat16", torch.bfloat16, 2e-2),
        ("mixed_float16", torch.float16, 3e-3),
    ],
)
def test_mixed_policy_trains_with_float32_weights(policy, name, dtype, tolerance):
    reference_model, reference_spy, reference_history, reference_out = train()
    assert reference_spy.seen == {torch.float32}
    policy(name)
    model, spy, history, out = train()
    assert spy.seen == {dtype}  # the layers really computed in low precision
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    losses = np.array(history.history["loss"])
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    np.testing.assert_allclose(losses, reference_history.history["loss"], rtol=tolerance)
    assert out.dtype in (np.float32, np.float16)
    np.testing.assert_allclose(out.astype("float32"), reference_out, atol=5 * tolerance)
    for got, want in zip(model.get_weights(), reference_model.get_weights()):
        np.testing.assert_allclose(got, want, atol=5 * tolerance)


def test_float16_loss_scaling_unscales_gradients_exactly(policy):
    # SGD's step is linear in the gradient: a wrongly unscaled gradient would be off by 2**15.
    x, y = make_data(8)
    model, _ = make_model(optimizers.SGD(0.5))
    model.build((None, 8))
    start = model.get_weights()
    model.train_on_batch(x, y)
    float32_step = [w - s for w, s in zip(model.get_weights(), start)]
    model.set_weights(start)
    policy("mixed_float16")
    model.compile(optimizer=optimizers.SGD(0.5), loss="categorical_crossentropy")
    model.train_on_batch(x, y)
    scale = model._step.grad_scaler
    assert float(scale.scale) == 2.0**15  # Keras's LossScaleOptimizer initial scale
    for got, s, want in zip(model.get_weights(), start, float32_step):
        np.testing.assert_allclose(got - s, want, atol=2e-3 * np.abs(want).max() + 1e-6)


def test_float16_overflow_skips_the_step_and_halves_the_scale(policy):
    x, y = make_data(8)
    policy("mixed_float16")
    model, _ = make_model(optimizers.SGD(0.5))
    model.train_on_batch(x, y)
    scale = model._step.grad_scaler
    before = model.get_weights()
    scale.scale.fill_(2.0**60)  # backward overflows float16 at this scale
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])  # the reported loss is unscaled
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert float(scale.scale) == 2.0**59
    model.train_on_batch(x, y)  # finite again at a normal scale: the step is taken
    scale.scale.fill_(2.0**15)
    model.train_on_batch(x, y)
    assert any((a != b).any() for a, b in zip(before, model.get_weights()))


def test_float16_without_auto_scale_loss(policy):
    x, y = make_data(8)
    policy("mixed_float16")
    model, _ = make_model(optimizers.SGD(0.1))
    model.compile(
        optimizer=optimizers.SGD(0.1), loss="categorical_crossentropy", auto_scale_loss=False
    )
    model.fit(x, y, batch_size=8, verbose=0)
    assert model._step.grad_scaler is None
    assert np.isfinite(model.get_weights()[0]).all()


def test_dynamic_loss_scale_grows_after_the_growth_interval():
    scale = mixed_precision.DynamicLossScale(
        torch.device("cpu"), initial_scale=4.0, dynamic_growth_steps=3
    )
    grads = [torch.full((2,), 8.0)]
    for _ in range(2):
        scale.update(scale.unscale_(grads))
    assert float(scale.scale) == 4.0
    np.testing.assert_array_equal(grads[0].numpy(), [0.5, 0.5])  # divided twice by 4
    scale.update(scale.unscale_([torch.ones(2)]))
    assert float(scale.scale) == 8.0
    found = scale.unscale_([torch.tensor([1.0, float("inf")])])
    assert float(found) == 1.0
    scale.update(found)
    assert float(scale.scale) == 4.0
