"""CSVLogger, LambdaCallback, TerminateOnNaN and the batch-hook dispatch they rely on."""

import csv

import numpy as np
import pytest

from distkeras import callbacks
from distkeras.callbacks.base import LazyLogs
from tests.callbacks._util import make_data, make_model

# ----------------------------------------------------------------------------- CSVLogger


def _rows(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_rows_equal_history(tmp_path):
    x, y = make_data()
    model = make_model()
    path = tmp_path / "log.csv"
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        validation_split=0.25,
        verbose=0,
        callbacks=[callbacks.CSVLogger(str(path))],
    )
    rows = _rows(path)
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert len(rows) == 4
    for epoch, row in enumerate(rows[1:]):
        assert int(row[0]) == epoch
        assert float(row[1]) == history.history["loss"][epoch]  # full precision
        assert float(row[2]) == history.history["val_loss"][epoch]


def test_csv_logger_separator_append_and_na_columns(tmp_path):
    x, y = make_data()
    model = make_model()
    path = tmp_path / "sub" / "log.tsv"
    logger = callbacks.CSVLogger(str(path), separator="\t", append=True)
    first = model.fit(x, y, epochs=2, verbose=0, callbacks=[logger])
    second = model.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
    rows = _rows(path, "\t")
    # No validation data: Keras still writes val_ columns, filled with NA.
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "0"]  # one header, rows appended
    losses = first.history["loss"] + second.history["loss"]
    assert [float(r[1]) for r in rows[1:]] == losses
    assert all(r[2] == "NA" for r in rows[1:])
    callbacks.CSVLogger(str(path)).on_train_begin()  # append=False truncates
    assert path.read_text() == ""


def test_csv_logger_array_values(tmp_path):
    path = tmp_path / "log.csv"
    logger = callbacks.CSVLogger(str(path))
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5, "per_class": np.array([1.0, 2.0])})
    logger.on_train_end()
    # Keras's format for iterables: the list, wrapped in literal quotes.
    assert _rows(path)[1] == ["0", "0.5", '"[1.0, 2.0]"', "NA", "NA"]


# ------------------------------------------------------------------------ LambdaCallback
def test_lambda_callback_hooks_called():
    x, y = make_data(32)
    model = make_model()
    events = []
    cb = callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: events.append(("epoch_begin", epoch)),
        on_train_batch_end=lambda batch, logs: events.append(("batch", batch, logs["loss"])),
        on_epoch_end=lambda epoch, logs: events.append(("epoch_end", epoch, logs["loss"])),
        on_train_end=lambda logs: events.append("train_end"),
    )
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False, callbacks=[cb])
    kinds = [e if isinstance(e, str) else e[0] for e in events]
    assert kinds == [
        "train_begin",
        "epoch_begin",
        "batch",
        "batch",
        "epoch_end",
        "epoch_begin",
        "batch",
        "batch",
        "epoch_end",
        "train_end",
    ]
    # Batch logs are the running epoch average: the last one equals the epoch loss.
    assert events[3][2] == pytest.approx(history.history["loss"][0], rel=1e-6)
    assert events[4][2] == history.history["loss"][0]


def test_lambda_callback_keras_aliases_and_errors():
    x, y = make_data(32)
    model = make_model()
    batches = []
    cb = callbacks.LambdaCallback(on_batch_end=lambda batch, logs: batches.append(batch))
    assert callbacks.CallbackList([cb]).listens("on_train_batch_end")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[cb])
    assert batches == [0, 1, 2, 3]
    with pytest.raises(TypeError, match="on_epoch_ending"):
        callbacks.LambdaCallback(on_epoch_ending=print)
    with pytest.raises(TypeError, match="callable"):
        callbacks.LambdaCallback(on_epoch_end=3)


def test_batch_hooks_only_for_callbacks_that_want_them():
    class OnlyEpochs(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    class KerasTwoStyle(callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            pass

    cb_list = callbacks.CallbackList([OnlyEpochs(), callbacks.LambdaCallback(on_epoch_end=print)])
    assert not cb_list.listens("on_train_batch_end")
    assert not cb_list.listens("on_train_batch_begin")
    assert callbacks.CallbackList([KerasTwoStyle()]).listens("on_train_batch_begin")
    assert callbacks.CallbackList([callbacks.TerminateOnNaN()]).listens("on_train_batch_end")


# ------------------------------------------------------------------------ TerminateOnNaN
def test_terminate_on_nan_stops_after_the_bad_batch():
    x, y = make_data(32)
    y[20] = np.nan  # third batch of 8 (no shuffling)
    model = make_model()
    batches = []
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        verbose=0,
        shuffle=False,
        callbacks=[
            callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b)),
            callbacks.TerminateOnNaN(),
        ],
    )
    assert batches == [0, 1, 2]
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])


def test_terminate_on_nan_raise_error():
    x, y = make_data(16)
    y[0] = np.inf
    model = make_model()
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        model.fit(
            x,
            y,
            epochs=2,
            batch_size=8,
            verbose=0,
            shuffle=False,
            callbacks=[callbacks.TerminateOnNaN(raise_error=True)],
        )


def test_terminate_on_nan_reads_only_the_loss():
    def everything():
        raise AssertionError("the full logs were computed")

    logs = LazyLogs(everything, {"loss": lambda: 1.0})
    callbacks.TerminateOnNaN().on_train_batch_end(0, logs)  # finite: no stop, no full read
    assert "loss" in logs and logs["loss"] == 1.0
    with pytest.raises(AssertionError, match="full logs"):
        logs["accuracy"]
