"""The torch backend's side channel for hang diagnosis, through the rendezvous store.

gloo and NCCL say only that a collective timed out. To say who is missing, every rank runs a
daemon thread that, every 0.2 s, publishes its last collective to the c10d store when it
changed (nothing on the per-step path: the step only bumps a Python counter) and answers
'where are you?' requests. A rank whose collective timed out asks every peer, waits up to
``hang.ANSWER_WAIT_S`` for the answers, and names the ranks that did not arrive; a dead rank
cannot answer, but its last published collective still says how far it got. The store is
the launcher's or torchrun's, so this works under distkeras-launch, torchrun and SLURM.

Keys, under ``distkeras/<restart>/watch/``: ``last/<rank>`` (its last collective),
``ask/<rank>`` (a counter askers increment), ``asking/<rank>`` (the collective they wait in),
``reply/<rank>`` (its whereabouts and how many asks it answered), ``failed/<rank>`` (a rank
that fails in Python says so before it exits, so that the peers whose collective then breaks
can name it: gloo only reports a closed connection).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

from distkeras.distributed import hang

_INTERVAL_S = 0.2


class StoreWatcher:
    """The side thread of one TorchCommunicator.

    Args:
        comm: The communicator (its ``rank``, ``world_size`` and ``last`` are read).
        store: A ``torch.distributed.Store`` every rank reaches.
        prefix: Key prefix, unique per attempt of the job.
    """

    def __init__(self, comm, store, prefix: str):
        self.comm, self.store, self.prefix = comm, store, prefix
        self._printed: set[int] = set()
        self._answered = 0
        self._published = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="distkeras-store-watch", daemon=True)
        self._thread.start()

    def _key(self, kind: str, rank: int) -> str:
        return f"{self.prefix}{kind}/{rank}"

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        rank = self.comm.rank
        with contextlib.suppress(Exception):
            self.store.set(self._key("identity", rank), json.dumps(hang.identity()))
        while not self._stop.wait(_INTERVAL_S):
            try:
                last = self.comm.last
                if last != self._published:
                    self.store.set(self._key("last", rank), json.dumps(list(last)))
                    self._published = last
                asked = int(self.store.add(self._key("ask", rank), 0))
                if asked > self._answered:
                    self._answer(asked)
            except Exception:  # the store went away (its host ended): nothing to watch
                return

    def _answer(self, asked: int) -> None:
        rank = self.comm.rank
        reply = {**hang.whereabouts(self.comm), "answers": asked}
        self.store.set(self._key("reply", rank), json.dumps(reply))
        self._answered = asked
        asking = json.loads(self.store.get(self._key("asking", rank)))
        ticket = tuple(asking["ticket"])
        if self.comm.last[0] < ticket[0]:
            hang.print_stack_if_behind(self.comm, ticket, asking["from"], self._printed)
            # This rank holds the job up and the asker is about to fail (and, under the
            # launcher, take the store with it): stop here, so no store error buries the stack.
            self._stop.set()

    # ------------------------------------------------------------------ main thread
    def diagnose(self, ticket: tuple) -> tuple[str, tuple[int, ...]]:
        """(text, culprits) for a timed-out collective ``ticket``; best effort."""
        rank, world = self.comm.rank, self.comm.world_size
        peers = [p for p in range(world) if p != rank]
        wanted = {}
        for peer in peers:
            self.store.set(self._key("asking", peer), json.dumps({"ticket": list(ticket),
                                                                  "from": rank}))  # fmt: skip
            wanted[peer] = int(self.store.add(self._key("ask", peer), 1))
        answers: dict[int, dict] = {}
        deadline = time.monotonic() + hang.ANSWER_WAIT_S
        while len(answers) < len(peers) and time.monotonic() < deadline:
            for peer in peers:
                if peer in answers or not self.store.check([self._key("reply", peer)]):
                    continue
                reply = json.loads(self.store.get(self._key("reply", peer)))
                if reply["answers"] >= wanted[peer]:
                    answers[peer] = reply
            time.sleep(0.05)
        known, identities = {}, {}
        for peer in peers:
            if peer in answers:
                continue
            if self.store.check([self._key("last", peer)]):
                known[peer] = json.loads(self.store.get(self._key("last", peer)))
            if self.store.check([self._key("identity", peer)]):
                identities[peer] = tuple(json.loads(self.store.get(self._key("identity", peer))))
        return hang.diagnose(ticket, answers, rank, world, known, identities)

    def announce(self, text: str, code: int, culprits: tuple = ()) -> None:
        """Leaves 'this rank failed: <text>' for the peers whose collective breaks."""
        note = {"text": text, "code": code, "culprits": list(culprits)}
        self.store.set(self._key("failed", self.comm.rank), json.dumps(note))

    def failures(self) -> tuple[str, tuple[int, ...]]:
        """('rank 1 failed: RuntimeError: boom', (1,)) from the peers' notes, or ('', ())."""
        notes = {}
        for peer in range(self.comm.world_size):
            key = self._key("failed", peer)
            if peer != self.comm.rank and self.store.check([key]):
                notes[peer] = json.loads(self.store.get(key))
        originals = {p: n for p, n in notes.items() if not n["culprits"]} or notes
        parts = []
        for peer, note in sorted(originals.items()):
            did = "left fit early with" if note["code"] == 0 else "failed:"
            parts.append(f"rank {peer} {did} {note['text']}")
        return "; ".join(parts), tuple(sorted(originals))

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join(timeout=1.0)
