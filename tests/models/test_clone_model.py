"""``models.clone_model`` on Sequential and functional models, with Keras's arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers, models


def _functional_with_shared_layer():
    a = distkeras.Input((4,), name="a")
    b = distkeras.Input((4,), name="b")
    shared = layers.Dense(3, name="shared")
    merged = layers.Concatenate()([shared(a), shared(b)])
    out = layers.Dense(2, name="head")(layers.Dropout(0.5)(merged))
    return distkeras.Model({"a": a, "b": b}, out)


def _sequential():
    return distkeras.Sequential(
        [distkeras.Input((4,)), layers.Dense(5, activation="relu"), layers.Dense(2)], name="seq"
    )


def _data():
    rng = np.random.default_rng(0)
    return {
        "a": rng.standard_normal((3, 4), dtype="float32"),
        "b": rng.standard_normal((3, 4), dtype="float32"),
    }


@pytest.mark.parametrize("build", [_sequential, _functional_with_shared_layer])
def test_clone_has_the_architecture_and_new_weights(build):
    model = build()
    clone = models.clone_model(model)
    assert type(clone) is type(model)
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert all(a is not b for a, b in zip(clone.layers, model.layers))
    original = model.get_weights()
    cloned = clone.get_weights()
    assert [w.shape for w in cloned] == [w.shape for w in original]
    assert any(not np.array_equal(w, v) for w, v in zip(cloned, original) if w.size > 3)
    clone.set_weights(original)
    x = _data()["a"] if isinstance(model, distkeras.Sequential) else _data()
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_shared_layers_stay_shared_in_the_clone():
    clone = models.clone_model(_functional_with_shared_layer())
    shared = [layer for layer in clone.layers if layer.name == "shared"]
    assert len(shared) == 1 and len(shared[0]._inbound_nodes) == 2


def test_clone_function_replaces_layers():
    def no_dropout(layer):
        if isinstance(layer, layers.Dropout):
            return layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone = models.clone_model(_functional_with_shared_layer(), clone_function=no_dropout)
    assert not any(isinstance(layer, layers.Dropout) for layer in clone.layers)
    assert any(isinstance(layer, layers.Identity) for layer in clone.layers)


def test_call_function_wraps_each_call():
    calls = []

    def call_function(layer, *args, **kwargs):
        calls.append(layer.name)
        return layer(*args, **kwargs)

    models.clone_model(_functional_with_shared_layer(), call_function=call_function)
    assert calls.count("shared") == 2 and "head" in calls


def test_input_tensors_and_recursive_cloning():
    inner = _sequential()
    x = distkeras.Input((4,))
    outer = distkeras.Model(x, inner(x))
    new_input = distkeras.Input((4,), name="fresh")
    clone = models.clone_model(outer, input_tensors=[new_input], recursive=True)
    assert clone.inputs[0] is new_input
    nested = clone.layers[1]
    assert isinstance(nested, distkeras.Sequential) and nested is not inner
    assert all(a is not b for a, b in zip(nested.layers, inner.layers))
    plain = models.clone_model(outer, clone_function=lambda layer: layer)
    assert plain.layers[1] is inner


def test_compiled_model_clone_is_compiled_the_same_way():
    model = _sequential()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    clone = models.clone_model(model)
    history = clone.fit(np.ones((4, 4), "float32"), np.ones((4, 2), "float32"), verbose=0)
    assert set(history.history) == {"loss", "mae"}


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="unexpected keyword"):
        models.clone_model(_sequential(), share_weights=True)
    with pytest.raises(ValueError, match="call_function"):
        models.clone_model(_sequential(), call_function=lambda layer, x: layer(x))
    with pytest.raises(ValueError, match="clone_function"):
        models.clone_model(_sequential(), clone_function=3)


def test_layers_serialize_and_deserialize():
    dense = layers.Dense(3, activation="tanh", name="d")
    spec = layers.serialize(dense)
    assert spec["class_name"] == "Dense" and spec["module"] == "keras.layers"
    rebuilt = layers.deserialize(spec)
    assert isinstance(rebuilt, layers.Dense) and rebuilt.get_config() == dense.get_config()
    assert torch.is_tensor(rebuilt(torch.ones(1, 2)))


def test_model_input_and_output_as_in_keras():
    seq = _sequential()
    assert seq.input is seq.inputs[0] and seq.output is seq.outputs[0]
    functional = _functional_with_shared_layer()
    assert set(functional.input) == {"a", "b"}
    assert functional.output is functional.outputs[0]
    with pytest.raises(ValueError, match="no defined input"):
        _ = distkeras.Sequential([layers.Dense(2)]).input
