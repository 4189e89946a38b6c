"""Configs, names and the get/serialize/deserialize entry points."""

import numpy as np
import pytest

from distkeras import optimizers
from distkeras.optimizers import schedules

BASE_KEYS = [
    "name",
    "learning_rate",
    "weight_decay",
    "clipnorm",
    "global_clipnorm",
    "clipvalue",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
]

DEFAULTS = {
    "SGD": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "Adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "AdamW": {"learning_rate": 0.001, "weight_decay": 0.004, "amsgrad": False},
    "RMSprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "centered": False},
    "Adagrad": {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "Adadelta": {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
    "Adamax": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "Nadam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
}


@pytest.mark.parametrize("cls_name", sorted(DEFAULTS))
def test_defaults_and_config_keys_match_keras(cls_name):
    config = getattr(optimizers, cls_name)().get_config()
    assert list(config)[: len(BASE_KEYS)] == BASE_KEYS
    for key, value in DEFAULTS[cls_name].items():
        expected = float(np.float32(value)) if key == "learning_rate" else value
        assert config[key] == expected, key


@pytest.mark.parametrize("cls_name", sorted(DEFAULTS))
def test_config_round_trip_with_non_defaults(cls_name):
    cls = getattr(optimizers, cls_name)
    opt = cls(learning_rate=0.05, clipnorm=2.0, gradient_accumulation_steps=3, name="custom")
    config = opt.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    assert clone.name == "custom" and clone.clipnorm == 2.0


def test_config_round_trip_with_schedule():
    schedule = schedules.CosineDecay(0.1, decay_steps=100, warmup_target=0.2, warmup_steps=5)
    opt = optimizers.Adam(learning_rate=schedule, beta_1=0.8, amsgrad=True)
    config = opt.get_config()
    assert config["learning_rate"]["class_name"] == "CosineDecay"
    clone = optimizers.Adam.from_config(config)
    assert isinstance(clone._learning_rate, schedules.CosineDecay)
    assert clone.get_config() == config
    assert clone.learning_rate == pytest.approx(schedule(0))


def test_default_names_follow_keras():
    names = [optimizers.SGD().name, optimizers.AdamW().name, optimizers.RMSprop().name]
    assert names[0].startswith("sgd")
    assert names[1].startswith("adam_w")
    assert names[2].startswith("rm_sprop")


@pytest.mark.parametrize("name", ["adam", "Adam", "ADAM", "sgd", "rmsprop", "adamw", "nadam"])
def test_get_by_name_is_case_insensitive(name):
    opt = optimizers.get(name)
    assert type(opt).__name__.lower() == name.lower()


def test_get_by_instance_dict_and_errors():
    opt = optimizers.SGD(momentum=0.5)
    assert optimizers.get(opt) is opt
    assert optimizers.get(None) is None
    rebuilt = optimizers.get(optimizers.serialize(opt))
    assert isinstance(rebuilt, optimizers.SGD) and rebuilt.momentum == 0.5
    keras_style = {"class_name": "Adam", "config": {"learning_rate": 0.01, "beta_1": 0.5}}
    assert optimizers.get(keras_style).beta_1 == 0.5
    with pytest.raises(
        ValueError, match=r"Unknown optimizer.*'adagrad'.*Received: optimizer='adamz'"
    ):
        optimizers.get("adamz")
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier"):
        optimizers.get(42)


def test_serialize_form_and_deserialize_custom_objects():
    data = optimizers.serialize(optimizers.Adamax(learning_rate=0.02))
    assert data["module"] == "keras.optimizers" and data["class_name"] == "Adamax"
    assert data["config"]["learning_rate"] == pytest.approx(0.02)

    class MySGD(optimizers.SGD):
        pass

    data = {"class_name": "MySGD", "config": optimizers.SGD(momentum=0.3).get_config()}
    opt = optimizers.deserialize(data, custom_objects={"MySGD": MySGD})
    assert isinstance(opt, MySGD) and opt.momentum == 0.3
