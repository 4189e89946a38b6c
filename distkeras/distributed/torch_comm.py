"""Communicator over ``torch.distributed``: gloo on CPU, NCCL on CUDA, with a timeout.

A failed collective (a peer died, or the timeout passed) raises :class:`CollectiveError` /
:class:`CollectiveTimeoutError` naming the operation, and tears the process group down so
the process can exit normally instead of aborting on a half-finished operation.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime

import torch
import torch.distributed as dist

from distkeras.distributed.comm import (
    CollectiveError,
    CollectiveTimeoutError,
    Communicator,
    Work,
    check_op,
    timeout_message,
)

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
_TIMEOUT_WORDS = ("timed out", "timeout")
_PEER_GONE_WORDS = ("connection closed", "connection reset", "broken pipe", "peer")


class _TorchWork(Work):
    def __init__(self, comm: TorchCommunicator, work, what: str):
        self.comm = comm
        self.work = work
        self.what = what

    def wait(self) -> None:
        if self.work is None:
            return
        work, self.work = self.work, None
        try:
            work.wait()
        except RuntimeError as error:
            self.comm._failed(self.what, error)


class TorchCommunicator(Communicator):
    """Joins (or reuses) the default torch.distributed process group.

    Args:
        rank: this process's rank.
        world_size: number of processes.
        master_addr: host of rank 0's rendezvous store.
        master_port: its port.
        backend: "gloo", "nccl" or None (NCCL when CUDA is available, else gloo).
        timeout_s: seconds a collective (and the rendezvous) may wait for the others.
        device_id: the CUDA device of this process (NCCL only).

    Example:
        >>> comm = TorchCommunicator(rank=0, world_size=2, master_addr="127.0.0.1",
        ...                          master_port=29500)
    """

    def __init__(
        self,
        rank: int,
        world_size: int,
        master_addr: str | None,
        master_port: int | None,
        backend: str | None = None,
        timeout_s: float = 300.0,
        device_id: int | None = None,
    ):
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend not in ("gloo", "nccl"):
            raise ValueError(f"backend must be 'gloo' or 'nccl'. Received: backend={backend!r}")
        self.backend = backend
        self.timeout_s = float(timeout_s)
        self._broken: str | None = None
        if backend == "nccl" and device_id is not None:
            # Object collectives stage through the current device: one GPU per process.
            torch.cuda.set_device(device_id)
        if not dist.is_initialized():
            if not master_addr or master_port is None:
                raise ValueError(
                    "The torch backend needs a rendezvous address: set MASTER_ADDR and "
                    f"MASTER_PORT (received {master_addr!r}:{master_port!r}), launch with "
                    "distkeras-launch or torchrun, or use the MPI backend under mpiexec."
                )
            try:
                dist.init_process_group(
                    backend=backend,
                    init_method=f"tcp://{master_addr}:{int(master_port)}",
                    rank=rank,
                    world_size=world_size,
                    # A dead or stuck peer turns into an error on the survivors after this.
                    timeout=datetime.timedelta(seconds=self.timeout_s),
                )
            except RuntimeError as error:
                raise CollectiveError(
                    f"Rank {rank}: could not join the process group at "
                    f"{master_addr}:{master_port} with {world_size} workers within "
                    f"{self.timeout_s:g} s: {error}"
                ) from error
            # Leaving the group before interpreter teardown avoids an abort at exit when an
            # operation is still pending (e.g. the process fails mid-step).
            atexit.register(self.shutdown)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        # A failing rank leaves at once with its exit code (no graceful teardown that could
        # outlast its peers' failure), so the job's first failure is the real one.
        from distkeras.distributed import exits

        exits.install(self)

    # ------------------------------------------------------------------ error handling
    def _check_usable(self, what: str) -> None:
        if self._broken is not None:
            raise CollectiveError(
                f"Rank {self.rank}: cannot run {what}: the communicator failed earlier "
                f"({self._broken})."
            )

    def _failed(self, what: str, error: BaseException):
        text = str(error)
        lowered = text.lower()
        if any(word in lowered for word in _TIMEOUT_WORDS):
            message = timeout_message(what, self.rank, self.timeout_s)
            kind = CollectiveTimeoutError
        elif any(word in lowered for word in _PEER_GONE_WORDS):
            message = (
                f"Rank {self.rank}: {what} failed because another worker disconnected (it "
                "probably died: look for its error above)."
            )
            kind = CollectiveError
        else:
            message = f"Rank {self.rank}: {what} failed."
            kind = CollectiveError
        self._broken = f"{what}: {text.splitlines()[0] if text else type(error).__name__}"
        self.shutdown()
        raise kind(f"{message} Backend error: {text}") from error

    def _run(self, what: str, fn, *args, async_op: bool = False, **kwargs):
        self._check_usable(what)
        try:
            work = fn(*args, async_op=async_op, **kwargs) if async_op else fn(*args, **kwargs)
        except RuntimeError as error:
            self._failed(what, error)
        return _TorchWork(self, work, what) if async_op else None

    # ---------------------------------------------------------------------- collectives
    def all_reduce(self, tensor, op="sum", async_op=False):
        check_op(op)
        return self._run("all_reduce", dist.all_reduce, tensor, op=_OPS[op], async_op=async_op)

    def broadcast(self, tensor, src=0, async_op=False):
        return self._run("broadcast", dist.broadcast, tensor, src=src, async_op=async_op)

    def all_gather_object(self, obj):
        out = [None] * self.world_size
        self._run("all_gather_object", dist.all_gather_object, out, obj)
        return out

    def broadcast_object(self, obj, src=0):
        box = [obj]
        self._run("broadcast_object", dist.broadcast_object_list, box, src=src)
        return box[0]

    def barrier(self):
        self._run("barrier", dist.barrier)

    def shutdown(self):
        if dist.is_initialized():
            # Already failing: exiting matters more than a clean goodbye.
            with contextlib.suppress(RuntimeError):
                dist.destroy_process_group()
