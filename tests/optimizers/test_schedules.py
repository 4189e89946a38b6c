"""Learning-rate schedules against their formulas (Keras's), evaluated with numpy."""

import math

import numpy as np
import pytest
import torch

from distkeras.optimizers import schedules

STEPS = np.arange(0, 40)


def _values(schedule):
    return np.array([schedule(int(s)) for s in STEPS])


def test_exponential_decay():
    s = schedules.ExponentialDecay(0.1, decay_steps=7, decay_rate=0.6)
    np.testing.assert_allclose(_values(s), 0.1 * 0.6 ** (STEPS / 7), rtol=1e-12)
    s = schedules.ExponentialDecay(0.1, decay_steps=7, decay_rate=0.6, staircase=True)
    np.testing.assert_allclose(_values(s), 0.1 * 0.6 ** np.floor(STEPS / 7), rtol=1e-12)


def test_piecewise_constant_intervals_are_left_open():
    s = schedules.PiecewiseConstantDecay([5, 12], [1.0, 0.5, 0.1])
    expected = np.where(STEPS <= 5, 1.0, np.where(STEPS <= 12, 0.5, 0.1))
    np.testing.assert_array_equal(_values(s), expected)
    with pytest.raises(ValueError, match="1 less than"):
        schedules.PiecewiseConstantDecay([1, 2], [1.0, 0.5])


def test_polynomial_decay_with_and_without_cycle():
    s = schedules.PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, power=2.0)
    p = np.minimum(STEPS, 10) / 10
    np.testing.assert_allclose(_values(s), 0.09 * (1 - p) ** 2 + 0.01, rtol=1e-12)
    s = schedules.PolynomialDecay(0.1, decay_steps=10, power=0.5, cycle=True)
    horizon = 10 * np.maximum(1, np.ceil(STEPS / 10))
    expected = (0.1 - 0.0001) * (1 - STEPS / horizon) ** 0.5 + 0.0001
    np.testing.assert_allclose(_values(s), expected, rtol=1e-12)


def test_inverse_time_decay():
    s = schedules.InverseTimeDecay(0.1, decay_steps=3, decay_rate=0.5)
    np.testing.assert_allclose(_values(s), 0.1 / (1 + 0.5 * STEPS / 3), rtol=1e-12)
    s = schedules.InverseTimeDecay(0.1, decay_steps=3, decay_rate=0.5, staircase=True)
    np.testing.assert_allclose(_values(s), 0.1 / (1 + 0.5 * np.floor(STEPS / 3)), rtol=1e-12)


def test_cosine_decay_plain_and_with_warmup():
    s = schedules.CosineDecay(0.1, decay_steps=20, alpha=0.1)
    frac = np.minimum(STEPS, 20) / 20
    np.testing.assert_allclose(
        _values(s), 0.1 * (0.9 * 0.5 * (1 + np.cos(np.pi * frac)) + 0.1), rtol=1e-12
    )
    s = schedules.CosineDecay(0.02, decay_steps=20, alpha=0.1, warmup_target=0.2, warmup_steps=5)
    decay_frac = (np.minimum(STEPS, 25) - 5) / 20
    expected = np.where(
        STEPS < 5,
        0.02 + (0.2 - 0.02) * STEPS / 5,
        0.2 * (0.9 * 0.5 * (1 + np.cos(np.pi * decay_frac)) + 0.1),
    )
    np.testing.assert_allclose(_values(s), expected, rtol=1e-12)


def test_cosine_decay_restarts():
    # t_mul=2: periods of 4, 8, 16 steps starting at 0, 4, 12; m_mul=0.5 halves each restart.
    s = schedules.CosineDecayRestarts(0.1, first_decay_steps=4, t_mul=2.0, m_mul=0.5, alpha=0.1)
    for step in [0, 1, 3, 4, 7, 12, 20, 27]:
        i = 0 if step < 4 else (1 if step < 12 else 2)
        start, length = [(0, 4), (4, 8), (12, 16)][i]
        frac = (step - start) / length
        expected = 0.1 * (0.9 * 0.5 * 0.5**i * (1 + math.cos(math.pi * frac)) + 0.1)
        assert s(step) == pytest.approx(expected, rel=1e-9), step
    s = schedules.CosineDecayRestarts(0.1, first_decay_steps=5, t_mul=1.0)
    frac = (STEPS % 5) / 5
    np.testing.assert_allclose(_values(s), 0.1 * 0.5 * (1 + np.cos(np.pi * frac)), rtol=1e-9)


def test_schedules_accept_tensor_and_numpy_steps():
    s = schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    assert s(torch.tensor(2)) == 0.25 and s(np.int64(3)) == 0.125


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.ExponentialDecay(0.1, 7, 0.6, staircase=True, name="e"),
        schedules.PiecewiseConstantDecay([5, 12], [1.0, 0.5, 0.1]),
        schedules.PolynomialDecay(0.1, 10, 0.01, power=2.0, cycle=True),
        schedules.InverseTimeDecay(0.1, 3, 0.5),
        schedules.CosineDecay(0.1, 20, alpha=0.1, warmup_target=0.3, warmup_steps=4),
        schedules.CosineDecayRestarts(0.1, 4, t_mul=3.0, m_mul=0.7, alpha=0.05),
    ],
)
def test_serialize_round_trip(schedule):
    data = schedules.serialize(schedule)
    assert data["module"] == "keras.optimizers.schedules"
    assert data["class_name"] == type(schedule).__name__
    clone = schedules.deserialize(data)
    assert type(clone) is type(schedule) and clone.get_config() == schedule.get_config()
    np.testing.assert_allclose(_values(clone), _values(schedule))


def test_invalid_decay_steps():
    with pytest.raises(ValueError, match="decay_steps=0"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="first_decay_steps=-1"):
        schedules.CosineDecayRestarts(0.1, -1)


def test_base_class_requires_call_and_config():
    with pytest.raises(NotImplementedError):
        schedules.LearningRateSchedule()(0)
    with pytest.raises(NotImplementedError):
        schedules.LearningRateSchedule().get_config()
