"""A Python session that uses distkeras.distributed.launch as a notebook would.

Run as `python notebook_session.py BACKEND WORKDIR` (BACKEND "default" or "torch"). It imports
torch first and runs a tensor op (as a notebook would have), defines its functions in
__main__ (so they travel by value), and prints one JSON object: for each scenario what
launch() returned or raised, how long it took and whether any worker process outlived it.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

import torch

torch.ones(2).sum()  # the session has used torch before launching

import numpy as np  # noqa: E402

import distkeras  # noqa: E402
from distkeras import distributed, layers  # noqa: E402

BACKEND = None if sys.argv[1] == "default" else sys.argv[1]
WORKDIR = Path(sys.argv[2])


def train(epochs):
    """Fits a tiny regression; returns what rank 0 saw."""
    distkeras.utils.set_random_seed(3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    model = distkeras.Sequential([distkeras.Input((4,)), layers.Dense(8, activation="tanh"),
                                  layers.Dense(1)])  # fmt: skip
    model.compile(optimizer=distkeras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
    weights = [w.tolist() for w in model.get_weights()]
    return {"rank": distributed.rank(), "world_size": distributed.world_size(),
            "backend": distributed.communicator().backend,
            "loss": history.history["loss"], "weights": weights}  # fmt: skip


def _joined(outdir):
    """Joins the process group and records this worker's pid."""
    distributed.init()
    (Path(outdir) / f"pid{distributed.rank()}").write_text(str(os.getpid()))
    distributed.barrier()
    return distributed.rank()


def _failing(outdir):
    """Records when this worker fails, so the session can time the reaction from there."""
    (Path(outdir) / "failing_at").write_text(repr(time.time()))


def raises(outdir):
    if _joined(outdir) == 1:
        _failing(outdir)
        raise ValueError("bad value on rank 1")
    distributed.barrier()  # rank 0 waits in a collective for the rank that failed


def killed(outdir):
    if _joined(outdir) == 1:
        _failing(outdir)
        os.kill(os.getpid(), signal.SIGKILL)
    distributed.barrier()


def exits(outdir):
    if _joined(outdir) == 1:
        _failing(outdir)
        sys.exit(3)
    distributed.barrier()


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def attempt(name, function):
    outdir = WORKDIR / name
    outdir.mkdir(parents=True)
    started = time.monotonic()
    record = {}
    try:
        record["result"] = distributed.launch(function, outdir, num_workers=2, backend=BACKEND)
    except distributed.WorkerError as error:
        record.update(
            error_type=type(error).__name__,
            rank=error.rank,
            exitcode=error.exitcode,
            message=str(error),
            cause=repr(error.__cause__),
        )
    record["seconds"] = time.monotonic() - started
    failing_at = outdir / "failing_at"
    if failing_at.exists():
        record["after_failure_s"] = time.time() - float(failing_at.read_text())
    pids = [int(p.read_text()) for p in outdir.glob("pid*")]
    record["workers_seen"] = len(pids)
    record["left_behind"] = [pid for pid in pids if running(pid)]
    return record


def main():
    report = {}
    started = time.monotonic()
    report["trained"] = distributed.launch(train, 2, num_workers=2, backend=BACKEND)
    report["trained_seconds"] = time.monotonic() - started
    report["one_process"] = train(2)
    scenarios = [("raises", raises), ("killed", killed)]
    if BACKEND is None:  # sys.exit is where MPI used to hang (MPI_Finalize); gloo is covered
        scenarios.append(("exits", exits))
    for name, function in scenarios:
        report[name] = attempt(name, function)
    print("REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
