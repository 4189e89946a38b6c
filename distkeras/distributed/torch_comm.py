"""Communicator over ``torch.distributed``: gloo on CPU, NCCL on CUDA, with a timeout.

A failed collective (a peer died, or the timeout passed) raises :class:`CollectiveError` /
:class:`CollectiveTimeoutError` naming the operation, and tears the process group down so
the process can exit normally instead of aborting on a half-finished operation.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import os
import socket
import sys

import torch
import torch.distributed as dist

from distkeras.distributed import env, netif
from distkeras.distributed.comm import (
    CollectiveError,
    CollectiveTimeoutError,
    Communicator,
    Work,
    check_op,
    describe_collective,
    timeout_message,
)

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
_TIMEOUT_WORDS = ("timed out", "timeout")
_STORE = -1  # the rendezvous store's key among the probed ranks
_ZERO = datetime.timedelta(0)
_AGENT_STORE = "TORCHELASTIC_USE_AGENT_STORE"  # torchrun's agent hosts MASTER_ADDR's store
_PEER_GONE_WORDS = ("connection closed", "connection reset", "broken pipe", "peer")


class _TorchWork(Work):
    def __init__(self, comm: TorchCommunicator, work, what: str, ticket: tuple | None = None):
        self.comm = comm
        self.work = work
        self.what = what
        self.ticket = ticket

    def wait(self) -> None:
        if self.work is None:
            return
        work, self.work = self.work, None
        try:
            work.wait()
        except RuntimeError as error:
            self.comm._failed(self.what, error, self.ticket)


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
            self._join(rank, world_size, master_addr, int(master_port))
            # Leaving the group before interpreter teardown avoids an abort at exit when an
            # operation is still pending (e.g. the process fails mid-step).
            atexit.register(self.shutdown)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        # A failing rank leaves at once with its exit code (no graceful teardown that could
        # outlast its peers' failure), so the job's first failure is the real one.
        from distkeras.distributed import exits

        exits.install(self)
        self._watch = None
        if getattr(self, "_store", None) is not None and self.world_size > 1:
            # Hang diagnosis: who did not arrive at a collective that timed out (store_watch).
            from distkeras.distributed.store_watch import StoreWatcher

            self._watch = StoreWatcher(self, self._store, self._prefix.replace("/node/", "/watch/"))

    # ----------------------------------------------------------------------- rendezvous
    def _join(self, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        """Picks the interface, meets the others at the store, then builds the group."""
        info = env.detect()
        route, said = netif.configure(master_addr, spans_nodes=info.local_world_size < world_size)
        self._me = {"host": socket.gethostname(), "address": route.address,
                    "interface": route.interface,
                    "gloo": os.environ.get(netif.GLOO_IFNAME)}  # fmt: skip
        if netif.verbose():
            print(f"distkeras: rank {rank} on {self._me['host']}: {said}", file=sys.stderr)
        timeout = datetime.timedelta(seconds=self.timeout_s)
        self._beacon = netif.Beacon()
        self._me["beacon"] = self._beacon.port
        # One key space per attempt: a torchrun agent's store outlives a restart.
        self._prefix = f"distkeras/{info.restart_count}/node/"
        store = None
        # Under torchrun the agent may host the store; otherwise rank 0 does.
        is_host = rank == 0 and os.environ.get(_AGENT_STORE) != "True"
        try:
            store = dist.TCPStore(
                master_addr,
                master_port,
                world_size,
                is_master=is_host,
                timeout=timeout,
                wait_for_workers=False,
                multi_tenant=True,
            )
            store.set(f"{self._prefix}{rank}", json.dumps(self._me))
            # Everyone registers first (as long as the timeout allows, like the store's own
            # wait for workers), so a failure below can say where each worker is.
            # The store's host waits a little longer, so that when workers are missing the
            # others still find the store up to read who came.
            grace = datetime.timedelta(seconds=min(5.0, self.timeout_s)) if is_host else _ZERO
            store.wait([f"{self._prefix}{r}" for r in range(world_size)], timeout + grace)
            dist.init_process_group(
                backend=self.backend,
                store=store,
                rank=rank,
                world_size=world_size,
                # A dead or stuck peer turns into an error on the survivors after this.
                timeout=timeout,
            )
        except (RuntimeError, ValueError) as error:
            self._beacon.close()
            raise CollectiveError(
                f"Rank {rank}: could not join the process group at {master_addr}:{master_port} "
                f"with {world_size} workers within {self.timeout_s:g} s. "
                f"{self._who_registered(store, world_size, master_addr, master_port)} "
                f"Backend error: {error}"
            ) from error
        self._peers = {r: json.loads(store.get(f"{self._prefix}{r}")) for r in range(world_size)}
        self._master = (master_addr, master_port)
        self._store = store

    def _who_registered(self, store, world_size: int, master_addr: str, port: int) -> str:
        me = f"this node ({self._node_text(self._me)})"
        if store is None:
            return (
                f"The rendezvous store at {master_addr}:{port} could not be reached from {me}: "
                "check that the master node is up and reachable from this interface, and that "
                "the port is open."
            )
        nodes: dict[str, list[int]] = {}
        missing = []
        try:
            for r in range(world_size):
                key = f"{self._prefix}{r}"
                if not store.check([key]):
                    missing.append(r)
                    continue
                nodes.setdefault(self._node_text(json.loads(store.get(key))), []).append(r)
        except RuntimeError:
            return (
                f"The rendezvous store at {master_addr}:{port} closed before {me} could read "
                "who arrived (its host gave up waiting first: its error lists them)."
            )
        seen = "; ".join(f"ranks {netif.rank_ranges(rs)} on {where}" for where, rs in nodes.items())
        text = f"Workers that reached the store: {seen or 'none'}."
        if missing:
            text += f" Never arrived: ranks {netif.rank_ranges(missing)}."
        return (
            text + " Every worker connects to every other at the addresses above: each node must "
            f"reach the others' (set {netif.GLOO_IFNAME} / {netif.NCCL_IFNAME} to choose the "
            "interface)."
        )

    @staticmethod
    def _node_text(node: dict) -> str:
        text = f"host {node.get('host')}, {node.get('address')} on {node.get('interface')}"
        if node.get("gloo") != node.get("interface"):  # gloo listens elsewhere: say where
            pinned = node.get("gloo")
            text += f", gloo on {pinned}" if pinned else ", gloo on the hostname's address"
        return text

    def _network_verdict(self) -> tuple[str, bool]:
        """After a failed collective: which peers on other nodes still answer, and how; and
        whether the rendezvous store still answers."""
        peers = getattr(self, "_peers", None)
        if not peers:
            return "", True
        mine = self._me.get("address")
        targets = {r: (p["address"], p["beacon"]) for r, p in peers.items()
                   if r != self.rank and p.get("address") and p["address"] != mine}  # fmt: skip
        if not targets:
            return "", True
        verdicts = netif.probe_all({**targets, _STORE: self._master})
        store_reachable = verdicts.pop(_STORE) == "alive"
        unreachable = [r for r, v in verdicts.items() if v == "unreachable"]
        gone = [r for r, v in verdicts.items() if v == "gone"]
        parts = []
        if unreachable:
            where = "; ".join(sorted({self._node_text(peers[r]) for r in unreachable}))
            parts.append(
                f"Unreachable peer: ranks {netif.rank_ranges(unreachable)} ({where}) did not "
                f"answer from this node ({self._node_text(self._me)}) within "
                f"{netif.PROBE_TIMEOUT_S:g} s: the network between the nodes is down."
            )
        if gone:
            parts.append(f"Ranks {netif.rank_ranges(gone)} answer no more: their process ended.")
        return " ".join(parts), store_reachable

    # ------------------------------------------------------------------ error handling
    def _check_usable(self, what: str) -> None:
        if self._broken is not None:
            raise CollectiveError(
                f"Rank {self.rank}: cannot run {what}: the communicator failed earlier "
                f"({self._broken})."
            )

    def _failed(self, what: str, error: BaseException, ticket: tuple | None = None):
        text = str(error)
        lowered = text.lower()
        culprits, summary, network = (), "", None
        if any(word in lowered for word in _TIMEOUT_WORDS):
            what = describe_collective(ticket) if ticket else what
            message = timeout_message(what, self.rank, self.timeout_s)
            kind = CollectiveTimeoutError
            summary = f"rank {self.rank} timed out in {what} after {self.timeout_s:g} s"
            network, store_reachable = self._network_verdict()
            # Asking through a store we cannot reach would block for its timeout per request.
            if getattr(self, "_watch", None) is not None and ticket is not None and store_reachable:
                with contextlib.suppress(Exception):  # best effort: the store may be gone
                    found, culprits = self._watch.diagnose(ticket)
                    message, summary = f"{message} Diagnosis: {found}", f"{summary}: {found}"
            if network and not culprits:  # the launcher's one-line report says why
                summary = f"{summary}. {network}"
        elif any(word in lowered for word in _PEER_GONE_WORDS):
            message = (
                f"Rank {self.rank}: {what} failed because another worker disconnected (it "
                "probably died: look for its error above)."
            )
            kind = CollectiveError
            network, store_reachable = self._network_verdict()
            if getattr(self, "_watch", None) is not None and store_reachable:
                # A rank that failed in Python left a note in the store before exiting.
                with contextlib.suppress(Exception):
                    found, culprits = self._watch.failures()
                    if culprits:
                        message = f"Rank {self.rank}: {what} failed because {found}."
                        summary = f"rank {self.rank}'s {what} failed: {found}"
        else:
            message = f"Rank {self.rank}: {what} failed."
            kind = CollectiveError
        self._broken = f"{what}: {text.splitlines()[0] if text else type(error).__name__}"
        if network is None:
            network, _ = self._network_verdict()
        self.shutdown()
        if network:
            message = f"{message} {network}"
        raise kind(f"{message} Backend error: {text}", culprits, summary) from error

    def announce_failure(self, text: str, code: int, culprits: tuple = ()) -> None:
        """This rank fails (exits.py): a note in the store lets the peers name it."""
        if getattr(self, "_watch", None) is not None:
            self._watch.announce(text, code, culprits)

    def _run(self, what: str, fn, *args, async_op: bool = False, **kwargs):
        self._check_usable(what)
        ticket = self._track(what)  # (seq, op, epoch, step): what a hang diagnosis compares
        try:
            work = fn(*args, async_op=async_op, **kwargs) if async_op else fn(*args, **kwargs)
        except RuntimeError as error:
            self._failed(what, error, ticket)
        return _TorchWork(self, work, what, ticket) if async_op else None

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
        watch, self._watch = getattr(self, "_watch", None), None
        if watch is not None:
            watch.close()
        if dist.is_initialized():
            # Already failing: exiting matters more than a clean goodbye.
            with contextlib.suppress(RuntimeError):
                dist.destroy_process_group()
