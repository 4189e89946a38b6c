"""Every kind of data fit/evaluate/predict accept, and clear errors before the first step.

Each input kind is checked against one SGD step per batch written by hand in torch (or
against numpy for evaluate/predict), so "accepted" means "trained on exactly those batches".
"""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers, optimizers

LR = 0.1


def make_model():
    model = distkeras.Sequential([layers.Dense(2, input_dim=3)])
    model.compile(optimizer=optimizers.SGD(LR), loss="mse")
    model.build((None, 3))
    return model


def make_data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, 3)).astype("float32"),
        rng.standard_normal((n, 2)).astype("float32"),
    )


def reference_sgd(weights, batches):
    """Plain SGD on mse for Dense(2): batches of (x, y, sample_weight or None)."""
    k, b = (torch.tensor(w, dtype=torch.float64) for w in weights)
    for x, y, sw in batches:
        k.requires_grad_(True)
        b.requires_grad_(True)
        x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
        values = ((x @ k + b - y) ** 2).mean(-1)
        if sw is not None:
            values = values * torch.as_tensor(sw, dtype=torch.float64)
        gk, gb = torch.autograd.grad(values.sum() / len(x), (k, b))
        k, b = (k - LR * gk).detach(), (b - LR * gb).detach()
    return [k.numpy(), b.numpy()]


def in_batches(x, y, size, sw=None):
    return [
        (x[i : i + size], y[i : i + size], None if sw is None else sw[i : i + size])
        for i in range(0, len(x), size)
    ]


def assert_weights(model, expected):
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------- array kinds
@pytest.mark.parametrize("kind", ["numpy", "torch", "float64"])
def test_arrays_of_every_kind_train_the_same(kind):
    x, y = make_data()
    model = make_model()
    expected = reference_sgd(model.get_weights(), in_batches(x, y, 5))
    convert = {
        "numpy": lambda a: a,
        "torch": torch.from_numpy,
        "float64": lambda a: a.astype("float64"),
    }[kind]
    model.fit(convert(x), convert(y), batch_size=5, shuffle=False, verbose=0)
    assert_weights(model, expected)
    assert all(w.dtype == np.float32 for w in model.get_weights())


def test_integer_inputs_are_accepted():
    x = np.arange(12).reshape(4, 3).astype("int64")
    y = np.ones((4, 2), "float32")
    model = make_model()
    expected = reference_sgd(model.get_weights(), [(x.astype("float64"), y, None)])
    model.fit(x, y, batch_size=4, verbose=0)
    assert_weights(model, expected)


def multi_input_model():
    a = distkeras.Input((3,), name="a")
    b = distkeras.Input((2,), name="b")
    merged = layers.Concatenate()([a, b])
    model = distkeras.Model([a, b], layers.Dense(2, name="out")(merged))
    model.compile(optimizer=optimizers.SGD(LR), loss="mse")
    return model


@pytest.mark.parametrize("kind", ["list", "tuple", "dict", "torch_list"])
def test_multi_input_lists_and_dicts(kind):
    rng = np.random.default_rng(2)
    xa = rng.standard_normal((10, 3)).astype("float32")
    xb = rng.standard_normal((10, 2)).astype("float32")
    y = rng.standard_normal((10, 2)).astype("float32")
    model = multi_input_model()
    expected = reference_sgd(model.get_weights(), in_batches(np.concatenate([xa, xb], 1), y, 4))
    x = {
        "list": [xa, xb],
        "tuple": (xa, xb),
        "dict": {"b": xb, "a": xa},
        "torch_list": [torch.from_numpy(xa), torch.from_numpy(xb)],
    }[kind]
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    assert_weights(model, expected)
    k, bias = model.get_weights()
    np.testing.assert_allclose(
        model.predict(x, batch_size=3, verbose=0),
        np.concatenate([xa, xb], 1) @ k + bias,
        rtol=1e-5,
        atol=1e-6,
    )


