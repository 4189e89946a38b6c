"""``models.clone_model``: the same architecture with new layers (and so new weights).

A Sequential model is cloned layer by layer; a functional model by replaying its graph, node
by node, on new inputs with each layer replaced by its clone. Shared layers stay shared in the
clone, because each original layer is cloned once.
"""

from __future__ import annotations

from collections.abc import Callable

from distkeras.layers.base import Layer
from distkeras.layers.input import Input, InputLayer, KerasTensor
from distkeras.layers.op_layer import OpLayer
from distkeras.utils.tree import flatten, map_structure, pack_sequence_as


def _default_clone(layer: Layer) -> Layer:
    return layer.__class__.from_config(layer.get_config())


def _cloner(clone_function: Callable | None, recursive: bool, call_function, cache: dict):
    """``clone_function`` made idempotent per layer (shared layers stay shared), recursing into
    nested Sequential/functional models when ``recursive``."""
    from distkeras.models.functional import Functional
    from distkeras.models.sequential import Sequential

    base = clone_function or _default_clone
    if not callable(base):
        raise ValueError(
            f"clone_model: clone_function must be a callable. Received: {clone_function!r}"
        )

    def clone(layer: Layer) -> Layer:
        if id(layer) not in cache:
            if recursive and isinstance(layer, (Sequential, Functional)):
                cache[id(layer)] = _clone(layer, None, clone, call_function, recursive, cache)
            else:
                cache[id(layer)] = base(layer)
        return cache[id(layer)]

    return clone


def clone_model(
    model,
    input_tensors=None,
    clone_function: Callable | None = None,
    call_function: Callable | None = None,
    recursive: bool = False,
    **kwargs,
):
    """Clones a Sequential or functional model, as ``keras.models.clone_model``.

    Args:
        model: a Sequential or functional model.
        input_tensors: ``Input`` tensors to build the clone on (one per model input); new
            ones matching the model's inputs by default.
        clone_function: ``fn(layer) -> layer`` used for every non-input layer; by default
            ``layer.__class__.from_config(layer.get_config())`` (fresh weights).
        call_function: functional models only: ``fn(layer, *args, **kwargs)`` called in
            place of ``layer(*args, **kwargs)`` for each node of the graph.
        recursive: also clone the layers inside nested Sequential/functional models with
            ``clone_function``, instead of handing the nested model to it whole.
    """
    from distkeras.models.functional import Functional
    from distkeras.models.sequential import Sequential

    if kwargs:
        raise ValueError(f"clone_model: unexpected keyword argument(s): {tuple(kwargs)}")
    if not isinstance(model, (Sequential, Functional)) and (
        clone_function is not None or input_tensors is not None or call_function is not None
    ):
        raise ValueError(
            "clone_model: clone_function, call_function and input_tensors are only supported "
            f"for Sequential and functional models. Received a {type(model).__name__}."
        )
    cache: dict[int, Layer] = {}
    clone = _cloner(clone_function, recursive, call_function, cache)
    return _clone(model, input_tensors, clone, call_function, recursive, cache)


def _clone(model, input_tensors, clone, call_function, recursive, cache):
    from distkeras.models.functional import Functional
    from distkeras.models.saving import _compile_from_config
    from distkeras.models.sequential import Sequential

    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError(
                "clone_model: call_function is not supported with Sequential models (their "
                "layers are listed, not called, when the model is built); use it with "
                "functional models."
            )
        cloned = _clone_sequential(model, input_tensors, clone)
    elif isinstance(model, Functional):
        cloned = _clone_functional(model, input_tensors, clone, call_function)
    else:  # a subclassed model: rebuilt from its config, as Keras does
        cloned = model.__class__.from_config(model.get_config())
    compile_config = getattr(model, "_compile_config", None)
    if compile_config:
        _compile_from_config(cloned, compile_config)
    return cloned


def _single_input(input_tensors, what: str):
    if isinstance(input_tensors, (list, tuple)):
        if len(input_tensors) != 1:
            raise ValueError(f"clone_model: input_tensors for {what} must hold one tensor.")
        input_tensors = input_tensors[0]
    if not isinstance(input_tensors, KerasTensor):
        raise ValueError(
            f"clone_model: input_tensors must be Input() tensors. Received: {input_tensors!r}"
        )
    return input_tensors


def _clone_sequential(model, input_tensors, clone):
    from distkeras.models.sequential import Sequential

    new_layers = [clone(layer) for layer in model.layers]
    source = model._input_layer
    if input_tensors is not None:
        new_layers.insert(0, _single_input(input_tensors, "a Sequential model"))
    elif source is not None:
        new_layers.insert(
            0, Input(batch_shape=source.batch_shape, dtype=source.dtype, name=source.name)
        )
    return Sequential(new_layers, name=model.name, trainable=model.trainable)


def _clone_functional(model, input_tensors, clone, call_function):
    from distkeras.models.functional import Functional

    originals = model._inputs
    if input_tensors is None:
        new_inputs = []
        for tensor in originals:
            layer = tensor._keras_history[0]
            new_inputs.append(
                Input(batch_shape=layer.batch_shape, dtype=layer.dtype, name=layer.name)
            )
    else:
        new_inputs = flatten(input_tensors)
        if len(new_inputs) != len(originals) or not all(
            isinstance(t, KerasTensor) for t in new_inputs
        ):
            raise ValueError(
                f"clone_model: input_tensors must be {len(originals)} Input() tensor(s), one "
                f"per model input. Received: {input_tensors!r}"
            )
    mapped = {id(old): new for old, new in zip(originals, new_inputs)}

    def replace(value):
        return mapped[id(value)] if isinstance(value, KerasTensor) else value

    for node in model._nodes:
        if isinstance(node.layer, InputLayer):
            continue
        args = map_structure(replace, list(node.call_args))
        kwargs = map_structure(replace, dict(node.call_kwargs))
        if isinstance(node.layer, OpLayer):  # as Keras: operations are reused, layers cloned
            outputs = node.layer(*args, **kwargs)
        else:
            layer = clone(node.layer)
            outputs = (
                call_function(layer, *args, **kwargs) if call_function else layer(*args, **kwargs)
            )
        for old, new in zip(node.output_tensors, flatten(outputs)):
            mapped[id(old)] = new
    inputs = pack_sequence_as(model._input_structure, new_inputs)
    outputs = pack_sequence_as(
        model._output_structure, [mapped[id(t)] for t in flatten(model._output_structure)]
    )
    return Functional(inputs, outputs, name=model.name, trainable=model.trainable)
