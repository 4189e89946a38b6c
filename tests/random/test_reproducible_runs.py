"""A program that seeds Python's ``random`` and numpy, but never calls ``set_random_seed``,
trains the same model on every run (as under Keras): fit's shuffle seed and the dropout keys
come from Python's ``random``, not from the operating system."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

PROGRAM = """
import json, random, sys
import numpy as np
random.seed(int(sys.argv[1]))
np.random.seed(0)
import distkeras
from distkeras import layers
x = np.random.normal(size=(64, 6)).astype("float32")
y = (x[:, :1] > 0).astype("float32")
model = distkeras.Sequential([distkeras.Input((6,)), layers.Dense(8, activation="relu"),
                              layers.Dropout(0.5), layers.GaussianNoise(0.1), layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
history = model.fit(x, y, batch_size=8, epochs=2, shuffle=True, verbose=0)
print(json.dumps({"weights": [w.tolist() for w in model.get_weights()],
                  "loss": history.history["loss"]}))
"""


def _start(python_seed: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DISTKERAS_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
    }
    for name in ("RANK", "WORLD_SIZE", "DISTKERAS_LAUNCHER", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-c", PROGRAM, str(python_seed)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_two_runs_seeded_through_python_random_train_alike():
    first, second, other = (_start(seed) for seed in (1, 1, 2))
    a, b, c = _result(first), _result(second), _result(other)
    for wa, wb in zip(a["weights"], b["weights"]):
        np.testing.assert_array_equal(wa, wb)
    assert a["loss"] == b["loss"]
    # Another Python seed shuffles (and drops out) differently: the seed is what decides.
    assert a["loss"] != c["loss"]
