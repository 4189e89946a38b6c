"""model.summary(): the expected texts are what Keras 3.15 prints for the same models in an
80-column terminal (captured from Keras's rich table with print_fn)."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from distkeras.models import summary as summary_module

TWO = """\
Model: "two"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ a (InputLayer)      │ (None, 4)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ b (InputLayer)      │ (None, 4)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ shared (Dense)      │ (None, 3)         │         15 │ a[0][0], b[0][0]  │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ concatenate         │ (None, 6)         │          0 │ shared[0][0],     │
│ (Concatenate)       │                   │            │ shared[1][0]      │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ o1 (Dense)          │ (None, 1)         │          7 │ concatenate[0][0] │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ inner (Functional)  │ (None, 2)         │          8 │ shared[1][0]      │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 30 (120.00 B)
 Trainable params: 30 (120.00 B)
 Non-trainable params: 0 (0.00 B)
"""

TWO_TRAINABLE = """\
Model: "two"
┏━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━┓
┃ Layer (type)      ┃ Output Shape    ┃   Param # ┃ Connected to   ┃ Trai… ┃
┡━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━┩
│ a (InputLayer)    │ (None, 4)       │         0 │ -              │   -   │
├───────────────────┼─────────────────┼───────────┼────────────────┼───────┤
│ b (InputLayer)    │ (None, 4)       │         0 │ -              │   -   │
├───────────────────┼─────────────────┼───────────┼────────────────┼───────┤
│ shared (Dense)    │ (None, 3)       │        15 │ a[0][0],       │   Y   │
│                   │                 │           │ b[0][0]        │       │
├───────────────────┼─────────────────┼───────────┼────────────────┼───────┤
│ concatenate       │ (None, 6)       │         0 │ shared[0][0],  │   -   │
│ (Concatenate)     │                 │           │ shared[1][0]   │       │
├───────────────────┼─────────────────┼───────────┼────────────────┼───────┤
│ o1 (Dense)        │ (None, 1)       │         7 │ concatenate[0… │   Y   │
├───────────────────┼─────────────────┼───────────┼────────────────┼───────┤
│ inner             │ (None, 2)       │         8 │ shared[1][0]   │   Y   │
│ (Functional)      │                 │           │                │       │
└───────────────────┴─────────────────┴───────────┴────────────────┴───────┘
 Total params: 30 (120.00 B)
 Trainable params: 30 (120.00 B)
 Non-trainable params: 0 (0.00 B)
"""

TWO_NESTED = """\
Model: "two"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ a (InputLayer)      │ (None, 4)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ b (InputLayer)      │ (None, 4)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ shared (Dense)      │ (None, 3)         │         15 │ a[0][0], b[0][0]  │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ concatenate         │ (None, 6)         │          0 │ shared[0][0],     │
│ (Concatenate)       │                   │            │ shared[1][0]      │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ o1 (Dense)          │ (None, 1)         │          7 │ concatenate[0][0] │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ inner (Functional)  │ (None, 2)         │          8 │ shared[1][0]      │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│    └ inner_in       │ (None, 3)         │          0 │ -                 │
│ (InputLayer)        │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│    └ inner_dense    │ (None, 2)         │          8 │ -                 │
│ (Dense)             │                   │            │                   │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 30 (120.00 B)
 Trainable params: 30 (120.00 B)
 Non-trainable params: 0 (0.00 B)
"""

TWO_NARROW = """\
Model: "two"
┏━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━┓
┃               ┃ Output      ┃  Param ┃ Connected   ┃     ┃
┃ Layer (type)  ┃ Shape       ┃      # ┃ to          ┃ Tr… ┃
┡━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━┩
│ a             │ (None, 4)   │      0 │ -           │  -  │
│ (InputLayer)  │             │        │             │     │
├───────────────┼─────────────┼────────┼─────────────┼─────┤
│ b             │ (None, 4)   │      0 │ -           │  -  │
│ (InputLayer)  │             │        │             │     │
├───────────────┼─────────────┼────────┼─────────────┼─────┤
│ shared        │ (None, 3)   │     15 │ a[0][0],    │  Y  │
│ (Dense)       │             │        │ b[0][0]     │     │
├───────────────┼─────────────┼────────┼─────────────┼─────┤
│ concatenate   │ (None, 6)   │      0 │ shared[0][… │  -  │
│ (Concatenate) │             │        │ shared[1][… │     │
├───────────────┼─────────────┼────────┼─────────────┼─────┤
│ o1 (Dense)    │ (None, 1)   │      7 │ concatenat… │  Y  │
├───────────────┼─────────────┼────────┼─────────────┼─────┤
│ inner         │ (None, 2)   │      8 │ shared[1][… │  Y  │
│ (Functional)  │             │        │             │     │
├───────────────┼─────────────┼────────┼─────────────┼─────┤
│    └ inner_in │ (None, 3)   │      0 │ -           │  -  │
│ (InputLayer)  │             │        │             │     │
├───────────────┼─────────────┼────────┼─────────────┼─────┤
│    └          │ (None, 2)   │      8 │ -           │  Y  │
│ inner_dense   │             │        │             │     │
│ (Dense)       │             │        │             │     │
└───────────────┴─────────────┴────────┴─────────────┴─────┘
 Total params: 30 (120.00 B)
 Trainable params: 30 (120.00 B)
 Non-trainable params: 0 (0.00 B)
"""

SEQ = """\
Model: "seq"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ a_really_long_layer_name_for_w… │ (None, 5)              │            35 │
│ (Dense)                         │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ act (Activation)                │ (None, 5)              │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ out (Dense)                     │ (None, 2)              │            12 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 47 (188.00 B)
 Trainable params: 47 (188.00 B)
 Non-trainable params: 0 (0.00 B)
"""

UNBUILT = """\
Model: "unbuilt"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ u1 (Dense)                      │ ?                      │   0 (unbuilt) │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ u2 (Dense)                      │ ?                      │   0 (unbuilt) │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 0 (0.00 B)
 Trainable params: 0 (0.00 B)
 Non-trainable params: 0 (0.00 B)
"""

CHAIN = """\
Model: "chain"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ x (InputLayer)                  │ (None, 5)              │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ d (Dense)                       │ (None, 2)              │            12 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 12 (48.00 B)
 Trainable params: 12 (48.00 B)
 Non-trainable params: 0 (0.00 B)
"""


@pytest.fixture(autouse=True)
def _terminal_80_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def summary_text(model, **kwargs) -> str:
    texts = []
    model.summary(print_fn=texts.append, **kwargs)
    assert len(texts) == 1  # Keras 3 hands print_fn the whole table at once
    return texts[0]


def two_input_model():
    a = distkeras.Input((4,), name="a")
    b = distkeras.Input((4,), name="b")
    shared = layers.Dense(3, name="shared")
    ha, hb = shared(a), shared(b)
    out1 = layers.Dense(1, name="o1")(layers.Concatenate(name="concatenate")([ha, hb]))
    inner_in = distkeras.Input((3,), name="inner_in")
    inner = distkeras.Model(inner_in, layers.Dense(2, name="inner_dense")(inner_in), name="inner")
    return distkeras.Model([a, b], [out1, inner(hb)], name="two")


def test_functional_graph_has_connected_to_column():
    model = two_input_model()
    assert summary_text(model) == TWO
    assert summary_text(model, show_trainable=True) == TWO_TRAINABLE
    assert summary_text(model, expand_nested=True) == TWO_NESTED
    narrow = summary_text(model, line_length=60, show_trainable=True, expand_nested=True)
    assert narrow == TWO_NARROW


def test_sequential_wraps_and_truncates_long_names():
    model = distkeras.Sequential(
        [
            distkeras.Input((6,)),
            layers.Dense(5, name="a_really_long_layer_name_for_wrapping_tests"),
            layers.Activation("relu", name="act"),
            layers.Dense(2, name="out"),
        ],
        name="seq",
    )
    assert summary_text(model) == SEQ


def test_unbuilt_sequential_shows_question_marks():
    model = distkeras.Sequential(
        [layers.Dense(3, name="u1"), layers.Dense(2, name="u2")], name="unbuilt"
    )
    assert summary_text(model) == UNBUILT


def test_chain_functional_model_lists_its_input_layer_without_connections():
    x = distkeras.Input((5,), name="x")
    model = distkeras.Model(x, layers.Dense(2, name="d")(x), name="chain")
    assert summary_text(model) == CHAIN


def test_prints_to_stdout_by_default(capsys):
    x = distkeras.Input((5,), name="x")
    distkeras.Model(x, layers.Dense(2, name="d")(x), name="chain").summary()
    assert capsys.readouterr().out == CHAIN


class Tower(distkeras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(3)
        self.norm = layers.BatchNormalization()

    def call(self, inputs, training=None):
        return self.norm(self.hidden(inputs), training=training)


def test_subclassed_model_rows_and_totals():
    model = Tower(name="tower")
    model(torch.ones(2, 4))
    lines = summary_text(model).splitlines()
    assert lines[0] == 'Model: "tower"'
    rows = [line for line in lines if line.startswith("│")]
    # Shapes come from the shapes the layers were built with (the real batch size).
    assert rows[0].split("│")[2].strip() == "(2, 3)" and rows[0].split("│")[3].strip() == "15"
    assert "(BatchNormalization)" in rows[2] and rows[1].split("│")[3].strip() == "12"
    assert lines[-3:] == [
        " Total params: 27 (108.00 B)",
        " Trainable params: 21 (84.00 B)",
        " Non-trainable params: 6 (24.00 B)",
    ]


def test_optimizer_params_line_once_the_optimizer_is_built():
    model = distkeras.Sequential([distkeras.Input((4,)), layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    assert "Optimizer params" not in summary_text(model)
    model.optimizer.build(model.trainable_weights)
    expected = sum(int(np.prod(tuple(v.shape))) for v in model.optimizer.variables)
    last = summary_text(model).splitlines()[-1]
    assert last.startswith(f" Optimizer params: {expected} (")
    assert f" Total params: {15 + expected} (" in summary_text(model)


def test_layer_range_and_errors():
    model = two_input_model()
    text = summary_text(model, layer_range=["shared", "o1"])
    names = [
        line.split("│")[1].split()[0]
        for line in text.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()[:1] not in ("", "(")
    ]
    assert names == ["shared", "concatenate", "o1"]
    with pytest.raises(ValueError, match="do not match"):
        summary_text(model, layer_range=["nothing", "o1"])
    with pytest.raises(ValueError, match="Insufficient console width"):
        summary_text(model, line_length=10)


def test_readable_memory_size():
    assert summary_module.readable_memory_size(0) == "0.00 B"
    assert summary_module.readable_memory_size(1023) == "1023.00 B"
    assert summary_module.readable_memory_size(50890 * 4) == "198.79 KB"
    assert summary_module.readable_memory_size(3 * 1024**3) == "3.00 GB"
