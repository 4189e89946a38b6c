"""Every example runs end to end at tiny size, as one process and under the launcher.

All runs start together when the module's first test asks for one (they are separate
processes, mostly importing torch), so the file takes about as long as the slowest run.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Its runs start together from one module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("examples")

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds per run; a busy machine is slow, a hang is caught
TINY = ["--epochs", "1", "--samples", "256"]
NUMBER = r"(-?\d+\.\d+)"

# name -> (command after `python`, regex of the last line of output).
RUNS = {
    "timeseries_lstm": (
        ["examples/timeseries_lstm.py", *TINY],
        rf"test MAE {NUMBER} MW - naive last-value MAE {NUMBER} MW \(12 h ahead\)",
    ),
    "functional_multi_io": (
        ["examples/functional_multi_io.py", *TINY],
        rf"test price MAE {NUMBER}k - sold_fast accuracy {NUMBER} - sold_fast AUC {NUMBER}",
    ),
    "text_classification": (
        ["examples/text_classification.py", *TINY],
        rf"test accuracy {NUMBER} - bag-of-words test accuracy {NUMBER}",
    ),
    # TextVectorization on numpy text, fit on its ids, an end-to-end string model: 2 workers.
    "text_classification_launcher": (
        ["-m", "launcher", "-n", "2", "examples/text_classification.py", *TINY],
        rf"\[rank 0\] test accuracy {NUMBER} - bag-of-words test accuracy {NUMBER}",
    ),
    "regularization": (
        ["examples/regularization.py", *TINY, "--log-dir", "{tmp}/logs"],
        r"curves: tensorboard --logdir (.+)",
    ),
    "mnist_mlp": (
        ["examples/mnist_mlp.py", "--epochs", "1"],
        rf"test loss {NUMBER} - test accuracy {NUMBER}",
    ),
    # An application (ResNet50V2, weights=None): frozen base + new head, then fine-tuning.
    "transfer_learning": (
        ["examples/transfer_learning.py", *TINY],
        rf"test accuracy {NUMBER} \(frozen base\) - {NUMBER} \(fine-tuned\)",
    ),
    # Keras 3's extension surface: overridden steps, two optimizers, compute_loss, add_loss.
    # Each also runs on two workers (the "_launcher" runs) and must print the same numbers.
    **{
        name + suffix: (
            [*prefix, f"examples/{name}.py", *TINY],
            (r"\[rank 0\] " if suffix else "") + pattern,
        )
        for name, pattern in {
            "custom_train_step": rf"test loss {NUMBER} - test accuracy {NUMBER}",
            "gan": rf"d_loss {NUMBER} - g_loss {NUMBER}",
            "distillation": rf"teacher test accuracy {NUMBER} - student test accuracy {NUMBER}",
            "vae": rf"final loss {NUMBER}",
        }.items()
        for suffix, prefix in (("", []), ("_launcher", ["-m", "launcher", "-n", "2"]))
    },
    "custom_layer_ops": (
        ["examples/custom_layer_ops.py", *TINY],
        rf"test MSE {NUMBER} - mean-predictor MSE {NUMBER} - reloaded same: (True|False)",
    ),
    "custom_layer_ops_launcher": (
        ["-m", "launcher", "-n", "2", "examples/custom_layer_ops.py", *TINY],
        rf"\[rank 0\] test MSE {NUMBER} - mean-predictor MSE {NUMBER} - "
        r"reloaded same: (True|False)",
    ),
    # Augmentation layers and Normalization.adapt in the model; the same on two workers.
    "image_augmentation": (
        ["examples/image_augmentation.py", *TINY],
        rf"test loss {NUMBER} - test accuracy {NUMBER}",
    ),
    "image_augmentation_launcher": (
        ["-m", "launcher", "-n", "2", "examples/image_augmentation.py", *TINY],
        rf"\[rank 0\] test loss {NUMBER} - test accuracy {NUMBER}",
    ),
    # The same command as "functional_multi_io", on two workers.
    "functional_multi_io_launcher": (
        ["-m", "launcher", "-n", "2", "examples/functional_multi_io.py", *TINY],
        rf"\[rank 0\] test price MAE {NUMBER}k - sold_fast accuracy {NUMBER} - "
        rf"sold_fast AUC {NUMBER}",
    ),
}


class Run:
    """One example started in the background; ``result()`` waits for it."""

    def __init__(self, args: list[str], tmp: Path):
        self.log = tmp / "output.txt"
        # The runs share the machine: one thread each keeps them from fighting over cores.
        env = dict(os.environ, OMP_NUM_THREADS="1", DISTKERAS_DEVICE="cpu", PYTHONPATH=str(ROOT))
        # A file, not a pipe: a pipe nobody reads yet would stall a chatty run.
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, *(a.format(tmp=tmp) for a in args)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def result(self) -> tuple[int, str]:
        try:
            code = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"timed out after {TIMEOUT}s:\n{self.log.read_text()[-3000:]}")
        return code, self.log.read_text()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    started = {name: Run(args, tmp_path_factory.mktemp(name)) for name, (args, _) in RUNS.items()}
    yield started
    for run in started.values():  # a failed test leaves no process behind
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def finish(runs, name: str) -> tuple[list[str], re.Match]:
    """Waits for ``name``; checks its exit code and last line, returns lines and the match."""
    code, output = runs[name].result()
    lines = output.strip().splitlines()
    assert code == 0, f"{name} exited with {code}:\n{output[-3000:]}"
    match = re.fullmatch(RUNS[name][1], lines[-1])
    assert match, f"{name}: unexpected last line {lines[-1]!r}"
    values = [float(v) for v in match.groups() if re.fullmatch(NUMBER, v)]
    assert all(math.isfinite(v) for v in values), lines[-1]
    return lines, match


@pytest.mark.parametrize(
    "name",
    [
        "timeseries_lstm",
        "functional_multi_io",
        "text_classification",
        "mnist_mlp",
        "transfer_learning",
    ],
)
def test_example_runs(runs, name):
    lines, match = finish(runs, name)
    if name == "transfer_learning":  # frozen: the head's kernel and bias; then + conv5_block3
        # (3 BNs x 2, 2 convs without bias, 1 with) and post_bn (2): 14.
        assert lines[-2] == "trainable weights: 2 (head), 14 (fine-tuning)", lines[-2]
    if name == "mnist_mlp":  # one epoch is enough to learn the digits
        assert float(match.group(2)) > 0.5, lines[-1]


def test_regularization_writes_tensorboard_logs(runs):
    lines, match = finish(runs, "regularization")
    rows = {line.split()[0]: line.split()[1:] for line in lines[-4:-1]}
    assert sorted(rows) == ["dropout", "l2", "plain"]
    for values in rows.values():
        train_acc, val_acc, acc_gap = (float(v) for v in values[:3])
        assert acc_gap == pytest.approx(train_acc - val_acc, abs=2e-4)
    log_dir = Path(match.group(1))
    for variant in rows:
        for split in ("train", "validation"):
            assert list((log_dir / variant / split).glob("events.out.tfevents.*")), (variant, split)


def test_example_on_two_workers_matches_one_process(runs):
    """Same script, same numbers; only rank 0 prints."""
    lines, match = finish(runs, "functional_multi_io_launcher")
    _, single = finish(runs, "functional_multi_io")
    distributed = [float(v) for v in match.groups()]
    # Within the printed precision: 0.1k for the MAE, 1e-4 for the others.
    assert distributed[0] == pytest.approx(float(single.group(1)), abs=0.1001)
    assert distributed[1:] == pytest.approx([float(v) for v in single.groups()[1:]], abs=1.1e-4)
    printed = ("Epoch", "Model:", "predictions:", "test ")
    assert not [
        line for line in lines if line.startswith("[rank 1]") and any(p in line for p in printed)
    ]
    assert sum("Epoch 1/1" in line for line in lines) == 1


@pytest.mark.parametrize("name", ["custom_train_step", "gan", "distillation", "vae"])
def test_custom_step_example_on_two_workers_matches_one_process(runs, name):
    """The user's train_step/compute_loss/add_loss on 2 workers: the 1-process numbers."""
    _, single = finish(runs, name)
    lines, distributed = finish(runs, name + "_launcher")
    expected = [float(v) for v in single.groups()]
    assert [float(v) for v in distributed.groups()] == pytest.approx(expected, abs=2.1e-5)
    assert not [line for line in lines if line.startswith("[rank 1]") and "loss" in line]


