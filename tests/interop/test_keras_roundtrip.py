"""Models move between Keras 3 and distkeras: `.keras` files, `.weights.h5` files, optimizer state.

Keras (on its torch backend) runs in this process. Every architecture is written once as a
function of the library (``keras`` or ``distkeras``: the same public API), so "the same
architecture" is literally the same code. Predictions are compared after each crossing.
"""

import os
import pathlib
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import distkeras

REPO = pathlib.Path(__file__).resolve().parents[2]
ATOL = 1e-5


@pytest.fixture(scope="module")
def keras():
    # Keras picks its backend (and torch device) once, at its first import.
    os.environ["KERAS_BACKEND"] = "torch"
    os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")
    import keras

    assert keras.backend.backend() == "torch", "keras was imported earlier with another backend"
    return keras


# ------------------------------------------------------------------------ architectures
def dense_bn(lib):
    L = lib.layers
    return lib.Sequential(
        [
            lib.Input((6,)),
            L.Dense(8, activation="relu"),
            L.Dropout(0.2),
            L.BatchNormalization(),
            L.LayerNormalization(),
            L.Dense(3, activation="softmax"),
        ]
    )


def conv2d(lib):
    L = lib.layers
    return lib.Sequential(
        [
            lib.Input((8, 8, 2)),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(),
            L.Conv2D(3, 3),
            L.AveragePooling2D(2),
            L.Flatten(),
            L.Dense(2),
        ]
    )


def conv1d(lib):
    L = lib.layers
    return lib.Sequential(
        [
            lib.Input((10, 3)),
            L.Conv1D(4, 3, padding="same", activation="tanh"),
            L.MaxPooling1D(2),
            L.AveragePooling1D(2),
            L.Conv1D(4, 2),
            L.GlobalAveragePooling1D(),
            L.Reshape((2, 2)),
            L.Flatten(),
            L.Dense(1),
        ]
    )


def recurrent(lib):
    L = lib.layers
    return lib.Sequential(
        [
            lib.Input((5,), dtype="int32"),
            L.Embedding(10, 4, mask_zero=True),
            L.LSTM(3, return_sequences=True),
            L.GRU(3, return_sequences=True, reset_after=True),
            L.Bidirectional(L.LSTM(2, return_sequences=True)),
            L.SimpleRNN(2),
            L.Dense(1),
        ]
    )


def functional(lib):
    L = lib.layers
    vec = lib.Input((6,), name="vec")
    seq = lib.Input((4, 3), name="seq")
    img = lib.Input((4, 4, 1), name="img")
    x = L.Dense(4, activation="relu")(vec)
    y = L.GRU(4)(seq)
    z = L.Concatenate()([L.Add()([x, y]), x])
    attended = L.MultiHeadAttention(num_heads=2, key_dim=3)(seq, seq)
    attended = L.LayerNormalization()(L.Add()([seq, attended]))
    a = L.GlobalAveragePooling1D()(attended)
    b = L.GlobalAveragePooling2D()(L.Conv2D(2, 2)(img))
    out = L.Dense(2)(L.Concatenate()([z, a, b]))
    return lib.Model([vec, seq, img], out, name="multi_input")


ARCHITECTURES = [dense_bn, conv2d, conv1d, recurrent, functional]


def data(architecture, n=12):
    rng = np.random.default_rng(0)

    def normal(*shape):
        return rng.normal(size=(n, *shape)).astype("float32")

    x = {
        dense_bn: lambda: normal(6),
        conv2d: lambda: normal(8, 8, 2),
        conv1d: lambda: normal(10, 3),
        # Zeros (masked by Embedding(mask_zero=True)) in every row, trailing and inside.
        recurrent: lambda: np.concatenate(
            [rng.integers(1, 10, (n, 3)), np.zeros((n, 2))], axis=1
        ).astype("int32")[:, [0, 3, 1, 2, 4]],
        functional: lambda: [normal(6), normal(4, 3), normal(4, 4, 1)],
    }[architecture]()
    out_dim = {dense_bn: 3, conv2d: 2, conv1d: 1, recurrent: 1, functional: 2}[architecture]
    y = rng.uniform(size=(n, out_dim)).astype("float32")
    return x, y


