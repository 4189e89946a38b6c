"""Preemption: SIGTERM/SIGUSR1 -> every rank stops after the same step, rank 0 backs up, the job
exits 75 ("requeue me"), and running the same command again resumes at that step.

Real processes running tests/faults/scripts/tiny_job.py; each resumed run must end with the
weights and the history (for the epochs it ran) of an uninterrupted run of the same script.
The job tells the test when to send the signal by writing a file in epoch 2 and waiting there.
"""

import json
import signal

import pytest
import torch

from distkeras.distributed import LocalCommunicator
from distkeras.distributed.reducer import GradientReducer
from distkeras.training import preemption
from launcher import local
from tests.faults import (
    EPOCHS,
    LIGHT_WORKER,
    STEPS_PER_EPOCH,
    TINY_JOB,
    Job,
    assert_same_history,
    assert_same_weights,
    launcher,
    outputs,
    reference,
    start_reference,
    tiny_job,
)

# tests.faults' reference runs are cached per process: share them with test_restarts.
pytestmark = pytest.mark.xdist_group("tiny_job_references")


def _check_resumes(outdir, start_rerun, expected: dict) -> None:
    """The backup is mid-epoch 2; the job `start_rerun()` starts completes from there like an
    uninterrupted run. It starts only after the backup is read: once done, it removes it."""
    position = json.loads((outdir / "backup" / "training_metadata.json").read_text())
    assert position["epoch"] == 1 and position["batch"] > 0
    done = STEPS_PER_EPOCH + position["batch"] + 1  # steps trained before the signal
    start_rerun().check(0)
    got = outputs(outdir)
    assert got["batches"] == EPOCHS * STEPS_PER_EPOCH - done
    assert_same_weights(got["weights"], expected["weights"])
    assert_same_history(got["history"], expected["history"], last_epochs=EPOCHS - 1)


def test_sigterm_to_the_launcher_exits_75_and_the_rerun_resumes(tmp_path):
    start_reference(workers=2)
    ready = tmp_path / "ready"
    job = tiny_job(tmp_path, "--signal-ready", ready, workers=2)
    job.signal_when(ready, signal.SIGTERM)
    _, stderr = job.check(preemption.REQUEUE_EXIT_CODE)
    assert "received SIGTERM; forwarding it to the workers." in stderr
    assert "failed" not in stderr  # a requeue is no failure: no failure report
    assert "Training preempted at epoch 2" in stderr and "the state is saved" in stderr
    assert (tmp_path / "backup" / "backup.pt").is_file()
    expected = reference(workers=2)
    _check_resumes(
        tmp_path, lambda: tiny_job(tmp_path, "--signal-ready", ready, workers=2), expected
    )


def test_sigusr1_to_a_single_process_exits_75_and_the_rerun_resumes(tmp_path):
    start_reference(workers=None)
    ready = tmp_path / "ready"
    job = tiny_job(tmp_path, "--signal-ready", ready)
    job.signal_when(ready, signal.SIGUSR1)
    job.check(preemption.REQUEUE_EXIT_CODE)
    position = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    # One process: it stops after the very step during which the signal arrived.
    assert position == {"epoch": 1, "batch": 5}
    expected = reference(workers=None)
    _check_resumes(tmp_path, lambda: tiny_job(tmp_path), expected)