def test_text_example_on_two_workers_matches_one_process(runs):
    """The string model (TextVectorization inside) evaluates raw text sharded by rank."""
    _, single = finish(runs, "text_classification")
    lines, double = finish(runs, "text_classification_launcher")
    expected = [float(v) for v in single.groups()]
    assert [float(v) for v in double.groups()] == pytest.approx(expected, abs=1.1e-4)
    assert not [line for line in lines if line.startswith("[rank 1]") and "P(positive)" in line]


def test_custom_layer_ops_example_one_and_two_workers(runs):
    """Custom layers on ops with `x + inputs` residuals: trains, reloads to the same
    predictions, and two workers print the one-process numbers."""
    _, single = finish(runs, "custom_layer_ops")
    _, double = finish(runs, "custom_layer_ops_launcher")
    assert single.group(3) == double.group(3) == "True"
    assert float(double.group(1)) == pytest.approx(float(single.group(1)), abs=1.1e-4)
    assert double.group(2) == single.group(2)  # the same test data on every worker


def test_image_augmentation_example_one_and_two_workers(runs):
    """Each image's augmentation is a function of its global index: 2 workers train alike."""
    _, single = finish(runs, "image_augmentation")
    lines, double = finish(runs, "image_augmentation_launcher")
    expected = [float(v) for v in single.groups()]
    assert [float(v) for v in double.groups()] == pytest.approx(expected, abs=2.1e-5)
    assert not [line for line in lines if line.startswith("[rank 1]") and "test loss" in line]
