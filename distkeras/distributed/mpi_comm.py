"""Communicator over MPI (mpi4py): zero-copy numpy views of CPU tensors, Iallreduce.

Measured on a 2-core machine with MPICH's shared-memory transport, a 2.8 MB all-reduce takes
0.58 ms against 3.7 ms with gloo, which is why MPI is the default CPU backend when available.
CUDA tensors go straight to a CUDA-aware MPI, else through pinned host buffers.

MPI has no timeouts of its own, so every operation here is non-blocking and completed by
polling ``Test`` against a deadline (``DISTKERAS_TIMEOUT``): a stuck peer raises
:class:`CollectiveTimeoutError` instead of hanging, naming the ranks that did not arrive and
where they are (``mpi_watch``). A side channel also tells the peers at once when a rank fails
or leaves, and a failing rank exits without ``MPI_Finalize`` (``exits``): no failure waits
for the timeout, and mpiexec ends the other ranks.
"""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
import torch

from distkeras.distributed.comm import (
    CollectiveError,
    CollectiveTimeoutError,
    Communicator,
    Work,
    check_op,
    describe_collective,
    timeout_message,
)

# Polls between clock reads and yields: MPICH's own MPI_Wait also spins and yields.
_POLLS_PER_CHECK = 256
# After spinning this long, a wait sleeps between checks: a slow or stuck peer (often on the
# same cores) then gets the CPU instead of this rank's busy loop.
_SPIN_S = 0.05
_NAP_S = 0.001


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ImportError(
            "The MPI backend needs mpi4py and an MPI library: pip install 'distkeras[mpi]' "
            "(mpi4py and mpich)."
        ) from err
    return MPI


def _cuda_aware(MPI) -> bool:
    query = getattr(MPI, "Query_cuda_support", None)  # MPI 4.1 / mpi4py 4
    try:
        return bool(query()) if query else False
    except Exception:
        return False


class _MPIWork(Work):
    def __init__(self, comm: MPICommunicator, request, ticket: tuple, finish=None):
        self.comm = comm
        self.request = request
        self.ticket = ticket
        self.finish = finish

    def wait(self) -> None:
        if self.request is None:
            return
        request, self.request = self.request, None
        self.comm._wait(request, self.ticket)
        if self.finish is not None:
            finish, self.finish = self.finish, None
            finish()


