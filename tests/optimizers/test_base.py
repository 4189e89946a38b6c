"""Base optimizer behaviour: clipping, weight decay, accumulation, EMA, loss scaling, state."""

import warnings

import numpy as np
import pytest
import torch

from distkeras import optimizers
from distkeras.optimizers import schedules


def _params(*arrays, dtype=torch.float32):
    return [torch.nn.Parameter(torch.tensor(np.asarray(a), dtype=dtype)) for a in arrays]


def _set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else torch.tensor(np.asarray(g), dtype=p.dtype)


# ------------------------------------------------------------------------------------ clipping
def test_clipnorm_clips_each_tensor_to_its_own_norm():
    small, big = np.array([0.3, 0.4]), np.array([[3.0, 4.0], [0.0, 12.0]])  # norms 0.5, 13
    params = _params(np.zeros(2), np.zeros((2, 2)))
    opt = optimizers.SGD(learning_rate=1.0, clipnorm=1.0)
    _set_grads(params, [small, big])
    opt.step(params)
    np.testing.assert_allclose(params[0].detach().numpy(), -small, rtol=1e-6)
    np.testing.assert_allclose(params[1].detach().numpy(), -big / 13.0, rtol=1e-6)


def test_global_clipnorm_scales_all_gradients_together():
    g1, g2 = np.array([3.0, 0.0]), np.array([[0.0], [4.0]])  # global norm 5
    params = _params(np.zeros(2), np.zeros((2, 1)))
    opt = optimizers.SGD(learning_rate=1.0, global_clipnorm=2.0)
    _set_grads(params, [g1, g2])
    opt.step(params)
    np.testing.assert_allclose(params[0].detach().numpy(), -g1 * 2 / 5, rtol=1e-6)
    np.testing.assert_allclose(params[1].detach().numpy(), -g2 * 2 / 5, rtol=1e-6)
    # Below the threshold nothing changes.
    _set_grads(params, [g1 / 10, g2 / 10])
    opt.step(params)
    np.testing.assert_allclose(params[0].detach().numpy(), -g1 * 2 / 5 - g1 / 10, rtol=1e-6)


def test_global_clipnorm_with_non_finite_norm_gives_nan_like_keras():
    params = _params(np.zeros(2))
    opt = optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0)
    _set_grads(params, [np.array([np.inf, 1.0])])
    opt.step(params)
    assert torch.isnan(params[0]).all()


def test_clipvalue_clips_elementwise():
    params = _params(np.zeros(4))
    opt = optimizers.SGD(learning_rate=1.0, clipvalue=0.5)
    _set_grads(params, [np.array([-2.0, -0.2, 0.3, 7.0])])
    opt.step(params)
    np.testing.assert_allclose(params[0].detach().numpy(), [0.5, 0.2, -0.3, -0.5], rtol=1e-6)


def test_only_one_clip_argument_allowed():
    with pytest.raises(ValueError, match="Only one of `clipnorm`"):
        optimizers.Adam(clipnorm=1.0, clipvalue=1.0)


# ------------------------------------------------------------------------------- weight decay
def test_weight_decay_is_decoupled_and_applied_before_the_update():
    w0, b0, g = np.array([1.0, -2.0]), np.array([3.0]), np.array([0.5, 0.5])
    w, b = _params(w0, b0)
    opt = optimizers.SGD(learning_rate=0.1, weight_decay=0.2, momentum=0.9)
    opt.exclude_from_weight_decay(var_list=[b])
    _set_grads([w, b], [g, [1.0]])
    opt.step([w, b])
    lr = float(np.float32(0.1))
    np.testing.assert_allclose(w.detach().numpy(), w0 - w0 * 0.2 * lr - lr * g, rtol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), b0 - lr * 1.0, rtol=1e-6)


def test_weight_decay_exclusion_by_name_pattern():
    w, b = _params(np.ones(2), np.ones(2))
    b.path = "dense/bias"
    opt = optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    _set_grads([w, b], [np.zeros(2), np.zeros(2)])
    opt.step([w, b])  # zero gradient: Adam moves nothing, only decay acts
    np.testing.assert_allclose(w.detach().numpy(), 1 - 0.5 * np.float32(0.1), rtol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), 1.0)


def test_adamw_requires_weight_decay():
    assert optimizers.AdamW().weight_decay == 0.004
    with pytest.raises(ValueError, match="weight_decay=None"):
        optimizers.AdamW(weight_decay=None)


