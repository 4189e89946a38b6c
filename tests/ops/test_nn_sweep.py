"""Every op of ``keras.ops.nn`` against Keras 3 (torch backend) on the same inputs."""

import copy

import numpy as np
import pytest
import torch

from tests.ops.cases_nn import CASES, IMG, f32
from tests.ops.keras_reference import assert_same, import_keras, keras_op, our_op

# Keras's fold/unfold hand their input to torch unconverted, so Keras gets tensors there.
KERAS_TAKES_TENSORS = {"fold", "unfold"}


def _call(op, case, tensors=False):
    # Fresh copies: Keras's torch backend shares numpy memory and some of its ops write in it.
    args = copy.deepcopy(case.args)
    if tensors:
        args = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
    return op(*args, **copy.deepcopy(case.kwargs))


def _sparsemax(x, axis=-1):
    """Martins & Astudillo (2016): the Euclidean projection onto the simplex, row by row."""
    z = np.moveaxis(x, axis, -1)
    out = np.zeros_like(z)
    for index in np.ndindex(z.shape[:-1]):
        row = z[index]
        ranked = np.sort(row)[::-1]
        k = np.arange(1, row.size + 1)
        support = 1 + k * ranked > np.cumsum(ranked)
        size = k[support].max()
        tau = (ranked[:size].sum() - 1) / size
        out[index] = np.maximum(row - tau, 0)
    return np.moveaxis(out, -1, axis)


# Where Keras's torch backend is wrong, an independent reference instead of Keras:
# its sparsemax subtracts the sum of the partial sums (not the k-th partial sum) when the
# support has more than one element, so its rows do not sum to 1.
REFERENCES = {"sparsemax": lambda case: _sparsemax(*case.args, **case.kwargs)}


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_keras(case):
    if case.name in REFERENCES:
        theirs = REFERENCES[case.name](case)
    else:
        theirs = _call(keras_op(case), case, tensors=case.name in KERAS_TAKES_TENSORS)
    ours = _call(our_op(case), case)
    assert_same(ours, theirs, atol=case.atol)


def _keras_nn_names():
    keras = import_keras()
    return sorted(n for n in dir(keras.ops.nn) if not n.startswith("_"))


def test_every_name_has_a_case_and_is_exported():
    import distkeras.ops
    import distkeras.ops.nn

    names = _keras_nn_names()
    assert len(names) == 55
    assert set(names) <= {case.name for case in CASES}
    for name in names:
        op = getattr(distkeras.ops.nn, name)
        assert getattr(distkeras.ops, name) is op, name
        assert (op.op_module, op.op_name) == ("nn", name)


def test_signatures_match_keras():
    import inspect

    import distkeras.ops.nn

    keras = import_keras()
    for name in _keras_nn_names():
        ours = inspect.signature(getattr(distkeras.ops.nn, name))
        theirs = inspect.signature(getattr(keras.ops.nn, name))
        assert str(ours) == str(theirs), name


def _windows_mean(x, pool, strides):
    """Average of each TensorFlow "same" window over its real cells, by explicit loops."""
    n, h, w, c = x.shape
    out_h, out_w = -(-h // strides), -(-w // strides)
    pad_h = max(0, (out_h - 1) * strides + pool - h) // 2
    pad_w = max(0, (out_w - 1) * strides + pool - w) // 2
    out = np.zeros((n, out_h, out_w, c), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * strides - pad_h, j * strides - pad_w
            window = x[:, max(top, 0) : top + pool, max(left, 0) : left + pool]
            out[:, i, j] = window.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("pool,strides", [(2, 2), (3, 2), (2, 1)])
def test_average_pool_same_excludes_padding(pool, strides):
    # Keras's torch backend pads asymmetric "same" windows by replicating the edge; Keras on
    # TensorFlow and JAX (and our AveragePooling2D) average the real cells only.
    import distkeras.ops

    ours = distkeras.ops.nn.average_pool(IMG, pool, strides=strides, padding="same")
    assert_same(ours, _windows_mean(IMG, pool, strides))


def test_layer_normalization_on_leading_axis():
    # Keras's torch backend hands a non-trailing axis to F.layer_norm, which then normalizes
    # the last axis instead; we normalize the axis asked for.
    import distkeras.ops

    x = f32(3, 4, 5)
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    ours = distkeras.ops.nn.layer_normalization(x, axis=1, epsilon=1e-3)
    assert_same(ours, (x - mean) / np.sqrt(var + 1e-3), atol=1e-5)


def test_torch_tensors_and_gradients():
    import distkeras.ops

    x = torch.tensor(f32(2, 5, 5, 3), requires_grad=True)
    k = torch.tensor(f32(3, 3, 3, 2))
    y = distkeras.ops.nn.conv(x, k, padding="same")
    y.sum().backward()
    assert y.shape == (2, 5, 5, 2) and x.grad.shape == x.shape


def test_unsupported_arguments_raise():
    import distkeras.ops

    with pytest.raises(ValueError, match="sparse"):
        distkeras.ops.nn.one_hot(np.array([1]), 3, sparse=True)
    with pytest.raises(NotImplementedError, match="synchronized"):
        distkeras.ops.nn.moments(f32(2, 3), [0], synchronized=True)
    with pytest.raises(ValueError, match="attn_logits_soft_cap"):
        q = f32(1, 2, 1, 4)
        distkeras.ops.nn.dot_product_attention(q, q, q, attn_logits_soft_cap=1.0)
    with pytest.raises(ValueError, match="padding"):
        distkeras.ops.nn.max_pool(IMG, 2, padding="causal")


UNARY = [
    "relu", "relu6", "sigmoid", "sparse_sigmoid", "tanh_shrink", "softplus", "softsign",
    "sparse_plus", "silu", "swish", "log_sigmoid", "hard_sigmoid", "hard_silu", "hard_swish",
    "selu", "hard_tanh", "squareplus", "soft_shrink", "hard_shrink", "leaky_relu", "elu", "celu",
    "gelu", "glu", "softmax", "log_softmax", "sparsemax", "normalize", "rms_normalization",
    "layer_normalization",
]  # fmt: skip
DTYPES = ["float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_input_dtypes_as_keras(dtype):
    """Each one-tensor op on each input dtype: Keras's result and dtype, or an error where
    Keras raises one."""
    import distkeras.ops

    keras = import_keras()
    x = torch.tensor([[-2, -1, 0, 1], [2, 3, 1, 0]]).to(getattr(torch, dtype))
    atol = 1e-2 if dtype in ("float16", "bfloat16") else 1e-5
    for name in UNARY:
        try:
            theirs = getattr(keras.ops.nn, name)(x.clone())
        except Exception:  # noqa: BLE001  (Keras rejects this dtype: so must we)
            with pytest.raises(Exception):  # noqa: B017
                getattr(distkeras.ops.nn, name)(x.clone())
            continue
        assert_same(getattr(distkeras.ops.nn, name)(x.clone()), theirs, atol=atol)
