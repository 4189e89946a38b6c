"""Merging layers against numpy references: values, broadcasting, masks, errors, models."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)


def _data(*shapes):
    return [RNG.standard_normal(s).astype("float32") for s in shapes]


@pytest.mark.parametrize(
    "cls, reference",
    [
        (layers.Add, lambda xs, w: xs[0] + xs[1] + xs[2]),
        (layers.Multiply, lambda xs, w: xs[0] * xs[1] * xs[2]),
        (layers.Average, lambda xs, w: (xs[0] + xs[1] + xs[2]) / 3),
        (layers.Maximum, lambda xs, w: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
        (layers.Minimum, lambda xs, w: np.minimum(np.minimum(xs[0], xs[1]), xs[2])),
    ],
)
def test_elementwise_merges(cls, reference):
    run_layer_test(
        cls,
        {},
        input_data=_data((2, 3, 4), (2, 3, 4), (2, 3, 4)),
        expected_output_shape=(2, 3, 4),
        reference=reference,
    )


def test_subtract_takes_two_inputs():
    run_layer_test(
        layers.Subtract,
        {},
        input_data=_data((2, 5), (2, 5)),
        expected_output_shape=(2, 5),
        reference=lambda xs, w: xs[0] - xs[1],
    )
    with pytest.raises(ValueError, match="exactly 2"):
        layers.Subtract()([torch.ones(1, 2)] * 3)


def test_broadcasting_as_keras():
    # Size-1 axes broadcast; a lower-rank input gets axes inserted after the batch axis.
    a, b = _data((2, 1, 4), (2, 3, 4))
    run_layer_test(
        layers.Add,
        {},
        input_data=[a, b],
        expected_output_shape=(2, 3, 4),
        reference=lambda xs, w: xs[0] + xs[1],
    )
    low, high = _data((2, 4), (2, 3, 4))
    run_layer_test(
        layers.Multiply,
        {},
        input_data=[low, high],
        expected_output_shape=(2, 3, 4),
        reference=lambda xs, w: xs[0][:, None, :] * xs[1],
    )


def test_incompatible_shapes_name_the_layer():
    a, b = distkeras.Input((3,)), distkeras.Input((4,))
    with pytest.raises(ValueError, match=r"Add layer 'sum_layer'.*incompatible shapes"):
        layers.Add(name="sum_layer")([a, b])
    with pytest.raises(ValueError, match="Maximum layer .* incompatible shapes"):
        layers.Maximum()([torch.ones(2, 3), torch.ones(2, 4)])
    with pytest.raises(ValueError, match="different batch sizes"):
        layers.Average()([torch.ones(2, 3), torch.ones(3, 3)])
    with pytest.raises(ValueError, match="list of tensors"):
        layers.Add()(torch.ones(2, 3))


def test_merge_masks_or_when_all_inputs_masked():
    x, y = torch.ones(1, 3, 2), torch.ones(1, 3, 2)
    mx, my = torch.tensor([[True, False, False]]), torch.tensor([[False, False, True]])
    out = layers.Add()([x, y], mask=[mx, my])
    assert out._keras_mask.tolist() == [[True, False, True]]
    assert getattr(layers.Add()([x, y], mask=[mx, None]), "_keras_mask", None) is None
    assert getattr(layers.Add()([x, y]), "_keras_mask", None) is None


def test_multiply_with_masks_uses_one_and_zeroes_fully_masked_steps():
    x = torch.tensor([[[2.0], [3.0], [4.0]]])
    y = torch.tensor([[[5.0], [6.0], [7.0]]])
    mx, my = torch.tensor([[True, False, False]]), torch.tensor([[True, True, False]])
    out = layers.Multiply()([x, y], mask=[mx, my])
    # step 0: 2*5; step 1: x masked -> 1*6; step 2: masked in both -> 0.
    assert out[..., 0].tolist() == [[10.0, 6.0, 0.0]]
    assert out._keras_mask.tolist() == [[True, True, False]]


def test_maximum_with_masks_ignores_masked_values():
    x = torch.tensor([[[9.0], [1.0]]])
    y = torch.tensor([[[2.0], [5.0]]])
    out = layers.Maximum()([x, y], mask=[torch.tensor([[False, True]]), None])
    # step 0: x is masked, so y's 2 wins over x's 9; step 1: max(1, 5).
    assert out[..., 0].tolist() == [[2.0, 5.0]]
    out = layers.Minimum()(
        [x, y], mask=[torch.tensor([[True, True]]), torch.tensor([[True, False]])]
    )
    assert out[..., 0].tolist() == [[2.0, 1.0]]


# ------------------------------------------------------------------------ Concatenate
@pytest.mark.parametrize("axis, expected", [(-1, (2, 3, 9)), (1, (2, 5, 4))])
def test_concatenate(axis, expected):
    shapes = [(2, 3, 4), (2, 3, 5)] if axis == -1 else [(2, 3, 4), (2, 2, 4)]
    layer = run_layer_test(
        layers.Concatenate,
        {"axis": axis},
        input_data=_data(*shapes),
        expected_output_shape=expected,
        reference=lambda xs, w: np.concatenate(xs, axis=axis),
    )
    assert layer.get_config()["axis"] == axis


def test_concatenate_errors():
    with pytest.raises(ValueError, match="Concatenate layer .* matching shapes"):
        layers.Concatenate()([distkeras.Input((3, 4)), distkeras.Input((2, 5))])
    with pytest.raises(ValueError, match="same rank"):
        layers.Concatenate()([torch.ones(2, 3), torch.ones(2, 3, 1)])
    with pytest.raises(ValueError, match="axis='1'"):
        layers.Concatenate(axis="1")


def test_concatenate_masks_like_keras():
    a, b = torch.ones(1, 3, 2), torch.ones(1, 2, 2)
    ma = torch.tensor([[True, False, True]])
    out = layers.Concatenate(axis=1)([a, b], mask=[ma, None])
    assert out._keras_mask.tolist() == [[True, False, True, True, True]]
    c = torch.ones(1, 3, 4)
    mc = torch.tensor([[False, False, True]])
    out = layers.Concatenate()([a, c], mask=[ma, mc])
    assert out._keras_mask.tolist() == [[True, False, True]]  # any over features
    assert getattr(layers.Concatenate()([a, c]), "_keras_mask", None) is None


# -------------------------------------------------------------------------------- Dot
def test_dot_vectors_gives_batch_by_one():
    run_layer_test(
        layers.Dot,
        {"axes": 1},
        input_data=_data((3, 4), (3, 4)),
        expected_output_shape=(3, 1),
        reference=lambda xs, w: np.sum(xs[0] * xs[1], axis=1, keepdims=True),
    )


def test_dot_axes_pair_on_3d_inputs():
    # x (2, 3, 5) . y (2, 4, 3) over x axis 1 and y axis 2 -> (2, 5, 4)
    run_layer_test(
        layers.Dot,
        {"axes": (1, 2)},
        input_data=_data((2, 3, 5), (2, 4, 3)),
        expected_output_shape=(2, 5, 4),
        reference=lambda xs, w: np.einsum("bkx,byk->bxy", xs[0], xs[1]),
    )
    run_layer_test(
        layers.Dot,
        {"axes": -1},
        input_data=_data((2, 3, 5), (2, 5)),
        expected_output_shape=(2, 3),
        reference=lambda xs, w: np.einsum("bxk,bk->bx", xs[0], xs[1]),
    )


def test_dot_normalize_is_cosine_similarity():
    def reference(xs, w):
        x, y = xs
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-7)
        y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-7)
        return np.sum(x * y, axis=1, keepdims=True)

    run_layer_test(
        layers.Dot,
        {"axes": 1, "normalize": True},
        input_data=_data((4, 6), (4, 6)),
        expected_output_shape=(4, 1),
        reference=reference,
    )
    zeros = layers.Dot(axes=1, normalize=True)([torch.zeros(1, 3), torch.ones(1, 3)])
    assert torch.isfinite(zeros).all()


def test_dot_errors():
    with pytest.raises(ValueError, match=r"Dot layer .*axis 1 of \(None, 3\) has size 3"):
        layers.Dot(axes=1)([distkeras.Input((3,)), distkeras.Input((4,))])
    with pytest.raises(TypeError, match="axes='1'"):
        layers.Dot(axes="1")
    with pytest.raises(ValueError, match=r"axes=\(1, 2, 3\)"):
        layers.Dot(axes=(1, 2, 3))
    with pytest.raises(ValueError, match="batch axis"):
        layers.Dot(axes=0)([torch.ones(2, 3), torch.ones(2, 3)])
    with pytest.raises(ValueError, match="exactly 2"):
        layers.Dot(axes=1)([torch.ones(2, 3)] * 3)


# ------------------------------------------------------------------------------ models
def test_functional_two_branch_model_with_functional_forms():
    left_in, right_in = distkeras.Input((4,)), distkeras.Input((4,))
    shared = layers.Dense(3)
    left, right = shared(left_in), shared(right_in)
    merged = layers.concatenate([layers.add([left, right]), layers.multiply([left, right])])
    similarity = layers.dot([left, right], axes=1, normalize=True)
    outputs = layers.Concatenate()([merged, similarity])
    model = distkeras.Model([left_in, right_in], outputs)
    assert model.outputs[0].shape == (None, 7)

    a, b = _data((5, 4), (5, 4))
    kernel, bias = model.get_weights()
    la, lb = a @ kernel + bias, b @ kernel + bias
    cosine = np.sum(la * lb, 1, keepdims=True) / (
        np.linalg.norm(la, axis=1, keepdims=True) * np.linalg.norm(lb, axis=1, keepdims=True)
    )
    expected = np.concatenate([la + lb, la * lb, cosine], axis=1)
    out = model([torch.as_tensor(a), torch.as_tensor(b)])
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    out.square().mean().backward()
    assert shared.kernel.grad is not None


def test_functional_concatenate_of_masked_embeddings_along_time():
    first_in = distkeras.Input((3,), dtype="int32")
    second_in = distkeras.Input((2,), dtype="int32")
    embedding = layers.Embedding(5, 2, mask_zero=True)
    merged = layers.Concatenate(axis=1)([embedding(first_in), embedding(second_in)])
    model = distkeras.Model([first_in, second_in], merged)
    out = model([torch.tensor([[1, 0, 4]]), torch.tensor([[0, 2]])])
    assert out.shape == (1, 5, 2)
    assert out._keras_mask.tolist() == [[True, False, True, False, True]]
    # An unmasked input counts as valid everywhere: along features, any() keeps all steps.
    plain = layers.Embedding(5, 3)(first_in)
    wide = distkeras.Model(first_in, layers.Concatenate()([embedding(first_in), plain]))
    assert wide(torch.tensor([[1, 0, 4]]))._keras_mask.tolist() == [[True, True, True]]
