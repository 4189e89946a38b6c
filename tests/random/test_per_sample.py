"""Per-sample draws in training steps: a sample's mask/noise is a function of (seed, layer,
step, global sample index), never of which worker holds it.

A worker's view of a step is simulated in-process with ``streams.SAMPLES.begin(offset, local,
global_size, ...)``: the rows a "worker" holding rows [a, b) computes must equal rows [a, b)
of the one-worker result. The multi-process version of this contract is
tests/distributed/test_dropout_equivalence.py.
"""

import numpy as np
import pytest
import scipy.stats
import torch

import distkeras
from distkeras import layers
from distkeras import random as dr
from distkeras.random import streams


class RandomOps(layers.Layer):
    """random.dropout / normal / uniform with seed=None, an int, or a SeedGenerator."""

    def __init__(self, fn, seed_kind, **kwargs):
        super().__init__(**kwargs)
        self.fn, self.seed_kind = fn, seed_kind
        self.seed_generator = dr.SeedGenerator(3)

    def call(self, x, training=None):
        seed = {"none": None, "int": 5, "generator": self.seed_generator}[self.seed_kind]
        if self.fn == "dropout":
            return dr.dropout(x, 0.4, seed=seed)
        if self.fn == "normal":
            return x + dr.normal(x.shape, seed=seed)
        return x * dr.uniform(x.shape, seed=seed)


LAYERS = [
    (lambda: layers.Dropout(0.4), (12, 5)),
    (lambda: layers.Dropout(0.4, seed=2), (12, 5)),
    (lambda: layers.Dropout(0.5, noise_shape=(None, 1, None)), (12, 3, 4)),
    (lambda: layers.Dropout(0.5, noise_shape=(1, None)), (12, 5)),
    (lambda: layers.SpatialDropout1D(0.5), (12, 3, 4)),
    (lambda: layers.SpatialDropout2D(0.5), (12, 2, 2, 3)),
    (lambda: layers.SpatialDropout2D(0.5, data_format="channels_first"), (12, 3, 2, 2)),
    (lambda: layers.SpatialDropout3D(0.5), (12, 2, 2, 2, 3)),
    (lambda: layers.GaussianNoise(0.5), (12, 5)),
    (lambda: layers.GaussianDropout(0.3), (12, 5)),
    (lambda: layers.AlphaDropout(0.3), (12, 5)),
    (lambda: layers.AlphaDropout(0.3, noise_shape=(1, None)), (12, 5)),
] + [
    (lambda fn=fn, kind=kind: RandomOps(fn, kind), (12, 5))
    for fn in ("dropout", "normal", "uniform")
    for kind in ("none", "int", "generator")
]
IDS = [f"{i}" for i in range(len(LAYERS))]


def _step(layer, x, offset, global_size, step=7, global_key=99):
    streams.SAMPLES.begin(offset, x.shape[0], global_size, step, global_key)
    try:
        return layer(x, training=True)
    finally:
        streams.SAMPLES.end()


@pytest.mark.parametrize("make, shape", LAYERS, ids=IDS)
def test_each_row_is_the_same_whichever_worker_holds_it(make, shape):
    layer = make()
    x = torch.rand(shape) + 0.5
    whole = _step(layer, x, 0, shape[0])
    assert not torch.equal(whole, x)  # the layer did draw something
    for parts in ([(0, 6), (6, 12)], [(0, 4), (4, 8), (8, 12)], [(0, 5), (5, 9), (9, 12)]):
        for lo, hi in parts:
            torch.testing.assert_close(_step(layer, x[lo:hi], lo, shape[0]), whole[lo:hi])
    # A worker holding no row of this batch (an uneven last batch) draws nothing.
    assert _step(layer, x[:0], 12, shape[0]).shape == (0, *shape[1:])


@pytest.mark.parametrize("make, shape", LAYERS[:3], ids=IDS[:3])
def test_draws_change_with_the_step_and_repeat_for_the_same_step(make, shape):
    layer = make()
    x = torch.ones(shape)
    first = _step(layer, x, 0, shape[0], step=1)
    assert torch.equal(_step(layer, x, 0, shape[0], step=1), first)
    assert not torch.equal(_step(layer, x, 0, shape[0], step=2), first)


def test_int_seeds_give_the_same_numbers_each_step_as_in_keras():
    layer = RandomOps("dropout", "int")
    x = torch.ones(12, 5)
    assert torch.equal(_step(layer, x, 0, 12, step=1), _step(layer, x, 0, 12, step=2))


