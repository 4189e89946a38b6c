"""Starts a SLURM step's tasks the way srun does, for tests: `fake_srun.py N COMMAND...`.

Each of the N tasks gets srun's variables (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
SLURM_STEP_ID, SLURM_JOB_ID, SLURM_STEP_NODELIST...) on one node, "localhost". The job id is
chosen so that the rendezvous port distkeras derives from it (10000 + id % 20000) is free.

Like srun with its defaults (no --kill-on-bad-exit, --wait=0) it kills no task when another
one fails: it waits for every task, so the step ends only if the tasks end by themselves.
SIGTERM and SIGINT are forwarded to every task. A task that a signal ended is reported on
stderr as srun reports it ("srun: error: localhost: task 1: Killed"). The exit code is the
highest of the tasks' (128 + N for a task a signal ended), as srun's.
"""

import os
import random
import signal
import socket
import subprocess
import sys


def free_job_id() -> int:
    """A job id whose derived rendezvous port (10000 + id % 20000) is free right now."""
    for _ in range(100):
        port = random.randrange(10000, 30000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return 4_000_000 + (port - 10000)  # 4_000_000 % 20000 == 0
    raise RuntimeError("no free port in [10000, 30000)")


def main() -> int:
    ntasks, command = int(sys.argv[1]), sys.argv[2:]
    job_id = str(free_job_id())
    tasks = []
    for rank in range(ntasks):
        env = {
            **os.environ,
            "SLURM_JOB_ID": job_id,
            "SLURM_STEP_ID": "0",
            "SLURM_PROCID": str(rank),
            "SLURM_LOCALID": str(rank),
            "SLURM_NTASKS": str(ntasks),
            "SLURM_NODEID": "0",
            "SLURM_NNODES": "1",
            "SLURM_STEP_NODELIST": "localhost",
            "SLURM_STEP_TASKS_PER_NODE": str(ntasks),
        }
        tasks.append(subprocess.Popen(command, env=env))

    def forward(signum, frame):
        for task in tasks:
            if task.poll() is None:
                task.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [task.wait() for task in tasks]
    for rank, code in enumerate(codes):
        if code < 0:
            name = "Killed" if code == -signal.SIGKILL else signal.Signals(-code).name
            print(f"srun: error: localhost: task {rank}: {name}", file=sys.stderr, flush=True)
    return max(128 - code if code < 0 else code for code in codes)


if __name__ == "__main__":
    sys.exit(main())
