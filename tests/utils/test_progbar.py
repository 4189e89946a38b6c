"""utils.Progbar: Keras's averaging of values over steps, and what it prints."""

from __future__ import annotations

import pytest

from distkeras import utils
from tests.ops.keras_reference import import_keras

UPDATES = [
    (1, [("loss", 4.0), ("acc", 0.5)]),
    (3, [("loss", 1.0), ("acc", 0.7)]),
    (4, [("loss", 2.0)]),
]


@pytest.mark.parametrize(
    "kwargs", [{}, {"stateful_metrics": ["acc"]}, {"stateless_metrics": ["loss"]}], ids=str
)
def test_values_are_averaged_like_keras(kwargs):
    keras = import_keras()
    ours = utils.Progbar(10, verbose=0, **kwargs)
    theirs = keras.utils.Progbar(10, verbose=0, **kwargs)
    for current, values in UPDATES:
        ours.update(current, values)
        theirs.update(current, values)
        assert ours._values == pytest.approx(theirs._values)
    ours.add(6, [("loss", 0.5)])
    theirs.add(6, [("loss", 0.5)])
    assert ours._values == pytest.approx(theirs._values)  # finalized at the target


def test_prints_a_bar_with_the_averages(capsys):
    bar = utils.Progbar(4, verbose=1, interval=0)
    bar._dynamic_display = True  # as on a terminal: every update redraws the line
    bar.update(2, [("loss", 3.0)])
    bar.update(4, [("loss", 1.0)])
    out = capsys.readouterr().out
    assert "4/4 [====================]" in out and "loss: 1.0000" in out
    assert "2/4 [==========>" in out and "loss: 3.0000" in out


def test_verbose_2_prints_one_line_at_the_end(capsys):
    bar = utils.Progbar(2, verbose=2)
    bar.update(1, [("loss", 2.0)])
    assert capsys.readouterr().out == ""
    bar.update(2, [("loss", 1.0)])
    assert capsys.readouterr().out.startswith("2/2 - ")


def test_both_metric_lists_are_refused():
    with pytest.raises(ValueError, match="Only one"):
        utils.Progbar(3, stateful_metrics=["a"], stateless_metrics=["b"])
