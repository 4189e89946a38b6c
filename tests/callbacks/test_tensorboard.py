"""TensorBoard: event files read back with tensorboard's own EventAccumulator."""

import os

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import distkeras
from distkeras import callbacks, layers
from tests.callbacks._util import make_data, make_model, record_weights


def _events(path):
    acc = EventAccumulator(
        str(path), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0, "images": 0}
    )
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _f32(values):
    return [float(np.float32(v)) for v in values]


def test_epoch_scalars_equal_history(tmp_path):
    x, y = make_data(40)
    model = make_model(optimizer="adam")
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        validation_split=0.2,
        verbose=0,
        callbacks=[callbacks.TensorBoard(str(tmp_path), write_graph=False)],
    )
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]
    train, val = _events(tmp_path / "train"), _events(tmp_path / "validation")
    assert sorted(train.Tags()["scalars"]) == ["epoch_learning_rate", "epoch_loss"]
    # Validation runs with fit's callbacks, so Keras's per-evaluation tag is written too.
    assert sorted(val.Tags()["scalars"]) == ["epoch_loss", "evaluation_loss_vs_iterations"]
    assert _scalars(train, "epoch_loss") == list(enumerate(_f32(history.history["loss"])))
    assert _scalars(val, "epoch_loss") == list(enumerate(_f32(history.history["val_loss"])))
    val_at_iterations = [value for _, value in _scalars(val, "evaluation_loss_vs_iterations")]
    assert val_at_iterations == _f32(history.history["val_loss"])
    assert _scalars(train, "epoch_learning_rate") == list(enumerate(_f32([1e-3] * 3)))
    assert not train.Tags()["graph"] and not train.Tags()["histograms"]


def test_batch_level_scalars(tmp_path):
    x, y = make_data(32)
    model = make_model()
    batch_losses = []
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[
            callbacks.LambdaCallback(
                on_train_batch_end=lambda b, logs: batch_losses.append(logs["loss"])
            ),
            callbacks.TensorBoard(
                str(tmp_path), update_freq=3, write_graph=False, write_steps_per_second=True
            ),
        ],
    )
    train = _events(tmp_path / "train")
    tags = set(train.Tags()["scalars"])
    assert {"batch_loss", "batch_steps_per_second", "epoch_steps_per_second"} <= tags
    # Every 3rd global batch (from 1): the running epoch loss the batch logs hold.
    assert _scalars(train, "batch_loss") == [
        (3, pytest.approx(batch_losses[2], rel=1e-6)),
        (6, pytest.approx(batch_losses[5], rel=1e-6)),
    ]
    assert [s for s, _ in _scalars(train, "batch_steps_per_second")] == [3, 6]
    assert all(v > 0 for _, v in _scalars(train, "epoch_steps_per_second"))
    assert _scalars(train, "epoch_loss") == list(enumerate(_f32(history.history["loss"])))
    assert not os.path.exists(tmp_path / "validation")


def test_weight_histograms_and_images(tmp_path):
    x, y = make_data(32)
    model = make_model()
    recorder, weights = record_weights()
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        verbose=0,
        callbacks=[
            recorder,
            callbacks.TensorBoard(
                str(tmp_path), histogram_freq=2, write_images=True, write_graph=False
            ),
        ],
    )
    train = _events(tmp_path / "train")
    first, second = (layer.name for layer in model.layers)
    names = [f"{first}/kernel", f"{first}/bias", f"{second}/kernel", f"{second}/bias"]
    assert sorted(train.Tags()["histograms"]) == sorted(n + "/histogram" for n in names)
    for i, name in enumerate(names):
        events = train.Histograms(name + "/histogram")
        assert [e.step for e in events] == [0, 2]
        for event in events:
            value = weights[event.step][i]
            assert event.histogram_value.num == value.size
            assert event.histogram_value.min == pytest.approx(value.min())
            assert event.histogram_value.max == pytest.approx(value.max())
    # Weights as images (a (1,) bias squeezes to a scalar and has none, as in Keras).
    assert sorted(train.Tags()["images"]) == sorted(
        [f"{first}/bias/image", f"{first}/kernel/image", f"{second}/kernel/image"]
    )
    image = train.Images(f"{first}/kernel/image")[0]
    assert (image.height, image.width) == (3, 4)


