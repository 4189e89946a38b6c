"""Model behaviour: Sequential, functional (multi-input/output, shared layers, nested models) and
subclassed models, checked against numpy forward passes written from the weights."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers


def run(model, *inputs):
    tensors = [torch.as_tensor(x) for x in inputs]
    with torch.no_grad():
        out = model(tensors if len(tensors) > 1 else tensors[0])
    if isinstance(out, (list, tuple)):
        return [o.numpy() for o in out]
    return out.numpy()


def dense_ref(x, kernel, bias, relu=False):
    y = x @ kernel + bias
    return np.maximum(y, 0) if relu else y


def rand(*shape, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, shape).astype("float32")


# ---------------------------------------------------------------------------- Sequential
def test_sequential_add_and_pop():
    model = distkeras.Sequential(name="stack")
    model.add(distkeras.Input((4,)))
    model.add(layers.Dense(3, activation="relu", name="h"))
    model.add(layers.Dense(2, name="out"))
    assert [layer.name for layer in model.layers] == ["h", "out"]
    assert model.built and model.outputs[0].shape == (None, 2)
    k1, b1, k2, b2 = model.get_weights()
    x = rand(5, 4)
    np.testing.assert_allclose(
        run(model, x), dense_ref(dense_ref(x, k1, b1, relu=True), k2, b2), rtol=1e-5, atol=1e-6
    )

    popped = model.pop()
    assert popped.name == "out"
    assert [layer.name for layer in model.layers] == ["h"]
    assert model.outputs[0].shape == (None, 3)
    np.testing.assert_allclose(run(model, x), dense_ref(x, k1, b1, relu=True), rtol=1e-5)
    model.add(layers.Dense(5, name="new_out"))
    assert run(model, x).shape == (5, 5)


@pytest.mark.parametrize(
    "first", [lambda: layers.Dense(3, input_shape=(4,)), lambda: layers.Dense(3, input_dim=4)]
)
def test_sequential_input_shape_or_input_dim_builds_at_once(first):
    model = distkeras.Sequential([first(), layers.Dense(2)])
    assert model.built
    assert model.inputs[0].shape == (None, 4)
    assert [w.shape for w in model.get_weights()] == [(4, 3), (3,), (3, 2), (2,)]


def test_sequential_input_first_and_build_method():
    with_input = distkeras.Sequential([distkeras.Input((6,)), layers.Dense(2)])
    assert with_input.inputs[0].shape == (None, 6)
    built_later = distkeras.Sequential([layers.Dense(2)])
    built_later.build((None, 6))
    assert built_later.built and built_later.get_weights()[0].shape == (6, 2)


def test_sequential_deferred_build_on_first_call():
    model = distkeras.Sequential([layers.Dense(3), layers.Dense(2)])
    assert not model.built
    assert model.weights == []
    x = rand(5, 4)
    out = run(model, x)
    assert model.built
    k1, b1, k2, b2 = model.get_weights()
    assert k1.shape == (4, 3)
    np.testing.assert_allclose(out, dense_ref(dense_ref(x, k1, b1), k2, b2), rtol=1e-5, atol=1e-6)


def test_sequential_errors():
    model = distkeras.Sequential([distkeras.Input((4,)), layers.Dense(2, name="d")])
    with pytest.raises(TypeError, match="only accepts distkeras layers"):
        model.add(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="already has a layer named 'd'"):
        model.add(layers.Dense(2, name="d"))
    with pytest.raises(ValueError, match="Input can only come first"):
        model.add(distkeras.Input((2,)))
    with pytest.raises(TypeError, match="no layers to pop"):
        distkeras.Sequential().pop()
    with pytest.raises(ValueError, match=r"expected shape \(None, 4\), received shape \(3, 5\)"):
        run(model, rand(3, 5))
    with pytest.raises(ValueError, match="cannot be built without an input shape"):
        distkeras.Sequential([layers.Dense(2)]).build()


def test_sequential_checks_and_casts_every_new_batch_after_a_good_one():
    # After one accepted batch, equal batches skip the checks; anything else still gets them.
    model = distkeras.Sequential([distkeras.Input((4,)), layers.Activation("relu")])
    good = torch.ones(3, 4)
    assert model(good).dtype == torch.float32
    assert model(good).dtype == torch.float32
    with pytest.raises(ValueError, match=r"expected shape \(None, 4\), received shape \(3, 5\)"):
        model(torch.ones(3, 5))
    assert model(torch.ones(3, 4, dtype=torch.float64)).dtype == torch.float32  # cast
    assert model(torch.ones(3, 4, dtype=torch.int64)).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):  # kept as is under autocast...
        assert model(torch.ones(3, 4, dtype=torch.float64)).dtype == torch.float64
    # ...which must not let the same float64 batch skip the cast outside it.
    assert model(torch.ones(3, 4, dtype=torch.float64)).dtype == torch.float32
    with pytest.raises(ValueError, match="expected shape"):
        model(torch.ones(3, 4, 1))


def test_functional_model_checks_and_casts_every_new_batch_after_a_good_one():
    inputs = distkeras.Input((4,), name="features")
    model = distkeras.Model(inputs, layers.Activation("relu")(inputs))
    assert model(torch.ones(3, 4)).dtype == torch.float32
    with pytest.raises(ValueError, match=r"Input 'features' .* expected shape \(None, 4\)"):
        model(torch.ones(3, 5))
    assert model(torch.ones(3, 4, dtype=torch.float64)).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.ones(3, 4, dtype=torch.float64)).dtype == torch.float64
    assert model(torch.ones(3, 4, dtype=torch.float64)).dtype == torch.float32


# ---------------------------------------------------------------------------- functional
def two_input_model():
    a = distkeras.Input((4,), name="a")
    b = distkeras.Input((4,), name="b")
    shared = layers.Dense(3, activation="relu", name="shared")
    ha, hb = shared(a), shared(b)
    merged = layers.Concatenate(name="concatenate")([ha, hb])
    out1 = layers.Dense(1, name="o1")(merged)
    inner_in = distkeras.Input((3,), name="inner_in")
    inner = distkeras.Model(inner_in, layers.Dense(2, name="inner_dense")(inner_in), name="inner")
    out2 = inner(hb)
    return distkeras.Model([a, b], [out1, out2], name="two")


def test_functional_multi_input_multi_output_shared_and_nested():
    model = two_input_model()
    # Keras's order: by depth from the outputs, then traversal order.
    assert [layer.name for layer in model.layers] == [
        "a",
        "b",
        "shared",
        "concatenate",
        "o1",
        "inner",
    ]
    ks, bs, k1, b1, ki, bi = model.get_weights()
    assert [w.shape for w in (ks, bs, k1, b1, ki, bi)] == [(4, 3), (3,), (6, 1), (1,), (3, 2), (2,)]
    xa, xb = rand(5, 4, seed=1), rand(5, 4, seed=2)
    ha, hb = dense_ref(xa, ks, bs, relu=True), dense_ref(xb, ks, bs, relu=True)
    out1, out2 = run(model, xa, xb)
    np.testing.assert_allclose(out1, dense_ref(np.concatenate([ha, hb], 1), k1, b1), rtol=1e-5)
    np.testing.assert_allclose(out2, dense_ref(hb, ki, bi), rtol=1e-5, atol=1e-6)
    # The shared layer's weights appear once; the nested model shares its parameters.
    assert len(model.weights) == 6
    inner = model.get_layer("inner")
    assert inner.weights[0] is model.get_layer("inner").get_layer("inner_dense").kernel
    # Inputs by name, as Keras accepts them.
    named = model({"a": torch.as_tensor(xa), "b": torch.as_tensor(xb)})
    np.testing.assert_allclose(named[0].detach().numpy(), out1, rtol=1e-6)


def test_functional_input_errors_name_the_input_and_shape():
    model = two_input_model()
    with pytest.raises(ValueError, match=r"Input 'b' .* expected shape \(None, 4\)"):
        run(model, rand(2, 4), rand(2, 7))
    with pytest.raises(ValueError, match="expects 2 input"):
        run(model, rand(2, 4))
    a, b = distkeras.Input((4,)), distkeras.Input((4,))
    with pytest.raises(ValueError, match="not among the model's inputs"):
        distkeras.Model(a, layers.Concatenate()([a, b]))


def test_get_layer():
    model = two_input_model()
    assert model.get_layer("o1").units == 1
    assert model.get_layer(index=2).name == "shared"
    with pytest.raises(ValueError, match="No such layer: 'nope'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="has 6 layers"):
        model.get_layer(index=6)


# ---------------------------------------------------------------------------- subclassed
class Tower(distkeras.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(units, activation="relu")
        self.blocks = torch.nn.ModuleList([layers.Dense(2), layers.BatchNormalization()])

    def call(self, inputs, training=None):
        x = self.hidden(inputs)
        for block in self.blocks:
            x = block(x, training=training)
        return x


def test_subclassed_model_weights_order_and_forward():
    model = Tower()
    x = rand(4, 5)
    out = run(model, x)
    # Keras's `weights` order: layer by layer, each layer's trainable then non-trainable.
    shapes = [tuple(w.shape) for w in model.get_weights()]
    assert shapes == [(5, 3), (3,), (3, 2), (2,), (2,), (2,), (2,), (2,)]
    assert len(model.trainable_weights) == 6 and len(model.non_trainable_weights) == 2
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense",
        "Dense",
        "BatchNormalization",
    ]
    kh, bh, kd, bd, gamma, beta, mean, var = model.get_weights()
    y = dense_ref(dense_ref(x, kh, bh, relu=True), kd, bd)
    expected = gamma * (y - mean) / np.sqrt(var + 1e-3) + beta  # inference-mode batch norm
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_subclassed_model_build_from_shape():
    model = Tower()
    model.build((None, 7))
    assert model.built and model.get_weights()[0].shape == (7, 3)
