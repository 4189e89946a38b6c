"""compile(optimizer=...) without a loss trains on add_loss losses; frozen models still fit.

Each program is built for a ``keras`` module argument and run with distkeras and with Keras 3
(torch backend) from the same weights on the same data: the histories must agree.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras
from tests.ops.keras_reference import import_keras

RNG = np.random.default_rng(1)
X = RNG.normal(size=(24, 5)).astype("float32")
Y = (X[:, :2] * 2.0).astype("float32")


def vae_like(keras):
    """An autoencoder whose only losses come from add_loss (a VAE's shape, no sampling)."""

    class Bottleneck(keras.layers.Layer):
        def call(self, z):
            self.add_loss(0.1 * keras.ops.mean(keras.ops.sum(z**2, axis=-1)))
            return z

    class Reconstruction(keras.layers.Layer):
        def call(self, inputs):
            original, rebuilt = inputs
            self.add_loss(keras.ops.mean((original - rebuilt) ** 2))
            return rebuilt

    inputs = keras.Input((5,))
    z = Bottleneck()(keras.layers.Dense(2)(inputs))
    outputs = Reconstruction()([inputs, keras.layers.Dense(5)(z)])
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    return model


def endpoint(keras):
    """The keras.io endpoint-layer pattern: targets are an input, the loss is add_loss."""

    class LossEndpoint(keras.layers.Layer):
        def call(self, targets, predictions):
            self.add_loss(keras.ops.mean(keras.ops.abs(targets - predictions)))
            return predictions

    inputs, targets = keras.Input((5,)), keras.Input((2,))
    predictions = LossEndpoint()(targets, keras.layers.Dense(2)(inputs))
    model = keras.Model([inputs, targets], predictions)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def _both(build):
    keras = import_keras()
    theirs = build(keras)
    ours = build(distkeras)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def _assert_histories(ours, theirs):
    assert sorted(ours.history) == sorted(theirs.history)
    for key in theirs.history:
        np.testing.assert_allclose(ours.history[key], theirs.history[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build", [vae_like, endpoint], ids=["vae_like", "endpoint"])
def test_add_loss_alone_trains_as_keras(build):
    ours, theirs = _both(build)
    x = [X, Y] if build is endpoint else X
    kw = dict(batch_size=8, epochs=3, shuffle=False, verbose=0)
    _assert_histories(ours.fit(x, **kw), theirs.fit(x, **kw))
    np.testing.assert_allclose(
        ours.evaluate(x, batch_size=8, verbose=0),
        theirs.evaluate(x, batch_size=8, verbose=0),
        rtol=1e-5,
    )


@pytest.mark.parametrize("loss", ["mse", None], ids=["compiled loss", "add_loss only"])
def test_fit_without_trainable_weights_runs_as_keras(loss):
    def build(keras):
        inputs = keras.Input((5,))
        dense = keras.layers.Dense(2, trainable=False)
        outputs = dense(inputs)
        model = keras.Model(inputs, outputs)
        if loss is None:  # an activity penalty is the only loss
            outputs = keras.layers.ActivityRegularization(l1=0.1)(outputs)
            model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss=loss)
        return model

    ours, theirs = _both(build)
    before = ours.get_weights()
    kw = dict(batch_size=8, epochs=2, shuffle=False, verbose=0)
    with pytest.warns(UserWarning, match="trainable weights"):
        history = ours.fit(X, Y, **kw)
    _assert_histories(history, theirs.fit(X, Y, **kw))
    for a, b in zip(before, ours.get_weights()):
        np.testing.assert_array_equal(a, b)
