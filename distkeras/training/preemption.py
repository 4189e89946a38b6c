"""Stopping cleanly when the job is preempted: SIGTERM or SIGUSR1 (SLURM's ``--signal``).

During ``fit`` a signal only sets a flag. After the step in progress, every rank votes (the
vote rides along with the gradient all-reduce, so it costs no extra collective) and, once any
rank has been signalled, all ranks stop after the SAME step. Callbacks that can save the
training state (``BackupAndRestore``) write it, and ``fit`` raises :class:`TrainingPreempted`,
a ``SystemExit`` whose code (75, EX_TEMPFAIL) tells the launcher and the batch script "requeue
me". Run again, the same script resumes from that step with the same final weights.
"""

from __future__ import annotations

import signal
import threading

# sysexits.h EX_TEMPFAIL: "temporary failure; the user is invited to retry".
REQUEUE_EXIT_CODE = 75
_SIGNALS = tuple(
    s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s is not None
)


class TrainingPreempted(SystemExit):
    """Raised by ``fit`` after a preemption signal, once the training state is saved.

    A ``SystemExit``, so an uncaught one ends the script with exit code 75; catch it to do
    your own clean-up.
    """

    def __init__(self, epoch: int, step: int, saved: bool):
        super().__init__(REQUEUE_EXIT_CODE)
        self.epoch, self.step, self.saved = epoch, step, saved

    def __str__(self) -> str:
        where = f"epoch {self.epoch + 1}, after step {self.step}"
        if self.saved:
            return f"Training preempted at {where}; the state is saved, rerun to resume."
        return (
            f"Training preempted at {where}; nothing was saved (pass a BackupAndRestore "
            "callback to resume where it stopped)."
        )


class PreemptionGuard:
    """Installs the signal handlers for the duration of ``fit`` (main thread only)."""

    def __init__(self):
        self.requested = False
        self.signal_number: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> PreemptionGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        # Only a flag: the step in progress (and its collectives) must finish normally.
        self.requested = True
        self.signal_number = signum

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


class VoteReader:
    """Reads the ranks' summed stop vote after each step, the same way on every rank.

    On a GPU the vote is read one step late: reading this step's sum would stall the host
    every step, so it is copied to pinned memory behind the step's work and the previous
    step's copy (complete by now) decides. All ranks read the same step's sum, so they still
    stop after the same step. One reader serves one fit.
    """

    def __init__(self):
        self._host = None
        self._event = None

    def agreed(self, votes) -> bool:
        """``votes``: the 0-d sum over ranks for the step just done (any device)."""
        import torch

        if votes.device.type != "cuda":
            return bool(votes > 0)
        agreed = False
        if self._event is not None:
            self._event.synchronize()
            agreed = bool(self._host > 0)
        else:
            self._host = torch.zeros((), dtype=votes.dtype, pin_memory=True)
            self._event = torch.cuda.Event()
        self._host.copy_(votes, non_blocking=True)
        self._event.record()
        return agreed
