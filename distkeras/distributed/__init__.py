"""Who am I and how do we talk: rank, world size, collectives.

``fit`` initialises this on its own when the environment says the process was launched by
``distkeras-launch``, torchrun, mpiexec or srun; call :func:`init` to choose the backend.
"""

from __future__ import annotations

from distkeras.distributed.comm import Communicator, LocalCommunicator, Work

_COMMUNICATOR: Communicator | None = None


def is_initialized() -> bool:
    return _COMMUNICATOR is not None


def init(backend: str | None = None) -> Communicator:
    """Joins the process group described by the environment (idempotent)."""
    global _COMMUNICATOR
    if _COMMUNICATOR is None:
        _COMMUNICATOR = LocalCommunicator()
    return _COMMUNICATOR


def communicator() -> Communicator:
    """The communicator, initialising from the environment on first use."""
    return _COMMUNICATOR if _COMMUNICATOR is not None else init()


def rank() -> int:
    return communicator().rank


def world_size() -> int:
    return communicator().world_size


def local_rank() -> int:
    return 0


def is_chief() -> bool:
    return rank() == 0


def barrier() -> None:
    communicator().barrier()


__all__ = [
    "Communicator", "LocalCommunicator", "Work", "init", "is_initialized", "communicator",
    "rank", "world_size", "local_rank", "is_chief", "barrier",
]
