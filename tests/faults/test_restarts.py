"""`distkeras-launch --max-restarts K`: a failed worker restarts the whole group.

Real launcher and worker processes. The training test kills a worker with SIGKILL in the middle
of epoch 2 and checks that the restarted group, resuming from `BackupAndRestore`'s end-of-epoch
backup, ends with the weights of an uninterrupted run of the same script; the others use
workers that import no torch, to check the launcher's bookkeeping in a second or two.
"""

import time

import pytest

from tests.faults import (
    EPOCHS,
    LIGHT_WORKER,
    STEPS_PER_EPOCH,
    Job,
    assert_same_history,
    assert_same_weights,
    launcher,
    outputs,
    reference,
    restart_counts,
    start_reference,
    tiny_job,
)

# tests.faults' reference runs are cached per process: share them with test_preemption.
pytestmark = pytest.mark.xdist_group("tiny_job_references")


@pytest.mark.parametrize("step", [None, "guide"])
def test_killed_worker_restarts_the_group_and_training_matches(tmp_path, step):
    custom = ["--custom-step", step] if step else []  # the built-in step, or a train_step
    start_reference(2, *custom)  # runs alongside the faulty job
    job = tiny_job(
        tmp_path, "--kill-rank", 1, *custom, workers=2, launcher_args=["--max-restarts", 1]
    )
    _, stderr = job.check(0)
    assert "rank 1 failed (signal SIGKILL); stopping the other workers." in stderr
    assert "rank 1 failed; restarting all workers (restart 1/1)." in stderr
    # Every rank of both groups saw its restart count in distkeras.distributed.restart_count().
    assert restart_counts(tmp_path) == {(0, 0): 0, (0, 1): 0, (1, 0): 1, (1, 1): 1}

    expected, got = reference(2, *custom), outputs(tmp_path)
    assert_same_weights(got["weights"], expected["weights"])
    # The second group resumed from the backup written at the end of epoch 1.
    assert got["batches"] == (EPOCHS - 1) * STEPS_PER_EPOCH
    assert_same_history(got["history"], expected["history"], last_epochs=EPOCHS - 1)
    assert not (tmp_path / "backup").exists()  # removed once training completed


def test_restarts_used_up_exit_with_the_failure_naming_the_rank(tmp_path):
    job = Job(launcher("-n", 2, "--max-restarts", 2, LIGHT_WORKER, "fail", tmp_path))
    _, stderr = job.check(3)
    assert stderr.count("rank 1 failed (exit code 3); stopping the other workers.") == 3
    assert "restart 1/2" in stderr and "restart 2/2" in stderr
    assert "rank 1 failed and all 2 restart(s) are used up; giving up." in stderr
    # The last group's failure report shows the last attempt's error.
    assert stderr.rsplit("rank 1 failed with exit code 3", 1)[1].count("attempt 2") == 1
    assert restart_counts(tmp_path) == {(a, r): a for a in range(3) for r in range(2)}


def test_no_restart_by_default_and_counts_add_to_an_inherited_one(tmp_path):
    default, inherited = tmp_path / "default", tmp_path / "inherited"
    default.mkdir()
    inherited.mkdir()
    first = Job(launcher("-n", 2, LIGHT_WORKER, "fail", default))
    # A requeued batch job exports its own count; the launcher's restarts add to it.
    job = Job(
        launcher("-n", 2, "--max-restarts", 1, LIGHT_WORKER, "fail", inherited),
        DISTKERAS_RESTART_COUNT="4",
    )
    _, stderr = first.check(3)
    assert "restarting" not in stderr
    assert restart_counts(default) == {(0, 0): 0, (0, 1): 0}
    job.check(3)
    assert restart_counts(inherited) == {(4, 0): 4, (4, 1): 4, (5, 0): 5, (5, 1): 5}


def test_max_restarts_is_validated(tmp_path):
    start = time.monotonic()
    code, _, stderr = Job(launcher("--max-restarts", -1, LIGHT_WORKER, "fail", tmp_path)).result()
    assert code == 2 and "must be >= 0. Received: -1" in stderr
    assert time.monotonic() - start < 30