# ---------------------------------------------------------------------- accumulation, scaling
def test_gradient_accumulation_applies_the_mean_every_k_calls():
    grads = [
        np.array([1.0, 2.0]),
        np.array([3.0, -1.0]),
        np.array([2.0, 2.0]),
        np.array([4.0, 0.0]),
    ]
    (w,) = _params(np.zeros(2))
    opt = optimizers.SGD(learning_rate=0.5, momentum=0.5, gradient_accumulation_steps=2)
    lr = float(np.float32(0.5))
    m = np.zeros(2)
    expected = np.zeros(2)
    for i, g in enumerate(grads):
        _set_grads([w], [g])
        opt.step([w])
        if i % 2 == 1:
            m = 0.5 * m - lr * (grads[i - 1] + g) / 2
            expected = expected + m
        np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-6, err_msg=f"call {i}")
        assert int(opt.iterations) == (i + 1) // 2  # Keras: update steps, not calls
    assert opt._iteration_count == 4
    assert int(opt.variables[0]) == 4  # the saved counter counts every call, as Keras's


def test_gradient_accumulation_bias_correction_uses_update_steps():
    grads = [np.array([1.0]), np.array([3.0]), np.array([-2.0]), np.array([0.5])]
    (w,) = _params(np.zeros(1))
    opt = optimizers.Adam(learning_rate=0.1, gradient_accumulation_steps=2)
    for g in grads:
        _set_grads([w], [g])
        opt.step([w])
    lr, b1, b2, eps = float(np.float32(0.1)), 0.9, 0.999, 1e-7
    m = v = x = 0.0
    for t, g in enumerate([2.0, -0.75], start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        x -= lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(w.detach().numpy(), [x], rtol=1e-6)


def test_gradient_accumulation_steps_validation():
    with pytest.raises(ValueError, match="gradient_accumulation_steps=1"):
        optimizers.SGD(gradient_accumulation_steps=1)


def test_loss_scale_factor_divides_gradients():
    (w,) = _params(np.zeros(2))
    opt = optimizers.SGD(learning_rate=1.0, loss_scale_factor=4.0)
    assert float(opt.scale_loss(torch.tensor(2.0))) == 8.0
    _set_grads([w], [np.array([4.0, -8.0])])
    opt.step([w])
    np.testing.assert_allclose(w.detach().numpy(), [-1.0, 2.0])


# ----------------------------------------------------------------------------------------- EMA
def test_ema_tracks_weights_and_overwrites_them_every_n_steps():
    (w,) = _params(np.zeros(1))
    opt = optimizers.SGD(
        learning_rate=1.0, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=3
    )
    avg, x = None, 0.0
    for step, g in enumerate([1.0, 2.0, 3.0, 1.0], start=1):
        _set_grads([w], [[g]])
        opt.step([w])
        x -= g
        avg = x if avg is None else 0.5 * avg + 0.5 * x
        if step == 3:
            x = avg  # the weights are overwritten with their average
        np.testing.assert_allclose(w.detach().numpy(), [x], rtol=1e-6, err_msg=f"step {step}")
        np.testing.assert_allclose(opt.variables[2].numpy(), [avg], rtol=1e-6)
    opt.finalize_variable_values([w])
    np.testing.assert_allclose(w.detach().numpy(), [avg], rtol=1e-6)


# ---------------------------------------------------------------------------------- variables
@pytest.mark.parametrize(
    ("opt", "names"),
    [
        (optimizers.SGD(), []),
        (optimizers.SGD(momentum=0.9), ["momentum"]),
        (optimizers.Adam(), ["momentum", "velocity"]),
        (optimizers.Adamax(), ["momentum", "norm"]),
        (optimizers.Adadelta(), ["accumulated_grad", "accumulated_delta_var"]),
        (optimizers.Nadam(), ["momentum", "velocity"]),
    ],
)
def test_variables_interleave_slots_per_variable_as_keras(opt, names):
    a, b = _params(np.ones((3, 4)), np.ones(5))
    opt.build([a, b])
    variables = opt.variables
    expected = [(), ()] + [tuple(p.shape) for p in (a, b) for _ in names]
    if isinstance(opt, optimizers.Nadam):
        expected.append(())  # u_product comes last
    assert [tuple(v.shape) for v in variables] == expected
    assert variables[0].dtype == torch.int64 and variables[1].dtype == torch.float32
    slot_tensors = variables[2 : 2 + 2 * len(names)]
    for i, name in enumerate(names):
        assert slot_tensors[i] is opt._slots[name][0]
        assert slot_tensors[len(names) + i] is opt._slots[name][1]


def test_variables_of_blockwise_optimizers_and_base_slots():
    a, b = _params(np.ones((3, 4)), np.ones(5))
    opt = optimizers.RMSprop(
        momentum=0.5, centered=True, use_ema=True, gradient_accumulation_steps=2
    )
    opt.build([a, b])
    order = ["average", "gradient_accumulator", "velocity", "momentum", "average_gradient"]
    expected = [opt._slots[name][i] for name in order for i in (0, 1)]
    assert all(x is y for x, y in zip(opt.variables[2:], expected))
    assert len(opt.variables) == 2 + len(expected)
    amsgrad = optimizers.Adam(amsgrad=True)
    amsgrad.build([a, b])
    assert [tuple(v.shape) for v in amsgrad.variables[-2:]] == [(3, 4), (5,)]
    assert amsgrad.variables[-1] is amsgrad._slots["velocity_hat"][1]
    adagrad = optimizers.Adagrad(initial_accumulator_value=0.25)
    adagrad.build([a])
    assert torch.all(adagrad.variables[2] == 0.25)


def test_scheduled_learning_rate_is_not_a_variable():
    opt = optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.5))
    assert len(opt.variables) == 1
    assert len(optimizers.SGD().variables) == 2


