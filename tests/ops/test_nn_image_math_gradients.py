"""Gradients of the nn, image and math ops against Keras 3's (torch backend) on the sweep cases.

Custom layers and losses written on ops train through these gradients, so each case's first
float32 input is differentiated through a random weighting of every float output, in both
libraries.
"""

import copy

import numpy as np
import pytest
import torch

from tests.ops import cases_image, cases_math, cases_nn
from tests.ops.keras_reference import assert_same, keras_op, our_op

# Keras's torch sparsemax is wrong (see test_nn_sweep.REFERENCES), so are its gradients.
EXCLUDED = {"sparsemax"}
CASES = [
    case
    for module in (cases_nn, cases_image, cases_math)
    for case in module.CASES
    if case.name not in EXCLUDED
    and any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in case.args)
]


def _gradient(op, case):
    args = copy.deepcopy(list(case.args))
    if case.name in ("fold", "unfold"):  # Keras's take tensors only
        args = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
    i = next(i for i, a in enumerate(case.args) if getattr(a, "dtype", None) == np.float32)
    x = torch.tensor(case.args[i], requires_grad=True)
    args[i] = x
    if case.name == "elastic_transform":
        torch.manual_seed(5)  # the same displacement fields for both
    out = op(*args, **copy.deepcopy(case.kwargs))
    weights = torch.Generator().manual_seed(0)
    total = None
    for y in out if isinstance(out, (list, tuple)) else [out]:
        if y.is_floating_point() and y.requires_grad:
            w = torch.rand(y.shape, generator=weights, dtype=y.dtype)
            term = (torch.nan_to_num(y, posinf=0.0, neginf=0.0) * w).sum()
            total = term if total is None else total + term
    if total is None:
        return None  # not differentiable in this input (integer outputs, comparisons)
    total.backward()
    return x.grad


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient_matches_keras(case):
    theirs = _gradient(keras_op(case), case)
    ours = _gradient(our_op(case), case)
    if theirs is None:
        assert ours is None or not torch.any(ours), case.id
    else:
        assert ours is not None, f"{case.id}: no gradient reaches the input"
        assert_same(ours, theirs, atol=1e-4, rtol=1e-4)