def test_graphs_written(tmp_path):
    x, y = make_data(16)
    model = make_model()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.TensorBoard(str(tmp_path))])
    train = _events(tmp_path / "train")
    assert train.Tags()["graph"]  # torch's traced op graph
    assert "keras" in train.Tags()["tensors"]  # Keras's conceptual graph (the config)
    assert train.PluginTagToContent("graph_keras_model") == {"keras": b"1"}
    config = train.Tensors("keras")[0].tensor_proto.string_val[0].decode()
    assert '"class_name": "Sequential"' in config


def test_subclassed_model_graph_after_first_epoch(tmp_path):
    class Net(distkeras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(4, activation="relu")
            self.out = layers.Dense(1)

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    x, y = make_data(16)
    model = Net()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[callbacks.TensorBoard(str(tmp_path), write_grad_norms=True)],
    )
    train = _events(tmp_path / "train")
    assert train.Tags()["graph"]
    # Built during the first step: the gradient observer finds the layers then.
    assert {f"grad_norm/{model.hidden.name}", f"grad_norm/{model.out.name}"} <= set(
        train.Tags()["scalars"]
    )


def test_failed_trace_warns_and_training_continues(tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    def broken(self, *args, **kwargs):
        raise RuntimeError("cannot trace this")

    monkeypatch.setattr(SummaryWriter, "add_graph", broken)
    x, y = make_data(16)
    model = make_model()
    with pytest.warns(UserWarning, match="could not trace.*cannot trace this") as record:
        history = model.fit(
            x, y, epochs=2, verbose=0, callbacks=[callbacks.TensorBoard(str(tmp_path))]
        )
    assert sum("could not trace" in str(w.message) for w in record) == 1
    assert len(history.history["loss"]) == 2
    assert len(_events(tmp_path / "train").Scalars("epoch_loss")) == 2


def _reference_grad_norms(weights, x, y):
    """Gradients of mse(relu(x W1 + b1) W2 + b2, y), with torch.func-free autograd."""
    w1, b1, w2, b2 = (torch.tensor(w, requires_grad=True) for w in weights)
    pred = torch.relu(torch.from_numpy(x) @ w1 + b1) @ w2 + b2
    loss = ((pred - torch.from_numpy(y)) ** 2).mean()
    g = torch.autograd.grad(loss, [w1, b1, w2, b2])
    return [
        float(torch.sqrt(g[0].square().sum() + g[1].square().sum())),
        float(torch.sqrt(g[2].square().sum() + g[3].square().sum())),
    ]


def test_grad_norms_equal_independent_gradients(tmp_path):
    x, y = make_data(32)
    model = make_model()
    before_last = {}

    def on_batch_begin(batch, logs):
        if batch == 3:  # the last of 4 batches: its gradients are the ones logged
            before_last[len(before_last)] = [w.copy() for w in model.get_weights()]

    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        shuffle=False,
        callbacks=[
            callbacks.LambdaCallback(on_train_batch_begin=on_batch_begin),
            callbacks.TensorBoard(str(tmp_path), write_grad_norms=True, write_graph=False),
        ],
    )
    train = _events(tmp_path / "train")
    assert sorted(t for t in train.Tags()["scalars"] if t.startswith("grad_norm/")) == sorted(
        f"grad_norm/{layer.name}" for layer in model.layers
    )
    for i, layer in enumerate(model.layers):
        logged = _scalars(train, f"grad_norm/{layer.name}")
        assert [s for s, _ in logged] == [0, 1]
        for epoch, value in logged:
            expected = _reference_grad_norms(before_last[epoch], x[24:], y[24:])[i]
            assert value == pytest.approx(expected, rel=1e-5)
    assert model._gradient_observer is None  # uninstalled at the end of fit


def _raise(epoch, logs):
    raise RuntimeError("killed")


def test_grad_norms_per_batch_and_stale_hook_removed(tmp_path):
    x, y = make_data(32)
    model = make_model()
    with pytest.raises(RuntimeError):
        model.fit(
            x,
            y,
            epochs=2,
            batch_size=8,
            verbose=0,
            callbacks=[
                callbacks.TensorBoard(
                    str(tmp_path / "a"),
                    write_grad_norms=True,
                    update_freq=2,
                    write_step_time=True,
                    write_graph=False,
                ),
                callbacks.LambdaCallback(on_epoch_end=_raise),
            ],
        )
    train = _events(tmp_path / "a" / "train")
    tag = f"grad_norm/{model.layers[0].name}"
    assert [s for s, _ in _scalars(train, tag)] == [2, 4]
    assert model._gradient_observer is not None  # fit raised: no on_train_end
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # the stale hooks remove themselves
    assert model._gradient_observer is None and model._step_timer is None