def test_set_variables_restores_state_and_continues_identically():
    rng = np.random.default_rng(0)
    init = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    grads = [[rng.normal(size=(3, 2)), rng.normal(size=4)] for _ in range(6)]
    a, b = _params(*init), _params(*init)
    opt_a = optimizers.Nadam(learning_rate=0.05)
    for row in grads[:3]:
        _set_grads(a, row)
        opt_a.step(a)
    with torch.no_grad():
        for pb, pa in zip(b, a):
            pb.copy_(pa)
    opt_b = optimizers.Nadam(learning_rate=0.5)
    opt_b.build(b)
    opt_b.set_variables([v.clone() for v in opt_a.variables])
    assert int(opt_b.iterations) == 3 and opt_b.learning_rate == opt_a.learning_rate
    for row in grads[3:]:
        _set_grads(a, row)
        opt_a.step(a)
        _set_grads(b, row)
        opt_b.step(b)
    for pa, pb in zip(a, b):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_save_and_load_own_variables_and_mismatch_warning():
    (w,) = _params(np.ones(3))
    opt = optimizers.Adam(learning_rate=0.1)
    _set_grads([w], [np.ones(3)])
    opt.step([w])
    store = {}
    opt.save_own_variables(store)
    assert sorted(store) == ["0", "1", "2", "3"] and store["0"] == 1
    other = optimizers.Adam()
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        other.load_own_variables(store)
    other.build(_params(np.ones(3)))
    other.load_own_variables(store)
    assert int(other.iterations) == 1 and other.learning_rate == pytest.approx(0.1)
    np.testing.assert_allclose(other.variables[2].numpy(), store["2"])
    with pytest.raises(ValueError, match="shape"):
        other.set_variables([store["0"], store["1"], np.zeros(2), store["3"]])


# ------------------------------------------------------------------------------- learning rate
def test_learning_rate_is_float32_rounded_and_settable():
    opt = optimizers.Adam(learning_rate=0.001)
    assert opt.learning_rate == float(np.float32(0.001))
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5 and float(opt.variables[1]) == 0.5
    opt.learning_rate = np.float64(0.25)
    assert opt.learning_rate == 0.25
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate="fast")


def test_schedule_is_evaluated_at_the_call_count_and_not_settable_to_a_float():
    schedule = schedules.PiecewiseConstantDecay([1], [1.0, 0.5])
    (w,) = _params(np.zeros(1))
    opt = optimizers.SGD(learning_rate=schedule)
    for _ in range(3):
        _set_grads([w], [[1.0]])
        opt.step([w])
    np.testing.assert_allclose(w.detach().numpy(), [-(1.0 + 1.0 + 0.5)])
    assert opt.learning_rate == 0.5
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.1