# ------------------------------------------------------------------- torch data
class PairDataset(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_torch_dataloader():
    x, y = make_data(12)
    model = make_model()
    expected = reference_sgd(model.get_weights(), in_batches(x, y, 5) * 2)
    loader = torch.utils.data.DataLoader(PairDataset(x, y), batch_size=5, shuffle=False)
    history = model.fit(loader, epochs=2, verbose=0)
    assert_weights(model, expected)
    assert len(history.history["loss"]) == 2
    k, b = model.get_weights()
    np.testing.assert_allclose(
        model.evaluate(loader, verbose=0), ((x @ k + b - y) ** 2).mean(), rtol=1e-5
    )
    np.testing.assert_allclose(model.predict(loader, verbose=0), x @ k + b, rtol=1e-5, atol=1e-6)


def test_torch_dataset_is_batched_with_batch_size():
    x, y = make_data(12)
    model = make_model()
    expected = reference_sgd(model.get_weights(), in_batches(x, y, 4))
    model.fit(PairDataset(x, y), batch_size=4, shuffle=False, verbose=0)
    assert_weights(model, expected)


def test_torch_dataset_with_shuffle_trains_on_every_sample_once_per_epoch():
    x, y = make_data(12)
    model = make_model()
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    history = model.fit(PairDataset(x, y), batch_size=4, epochs=2, verbose=0)
    k, b = model.get_weights()
    np.testing.assert_allclose(
        history.history["loss"], [((x @ k + b - y) ** 2).mean()] * 2, rtol=1e-5
    )


def test_validation_data_as_a_dataloader():
    x, y = make_data(12)
    model = make_model()
    loader = torch.utils.data.DataLoader(PairDataset(x[:6], y[:6]), batch_size=4)
    history = model.fit(x, y, batch_size=4, validation_data=loader, verbose=0)
    k, b = model.get_weights()
    np.testing.assert_allclose(
        history.history["val_loss"], [((x[:6] @ k + b - y[:6]) ** 2).mean()], rtol=1e-5
    )


# --------------------------------------------------------------------- generators
def endless(x, y, size, sw=None):
    while True:
        for i in range(0, len(x), size):
            if sw is None:
                yield x[i : i + size], y[i : i + size]
            else:
                yield x[i : i + size], y[i : i + size], sw[i : i + size]


def test_generator_with_steps_per_epoch_continues_across_epochs():
    x, y = make_data(12)
    model = make_model()
    # 2 epochs of 2 steps over a generator of 3 batches: batches 0, 1 | 2, 0.
    batches = in_batches(x, y, 4)
    expected = reference_sgd(model.get_weights(), [batches[0], batches[1], batches[2], batches[0]])
    history = model.fit(endless(x, y, 4), steps_per_epoch=2, epochs=2, verbose=0)
    assert_weights(model, expected)
    assert len(history.history["loss"]) == 2


def test_generator_with_sample_weights():
    x, y = make_data(12)
    sw = np.linspace(0.0, 2.0, 12).astype("float32")
    model = make_model()
    expected = reference_sgd(model.get_weights(), in_batches(x, y, 6, sw))
    model.fit(endless(x, y, 6, sw), steps_per_epoch=2, verbose=0)
    assert_weights(model, expected)


def test_finite_generator_for_evaluate_and_predict():
    x, y = make_data(10)
    model = make_model()
    k, b = model.get_weights()

    def pairs():
        for i in range(0, 10, 4):
            yield x[i : i + 4], y[i : i + 4]

    def inputs_only():
        for i in range(0, 10, 4):
            yield x[i : i + 4]

    np.testing.assert_allclose(
        model.evaluate(pairs(), verbose=0), ((x @ k + b - y) ** 2).mean(), rtol=1e-5
    )
    np.testing.assert_allclose(
        model.predict(inputs_only(), verbose=0), x @ k + b, rtol=1e-5, atol=1e-6
    )


# ------------------------------------------------------------------------ errors
def unchanged(model, before):
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    return True


def test_mismatched_lengths_error_before_training():
    x, y = make_data(12)
    model = make_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"x: 12, y: 11"):
        model.fit(x, y[:11], verbose=0)
    with pytest.raises(ValueError, match="sample_weight: 5"):
        model.fit(x, y, sample_weight=np.ones(5), verbose=0)
    with pytest.raises(ValueError, match="12.*11|11.*12"):
        model.evaluate(x, y[:11], verbose=0)
    assert unchanged(model, before)


def test_mismatched_lengths_of_multi_inputs():
    model = multi_input_model()
    with pytest.raises(ValueError, match="different sample counts"):
        model.fit([np.zeros((4, 3)), np.zeros((5, 2))], np.zeros((4, 2)), verbose=0)


