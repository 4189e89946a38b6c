"""Targeted bad inputs to the public API: each gives a clear distkeras error (or Keras's
behaviour), never a crash deep inside torch, and leaves the model and files untouched."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers


def make_model(metrics=None):
    model = distkeras.Sequential([distkeras.Input((3,)), layers.Dense(2, activation="softmax")])
    model.compile(
        optimizer=distkeras.optimizers.SGD(0.1),
        loss="sparse_categorical_crossentropy",
        metrics=metrics,
    )
    return model


def make_data(n: int = 8):
    x = np.random.default_rng(0).normal(size=(n, 3)).astype("float32")
    y = (np.arange(n) % 2).astype("int64")
    return x, y


def unchanged(model, before) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def two_input_model():
    a = distkeras.Input((3,), name="left")
    b = distkeras.Input((2,), name="right")
    merged = layers.Concatenate()([a, b])
    out = layers.Dense(1, name="out")(merged)
    model = distkeras.Model(inputs=[a, b], outputs=out)
    model.compile(optimizer="sgd", loss="mse")
    return model


# ------------------------------------------------------------------------ dtypes
@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([["a", "b", "c"]] * 8), "`x` must be numeric"),
        (np.array([[1, "a", None]] * 8, dtype=object), "`x` holds Python objects"),
        (np.ones((8, 3), dtype=np.complex64), "`x` must hold real numbers"),
        (torch.ones((8, 3), dtype=torch.complex64), "`x` must hold real numbers"),
    ],
)
def test_non_numeric_x_is_a_type_error_naming_x(bad, match):
    _, y = make_data()
    model = make_model()
    before = model.get_weights()
    for call in (
        lambda: model.fit(bad, y, verbose=0),
        lambda: model.evaluate(bad, y, verbose=0),
        lambda: model.predict(bad, verbose=0),
    ):
        with pytest.raises(TypeError, match=match):
            call()
    assert unchanged(model, before)


def test_string_labels_are_a_type_error_naming_y():
    x, _ = make_data()
    with pytest.raises(TypeError, match="`y` must be numeric"):
        make_model().fit(x, np.array(["cat", "dog"] * 4), verbose=0)


@pytest.mark.parametrize(
    "convert",
    [
        lambda x: (x * 10).astype("int64"),
        lambda x: (np.abs(x) * 10).astype("uint8"),
        lambda x: x.astype("float16"),
        lambda x: x.astype("float64"),
        lambda x: x > 0,
        lambda x: torch.from_numpy(x).to(torch.float16),
        lambda x: torch.from_numpy((x * 10).astype("int32")),
    ],
)
def test_other_real_dtypes_are_cast_to_the_input_dtype_as_keras_does(convert):
    x, y = make_data()
    data = convert(x)
    model = make_model()
    model.fit(data, y, verbose=0)
    expected = model.predict(np.asarray(torch.as_tensor(data).float()), verbose=0)
    np.testing.assert_allclose(model.predict(data, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(data), expected, rtol=1e-6)
    out = model(data if isinstance(data, torch.Tensor) else torch.as_tensor(data))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-6)


def test_python_lists_are_arrays():
    x, y = make_data(4)
    model = make_model()
    history = model.fit(x.tolist(), y.tolist(), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    np.testing.assert_allclose(
        model.predict(x.tolist(), verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )
    model.fit(x.tolist(), y.tolist(), validation_split=0.25, class_weight={0: 1, 1: 2}, verbose=0)


def test_scalar_data_has_no_batch_dimension():
    with pytest.raises(ValueError, match="batch dimension"):
        make_model().fit(np.ones((1, 3), "float32"), np.int64(0), verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        make_model().fit(*make_data(1), sample_weight=np.float32(1.0), verbose=0)


# ------------------------------------------------------------------- NaN / inf
@pytest.mark.parametrize("where", ["x", "y"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_data_warns_once_naming_the_array(where, value):
    x, y = make_data()
    model = distkeras.Sequential([distkeras.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    y = y.astype("float32")
    (x if where == "x" else y)[3] = value
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    mine = [w for w in caught if "NaN or infinite" in str(w.message)]
    assert len(mine) == 1, [str(w.message) for w in caught]
    assert f"`{where}`" in str(mine[0].message)
    assert "`x`" not in str(mine[0].message) or where == "x"
    # Keras trains on: both epochs run.
    assert len(history.history["loss"]) == 2


def test_non_finite_validation_data_is_named():
    x, y = make_data()
    x_val = x.copy()
    x_val[0, 0] = np.nan
    with pytest.warns(UserWarning, match="validation data.*`x`"):
        make_model().fit(x, y, validation_data=(x_val, y), verbose=0)


def test_large_finite_values_do_not_warn():
    # The float32 sum of x overflows to inf; the exact elementwise check must clear it.
    x = np.full((8, 3), 3e38, "float32")
    y = np.zeros((8, 1), "float32")
    model = distkeras.Sequential([distkeras.Input((3,)), layers.Dense(1)])
    model.compile(optimizer=distkeras.optimizers.SGD(0.0), loss="mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=1, verbose=0)
    assert not [w for w in caught if "NaN or infinite" in str(w.message)]


def test_clean_data_does_not_warn():
    x, y = make_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_model().fit(x, y, epochs=1, verbose=0)


def test_terminate_on_nan_stops_training_on_nan_data():
    x, y = make_data(8)
    x[0] = np.nan
    model = make_model()
    with pytest.warns(UserWarning, match="`x`"):
        history = model.fit(
            x,
            y,
            epochs=3,
            batch_size=4,
            shuffle=False,
            verbose=0,
            callbacks=[distkeras.callbacks.TerminateOnNaN()],
        )
    assert int(model.optimizer.iterations) == 1  # stopped after the first (NaN) batch
    assert len(history.history["loss"]) == 1
    assert np.isnan(history.history["loss"][0])


# --------------------------------------------------------------- shapes and sizes
def test_empty_arrays_are_a_clear_error():
    model = make_model()
    empty_x, empty_y = np.zeros((0, 3), "float32"), np.zeros((0,), "int64")
    with pytest.raises(ValueError, match="empty"):
        model.fit(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.evaluate(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.predict(empty_x, verbose=0)


def test_batch_size_larger_than_data_gives_one_batch():
    x, y = make_data(5)
    model = make_model()
    model.fit(x, y, batch_size=1000, verbose=0)
    assert int(model.optimizer.iterations) == 1
    assert model.predict(x, batch_size=1000, verbose=0).shape == (5, 2)


def test_y_length_mismatch_names_both_counts():
    x, y = make_data(8)
    with pytest.raises(ValueError, match=r"x: 8.*y: 7"):
        make_model().fit(x, y[:7], verbose=0)


def test_predict_wrong_feature_count_names_input_and_expected_shape():
    model = make_model()
    name = model.inputs[0].name
    with pytest.raises(ValueError, match=rf"{name}.*\(None, 3\).*\(4, 5\)"):
        model.predict(np.zeros((4, 5), "float32"), verbose=0)
    with pytest.raises(ValueError, match=rf"{name}.*\(None, 3\)"):
        model(torch.zeros(4, 5))


def test_multi_input_missing_inputs():
    model = two_input_model()
    left, right = np.ones((4, 3), "float32"), np.ones((4, 2), "float32")
    y = np.ones((4, 1), "float32")
    with pytest.raises(ValueError, match="expects 2 input"):
        model.fit(left, y, verbose=0)
    with pytest.raises(ValueError, match="expects 2 input"):
        model.predict([left], verbose=0)
    with pytest.raises(ValueError, match=r"missing inputs.*right"):
        model.fit({"left": left}, y, verbose=0)
    with pytest.raises(ValueError, match=r"right.*\(None, 2\)"):
        model.predict([left, np.ones((4, 3), "float32")], verbose=0)
    model.fit({"left": left, "right": right}, y, verbose=0)  # and the full set works


# ----------------------------------------------------------------- compile errors
def test_fit_and_evaluate_before_compile():
    model = distkeras.Sequential([distkeras.Input((3,)), layers.Dense(2)])
    x, y = make_data()
    for call in (lambda: model.fit(x, y, verbose=0), lambda: model.evaluate(x, y, verbose=0)):
        with pytest.raises(ValueError, match="compile"):
            call()
    assert model.predict(x, verbose=0).shape == (8, 2)  # Keras predicts without compile


@pytest.mark.parametrize(
    "kwargs, known",
    [
        ({"optimizer": "adamm", "loss": "mse"}, "'adam'"),
        ({"optimizer": "sgd", "loss": "mean_sqared_error"}, "mean_squared_error"),
        ({"optimizer": "sgd", "loss": "mse", "metrics": ["acuracy"]}, "accuracy"),
    ],
)
def test_unknown_names_list_the_known_ones(kwargs, known):
    model = distkeras.Sequential([distkeras.Input((3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="Unknown") as info:
        model.compile(**kwargs)
        model.fit(*make_data(), verbose=0)  # metrics may resolve on the first batch
    assert known in str(info.value)


def test_none_metric_entries_are_skipped_as_in_keras():
    model = make_model(metrics=[None, "accuracy"])
    history = model.fit(*make_data(), verbose=0)
    assert sorted(history.history) == ["accuracy", "loss"]


# ----------------------------------------------------------------- files and paths
def test_save_into_missing_directory(tmp_path):
    model = make_model()
    target = tmp_path / "missing" / "model.keras"
    with pytest.raises(FileNotFoundError, match="missing.*does not exist"):
        model.save(target)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save_weights(tmp_path / "missing" / "model.weights.h5")


def test_save_below_a_regular_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    with pytest.raises(NotADirectoryError, match="file.txt.*not a directory"):
        make_model().save(blocker / "model.keras")
    assert blocker.read_text() == "not a directory"


def test_save_onto_a_directory(tmp_path):
    (tmp_path / "model.keras").mkdir()
    with pytest.raises(IsADirectoryError, match="model.keras"):
        make_model().save(tmp_path / "model.keras")


def test_unwritable_directory_keeps_the_existing_file(tmp_path, monkeypatch):
    model = make_model()
    target = tmp_path / "model.keras"
    model.save(target)
    good = target.read_bytes()

    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    # The process runs as root in CI, so chmod cannot make a directory unwritable: refuse the
    # write where the OS would.
    monkeypatch.setattr(os, "open", refuse)
    other = make_model()
    with pytest.raises(PermissionError, match=f"{target}.*Permission denied"):
        other.save(target)
    monkeypatch.undo()
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
    restored = distkeras.models.load_model(target)
    x, _ = make_data()
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_checkpoint_creates_a_missing_directory(tmp_path):
    target = tmp_path / "new" / "deeper" / "ckpt.weights.h5"
    checkpoint = distkeras.callbacks.ModelCheckpoint(str(target), save_weights_only=True)
    make_model().fit(*make_data(), callbacks=[checkpoint], verbose=0)
    assert target.exists()


def test_checkpoint_below_a_regular_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    target = blocker / "ckpt.weights.h5"
    checkpoint = distkeras.callbacks.ModelCheckpoint(str(target), save_weights_only=True)
    with pytest.raises(OSError, match="ModelCheckpoint cannot save.*file.txt"):
        make_model().fit(*make_data(), callbacks=[checkpoint], verbose=0)
    assert blocker.read_text() == "keep me"


def test_load_missing_paths(tmp_path):
    with pytest.raises(ValueError, match="nothing.keras"):
        distkeras.models.load_model(tmp_path / "nothing.keras")
    with pytest.raises(ValueError, match="nothing.weights.h5"):
        make_model().load_weights(tmp_path / "nothing.weights.h5")
    with pytest.raises(ValueError, match="is a directory"):
        (tmp_path / "dir.keras").mkdir()
        distkeras.models.load_model(tmp_path / "dir.keras")