def test_callable_learning_rate():
    rate = {"value": 0.5}
    (w,) = _params(np.zeros(1))
    opt = optimizers.SGD(learning_rate=lambda: rate["value"])
    _set_grads([w], [[1.0]])
    opt.step([w])
    rate["value"] = 0.25
    _set_grads([w], [[1.0]])
    opt.step([w])
    np.testing.assert_allclose(w.detach().numpy(), [-0.75])


# ------------------------------------------------------------------------------ errors, misc
def test_unknown_keyword_argument_raises_type_error_naming_it():
    with pytest.raises(TypeError, match="lr"):
        optimizers.Adam(lr=0.1)
    with pytest.warns(UserWarning, match="decay"):
        optimizers.SGD(decay=0.1)


def test_sgd_momentum_validation():
    with pytest.raises(ValueError, match="momentum=1.5"):
        optimizers.SGD(momentum=1.5)


def test_apply_errors():
    (w,) = _params(np.zeros(2))
    opt = optimizers.SGD()
    with pytest.raises(ValueError, match="must already be built"):
        opt.apply([torch.ones(2)])
    opt.build([w])
    with pytest.raises(ValueError, match="Unknown variable"):
        opt.apply([torch.ones(2)], _params(np.zeros(2)))
    with pytest.raises(ValueError, match="does not match"):
        opt.apply([torch.ones(3)], [w])
    with pytest.raises(ValueError, match="not built"):
        optimizers.SGD().step()


@pytest.mark.parametrize("case", ["own", "foreign", "missing", "reordered"])
def test_apply_with_own_or_other_gradients_matches_sgd_formula(case):
    # Mixed dtypes make two parameter groups, interleaved in the built order, so apply()'s
    # "these are the variables' own .grad" test must map group order back to built order.
    rng = np.random.default_rng(0)
    values = [rng.normal(size=3) for _ in range(4)]
    grads = [rng.normal(size=3) for _ in range(4)]
    params = [
        torch.nn.Parameter(torch.tensor(v, dtype=torch.float64 if i % 2 else torch.float32))
        for i, v in enumerate(values)
    ]
    _set_grads(params, grads)
    opt = optimizers.SGD(learning_rate=0.5)
    opt.build(params)
    passed = [p.grad for p in params]
    expected = [v - 0.5 * g for v, g in zip(values, grads)]
    variables = list(params)
    if case == "foreign":  # a new tensor in place of one .grad: that one is used
        passed[2] = torch.ones(3, dtype=params[2].dtype)
        expected[2] = values[2] - 0.5
    elif case == "missing":
        params[1].grad = None
        passed[1] = None
        expected[1] = values[1]
    elif case == "reordered":  # the same pairs in another order
        passed, variables = passed[::-1], variables[::-1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt.apply(passed, variables)
    assert any("Gradients do not exist" in str(w.message) for w in caught) == (case == "missing")
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.detach().numpy(), e, rtol=1e-6)


def test_keras_style_custom_optimizer_with_update_step():
    class MomentumSum(optimizers.Optimizer):
        def __init__(self, learning_rate=0.1, **kwargs):
            super().__init__(learning_rate=learning_rate, **kwargs)

        def build(self, variables):
            if self.built:
                return
            super().build(variables)
            self.sums = [self.add_variable_from_reference(v, "sum") for v in variables]

        def update_step(self, gradient, variable, learning_rate):
            s = self.sums[self._get_variable_index(variable)]
            self.assign_add(s, gradient)
            self.assign_sub(variable, learning_rate * s)

    (w,) = _params(np.zeros(2))
    opt = MomentumSum(learning_rate=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            _set_grads([w], [np.ones(2)])
            opt.step([w])
    np.testing.assert_allclose(w.detach().numpy(), [-1.5, -1.5])
    assert len(opt.variables) == 3 and opt.name == "momentum_sum"


def test_in_place_writes_to_variables_then_sync_host_state():
    # What a rank-0 broadcast does: overwrite `variables` in place, then re-read host state.
    (w,) = _params(np.zeros(2))
    opt = optimizers.Nadam(learning_rate=0.1)
    opt.build([w])
    variables = opt.variables
    assert all(v.device == w.device for v in variables)
    variables[0].fill_(7)
    variables[1].fill_(0.25)
    variables[-1].fill_(0.5)
    opt._sync_host_state()
    assert opt._iteration_count == 7 and opt.learning_rate == 0.25 and opt._u_product == 0.5
