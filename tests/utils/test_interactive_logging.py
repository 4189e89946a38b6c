"""Interactive logging off: fit's progress and Progbar lines go to the `distkeras` logger,
not stdout, one finished line each (Keras sends them to absl logging)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import distkeras
from distkeras import utils


@pytest.fixture
def quiet():
    utils.disable_interactive_logging()
    yield
    utils.enable_interactive_logging()


def test_flag_matches_keras_defaults(quiet):
    assert not utils.is_interactive_logging_enabled()
    utils.enable_interactive_logging()
    assert utils.is_interactive_logging_enabled()
    utils.disable_interactive_logging()


def test_fit_progress_goes_to_logging(quiet, capsys, caplog):
    model = distkeras.Sequential([distkeras.Input((2,)), distkeras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with caplog.at_level(logging.INFO, logger="distkeras"):
        model.fit(np.ones((8, 2), "float32"), np.ones((8, 1), "float32"), epochs=2, verbose=1)
    assert capsys.readouterr().out == ""
    lines = [r.getMessage() for r in caplog.records if r.name == "distkeras"]
    assert lines[0] == "Epoch 1/2" and "Epoch 2/2" in lines
    assert sum("loss:" in line for line in lines) == 2 and not any("\r" in line for line in lines)


def test_progbar_logs_only_its_final_line(quiet, capsys, caplog):
    with caplog.at_level(logging.INFO, logger="distkeras"):
        bar = utils.Progbar(3, interval=0)
        for step in range(3):
            bar.update(step + 1, [("loss", 1.0)])
    assert capsys.readouterr().out == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "distkeras"]
    assert len(messages) == 1 and messages[0].startswith("3/3 [")
