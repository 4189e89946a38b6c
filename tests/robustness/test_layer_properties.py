"""Property tests: any layer arguments and input shapes give a working layer or a clear error.

For generated arguments (valid and invalid) and input shapes, each case either

* works: calling the layer on ``distkeras.Input`` gives a symbolic shape, and calling it on a
  real tensor of that shape gives exactly that shape (on a fresh layer too), or
* raises ``ValueError``/``TypeError`` whose message names the layer (class or instance name)
  or one of the arguments.

Any other exception (a ``RuntimeError`` or ``IndexError`` from deep inside torch) fails.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import distkeras
from distkeras import layers

# DISTKERAS_FUZZ_EXAMPLES raises the count for a longer hunt; the default keeps this file fast.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("DISTKERAS_FUZZ_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BATCH = 2

# Values that are wrong for almost any argument: wrong types, zero, negatives.
junk = st.sampled_from([None, "3", 1.5, -1, 0, True, [], (2, "a")])
small_int = st.integers(min_value=-2, max_value=6)
padding = st.sampled_from(["valid", "same", "causal", "SAME", "full", "", 3, None])
data_format = st.sampled_from([None, "channels_last", "channels_first", "nhwc"])


def int_or_tuple(length: int):
    """An int, a tuple of the right length, or one of the wrong length."""
    return st.one_of(
        small_int,
        st.tuples(*[small_int] * length),
        st.lists(small_int, min_size=0, max_size=length + 1).map(tuple),
        junk,
    )


def shape_strategy(min_rank: int = 1, max_rank: int = 4, max_dim: int = 6):
    """Per-sample input shapes (no batch dimension), with zero-sized dims now and then."""
    return st.lists(
        st.integers(min_value=0, max_value=max_dim), min_size=min_rank, max_size=max_rank
    ).map(tuple)


def _message_ok(err: Exception, cls_name: str, layer_name: str | None, arg_names) -> bool:
    text = str(err)
    names = [cls_name, *arg_names]
    if layer_name:
        names.append(layer_name)
    return any(name in text for name in names)


def _real_input(shape, dtype=torch.float32, high: int | None = None) -> torch.Tensor:
    full = (BATCH, *shape)
    if high is not None:
        return torch.randint(0, max(high, 1), full, dtype=dtype)
    return torch.randn(full, dtype=dtype)


def check_layer(
    make, input_shapes, arg_names, *, training=False, int_high=None, batch_may_change=False
):
    """The property: a working layer whose real output matches its symbolic one, or a
    ValueError/TypeError naming the layer or an argument; any other exception fails.

    ``input_shapes`` is one per-sample shape, or a list of them for multi-input layers.
    """
    multi = isinstance(input_shapes, list)
    shapes = input_shapes if multi else [input_shapes]
    dtype = torch.int64 if int_high is not None else torch.float32
    try:
        layer = make()
    except (ValueError, TypeError) as err:
        cls_name = getattr(make, "__name__", "")
        assert _message_ok(err, cls_name, None, arg_names), f"unclear error: {err!r}"
        return "init-error"
    cls_name = type(layer).__name__

    symbolic = [
        distkeras.Input(shape=s, dtype="int64" if int_high is not None else None) for s in shapes
    ]
    try:
        out_symbolic = layer(symbolic if multi else symbolic[0])
    except (ValueError, TypeError) as err:
        assert _message_ok(err, cls_name, layer.name, arg_names), f"unclear error: {err!r}"
        # The same inputs, called eagerly on a fresh layer, must fail just as clearly.
        fresh = make()
        real = [_real_input(s, dtype, int_high) for s in shapes]
        try:
            fresh(real if multi else real[0], training=training)
        except (ValueError, TypeError) as eager_err:
            assert _message_ok(eager_err, cls_name, fresh.name, arg_names), (
                f"unclear error: {eager_err!r}"
            )
        return "call-error"

    real = [_real_input(s, dtype, int_high) for s in shapes]
    out = layer(real if multi else real[0], training=training)
    expected = out_symbolic.shape
    assert isinstance(out, torch.Tensor)
    if batch_may_change:  # e.g. concatenation along the batch axis
        assert expected[0] is None
    else:
        assert out.shape[0] == BATCH
    assert tuple(out.shape[1:]) == tuple(expected[1:]), (out.shape, expected)
    # A fresh layer built from the real (concrete) shape agrees.
    fresh_out = make()(real if multi else real[0], training=training)
    assert tuple(fresh_out.shape) == tuple(out.shape)
    return "works"


# ------------------------------------------------------------------------------- Dense
@PROPERTY_SETTINGS
@given(units=st.one_of(small_int, junk), shape=shape_strategy(1, 3))
def test_dense(units, shape):
    result = check_layer(lambda: layers.Dense(units), shape, ["units", "input_shape"])
    if isinstance(units, int) and not isinstance(units, bool) and units > 0:
        assert result != "init-error"


def test_dense_rejects_nonpositive_units_naming_value():
    for units in (0, -3):
        with pytest.raises(ValueError, match=f"units={units}"):
            layers.Dense(units)


# ------------------------------------------------------------------------ convolutions
@PROPERTY_SETTINGS
@given(
    filters=st.one_of(small_int, junk),
    kernel=int_or_tuple(1),
    strides=int_or_tuple(1),
    pad=padding,
    dilation=st.sampled_from([1, 2, 0, (2,)]),
    groups=st.sampled_from([1, 2, 0]),
    shape=shape_strategy(1, 4),
)
def test_conv1d(filters, kernel, strides, pad, dilation, groups, shape):
    def make():
        return layers.Conv1D(
            filters, kernel, strides=strides, padding=pad, dilation_rate=dilation, groups=groups
        )

    make.__name__ = "Conv1D"
    check_layer(
        make,
        shape,
        ["filters", "kernel_size", "strides", "padding", "dilation_rate", "groups"],
    )


@PROPERTY_SETTINGS
@given(
    filters=st.one_of(small_int, junk),
    kernel=int_or_tuple(2),
    strides=int_or_tuple(2),
    pad=padding,
    fmt=data_format,
    dilation=st.sampled_from([1, 2, (1, 2), 0]),
    shape=shape_strategy(2, 4),
)
def test_conv2d(filters, kernel, strides, pad, fmt, dilation, shape):
    def make():
        return layers.Conv2D(
            filters, kernel, strides=strides, padding=pad, data_format=fmt, dilation_rate=dilation
        )

    make.__name__ = "Conv2D"
    check_layer(
        make,
        shape,
        ["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate"],
    )


def test_conv2d_kernel_larger_than_input_names_layer():
    layer = layers.Conv2D(2, 5)
    with pytest.raises(ValueError, match="Conv2D"):
        layer(distkeras.Input((3, 3, 1)))
    with pytest.raises(ValueError, match="Conv2D"):
        layers.Conv2D(2, 5)(torch.zeros(1, 3, 3, 1))


# ----------------------------------------------------------------------------- pooling
POOLING = {
    "MaxPooling1D": (layers.MaxPooling1D, 1),
    "AveragePooling1D": (layers.AveragePooling1D, 1),
    "MaxPooling2D": (layers.MaxPooling2D, 2),
    "AveragePooling2D": (layers.AveragePooling2D, 2),
}


@PROPERTY_SETTINGS
@given(
    which=st.sampled_from(sorted(POOLING)),
    pool=int_or_tuple(2),
    strides=st.one_of(st.none(), int_or_tuple(2)),
    pad=padding,
    fmt=data_format,
    shape=shape_strategy(1, 4),
)
def test_pooling(which, pool, strides, pad, fmt, shape):
    cls, _ = POOLING[which]

    def make():
        return cls(pool, strides=strides, padding=pad, data_format=fmt)

    make.__name__ = which
    check_layer(make, shape, ["pool_size", "strides", "padding", "data_format"])


@PROPERTY_SETTINGS
@given(
    which=st.sampled_from(["GlobalAveragePooling1D", "GlobalMaxPooling2D"]),
    fmt=data_format,
    keepdims=st.booleans(),
    shape=shape_strategy(1, 4),
)
def test_global_pooling(which, fmt, keepdims, shape):
    cls = getattr(layers, which)

    def make():
        return cls(data_format=fmt, keepdims=keepdims)

    make.__name__ = which
    check_layer(make, shape, ["data_format", "keepdims"])


# --------------------------------------------------------------------------- recurrent
@PROPERTY_SETTINGS
@given(
    which=st.sampled_from(["LSTM", "GRU"]),
    units=st.one_of(small_int, junk),
    return_sequences=st.booleans(),
    dropout=st.sampled_from([0.0, 0.5, 1.0, -0.1, 2]),
    recurrent_dropout=st.sampled_from([0.0, 0.3, 1.0]),
    shape=shape_strategy(1, 3, max_dim=4),
)
def test_recurrent(which, units, return_sequences, dropout, recurrent_dropout, shape):
    cls = getattr(layers, which)

    def make():
        return cls(
            units,
            return_sequences=return_sequences,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
        )

    make.__name__ = which
    check_layer(
        make,
        shape,
        ["units", "dropout", "recurrent_dropout", "return_sequences", "input_shape", "sequence"],
        training=True,
    )


# --------------------------------------------------------------------------- embedding
@PROPERTY_SETTINGS
@given(
    input_dim=st.one_of(small_int, junk),
    output_dim=st.one_of(small_int, junk),
    mask_zero=st.sampled_from([False, True, "yes"]),
    shape=shape_strategy(1, 3),
)
def test_embedding(input_dim, output_dim, mask_zero, shape):
    def make():
        return layers.Embedding(input_dim, output_dim, mask_zero=mask_zero)

    make.__name__ = "Embedding"
    high = input_dim if isinstance(input_dim, int) and not isinstance(input_dim, bool) else 1
    check_layer(make, shape, ["input_dim", "output_dim", "mask_zero"], int_high=high)


@pytest.mark.parametrize("bad_id", [5, 100, -1])
def test_embedding_out_of_range_ids_raise_clear_error(bad_id):
    layer = layers.Embedding(5, 3)
    ids = torch.tensor([[0, 1, bad_id]])
    with pytest.raises(ValueError, match=r"Embedding.*input_dim=5"):
        layer(ids)


# ----------------------------------------------------------------------------- dropout
@PROPERTY_SETTINGS
@given(
    rate=st.one_of(
        st.floats(min_value=-0.5, max_value=1.5),
        st.sampled_from([1, 1.0, 0, float("nan"), float("inf")]),
    ),
    noise_shape=st.sampled_from(
        [None, (None, 1), (1,), (None, 0), (None, 5), (1, None), (None, 2, 1), "abc"]
    ),
    shape=shape_strategy(1, 3),
)
def test_dropout(rate, noise_shape, shape):
    def make():
        return layers.Dropout(rate, noise_shape=noise_shape, seed=3)

    make.__name__ = "Dropout"
    result = check_layer(make, shape, ["rate", "noise_shape"], training=True)
    if not (isinstance(rate, float) and 0 <= rate < 1) and rate != 0:
        assert result == "init-error", rate


def test_dropout_noise_shape_batch_mismatch_is_a_clear_error():
    layer = layers.Dropout(0.5, noise_shape=(3, None))
    layer(distkeras.Input((4,)))  # the batch size is unknown until data arrives
    with pytest.raises(ValueError, match="noise_shape"):
        layer(torch.ones(2, 4), training=True)
    with pytest.raises(ValueError, match="noise_shape"):
        layers.Dropout(0.5, noise_shape=(None, 5))(distkeras.Input((4,)))


# ---------------------------------------------------------------------- normalization
@PROPERTY_SETTINGS
@given(
    axis=st.one_of(st.integers(min_value=-5, max_value=5), st.sampled_from([[1, 2], "x", 1.0])),
    momentum=st.sampled_from([0.99, 0.0, 1.0, "fast"]),
    epsilon=st.sampled_from([1e-3, 0.0, -1.0, None]),
    training=st.booleans(),
    shape=shape_strategy(1, 4, max_dim=4),
)
def test_batch_normalization(axis, momentum, epsilon, training, shape):
    def make():
        return layers.BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon)

    make.__name__ = "BatchNormalization"
    check_layer(make, shape, ["axis", "momentum", "epsilon"], training=training)


# --------------------------------------------------------------------------- reshaping
@PROPERTY_SETTINGS
@given(
    target=st.one_of(
        st.lists(st.integers(min_value=-2, max_value=8), min_size=0, max_size=3).map(tuple),
        junk,
    ),
    shape=shape_strategy(1, 3),
)
def test_reshape(target, shape):
    def make():
        return layers.Reshape(target)

    make.__name__ = "Reshape"
    result = check_layer(make, shape, ["target_shape", "input_shape"])
    if result == "works":
        assert int(np.prod(target, dtype=np.int64)) == int(np.prod(shape, dtype=np.int64)) or (
            -1 in target
        )


@PROPERTY_SETTINGS
@given(fmt=data_format, shape=shape_strategy(0, 4))
def test_flatten(fmt, shape):
    def make():
        return layers.Flatten(data_format=fmt)

    make.__name__ = "Flatten"
    result = check_layer(make, shape, ["data_format", "input_shape"])
    if result == "works" and fmt in (None, "channels_last"):
        out = layers.Flatten()(torch.zeros(BATCH, *shape))
        assert tuple(out.shape) == (BATCH, int(np.prod(shape, dtype=np.int64)))


# ----------------------------------------------------------------------------- merging
@PROPERTY_SETTINGS
@given(
    axis=st.one_of(st.integers(min_value=-4, max_value=4), st.sampled_from(["1", None, 1.0])),
    shapes=st.lists(shape_strategy(1, 3, max_dim=3), min_size=0, max_size=3),
)
def test_concatenate(axis, shapes):
    def make():
        return layers.Concatenate(axis=axis)

    make.__name__ = "Concatenate"
    along_batch = bool(shapes) and isinstance(axis, int) and axis % (len(shapes[0]) + 1) == 0
    check_layer(make, shapes, ["axis", "input_shape", "inputs"], batch_may_change=along_batch)


def test_concatenate_single_tensor_is_a_clear_error():
    with pytest.raises(ValueError, match="Concatenate"):
        layers.Concatenate()(torch.zeros(2, 3))