def build(lib, architecture):
    model = architecture(lib)
    model.compile(optimizer="adam", loss="mse")
    return model


def train(model, x, y):
    model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)


def predict(model, x):
    return np.asarray(model.predict(x, verbose=0))


def assert_same(actual, expected):
    np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=1e-5)


# ------------------------------------------------------------- (a) Keras file -> distkeras
@pytest.mark.parametrize("architecture", ARCHITECTURES, ids=lambda f: f.__name__)
def test_keras_model_loads_trains_and_goes_back(keras, architecture, tmp_path):
    x, y = data(architecture)
    reference = build(keras, architecture)
    train(reference, x, y)  # moving statistics and Adam slots are non-trivial
    reference.save(tmp_path / "keras.keras")

    model = distkeras.models.load_model(tmp_path / "keras.keras")
    before = predict(model, x)
    assert_same(before, predict(reference, x))

    train(model, x, y)
    after = predict(model, x)
    assert np.abs(after - before).max() > 1e-4, "training changed nothing"
    model.save(tmp_path / "distkeras.keras")
    restored = keras.models.load_model(tmp_path / "distkeras.keras")
    assert_same(predict(restored, x), after)


# ------------------------------------------------------------- (b) distkeras file -> Keras
@pytest.mark.parametrize("architecture", ARCHITECTURES, ids=lambda f: f.__name__)
def test_distkeras_model_loads_in_keras(keras, architecture, tmp_path):
    x, y = data(architecture)
    model = build(distkeras, architecture)
    train(model, x, y)
    model.save(tmp_path / "model.keras")

    restored = keras.models.load_model(tmp_path / "model.keras")
    assert [type(layer).__name__ for layer in restored.layers] == [
        type(layer).__name__ for layer in model.layers
    ]
    assert_same(predict(restored, x), predict(model, x))
    # Keras's own weights list, in Keras's order, is ours.
    for ours, theirs in zip(model.get_weights(), restored.get_weights(), strict=True):
        assert_same(np.asarray(theirs), ours)


# ----------------------------------------------------------------- (c) .weights.h5 files
@pytest.mark.parametrize("architecture", ARCHITECTURES, ids=lambda f: f.__name__)
def test_weights_files_cross_both_ways(keras, architecture, tmp_path):
    x, y = data(architecture)
    source = build(keras, architecture)
    train(source, x, y)
    source.save_weights(tmp_path / "keras.weights.h5")
    target = architecture(distkeras)
    target.load_weights(tmp_path / "keras.weights.h5")
    assert_same(predict(target, x), predict(source, x))

    source = build(distkeras, architecture)
    train(source, x, y)
    source.save_weights(tmp_path / "distkeras.weights.h5")
    target = architecture(keras)
    target.load_weights(tmp_path / "distkeras.weights.h5")
    assert_same(predict(target, x), predict(source, x))


# ------------------------------------------------------------------ (d) optimizer state
def adam_mlp(lib):
    model = lib.Sequential(
        [lib.Input((6,)), lib.layers.Dense(8, activation="tanh"), lib.layers.Dense(2)]
    )
    model.compile(optimizer=lib.optimizers.Adam(learning_rate=0.05), loss="mse")
    return model


def test_adam_state_comes_along_and_training_continues(keras, tmp_path):
    x, y = data(dense_bn)
    y = y[:, :2]
    reference = adam_mlp(keras)
    for _ in range(2):
        train(reference, x, y)
    reference.save(tmp_path / "adam.keras")

    model = distkeras.models.load_model(tmp_path / "adam.keras", compile=True)
    assert isinstance(model.optimizer, distkeras.optimizers.Adam)
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    assert int(model.optimizer.iterations) == int(reference.optimizer.iterations) == 6
    # Without the moments a restarted Adam takes lr-sized steps: a different trajectory.
    fresh = adam_mlp(distkeras)
    fresh.set_weights(model.get_weights())

    train(reference, x, y)
    train(model, x, y)
    train(fresh, x, y)
    assert int(model.optimizer.iterations) == 9
    assert_same(predict(model, x), predict(reference, x))
    for ours, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
        assert_same(ours, np.asarray(theirs))
    assert np.abs(predict(fresh, x) - predict(reference, x)).max() > 1e-3

    model.save(tmp_path / "continued.keras")  # and back: Keras resumes from our state
    restored = keras.models.load_model(tmp_path / "continued.keras")
    assert int(restored.optimizer.iterations) == 9
    train(restored, x, y)
    train(model, x, y)
    assert_same(predict(restored, x), predict(model, x))


