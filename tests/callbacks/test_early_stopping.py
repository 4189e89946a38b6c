import numpy as np
import pytest

from distkeras import callbacks
from tests.callbacks._util import (
    assert_weights_equal,
    inject,
    make_data,
    make_model,
    record_weights,
)


def _fit(values, epochs=None, **kwargs):
    x, y = make_data()
    model = make_model()
    stopper = callbacks.EarlyStopping(monitor="score", **kwargs)
    history = model.fit(
        x,
        y,
        epochs=epochs or len(values),
        batch_size=16,
        verbose=0,
        callbacks=[inject("score", values), stopper],
    )
    return history, stopper


@pytest.mark.parametrize(
    "values, kwargs, expected_epochs",
    [
        # max: best at epoch 1, two epochs without improvement -> stops after epoch 3
        ([0.1, 0.5, 0.4, 0.45, 0.6, 0.7], dict(mode="max", patience=2), 4),
        # min_delta: 0.15 does not beat 0.1 by more than 0.1, 0.3 does, 0.35/0.38 do not
        ([0.1, 0.15, 0.3, 0.35, 0.38, 0.9], dict(mode="max", patience=2, min_delta=0.1), 5),
        # patience 0: the first non-improving epoch stops training
        ([3.0, 2.0, 2.5, 1.0], dict(mode="min", patience=0), 3),
        # baseline: improving epochs that miss the baseline do not reset patience
        ([0.9, 0.8, 0.85, 0.7], dict(mode="min", patience=2, baseline=0.5), 3),
        # warm-up epochs are not monitored
        ([0.1, 0.2, 0.9, 0.8, 0.7], dict(mode="min", patience=1, start_from_epoch=2), 5),
        ([0.1, 0.2, 0.9, 0.8, 0.7], dict(mode="min", patience=1), 2),
    ],
)
def test_stops_at_expected_epoch(values, kwargs, expected_epochs):
    history, stopper = _fit(values, **kwargs)
    assert len(history.history["loss"]) == expected_epochs
    assert history.history["score"] == values[:expected_epochs]
    if expected_epochs < len(values):
        assert stopper.stopped_epoch == expected_epochs - 1
    else:
        assert stopper.stopped_epoch == 0


def _reference_rule(values, patience, min_delta):
    """Keras's rule for mode="min" written out plainly: (epochs run, best epoch)."""
    best, best_epoch, wait = None, 0, 0
    for epoch, value in enumerate(values):
        wait += 1
        if best is None or value + min_delta < best:
            best, best_epoch, wait = value, epoch, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch + 1, best_epoch
    return len(values), best_epoch


def test_real_val_loss_stops_and_restores_best_weights():
    x, y = make_data(48)
    model = make_model(optimizer="sgd")
    model.optimizer.learning_rate = 0.3  # noisy: val_loss goes up and down
    recorder, weights = record_weights()
    stopper = callbacks.EarlyStopping(patience=2, restore_best_weights=True, min_delta=1e-3)
    history = model.fit(
        x,
        y,
        epochs=25,
        batch_size=4,
        validation_split=0.25,
        verbose=0,
        callbacks=[recorder, stopper],
    )
    val = history.history["val_loss"]
    # Reference: run the rule on the full sequence the run produced.
    expected_epochs, best_epoch = _reference_rule(val, patience=2, min_delta=1e-3)
    assert len(val) == expected_epochs
    assert stopper.best_epoch == best_epoch
    assert stopper.best == val[best_epoch]
    assert_weights_equal(model.get_weights(), weights[best_epoch])


def test_restore_best_weights_from_first_monitored_epoch():
    x, y = make_data()
    model = make_model()
    recorder, weights = record_weights()
    stopper = callbacks.EarlyStopping(
        monitor="score", mode="max", patience=1, restore_best_weights=True
    )
    model.fit(
        x,
        y,
        epochs=5,
        batch_size=16,
        verbose=0,
        callbacks=[inject("score", [5, 4, 3, 2, 1]), recorder, stopper],
    )
    assert len(weights) == 2
    assert_weights_equal(model.get_weights(), weights[0])
    assert not np.array_equal(weights[0][0], weights[1][0])


def test_reuse_resets_state():
    x, y = make_data()
    model = make_model()
    stopper = callbacks.EarlyStopping(monitor="score", mode="min", patience=1)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[inject("score", [1, 2, 3]), stopper])
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[inject("score", [5, 4, 3]), stopper])
    assert len(history.history["loss"]) == 3  # best from the first fit is forgotten


def test_missing_monitor_warns_and_continues():
    x, y = make_data()
    model = make_model()
    with pytest.warns(UserWarning, match="val_loss.*not available"):
        history = model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping()])
    assert len(history.history["loss"]) == 2


def test_auto_mode_unknown_metric_raises():
    x, y = make_data()
    model = make_model()
    with pytest.raises(ValueError, match="monitor=score"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[inject("score", [1.0]), callbacks.EarlyStopping(monitor="score")],
        )


def test_unknown_mode_warns_and_arguments_validated():
    with pytest.warns(UserWarning, match="fallback to auto"):
        stopper = callbacks.EarlyStopping(mode="bogus")
    assert stopper.mode == "auto"
    with pytest.raises(ValueError, match="patience=-1"):
        callbacks.EarlyStopping(patience=-1)
    config = callbacks.EarlyStopping(monitor="loss", min_delta=-0.5, patience=3).get_config()
    assert config["min_delta"] == 0.5 and config["patience"] == 3
    assert callbacks.EarlyStopping(**config).get_config() == config