def test_a_layer_called_twice_in_a_step_draws_twice():
    layer = layers.Dropout(0.5)
    x = torch.ones(12, 6)
    streams.SAMPLES.begin(0, 12, 12, 3, 1)
    try:
        first, second = layer(x, training=True), layer(x, training=True)
    finally:
        streams.SAMPLES.end()
    assert not torch.equal(first, second)


def test_inference_calls_inside_a_step_draw_plainly():
    x = torch.ones(12, 6)
    streams.SAMPLES.begin(0, 12, 12, 3, 1)
    try:
        assert torch.equal(layers.Dropout(0.5, seed=1)(x, training=False), x)
        inference = RandomOps("normal", "int")(x, training=False)
    finally:
        streams.SAMPLES.end()
    assert torch.equal(inference, x + dr.normal(x.shape, seed=5))


def test_draws_in_a_train_step_body_are_per_sample():
    """A model's own train_step drawing latent vectors (a GAN) outside any layer call: each
    worker gets its rows of the global batch's draw, not a copy of the same numbers."""

    def body(lo, hi, gen):
        streams.SAMPLES.begin(lo, hi - lo, 12, 4, 1)
        try:
            return dr.normal((hi - lo, 3), seed=gen), dr.uniform((hi - lo, 2))
        finally:
            streams.SAMPLES.end()

    whole = body(0, 12, dr.SeedGenerator(8))
    first, second = body(0, 6, dr.SeedGenerator(8)), body(6, 12, dr.SeedGenerator(8))
    for i in range(2):
        torch.testing.assert_close(torch.cat([first[i], second[i]]), whole[i])
        assert not torch.equal(first[i], second[i])


def test_per_sample_draws_have_the_right_distribution():
    x = torch.zeros(400, 50)
    noise = _step(layers.GaussianNoise(0.3), x, 0, 800).double().numpy().ravel()
    assert scipy.stats.kstest(noise, scipy.stats.norm(0, 0.3).cdf).pvalue > 1e-3
    kept = _step(layers.Dropout(0.3), torch.ones(400, 50), 400, 800)
    assert abs((kept == 0).double().mean().item() - 0.3) < 0.01
    torch.testing.assert_close(kept[kept != 0], torch.full_like(kept[kept != 0], 1 / 0.7))
    u = _step(RandomOps("uniform", "none"), torch.ones(400, 50), 0, 400).double().numpy()
    assert scipy.stats.kstest(u.ravel(), scipy.stats.uniform(0, 1).cdf).pvalue > 1e-3


def test_fit_keys_unseeded_layers_on_the_model_seed(tmp_path):
    """Two identical models built after different Python seeds train alike under one seed:
    fit keys their unseeded generators on the model seed, not on their construction-time
    seeds."""
    import random

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    weights = []
    for python_seed in (1, 2):
        random.seed(python_seed)
        model = distkeras.Sequential(
            [distkeras.Input((4,)), layers.Dense(8), layers.Dropout(0.5), layers.Dense(1)]
        )
        model.set_weights([np.full(w.shape, 0.1, "float32") for w in model.get_weights()])
        model.compile(optimizer="sgd", loss="mse")
        model._shuffle_seed = 123  # what set_random_seed(123) or rank 0's draw gives fit
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_jit_compiled_fit_draws_what_eager_fit_draws():
    """Under compile(jit_compile=True) the draws run eagerly (no per-seed recompiles) and
    give the eager run's masks."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    results = []
    for jit in (False, True):
        distkeras.utils.set_random_seed(3)
        model = distkeras.Sequential(
            [distkeras.Input((4,)), layers.Dense(8), layers.Dropout(0.5), layers.Dense(1)]
        )
        model.compile(optimizer="adam", loss="mse", jit_compile=jit)
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        results.append((history.history["loss"], model.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_step_count_advances_across_fits_and_any_optimizer():
    """Masks are keyed on the model's own step count: a second fit(epochs=1) (or a custom
    train_step that never steps model.optimizer) draws new masks, not the first fit's."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    distkeras.utils.set_random_seed(4)
    model = distkeras.Sequential(
        [distkeras.Input((4,)), layers.Dense(8), layers.Dropout(0.5), layers.Dense(1)]
    )
    model.compile(optimizer=distkeras.optimizers.SGD(learning_rate=0.0), loss="mse")
    losses = [model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][0]]
    losses.append(model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][0])
    assert model._random_step == 4  # 2 steps per fit
    assert losses[0] != losses[1]  # the weights did not move: only the masks differ
