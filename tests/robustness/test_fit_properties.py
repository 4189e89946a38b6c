"""Property tests: any combination of fit() arguments trains or fails with a clear error.

A tiny Dense classifier is fitted with generated ``batch_size``, ``epochs``,
``validation_split``, ``shuffle``, ``steps_per_epoch``, ``sample_weight`` and ``class_weight``
(valid and invalid). An oracle written from Keras's rules says which combinations are valid:
those must train (one history entry per epoch, the right number of optimizer steps, finite
losses); the others must raise ``ValueError``/``TypeError`` naming an offending argument.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import distkeras
from distkeras import layers

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("DISTKERAS_FUZZ_EXAMPLES", "35")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FIT_ARGUMENTS = (
    "batch_size",
    "epochs",
    "validation_split",
    "steps_per_epoch",
    "sample_weight",
    "class_weight",
    "shuffle",
)


def make_model(metrics=None):
    model = distkeras.Sequential([distkeras.Input((3,)), layers.Dense(2, activation="softmax")])
    model.compile(
        optimizer=distkeras.optimizers.SGD(0.1),
        loss="sparse_categorical_crossentropy",
        metrics=metrics,
    )
    return model


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (np.arange(n) % 2).astype("int64")  # both classes present once n >= 2
    return x, y


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def expected_problem(n, batch_size, epochs, validation_split, steps, sw_shape, class_weight):
    """The arguments Keras's rules reject (empty when fit must work)."""
    problems = []
    if not (batch_size is None or _positive_int(batch_size)):
        problems.append("batch_size")
    if not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0):
        problems.append("epochs")
    train_n = n
    if validation_split != 0:
        ok = isinstance(validation_split, float) and 0 < validation_split < 1
        if ok:
            train_n = int(math.floor(n * (1 - validation_split)))
            ok = 0 < train_n < n
        if not ok:
            problems.append("validation_split")
    if not (steps is None or _positive_int(steps)):
        problems.append("steps_per_epoch")
    if sw_shape is not None and sw_shape not in ((n,), (n, 1)):
        problems.append("sample_weight")
    if class_weight is not None:
        labels = set(make_data(n)[1][:train_n].tolist())
        if not isinstance(class_weight, dict) or not labels <= set(class_weight):
            problems.append("class_weight")
    return problems, train_n


sample_weight_shapes = st.sampled_from(["none", "n", "n1", "n2", "short", "scalar"])
class_weights = st.sampled_from(
    [None, {0: 1.0, 1: 2.0}, {0: 1.0}, {1: 3.0, 0: 0.5, 2: 1.0}, [1, 2]]
)


def _sample_weight(kind: str, n: int):
    return {
        "none": None,
        "n": np.linspace(0.5, 1.5, n).astype("float32"),
        "n1": np.ones((n, 1), "float32"),
        "n2": np.ones((n, 2), "float32"),
        "short": np.ones((max(n - 1, 0),), "float32"),
        "scalar": np.float32(1.0),
    }[kind]


@PROPERTY_SETTINGS
@given(
    n=st.integers(min_value=1, max_value=12),
    batch_size=st.one_of(
        st.none(), st.integers(min_value=-1, max_value=16), st.sampled_from([2.0, "4", True])
    ),
    epochs=st.one_of(st.integers(min_value=-1, max_value=2), st.sampled_from([1.5, "2", None])),
    validation_split=st.sampled_from([0, 0.0, 0.1, 0.5, 0.99, 1.0, -0.2, 1.5, "0.1"]),
    shuffle=st.booleans(),
    steps=st.one_of(st.none(), st.integers(min_value=-1, max_value=4), st.just(2.5)),
    sw_kind=sample_weight_shapes,
    class_weight=class_weights,
)
def test_fit_arguments(
    n, batch_size, epochs, validation_split, shuffle, steps, sw_kind, class_weight
):
    x, y = make_data(n)
    sample_weight = _sample_weight(sw_kind, n)
    sw_shape = None if sample_weight is None else np.shape(sample_weight)
    problems, train_n = expected_problem(
        n, batch_size, epochs, validation_split, steps, sw_shape, class_weight
    )
    model = make_model()
    before = model.get_weights() if model.built else None
    try:
        history = model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            validation_split=validation_split,
            shuffle=shuffle,
            steps_per_epoch=steps,
            sample_weight=sample_weight,
            class_weight=class_weight,
            verbose=0,
        )
    except (ValueError, TypeError) as err:
        assert problems, f"valid arguments were rejected: {err!r}"
        text = str(err)
        assert any(name in text for name in problems), (
            f"the error names none of {problems}: {err!r}"
        )
        if before is not None:  # a rejected fit leaves the weights alone
            for a, b in zip(before, model.get_weights()):
                np.testing.assert_array_equal(a, b)
        return
    assert not problems, f"invalid {problems} were accepted"

    losses = history.history.get("loss", [])
    assert len(losses) == epochs
    assert all(np.isfinite(losses))
    if epochs and validation_split:
        assert len(history.history["val_loss"]) == epochs
    # Optimizer steps: ceil(train_n / batch) per epoch, capped by steps_per_epoch.
    per_epoch = math.ceil(train_n / (batch_size or 32))
    if steps is not None:
        per_epoch = min(per_epoch, steps)
    iterations = int(model.optimizer.iterations)
    assert iterations == per_epoch * epochs


def test_batch_larger_than_data_is_one_batch():
    x, y = make_data(5)
    model = make_model()
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 2


def test_batch_size_one_takes_one_step_per_sample():
    x, y = make_data(4)
    model = make_model()
    model.fit(x, y, batch_size=1, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 4


def test_epochs_zero_trains_nothing():
    x, y = make_data(4)
    model = make_model()
    model.fit(x[:1], y[:1], epochs=1, verbose=0)  # builds the model
    before = model.get_weights()
    history = model.fit(x, y, epochs=0, verbose=0)
    assert history.history == {}
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("split", [1.0, 0.99, -0.1])
def test_validation_split_out_of_range_names_argument(split):
    x, y = make_data(10)
    with pytest.raises(ValueError, match="validation_split"):
        make_model().fit(x, y, validation_split=split, verbose=0)


def test_class_weight_missing_class_lists_it():
    x, y = make_data(6)
    with pytest.raises(ValueError, match=r"class_weight.*\[1\]"):
        make_model().fit(x, y, class_weight={0: 1.0}, verbose=0)


def test_class_weight_scales_the_loss_like_sample_weight():
    x, y = make_data(6)
    weights = {0: 0.25, 1: 2.0}
    first = make_model()
    second = make_model()
    second.set_weights(first.get_weights())
    a = first.fit(x, y, class_weight=weights, shuffle=False, verbose=0).history["loss"]
    per_sample = np.where(y == 0, 0.25, 2.0).astype("float32")
    b = second.fit(x, y, sample_weight=per_sample, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_sample_weight_wrong_width_is_rejected_even_when_it_would_broadcast():
    # (n, 2) weights against (n,) per-sample losses broadcast silently when n == 2.
    x, y = make_data(2)
    with pytest.raises(ValueError, match="sample_weight"):
        make_model().fit(x, y, sample_weight=np.ones((2, 2), "float32"), verbose=0)