class MPICommunicator(Communicator):
    """Collectives on ``MPI.COMM_WORLD``.

    Args:
        timeout_s: seconds an operation may wait for the other ranks.

    Example:
        >>> comm = MPICommunicator()
        >>> comm.all_reduce(torch.ones(4))
    """

    backend = "mpi"

    def __init__(self, timeout_s: float = 300.0):
        MPI = _mpi()
        self.MPI = MPI
        self.world = MPI.COMM_WORLD
        self.rank = self.world.Get_rank()
        self.world_size = self.world.Get_size()
        self.timeout_s = float(timeout_s)
        self.cuda_aware = _cuda_aware(MPI)
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
        self._broken: str | None = None
        from distkeras.distributed import exits, mpi_watch

        self._watch = mpi_watch.Watcher(self) if self.world_size > 1 else None
        exits.install(self)

    # ------------------------------------------------------------------ waiting, errors
    def _wait(self, request, ticket: tuple) -> None:
        if request.Test():
            return
        start = time.monotonic()
        nap_after, deadline = start + _SPIN_S, start + self.timeout_s
        notices = self._watch.notices if self._watch is not None else ()
        polls = 0
        while not request.Test():
            polls += 1
            if polls % _POLLS_PER_CHECK == 0:
                if notices:
                    self._peer_gone(ticket)
                now = time.monotonic()
                if now > deadline:
                    self._timed_out(ticket)
                if now > nap_after:
                    time.sleep(_NAP_S)
                else:
                    os.sched_yield()

    def _peer_gone(self, ticket: tuple) -> None:
        """Raises if a peer that failed or left will never join the collective ``ticket``."""
        for notice in self._watch.notices:
            if notice["kind"] == "left" and notice["seq"] >= ticket[0]:
                continue  # it took part in this collective before leaving
            peer = notice["rank"]
            culprits = tuple(notice.get("culprits") or ()) or (peer,)
            if notice["kind"] == "left":
                why = (
                    f"rank {peer} ended after its collective "
                    f"{describe_collective(tuple(notice['last']))} (it exited or returned "
                    "early; every rank must run the same fit/evaluate/predict calls)"
                )
            elif notice.get("code") == 0:
                why = f"rank {peer} left fit early with {notice['text']}"
            else:
                why = f"rank {peer} failed: {notice['text']}"
            self._broken = f"{describe_collective(ticket)}: {why}"
            summary = f"rank {self.rank}'s {describe_collective(ticket)} cannot complete: {why}"
            raise CollectiveError(
                f"Rank {self.rank}: {describe_collective(ticket)} cannot complete because {why}.",
                culprits=culprits,
                summary=summary,
            )

    def _timed_out(self, ticket: tuple) -> None:
        what = describe_collective(ticket)
        self._broken = f"{what} timed out"
        message = timeout_message(what, self.rank, self.timeout_s)
        culprits: tuple = ()
        summary = f"rank {self.rank} timed out in {what} after {self.timeout_s:g} s"
        if self._watch is not None:
            from distkeras.distributed import hang

            answers = self._watch.ask_where(ticket)
            found, culprits = hang.diagnose(
                ticket, answers, self.rank, self.world_size, identities=self._watch.identities
            )
            message = f"{message} Diagnosis: {found}"
            summary = f"{summary}: {found}"
        raise CollectiveTimeoutError(message, culprits=culprits, summary=summary)

    def _check_usable(self, what: str) -> None:
        if self._broken is not None:
            raise CollectiveError(
                f"Rank {self.rank}: cannot run {what}: the communicator failed earlier "
                f"({self._broken})."
            )

    # ------------------------------------------------------------------ leaving (exits)
    def announce_failure(self, text: str, code: int, culprits: tuple = ()) -> None:
        """Tells every peer that this rank fails, so none waits for it."""
        if self._watch is not None:
            self._watch.tell_everyone(
                {"kind": "failed", "rank": self.rank, "text": text, "code": code,
                 "culprits": list(culprits), "last": self.last}
            )  # fmt: skip

    def close(self, failed: bool) -> None:
        """At exit: say which collective this rank reached, stop the side channel."""
        watch, self._watch = self._watch, None
        if watch is None:
            return
        if not failed:
            watch.tell_everyone({"kind": "left", "rank": self.rank, "seq": self.seq,
                                 "last": self.last})  # fmt: skip
        watch.close()

    def _done(self, work: _MPIWork, async_op: bool):
        if async_op:
            return work
        work.wait()
        return None

    # ---------------------------------------------------------------------- tensors
    def _host_view(self, tensor: torch.Tensor):
        """(buffer to communicate, function to copy the result back or None)."""
        if not tensor.is_contiguous():
            raise ValueError(
                "MPI collectives need contiguous tensors. Received a tensor with strides "
                f"{tensor.stride()} for shape {tuple(tensor.shape)}."
            )
        if tensor.device.type == "cpu":
            return tensor.numpy(), None
        if self.cuda_aware:
            return tensor, None  # CUDA-aware MPI reads device buffers (DLPack/CAI)
        staging = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        staging.copy_(tensor)

        def back():
            tensor.copy_(staging, non_blocking=True)

        return staging.numpy(), back

    def all_reduce(self, tensor, op="sum", async_op=False):
        check_op(op)
        self._check_usable("all_reduce")
        if tensor.dtype == torch.bfloat16:
            # numpy has no bfloat16: reduce in float32 and round back.
            wide = tensor.float()
            inner = self.all_reduce(wide, op=op, async_op=True)

            def finish():
                inner.wait()
                tensor.copy_(wide)

            return self._done(_MPIWork(self, _Completed(), inner.ticket, finish), async_op)
        buffer, back = self._host_view(tensor)
        ticket = self._track("all_reduce")
        request = self.world.Iallreduce(self.MPI.IN_PLACE, buffer, op=self._ops[op])
        return self._done(_MPIWork(self, request, ticket, back), async_op)

    def broadcast(self, tensor, src=0, async_op=False):
        self._check_usable("broadcast")
        if tensor.dtype == torch.bfloat16:
            return self.broadcast(tensor.view(torch.int16), src=src, async_op=async_op)
        buffer, back = self._host_view(tensor)
        ticket = self._track("broadcast")
        request = self.world.Ibcast(buffer, root=src)
        return self._done(_MPIWork(self, request, ticket, back), async_op)

    # ---------------------------------------------------------------------- objects
    def all_gather_object(self, obj):
        self._check_usable("all_gather_object")
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
        sizes = np.zeros(self.world_size, dtype=np.int64)
        mine = np.array([data.size], dtype=np.int64)
        ticket = self._track("all_gather_object")
        self._wait(self.world.Iallgather(mine, sizes), ticket)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        gathered = np.empty(int(sizes.sum()), dtype=np.uint8)
        request = self.world.Iallgatherv(
            data, [gathered, (sizes.tolist(), offsets.tolist()), self.MPI.BYTE]
        )
        self._wait(request, ticket)
        return [
            pickle.loads(gathered[start : start + size].tobytes())
            for start, size in zip(offsets.tolist(), sizes.tolist())
        ]

    def broadcast_object(self, obj, src=0):
        self._check_usable("broadcast_object")
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8) if self.rank == src else None
        size = np.array([data.size if data is not None else 0], dtype=np.int64)
        ticket = self._track("broadcast_object")
        self._wait(self.world.Ibcast(size, root=src), ticket)
        if data is None:
            data = np.empty(int(size[0]), dtype=np.uint8)
        else:
            data = data.copy()  # Ibcast wants a writable buffer on every rank
        self._wait(self.world.Ibcast(data, root=src), ticket)
        return obj if self.rank == src else pickle.loads(data.tobytes())

    def barrier(self):
        self._check_usable("barrier")
        self._wait(self.world.Ibarrier(), self._track("barrier"))

    def shutdown(self):
        # Stop listening (no departure notice: the process may well go on), forget the exit
        # hooks; MPI itself stays initialised until exit, as MPI requires.
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close(wait_s=0.0)
        from distkeras.distributed import exits

        exits.uninstall(self)


class _Completed:
    """A request that is already complete (the real one is waited on by ``finish``)."""

    @staticmethod
    def Test() -> bool:
        return True
