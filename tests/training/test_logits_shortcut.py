"""Crossentropy of softmax/sigmoid outputs computed from the logits equals the Keras
probability formula (normalise, clip to [1e-7, 1-1e-7], log) in value and gradient."""

import numpy as np
import torch

from distkeras import activations, losses
from distkeras.training.compile_utils import reduce_loss


def _keras_categorical(y_true, probs):
    p = probs / probs.sum(-1, keepdims=True)
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y_true * np.log(p)).sum(-1)


def test_categorical_from_logits_matches_probability_formula():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.standard_normal((6, 5)), dtype=torch.float32, requires_grad=True)
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, 6)]
    probs = activations.apply(activations.softmax, logits)
    assert probs._keras_logits[0] == "softmax"
    value = reduce_loss(losses.get("categorical_crossentropy"), torch.tensor(y), probs, None, 6, 6)
    expected = _keras_categorical(y, probs.detach().numpy()).mean()
    np.testing.assert_allclose(value.item(), expected, rtol=1e-5)
    value.backward()
    # d/dlogits of mean CE with softmax = (softmax - y) / n
    np.testing.assert_allclose(logits.grad.numpy(), (probs.detach().numpy() - y) / 6, atol=1e-6)


def test_label_smoothing_and_sparse_and_binary_agree():
    rng = np.random.default_rng(1)
    logits = torch.tensor(rng.standard_normal((4, 3)), dtype=torch.float32)
    probs = activations.apply(activations.softmax, logits)
    plain = torch.softmax(logits, -1)  # same values without the logits attached
    y = torch.tensor(np.eye(3, dtype="float32")[[0, 2, 1, 1]])
    smoothed = losses.CategoricalCrossentropy(label_smoothing=0.1)
    np.testing.assert_allclose(
        reduce_loss(smoothed, y, probs, None, 4, 4).item(),
        reduce_loss(smoothed, y, plain, None, 4, 4).item(),
        rtol=1e-5,
    )
    labels = torch.tensor([0, 2, 1, 1])
    sparse = losses.get("sparse_categorical_crossentropy")
    np.testing.assert_allclose(
        reduce_loss(sparse, labels, probs, None, 4, 4).item(),
        reduce_loss(sparse, labels, plain, None, 4, 4).item(),
        rtol=1e-5,
    )
    binary_logits = torch.tensor(rng.standard_normal((5, 1)), dtype=torch.float32)
    sig = activations.apply(activations.sigmoid, binary_logits)
    targets = torch.tensor([[0.0], [1.0], [1.0], [0.0], [1.0]])
    bce = losses.get("binary_crossentropy")
    np.testing.assert_allclose(
        reduce_loss(bce, targets, sig, None, 5, 5).item(),
        reduce_loss(bce, targets, torch.sigmoid(binary_logits), None, 5, 5).item(),
        rtol=1e-5,
    )


def test_metric_and_loss_agree_when_a_probability_is_below_the_clip():
    # The true class has probability ~e^-40: clipping would give -log(1e-7) = 16.1, the
    # logits give 40. Loss and metric must report the same (logit-based) value.
    from distkeras import metrics

    logits = torch.tensor([[40.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    probs = activations.apply(activations.softmax, logits)
    y = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    expected = -(y * torch.log_softmax(logits, -1)).sum(-1).mean().item()
    loss = reduce_loss(losses.get("categorical_crossentropy"), y, probs, None, 2, 2)
    metric = metrics.CategoricalCrossentropy()
    metric.update_state(y, probs)
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-6)
    np.testing.assert_allclose(metric.result().item(), expected, rtol=1e-6)
    assert expected > 20  # far from the clipped value


def test_categorical_batch_mean_is_this_workers_share_of_the_global_batch():
    # One worker holding 3 of a global batch of 8 contributes sum(its losses) / 8, whether the
    # crossentropy comes back per sample or already averaged; masks and weights still apply.
    rng = np.random.default_rng(2)
    logits = torch.tensor(rng.standard_normal((3, 4)), dtype=torch.float32)
    probs = activations.apply(activations.softmax, logits)
    y = torch.tensor(np.eye(4, dtype="float32")[[1, 3, 0]])
    per_sample = -(y * torch.log_softmax(logits, -1)).sum(-1)
    cce = losses.get("categorical_crossentropy")
    for local, global_ in ((3, 3), (3, 8)):
        value = reduce_loss(cce, y, probs, None, local, global_)
        np.testing.assert_allclose(value.item(), per_sample.sum().item() / global_, rtol=1e-6)
    weights = torch.tensor([1.0, 0.0, 2.0])
    value = reduce_loss(cce, y, probs, weights, 3, 8)
    np.testing.assert_allclose(value.item(), (per_sample * weights).sum().item() / 8, rtol=1e-6)
    summed = losses.CategoricalCrossentropy(reduction="sum")
    value = reduce_loss(summed, y, probs, None, 3, 8)
    np.testing.assert_allclose(value.item(), per_sample.sum().item(), rtol=1e-6)