@pytest.mark.parametrize("backend", ["mpi", "torch"])
@pytest.mark.parametrize("step", [None, "guide", "every-other"])
def test_a_signal_to_one_rank_stops_all_after_the_same_step(tmp_path, backend, step):
    # Only rank 0 is signalled, while it is in on_train_batch_end of epoch 2's step 5. Rank 1
    # learns it from the vote in the next step's gradient all-reduce (the built-in step, or
    # a model's own train_step), or, after a step that reduced no gradients, from a vote of
    # its own. Were it not to stop after the same step, it would wait in the next all-reduce.
    custom = ["--custom-step", step] if step else []
    if step != "every-other":  # its batch counter is not part of the backup
        start_reference(2, *custom)
    ready = tmp_path / "ready"
    job = launcher("-n", 2, "--backend", backend, TINY_JOB, tmp_path, "--signal-ready", ready)
    job = Job([*job, *custom])
    job.signal_when(ready, signal.SIGUSR1, to_writer=True)
    _, stderr = job.check(preemption.REQUEUE_EXIT_CODE)
    assert "failed" not in stderr
    position = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    # every-other: step 5 (the 26th call) trained nothing, so it voted at once.
    assert position == {"epoch": 1, "batch": 5 if step == "every-other" else 6}
    rerun = [*launcher("-n", 2, "--backend", backend, TINY_JOB, tmp_path), *custom]
    if step == "every-other":
        Job(rerun).check(0)
        done = STEPS_PER_EPOCH + position["batch"] + 1
        assert outputs(tmp_path)["batches"] == EPOCHS * STEPS_PER_EPOCH - done
    else:  # the rerun ends as the uninterrupted run of the same model on 2 workers
        expected = reference(2, *custom)
        _check_resumes(tmp_path, lambda: Job(rerun), expected)


def test_a_worker_exiting_75_is_not_a_failure(tmp_path):
    # Rank 0 exits 75 at once; rank 1 never ends by itself and ignores SIGTERM: after the
    # grace period it is killed, and the launcher asks for a requeue, without restarting.
    command = launcher("-n", 2, "--max-restarts", 2, "--grace-period", 1, LIGHT_WORKER)
    job = Job([*command, "requeue", tmp_path])
    _, stderr = job.check(75)
    assert "failed" not in stderr and "restarting" not in stderr
    assert "the workers were preempted and exited 75" in stderr
    assert sorted(p.name for p in tmp_path.glob("attempt*")) == ["attempt0_rank0", "attempt0_rank1"]


def test_sigusr1_is_forwarded_without_stopping_the_workers(tmp_path):
    job = Job(launcher("-n", 2, LIGHT_WORKER, "usr1", tmp_path))
    job.wait_for(tmp_path / "attempt0_rank1")
    job.signal_when(tmp_path / "attempt0_rank0", signal.SIGUSR1)  # both are listening now
    job.check(75)
    assert not list(tmp_path.glob("term*"))  # no SIGTERM from the launcher


def test_requeue_exit_code_is_shared():
    assert local.REQUEUE_EXIT_CODE == preemption.REQUEUE_EXIT_CODE == 75
    stopped = preemption.TrainingPreempted(epoch=1, step=7, saved=True)
    assert isinstance(stopped, SystemExit) and stopped.code == 75
    assert str(stopped) == (
        "Training preempted at epoch 2, after step 7; the state is saved, rerun to resume."
    )


class _PeerVotes(LocalCommunicator):
    """A stand-in for a second rank that sends zero gradients and the votes in `peer`."""

    def __init__(self, peer: list[float]):
        super().__init__()
        self.peer, self.last_bucket = peer, None

    def all_reduce(self, tensor, op="sum", async_op=False):
        if tensor is self.last_bucket:
            tensor[-1] += self.peer.pop(0)
        return super().all_reduce(tensor, op, async_op)


def test_the_vote_rides_in_the_last_bucket_without_touching_gradients():
    params = [torch.nn.Parameter(torch.arange(n, dtype=torch.float32)) for n in (3, 5, 2)]
    comm = _PeerVotes(peer=[0.0, 1.0, 0.0])
    reducer = GradientReducer(params, comm, bucket_bytes=8, first_bucket_bytes=8)
    comm.last_bucket = reducer.buckets[-1].wire
    assert len(reducer.buckets) > 1
    seen = []
    for mine in (1.0, 0.0, 0.0):  # this rank votes first, then the peer, then nobody
        reducer.prepare(vote=mine)
        sum((k + 1) * p.square().sum() for k, p in enumerate(params)).backward()
        reducer.finish()
        for k, p in enumerate(params):
            torch.testing.assert_close(p.grad, 2 * (k + 1) * p.detach())
            p.grad = None
        seen.append(float(reducer.votes()))
    reducer.close()
    assert seen == [1.0, 1.0, 0.0]
