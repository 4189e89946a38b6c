"""Every optimizer's update, step by step, against Keras's formula written out in numpy (float64).

Four parameters of different shapes; one never receives a gradient (it and its state must
stay untouched) and one misses its gradient on one step (skipped that step only, while the
step counter, which drives bias corrections, still advances for everyone).
"""

import numpy as np
import pytest
import torch

from distkeras import optimizers

SHAPES = [(3, 4), (5,), (2, 1, 3), ()]
NEVER = 2  # this parameter never has a gradient
SOMETIMES = 1  # this one has none on step index 2
STEPS = 4


def _grads(rng):
    out = []
    for t in range(STEPS):
        row = [rng.normal(size=s) * 2.0 for s in SHAPES]
        row[NEVER] = None
        if t == 2:
            row[SOMETIMES] = None
        out.append(row)
    return out


# ------------------------------------------------------------------ numpy references, per param
def ref_sgd(lr, momentum=0.0, nesterov=False):
    def update(w, g, s, t, glob):
        if momentum == 0:
            return w - lr * g
        m = s.get("m", np.zeros_like(w))
        m = momentum * m - lr * g
        s["m"] = m
        return w + (momentum * m - lr * g if nesterov else m)

    return update


def ref_adam(lr, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=None):
    def update(w, g, s, t, glob):
        if wd is not None:
            w = w - w * wd * lr
        m = s.get("m", np.zeros_like(w)) * b1 + (1 - b1) * g
        v = s.get("v", np.zeros_like(w)) * b2 + (1 - b2) * g * g
        s["m"], s["v"] = m, v
        if amsgrad:
            v = np.maximum(s.get("vhat", np.zeros_like(w)), v)
            s["vhat"] = v
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        return w - alpha * m / (np.sqrt(v) + eps)

    return update


def ref_rmsprop(lr, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    def update(w, g, s, t, glob):
        v = rho * s.get("v", np.zeros_like(w)) + (1 - rho) * g**2
        s["v"] = v
        if centered:
            mg = rho * s.get("mg", np.zeros_like(w)) + (1 - rho) * g
            s["mg"] = mg
            inc = lr * g / np.sqrt(v - mg**2 + eps)
        else:
            inc = lr * g / np.sqrt(v + eps)
        if momentum > 0:
            b = momentum * s.get("b", np.zeros_like(w)) + inc
            s["b"] = b
            return w - b
        return w - inc

    return update


def ref_adagrad(lr, init=0.1, eps=1e-7):
    def update(w, g, s, t, glob):
        a = s.get("a", np.full_like(w, init)) + g**2
        s["a"] = a
        return w - lr * g / np.sqrt(a + eps)

    return update


def ref_adadelta(lr, rho=0.95, eps=1e-7):
    def update(w, g, s, t, glob):
        eg = rho * s.get("eg", np.zeros_like(w)) + (1 - rho) * g**2
        ed = s.get("ed", np.zeros_like(w))
        delta = -np.sqrt(ed + eps) / np.sqrt(eg + eps) * g
        s["eg"], s["ed"] = eg, rho * ed + (1 - rho) * delta**2
        return w + lr * delta

    return update


def ref_adamax(lr, b1=0.9, b2=0.999, eps=1e-7):
    def update(w, g, s, t, glob):
        m = b1 * s.get("m", np.zeros_like(w)) + (1 - b1) * g
        u = np.maximum(b2 * s.get("u", np.zeros_like(w)), np.abs(g))
        s["m"], s["u"] = m, u
        return w - lr * m / ((1 - b1**t) * (u + eps))

    return update


def ref_nadam(lr, b1=0.9, b2=0.999, eps=1e-7):
    def cache(t):
        return b1 * (1 - 0.5 * 0.96**t)

    def update(w, g, s, t, glob):
        prod = glob["u_product"]  # product of cache(1..t), advanced once per step below
        m = b1 * s.get("m", np.zeros_like(w)) + (1 - b1) * g
        v = b2 * s.get("v", np.zeros_like(w)) + (1 - b2) * g**2
        s["m"], s["v"] = m, v
        m_hat = cache(t + 1) * m / (1 - prod * cache(t + 1)) + (1 - cache(t)) * g / (1 - prod)
        v_hat = v / (1 - b2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + eps)

    def begin_step(glob, t):
        glob["u_product"] = glob.get("u_product", 1.0) * cache(t)

    update.begin_step = begin_step
    return update


CASES = [
    ("SGD", {"learning_rate": 0.1}, ref_sgd(0.1)),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}, ref_sgd(0.1, 0.9)),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.5, "nesterov": True}, ref_sgd(0.1, 0.5, True)),
    ("Adam", {"learning_rate": 0.1}, ref_adam(0.1)),
    ("Adam", {"learning_rate": 0.1, "beta_1": 0.8, "epsilon": 1e-3}, ref_adam(0.1, 0.8, eps=1e-3)),
    ("Adam", {"learning_rate": 0.1, "amsgrad": True}, ref_adam(0.1, amsgrad=True)),
    ("AdamW", {"learning_rate": 0.1, "weight_decay": 0.2}, ref_adam(0.1, wd=0.2)),
    ("RMSprop", {"learning_rate": 0.1}, ref_rmsprop(0.1)),
    ("RMSprop", {"learning_rate": 0.1, "momentum": 0.7}, ref_rmsprop(0.1, momentum=0.7)),
    (
        "RMSprop",
        {"learning_rate": 0.1, "momentum": 0.7, "centered": True, "rho": 0.8},
        ref_rmsprop(0.1, rho=0.8, momentum=0.7, centered=True),
    ),
    ("Adagrad", {"learning_rate": 0.1}, ref_adagrad(0.1)),
    ("Adadelta", {"learning_rate": 1.0}, ref_adadelta(1.0)),
    ("Adamax", {"learning_rate": 0.1}, ref_adamax(0.1)),
    ("Nadam", {"learning_rate": 0.1}, ref_nadam(0.1)),
]


