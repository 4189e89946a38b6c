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
    """


class CollectiveTimeoutError(CollectiveError, TimeoutError):
    """A collective waited longer than the timeout for the other workers."""


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
