"""distkeras.ops has exactly Keras 3's public names: flat and in each submodule."""

import pytest

import distkeras.ops
from tests.ops.keras_reference import import_keras

SUBMODULES = ["", "numpy", "nn", "linalg", "image"]


def _public(module) -> set[str]:
    return {name for name in dir(module) if not name.startswith("_")}


@pytest.mark.parametrize("sub", SUBMODULES, ids=lambda s: s or "flat")
def test_same_public_names_as_keras(sub):
    keras = import_keras()
    theirs = getattr(keras.ops, sub) if sub else keras.ops
    ours = getattr(distkeras.ops, sub) if sub else distkeras.ops
    missing = sorted(_public(theirs) - _public(ours))
    extra = sorted(_public(ours) - _public(theirs))
    assert not missing, f"names Keras has and distkeras lacks: {missing}"
    assert not extra, f"public names Keras does not have: {extra}"


def test_star_import_gives_exactly_keras_names():
    keras = import_keras()
    namespace: dict = {}
    exec("from distkeras.ops import *", namespace)
    assert {n for n in namespace if not n.startswith("_")} == _public(keras.ops)


@pytest.mark.parametrize("sub", ["numpy", "nn", "linalg"])
def test_flat_names_are_the_submodule_functions(sub):
    """Where Keras exports one function both flat and in a submodule, so do we."""
    keras = import_keras()
    k_sub, d_sub = getattr(keras.ops, sub), getattr(distkeras.ops, sub)
    for name in _public(k_sub):
        if getattr(keras.ops, name, None) is getattr(k_sub, name):
            assert getattr(distkeras.ops, name) is getattr(d_sub, name), name


def test_every_keras_operation_maps_onto_our_signature():
    """Op nodes are saved and loaded by Keras's argument names (op_classes.py): each must be
    a parameter of our op, or our op must take **kwargs for a constructor argument."""
    import inspect

    from distkeras.ops.dispatch import OPS_REGISTRY
    from distkeras.ops.op_classes import OP_CLASSES

    ops_by_name = {name: op for (_, name), op in OPS_REGISTRY.items()}
    for name, (_, _, init, call) in OP_CLASSES.items():
        assert name in ops_by_name, f"Keras saves an op {name!r} that distkeras.ops lacks"
        params = inspect.signature(ops_by_name[name].eager).parameters
        takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
        for arg in init:
            assert arg in params or takes_kwargs, (name, arg)
        for arg in call:
            assert arg.lstrip("*") in params, (name, arg)
