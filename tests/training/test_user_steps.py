"""Overridden train_step/test_step/predict_step/compute_loss/compute_metrics, against Keras 3.

Each program is written once, for a ``keras`` module argument, and run with distkeras and
with Keras itself (torch backend) from the same initial weights on the same data, in order
(shuffle=False): histories, evaluate() and predict() must agree.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from tests.ops.keras_reference import import_keras

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 6)).astype("float32")
Y = (X @ RNG.normal(size=(6, 1))).astype("float32")
LABELS = (X[:, :1] > 0).astype("float32")


def _both(build):
    """(ours, theirs): ``build(keras_module)`` for each, Keras's weights copied into ours."""
    keras = import_keras()
    theirs = build(keras)
    ours = build(distkeras)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def _history_close(ours, theirs, atol=1e-5):
    assert sorted(ours.history) == sorted(theirs.history)
    for key in theirs.history:
        np.testing.assert_allclose(ours.history[key], theirs.history[key], atol=atol, rtol=1e-5)


# ---------------------------------------------------------------- the guide's programs
def guide_model(keras, calls=None):
    """keras.io "Customizing what happens in fit() with PyTorch", first example."""

    class CustomModel(keras.Model):
        def train_step(self, data):
            if calls is not None:
                calls.append(1)
            x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            loss.backward()
            trainable_weights = [v for v in self.trainable_weights]
            gradients = [v.value.grad for v in trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable_weights)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    inputs = keras.Input(shape=(6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = keras.layers.Dense(1)(hidden)
    model = CustomModel(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    return model


def test_overridden_train_step_is_called_and_matches_keras():
    calls = []
    keras = import_keras()
    theirs = guide_model(keras)
    ours = guide_model(distkeras, calls)
    ours.set_weights(theirs.get_weights())
    assert isinstance(ours, distkeras.Model) and type(ours).__name__ == "CustomModel"
    kw = dict(batch_size=16, epochs=3, shuffle=False, verbose=0)
    _history_close(ours.fit(X, Y, **kw), theirs.fit(X, Y, **kw))
    assert len(calls) == 9  # 3 batches x 3 epochs
    np.testing.assert_allclose(
        ours.evaluate(X, Y, verbose=0), theirs.evaluate(X, Y, verbose=0), atol=1e-5
    )
    np.testing.assert_allclose(ours.predict(X, verbose=0), theirs.predict(X, verbose=0), atol=1e-5)


def lower_level_model(keras):
    """The guide's "going lower-level": compile(optimizer) only, own trackers and loss."""

    class CustomModel(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
            self.loss_fn = keras.losses.MeanSquaredError()

        def train_step(self, data):
            x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = self.loss_fn(y, y_pred)
            loss.backward()
            trainable_weights = [v for v in self.trainable_weights]
            gradients = [v.value.grad for v in trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable_weights)
            self.loss_tracker.update_state(loss)
            self.mae_metric.update_state(y, y_pred)
            return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            self.loss_tracker.update_state(self.loss_fn(y, y_pred))
            self.mae_metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    inputs = keras.Input(shape=(6,))
    outputs = keras.layers.Dense(1)(inputs)
    model = CustomModel(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    return model


def test_lower_level_step_with_own_metrics_property_matches_keras():
    ours, theirs = _both(lower_level_model)
    kw = dict(batch_size=16, epochs=3, shuffle=False, verbose=0)
    _history_close(ours.fit(X, Y, **kw), theirs.fit(X, Y, **kw))
    np.testing.assert_allclose(
        ours.evaluate(X, Y, verbose=0), theirs.evaluate(X, Y, verbose=0), atol=1e-5
    )
    assert [m.name for m in ours.metrics] == ["loss", "mae"]


def test_step_override_and_predict_step_override_match_keras():
    def build(keras):
        class Model(keras.Model):
            def test_step(self, data):
                x, y = data
                y_pred = self(x, training=False)
                self.compute_loss(y=y, y_pred=y_pred)  # Keras's compute_loss, unused here
                self.compiled_metrics_update = True
                return {"half_mae": keras.ops.mean(keras.ops.abs(y - y_pred)) / 2}

            def predict_step(self, data):
                return self(data, training=False) * 10.0

        inputs = keras.Input(shape=(6,))
        model = Model(inputs, keras.layers.Dense(1)(inputs))
        model.compile(optimizer="sgd", loss="mse")
        return model

    ours, theirs = _both(build)
    assert ours.evaluate(X, Y, batch_size=48, verbose=0) == pytest.approx(
        theirs.evaluate(X, Y, batch_size=48, verbose=0), abs=1e-5
    )
    np.testing.assert_allclose(ours.predict(X, verbose=0), theirs.predict(X, verbose=0), atol=1e-5)


def test_compute_loss_override_with_training_argument_matches_keras():
    def build(keras):
        class Model(keras.Model):
            def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
                loss = keras.ops.mean(keras.ops.abs(y_pred - y) ** 3)
                return loss + (0.0 if training else 1.0)

        inputs = keras.Input(shape=(6,))
        model = Model(inputs, keras.layers.Dense(1)(inputs))
        model.compile(optimizer=keras.optimizers.SGD(0.01), metrics=["mse"])
        return model

    ours, theirs = _both(build)
    kw = dict(batch_size=16, epochs=2, shuffle=False, verbose=0)
    _history_close(
        ours.fit(X, Y, validation_data=(X, Y), **kw),
        theirs.fit(X, Y, **kw | {"validation_data": (X, Y)}),
    )


def test_compute_metrics_override_and_metric_attributes_match_keras():
    def build(keras):
        class Model(keras.Sequential):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.prediction_mean = keras.metrics.Mean(name="prediction_mean")

            def compute_metrics(self, x, y, y_pred, sample_weight=None):
                results = super().compute_metrics(x, y, y_pred, sample_weight)
                self.prediction_mean.update_state(y_pred)
                results["prediction_mean"] = self.prediction_mean.result()
                return results

        model = Model([keras.Input((6,)), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return model

    ours, theirs = _both(build)
    kw = dict(batch_size=16, epochs=2, shuffle=False, verbose=0)
    _history_close(ours.fit(X, LABELS, **kw), theirs.fit(X, LABELS, **kw))


def test_super_train_step_and_sample_weight_match_keras():
    def build(keras):
        class Model(keras.Model):
            def train_step(self, data):
                logs = super().train_step(data)
                return {**logs, "extra": logs["loss"] * 2}

        inputs = keras.Input(shape=(6,))
        model = Model(inputs, keras.layers.Dense(1)(inputs))
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
        return model

    ours, theirs = _both(build)
    weights = np.linspace(0.1, 2.0, len(X)).astype("float32")
    kw = dict(batch_size=16, epochs=2, shuffle=False, verbose=0, sample_weight=weights)
    _history_close(ours.fit(X, Y, **kw), theirs.fit(X, Y, **kw))


def two_optimizer_model(keras):
    """A GAN's structure: two sub-models, two optimizers, two backward passes per step."""

    class TwoPart(keras.Model):
        def __init__(self):
            super().__init__()
            self.first = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
            self.second = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            self.first_loss = keras.metrics.Mean(name="first_loss")
            self.second_loss = keras.metrics.Mean(name="second_loss")
            self.built = True  # no call(): its parts are built (Keras would try to call it)

        def compile(self, first_optimizer, second_optimizer):
            super().compile()
            self.first_optimizer = first_optimizer
            self.second_optimizer = second_optimizer

        @property
        def metrics(self):
            return [self.first_loss, self.second_loss]

        def train_step(self, data):
            x, y = data
            self.zero_grad()
            loss = keras.ops.mean((self.second(self.first(x)) - y) ** 2)
            loss.backward()
            grads = [v.value.grad for v in self.second.trainable_weights]
            with torch.no_grad():
                self.second_optimizer.apply(grads, self.second.trainable_weights)
            self.zero_grad()
            loss2 = keras.ops.mean(keras.ops.abs(self.second(self.first(x)) - y))
            loss2.backward()
            grads = [v.value.grad for v in self.first.trainable_weights]
            with torch.no_grad():
                self.first_optimizer.apply(grads, self.first.trainable_weights)
            self.second_loss.update_state(loss)
            self.first_loss.update_state(loss2)
            return {
                "first_loss": self.first_loss.result(),
                "second_loss": self.second_loss.result(),
            }

    model = TwoPart()
    model.compile(keras.optimizers.Adam(0.01), keras.optimizers.SGD(0.05))
    return model


def test_two_optimizers_in_one_step_match_keras():
    ours, theirs = _both(two_optimizer_model)
    kw = dict(batch_size=16, epochs=2, shuffle=False, verbose=0)
    _history_close(ours.fit(X, Y, **kw), theirs.fit(X, Y, **kw))
    assert int(ours.first_optimizer.iterations) == int(ours.second_optimizer.iterations) == 6
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_callbacks_see_the_step_logs():
    seen = []
    model = guide_model(distkeras)
    callback = distkeras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(sorted(logs))
    )
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    assert seen == [["loss", "mae"]] * 3


def test_override_distkeras_cannot_call_raises_naming_it():
    class Model(distkeras.Model):
        def make_train_function(self, force=False):
            return None

    inputs = distkeras.Input((6,))
    model = Model(inputs, distkeras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match="make_train_function"):
        model.fit(X, Y, verbose=0)


def test_no_loss_anywhere_raises_keras_error():
    model = distkeras.Sequential([distkeras.Input((6,)), distkeras.layers.Dense(1)])
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="No loss to compute"):
        model.fit(X, Y, verbose=0)


def test_subclass_with_call_cannot_take_inputs_outputs():
    class Model(distkeras.Model):
        def call(self, x):
            return x

    inputs = distkeras.Input((6,))
    with pytest.raises(TypeError, match="call"):
        Model(inputs, distkeras.layers.Dense(1)(inputs))
