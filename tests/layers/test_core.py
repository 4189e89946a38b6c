"""Embedding, Lambda and Masking against numpy references, plus models built from them."""

import json
import warnings

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from distkeras.utils.serialization import (
    custom_object_scope,
    register_keras_serializable,
    safe_mode_scope,
)
from tests.harness import run_layer_test


@register_keras_serializable(package="test_core")
def scaled_tanh(x, scale=1.0):
    return torch.tanh(x) * scale


def local_double(x):
    return x * 2


# -------------------------------------------------------------------------- Embedding
def test_embedding_harness():
    def reference(ids, weights):
        return weights[0][ids]

    run_layer_test(
        layers.Embedding,
        {"input_dim": 10, "output_dim": 4},
        (3, 5),
        input_dtype="int32",
        expected_output_shape=(3, 5, 4),
        expected_weight_shapes=[(10, 4)],
        reference=reference,
        weights=[np.random.default_rng(1).standard_normal((10, 4)).astype("float32")],
    )


def test_embedding_default_initializer_is_uniform_005():
    layer = layers.Embedding(50, 40)
    layer(torch.zeros(1, 1, dtype=torch.int64))
    (table,) = layer.get_weights()
    assert table.min() >= -0.05 and table.max() <= 0.05
    assert table.std() > 0.02  # uniform(-0.05, 0.05) has std 0.029
    init = layer.get_config()["embeddings_initializer"]
    assert init["class_name"] == "RandomUniform"
    assert (init["config"]["minval"], init["config"]["maxval"]) == (-0.05, 0.05)


def test_embedding_casts_float_ids_and_masks_zero():
    layer = layers.Embedding(6, 3, mask_zero=True)
    ids = torch.tensor([[3, 0, 5], [0, 0, 1]])
    out = layer(ids)
    out_float = layer(ids.float())
    table = layer.get_weights()[0]
    np.testing.assert_allclose(out_float.detach().numpy(), table[ids.numpy()])
    np.testing.assert_array_equal(out._keras_mask.numpy(), ids.numpy() != 0)
    np.testing.assert_array_equal(out_float._keras_mask.numpy(), ids.numpy() != 0)
    assert getattr(layers.Embedding(6, 3)(ids), "_keras_mask", None) is None


def test_embedding_regularizer_constraint_and_initial_weights():
    table = np.arange(12, dtype="float32").reshape(4, 3)
    layer = layers.Embedding(4, 3, weights=[table], embeddings_regularizer="l2")
    np.testing.assert_array_equal(layer.get_weights()[0], table)
    np.testing.assert_allclose(
        float(layer.losses[0].detach()), 0.01 * float((table**2).sum()), rtol=1e-6
    )
    config = json.loads(json.dumps(layer.get_config()))
    assert config["embeddings_regularizer"]["class_name"] == "L2"
    assert layers.Embedding.from_config(config).mask_zero is False


def test_embedding_argument_errors():
    with pytest.raises(ValueError, match="input_dim=0"):
        layers.Embedding(0, 4)
    with pytest.raises(ValueError, match="output_dim='8'"):
        layers.Embedding(10, "8")
    with pytest.raises(TypeError, match="mask_zero='yes'"):
        layers.Embedding(10, 4, mask_zero="yes")
    with pytest.raises(ValueError, match="lora_rank"):
        layers.Embedding.from_config({"input_dim": 3, "output_dim": 2, "lora_rank": 4})


def test_embedding_input_length_is_accepted_and_ignored():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = layers.Embedding(10, 4, input_length=7)
    assert any("input_length" in str(w.message) for w in caught)
    assert layer._batch_input_shape is None
    assert layer(torch.zeros(2, 9, dtype=torch.int64)).shape == (2, 9, 4)


def test_embedding_sequential_has_integer_input():
    model = distkeras.Sequential(
        [layers.Embedding(20, 3, input_shape=(5,)), layers.Flatten(), layers.Dense(2)]
    )
    assert model.inputs[0].dtype == "int32"
    assert model(torch.randint(0, 20, (4, 5))).shape == (4, 2)


# --------------------------------------------------------------------------- Masking
def _masking_reference(x, weights, mask_value=0.0):
    keep = np.any(x != mask_value, axis=-1, keepdims=True)
    return x * keep


def test_masking_harness():
    data = np.random.default_rng(0).standard_normal((3, 4, 2)).astype("float32")
    data[0, 1] = 0.0
    data[2, 3] = 0.0
    layer = run_layer_test(
        layers.Masking,
        {},
        input_data=data,
        expected_output_shape=(3, 4, 2),
        reference=_masking_reference,
    )
    out = layer(torch.as_tensor(data))
    np.testing.assert_array_equal(out._keras_mask.numpy(), np.any(data != 0, axis=-1))


def test_masking_custom_value_zeroes_output_and_replaces_incoming_mask():
    data = np.array([[[-1.0, -1.0], [2.0, -1.0], [-1.0, -1.0]]], dtype="float32")
    x = torch.as_tensor(data)
    out = layers.Masking(mask_value=-1.0)(x, mask=torch.tensor([[False, False, True]]))
    np.testing.assert_array_equal(out.numpy(), _masking_reference(data, [], -1.0))
    np.testing.assert_array_equal(out._keras_mask.numpy(), [[False, True, False]])
    with pytest.raises(TypeError, match="mask_value='0'"):
        layers.Masking(mask_value="0")


