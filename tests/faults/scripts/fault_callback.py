"""The fault-injecting callback the fault-test jobs share (imported from their own folder).

At (FAULT_EPOCH, FAULT_BATCH) it SIGKILLs ``--kill-rank`` on the first attempt, or has rank 0
write its pid to ``--signal-ready`` and wait for the test's SIGTERM/SIGUSR1, once per OUTDIR.
"""

import os
import signal
import time
from pathlib import Path

from distkeras import callbacks, distributed

FAULT_EPOCH, FAULT_BATCH = 1, 5


class Fault(callbacks.Callback):
    """Injects the requested fault at (FAULT_EPOCH, FAULT_BATCH); counts the batches trained.

    ``kill_once``: also leave a marker in ``outdir`` so a rerun that starts again from restart
    count 0 (a fresh launch resuming from the backup) is not killed a second time.
    """

    def __init__(self, args, outdir: Path, kill_once: bool = False):
        super().__init__()
        self.args, self.outdir, self.kill_once = args, outdir, kill_once
        self.epoch = 0
        self.batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if (self.epoch, batch) != (FAULT_EPOCH, FAULT_BATCH):
            return
        rank = distributed.rank()
        if rank == self.args.kill_rank and distributed.restart_count() == 0:
            marker = self.outdir / "killed"
            if not self.kill_once:
                os.kill(os.getpid(), signal.SIGKILL)
            elif not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        once = self.outdir / "signalled"
        if self.args.signal_ready and rank == 0 and not once.exists():
            once.touch()
            wait_for_signal(Path(self.args.signal_ready))


def wait_for_signal(ready: Path) -> None:
    """Writes our pid to ``ready``, then waits (60 s at most) for a SIGTERM or SIGUSR1."""
    # Chain onto fit's handlers: they must still see the signal, we only want to know.
    arrived = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}

    def note(signum, frame):
        arrived.append(signum)
        if callable(previous[signum]):
            previous[signum](signum, frame)

    for signum in previous:
        signal.signal(signum, note)
    ready.with_suffix(".tmp").write_text(str(os.getpid()))
    os.replace(ready.with_suffix(".tmp"), ready)
    deadline = time.monotonic() + 60
    while not arrived and time.monotonic() < deadline:
        time.sleep(0.005)
    for signum, handler in previous.items():
        signal.signal(signum, handler)
