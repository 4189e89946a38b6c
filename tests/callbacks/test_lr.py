import numpy as np
import pytest

from distkeras import callbacks
from tests.callbacks._util import inject, make_data, make_model, record_weights


def _lr_at_epoch_begin(model, seen):
    return callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(float(model.optimizer.learning_rate))
    )


def _reference_plateau(values, lr, factor, patience, cooldown, min_lr, min_delta):
    """Keras's ReduceLROnPlateau for mode="min", written out: the rate after each epoch."""
    best, wait, cool, out = np.inf, 0, 0, []
    for value in values:
        if cool > 0:
            cool -= 1
            wait = 0
        if value < best - min_delta:
            best, wait = value, 0
        elif cool == 0:
            wait += 1
            if wait >= patience and lr > np.float32(min_lr):
                lr = max(lr * factor, min_lr)
                cool, wait = cooldown, 0
        out.append(lr)
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(factor=0.5, patience=2, cooldown=1),
        dict(factor=0.5, patience=1, cooldown=0, min_lr=0.003),
        dict(factor=0.1, patience=1, cooldown=2, min_delta=0.05),
    ],
)
def test_reduce_lr_on_plateau_schedule(kwargs):
    x, y = make_data()
    model = make_model(optimizer="sgd")
    values = [1.0, 0.9, 0.9, 0.92, 0.8, 0.8, 0.81, 0.79, 0.9, 0.9]
    seen = []
    history = model.fit(
        x,
        y,
        epochs=len(values),
        batch_size=16,
        verbose=0,
        callbacks=[
            _lr_at_epoch_begin(model, seen),
            inject("score", values),
            callbacks.ReduceLROnPlateau(monitor="score", mode="min", **kwargs),
        ],
    )
    full = {"min_lr": 0.0, "min_delta": 1e-4, **kwargs}
    expected_after = _reference_plateau(values, 0.01, **full)
    assert len(set(expected_after)) > 1  # the schedule does reduce
    np.testing.assert_allclose(seen, [0.01] + expected_after[:-1], rtol=1e-6)
    np.testing.assert_allclose(float(model.optimizer.learning_rate), expected_after[-1], rtol=1e-6)
    # The rate in the logs is the one the epoch trained with.
    np.testing.assert_allclose(history.history["learning_rate"], seen, rtol=1e-6)


def test_reduce_lr_auto_mode_maximizes_acc_names():
    x, y = make_data()
    model = make_model()
    model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[
            inject("val_acc", [0.5, 0.6, 0.7, 0.8]),
            callbacks.ReduceLROnPlateau(monitor="val_acc", patience=1),
        ],
    )
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)  # rising acc: kept
    model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[
            inject("val_score", [0.5, 0.6, 0.7, 0.8]),
            callbacks.ReduceLROnPlateau(monitor="val_score", patience=1, factor=0.5),
        ],
    )
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01 * 0.5**3)


def test_reduce_lr_errors():
    with pytest.raises(ValueError, match="factor=1.5"):
        callbacks.ReduceLROnPlateau(factor=1.5)
    with pytest.raises(TypeError, match="bogus"):
        callbacks.ReduceLROnPlateau(bogus=1)
    x, y = make_data()
    model = make_model()
    with pytest.warns(UserWarning, match="not available"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ReduceLROnPlateau()])
    config = callbacks.ReduceLROnPlateau(factor=0.3, cooldown=2).get_config()
    assert callbacks.ReduceLROnPlateau(**config).get_config() == config


def test_scheduler_sets_rate_each_epoch_and_logs_it():
    x, y = make_data()
    model = make_model(optimizer="sgd")
    seen = []
    history = model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[
            callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr),
            _lr_at_epoch_begin(model, seen),
        ],
    )
    np.testing.assert_allclose(seen, [0.01, 0.005, 0.0025, 0.00125], rtol=1e-6)
    np.testing.assert_allclose(history.history["learning_rate"], seen, rtol=1e-6)


def test_scheduler_rate_is_used_by_the_optimizer():
    x, y = make_data()
    model = make_model(optimizer="sgd")
    recorder, weights = record_weights()
    model.fit(
        x,
        y,
        epochs=3,
        verbose=0,
        callbacks=[
            callbacks.LearningRateScheduler(lambda epoch: 0.05 if epoch == 0 else 0.0),
            recorder,
        ],
    )
    assert not np.array_equal(weights[0][0], make_model().get_weights()[0])
    for later in weights[1:]:  # a zero rate leaves the weights where epoch 0 left them
        for a, b in zip(later, weights[0]):
            np.testing.assert_array_equal(a, b)


def test_scheduler_errors():
    with pytest.raises(TypeError, match="schedule"):
        callbacks.LearningRateScheduler(0.1)
    x, y = make_data()
    model = make_model()
    with pytest.raises(ValueError, match="should be a float"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.LearningRateScheduler(lambda epoch, lr: "fast")],
        )