# ---------------------------------------------------------------------------- Lambda
def test_lambda_harness_with_registered_function_and_arguments():
    layer = run_layer_test(
        layers.Lambda,
        {"function": scaled_tanh, "arguments": {"scale": 3.0}},
        (2, 5),
        expected_output_shape=(2, 5),
        reference=lambda x, w: np.tanh(x) * 3.0,
    )
    config = layer.get_config()
    assert config["function"] == {
        "module": __name__,
        "class_name": "function",
        "config": "scaled_tanh",
        "registered_name": "test_core>scaled_tanh",
    }
    assert config["arguments"] == {"scale": 3.0}


def test_lambda_output_shape_and_compute_output_shape():
    layer = layers.Lambda(lambda x: x[:, :2], output_shape=(2,))
    assert layer.compute_output_shape((None, 5)) == (None, 2)
    assert layer.get_config()["output_shape"] == [2]
    by_fn = layers.Lambda(lambda x: x, output_shape=lambda s: (s[0], 7))
    assert by_fn.compute_output_shape((3, 5)) == (3, 7)
    inputs = distkeras.Input((6,))
    assert layers.Lambda(lambda x: x.sum(-1, keepdim=True))(inputs).shape == (None, 1)
    with pytest.raises(ValueError, match="output_shape='bad'"):
        layers.Lambda(local_double, output_shape="bad")
    with pytest.raises(TypeError, match="function=3"):
        layers.Lambda(3)


def test_lambda_bytecode_refused_in_safe_mode():
    config = layers.Lambda(lambda x: x + 1).get_config()
    assert config["function"]["class_name"] == "__lambda__"
    config = json.loads(json.dumps(config))
    with pytest.raises(ValueError, match="safe_mode=False") as err:
        layers.Lambda.from_config(config)
    assert "code" in str(err.value) and "trust" in str(err.value)


def test_lambda_bytecode_loads_outside_safe_mode_with_closure_and_defaults():
    offset = 4.0
    layer = layers.Lambda(lambda x, k=2.0: torch.relu(x) * k + offset)
    config = json.loads(json.dumps(layer.get_config()))
    with safe_mode_scope(False):
        clone = layers.Lambda.from_config(config)
    x = torch.tensor([[-1.0, 3.0]])
    np.testing.assert_allclose(clone(x).numpy(), [[4.0, 10.0]])
    assert tuple(clone.get_config()["function"]["config"]["closure"]) == (4.0,)


def test_lambda_named_function_needs_registration_in_safe_mode():
    config = json.loads(json.dumps(layers.Lambda(local_double).get_config()))
    with pytest.raises(ValueError, match="custom_objects"):
        layers.Lambda.from_config(config)
    with custom_object_scope({"local_double": local_double}):
        assert layers.Lambda.from_config(config).function is local_double
    with safe_mode_scope(False):
        assert layers.Lambda.from_config(config).function is local_double


def test_lambda_passes_mask_and_training_and_computes_mask():
    seen = {}

    def fn(x, mask=None, training=None):
        seen["mask"], seen["training"] = mask, training
        return x

    layer = layers.Lambda(fn, mask=lambda inputs, mask: inputs[..., 0] > 0)
    x = torch.tensor([[[1.0], [-1.0]]])
    out = layer(x, mask=torch.tensor([[True, True]]), training=True)
    assert seen["training"] is True and seen["mask"].tolist() == [[True, True]]
    assert out._keras_mask.tolist() == [[True, False]]
    assert (
        getattr(layers.Lambda(local_double)(x, mask=torch.ones(1, 2).bool()), "_keras_mask", None)
        is None
    )


# ------------------------------------------------------------------------------ models
def test_functional_embedding_mask_reaches_lambda_masked_mean():
    ids = np.array([[3, 1, 0, 0], [2, 5, 4, 0]], dtype="int32")

    def masked_mean(x, mask=None):
        if mask is None:  # shape inference runs on unmasked placeholders
            return x.mean(1)
        weights = mask.to(x.dtype).unsqueeze(-1)
        return (x * weights).sum(1) / weights.sum(1)

    inputs = distkeras.Input((4,), dtype="int32")
    embedded = layers.Embedding(8, 3, mask_zero=True)(inputs)
    pooled = layers.Lambda(masked_mean)(embedded)
    outputs = layers.Dense(2)(pooled)
    model = distkeras.Model(inputs, outputs)
    table, kernel, bias = model.get_weights()
    expected = np.stack([table[row[row != 0]].mean(0) for row in ids]) @ kernel + bias
    got = model(torch.as_tensor(ids))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    got.square().mean().backward()
    assert model.layers[1].embeddings.grad is not None


def test_sequential_masking_then_lambda():
    data = np.ones((2, 3, 2), dtype="float32")
    data[0, 2] = 0.0
    model = distkeras.Sequential(
        [
            layers.Masking(input_shape=(3, 2)),
            layers.Lambda(
                lambda x, mask=None: x[:, :1, 0] if mask is None else mask.float().sum(1, True)
            ),
        ]
    )
    np.testing.assert_array_equal(model(torch.as_tensor(data)).numpy(), [[2.0], [3.0]])
