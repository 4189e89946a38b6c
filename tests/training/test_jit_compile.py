"""compile(jit_compile=True): training runs through torch.compile and equals eager training.

Inductor compiles slowly on CPU (seconds for a graph), so one tiny model covers it.
"""

import numpy as np
import torch
from torch._dynamo.utils import counters

import distkeras
from distkeras import layers, optimizers


def make_model(jit_compile):
    model = distkeras.Sequential(
        [layers.Dense(5, activation="tanh", input_dim=4), layers.Dense(3, activation="softmax")]
    )
    model.compile(
        optimizer=optimizers.SGD(0.1),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    model.build((None, 4))
    return model


def test_jit_compile_trains_through_torch_compile_and_matches_eager():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    eager = make_model(False)
    weights = eager.get_weights()
    eager_history = eager.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    model = make_model(True)
    model.set_weights(weights)
    graphs_before = counters["stats"]["unique_graphs"]
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert counters["stats"]["unique_graphs"] > graphs_before  # really compiled

    assert history.history.keys() == eager_history.history.keys()
    for key, values in eager_history.history.items():
        np.testing.assert_allclose(history.history[key], values, rtol=1e-5)
    for got, want in zip(model.get_weights(), eager.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.isfinite(model.get_weights()[0]).all()
    np.testing.assert_allclose(
        model.predict(x, verbose=0), eager.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    # The compiled step is kept: a second fit does not compile again.
    graphs = counters["stats"]["unique_graphs"]
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert counters["stats"]["unique_graphs"] == graphs
    torch._dynamo.reset()
