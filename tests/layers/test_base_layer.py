"""The Layer base class: Keras's lifecycle, weights, losses, masks and training flag on torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters

import distkeras
from distkeras import layers, optimizers


class Scale(layers.Layer):
    """One weight per feature; counts its builds."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.builds = 0

    def build(self, input_shape):
        self.builds += 1
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, inputs):
        return inputs * self.scale


class RecordTraining(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, inputs, training=None):
        self.seen.append(training)
        return inputs


class Block(layers.Layer):
    """A subclassed layer with its own weight and three sublayers (one with non-trainables)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = layers.Dense(3)
        self.norm = layers.BatchNormalization()
        self.recorder = RecordTraining()
        self.second = layers.Dense(2)

    def build(self, input_shape):
        self.gain = self.add_weight(shape=(1,), initializer="ones", name="gain")
        self.count = self.add_weight(shape=(), initializer="zeros", name="count", trainable=False)

    def call(self, inputs):
        # No `training` passed on: the sublayers must still see the outer call's flag.
        hidden = self.recorder(self.norm(self.first(inputs)))
        return self.second(hidden) * self.gain


# ------------------------------------------------------------------------------ lifecycle
def test_builds_on_first_call_once():
    layer = Scale()
    assert not layer.built and layer.weights == []
    with pytest.raises(ValueError, match=f"'{layer.name}' is not built"):
        layer.count_params()
    x = torch.randn(2, 4)
    torch.testing.assert_close(layer(x), x)
    assert layer.built and layer.builds == 1
    weight = layer.scale
    layer(torch.randn(3, 4))
    assert layer.builds == 1 and layer.scale is weight and len(layer.weights) == 1
    assert layer.count_params() == 4


def test_direct_build_marks_built():
    layer = Scale()
    layer.build((None, 5))
    assert layer.built and layer.builds == 1 and tuple(layer.scale.shape) == (5,)
    layer(torch.randn(2, 5))
    assert layer.builds == 1
    dense = layers.Dense(3)
    dense.build((None, 4))
    assert dense.built and [w.shape for w in dense.get_weights()] == [(4, 3), (3,)]


def test_duplicate_weight_name_and_unknown_kwargs():
    layer = Scale()
    layer.build((None, 2))
    with pytest.raises(ValueError, match=f"'{layer.name}'.*'scale'"):
        layer.add_weight(shape=(2,), name="scale")
    with pytest.raises(TypeError, match="Scale.*unrecognized.*units=3"):
        Scale(units=3)
    with pytest.raises(TypeError, match="name"):
        Scale(name=5)


# -------------------------------------------------------------------------------- weights
def test_subclassed_layer_tracks_sublayer_weights_in_keras_order():
    block = Block()
    block(torch.randn(4, 5))
    d1, bn, d2 = block.first, block.norm, block.second
    # Keras: own trainable, own non-trainable, then each sublayer's weights in order.
    want = [
        block.gain,
        block.count,
        d1.kernel,
        d1.bias,
        bn.gamma,
        bn.beta,
        bn.moving_mean,
        bn.moving_variance,
        d2.kernel,
        d2.bias,
    ]
    assert [id(w) for w in block.weights] == [id(w) for w in want]
    trainable = [block.gain, d1.kernel, d1.bias, bn.gamma, bn.beta, d2.kernel, d2.bias]
    assert [id(w) for w in block.trainable_weights] == [id(w) for w in trainable]
    non_trainable = [block.count, bn.moving_mean, bn.moving_variance]
    assert [id(w) for w in block.non_trainable_weights] == [id(w) for w in non_trainable]
    assert block.count_params() == 1 + 1 + (5 * 3 + 3) + 4 * 3 + (3 * 2 + 2)
    # get_weights follows the same order, in Keras layout (Dense kernels are (in, out)).
    shapes = [w.shape for w in block.get_weights()]
    assert shapes == [(1,), (), (5, 3), (3,), (3,), (3,), (3,), (3,), (3, 2), (2,)]


def test_get_set_weights_round_trip_and_errors():
    dense = layers.Dense(3, name="probe")
    dense(torch.zeros(1, 2))
    kernel = np.arange(6, dtype="float32").reshape(2, 3)
    bias = np.array([1.0, -1.0, 0.5], "float32")
    dense.set_weights([kernel, bias])
    got = dense.get_weights()
    np.testing.assert_array_equal(got[0], kernel)
    x = np.array([[1.0, 2.0]], "float32")
    np.testing.assert_allclose(dense(torch.as_tensor(x)).detach().numpy(), x @ kernel + bias)
    # get_weights returns copies, not views of live storage.
    got[0][:] = 99
    assert dense.get_weights()[0][0, 0] == 0

    with pytest.raises(ValueError, match=r"'probe' expects 2 weights.*'kernel', 'bias'.*1"):
        dense.set_weights([kernel])
    with pytest.raises(ValueError, match=r"'probe' weight 'kernel'.*\(2, 3\).*\(3, 2\)"):
        dense.set_weights([kernel.T, bias])
    with pytest.raises(ValueError, match=r"'probe' weight 'bias'.*\(3,\).*\(4,\)"):
        dense.set_weights([kernel, np.zeros(4, "float32")])


# ------------------------------------------------------------------------------ trainable
def test_trainable_false_freezes():
    frozen = layers.Dense(3, trainable=False, input_shape=(4,))
    live = layers.Dense(2)
    model = distkeras.Sequential([frozen, live])
    model.compile(optimizer=optimizers.SGD(0.5), loss="mse")
    model.build((None, 4))
    assert all(not w.requires_grad for w in frozen.weights)
    assert frozen.trainable_weights == [] and len(frozen.non_trainable_weights) == 2
    assert [id(w) for w in model.trainable_weights] == [id(w) for w in live.weights]
    before = frozen.get_weights()
    live_before = live.get_weights()
    rng = np.random.default_rng(0)
    model.fit(
        rng.standard_normal((8, 4)).astype("float32"),
        rng.standard_normal((8, 2)).astype("float32"),
        batch_size=4,
        epochs=1,
        verbose=0,
    )
    for a, b in zip(before, frozen.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(live_before[0], live.get_weights()[0])
    assert frozen.get_config()["trainable"] is False


def test_trainable_setter_reaches_sublayers_and_keeps_non_trainables():
    block = Block()
    block(torch.randn(2, 5))
    block.trainable = False
    assert block.trainable_weights == [] and not block.first.trainable
    assert all(not w.requires_grad for w in block.weights)
    block.trainable = True
    # Weights created non-trainable stay so (BatchNormalization's moving statistics).
    assert not block.norm.moving_mean.requires_grad and not block.count.requires_grad
    assert block.norm.gamma.requires_grad and len(block.trainable_weights) == 7


# --------------------------------------------------------------------------------- losses
class AddsLoss(layers.Layer):
    def call(self, inputs):
        self.add_loss(inputs.abs().mean())
        return inputs


def test_add_loss_collected_and_cleared_per_outermost_call():
    inner = AddsLoss()
    model = distkeras.Sequential([layers.Dense(2, input_shape=(3,)), inner])
    x = torch.randn(4, 3)
    out = model(x)
    (loss,) = model.losses
    torch.testing.assert_close(loss, out.abs().mean())
    out = model(torch.randn(5, 3))
    (loss,) = model.losses  # replaced, not accumulated
    torch.testing.assert_close(loss, out.abs().mean())
    assert len(inner.losses) == 1
    # A plain float becomes a tensor.
    holder = layers.Layer()
    holder.add_loss(2.5)
    assert float(holder.losses[0]) == 2.5


def test_add_loss_takes_lists_and_refuses_symbolic_losses_outside_call():
    holder = layers.Layer()
    holder.add_loss([torch.tensor(1.0), 2.0])
    assert [float(v) for v in holder.losses] == [1.0, 2.0]
    inputs = distkeras.Input((4,))
    outputs = layers.Dense(2)(inputs)
    model = distkeras.Model(inputs, outputs, name="vae")
    # keras.io's functional VAE adds a symbolic KL term; Keras 3 refuses it too.
    with pytest.raises(NotImplementedError, match="Layer 'vae': add_loss.. received a symbolic"):
        model.add_loss(distkeras.ops.mean(outputs))


def test_add_loss_counts_in_fit():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3)).astype("float32")
    y = rng.standard_normal((6, 2)).astype("float32")
    model = distkeras.Sequential([layers.Dense(2, input_shape=(3,)), AddsLoss()])
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    model(torch.as_tensor(x))
    kernel, bias = model.get_weights()
    out = x @ kernel + bias
    want = np.mean((out - y) ** 2) + np.abs(out).mean()
    history = model.fit(x, y, batch_size=6, epochs=1, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], want, rtol=1e-5)


# ---------------------------------------------------------------------------------- masks
class MakeMask(layers.Layer):
    """Creates a mask from no incoming one, as Keras's Masking does (supports_masking)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_mask(self, inputs, mask=None):
        return inputs[..., 0] != 0