# ------------------------------------------------------- distributed training of a Keras file
WORKER = """
import sys
import numpy as np
import distkeras

source, target, x_path = sys.argv[1:4]
distkeras.utils.set_random_seed(3)
data = np.load(x_path)
model = distkeras.models.load_model(source)
model.fit(data["x"], data["y"], epochs=2, batch_size=6, shuffle=True, verbose=0)
predicted = model.predict(data["x"], verbose=0)  # every rank takes part
if distkeras.distributed.is_chief():
    model.save(target)
    np.save(target + ".npy", predicted)
"""


def test_keras_file_trains_distributed(keras, tmp_path):
    x, y = data(dense_bn)
    y = y[:, :2]
    reference = adam_mlp(keras)
    train(reference, x, y)
    reference.save(tmp_path / "start.keras")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    target = str(tmp_path / "trained.keras")
    cmd = [sys.executable, "-m", "launcher", "-n", "2", "--backend", "torch", str(script)]
    cmd += [str(tmp_path / "start.keras"), target, str(tmp_path / "data.npz")]
    env = dict(os.environ, DISTKERAS_DEVICE="cpu")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    distributed = np.load(target + ".npy")

    # The same training in this process (one worker) ends at the same place.
    distkeras.utils.set_random_seed(3)
    model = distkeras.models.load_model(tmp_path / "start.keras")
    model.fit(x, y, epochs=2, batch_size=6, shuffle=True, verbose=0)
    assert_same(distributed, predict(model, x))
    assert np.abs(distributed - predict(reference, x)).max() > 1e-4
    assert_same(predict(keras.models.load_model(target), x), distributed)


# ------------------------------------------------------------------- (e) unsupported layers
def test_keras_layer_we_lack_is_named(keras, tmp_path, monkeypatch):
    # Every keras.layers class now exists here: pretend RandomFlip is one we lack.
    monkeypatch.delitem(distkeras.layers.LAYER_REGISTRY, "RandomFlip")
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.RandomFlip("horizontal"),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model.save(tmp_path / "flip.keras")
    with pytest.raises(ValueError, match="'RandomFlip'"):
        distkeras.models.load_model(tmp_path / "flip.keras")


def test_custom_keras_layer_is_named(keras, tmp_path):
    @keras.saving.register_keras_serializable(package="interop_test")
    class TimesTwo(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(TimesTwo()(inputs)))
    model.save(tmp_path / "custom.keras")
    with pytest.raises(ValueError, match="'TimesTwo'.*custom_objects"):
        distkeras.models.load_model(tmp_path / "custom.keras")


def test_initializer_configs_keras_writes_round_trip(keras):
    """Keras 3.12+ writes input_axes/output_axes into VarianceScaling-family configs."""
    for name in ("GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal"):
        theirs = getattr(keras.initializers, name)(seed=3, input_axes=[0], output_axes=[1, 2])
        ours = distkeras.initializers.get({"class_name": name, "config": theirs.get_config()})
        assert ours.get_config() == theirs.get_config()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            back = getattr(keras.initializers, name).from_config(ours.get_config())
        assert back.get_config() == theirs.get_config()
    # Fans over explicit axes: (2, 3, 5) with in=(0,), out=(1, 2) -> fan_avg = (2 + 15) / 2.
    init = distkeras.initializers.VarianceScaling(
        1.0, "fan_avg", "uniform", seed=0, input_axes=[0], output_axes=[1, 2]
    )
    limit = float(np.sqrt(3.0 / 8.5))
    values = init((2, 3, 5)).numpy()
    assert np.abs(values).max() <= limit and np.abs(values).max() > 0.6 * limit
