"""A rank stuck in user code is named, with its Python stack, on both backends and launch modes.

Rank 1 of scripts/fail_fast_job.py sleeps in `on_train_batch_begin` at step 2 (longer than
DISTKERAS_TIMEOUT) while rank 0 waits in that step's gradient all-reduce. Rank 0 times out
and its error names the collective (op, sequence number, epoch and step) and the rank that
did not arrive, with that rank's last collective and current line; the stuck rank prints its
own stack. Under distkeras-launch the closing lines blame the stuck rank, not rank 0, and
show that stack. Modes: distkeras-launch (MPI, the CPU default) and --backend torch, plain
mpiexec (MPI) and plain torchrun (torch). The same holds for a model with its own train_step,
with rank 1 stuck at the start of that step.
"""

import re

import pytest

from tests.faults.test_fail_fast_matrix import Cell, start_cells

# Its cells start together from one module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("hang_diagnosis")

MODES = ("launch", "launch-torch", "mpiexec", "torchrun", "srun")
GIL_MODES = ("launch", "torchrun")  # MPI and torch
TIMEOUT_S = 3.0

# The collective rank 0 waits in and the last one rank 1 ran, and where rank 1 is stuck: one
# all-reduce per step after fit's start-up collectives (fewer for a custom train_step: its
# optimizer builds its state at the first apply, after rank 0's weights are broadcast, so
# there is no optimizer state to broadcast), the same count on both backends.
WAITED = {
    "built-in": "all_reduce #9 (epoch 0, step 2)",
    "custom": "all_reduce #7 (epoch 0, step 2)",
}
LAST = {"built-in": "all_reduce #8 (epoch 0, step 1)", "custom": "all_reduce #6 (epoch 0, step 1)"}
# The function that sleeps (the line rank 1 is said to be running), and the hook or step it
# was called from (in its stack).
STUCK_IN = {"built-in": "inject", "custom": "train_step"}
CALLED_FROM = {"built-in": "on_train_batch_begin", "custom": "train_step"}


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    root = tmp_path_factory.mktemp("hang")
    cells = {
        (mode, step): Cell(mode, "stuck", root, timeout_s=TIMEOUT_S, step=step)
        for step in STUCK_IN
        for mode in MODES
    }
    cells.update({(mode, "gil"): Cell(mode, "gil", root, TIMEOUT_S) for mode in GIL_MODES})
    start_cells(list(cells.values()), parallel=2)
    return cells


@pytest.mark.parametrize("step", list(STUCK_IN))
@pytest.mark.parametrize("mode", MODES)
def test_the_stuck_rank_is_named_with_its_stack(cells, mode, step):
    cell = cells[(mode, step)]
    waited, last, where = WAITED[step], LAST[step], STUCK_IN[step]
    assert cell.done.wait(300), "the job never finished"
    assert cell.error is None, cell.error
    out, tail = cell.output, cell.output[-5000:]
    assert cell.code != 0, tail
    # Rank 0's error: which collective, who did not arrive, where that rank is.
    assert f"Rank 0: {waited} timed out after {TIMEOUT_S:g} s" in out, tail
    assert f"rank 1 did not arrive: its last collective was {last}" in out, tail
    assert re.search(rf"running \S+fail_fast_job.py:\d+ in {where}", out), tail
    # Rank 1's own report: its stack, down to the sleeping line.
    report = f"distkeras: rank 1 has not reached {waited}, which rank 0 waits in"
    assert report in out, tail
    stack = out[out.index(report) :]
    assert f"in {where}" in stack and "time.sleep(" in stack, tail
    assert f"in {CALLED_FROM[step]}" in stack, tail
    assert not cell.leftovers, f"processes left behind: {cell.leftovers}"
    if mode.startswith("launch"):
        closing = out[out.rindex("distkeras-launch: rank 0 failed (exit code 1)") :]
        assert "distkeras-launch: rank 1 " in closing, closing
        assert f"rank 0 timed out in {waited}" in closing, closing
        assert "Where it was when asked:" in closing and "time.sleep(" in closing, closing
        # The blame line is for the launcher: it is not shown.
        assert "distkeras-blame" not in out


@pytest.mark.parametrize("mode", GIL_MODES)
def test_a_rank_stuck_holding_the_gil_still_dumps_its_stack(cells, mode):
    # Its side thread cannot answer; the timed-out rank signals it and faulthandler prints.
    cell = cells[(mode, "gil")]
    assert cell.done.wait(300), "the job never finished"
    assert cell.error is None, cell.error
    out, tail = cell.output, cell.output[-5000:]
    assert cell.code != 0, tail
    assert "rank 1 did not answer (it died, or is stuck in code that holds the GIL)" in out, tail
    assert "it was signalled to print its stack (faulthandler)" in out, tail
    dump = out[out.index("Current thread 0x") :]
    assert re.search(r"fail_fast_job.py\", line \d+ in on_train_batch_begin", dump), tail
    assert not cell.leftovers, f"processes left behind: {cell.leftovers}"