def _run_reference(update, init, grads):
    weights = [w.astype(np.float64) for w in init]
    states = [{} for _ in init]
    glob = {}
    history = []
    for t, row in enumerate(grads, start=1):
        if hasattr(update, "begin_step"):
            update.begin_step(glob, t)
        for i, g in enumerate(row):
            if g is not None:
                weights[i] = update(weights[i], g, states[i], t, glob)
        history.append([w.copy() for w in weights])
    return history


@pytest.mark.parametrize(("cls_name", "kwargs", "update"), CASES)
def test_update_matches_keras_formula(cls_name, kwargs, update):
    rng = np.random.default_rng(7)
    init = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = _grads(rng)
    params = [torch.nn.Parameter(torch.tensor(w)) for w in init]
    opt = getattr(optimizers, cls_name)(**kwargs)
    expected = _run_reference(update, init, grads)
    for t, row in enumerate(grads):
        for p, g in zip(params, row):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float32)
        opt.step(params)
        assert int(opt.iterations) == t + 1
        for i, (p, w) in enumerate(zip(params, expected[t])):
            np.testing.assert_allclose(
                p.detach().numpy(), w, rtol=2e-5, atol=2e-6, err_msg=f"param {i} step {t + 1}"
            )
    np.testing.assert_array_equal(params[NEVER].detach().numpy(), init[NEVER])
    # Slots of the parameter that never had a gradient keep their initial value.
    initial = kwargs.get("initial_accumulator_value", 0.1) if cls_name == "Adagrad" else 0.0
    for name, slot_list in opt._slots.items():
        assert torch.all(slot_list[NEVER] == initial), name


@pytest.mark.parametrize(("cls_name", "kwargs", "update"), CASES[:8:3])
def test_apply_and_apply_gradients_match_step(cls_name, kwargs, update):
    rng = np.random.default_rng(3)
    init = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = _grads(rng)
    expected = _run_reference(update, init, grads)
    a = [torch.nn.Parameter(torch.tensor(w)) for w in init]
    b = [torch.nn.Parameter(torch.tensor(w)) for w in init]
    opt_a = getattr(optimizers, cls_name)(**kwargs)
    opt_b = getattr(optimizers, cls_name)(**kwargs)
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        for row in grads:
            tensors = [None if g is None else torch.tensor(g, dtype=torch.float32) for g in row]
            opt_a.apply(tensors, a)
            # apply_gradients with only the pairs that have a gradient, in reversed order.
            pairs = [(g, p) for g, p in zip(tensors, b) if g is not None][::-1]
            opt_b.apply_gradients(pairs)
    for pa, pb, w in zip(a, b, expected[-1]):
        np.testing.assert_allclose(pa.detach().numpy(), w, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(pb.detach().numpy(), w, rtol=2e-5, atol=2e-6)


def test_two_dtypes_are_grouped_and_each_updated_exactly():
    w32 = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float32))
    w64 = torch.nn.Parameter(torch.tensor([[0.5], [3.0]], dtype=torch.float64))
    opt = optimizers.Adam(learning_rate=0.05)
    # Keras keeps the learning rate in a float32 variable, even for float64 weights.
    ref = ref_adam(float(np.float32(0.05)))
    states = [{}, {}]
    expected = [w32.detach().double().numpy(), w64.detach().numpy().copy()]
    for t in range(1, 4):
        g32, g64 = np.array([0.3, -1.0]) * t, np.array([[2.0], [-0.1]]) / t
        w32.grad = torch.tensor(g32, dtype=torch.float32)
        w64.grad = torch.tensor(g64)
        opt.step([w32, w64])
        expected = [
            ref(expected[0], g32, states[0], t, {}),
            ref(expected[1], g64, states[1], t, {}),
        ]
    assert len(opt._groups) == 2
    assert w64.dtype == torch.float64 and opt._slots["momentum"][1].dtype == torch.float64
    np.testing.assert_allclose(w32.detach().numpy(), expected[0], rtol=1e-6)
    np.testing.assert_allclose(w64.detach().numpy(), expected[1], rtol=1e-12)


def test_step_with_no_gradient_at_all_is_a_noop():
    w = torch.nn.Parameter(torch.ones(3))
    opt = optimizers.SGD(learning_rate=0.1)
    opt.step([w])
    assert int(opt.iterations) == 0
    assert torch.equal(w.detach(), torch.ones(3))
    with pytest.raises(ValueError, match="No gradients provided"):
        opt.apply([None], [w])