def test_step_time_phases(tmp_path):
    x, y = make_data(32)
    model = make_model()
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[callbacks.TensorBoard(str(tmp_path), write_step_time=True, write_graph=False)],
    )
    train = _events(tmp_path / "train")
    phases = sorted(t for t in train.Tags()["scalars"] if t.startswith("step_time/"))
    # One worker: no communication phase.
    assert phases == ["step_time/data", "step_time/forward_backward", "step_time/optimizer"]
    for tag in phases:
        values = _scalars(train, tag)
        assert [s for s, _ in values] == [0, 1] and all(0 < v < 1 for _, v in values)
    assert model._step_timer is None


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    from distkeras import distributed

    monkeypatch.setattr(distributed, "is_chief", lambda: False)
    x, y = make_data(16)
    model = make_model()
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        validation_split=0.5,
        callbacks=[
            callbacks.TensorBoard(str(tmp_path / "logs"), histogram_freq=1, write_grad_norms=True)
        ],
    )
    assert not os.path.exists(tmp_path / "logs")
    assert model._gradient_observer is None


def test_evaluate_logs_against_iterations(tmp_path):
    x, y = make_data(16)
    model = make_model()
    tb = callbacks.TensorBoard(str(tmp_path), write_graph=False)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[tb])
    loss = model.evaluate(x, y, verbose=0, callbacks=[tb])
    val = _events(tmp_path / "validation")
    assert _scalars(val, "evaluation_loss_vs_iterations") == [(4, pytest.approx(loss, 1e-6))]


def test_profile_batch_writes_trace(tmp_path):
    x, y = make_data(32)
    model = make_model()
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=8,
        verbose=0,
        callbacks=[callbacks.TensorBoard(str(tmp_path), profile_batch=(2, 3), write_graph=False)],
    )
    traces = [f for f in os.listdir(tmp_path / "train") if f.endswith(".pt.trace.json")]
    assert len(traces) == 1


def test_embeddings_projector(tmp_path):
    model = distkeras.Sequential(
        [
            layers.Input((3,), dtype="int32"),
            # Named explicitly: default names depend on how many layers the process made.
            layers.Embedding(10, 4, name="embedding"),
            layers.Flatten(),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).integers(0, 10, (16, 3))
    y = np.zeros((16, 1), "float32")
    meta = tmp_path / "meta.tsv"
    meta.write_text("".join(f"word{i}\n" for i in range(10)))
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[
            callbacks.TensorBoard(
                str(tmp_path / "logs"),
                embeddings_freq=2,
                embeddings_metadata=str(meta),
                write_graph=False,
            )
        ],
    )
    train = tmp_path / "logs" / "train"
    config = (train / "projector_config.pbtxt").read_text()
    assert "embedding" in config
    tensors = np.loadtxt(train / "00000" / "embedding" / "tensors.tsv", delimiter="\t")
    assert tensors.shape == (10, 4)
    labels = (train / "00000" / "embedding" / "metadata.tsv").read_text().split()
    assert labels == [f"word{i}" for i in range(10)]
    assert not (train / "00001").exists()  # embeddings_freq=2: epoch 0 only


def test_argument_validation():
    with pytest.raises(ValueError, match="update_freq=0"):
        callbacks.TensorBoard(update_freq=0)
    with pytest.raises(ValueError, match="profile_batch"):
        callbacks.TensorBoard(profile_batch=(5, 2))
    with pytest.raises(ValueError, match="histogram_freq=-1"):
        callbacks.TensorBoard(histogram_freq=-1)
    assert callbacks.TensorBoard(profile_batch="2,4")._stop_batch == 4
    config = callbacks.TensorBoard(update_freq="batch", write_grad_norms=True).get_config()
    assert config["update_freq"] == 1
    assert callbacks.TensorBoard(**config).get_config() == config
    # Epoch-only logging adds no per-step work.
    assert not callbacks.CallbackList([callbacks.TensorBoard()]).listens("on_train_batch_end")
