"""The seed tutorial's two programs, written exactly as there with ``keras`` -> ``distkeras``.

Data: scikit-learn's real digit scans upscaled to MNIST's 28x28 format (1,438 train / 359 test
images), prepared as the standard Keras MNIST examples do (scale to [0, 1], one-hot labels).
Accuracy is checked against the labels with numpy, not only through evaluate().
"""

import numpy as np
import pytest

import distkeras
from distkeras.utils import to_categorical


@pytest.fixture(scope="module")
def digits():
    (x_train, y_train), (x_test, y_test) = distkeras.datasets.digits.load_data(upscale=True)
    assert x_train.shape == (1438, 28, 28) and x_train.dtype == np.uint8
    x_train = x_train.astype("float32") / 255.0
    x_test = x_test.astype("float32") / 255.0
    return x_train, to_categorical(y_train, 10), x_test, to_categorical(y_test, 10), y_test


def check_seed_results(model, history, loss_and_metrics, classes, x_test, y_test, labels):
    assert list(history.history) == ["accuracy", "loss"]
    assert len(history.history["loss"]) == 5
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = loss_and_metrics
    assert isinstance(classes, np.ndarray) and classes.shape == (len(labels), 10)
    np.testing.assert_allclose(classes.sum(axis=1), 1.0, rtol=1e-5)
    # Independent check of evaluate(): crossentropy and accuracy from predict()'s output.
    p = np.clip(classes.astype("float64"), 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(loss, -(y_test * np.log(p)).sum(axis=1).mean(), rtol=1e-4)
    np.testing.assert_allclose(accuracy, (classes.argmax(axis=1) == labels).mean(), rtol=1e-6)
    assert accuracy >= 0.95, f"test accuracy {accuracy:.4f} after 5 epochs"


def check_progress_output(out):
    # verbose="auto" prints Keras's per-epoch progress lines (not a tty: one line per epoch).
    for epoch in range(1, 6):
        assert f"Epoch {epoch}/5" in out
    assert out.count("45/45") == 5 and "accuracy: " in out and "loss: " in out


def test_seed_mlp(digits, capsys):
    x_train, y_train, x_test, y_test, labels = digits
    x_train, x_test = x_train.reshape(-1, 784), x_test.reshape(-1, 784)

    # The seed's program, verbatim.
    # fmt: off
    from distkeras.layers import Dense
    from distkeras.models import Sequential

    model = Sequential()
    model.add(Dense(32, activation='relu', input_dim=784))
    model.add(Dense(10, activation='softmax'))
    model.compile(loss='categorical_crossentropy',
                  optimizer='adam',
                  metrics=['accuracy'])
    history = model.fit(x_train, y_train, epochs=5, batch_size=32)
    loss_and_metrics = model.evaluate(x_test, y_test, batch_size=128)
    classes = model.predict(x_test, batch_size=128)
    # fmt: on

    check_seed_results(model, history, loss_and_metrics, classes, x_test, y_test, labels)
    check_progress_output(capsys.readouterr().out)


def test_seed_cnn(digits, capsys):
    x_train, y_train, x_test, y_test, labels = digits
    x_train, x_test = x_train[..., None], x_test[..., None]

    # The seed's program, verbatim.
    # fmt: off
    from distkeras.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from distkeras.models import Sequential

    model = Sequential()
    model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(MaxPooling2D((2, 2)))
    model.add(Flatten())
    model.add(Dense(10, activation='softmax'))
    model.compile(loss='categorical_crossentropy',
                  optimizer='adam',
                  metrics=['accuracy'])
    history = model.fit(x_train, y_train, epochs=5, batch_size=32)
    loss_and_metrics = model.evaluate(x_test, y_test, batch_size=128)
    classes = model.predict(x_test, batch_size=128)
    # fmt: on

    check_seed_results(model, history, loss_and_metrics, classes, x_test, y_test, labels)
    check_progress_output(capsys.readouterr().out)
    assert [w.shape for w in model.get_weights()] == [
        (3, 3, 1, 32),
        (32,),
        (3, 3, 32, 64),
        (64,),
        (1600, 10),
        (10,),
    ]
