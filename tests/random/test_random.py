"""``distkeras.random`` against Keras 3 (torch backend) on the same seeds.

Both seed torch's generators the same way, so seeded calls, ``SeedGenerator`` sequences and
unseeded calls after ``set_random_seed`` must give Keras's values exactly; shapes, dtypes and
argument errors are compared too. Distribution checks (moments, Kolmogorov-Smirnov against
scipy's distributions) use fixed seeds, so they are deterministic.
"""

import numpy as np
import pytest
import scipy.stats
import torch

import distkeras
from distkeras import random as dr
from tests.ops.keras_reference import assert_same, import_keras

keras = import_keras()
kr = keras.random

X = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")

# (name, args, kwargs): one call of each function, seeds added by the tests.
CALLS = [
    ("normal", ((3, 4),), {}),
    ("normal", ((2, 3),), {"mean": 1.5, "stddev": 0.2, "dtype": "float64"}),
    ("normal", ((17,),), {"dtype": "float16"}),
    ("uniform", ((3, 4),), {"minval": -1.0, "maxval": 2.0}),
    ("uniform", ((),), {}),
    ("uniform", ([5],), {"dtype": "bfloat16"}),
    ("randint", ((3, 4), 0, 10), {}),
    ("randint", ((20,), -5, 5), {"dtype": "int64"}),
    ("truncated_normal", ((4, 5),), {"mean": 2.0, "stddev": 3.0}),
    ("dropout", (X, 0.3), {}),
    ("dropout", (X, 0.5), {"noise_shape": (None, 1)}),
    ("dropout", (X, 0.0), {}),
    ("dropout", (X, 1.0), {}),
    ("shuffle", (X,), {}),
    ("shuffle", (X,), {"axis": 1}),
    ("categorical", (X, 7), {}),
    ("categorical", (X, 3), {"dtype": "int64"}),
    ("gamma", ((3, 4), 2.0), {}),
    ("gamma", ((5,), 0.5), {"dtype": "float64"}),
    ("beta", ((3, 4), 2.0, 3.0), {}),
    ("binomial", ((3, 4), 5, 0.3), {}),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CALLS)]


def _tensors(args):
    return tuple(torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args)


def _both(name, args, kwargs, seed_ours, seed_theirs):
    ours = getattr(dr, name)(*_tensors(args), **kwargs, seed=seed_ours)
    theirs = getattr(kr, name)(*_tensors(args), **kwargs, seed=seed_theirs)
    return ours, theirs


def test_the_namespace_is_keras_s():
    public = {n for n in dir(kr) if not n.startswith("_")}
    assert public <= set(dir(dr)), public - set(dir(dr))
    assert set(dr.__all__) == public


@pytest.mark.parametrize("name, args, kwargs", CALLS, ids=IDS)
def test_int_seed_matches_keras_and_repeats(name, args, kwargs):
    ours, theirs = _both(name, args, kwargs, 1234, 1234)
    assert_same(ours, theirs, atol=0, rtol=0)
    again = getattr(dr, name)(*_tensors(args), **kwargs, seed=1234)
    assert_same(again, ours, atol=0, rtol=0)  # an int seed is stateless


@pytest.mark.parametrize("name, args, kwargs", CALLS, ids=IDS)
def test_seed_generator_sequence_matches_keras(name, args, kwargs):
    ours_gen, theirs_gen = dr.SeedGenerator(seed=42), kr.SeedGenerator(seed=42)
    draws = []
    for _ in range(3):
        ours, theirs = _both(name, args, kwargs, ours_gen, theirs_gen)
        assert_same(ours, theirs, atol=0, rtol=0)
        draws.append(ours)
    assert_same(ours_gen.state, theirs_gen.state.value)
    if name not in ("dropout",) or 0 < args[1] < 1:
        # The generator moves on: successive draws differ (but a new one repeats them).
        assert not torch.equal(draws[0].float(), draws[1].float())
    replay = getattr(dr, name)(*_tensors(args), **kwargs, seed=dr.SeedGenerator(seed=42))
    assert_same(replay, draws[0], atol=0, rtol=0)


