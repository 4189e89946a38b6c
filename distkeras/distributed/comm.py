"""The ``Communicator`` interface every backend implements, and the one-process stand-in.

Collectives work in place on tensors. ``async_op=True`` returns a :class:`Work` whose
``wait()`` completes the operation; the gradient reducer overlaps those with backward.

Every collective has a timeout (``DISTKERAS_TIMEOUT`` seconds, default 300): a worker that
died or is stuck makes the others raise :class:`CollectiveTimeoutError` or
:class:`CollectiveError` instead of waiting forever.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

import torch

DEFAULT_TIMEOUT_S = 300.0
TIMEOUT_ENV = "DISTKERAS_TIMEOUT"
OPS = ("sum", "max", "min")


def default_timeout() -> float:
    """``DISTKERAS_TIMEOUT`` in seconds, else 300."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{TIMEOUT_ENV} must be a number of seconds. Received: {TIMEOUT_ENV}={raw!r}"
        ) from None
    if value <= 0:
        raise ValueError(f"{TIMEOUT_ENV} must be positive. Received: {TIMEOUT_ENV}={raw!r}")
    return value


class CollectiveError(RuntimeError):
    """A collective failed: another worker died, or the workers called different collectives.

    The communicator is unusable afterwards; the process should exit (the launcher then
    stops the other workers).

    Attributes:
        culprits: The ranks whose failure, departure or delay caused this error, when known
            (the launcher then reports them instead of the rank that raised).
        summary: What went wrong in one line, without the advice.
    """

    def __init__(self, message: str, culprits: tuple[int, ...] = (), summary: str = ""):
        super().__init__(message)
        self.culprits = tuple(culprits)
        self.summary = summary or message  # one line for the launcher's report


class CollectiveTimeoutError(CollectiveError, TimeoutError):
    """A collective waited longer than the timeout for the other workers."""


class Position:
    """Where the training loop is; fit updates it every step, collectives record it.

    Two attribute writes per step: no host sync, nothing else on the per-step path.
    """

    __slots__ = ("epoch", "step")

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.step: int | None = None


POSITION = Position()


def describe_collective(ticket: tuple) -> str:
    """'all_reduce #12 (epoch 0, step 2)' for a ``(seq, op, epoch, step)`` ticket: a collective
    by its per-rank sequence number (the same on every rank for the same call)."""
    seq, what, epoch, step = ticket
    if not seq:
        return "none yet"
    if epoch is None:
        where = ""
    elif step is None:
        where = f" (epoch {epoch}, after its steps)"
    else:
        where = f" (epoch {epoch}, step {step})"
    return f"{what} #{seq}{where}"


# A line a worker writes to stderr, under distkeras-launch only, to say that ranks other than
# itself caused its failure; the launcher's failure report then names them (launcher/streams.py
# repeats it: the launcher imports nothing from distkeras).
BLAME_MARKER = "\x1edistkeras-blame"


def timeout_message(what: str, rank: int, timeout_s: float) -> str:
    return (
        f"Rank {rank}: {what} timed out after {timeout_s:g} s waiting for the other workers "
        f"({TIMEOUT_ENV}={timeout_s:g}). Another worker is stuck, has died, or called a "
        "different collective (every worker must run the same fit/evaluate/predict calls). "
        f"Set {TIMEOUT_ENV} to a larger number of seconds if a step legitimately takes longer."
    )


def check_op(op: str) -> None:
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}. Received: op={op!r}")


class Work:
    """A pending collective; ``wait()`` blocks until the result is in the tensor."""

    def wait(self) -> None:
        return None


class Communicator(ABC):
    """Collectives over a fixed group of ``world_size`` processes.

    Every rank must call the same collectives in the same order.

    Example:
        >>> comm = distkeras.distributed.communicator()
        >>> comm.all_reduce(tensor)          # sum, in place, on every rank
    """

    backend: str = "none"
    rank: int = 0
    world_size: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Collectives this rank has started, and the last one as (seq, op, epoch, step): what a
    # hang diagnosis compares across ranks.
    seq: int = 0
    last: tuple = (0, None, None, None)

    def _track(self, what: str) -> tuple:
        """Counts a collective this rank starts; returns its (seq, op, epoch, step)."""
        self.seq += 1
        self.last = (self.seq, what, POSITION.epoch, POSITION.step)
        return self.last

    @abstractmethod
    def all_reduce(self, tensor: torch.Tensor, op: str = "sum", async_op: bool = False):
        """Reduces ``tensor`` across ranks in place (op: "sum", "max", "min")."""

    @abstractmethod
    def broadcast(self, tensor: torch.Tensor, src: int = 0, async_op: bool = False):
        """Copies ``src``'s tensor into every rank's tensor, in place."""

    @abstractmethod
    def all_gather_object(self, obj) -> list:
        """Every rank's picklable ``obj``, in rank order, on every rank."""

    def broadcast_object(self, obj, src: int = 0):
        """``src``'s picklable object on every rank."""
        return self.all_gather_object(obj)[src]

    @abstractmethod
    def barrier(self) -> None:
        """Returns once every rank has entered it."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Releases the backend's resources."""


class LocalCommunicator(Communicator):
    """World of one process: every collective is the identity."""

    backend = "none"

    def all_reduce(self, tensor, op="sum", async_op=False):
        check_op(op)
        return Work() if async_op else None

    def broadcast(self, tensor, src=0, async_op=False):
        return Work() if async_op else None

    def all_gather_object(self, obj):
        return [obj]

    def barrier(self):
        return None
