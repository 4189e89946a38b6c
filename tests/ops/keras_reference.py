"""Keras 3 itself, on its torch backend, as the reference the ops sweeps compare against."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np


def import_keras():
    """Keras with the torch backend (Keras picks its backend once, at first import)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    assert keras.backend.backend() == "torch", "keras was imported earlier with another backend"
    return keras


def to_numpy(value):
    """A tensor, array, scalar or nested list/tuple of them, as numpy (structure kept)."""
    if isinstance(value, (list, tuple)):
        return type(value)(to_numpy(v) for v in value)
    if hasattr(value, "detach"):  # a torch tensor (Keras's torch backend returns these too)
        value = value.detach().cpu()
        return value.float().numpy() if str(value.dtype) == "torch.bfloat16" else value.numpy()
    return np.asarray(value)


def assert_same(ours, theirs, *, atol: float = 1e-5, rtol: float = 1e-5, check_dtype: bool = True):
    """Equal values (NaNs equal), shapes and, by default, dtypes, recursively."""
    ours, theirs = to_numpy(ours), to_numpy(theirs)
    if isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b, atol=atol, rtol=rtol, check_dtype=check_dtype)
        return
    assert ours.shape == theirs.shape, f"shape {ours.shape} != Keras {theirs.shape}"
    if check_dtype:
        assert ours.dtype == theirs.dtype, f"dtype {ours.dtype} != Keras {theirs.dtype}"
    if ours.dtype.kind in "fc":
        np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol, equal_nan=True)
    else:
        np.testing.assert_array_equal(ours, theirs)


@dataclass
class Case:
    """One op call to compare with Keras: ``keras.ops[.module].name(*args, **kwargs)``.

    Sweeps keep their cases in ``tests/ops/cases_*.py`` lists named ``CASES`` so that other
    sweeps (symbolic calls in functional models, saving) reuse the same inputs. ``args`` hold
    numpy arrays and Python values only, so one case feeds both libraries.
    """

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    module: str = ""  # "", "numpy", "nn", "linalg" or "image" (where keras.ops exposes it)
    atol: float = 1e-5
    label: str = ""  # distinguishes several cases of one op in test ids

    @property
    def id(self) -> str:
        return f"{self.module or 'ops'}.{self.name}" + (f"[{self.label}]" if self.label else "")


def keras_op(case: Case):
    keras = import_keras()
    namespace = getattr(keras.ops, case.module) if case.module else keras.ops
    return getattr(namespace, case.name)


def our_op(case: Case):
    import distkeras.ops

    namespace = getattr(distkeras.ops, case.module) if case.module else distkeras.ops
    return getattr(namespace, case.name)