class PassMask(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs * 2


class UseMask(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.received = None

    def call(self, inputs, mask=None):
        self.received = mask
        return inputs


def test_masks_propagate():
    x = torch.tensor([[[1.0, 2.0], [0.0, 5.0], [3.0, 1.0]]])
    want = torch.tensor([[True, False, True]])
    masked = MakeMask()(x)
    torch.testing.assert_close(masked._keras_mask, want)
    passed = PassMask()(masked)
    torch.testing.assert_close(passed._keras_mask, want)
    user = UseMask()
    user(passed)
    torch.testing.assert_close(user.received, want)
    # Dense supports masking (Keras 3); a layer that does not drops the mask.
    torch.testing.assert_close(layers.Dense(2)(passed)._keras_mask, want)
    assert getattr(Scale()(passed), "_keras_mask", None) is None
    # An explicit mask= wins over the attached one.
    other = torch.tensor([[False, False, True]])
    user(passed, mask=other)
    torch.testing.assert_close(user.received, other)


def test_embedding_mask_reaches_lstm_through_sequential():
    model = distkeras.Sequential([layers.Embedding(10, 3, mask_zero=True), PassMask(), UseMask()])
    tokens = torch.tensor([[4, 2, 0, 0], [1, 0, 0, 0]])
    model(tokens)
    torch.testing.assert_close(model.layers[-1].received, tokens != 0)


# ------------------------------------------------------------------------------- training
def test_training_flag_reaches_nested_layers():
    block = Block()
    x = torch.randn(4, 5)
    block(x)  # default: inference
    block(x, training=True)
    block(x, training=False)
    assert block.recorder.seen == [False, True, False]

    model = distkeras.Sequential([layers.Dense(5, input_shape=(5,)), Block()])
    recorder = model.layers[-1].recorder
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((4, 5)).astype("float32")
    ys = rng.standard_normal((4, 2)).astype("float32")
    recorder.seen.clear()
    model.fit(xs, ys, batch_size=4, epochs=1, verbose=0)
    assert True in recorder.seen
    recorder.seen.clear()
    model.predict(xs, verbose=0)
    model.evaluate(xs, ys, verbose=0)
    assert recorder.seen and not any(recorder.seen)


def test_training_flag_drives_nested_batch_norm():
    block = Block()
    x = torch.randn(8, 5) * 3 + 1
    block(x)
    moving = block.norm.moving_mean.detach().clone()
    block(x, training=False)
    torch.testing.assert_close(block.norm.moving_mean, moving)
    block(x, training=True)
    hidden = F.linear(x, block.first.kernel).detach() + block.first.bias.detach()
    torch.testing.assert_close(block.norm.moving_mean, 0.99 * moving + 0.01 * hidden.mean(0))


# ----------------------------------------------------------------------- torch interop
def test_torch_compile_forward_matches_eager():
    block = Block()
    x = torch.randn(4, 5)
    want = block(x)
    before = counters["stats"]["unique_graphs"]
    compiled = torch.compile(block, backend="eager")
    torch.testing.assert_close(compiled(x), want)
    assert counters["stats"]["unique_graphs"] > before  # really traced by dynamo


def test_to_dtype_moves_weights_and_keeps_them_tracked():
    block = Block()
    x = torch.randn(3, 5)
    want = block(x).detach()
    ids = [id(w) for w in block.weights]
    assert block.to(torch.float64) is block
    assert [id(w) for w in block.weights] == ids  # same Parameters, converted in place
    assert all(w.dtype == torch.float64 for w in block.weights)
    assert block.get_weights()[2].dtype == np.float64
    out = block(x.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), want, rtol=1e-5, atol=1e-6)
    # state_dict keys are the weight names torch code expects.
    assert {"gain", "first.kernel", "norm.moving_variance"} <= set(block.state_dict())


def test_layer_config_and_repr():
    layer = Scale(name="scaler", trainable=False, dtype="float64")
    config = layer.get_config()
    assert config["name"] == "scaler" and config["trainable"] is False
    assert config["dtype"]["config"]["name"] == "float64"
    clone = Scale.from_config(config)
    assert clone.name == "scaler" and not clone.trainable and clone.dtype == "float64"
    clone.build((None, 2))
    assert clone.scale.dtype == torch.float64
    assert "scaler" in repr(layer)
