"""The MPI backend's side channel: peers' failures and departures, and hang diagnosis.

One daemon thread per rank listens on a duplicate of ``COMM_WORLD`` (its own message space:
it never matches the training's collectives), waking every 50 ms for one ``Iprobe``. Nothing
runs on the per-step path; the waiting loop of a collective only reads a Python list.

Messages (pickled dicts, tagged):

* NOTICE: "rank k failed: <error>" or "rank k left after collective #s". A rank waiting in a
  collective that k will never join raises at once, naming k, instead of timing out.
* QUERY / REPLY: a rank whose collective timed out asks every peer where it is. The thread
  answers with the peer's last collective and the line its main thread is running (it works
  while the main thread sleeps, waits on I/O or runs Python; not while C code holds the GIL),
  and a straggler also prints its own Python stack.
"""

from __future__ import annotations

import queue
import threading
import time

from distkeras.distributed import hang

TAG_NOTICE, TAG_QUERY, TAG_REPLY = 7001, 7002, 7003
_IDLE_S = 0.05


class Watcher:
    """The side channel of one :class:`MPICommunicator` (created collectively, in its init)."""

    def __init__(self, comm):
        self.comm = comm
        self.MPI = comm.MPI
        self.ctrl = comm.world.Dup()
        # (host, pid) of every rank, to poke a silent one (hang.poke); collective, untracked.
        self.identities = dict(enumerate(self.ctrl.allgather(hang.identity())))
        self.notices: list[dict] = []  # appended by the thread, read by the waiting loop
        self.replies: queue.Queue = queue.Queue()
        self._sends: list = []
        self._stack_printed_for: set[int] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the thread and the main thread both send
        self._thread = threading.Thread(target=self._run, name="distkeras-mpi-watch", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        status = self.MPI.Status()
        while not self._stop.is_set():
            try:
                if not self.ctrl.Iprobe(self.MPI.ANY_SOURCE, self.MPI.ANY_TAG, status):
                    self._stop.wait(_IDLE_S)
                    continue
                source, tag = status.Get_source(), status.Get_tag()
                message = self.ctrl.recv(source=source, tag=tag)
            except Exception:  # MPI torn down under us at exit: nothing left to watch
                return
            if tag == TAG_NOTICE:
                self.notices.append(message)
            elif tag == TAG_REPLY:
                self.replies.put(message)
            elif tag == TAG_QUERY:
                self._answer(source, message)

    def _answer(self, asker: int, query: dict) -> None:
        ticket = tuple(query["ticket"])
        self.send(asker, TAG_REPLY, hang.whereabouts(self.comm))
        hang.print_stack_if_behind(self.comm, ticket, asker, self._stack_printed_for)

    # ------------------------------------------------------------------ main thread
    def send(self, dest: int, tag: int, message: dict) -> None:
        with self._lock:
            self._sends.append(self.ctrl.isend(message, dest=dest, tag=tag))

    def tell_everyone(self, message: dict) -> None:
        for peer in range(self.comm.world_size):
            if peer != self.comm.rank:
                self.send(peer, TAG_NOTICE, message)

    def ask_where(self, ticket: tuple) -> dict[int, dict]:
        """Every peer's reply to 'where are you?', within hang.ANSWER_WAIT_S (missing: no reply)."""
        peers = [p for p in range(self.comm.world_size) if p != self.comm.rank]
        for peer in peers:
            self.send(peer, TAG_QUERY, {"ticket": ticket})
        answers: dict[int, dict] = {}
        deadline = time.monotonic() + hang.ANSWER_WAIT_S
        while len(answers) < len(peers) and time.monotonic() < deadline:
            try:
                reply = self.replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            answers[reply["rank"]] = reply
        return answers

    def close(self, wait_s: float = 1.0) -> None:
        """Stops the thread (before MPI_Finalize) after the pending sends left, or wait_s."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            sends = list(self._sends)
        while sends and time.monotonic() < deadline:
            sends = [r for r in sends if not r.Test()]
            if sends:
                time.sleep(0.005)
        self._stop.set()
        self._thread.join(timeout=1.0)