# Unseeded dropout without noise_shape is torch's fused kernel: compared in the next test.
UNSEEDED = [
    (call, i)
    for call, i in zip(CALLS, IDS)
    if not (call[0] == "dropout" and 0 < call[1][1] < 1 and "noise_shape" not in call[2])
]


@pytest.mark.parametrize(
    "name, args, kwargs", [c for c, _ in UNSEEDED], ids=[i for _, i in UNSEEDED]
)
def test_unseeded_calls_follow_set_random_seed_as_in_keras(name, args, kwargs):
    values = []
    for lib, utils in ((dr, distkeras.utils), (kr, keras.utils)):
        utils.set_random_seed(5)
        values.append([getattr(lib, name)(*_tensors(args), **kwargs) for _ in range(2)])
    for ours, theirs in zip(*values):
        assert_same(ours, theirs, atol=0, rtol=0)


def test_unseeded_dropout_is_torch_s_fused_dropout_on_the_global_generator():
    x = torch.tensor(X)
    for lib, utils in ((dr, distkeras.utils), (kr, keras.utils)):
        utils.set_random_seed(9)
        out = lib.dropout(x, 0.4)
        torch.manual_seed(9)
        assert_same(out, torch.nn.functional.dropout(x, 0.4), atol=0, rtol=0)


def test_seed_generator_api():
    gen = dr.SeedGenerator(seed=3, name="gen")
    theirs = kr.SeedGenerator(seed=3, name="gen")
    assert gen.get_config() == theirs.get_config() == {"seed": 3, "name": "gen"}
    restored = dr.SeedGenerator.from_config(gen.get_config())
    assert_same(restored.next(), gen.next())
    theirs.next()
    assert_same(gen.next(ordered=False), theirs.next(ordered=False))
    assert_same(gen.state, theirs.state.value)
    assert dr.SeedGenerator().name.startswith("seed_generator")
    with pytest.raises(ValueError, match="Argument `seed` must be an integer"):
        dr.SeedGenerator(seed=1.5)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        dr.SeedGenerator(seed=1, colour="red")


def test_unseeded_generators_draw_their_seed_from_python_random():
    import random

    seeds = []
    for lib in (dr, kr):
        random.seed(21)
        seeds.append(lib.SeedGenerator().next())
    assert_same(seeds[0], seeds[1])


