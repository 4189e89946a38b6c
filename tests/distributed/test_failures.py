"""Misconfigured or failing workers fail loudly on every rank, within seconds, never hang.

* Different sample counts per rank, and a model built differently on one rank: a clear
  ValueError on EVERY rank (the ranks stay in step, so the job can even continue).
* A rank that stops taking part: the others raise a timeout error after DISTKERAS_TIMEOUT
  seconds and the launcher ends the job with a non-zero exit code.
* A rank that dies mid-training: even without a launcher (srun, a hand-started job) the
  survivor raises within seconds instead of waiting in the all-reduce. (Launchers end the
  whole job on the first failure anyway: see tests/launcher/test_supervision.py.)
"""

import json
import time

import pytest

from tests.distributed import jobs

SLACK_S = 20  # process exit and teardown on a loaded 2-core machine


@pytest.fixture(scope="module", params=["failures_torch", "failures_mpi"])
def failed(request, tmp_path_factory):
    return jobs.job(tmp_path_factory, request.param)


def read_records(outdir) -> list[dict]:
    return [json.loads((outdir / f"failures_rank{r}.json").read_text()) for r in range(2)]


def test_uneven_dataset_sizes_raise_on_every_rank(failed):
    for record in read_records(failed.outdir):
        for call in ("fit", "evaluate", "predict"):
            message = record[f"uneven_{call}"]
            assert message is not None, f"{call}() accepted different data on each rank"
            assert "samples differs (rank 0: 12, rank 1: 13)" in message
            assert "full arrays" in message


def test_shape_mismatch_raises_on_every_rank_naming_the_layer(failed):
    for record in read_records(failed.outdir):
        message = record["mismatch_fit"]
        assert message is not None
        assert "layer 'mismatched' weight 'kernel' has shape (3, 4) on rank 0 but (3, 5) on " \
            "rank 1" in message  # fmt: skip
        # Both ranks raised at the same point and could still talk to each other.
        assert record["after_errors"] == [0, 1]


def test_stuck_worker_times_out_and_launcher_exits(failed):
    assert failed.returncode != 0
    assert "timed out after 2 s" in failed.stderr
    assert "DISTKERAS_TIMEOUT=2" in failed.stderr
    assert "distkeras-launch: rank 0 failed" in failed.stderr
    started = float((failed.outdir / "collective_start_rank0").read_text())
    waited = failed.ended - started
    # Honoured: not before the timeout, and nowhere near the 60 s default of these tests.
    assert 2.0 <= waited < 2.0 + SLACK_S, waited


def test_dead_worker_makes_the_survivor_fail_without_a_launcher(tmp_path):
    port = str(jobs.free_port())
    envs = [
        jobs.worker_env(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                        LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        for rank in range(2)
    ]  # fmt: skip
    procs = jobs.start_workers(jobs.SCRIPTS / "dies.py", [str(tmp_path)], envs)
    (code0, _, err0), (code1, _, _) = jobs.finish_workers(procs)
    ended = time.time()
    assert code1 == 3
    assert code0 == 1, err0[-3000:]
    assert "CollectiveError" in err0 and "another worker disconnected" in err0, err0[-3000:]
    died = float((tmp_path / "died_at").read_text())
    assert ended - died < SLACK_S
