"""The ``Communicator`` interface every backend implements, and the one-process stand-in.

Collectives work in place on tensors. ``async_op=True`` returns a :class:`Work` whose
``wait()`` completes the operation; the gradient reducer overlaps those with backward.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Work:
    """A pending collective; ``wait()`` blocks until the result is in the tensor."""

    def wait(self) -> None:
        return None


class Communicator(ABC):
    """Collectives over a fixed group of ``world_size`` processes.

    Example:
        >>> comm = distkeras.distributed.communicator()
        >>> comm.all_reduce(tensor)          # sum, in place, on every rank
    """

    backend: str = "none"
    rank: int = 0
    world_size: int = 1

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

    def shutdown(self) -> None:
        """Releases the backend's resources."""


class LocalCommunicator(Communicator):
    """World of one process: every collective is the identity."""

    backend = "none"

    def all_reduce(self, tensor, op="sum", async_op=False):
        return Work() if async_op else None

    def broadcast(self, tensor, src=0, async_op=False):
        return Work() if async_op else None

    def all_gather_object(self, obj):
        return [obj]

    def barrier(self):
        return None
