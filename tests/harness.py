"""Shared layer test harness, in the spirit of Keras's ``run_layer_test``.

One call checks what every layer owes its users: output shape (eager and symbolic), weight
shapes in Keras layout, a config round trip that rebuilds an equal layer, agreement with an
independent reference computed from the Keras formula, and a training step that reaches every
trainable weight.
"""

from __future__ import annotations

import numpy as np
import torch

import distkeras
from distkeras.layers.input import KerasTensor


def run_layer_test(
    layer_cls,
    init_kwargs: dict,
    input_shape=None,
    *,
    input_data=None,
    input_dtype: str = "float32",
    expected_output_shape=None,
    expected_weight_shapes: list | None = None,
    expected_num_non_trainable_weights: int | None = None,
    reference=None,
    weights: list | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    training_step: bool = True,
    seed: int = 0,
):
    """Runs the shared checks and returns the layer (built) for extra assertions.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        input_shape: full input shape including batch (ignored if ``input_data`` given).
        input_data: a numpy array, or a list of arrays for multi-input layers.
        expected_output_shape: full output shape for ``input_data``.
        expected_weight_shapes: Keras-layout shapes, in ``weights`` order.
        reference: ``f(inputs_numpy, weights_numpy_list) -> expected numpy output`` written
            from the Keras formula with numpy or torch functional ops.
        weights: Keras-layout weights to set before comparing (defaults to the initial ones).
    """
    rng = np.random.default_rng(seed)
    if input_data is None:
        if input_dtype.startswith("int"):
            input_data = rng.integers(0, 10, size=input_shape).astype(input_dtype)
        else:
            input_data = rng.standard_normal(input_shape).astype(input_dtype)
    multi = isinstance(input_data, (list, tuple))
    inputs = [torch.as_tensor(a) for a in input_data] if multi else torch.as_tensor(input_data)

    layer = layer_cls(**init_kwargs)
    with torch.no_grad():
        output = layer(inputs, training=False) if layer._call_takes_training else layer(inputs)
    output_t = output[0] if isinstance(output, (list, tuple)) else output
    if expected_output_shape is not None:
        assert tuple(output_t.shape) == tuple(expected_output_shape), (
            f"{layer_cls.__name__}: output shape {tuple(output_t.shape)}, "
            f"expected {tuple(expected_output_shape)}"
        )

    keras_weights = layer.get_weights()
    if expected_weight_shapes is not None:
        got = [tuple(w.shape) for w in keras_weights]
        assert got == [tuple(s) for s in expected_weight_shapes], (
            f"{layer_cls.__name__}: weight shapes {got}, expected {expected_weight_shapes}"
        )
    if expected_num_non_trainable_weights is not None:
        assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights

    if weights is not None:
        layer.set_weights(weights)
        keras_weights = layer.get_weights()
        with torch.no_grad():
            output = layer(inputs, training=False) if layer._call_takes_training else layer(inputs)
        output_t = output[0] if isinstance(output, (list, tuple)) else output

    if reference is not None:
        expected = reference(input_data, keras_weights)
        np.testing.assert_allclose(
            output_t.detach().numpy(),
            expected,
            atol=atol,
            rtol=rtol,
            err_msg=f"{layer_cls.__name__} disagrees with the reference formula",
        )

    _check_config_round_trip(layer, inputs, output_t, keras_weights, atol, rtol)
    _check_symbolic(layer_cls, init_kwargs, input_data, multi, output_t)
    if keras_weights:
        _check_set_weights_errors(layer, keras_weights)
    if training_step and layer.trainable_weights:
        _check_training_step(layer, inputs)
    return layer


def _call(layer, inputs):
    with torch.no_grad():
        out = layer(inputs, training=False) if layer._call_takes_training else layer(inputs)
    return out[0] if isinstance(out, (list, tuple)) else out


def _check_config_round_trip(layer, inputs, output, keras_weights, atol, rtol):
    config = layer.get_config()
    import json

    json.dumps(config)  # configs must be JSON-serializable to be saved
    clone = type(layer).from_config(config)
    assert clone.get_config() == config, f"{type(layer).__name__}: config round trip differs"
    _call(clone, inputs)
    if keras_weights:
        clone.set_weights(keras_weights)
    np.testing.assert_allclose(
        _call(clone, inputs).numpy(),
        output.detach().numpy(),
        atol=atol,
        rtol=rtol,
        err_msg=f"{type(layer).__name__}: rebuilt layer gives other outputs",
    )


def _check_symbolic(layer_cls, init_kwargs, input_data, multi, output):
    arrays = input_data if multi else [input_data]
    symbolic = [distkeras.Input(shape=a.shape[1:], dtype=str(a.dtype)) for a in arrays]
    out = layer_cls(**init_kwargs)(symbolic if multi else symbolic[0])
    out = out[0] if isinstance(out, (list, tuple)) else out
    assert isinstance(out, KerasTensor)
    assert out.shape[0] is None
    assert tuple(out.shape[1:]) == tuple(output.shape[1:]), (
        f"{layer_cls.__name__}: symbolic shape {out.shape} vs eager {tuple(output.shape)}"
    )


def _check_set_weights_errors(layer, keras_weights):
    bad = [np.zeros(tuple(d + 1 for d in w.shape) or (2,)) for w in keras_weights]
    try:
        layer.set_weights(bad)
    except ValueError as err:
        assert layer.name in str(err)
    else:
        raise AssertionError(f"{type(layer).__name__}.set_weights accepted wrong shapes")


def _check_training_step(layer, inputs):
    with torch.enable_grad():
        out = layer(inputs, training=True) if layer._call_takes_training else layer(inputs)
        outs = out if isinstance(out, (list, tuple)) else [out]
        loss = sum(o.float().square().mean() for o in outs if o.is_floating_point())
        if not isinstance(loss, torch.Tensor):
            return
        loss = loss + sum(layer.losses, torch.zeros(()))
        loss.backward()
    for param in layer.trainable_weights:
        assert param.grad is not None, f"{type(layer).__name__}: a trainable weight got no grad"
        assert torch.isfinite(param.grad).all()
        param.grad = None
