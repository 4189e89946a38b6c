"""Who am I and how do we talk: rank, world size, collectives.

``fit`` initialises this on its own when the environment says the process was launched by
``distkeras-launch``, torchrun, mpiexec or srun; call :func:`init` to choose the backend
yourself. A plain ``python train.py`` is a world of one and needs nothing.

Example:
    >>> from distkeras import distributed
    >>> distributed.init()              # optional: fit() does it when launched
    >>> if distributed.is_chief():
    ...     print("world of", distributed.world_size())
"""

from __future__ import annotations

import os

from distkeras.distributed import env
from distkeras.distributed.comm import (
    CollectiveError,
    CollectiveTimeoutError,
    Communicator,
    LocalCommunicator,
    Work,
    default_timeout,
)
from distkeras.distributed.launch import WorkerError, launch

_COMMUNICATOR: Communicator | None = None
_ENV: env.DistEnv | None = None

_BACKEND_ALIASES = {"torch": "torch", "gloo": "torch", "nccl": "torch", "mpi": "mpi"}


def _detected() -> env.DistEnv:
    global _ENV
    if _ENV is None:
        _ENV = env.detect()
    return _ENV


def is_initialized() -> bool:
    return _COMMUNICATOR is not None


_GRADIENT_OPTIONS: dict = {}


def configure_gradients(compression: str | None = None, bucket_mb: float | None = None) -> None:
    """How fit all-reduces gradients on several workers (call before fit).

    Args:
        compression: None, "fp16" or "bf16": gradients travel in that dtype (half the bytes;
            rounding error of that dtype). Default from ``DISTKERAS_GRAD_COMPRESSION``.
        bucket_mb: target size of a gradient bucket in MB (default 25, or
            ``DISTKERAS_BUCKET_MB``): smaller buckets start communicating earlier.

    Example:
        >>> distkeras.distributed.configure_gradients(compression="bf16")
    """
    if compression not in (None, "none", "fp16", "bf16"):
        raise ValueError(
            f'compression must be None, "fp16" or "bf16". Received: compression={compression!r}'
        )
    if bucket_mb is not None and not bucket_mb > 0:
        raise ValueError(f"bucket_mb must be positive. Received: bucket_mb={bucket_mb!r}")
    _GRADIENT_OPTIONS.clear()
    if compression not in (None, "none"):
        _GRADIENT_OPTIONS["compression"] = compression
    if bucket_mb is not None:
        _GRADIENT_OPTIONS["bucket_bytes"] = int(bucket_mb * (1 << 20))


def gradient_options() -> dict:
    """The reducer's options: configure_gradients() first, then the environment."""
    options = {}
    env_compression = os.environ.get("DISTKERAS_GRAD_COMPRESSION")
    if env_compression and env_compression != "none":
        options["compression"] = env_compression
    env_bucket = os.environ.get("DISTKERAS_BUCKET_MB")
    if env_bucket:
        options["bucket_bytes"] = int(float(env_bucket) * (1 << 20))
    options.update(_GRADIENT_OPTIONS)
    return options


def init(backend: str | None = None, timeout_s: float | None = None) -> Communicator:
    """Joins the process group the environment describes (a no-op when already joined).

    Args:
        backend: "torch" (gloo on CPU, NCCL on CUDA), "gloo", "nccl" or "mpi". Default: what
            the launcher chose, MPI under mpiexec, else torch.
        timeout_s: seconds a collective may wait for a peer before failing (default 300, or
            ``DISTKERAS_TIMEOUT``).
    """
    global _COMMUNICATOR
    if _COMMUNICATOR is not None:
        return _COMMUNICATOR
    info = _detected()
    if not info.is_distributed:
        _COMMUNICATOR = LocalCommunicator()
        return _COMMUNICATOR
    requested = backend or info.backend or "torch"
    if requested not in _BACKEND_ALIASES:
        raise ValueError(
            f"Unknown distributed backend. Expected one of {sorted(_BACKEND_ALIASES)}. "
            f"Received: backend={requested!r}"
        )
    timeout_s = float(timeout_s) if timeout_s is not None else default_timeout()
    if _BACKEND_ALIASES[requested] == "mpi":
        from distkeras.distributed.mpi_comm import MPICommunicator

        comm = MPICommunicator(timeout_s=timeout_s)
        if (comm.rank, comm.world_size) != (info.rank, info.world_size):
            raise RuntimeError(
                f"MPI reports rank {comm.rank} of {comm.world_size} but the environment says "
                f"{info.rank} of {info.world_size}: start MPI workers with mpiexec (or "
                "distkeras-launch --backend mpi)."
            )
    else:
        from distkeras import backend as backend_module
        from distkeras.distributed.torch_comm import TorchCommunicator

        device = backend_module.get_device()
        torch_backend = (
            requested
            if requested in ("gloo", "nccl")
            else ("nccl" if device.type == "cuda" else "gloo")
        )
        comm = TorchCommunicator(
            info.rank,
            info.world_size,
            info.master_addr,
            info.master_port,
            backend=torch_backend,
            timeout_s=timeout_s,
            device_id=device.index if device.type == "cuda" else None,
        )
    _COMMUNICATOR = comm
    return comm


def communicator() -> Communicator:
    """The communicator, initialising from the environment on first use."""
    return _COMMUNICATOR if _COMMUNICATOR is not None else init()


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return communicator().rank if _COMMUNICATOR is not None else _detected().rank


def world_size() -> int:
    """Number of processes in the job (1 when not distributed)."""
    return communicator().world_size if _COMMUNICATOR is not None else _detected().world_size


def local_rank() -> int:
    """This process's index on its machine (chooses the GPU)."""
    return _detected().local_rank


def is_chief() -> bool:
    """True on rank 0: the process that prints, logs and writes files."""
    return rank() == 0


def barrier() -> None:
    """Waits until every process gets here."""
    communicator().barrier()


def restart_count() -> int:
    """How many times the launcher restarted this job (0 on the first run)."""
    return _detected().restart_count


def shutdown() -> None:
    """Leaves the process group (at exit, or to init again with another backend)."""
    global _COMMUNICATOR
    if _COMMUNICATOR is not None:
        _COMMUNICATOR.shutdown()
        _COMMUNICATOR = None


__all__ = [
    "CollectiveError",
    "CollectiveTimeoutError",
    "Communicator",
    "LocalCommunicator",
    "Work",
    "init",
    "is_initialized",
    "communicator",
    "rank",
    "world_size",
    "local_rank",
    "is_chief",
    "barrier",
    "restart_count",
    "launch",
    "WorkerError",
    "shutdown",
    "configure_gradients",
    "gradient_options",
]
