"""The launcher's report blames the rank that caused a failure, not the rank that raised.

A worker that fails because of other ranks (they failed, left, or never arrived at a
collective) writes a blame line (distkeras.distributed.comm.BLAME_MARKER) before it exits.
Workers here import no torch: rank 0 writes that line and exits 1, rank 1 (the culprit)
prints a stack report, or exits 3 by itself just after rank 0 (it waits for a file rank 0
writes as it exits, so the order does not depend on how loaded the machine is). Local workers
and the mpiexec relays alike.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distkeras.distributed.comm import BLAME_MARKER

REPO = Path(__file__).resolve().parents[2]

WORKER = r"""
import os, signal, sys, time
rank, mode, rank0_done = int(os.environ["RANK"]), sys.argv[1], sys.argv[2]
if rank == 1:
    if mode == "stuck":
        print("distkeras: rank 1 has not reached all_reduce #9 (epoch 0, step 2), which rank 0 "
              "waits in; its stack:\n  File \"job.py\", line 5, in on_train_batch_begin\n"
              "    time.sleep(60)", file=sys.stderr, flush=True)
        print("noise after the report", file=sys.stderr, flush=True)
        time.sleep(60)
    # Fails by itself just after rank 0 reported it (a race the MPI backend can have).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while not os.path.exists(rank0_done):
        time.sleep(0.05)
    time.sleep(0.3)
    print("culprit error text", file=sys.stderr, flush=True)
    sys.exit(3)
time.sleep(0.5)
print("rank 0's own traceback", file=sys.stderr, flush=True)
os.write(2, b"MARKER rank=0 culprits=1 rank 0 timed out in all_reduce #9: rank 1 did not arrive\n")
open(rank0_done, "w").close()
sys.exit(1)
""".replace("MARKER", BLAME_MARKER.encode("unicode_escape").decode())


# Under mpiexec the culprit cannot end by itself after rank 0: mpiexec kills it first.
@pytest.mark.parametrize(
    ("mode", "backend"), [("stuck", "torch"), ("stuck", "mpi"), ("failed", "torch")]
)
def test_the_report_names_the_culprit_and_hides_the_marker(tmp_path, backend, mode):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A stuck culprit is killed after the grace period; one that ends by itself must do so
    # well inside it.
    grace = "1" if mode == "stuck" else "10"
    done = tmp_path / "rank0-done"
    command = [sys.executable, "-m", "distkeras_launcher", "-n", "2", "--backend", backend,
               "--grace-period", grace, str(script), mode, str(done)]  # fmt: skip
    start = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert time.monotonic() - start < 20
    closing = out.stderr[out.stderr.index("distkeras-launch: ") :]
    assert "distkeras-blame" not in out.stderr + out.stdout  # for the launcher only
    assert "(rank 0 stopped because rank 0 timed out in all_reduce #9: rank 1 did not " in closing
    if mode == "stuck":
        assert out.returncode == 1, out.stderr  # rank 1 was killed by us: rank 0's code
        assert "distkeras-launch: rank 1 is to blame" in closing
        report = closing[closing.index("Where it was when asked:") :]
        assert "in on_train_batch_begin" in report and "time.sleep(60)" in report
        assert "noise after the report" not in report
    else:
        assert out.returncode == 3, out.stderr  # the culprit ended by itself: its code
        assert "distkeras-launch: rank 1 failed with exit code 3" in closing
        assert "culprit error text" in closing