@pytest.mark.parametrize(
    "name, args, kwargs",
    [
        ("uniform", ((2,),), {"dtype": "int32"}),
        ("randint", ((2,), 0, 5), {"dtype": "float32"}),
        ("categorical", (np.ones((2, 2, 2), "float32"), 2), {}),
        ("normal", ((2,),), {"seed": "abc"}),
        ("normal", ((2,),), {"seed": 1.5}),
    ],
)
def test_argument_errors_as_in_keras(name, args, kwargs):
    with pytest.raises(ValueError) as theirs:
        getattr(kr, name)(*_tensors(args), **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(dr, name)(*_tensors(args), **kwargs)
    # The same message, up to the tensor reprs both print.
    assert str(ours.value).split("Received")[0] == str(theirs.value).split("Received")[0]


def test_default_dtypes_follow_floatx():
    distkeras.backend.set_floatx("float64")
    try:
        assert dr.normal((2,)).dtype == torch.float64
        assert dr.uniform((2,)).dtype == torch.float64
        assert dr.gamma((2,), 1.0).dtype == torch.float64
    finally:
        distkeras.backend.set_floatx("float32")
    assert dr.randint((2,), 0, 3).dtype == torch.int32
    assert dr.categorical(X, 2).dtype == torch.int32


# ------------------------------------------------------------------ distributions
N = 20000


@pytest.mark.parametrize(
    "name, args, kwargs, reference",
    [
        ("normal", ((N,),), {"mean": 1.0, "stddev": 2.0}, scipy.stats.norm(1.0, 2.0)),
        ("uniform", ((N,),), {"minval": -1.0, "maxval": 3.0}, scipy.stats.uniform(-1.0, 4.0)),
        ("truncated_normal", ((N,),), {}, scipy.stats.truncnorm(-2.0, 2.0)),
        ("gamma", ((N,), 2.5), {}, scipy.stats.gamma(2.5)),
        ("beta", ((N,), 2.0, 5.0), {}, scipy.stats.beta(2.0, 5.0)),
    ],
)
def test_continuous_distributions_pass_ks(name, args, kwargs, reference):
    sample = getattr(dr, name)(*args, **kwargs, seed=17).double().numpy()
    assert scipy.stats.kstest(sample, reference.cdf).pvalue > 1e-3
    np.testing.assert_allclose(sample.mean(), reference.mean(), atol=4 * reference.std() / N**0.5)


def test_discrete_distributions_have_their_moments():
    counts = dr.randint((N,), 0, 10, seed=3).numpy()
    assert set(np.unique(counts)) == set(range(10))
    observed = np.bincount(counts, minlength=10)
    assert scipy.stats.chisquare(observed).pvalue > 1e-3
    binom = dr.binomial((N,), 8, 0.25, seed=3).numpy()
    observed = np.bincount(binom.astype(int), minlength=9)
    expected = scipy.stats.binom(8, 0.25).pmf(np.arange(9)) * N
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-4
    logits = np.log(np.array([[0.2, 0.5, 0.3]], "float32"))
    draws = dr.categorical(logits, N, seed=3).numpy().ravel()
    assert scipy.stats.chisquare(np.bincount(draws), np.array([0.2, 0.5, 0.3]) * N).pvalue > 1e-4


def test_dropout_keeps_the_expected_fraction_and_scales():
    x = torch.ones(200, 100)
    out = dr.dropout(x, 0.3, seed=1)
    assert abs((out == 0).float().mean().item() - 0.3) < 0.01
    torch.testing.assert_close(out[out != 0], torch.full_like(out[out != 0], 1 / 0.7))


def test_shuffle_permutes_along_the_axis():
    x = torch.arange(40).reshape(8, 5)
    out = dr.shuffle(x, seed=2)
    assert sorted(out[:, 0].tolist()) == x[:, 0].tolist()
    assert torch.equal(out - out[:, :1], x[:1] - x[:1, :1] + torch.zeros_like(x))  # rows intact


def test_random_ops_inside_a_custom_layer_in_a_model():
    class Noisy(distkeras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = dr.SeedGenerator(7)

        def call(self, x, training=None):
            if training:
                return x + dr.normal(x.shape, stddev=0.1, seed=self.seed_generator)
            return x

    inputs = distkeras.Input((4,))
    model = distkeras.Model(inputs, Noisy()(distkeras.layers.Dense(3)(inputs)))
    x = torch.ones(2, 4)
    assert torch.equal(model(x), model(x))
    first, second = model(x, training=True), model(x, training=True)
    assert first.shape == (2, 3) and not torch.equal(first, second)


def test_random_ops_on_symbolic_tensors_build_graph_nodes(tmp_path):
    inputs = distkeras.Input((6,))
    hidden = distkeras.layers.Dense(4)(inputs)
    dropped = dr.dropout(hidden, 0.5, seed=3)
    assert tuple(dropped.shape) == (None, 4) and dropped.dtype == "float32"
    model = distkeras.Model(inputs, dropped)
    x = torch.ones(5, 6)
    dense = model.layers[1](x)
    # An int seed: the node applies the same mask on every call, as the eager op does.
    torch.testing.assert_close(model(x), dr.dropout(dense, 0.5, seed=3))
    path = tmp_path / "random_node.keras"
    model.save(path)
    torch.testing.assert_close(distkeras.models.load_model(path)(x), model(x))