def test_wrong_input_rank_names_the_expected_shape():
    x, y = make_data(12)
    model = make_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"\(12, 3, 1\)"):
        model.fit(x[..., None], y, verbose=0)
    with pytest.raises(ValueError, match="incompatible|expects"):
        model.fit(np.zeros((12, 5), "float32"), y, verbose=0)
    assert unchanged(model, before)


def test_non_numeric_labels_are_a_type_error():
    x, _ = make_data(4)
    model = make_model()
    before = model.get_weights()
    with pytest.raises(TypeError, match="`y` must be numeric.*<U1"):
        model.fit(x, np.array([["a", "b"]] * 4), verbose=0)
    with pytest.raises(TypeError, match="`y` holds Python objects"):
        model.fit(x, np.array([[{}, None]] * 4, dtype=object), verbose=0)
    with pytest.raises(TypeError, match="`x` must be numeric"):
        model.predict(np.array([["a", "b", "c"]]), verbose=0)
    with pytest.raises(TypeError, match="Labels must be numeric"):
        model.fit(x, torch.zeros((4, 2), dtype=torch.complex64), verbose=0)
    assert unchanged(model, before)


def test_y_with_a_generator_or_loader_is_an_error():
    x, y = make_data(12)
    model = make_model()
    with pytest.raises(ValueError, match="y must be None"):
        model.fit(endless(x, y, 4), y, steps_per_epoch=1, verbose=0)
    loader = torch.utils.data.DataLoader(PairDataset(x, y), batch_size=4)
    with pytest.raises(ValueError, match="y must be None"):
        model.evaluate(loader, y, verbose=0)


def test_validation_split_needs_arrays():
    x, y = make_data(12)
    model = make_model()
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(endless(x, y, 4), steps_per_epoch=1, validation_split=0.2, verbose=0)


def test_fit_evaluate_without_compile_or_loss():
    x, y = make_data(4)
    model = distkeras.Sequential([layers.Dense(2, input_dim=3)])
    for call in (
        lambda: model.fit(x, y, verbose=0),
        lambda: model.evaluate(x, y, verbose=0),
        lambda: model.train_on_batch(x, y),
        lambda: model.test_on_batch(x, y),
    ):
        with pytest.raises(ValueError, match="compile"):
            call()
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="loss"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="loss"):
        model.train_on_batch(x, y)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8"])
def test_bad_batch_size(batch_size):
    x, y = make_data(4)
    with pytest.raises(ValueError, match="batch_size"):
        make_model().fit(x, y, batch_size=batch_size, verbose=0)


def test_no_data():
    model = make_model()
    with pytest.raises(ValueError, match="data|samples"):
        model.fit(verbose=0)
    with pytest.raises(ValueError, match="empty|0 samples"):
        model.fit(np.zeros((0, 3)), np.zeros((0, 2)), verbose=0)


def test_dict_inputs_are_matched_by_name_not_by_sorted_order():
    z = distkeras.Input((2, 3), name="z")
    a = distkeras.Input((2,), name="a")
    merged = layers.Concatenate()([layers.Flatten()(z), a])
    model = distkeras.Model([z, a], layers.Dense(2)(merged))
    model.compile(optimizer=optimizers.SGD(LR), loss="mse")
    rng = np.random.default_rng(4)
    xz = rng.integers(0, 5, (8, 2, 3))  # integers: cast to the Input's float32
    xa = rng.standard_normal((8, 2)).astype("float32")
    y = rng.standard_normal((8, 2)).astype("float32")
    flat = np.concatenate([xz.reshape(8, 6), xa], 1)
    expected = reference_sgd(model.get_weights(), in_batches(flat, y, 4))
    model.fit({"a": xa, "z": xz}, y, batch_size=4, shuffle=False, verbose=0)
    assert_weights(model, expected)
    with pytest.raises(ValueError, match="'z'.*rank 3"):
        model.fit({"a": xa, "z": xz[:, 0]}, y, verbose=0)


def test_float_ids_feed_an_embedding_model():
    model = distkeras.Sequential([layers.Embedding(5, 2, input_shape=(3,)), layers.Flatten()])
    model.compile(optimizer=optimizers.SGD(LR), loss="mse")
    ids = np.array([[0, 1, 4], [2, 3, 3]])
    table = model.get_weights()[0]
    np.testing.assert_allclose(
        model.evaluate(ids.astype("float32"), np.zeros((2, 6)), verbose=0),
        (table[ids].reshape(2, 6) ** 2).mean(),
        rtol=1e-5,
    )
